//! `#[ns_test]` under libtest's own harness, as most Rust tests are written: unit tests in
//! a library's `#[cfg(test)] mod tests` and a test target that keeps `harness = true`,
//! with no `nstest::main!()` (`tests/libtest-fixture`). Run with cargo test, the test
//! binary itself (flag by flag, as rust-analyzer and scripts call it) and cargo nextest.
//!
//! These run cargo, so `.ci/run` runs them in the root pass only; its unprivileged pass
//! runs the fixture's own test binaries (the tests that pass) as an ordinary user.

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use support::run;

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("libtest-fixture/Cargo.toml")
}

/// Where the fixture is built: apart from the workspace's own target directory, which
/// the running `cargo test` holds.
fn target_dir() -> String {
    format!("{}/libtest-fixture", env!("CARGO_TARGET_TMPDIR"))
}

fn cargo(args: &[&str]) -> support::Run {
    let envs = [
        ("CARGO_TARGET_DIR", target_dir()),
        ("CARGO_TERM_COLOR", "never".to_owned()),
    ];
    run(env!("CARGO"), args, &envs)
}

/// The fixture's unit-test, integration-test and limits binaries, built once.
fn binaries() -> &'static (String, String, String) {
    static BUILT: OnceLock<(String, String, String)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let manifest = manifest();
        let r = cargo(&[
            "test",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--no-run",
            "--message-format=json",
        ]);
        assert_eq!(r.code, Some(0), "{}", r.dump());
        let mut unit = None;
        let mut integration = None;
        let mut limits = None;
        for line in r.stdout.lines() {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let Some(exe) = message["executable"].as_str() else {
                continue;
            };
            match message["target"]["name"].as_str() {
                Some("libtest_fixture") => unit = Some(exe.to_owned()),
                Some("integration") => integration = Some(exe.to_owned()),
                Some("limits") => limits = Some(exe.to_owned()),
                _ => {}
            }
        }
        (
            unit.expect("unit tests built"),
            integration.expect("integration built"),
            limits.expect("limits built"),
        )
    })
}

fn unit_tests(args: &[&str]) -> support::Run {
    run(&binaries().0, args, &[])
}

#[test]
fn every_outcome_and_its_output_reach_libtest() {
    let r = unit_tests(&["--include-ignored"]);
    assert_eq!(r.code, Some(101), "{}", r.dump());
    let outcomes = r.outcomes();
    for (name, outcome) in [
        ("tests::binds_80", "ok"),
        ("tests::full_set_is_pid_1_world", "ok"),
        ("tests::uptime_is_shifted", "ok"),
        ("tests::should_panic_with_message", "ok"),
        ("tests::returns_ok", "ok"),
        ("tests::ignored_with_reason", "ok"),
        ("tests::plain", "ok"),
        ("tests::fails_with_output", "FAILED"),
        ("tests::times_out", "FAILED"),
        ("tests::crash_is_not_the_panic_it_wanted", "FAILED"),
    ] {
        assert_eq!(
            outcomes.get(name).map(String::as_str),
            Some(outcome),
            "{name}: {}",
            r.dump()
        );
    }
    assert!(
        r.stdout
            .contains("test tests::should_panic_with_message - should panic ... ok"),
        "{}",
        r.dump()
    );
    assert!(
        r.summary()
            .starts_with("test result: FAILED. 7 passed; 3 failed; 0 ignored")
    );

    // The output of the test and of a process it started, at the file-descriptor level,
    // then the panic as libtest prints it, with the test's name as the thread's.
    let failed = r.failure("tests::fails_with_output");
    for line in [
        "to stdout from the test",
        "to stderr from the test",
        "from a child process",
        "src/lib.rs:",
        "assertion `left == right` failed: arithmetic is broken",
    ] {
        assert!(failed.contains(line), "{line:?} missing from {failed}");
    }
    assert!(
        failed.contains("thread 'tests::fails_with_output' (") && failed.contains(") panicked at "),
        "{failed}"
    );
    assert_eq!(
        r.failure("tests::times_out"),
        "about to hang\nnstest: timed out after 1s; the test and every process it started \
         were killed"
    );
    // A crash is not the panic `#[should_panic]` wants: libtest fails it, with the cause.
    let crashed = r.failure("tests::crash_is_not_the_panic_it_wanted");
    assert!(
        crashed.starts_with(
            "nstest: the test process was killed by SIGABRT (signal 6) before reporting a \
             result\n"
        ),
        "{crashed}"
    );
    assert!(
        crashed.contains("note: test did not panic as expected"),
        "{crashed}"
    );
}

#[test]
fn a_backtrace_names_the_tests_own_function_as_libtest_does() {
    let r = run(
        &binaries().0,
        &["--include-ignored", "--exact", "tests::fails_with_output"],
        &[("RUST_BACKTRACE", "1".to_owned())],
    );
    assert_eq!(r.code, Some(101), "{}", r.dump());
    let failed = r.failure("tests::fails_with_output");
    let frames = failed
        .split_once("stack backtrace:\n")
        .unwrap_or_else(|| panic!("no backtrace in:\n{failed}"))
        .1;
    for frame in [
        ": libtest_fixture::tests::fails_with_output\n",
        ": libtest_fixture::tests::fails_with_output::{{closure}}\n",
    ] {
        assert!(frames.contains(frame), "{frame:?} missing:\n{failed}");
    }
    assert!(!frames.contains("__nstest"), "{failed}");
}

