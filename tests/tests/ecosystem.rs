//! nstest under the tools users run it with: cargo-nextest (outcomes, filters, ignored
//! tests, partitions, archives, timeouts, retries) and cargo test as rust-analyzer calls it,
//! against `tests/nextest-fixture`, a crate as a user would write it (an nstest target and
//! a plain libtest target side by side).
//!
//! These run cargo, so `.ci/run` runs them in the root pass only.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{processes_with, run};

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("nextest-fixture/Cargo.toml")
}

/// Where the fixture crate is built, kept between runs.
fn target_dir() -> String {
    format!("{}/nextest-fixture", env!("CARGO_TARGET_TMPDIR"))
}

fn cargo(args: &[&str], envs: &[(&str, String)]) -> support::Run {
    let mut all = vec![
        ("CARGO_TARGET_DIR", target_dir()),
        ("CARGO_TERM_COLOR", "never".to_owned()),
    ];
    all.extend(envs.iter().cloned());
    run(env!("CARGO"), args, &all)
}

/// `name -> PASS|FAIL|...` from nextest's status lines, for the `hermetic` binary.
fn nextest_outcomes(r: &support::Run) -> BTreeMap<String, String> {
    r.stderr
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let (status, rest) = line.split_once(' ')?;
            let name = rest.rsplit_once("nextest-fixture::hermetic ")?.1;
            [
                "PASS", "FAIL", "TIMEOUT", "SIGKILL", "SIGTERM", "SIGABRT", "SIGSEGV",
            ]
            .contains(&status)
            .then(|| (name.trim().to_owned(), status.to_owned()))
        })
        .collect()
}

