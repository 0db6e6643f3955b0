//! The registration type that `#[ns_test]` submits to `inventory`, one per test.
//!
//! Plain data (layer 1 of docs/src/architecture.md): depends only on [`crate::plan`].
//! Runs in: every process; the runner lists and selects tests, the others receive one by
//! its address (see `sys::static_at`).

use std::fmt::Debug;

use crate::plan::Plan;

/// One test, as the macro registers it. Built by generated code only.
#[derive(Debug)]
pub struct Test {
    /// `module_path!()` where the test was written, then `::` and the function's name; its
    /// first segment is the crate. One string made at compile time (`concat!`), so that
    /// naming a test allocates nothing: a process that runs one test of thousands, as under
    /// nextest, sorts and filters them all.
    pub path: &'static str,
    /// The wrapper that calls the function and turns its return value into a result.
    pub run: fn() -> Result<(), String>,
    /// The namespaces and settings the test asked for.
    pub plan: Plan,
    /// `timeout = "..."`: seconds after which the test and everything it started are
    /// killed; `None` falls back to the run's `NSTEST_TIMEOUT` (see the runner's
    /// `Settings`), and to no limit.
    pub timeout_secs: Option<u64>,
    /// `#[ignore]`: run only with `--ignored` or `--include-ignored`.
    pub ignore: bool,
    /// The reason of `#[ignore = "reason"]`.
    pub ignore_message: Option<&'static str>,
    /// `#[should_panic]`.
    pub should_panic: ShouldPanic,
    /// Where the function's name is written, as libtest reports it.
    pub source: Source,
}

/// Where a test's function name is written: `file!()` and the name's line and columns
/// (1-based; `end_column` is just past the name), as libtest's `--list --format json` and
/// its unmet-`#[should_panic]` note give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The file, as rustc was given it (`src/lib.rs`, `tests/service.rs`).
    pub file: &'static str,
    /// The line of the name.
    pub line: u32,
    /// The column where the name starts.
    pub column: u32,
    /// The column just past the name.
    pub end_column: u32,
}

impl Source {
    /// No place in the source: the host probe's sandboxes.
    pub const NONE: Source = Source {
        file: "",
        line: 0,
        column: 0,
        end_column: 0,
    };
}

/// What `#[should_panic]` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShouldPanic {
    /// No `#[should_panic]`.
    No,
    /// `#[should_panic]`: any panic passes.
    Yes,
    /// `#[should_panic(expected = "...")]`: the panic message must contain this.
    WithMessage(&'static str),
}

inventory::collect!(Test);

impl Test {
    /// The name libtest would give the test: its module path without the crate, then the
    /// function (`tests::binds_port_80`, or `binds_port_80` at the crate root).
    pub fn name(&self) -> &'static str {
        // A crate's name has no `:`, so the first one starts the first `::`. Searching for
        // one byte (memchr) rather than the two-byte pattern matters: sorting the tests
        // asks for every name some 20 times, and a `&str` pattern builds a two-way
        // searcher each time (measured: 12% of a one-test run of a 1,000-test binary).
        match self.path.split_once(':') {
            Some((_crate, rest)) => rest.strip_prefix(':').unwrap_or(rest),
            None => self.path,
        }
    }
}

/// Every registered test, sorted by name as libtest lists them.
pub(crate) fn all_tests() -> Vec<&'static Test> {
    let mut tests = unordered_tests();
    // Each name once, not twice per comparison.
    tests.sort_by_cached_key(|test| test.name());
    tests
}

/// Every registered test, in no particular order: enough for a run that selects one test
/// (see `runner::select::at_most_one`), which need not sort a thousand names to find it.
pub(crate) fn unordered_tests() -> Vec<&'static Test> {
    inventory::iter::<Test>.into_iter().collect()
}

/// The return types a test function may have: `()` and `Result<(), E: Debug>`, as with
/// `#[test]`. The generated wrapper calls this on the function's return value.
pub trait TestReturn {
    /// `Err` carries the `Debug` text of the error.
    ///
    /// # Errors
    ///
    /// When the test returned `Err(e)`: `format!("{e:?}")`.
    fn into_test_result(self) -> Result<(), String>;
}

impl TestReturn for () {
    fn into_test_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Debug> TestReturn for Result<(), E> {
    fn into_test_result(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(path: &'static str) -> Test {
        Test {
            path,
            run: || Ok(()),
            plan: Plan::hermetic(),
            timeout_secs: None,
            ignore: false,
            ignore_message: None,
            should_panic: ShouldPanic::No,
            source: Source::NONE,
        }
    }

    #[test]
    fn names_drop_the_crate_like_libtest() {
        assert_eq!(named("service::binds").name(), "binds");
        assert_eq!(named("service::http::v1::binds").name(), "http::v1::binds");
    }

    #[test]
    fn results_carry_the_debug_text_of_the_error() {
        assert_eq!(().into_test_result(), Ok(()));
        assert_eq!(Ok::<(), &str>(()).into_test_result(), Ok(()));
        assert_eq!(
            Err::<(), _>("no \"route\"").into_test_result(),
            Err("\"no \\\"route\\\"\"".to_owned())
        );
    }
}
