//! Tests of every kind nstest runs: sync and async, with and without a PID namespace,
//! passing and failing. Each calls its own function of the library, so the coverage report
//! shows which ran, and how often.
use nstest::ns_test;

use coverage_fixture as lib;

#[ns_test(user)]
fn sync_user_passes() {
    assert_eq!(lib::by_sync_user_test(), 2);
}

#[ns_test(net)]
fn sync_net_fails() {
    lib::by_failing_net_test();
    panic!("fails on purpose, after counting");
}

#[ns_test]
fn full_set_with_pid_passes() {
    lib::by_pid_test();
    assert_eq!(std::process::id(), 2);
}

#[ns_test(pid)]
fn pid_returns_err() -> Result<(), String> {
    lib::by_failing_pid_test();
    Err("fails on purpose, after counting".to_owned())
}

#[ns_test(net)]
async fn async_net_passes() {
    tokio::task::yield_now().await;
    assert_eq!(lib::by_async_test(), 6);
}

#[ns_test(flavor = "multi_thread", worker_threads = 2)]
async fn async_multi_thread_pid_fails() {
    tokio::task::yield_now().await;
    lib::by_failing_async_pid_test();
    panic!("fails on purpose, after counting");
}

#[ns_test(mount)]
#[should_panic(expected = "on purpose")]
fn should_panic_in_mount_passes() {
    lib::by_should_panic_mount_test();
    std::fs::write("/tmp/only-here", "a fresh tmpfs").unwrap();
    panic!("on purpose");
}

#[ns_test(user)]
fn three_calls_pass() {
    for _ in 0..3 {
        lib::three_times_by_one_test();
    }
}

#[ns_test(mount, pid)]
fn spawns_an_instrumented_program() {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_spawned"))
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
}

/// `main` runs code of its own before the tests start: counted once, in the runner.
fn main() {
    lib::before_the_tests();
    nstest::__private::run_main()
}
