//! nstest against libtest, flag by flag: `fixture_libtest_parity` runs the bodies of
//! `tests/fixtures/parity_bodies.rs` as `#[ns_test]` tests; the same file under `#[test]`
//! is built here with the standard harness (`rustc --test`). For every command line both
//! must print the same bytes and exit alike, once timings, thread ids and the file names
//! in panic locations are normalised.
//!
//! This builds with rustc, so `.ci/run` runs it in the root pass only.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::{Run, run};

const NSTEST: &str = env!("CARGO_BIN_EXE_fixture_libtest_parity");

/// The libtest build of the same tests, made once per test binary. Its crate root is in
/// a directory named `tests`, as a `[[test]]` target's is: libtest then treats the tests
/// as integration tests, as nstest does (this decides `--ensure-time`'s thresholds and
/// JUnit's class name).
fn libtest() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("parity/tests");
        std::fs::create_dir_all(&dir).unwrap();
        let bodies = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/parity_bodies.rs");
        let root = dir.join("libtest_parity.rs");
        std::fs::write(
            &root,
            format!(
                "macro_rules! parity_test {{\n    ($(#[$meta:meta])* fn $name:ident() $(-> $ret:ty)? $body:block) => {{\n        #[test]\n        $(#[$meta])*\n        fn $name() $(-> $ret)? $body\n    }};\n}}\ninclude!({bodies:?});\n"
            ),
        )
        .unwrap();
        let binary = dir.join("libtest_parity");
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let out = Command::new(&rustc)
            .args(["--edition", "2024", "--test", "-o"])
            .arg(&binary)
            .arg(&root)
            .output()
            .unwrap_or_else(|e| panic!("{rustc}: {e}"));
        assert!(
            out.status.success(),
            "{rustc} --test failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        binary
    })
}

