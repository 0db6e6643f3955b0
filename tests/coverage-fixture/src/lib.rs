//! Functions that each exactly one place calls, so that the coverage report tells who ran:
//! the end-to-end test (tests/tests/coverage.rs in the nstest workspace) reads the count
//! of each function from `cargo llvm-cov --json`.

/// Called once by `main`, before the fork server and the tests: must count 1, however
/// many test processes are forked after it.
pub fn before_the_tests() -> u64 {
    std::hint::black_box(1)
}

/// Called by a passing sync test in a user namespace only.
pub fn by_sync_user_test() -> u64 {
    std::hint::black_box(2)
}

/// Called by a failing (panicking) sync test with a network namespace.
pub fn by_failing_net_test() -> u64 {
    std::hint::black_box(3)
}

/// Called by a passing sync test in the full set, with a PID namespace (the test is PID 2
/// under an init).
pub fn by_pid_test() -> u64 {
    std::hint::black_box(4)
}

/// Called by a sync test with a PID namespace that returns `Err`.
pub fn by_failing_pid_test() -> u64 {
    std::hint::black_box(5)
}

/// Called by a passing async test (current-thread runtime) with a network namespace.
pub fn by_async_test() -> u64 {
    std::hint::black_box(6)
}

/// Called by a failing async test on a multi-thread runtime in the full set, with a PID
/// namespace.
pub fn by_failing_async_pid_test() -> u64 {
    std::hint::black_box(7)
}

/// Called by a `#[should_panic]` test with a mount namespace.
pub fn by_should_panic_mount_test() -> u64 {
    std::hint::black_box(8)
}

/// Called three times by one test: the count is exact, not just nonzero.
pub fn three_times_by_one_test() -> u64 {
    std::hint::black_box(9)
}

/// Called by the program `spawned`, which a test with a PID and a mount namespace runs.
pub fn in_a_spawned_program() -> u64 {
    std::hint::black_box(10)
}

/// Called by nothing: must count 0.
pub fn never_called() -> u64 {
    std::hint::black_box(11)
}
