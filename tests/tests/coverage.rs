//! Coverage through nstest's forked tests: `cargo llvm-cov` and `cargo llvm-cov nextest` on
//! `tests/coverage-fixture`, a crate that depends on nstest as users do (outside its
//! workspace, so nstest gets no `--cfg coverage`), must count each library function
//! exactly as often as its tests called it: sync and async, with and without a PID
//! namespace, passing and failing, and in a program a test spawned; and what `main` ran
//! before the tests exactly once.
//!
//! cargo-tarpaulin with its default options (the ptrace engine) must stop at once with a
//! one-line diagnosis naming `--follow-exec` and `--engine llvm`, never hang or leave a
//! process behind; with `--follow-exec` it must pass and count.
//!
//! Without cargo-llvm-cov or cargo-tarpaulin these tests say so and pass, except under CI
//! (`CI=true`), where `.ci/run` installs them and their absence fails them. They run
//! cargo, so `.ci/run` runs them in the root pass only.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serial_test::serial;

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("coverage-fixture/Cargo.toml")
}

/// Where the fixture is built, kept between runs. Under CI this is below `/tmp`, which a
/// test with `mount` sees as a fresh tmpfs: so these tests also check that the profile
/// directory survives it.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("coverage-fixture")
}

/// How often each test of `tests/coverage-fixture/tests/covered.rs` calls each function
/// of its library, by function name.
const CALLED_BY_TESTS: &[(&str, u64)] = &[
    ("by_sync_user_test", 1),
    ("by_failing_net_test", 1),
    ("by_pid_test", 1),
    ("by_failing_pid_test", 1),
    ("by_async_test", 1),
    ("by_failing_async_pid_test", 1),
    ("by_should_panic_mount_test", 1),
    ("three_times_by_one_test", 3),
    ("in_a_spawned_program", 1),
    ("never_called", 0),
];

/// The fixture's test functions; three fail on purpose.
const FIXTURE_TESTS: usize = 9;

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The directory of the LLVM tools of rustc's own LLVM version (`/usr/lib/llvm-22/bin`
/// for LLVM 22, from Debian's `llvm-22`), if installed: another version rejects the
/// profiles.
fn llvm_tools() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(rustc).arg("-vV").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))?;
    let major = version.split('.').next()?;
    let dir = PathBuf::from(format!("/usr/lib/llvm-{major}/bin"));
    dir.join("llvm-profdata").exists().then_some(dir)
}

/// `cargo <args>` on the fixture with the environment cargo-llvm-cov needs.
fn cargo(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO"));
    command
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_TERM_COLOR", "never")
        // Use the installed tools; never try to install a toolchain component.
        .env("CARGO_LLVM_COV_SETUP", "no")
        // No fixture test may hang this one.
        .env("NSTEST_TIMEOUT", "60s")
        .env("RUST_BACKTRACE", "0")
        .env_remove("LLVM_PROFILE_FILE");
    if let Some(tools) = llvm_tools() {
        command
            .env("LLVM_COV", tools.join("llvm-cov"))
            .env("LLVM_PROFDATA", tools.join("llvm-profdata"));
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cargo {args:?}: {e}"))
}

/// Whether `cargo <subcommand> --version` works; under CI its absence is a failure.
fn require(subcommand: &str, installed_by: &str) -> bool {
    let present = cargo(&[subcommand, "--version"]).status.success();
    if !present {
        assert!(
            !under_ci(),
            "cargo {subcommand} is missing under CI; {installed_by}"
        );
        eprintln!(
            "skipped: cargo {subcommand} is not installed ({installed_by}; or run `bash .ci/run`)"
        );
    }
    present
}

/// Runs `cargo llvm-cov [nextest] ... --json` on the fixture and returns the report and
/// what cargo printed.
fn measure(nextest: bool) -> (serde_json::Value, String) {
    let report = target_dir().join(if nextest { "nextest.json" } else { "test.json" });
    let manifest = manifest();
    let mut args = vec!["llvm-cov"];
    if nextest {
        args.push("nextest");
    }
    args.extend([
        // The fixture fails three tests on purpose; report anyway.
        "--ignore-run-fail",
        "--json",
        "--output-path",
        report.to_str().unwrap(),
        "--manifest-path",
        manifest.to_str().unwrap(),
    ]);
    let out = cargo(&args);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "cargo {args:?} failed: {}\n{printed}",
        out.status
    );
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("read {}: {e}\n{printed}", report.display()));
    (serde_json::from_str(&text).unwrap(), printed)
}