#[test]
fn ignored_tests_and_their_reasons_are_libtests() {
    let r = unit_tests(&[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(
        r.stdout
            .contains("test tests::ignored_with_reason ... ignored, slow\n"),
        "{}",
        r.dump()
    );
    assert!(
        r.summary()
            .starts_with("test result: ok. 6 passed; 0 failed; 4 ignored")
    );
}

#[test]
fn filters_exact_and_test_threads_behave_as_for_test() {
    // As rust-analyzer's "Run Test" calls it.
    let r = unit_tests(&["tests::binds_80", "--exact", "--nocapture"]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_eq!(r.outcomes().len(), 1, "{}", r.dump());
    assert!(
        r.summary()
            .contains("1 passed; 0 failed; 0 ignored; 0 measured; 9 filtered out")
    );
    let r = unit_tests(&["--test-threads=1", "uptime"]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_eq!(r.outcomes().len(), 1, "{}", r.dump());
    let r = unit_tests(&["--list"]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(r.stdout.contains("tests::binds_80: test\n"), "{}", r.dump());
}

#[test]
fn nocapture_shows_the_output_live() {
    let r = unit_tests(&["--ignored", "--nocapture", "fails_with_output"]);
    assert_eq!(r.code, Some(101), "{}", r.dump());
    // Written by the test straight to the terminal (here: the pipe), not captured.
    assert!(
        r.stdout.contains("to stdout from the test\n"),
        "{}",
        r.dump()
    );
    assert!(
        r.stderr.contains("to stderr from the test\n"),
        "{}",
        r.dump()
    );
    assert!(r.stderr.contains("arithmetic is broken"), "{}", r.dump());
}

#[test]
fn an_integration_target_with_libtests_harness_runs_them_too() {
    let r = run(&binaries().1, &[], &[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let outcomes = r.outcomes();
    for name in [
        "integration_binds_80",
        "integration_hostname",
        "integration_plain",
        "integration_wall_clock",
    ] {
        assert_eq!(
            outcomes.get(name).map(String::as_str),
            Some("ok"),
            "{}",
            r.dump()
        );
    }
}

/// Each limit reached is named in the failure under libtest's harness, as under nstest's.
#[test]
fn limits_reached_are_named_under_libtests_harness() {
    let r = run(&binaries().2, &["--include-ignored"], &[]);
    assert_eq!(r.code, Some(101), "{}", r.dump());
    let outcomes = r.outcomes();
    for (name, outcome) in [
        ("libtest_pids_bomb", "FAILED"),
        ("libtest_memory_hog", "FAILED"),
        ("libtest_cpu_spin", "FAILED"),
        ("libtest_under_its_limits", "ok"),
    ] {
        assert_eq!(
            outcomes.get(name).map(String::as_str),
            Some(outcome),
            "{name}: {}",
            r.dump()
        );
    }
    for (name, says) in [
        ("libtest_pids_bomb", "nstest: pids limit (8) reached"),
        (
            "libtest_memory_hog",
            "nstest: memory limit (64 MiB) reached",
        ),
        ("libtest_cpu_spin", "nstest: cpu time limit (1s) reached"),
    ] {
        assert!(r.failure(name).contains(says), "{name}: {}", r.dump());
    }
}

#[test]
fn cargo_test_and_cargo_nextest_run_them() {
    let manifest = manifest();
    let manifest = manifest.to_str().unwrap();
    let r = cargo(&["test", "--manifest-path", manifest]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(
        r.stdout.contains("test tests::binds_80 ... ok"),
        "{}",
        r.dump()
    );
    assert!(
        r.stdout.contains("test integration_hostname ... ok"),
        "{}",
        r.dump()
    );

    let r = cargo(&[
        "nextest",
        "run",
        "--manifest-path",
        manifest,
        "--run-ignored",
        "all",
        "--no-fail-fast",
    ]);
    assert_eq!(r.code, Some(100), "{}", r.dump());
    for (status, name) in [
        ("PASS", "libtest-fixture tests::binds_80"),
        ("PASS", "libtest-fixture tests::full_set_is_pid_1_world"),
        ("PASS", "libtest-fixture tests::should_panic_with_message"),
        ("PASS", "libtest-fixture::integration integration_hostname"),
        (
            "PASS",
            "libtest-fixture::integration integration_wall_clock",
        ),
        (
            "PASS",
            "libtest-fixture::loopback multicast_v4_joined_on_the_default_interface",
        ),
        (
            "PASS",
            "libtest-fixture::loopback multicast_v6_joined_on_the_default_interface",
        ),
        (
            "PASS",
            "libtest-fixture::loopback a_group_nobody_joined_is_not_received",
        ),
        (
            "PASS",
            "libtest-fixture::loopback broadcast_to_the_loopback_network_arrives",
        ),
        (
            "PASS",
            "libtest-fixture::loopback localhost_resolves_and_every_loopback_address_answers",
        ),
        ("FAIL", "libtest-fixture tests::fails_with_output"),
        ("FAIL", "libtest-fixture tests::times_out"),
        ("FAIL", "libtest-fixture::limits libtest_pids_bomb"),
        ("FAIL", "libtest-fixture::limits libtest_memory_hog"),
        ("FAIL", "libtest-fixture::limits libtest_cpu_spin"),
        ("PASS", "libtest-fixture::limits libtest_under_its_limits"),
    ] {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.trim_start().starts_with(status) && l.trim_end().ends_with(name)),
            "{status} {name}: {}",
            r.dump()
        );
    }
    assert!(
        r.stderr.contains("23 tests run: 17 passed, 6 failed"),
        "{}",
        r.dump()
    );
    // nextest shows each failure's output, where the limit is named.
    for says in [
        "nstest: pids limit (8) reached",
        "nstest: memory limit (64 MiB) reached",
        "nstest: cpu time limit (1s) reached",
    ] {
        assert!(
            r.stderr.contains(says) || r.stdout.contains(says),
            "{says}: {}",
            r.dump()
        );
    }
}
