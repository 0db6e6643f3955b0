//! A host that blocks user namespaces: the cause and its fix are printed once, before
//! the tests, and each test fails pointing at it. The block is made with unshare(1): in a
//! user namespace of our own, `user.max_user_namespaces` is set to 0, so nstest's own
//! unshare(CLONE_NEWUSER) fails with ENOSPC there.

mod support;

use support::run;

/// Runs `bin` with `args` and `envs` inside a user namespace of our own (unshare(1)) in
/// which the sysctl `user.<limit>` is 0, so that one kind of namespace cannot be created.
/// The program and its arguments reach the shell as positional parameters, never spliced
/// into the script: a checkout whose path holds a space must work too.
fn with_limit_zero(limit: &str, bin: &str, args: &[&str], envs: &str) -> support::Run {
    let script = format!("echo 0 > /proc/sys/user/{limit} && {envs} exec \"$@\"");
    let mut argv = vec!["--user", "--map-root-user", "sh", "-c", &script, "sh", bin];
    argv.extend_from_slice(args);
    run("unshare", &argv, &[])
}

/// The diagnosis `text` is on stderr exactly once.
fn assert_diagnosed_once(r: &support::Run, text: &str) {
    assert_eq!(r.stderr.matches(text).count(), 1, "{}", r.dump());
}

#[test]
fn blocked_user_namespaces_are_diagnosed_once_with_the_fix() {
    let bin = env!("CARGO_BIN_EXE_fixture_outcomes");
    // Two tests, so that the host is probed before them (a single test skips the probe).
    let r = with_limit_zero("max_user_namespaces", bin, &["returns_"], "");
    assert_eq!(r.code, Some(101), "{}", r.dump());
    assert_diagnosed_once(
        &r,
        "cause: user namespaces are disabled (user.max_user_namespaces = 0)",
    );
    assert!(
        r.stderr
            .contains("  fix:   sudo sysctl -w user.max_user_namespaces=15000"),
        "{}",
        r.dump()
    );
    assert_eq!(
        r.failure("returns_ok"),
        "nstest: this host cannot create user namespaces: unshare(CLONE_NEWUSER): No space \
         left on device (ENOSPC)\n  (cause and fix: see the diagnosis printed before the tests ran)"
    );
}

#[test]
fn a_setup_failure_only_one_test_hits_carries_its_own_diagnosis() {
    // A negative boottime offset larger than the time since boot: ERANGE for that test only.
    let bin = env!("CARGO_BIN_EXE_fixture_offsets");
    let r = run(bin, &[], &[]);
    assert_eq!(r.code, Some(101), "{}", r.dump());
    assert_eq!(
        r.outcomes().get("fine").map(String::as_str),
        Some("ok"),
        "{}",
        r.dump()
    );
    let text = r.failure("before_boot");
    assert!(
        text.starts_with("nstest: cannot build the test sandbox: write /proc/self/timens_offsets"),
        "{text}"
    );
    assert!(text.contains("(ERANGE)"), "{text}");
    assert!(
        text.contains("cause: the clock offset puts CLOCK_MONOTONIC or CLOCK_BOOTTIME below zero"),
        "{text}"
    );
}

/// Runs `fixture_kinds` in a user namespace of our own where `user.max_time_namespaces` is
/// 0, so that only time namespaces are unavailable.
fn without_time_namespaces(unsupported: &str) -> support::Run {
    let bin = env!("CARGO_BIN_EXE_fixture_kinds");
    with_limit_zero(
        "max_time_namespaces",
        bin,
        &[],
        &format!("NSTEST_UNSUPPORTED={unsupported}"),
    )
}

const TIME_DIAGNOSIS: &str = "nstest: cannot build the test sandbox: \
    unshare(CLONE_NEWUSER|CLONE_NEWTIME): No space left on device (ENOSPC)\n  \
    cause: namespace creation is disabled by user.max_time_namespaces = 0\n  \
    fix:   sudo sysctl -w user.max_time_namespaces=15000\n";

#[test]
fn a_missing_kind_fails_only_the_tests_that_need_it() {
    let r = without_time_namespaces("fail");
    assert_eq!(r.code, Some(101), "{}", r.dump());
    assert_diagnosed_once(&r, TIME_DIAGNOSIS);
    assert!(r.stderr.starts_with(
        "nstest: this host cannot create time namespaces; the tests that need them will fail \
         (NSTEST_UNSUPPORTED=skip skips them instead).\n"
    ));
    let outcomes = r.outcomes();
    for name in [
        "needs_net",
        "needs_mount",
        "needs_uts",
        "needs_ipc",
        "needs_pid",
    ] {
        assert_eq!(
            outcomes.get(name).map(String::as_str),
            Some("ok"),
            "{}",
            r.dump()
        );
    }
    for name in ["needs_time", "needs_time_and_the_full_set"] {
        assert_eq!(
            outcomes.get(name).map(String::as_str),
            Some("FAILED"),
            "{}",
            r.dump()
        );
        assert_eq!(
            r.failure(name),
            "nstest: this host cannot create time namespaces: \
             unshare(CLONE_NEWUSER|CLONE_NEWTIME): No space left on device (ENOSPC)\n  \
             (cause and fix: see the diagnosis printed before the tests ran)"
        );
    }
}

