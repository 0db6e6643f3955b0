//! The runner as a user meets it: what `fixture_outcomes` prints for each kind of
//! result, and every libtest flag the issue lists.

mod support;

use support::run;

const BIN: &str = env!("CARGO_BIN_EXE_fixture_outcomes");

#[test]
fn every_outcome_is_printed_like_libtest_and_the_run_exits_101() {
    let r = run(BIN, &[], &[]);
    assert_eq!(r.code, Some(101), "{}", r.dump());
    let outcomes = r.outcomes();
    let expect = [
        ("passes", "ok"),
        ("returns_ok", "ok"),
        ("should_panic_and_does", "ok"),
        ("should_panic_with_message_and_does", "ok"),
        ("nested::in_a_module", "ok"),
        ("fails_with_panic", "FAILED"),
        ("returns_err", "FAILED"),
        ("should_panic_with_other_message", "FAILED"),
        ("should_panic_but_passes", "FAILED"),
        ("segfaults", "FAILED"),
        ("aborts", "FAILED"),
        ("exits_early", "FAILED"),
        ("prints_from_c_and_children", "FAILED"),
        ("ignored_test", "ignored"),
        ("ignored_with_reason", "ignored, needs a reason"),
    ];
    for (name, outcome) in expect {
        assert_eq!(
            outcomes.get(name).map(String::as_str),
            Some(outcome),
            "{name}\n{}",
            r.dump()
        );
    }
    assert_eq!(outcomes.len(), expect.len(), "{}", r.dump());
    assert_eq!(
        r.summary().split(';').take(3).collect::<Vec<_>>(),
        ["test result: FAILED. 5 passed", " 8 failed", " 2 ignored"]
    );
    assert!(r.stdout.starts_with("\nrunning 15 tests\n"), "{}", r.dump());
    let listed = format!("\n{}", r.stdout.rsplit("\nfailures:\n").next().unwrap());
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("    ")).count(),
        8,
        "{}",
        r.dump()
    );
    assert!(listed.contains("\n    aborts\n"), "{}", r.dump());
}

#[test]
fn a_panic_shows_its_output_message_and_location() {
    let r = run(BIN, &["fails_with_panic"], &[]);
    assert_eq!(
        r.failure("fails_with_panic"),
        "printed before the panic\n\n\
         thread 'fails_with_panic' (2) panicked at tests/fixtures/outcomes.rs:13:5:\n\
         assertion `left == right` failed: arithmetic is broken\n  left: 2\n right: 3\n\
         note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
            .replace("(2)", &thread_id(&r.stdout, "fails_with_panic"))
    );
}

/// The `(N)` after the thread name that newer Rust prints; it depends on the toolchain.
fn thread_id(stdout: &str, name: &str) -> String {
    let prefix = format!("thread '{name}' ");
    let at = stdout.find(&prefix).expect("panic message") + prefix.len();
    let rest = &stdout[at..];
    if rest.starts_with('(') {
        rest[..=rest.find(')').unwrap()].to_owned()
    } else {
        String::new()
    }
    .replace("( ", "(")
}

#[test]
fn an_err_return_prints_the_debug_text() {
    let r = run(BIN, &["returns_err"], &[]);
    assert_eq!(
        r.failure("returns_err"),
        "Error: \"the service did not start\""
    );
}

#[test]
fn should_panic_mismatches_say_what_was_expected() {
    let r = run(BIN, &["should_panic_"], &[]);
    assert_eq!(
        r.failure("should_panic_but_passes"),
        "note: test did not panic as expected at tests/fixtures/outcomes.rs:46:4"
    );
    assert!(r.failure("should_panic_with_other_message").ends_with(
        "note: panic did not contain expected string\n      \
         panic message: \"a different failure\"\n expected substring: \"specific\""
    ));
}

#[test]
fn a_silent_death_is_named_by_signal_or_exit_status() {
    let r = run(BIN, &["segfaults"], &[]);
    assert_eq!(
        r.failure("segfaults"),
        "nstest: the test process was killed by SIGSEGV (signal 11) before reporting a result"
    );
    let r = run(BIN, &["aborts"], &[]);
    assert_eq!(
        r.failure("aborts"),
        "nstest: the test process was killed by SIGABRT (signal 6) before reporting a result"
    );
    let r = run(BIN, &["exits_early"], &[]);
    assert_eq!(
        r.failure("exits_early"),
        "nstest: the test process exited with status 3 without reporting a result"
    );
}