/// Replaces what may differ between two runs of the same tests: times, the thread ids
/// std prints in panic messages, and the file names of panic locations.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        // `thread 'name' (1234) panicked`
        if let Some((tail, end)) = rest
            .strip_prefix("' (")
            .and_then(|tail| Some((tail, tail.find(") panicked")?)))
            .filter(|(tail, end)| tail[..*end].bytes().all(|b| b.is_ascii_digit()))
        {
            out.push_str("' (ID)");
            rest = &tail[end + ")".len()..];
            continue;
        }
        // Where a test or a panic is: `panicked at F:`, `did not panic as expected at F:`,
        // and `--list --format json`'s `"source_path": "F"`.
        let located = [
            (" panicked at ", "parity_bodies.rs:"),
            (" as expected at ", "parity_bodies.rs:"),
            ("\"source_path\": \"", "parity_bodies.rs\""),
        ];
        if let Some((prefix, file, tail, end)) = located.iter().find_map(|(prefix, file)| {
            let tail = rest.strip_prefix(prefix)?;
            let end = tail
                .find(file)
                .filter(|end| !tail[..*end].contains(['\n', '"']))?;
            Some((prefix, file, tail, end))
        }) {
            out.push_str(prefix);
            out.push_str("FILE");
            out.push_str(&file["parity_bodies.rs".len()..]);
            rest = &tail[end + file.len()..];
            continue;
        }
        let timed = [
            ("finished in ", "s"),
            (" <", "s>"),
            ("\"exec_time\": ", ""),
            ("time=\"", "\""),
        ];
        if let Some((prefix, suffix)) = timed.iter().find(|(p, _)| rest.starts_with(p)) {
            let tail = &rest[prefix.len()..];
            let digits = tail
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-'))
                .unwrap_or(tail.len());
            if digits > 0 && tail[digits..].starts_with(suffix) {
                out.push_str(prefix);
                out.push('T');
                out.push_str(suffix);
                rest = &tail[digits + suffix.len()..];
                continue;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn both(args: &[&str], envs: &[(&str, &str)]) -> (Run, Run) {
    let envs: Vec<(&str, String)> = envs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    (
        run(NSTEST, args, &envs),
        run(libtest().to_str().unwrap(), args, &envs),
    )
}

/// Both print the same stdout and stderr (normalised) and exit alike.
#[track_caller]
fn assert_same(args: &[&str], envs: &[(&str, &str)]) {
    let (nstest, libtest) = both(args, envs);
    assert_eq!(
        (
            nstest.code,
            normalise(&nstest.stdout),
            normalise(&nstest.stderr)
        ),
        (
            libtest.code,
            normalise(&libtest.stdout),
            normalise(&libtest.stderr)
        ),
        "{args:?}: left nstest, right libtest\n--- nstest ---\n{}\n--- libtest ---\n{}",
        nstest.dump(),
        libtest.dump()
    );
}

const UNSTABLE: &[(&str, &str)] = &[("RUSTC_BOOTSTRAP", "1")];

#[test]
fn the_human_formats_are_libtests() {
    for args in [
        &["--test-threads", "1"][..],
        &["--test-threads", "1", "-q"],
        &["--test-threads", "1", "--format", "terse"],
        &[
            "--test-threads",
            "1",
            "--format",
            "pretty",
            "--color",
            "never",
        ],
        &["--test-threads", "1", "--show-output"],
        &["--test-threads", "1", "--include-ignored"],
        &["--test-threads", "1", "--ignored"],
        &["--test-threads", "1", "--nocapture", "pass"],
        &["--test-threads", "1", "--color", "always"],
        &["--test-threads", "1", "-q", "--color", "always"],
    ] {
        assert_same(args, &[]);
    }
}

#[test]
fn filters_skips_and_exact_select_as_in_libtest() {
    for args in [
        &["--test-threads", "1", "pass", "nested"][..],
        &[
            "--test-threads",
            "1",
            "--exact",
            "passes",
            "nested::in_a_module",
            "in_a",
        ],
        &[
            "--test-threads",
            "1",
            "--skip",
            "pass",
            "--skip",
            "panic",
            "e",
        ],
        &["--test-threads", "1", "--exact", "--skip", "passes", "pass"],
        &["--test-threads", "1", "matches_nothing"],
    ] {
        assert_same(args, &[]);
    }
}

#[test]
fn lists_are_libtests() {
    for args in [
        &["--list"][..],
        &["--list", "--ignored"],
        &["--list", "--format", "terse"],
        &["--list", "-q", "pass"],
        &["--list", "matches_nothing"],
    ] {
        assert_same(args, &[]);
    }
    // With where each test is written: source_path, lines and columns.
    assert_same(
        &["-Zunstable-options", "--list", "--format", "json"],
        UNSTABLE,
    );
}

#[test]
fn json_junit_and_times_are_libtests_with_unstable_options() {
    for args in [
        &[
            "-Zunstable-options",
            "--format",
            "json",
            "--test-threads",
            "1",
        ][..],
        &[
            "-Zunstable-options",
            "--format",
            "json",
            "--test-threads",
            "1",
            "--show-output",
            "--report-time",
            "--include-ignored",
        ],
        &["-Zunstable-options", "--report-time", "--test-threads", "1"],
        &[
            "-Zunstable-options",
            "--format",
            "junit",
            "--test-threads",
            "1",
            "pass",
        ],
        &[
            "-Zunstable-options",
            "--format",
            "junit",
            "--report-time",
            "--show-output",
            "--test-threads",
            "1",
            "returns",
            "nested",
        ],
    ] {
        assert_same(args, UNSTABLE);
    }
}

#[test]
fn ensure_time_fails_slow_tests_at_libtests_thresholds() {
    let envs = [
        ("RUSTC_BOOTSTRAP", "1"),
        ("RUST_TEST_TIME_INTEGRATION", "50,100"),
    ];
    for args in [
        &["-Zunstable-options", "--ensure-time", "--test-threads", "1"][..],
        &[
            "-Zunstable-options",
            "--ensure-time",
            "--format",
            "json",
            "--test-threads",
            "1",
        ],
    ] {
        assert_same(args, &envs);
    }
    let (nstest, _) = both(
        &["-Zunstable-options", "--ensure-time", "--test-threads", "1"],
        &envs,
    );
    assert!(
        nstest
            .stdout
            .contains("test takes_150ms ... FAILED (time limit exceeded) <0.1"),
        "{}",
        nstest.dump()
    );
}

#[test]
fn a_shuffle_seed_gives_libtests_order() {
    for seed in ["42", "7", "18446744073709551615"] {
        for format in ["pretty", "terse", "json"] {
            assert_same(
                &[
                    "-Zunstable-options",
                    "--shuffle-seed",
                    seed,
                    "--format",
                    format,
                    "--test-threads",
                    "1",
                ],
                UNSTABLE,
            );
        }
    }
    // Without a seed, the one chosen is printed, and reproduces the order.
    let (nstest, _) = both(
        &["-Zunstable-options", "--shuffle", "--test-threads", "1"],
        UNSTABLE,
    );
    let seed = nstest
        .stdout
        .split("(shuffle seed: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no seed in {}", nstest.dump()));
    let again = run(
        NSTEST,
        &[
            "-Zunstable-options",
            "--shuffle-seed",
            seed,
            "--test-threads",
            "1",
        ],
        &[("RUSTC_BOOTSTRAP", "1".into())],
    );
    let order = |r: &Run| -> Vec<String> {
        r.stdout
            .lines()
            .filter(|l| l.starts_with("test ") && l.contains(" ... "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(order(&nstest), order(&again));
}

#[test]
fn refusals_and_bad_arguments_are_libtests() {
    for args in [
        &["--format", "json"][..],
        &["--format", "junit"],
        &["-Z", "unstable-options", "--format", "json"],
        &["-Zunstable-options"],
        &["--report-time"],
        &["--ensure-time"],
        &["--shuffle"],
        &["--shuffle-seed", "3"],
        &["--bogus"],
        &["--format", "xml"],
        &["--format"],
        &["--test-threads", "0"],
        &["--test-threads", "x"],
        &["--color", "maybe"],
        &["--exact", "--exact"],
        &["--ignored", "--include-ignored"],
    ] {
        assert_same(args, &[]);
    }
    for args in [
        &["-Zfoo"][..],
        &["-Zunstable-options", "--shuffle-seed", "x"],
    ] {
        assert_same(args, UNSTABLE);
    }
}

/// With threads, an ignored test takes a thread's turn: it is announced with the others
/// and reported before the next is announced, in the one order libtest's events allow
/// when no test runs.
#[test]
fn ignored_tests_take_a_threads_turn_as_in_libtests_events() {
    for format in ["json", "pretty", "terse"] {
        assert_same(
            &[
                "--test-threads",
                "2",
                "-Zunstable-options",
                "--format",
                format,
                "ignored",
            ],
            UNSTABLE,
        );
    }
}

#[test]
fn many_threads_give_the_same_lines_in_some_order() {
    let (nstest, libtest) = both(&["--test-threads", "4"], &[]);
    assert_eq!(nstest.code, libtest.code);
    let sorted = |r: &Run| {
        let mut lines: Vec<String> = normalise(&r.stdout).lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(
        sorted(&nstest),
        sorted(&libtest),
        "{}\n{}",
        nstest.dump(),
        libtest.dump()
    );
}

#[test]
fn the_normaliser_only_touches_times_ids_and_file_names() {
    assert_eq!(
        normalise(
            "thread 'a' (123) panicked at /x/parity_bodies.rs:1:2:\n ok <0.001s> finished in \
             1.25s \"exec_time\": 1.5e-6, time=\"0\" (12) panicked <x>"
        ),
        "thread 'a' (ID) panicked at FILE:1:2:\n ok <Ts> finished in Ts \"exec_time\": T, \
         time=\"T\" (12) panicked <x>"
    );
    assert_eq!(
        normalise(
            "did not panic as expected at tests/parity_bodies.rs:5:8 \
             \"source_path\": \"/a/parity_bodies.rs\", \"start_line\": 5"
        ),
        "did not panic as expected at FILE:5:8 \"source_path\": \"FILE\", \"start_line\": 5"
    );
}
