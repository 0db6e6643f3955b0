//! Which tests a run runs, and in what order: libtest's filters, `--skip`, `--ignored`,
//! `--include-ignored`, `--exclude-should-panic`, and `--shuffle` with libtest's own
//! shuffle, so that a seed gives the same order as it gives libtest.

use std::hash::{DefaultHasher, Hash, Hasher};

use super::cli::{Options, RunIgnored};

/// A test that passed the filters: its position in the registry, and whether it is
/// still to be ignored once `--ignored` / `--include-ignored` are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selected {
    pub index: usize,
    pub name: String,
    pub ignore: bool,
}

/// Whether `options` select one test at most, whatever the binary holds: `--exact` with
/// one name, as nextest runs every test, and as an editor's run button and
/// `cargo test NAME -- --exact` do. (Names are unique, so no second test can match.)
pub(crate) fn at_most_one(options: &Options) -> bool {
    options.exact && options.filters.len() == 1 && !options.list
}

/// A test the filters are applied to: its position in the registry, and what they read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<'a> {
    pub index: usize,
    pub name: &'a str,
    pub ignore: bool,
    pub should_panic: bool,
}

/// The tests `options` select from `tests` (in name order), in the order they are to run.
pub(crate) fn select(options: &Options, tests: &[Candidate<'_>]) -> Vec<Selected> {
    let matches = |name: &str, filter: &str| match options.exact {
        true => name == filter,
        false => name.contains(filter),
    };
    let mut selected: Vec<Selected> = tests
        .iter()
        .filter(|t| {
            options.filters.is_empty() || options.filters.iter().any(|f| matches(t.name, f))
        })
        .filter(|t| !options.skip.iter().any(|f| matches(t.name, f)))
        .filter(|t| !(options.exclude_should_panic && t.should_panic))
        .filter(|t| options.run_ignored != RunIgnored::Only || t.ignore)
        .map(|t| Selected {
            index: t.index,
            name: t.name.to_owned(),
            ignore: t.ignore && options.run_ignored == RunIgnored::No,
        })
        .collect();
    if let Some(seed) = options.shuffle_seed {
        shuffle(seed, &mut selected);
    }
    selected
}

/// libtest's shuffle: a generator seeded with `seed` and a hash of the names, one swap
/// per position. The names are hashed as libtest hashes its `Vec<&TestName>`, where by
/// then each name is an aligned name without padding (checked against libtest's own
/// order in tests/tests/parity.rs).
fn shuffle(seed: u64, tests: &mut [Selected]) {
    let mut names = DefaultHasher::new();
    names.write_usize(tests.len());
    for test in tests.iter() {
        // `TestName::AlignedTestName(name, NamePadding::PadNone)`: the variant, the
        // name, the padding's variant.
        names.write_isize(2);
        test.name.as_str().hash(&mut names);
        names.write_isize(0);
    }
    let extra = names.finish();
    let mut state = seed;
    for i in 0..tests.len() {
        let mut next = DefaultHasher::new();
        next.write_u64(state);
        next.write_u64(extra);
        state = next.finish();
        let pick = (state % (tests.len() - i) as u64) as usize;
        tests[i..].swap(0, pick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::cli::{ColorChoice, Format};

    fn options(filters: &[&str], skip: &[&str]) -> Options {
        Options {
            list: false,
            filters: filters.iter().map(|f| (*f).to_owned()).collect(),
            exact: false,
            skip: skip.iter().map(|f| (*f).to_owned()).collect(),
            run_ignored: RunIgnored::No,
            benchmarks_only: false,
            exclude_should_panic: false,
            fail_fast: false,
            nocapture: false,
            show_output: false,
            color: ColorChoice::Never,
            format: Format::Pretty,
            test_threads: None,
            time: None,
            shuffle_seed: None,
            logfile: None,
        }
    }

    fn names(selected: &[Selected]) -> Vec<&str> {
        selected.iter().map(|s| s.name.as_str()).collect()
    }

    const TESTS: [(&str, bool, bool); 4] = [
        ("a::one", false, false),
        ("a::two", true, false),
        ("b::one", false, true),
        ("b::three", false, false),
    ];

    fn tests() -> Vec<Candidate<'static>> {
        TESTS
            .iter()
            .enumerate()
            .map(|(index, &(name, ignore, should_panic))| Candidate {
                index,
                name,
                ignore,
                should_panic,
            })
            .collect()
    }

    #[test]
    fn any_filter_selects_and_any_skip_removes() {
        let o = options(&["two", "b::"], &["three"]);
        assert_eq!(names(&select(&o, &tests())), ["a::two", "b::one"]);
        let exact = Options {
            exact: true,
            ..options(&["one", "a::one"], &["b::one"])
        };
        assert_eq!(names(&select(&exact, &tests())), ["a::one"]);
    }

    #[test]
    fn ignored_tests_are_kept_marked_or_unignored() {
        let all = select(&options(&[], &[]), &tests());
        assert_eq!(all.iter().filter(|s| s.ignore).count(), 1);
        let only = Options {
            run_ignored: RunIgnored::Only,
            ..options(&[], &[])
        };
        let only = select(&only, &tests());
        assert_eq!(names(&only), ["a::two"]);
        assert!(!only[0].ignore);
        let no_panics = Options {
            exclude_should_panic: true,
            ..options(&[], &[])
        };
        assert_eq!(select(&no_panics, &tests()).len(), 3);
    }

    #[test]
    fn a_seed_gives_one_order_every_time() {
        let seeded = Options {
            shuffle_seed: Some(42),
            ..options(&[], &[])
        };
        let first = select(&seeded, &tests());
        assert_eq!(first, select(&seeded, &tests()));
        let mut sorted = names(&first);
        sorted.sort();
        assert_eq!(sorted, ["a::one", "a::two", "b::one", "b::three"]);
        let other = Options {
            shuffle_seed: Some(43),
            ..options(&[], &[])
        };
        let orders: Vec<Vec<String>> = (0..8)
            .map(|seed| {
                let o = Options {
                    shuffle_seed: Some(seed),
                    ..other.clone()
                };
                select(&o, &tests()).into_iter().map(|s| s.name).collect()
            })
            .collect();
        assert!(orders.iter().any(|o| o != &orders[0]), "{orders:?}");
    }
}