fn nextest(args: &[&str], envs: &[(&str, String)]) -> support::Run {
    let manifest = manifest();
    let mut all = vec![
        "nextest",
        "run",
        "--manifest-path",
        manifest.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    cargo(&all, envs)
}

#[test]
fn nextest_and_cargo_test_agree_on_every_outcome() {
    let manifest = manifest();
    let m = manifest.to_str().unwrap();
    let t = cargo(
        &[
            "test",
            "--manifest-path",
            m,
            "--no-fail-fast",
            "--test",
            "hermetic",
        ],
        &[],
    );
    let libtest: BTreeMap<String, String> = t
        .outcomes()
        .into_iter()
        .map(|(name, outcome)| {
            let outcome = match outcome.as_str() {
                "ok" => "PASS",
                "FAILED" => "FAIL",
                _ => "ignored",
            };
            (name, outcome.to_owned())
        })
        .filter(|(_, outcome)| outcome != "ignored")
        .collect();
    assert_eq!(libtest.len(), 8, "{}", t.dump());
    assert_eq!(
        libtest.get("async_echo_on_port_80").map(String::as_str),
        Some("PASS")
    );

    let n = nextest(&["--no-fail-fast"], &[]);
    assert_eq!(n.code, Some(100), "{}", n.dump());
    assert_eq!(nextest_outcomes(&n), libtest, "{}", n.dump());
    assert!(n.stderr.contains("PASS") && n.stderr.contains("nextest-fixture::plain plain_passes"));
    assert!(
        n.stderr.lines().any(|l| l.trim_start().starts_with("PASS")
            && l.trim_end()
                .ends_with("nextest-fixture::wall wall_clock_in_2038")),
        "{}",
        n.dump()
    );
    assert!(
        n.stderr
            .contains("10 tests run: 8 passed, 2 failed, 3 skipped"),
        "{}",
        n.dump()
    );
}

#[test]
fn ignored_tests_and_filters_select_like_cargo_test() {
    let n = nextest(
        &[
            "--no-fail-fast",
            "--run-ignored",
            "only",
            "-E",
            "not test(sleeps_with_a_daemon)",
        ],
        &[],
    );
    let outcomes = nextest_outcomes(&n);
    assert_eq!(
        outcomes.get("ignored_passes").map(String::as_str),
        Some("PASS"),
        "{}",
        n.dump()
    );
    assert_eq!(
        outcomes.get("ignored_fails").map(String::as_str),
        Some("FAIL"),
        "{}",
        n.dump()
    );
    assert_eq!(outcomes.len(), 2, "{}", n.dump());

    let n = nextest(&["--no-fail-fast", "module"], &[]);
    assert_eq!(
        nextest_outcomes(&n).keys().collect::<Vec<_>>(),
        ["module::in_a_module"]
    );
    assert_eq!(n.code, Some(0), "{}", n.dump());
}

#[test]
fn partitions_run_every_test_exactly_once() {
    let all: Vec<String> = nextest_outcomes(&nextest(&["--no-fail-fast"], &[]))
        .into_keys()
        .collect();
    for scheme in ["count", "hash"] {
        let mut seen = Vec::new();
        for part in ["1/2", "2/2"] {
            let partition = format!("{scheme}:{part}");
            let n = nextest(&["--no-fail-fast", "--partition", &partition], &[]);
            seen.extend(nextest_outcomes(&n).into_keys());
        }
        seen.sort();
        assert_eq!(seen, all, "{scheme}: every test once across the partitions");
    }
}

#[test]
fn an_archive_runs_on_a_copy_of_the_crate() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("fixture.tar.zst");
    let manifest = manifest();
    let a = cargo(
        &[
            "nextest",
            "archive",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--archive-file",
            archive.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(a.code, Some(0), "{}", a.dump());
    // A copy of the sources elsewhere, as on another CI machine.
    let copy = dir.path().join("checkout");
    let source = manifest.parent().unwrap();
    let status = std::process::Command::new("cp")
        .args(["-r", source.to_str().unwrap(), copy.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let n = cargo(
        &[
            "nextest",
            "run",
            "--no-fail-fast",
            "--archive-file",
            archive.to_str().unwrap(),
            "--workspace-remap",
            copy.to_str().unwrap(),
        ],
        &[],
    );
    let outcomes = nextest_outcomes(&n);
    assert_eq!(
        outcomes.get("binds_port_80").map(String::as_str),
        Some("PASS"),
        "{}",
        n.dump()
    );
    assert_eq!(
        outcomes.get("fails").map(String::as_str),
        Some("FAIL"),
        "{}",
        n.dump()
    );
    assert_eq!(outcomes.len(), 8, "{}", n.dump());
}

#[test]
fn nextest_terminate_after_leaves_nothing_behind() {
    let marker = format!("nstest-nextest-marker-{}", std::process::id());
    let n = nextest(
        &[
            "--profile",
            "terminate",
            "--run-ignored",
            "only",
            "-E",
            "test(sleeps_with_a_daemon)",
        ],
        &[("NSTEST_MARKER", marker.clone())],
    );
    assert_eq!(
        nextest_outcomes(&n)
            .get("sleeps_with_a_daemon")
            .map(String::as_str),
        Some("TIMEOUT"),
        "{}",
        n.dump()
    );
    let start = std::time::Instant::now();
    while !processes_with(&marker).is_empty() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(processes_with(&marker), Vec::<String>::new());
}

#[test]
fn nextest_retries_rerun_a_flaky_test() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [("FLAKY_DIR", dir.path().to_str().unwrap().to_owned())];
    let n = nextest(&["--retries", "1", "-E", "test(flaky)"], &envs);
    assert_eq!(n.code, Some(0), "{}", n.dump());
    assert!(n.stderr.contains("1 flaky"), "{}", n.dump());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("runs")).unwrap(),
        "xx"
    );
}

#[test]
fn rust_analyzers_run_test_command_runs_exactly_that_test() {
    let manifest = manifest();
    let t = cargo(
        &[
            "test",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--package",
            "nextest-fixture",
            "--test",
            "hermetic",
            "--",
            "binds_port_80",
            "--exact",
            "--nocapture",
        ],
        &[],
    );
    assert_eq!(t.code, Some(0), "{}", t.dump());
    assert_eq!(
        t.outcomes().keys().collect::<Vec<_>>(),
        ["binds_port_80"],
        "{}",
        t.dump()
    );
    assert!(
        t.summary().starts_with(
            "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 10 filtered out"
        ),
        "{}",
        t.dump()
    );
}
