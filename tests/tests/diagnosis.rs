//! A host that blocks user namespaces: the cause and its fix are printed once, before
//! the tests, and each test fails pointing at it. The block is made with unshare(1): in a
//! user namespace of our own, `user.max_user_namespaces` is set to 0, so nstest's own
//! unshare(CLONE_NEWUSER) fails with ENOSPC there.

mod support;

use support::run;

#[test]
fn blocked_user_namespaces_are_diagnosed_once_with_the_fix() {
    let bin = env!("CARGO_BIN_EXE_fixture_outcomes");
    let script =
        format!("echo 0 > /proc/sys/user/max_user_namespaces && exec {bin} --exact passes");
    let r = run(
        "unshare",
        &["--user", "--map-root-user", "sh", "-c", &script],
        &[],
    );
    assert_eq!(r.code, Some(101), "{}", r.dump());
    assert_eq!(
        r.stderr
            .matches("cause: user namespaces are disabled (user.max_user_namespaces = 0)")
            .count(),
        1,
        "{}",
        r.dump()
    );
    assert!(
        r.stderr
            .contains("  fix:   sudo sysctl -w user.max_user_namespaces=15000"),
        "{}",
        r.dump()
    );
    assert_eq!(
        r.failure("passes"),
        "nstest: cannot build the test sandbox: unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWNET|\
         CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID): No space left on device (ENOSPC)\n  \
         (cause and fix: see the diagnosis printed before the tests ran)"
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