#[test]
fn output_is_captured_at_the_fd_level_from_every_source() {
    let r = run(BIN, &["prints_from_c_and_children"], &[]);
    let text = r.failure("prints_from_c_and_children");
    for line in [
        "raw write to fd 1",
        "from a child process",
        "to stderr",
        "from a spawned thread",
        "show the output",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    // Captured output is not printed for passing tests.
    let r = run(BIN, &["--exact", "passes"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(
        !r.stdout.contains("output of a passing test"),
        "{}",
        r.dump()
    );
    assert!(
        !r.stderr.contains("output of a passing test"),
        "{}",
        r.dump()
    );
}

#[test]
fn nocapture_streams_output_live() {
    let r = run(BIN, &["--nocapture", "--exact", "passes"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(
        r.stdout.contains("output of a passing test\n"),
        "{}",
        r.dump()
    );
    let r = run(
        BIN,
        &["--nocapture", "--exact", "prints_from_c_and_children"],
        &[],
    );
    assert!(r.stdout.contains("from a child process"), "{}", r.dump());
    assert!(r.stderr.contains("to stderr"), "{}", r.dump());
    // Live output is not repeated: as with libtest, a panic printed live leaves the
    // failures section with only the test's name.
    assert!(r.stderr.contains("show the output"), "{}", r.dump());
    assert!(
        !r.stdout
            .contains("---- prints_from_c_and_children stdout ----"),
        "{}",
        r.dump()
    );
    assert!(
        r.stdout
            .contains("\nfailures:\n    prints_from_c_and_children\n"),
        "{}",
        r.dump()
    );
}

#[test]
fn filters_exact_and_skip_select_tests_like_libtest() {
    let r = run(BIN, &["should_panic"], &[]);
    assert_eq!(r.outcomes().len(), 4, "{}", r.dump());
    assert!(
        r.summary()
            .ends_with(&format!("11 filtered out; {}", finished(&r))),
        "{}",
        r.dump()
    );
    let r = run(BIN, &["--exact", "passes"], &[]);
    assert_eq!(
        r.outcomes().keys().collect::<Vec<_>>(),
        ["passes"],
        "{}",
        r.dump()
    );
    let r = run(BIN, &["--exact", "in_a_module"], &[]);
    assert!(
        r.outcomes().is_empty(),
        "--exact needs the full path: {}",
        r.dump()
    );
    let r = run(BIN, &["--exact", "nested::in_a_module"], &[]);
    assert_eq!(
        r.outcomes().keys().collect::<Vec<_>>(),
        ["nested::in_a_module"]
    );
    let r = run(BIN, &["--skip", "s", "--skip", "e"], &[]);
    let names: Vec<_> = r.outcomes().into_keys().collect();
    assert!(
        names.iter().all(|n| !n.contains('s') && !n.contains('e')),
        "{names:?}"
    );
}

fn finished(r: &support::Run) -> String {
    r.summary().rsplit("; ").next().unwrap().to_owned()
}

#[test]
fn ignored_tests_run_only_when_asked() {
    let r = run(BIN, &["--ignored"], &[]);
    assert_eq!(
        r.outcomes().get("ignored_test").map(String::as_str),
        Some("FAILED")
    );
    assert_eq!(
        r.outcomes().get("ignored_with_reason").map(String::as_str),
        Some("ok")
    );
    assert_eq!(r.outcomes().len(), 2, "{}", r.dump());
    let r = run(BIN, &["--include-ignored", "ignored"], &[]);
    assert_eq!(r.outcomes().len(), 2, "{}", r.dump());
    assert!(
        r.failure("ignored_test")
            .contains("ignored tests only run with --ignored")
    );
}

#[test]
fn list_prints_every_test_and_starts_no_sandbox() {
    let r = run(BIN, &["--list"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(
        r.stdout.contains("nested::in_a_module: test\n"),
        "{}",
        r.dump()
    );
    assert!(
        r.stdout.contains("\n15 tests, 0 benchmarks\n"),
        "{}",
        r.dump()
    );
    let r = run(BIN, &["--list", "--format", "terse"], &[]);
    let lines: Vec<_> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 15, "{}", r.dump());
    assert!(lines.iter().all(|l| l.ends_with(": test")), "{}", r.dump());
    let r = run(BIN, &["--list", "--ignored"], &[]);
    assert_eq!(
        r.stdout.lines().filter(|l| l.ends_with(": test")).count(),
        2
    );
}

#[test]
fn quiet_color_and_threads_are_honoured() {
    let r = run(BIN, &["-q", "should_panic_and"], &[]);
    assert!(
        r.stdout.contains("\n.\n") || r.stdout.contains("\n. 1/1\n"),
        "{}",
        r.dump()
    );
    assert!(
        !r.stdout.contains("test should_panic_and_does ... ok"),
        "{}",
        r.dump()
    );
    // Colours come from the terminal's terminfo entry, as libtest's do: none without one.
    let xterm = [("TERM", "xterm".to_owned())];
    let r = run(BIN, &["--color", "always", "--exact", "passes"], &xterm);
    assert!(r.stdout.contains("\u{1b}["), "{}", r.dump());
    let no_terminal = [("TERM", String::new())];
    let r = run(
        BIN,
        &["--color", "always", "--exact", "passes"],
        &no_terminal,
    );
    assert!(!r.stdout.contains("\u{1b}["), "{}", r.dump());
    let r = run(BIN, &["--color", "never", "--exact", "passes"], &[]);
    assert!(!r.stdout.contains("\u{1b}["), "{}", r.dump());
    for threads in ["1", "4"] {
        let r = run(BIN, &["--test-threads", threads], &[]);
        assert_eq!(r.code, Some(101), "{}", r.dump());
        assert_eq!(r.outcomes().len(), 15, "{}", r.dump());
    }
}

#[test]
fn show_output_prints_the_output_of_passing_tests() {
    let r = run(BIN, &["--exact", "passes", "--show-output"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    // As libtest prints it: the successes block, then the summary.
    let summary = r.stdout.find("\ntest result: ok.").expect("summary");
    assert!(r.stdout[..summary].ends_with(
        "\nsuccesses:\n\n---- passes stdout ----\noutput of a passing test\n\n\nsuccesses:\n    passes\n"
    ), "{}", r.dump());
}

#[test]
fn unstable_flags_need_z_unstable_options_where_libtest_needs_it() {
    // A stable toolchain's libtest refuses them, and refuses `-Z` itself unless
    // RUSTC_BOOTSTRAP is set: same words, same exit code.
    let r = run(BIN, &["--report-time", "--exact", "passes"], &[]);
    assert_eq!(r.code, Some(101), "{}", r.dump());
    assert_eq!(
        r.stderr,
        "error: The \"report-time\" flag is only accepted on the nightly compiler with -Z unstable-options\n"
    );
    assert_eq!(r.stdout, "");
    let r = run(BIN, &["-Z", "unstable-options", "--shuffle"], &[]);
    assert_eq!(r.code, Some(101), "{}", r.dump());
    assert_eq!(
        r.stderr,
        "error: the option `Z` is only accepted on the nightly compiler\n"
    );
    let r = run(
        BIN,
        &[
            "--report-time",
            "--shuffle",
            "--shuffle-seed",
            "7",
            "--ensure-time",
            "-Z",
            "unstable-options",
            "--exact",
            "passes",
        ],
        &[("RUSTC_BOOTSTRAP", "1".into())],
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(
        r.stdout
            .starts_with("\nrunning 1 test (shuffle seed: 7)\ntest passes ... ok <"),
        "{}",
        r.dump()
    );
}

#[test]
fn json_output_is_one_libtest_event_per_line() {
    let r = run(
        BIN,
        &["-Z", "unstable-options", "--format", "json", "should_panic"],
        &[("RUSTC_BOOTSTRAP", "1".into())],
    );
    assert_eq!(r.code, Some(101), "{}", r.dump());
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(events[0]["type"], "suite");
    assert_eq!(events[0]["event"], "started");
    assert_eq!(events[0]["test_count"], 4);
    let result = |name: &str| {
        events
            .iter()
            .find(|e| e["type"] == "test" && e["name"] == name && e["event"] != "started")
            .unwrap_or_else(|| panic!("no result for {name}"))
            .clone()
    };
    assert_eq!(result("should_panic_and_does")["event"], "ok");
    let failed = result("should_panic_but_passes");
    assert_eq!(failed["event"], "failed");
    // libtest's message, with where the test is written.
    assert_eq!(
        failed["message"],
        "test did not panic as expected at tests/fixtures/outcomes.rs:46:4"
    );
    let last = events.last().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["event"].as_str()),
        (Some("suite"), Some("failed"))
    );
    assert_eq!(
        (last["passed"].as_u64(), last["failed"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn terse_output_is_one_character_per_test() {
    // With one thread the tests run in name order: ok, FAILED, ok, FAILED. As in
    // libtest, a failure ends the line of dots with a count and gets a line of its own.
    let r = run(
        BIN,
        &["--format", "terse", "--test-threads", "1", "should_panic"],
        &[],
    );
    assert!(
        r.stdout.starts_with(
            "\nrunning 4 tests\n. 1/4\nshould_panic_but_passes --- FAILED\n. 3/4\n\
             should_panic_with_other_message --- FAILED\n\nfailures:\n"
        ),
        "{}",
        r.dump()
    );
}

#[test]
fn tests_in_a_binary_that_never_runs_them_fail_the_run_by_name() {
    let r = run(env!("CARGO_BIN_EXE_fixture_unrun"), &[], &[]);
    assert_eq!(r.code, Some(101), "{}", r.dump());
    assert_eq!(r.stdout, "a main of its own\n");
    assert_eq!(
        r.stderr,
        "nstest: the #[ns_test] `also_forgotten` never ran: this binary's `main` does not run \
         its tests; end a `harness = false` target with `nstest::main!()`, or remove \
         `harness = false` so that libtest runs it\n\
         nstest: the #[ns_test] `forgotten` never ran: this binary's `main` does not run its \
         tests; end a `harness = false` target with `nstest::main!()`, or remove \
         `harness = false` so that libtest runs it\n"
    );
}