#[test]
fn nstest_unsupported_skip_reports_them_as_ignored_with_the_reason() {
    let r = without_time_namespaces("skip");
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_diagnosed_once(&r, TIME_DIAGNOSIS);
    assert_skipped(
        &r,
        &["needs_time", "needs_time_and_the_full_set"],
        "time",
        5,
    );
}

/// `names` are reported as ignored for lack of `kind` namespaces, the other `passed` tests
/// passed, and the note after the summary counts the skips.
fn assert_skipped(r: &support::Run, names: &[&str], kind: &str, passed: usize) {
    // libtest's words for an ignored test with a reason: `ignored, <reason>`.
    let reason = format!("ignored, needs {kind} namespaces, which this host cannot create");
    let outcomes = r.outcomes();
    for name in names {
        assert_eq!(outcomes.get(*name), Some(&reason), "{name}: {}", r.dump());
    }
    let summary = format!(
        "test result: ok. {passed} passed; 0 failed; {} ignored",
        names.len()
    );
    assert!(r.summary().starts_with(&summary), "{}", r.dump());
    let note = format!(
        "nstest: skipped {} tests that need {kind} namespaces, which this host cannot create \
         (NSTEST_UNSUPPORTED=skip)\n",
        names.len()
    );
    assert!(r.stderr.ends_with(&note), "{}", r.dump());
}

#[test]
fn a_bad_nstest_unsupported_is_refused() {
    let r = run(
        env!("CARGO_BIN_EXE_fixture_kinds"),
        &[],
        &[("NSTEST_UNSUPPORTED", "maybe".to_owned())],
    );
    assert_eq!(r.code, Some(101));
    assert_eq!(
        r.stderr,
        "nstest: NSTEST_UNSUPPORTED=\"maybe\" is not understood; use `fail` (the default) or `skip`\n"
    );
}

#[test]
fn doctor_reports_every_kind_and_the_fix_for_what_is_missing() {
    let doctor = env!("CARGO_BIN_EXE_fixture_doctor");
    let r = run(doctor, &[], &[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    for line in [
        "  user namespaces                    ok\n",
        "  network namespaces                 ok\n",
        "  a fresh /proc in a PID namespace   ok\n",
        "  time namespaces                    ok\n",
        "\nEverything works: nstest tests can run here, as this user.\n",
    ] {
        assert!(r.stdout.contains(line), "{line:?} missing:\n{}", r.dump());
    }
    assert!(r.stdout.contains("  kernel "), "{}", r.dump());

    let r = with_limit_zero("max_time_namespaces", doctor, &[], "");
    assert_eq!(r.code, Some(1), "{}", r.dump());
    assert!(
        r.stdout
            .contains("  network namespaces                 ok\n"),
        "{}",
        r.dump()
    );
    assert!(r.stdout.contains(
        "  time namespaces                    MISSING\n    nstest: cannot build the test sandbox: \
         unshare(CLONE_NEWUSER|CLONE_NEWTIME): No space left on device (ENOSPC)\n      \
         cause: namespace creation is disabled by user.max_time_namespaces = 0\n      \
         fix:   sudo sysctl -w user.max_time_namespaces=15000\n"
    ), "{}", r.dump());
    assert!(
        r.stdout
            .contains("  user.max_time_namespaces                       0\n")
    );
}

#[test]
fn without_user_namespaces_skip_mode_skips_every_test_and_says_why() {
    let bin = env!("CARGO_BIN_EXE_fixture_kinds");
    let r = with_limit_zero("max_user_namespaces", bin, &[], "NSTEST_UNSUPPORTED=skip");
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_diagnosed_once(
        &r,
        "cause: user namespaces are disabled (user.max_user_namespaces = 0)",
    );
    let all: Vec<String> = r.outcomes().into_keys().collect();
    assert_eq!(all.len(), 7, "{}", r.dump());
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_skipped(&r, &names, "user", 0);
}

#[test]
fn a_single_test_is_not_probed_for_and_carries_the_whole_diagnosis() {
    // As under nextest: one test per process, so one sandbox, not a probe and a sandbox.
    let bin = env!("CARGO_BIN_EXE_fixture_outcomes");
    let r = with_limit_zero("max_user_namespaces", bin, &["--exact", "returns_ok"], "");
    assert_eq!(r.code, Some(101), "{}", r.dump());
    assert!(
        !r.stderr.contains("nstest: this host cannot create"),
        "{}",
        r.dump()
    );
    assert_eq!(
        r.failure("returns_ok"),
        "nstest: cannot build the test sandbox: clone(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID|\
         CLONE_NEWCGROUP): No space left on device (ENOSPC)\n  \
         cause: user namespaces are disabled (user.max_user_namespaces = 0)\n  \
         fix:   sudo sysctl -w user.max_user_namespaces=15000"
    );
}