/// The execution count of each function of the `coverage_fixture` library, summed over
/// the binaries it is compiled into (the test binary, the spawned program, the library's
/// own unit-test binary). Functions are named mangled, v0 (`..._16coverage_fixture` then
/// `<length><name>`) or legacy (`_ZN16coverage_fixture<length><name>17h...E`); both
/// spell the path as length-prefixed identifiers.
fn function_counts(report: &serde_json::Value) -> BTreeMap<String, u64> {
    const CRATE: &str = "16coverage_fixture";
    let mut counts = BTreeMap::new();
    let functions = report["data"][0]["functions"]
        .as_array()
        .expect("a cargo llvm-cov --json report has data[0].functions");
    for function in functions {
        let name = function["name"].as_str().unwrap_or_default();
        let Some((_, rest)) = name.split_once(CRATE) else {
            continue;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(len) = rest[..digits].parse::<usize>() else {
            continue;
        };
        let Some(ident) = rest.get(digits..digits + len) else {
            continue;
        };
        *counts.entry(ident.to_owned()).or_insert(0) += function["count"].as_u64().unwrap();
    }
    counts
}

fn assert_counted_by_tests(counts: &BTreeMap<String, u64>, printed: &str) {
    for (function, expected) in CALLED_BY_TESTS {
        assert_eq!(
            counts.get(*function).copied(),
            Some(*expected),
            "coverage_fixture::{function}: counts {counts:?}\n{printed}"
        );
    }
}

#[test]
#[serial]
fn cargo_llvm_cov_counts_every_test_once_and_main_once() {
    if !require(
        "llvm-cov",
        ".ci/run installs it with `cargo install cargo-llvm-cov`",
    ) {
        return;
    }
    let (report, printed) = measure(false);
    // Every test ran, and the failing ones failed: their counts are not the passing ones'.
    let summary = format!(
        "test result: FAILED. {} passed; 3 failed;",
        FIXTURE_TESTS - 3
    );
    assert!(printed.contains(&summary), "no `{summary}` in:\n{printed}");
    let counts = function_counts(&report);
    assert_counted_by_tests(&counts, &printed);
    // The runner ran it before forking anything; no test process counts it again.
    assert_eq!(
        counts.get("before_the_tests").copied(),
        Some(1),
        "counts {counts:?}\n{printed}"
    );
}

#[test]
#[serial]
fn cargo_llvm_cov_nextest_counts_every_test_once() {
    if !require(
        "llvm-cov",
        ".ci/run installs it with `cargo install cargo-llvm-cov`",
    ) || !require(
        "nextest",
        ".ci/run installs it with `cargo install cargo-nextest`",
    ) {
        return;
    }
    let (report, printed) = measure(true);
    assert!(
        printed.contains(&format!("{FIXTURE_TESTS} tests run: 6 passed, 3 failed")),
        "nextest did not run the fixture's tests as expected:\n{printed}"
    );
    let counts = function_counts(&report);
    assert_counted_by_tests(&counts, &printed);
    // nextest starts the binary once per test (and to list them), and `main` runs each
    // time: as with any test binary under nextest, once per process, never per fork.
    let before = counts.get("before_the_tests").copied().unwrap_or(0);
    assert!(
        (FIXTURE_TESTS as u64..=FIXTURE_TESTS as u64 + 4).contains(&before),
        "before_the_tests counted {before} times: once per process nextest started\n{printed}"
    );
}

/// `cargo tarpaulin <args>` on the fixture, in a target directory of its own, bounded by
/// the support module's watchdog (a hang fails the test rather than CI).
fn tarpaulin(args: &[&str]) -> support::Run {
    let manifest = manifest();
    let target = target_dir().join("tarpaulin");
    let mut all = vec![
        "tarpaulin",
        "--manifest-path",
        manifest.to_str().unwrap(),
        "--target-dir",
        target.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let envs = [
        ("CARGO_TERM_COLOR", "never".to_owned()),
        ("NSTEST_TIMEOUT", "60s".to_owned()),
        ("RUST_BACKTRACE", "0".to_owned()),
    ];
    support::run(env!("CARGO"), &all, &envs)
}

/// The fixture's test binary (`covered-<hash>`) processes still alive, by `/proc/*/stat`.
fn fixture_processes() -> Vec<String> {
    support::processes_named("covered-")
}

#[test]
#[serial]
fn cargo_tarpaulin_with_default_options_stops_at_once_with_the_fix() {
    if !require(
        "tarpaulin",
        ".ci/run installs it with `cargo install cargo-tarpaulin`",
    ) {
        return;
    }
    let r = tarpaulin(&[]);
    let printed = format!("{}{}", r.stdout, r.stderr);
    assert_ne!(r.code, Some(0), "{}", r.dump());
    let diagnosis = "nstest: cargo tarpaulin's ptrace engine cannot follow nstest's forked \
        test processes without --follow-exec (they would crash or be left stopped); run \
        `cargo tarpaulin --follow-exec` or `cargo tarpaulin --engine llvm`\n";
    assert!(printed.contains(diagnosis), "{}", r.dump());
    // Stopped before any test of the nstest binary ran (tarpaulin first runs the library's
    // unit-test binary, which has none): no test line, no crash.
    assert!(!printed.contains(" ... "), "{}", r.dump());
    assert!(!printed.contains("segfault"), "{}", r.dump());
    assert_eq!(fixture_processes(), Vec::<String>::new(), "{}", r.dump());
}

#[test]
#[serial]
fn cargo_tarpaulin_follow_exec_passes_and_counts() {
    if !require(
        "tarpaulin",
        ".ci/run installs it with `cargo install cargo-tarpaulin`",
    ) {
        return;
    }
    // tarpaulin reports nothing for a binary with a failing test: skip the three that
    // fail on purpose.
    let r = tarpaulin(&[
        "--follow-exec",
        "--",
        "--skip",
        "fails",
        "--skip",
        "returns_err",
    ]);
    let printed = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(
        printed.contains(&format!(
            "test result: ok. {} passed; 0 failed",
            FIXTURE_TESTS - 3
        )),
        "{}",
        r.dump()
    );
    // tarpaulin's summary: `85.71% coverage, 12/14 lines covered`.
    let covered = printed
        .lines()
        .find_map(|line| line.split_once("% coverage, "))
        .and_then(|(before, _)| before.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no coverage percentage in:\n{}", r.dump()));
    assert!(covered > 50.0, "{covered}% covered:\n{}", r.dump());
    assert_eq!(fixture_processes(), Vec::<String>::new(), "{}", r.dump());
}
