//! The test's own wall clock: what `SystemTime::now()` reads inside an `#[ns_test]`.
//!
//! `#[ns_test(wall = "+30d")]` starts it shifted from the true clock, and
//! `#[ns_test(wall = "2038-01-19T03:14:00Z")]` starts it at an instant; from there it runs
//! at the true rate. [`advance`] and [`set`] make it jump mid-test, as an NTP step would:
//! at once, for every thread of the test process.
//!
//! ```no_run
//! use std::time::{Duration, SystemTime};
//! use nstest::ns_test;
//!
//! #[ns_test(wall = "2038-01-19T03:14:00Z")]
//! fn a_session_expires_after_an_hour() {
//!     let issued = SystemTime::now();
//!     nstest::wall::advance(Duration::from_secs(3601));
//!     assert!(issued.elapsed().unwrap() > Duration::from_secs(3600));
//! }
//! # nstest::main!();
//! ```
//!
//! Who sees it: every thread of the test process, through `SystemTime::now()` and the C
//! library's `clock_gettime` (CLOCK_REALTIME, CLOCK_REALTIME_COARSE, CLOCK_REALTIME_ALARM
//! and CLOCK_TAI), `gettimeofday`, `time` and `timespec_get`, so every crate that reads the
//! clock through them too (chrono, time, rustls); and the dynamically linked programs the
//! test starts (`Command::new("date")`), with the offset the test's clock had when each
//! started.
//!
//! Who does not: CLOCK_MONOTONIC and `Instant` (that is `time = "..."`, and the two
//! combine), the host, other tests and tests without the option; statically linked
//! programs (a Go binary, a static musl build) and raw `syscall(SYS_clock_gettime)`, which
//! no library function stands between; set-user-ID programs and programs started with a
//! cleared environment (`env_clear()`), for which the dynamic linker loads no preload
//! library. Kernel timers against CLOCK_REALTIME (`timerfd`, `pthread_cond_timedwait` in C
//! code) fire by the true clock. The runner's timings, `--report-time` and a failing
//! test's report are made outside the test process, by the true clock.
//!
//! Only on Linux with the GNU C library, 64-bit; elsewhere a test with `wall` fails its
//! setup saying so.

use std::time::{Duration, SystemTime};

/// Moves the test's wall clock forward by `by`, at once, for every thread of the test and
/// for the programs it starts from now on. Works in any `#[ns_test]`, with or without a
/// `wall` option.
///
/// ```no_run
/// # use std::time::{Duration, SystemTime};
/// #[nstest::ns_test]
/// fn a_token_expires() {
///     let issued = SystemTime::now();
///     nstest::wall::advance(Duration::from_secs(24 * 3600));
///     assert!(SystemTime::now().duration_since(issued).unwrap() >= Duration::from_secs(86_400));
/// }
/// # nstest::main!();
/// ```
///
/// # Panics
///
/// Outside a test's own process (in `main`, the runner, a plain `#[test]`), where there is
/// no wall clock of a test to move; when the clock would end up more than about 292 years
/// from the true one; and where the wall clock cannot be shifted (not Linux with glibc).
pub fn advance(by: Duration) {
    let offset = moving("advance");
    let offset =
        imp::offset_after(offset, by).unwrap_or_else(|why| panic!("nstest::wall::advance: {why}"));
    imp::move_to(offset);
}

/// Sets the test's wall clock to `to`, at once, for every thread of the test and for the
/// programs it starts from now on; it runs on from there at the true rate. Works in any
/// `#[ns_test]`, as [`advance`].
///
/// ```no_run
/// # use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// #[nstest::ns_test]
/// fn survives_2038() {
///     nstest::wall::set(UNIX_EPOCH + Duration::from_secs(i32::MAX as u64));
///     assert!(SystemTime::now() >= UNIX_EPOCH + Duration::from_secs(i32::MAX as u64));
/// }
/// # nstest::main!();
/// ```
///
/// # Panics
///
/// Outside a test's own process; when `to` is more than about 292 years from the true
/// clock; and where the wall clock cannot be shifted (not Linux with glibc).
pub fn set(to: SystemTime) {
    moving("set");
    let offset = imp::offset_to(to).unwrap_or_else(|why| panic!("nstest::wall::set: {why}"));
    imp::move_to(offset);
}

/// Checks that the caller is a test's process and returns the clock's current offset.
fn moving(function: &str) -> i64 {
    if !imp::in_test() {
        panic!(
            "nstest::wall::{function} was called outside a test: only an #[ns_test] has a wall \
             clock of its own to move, in the process nstest runs it in\n  fix: call it from \
             a function marked #[ns_test] (and give it `wall = \"...\"` to start shifted)"
        );
    }
    imp::prepare_jump()
}

#[cfg(nstest_wall)]
mod imp {
    pub(super) use crate::sandbox::wall::{move_to, offset_after, offset_to};

    pub(super) fn in_test() -> bool {
        crate::process::running_test().is_some()
    }

    /// Makes programs the test starts follow the jump, and returns the current offset.
    pub(super) fn prepare_jump() -> i64 {
        if let Err(error) = crate::sandbox::wall::let_children_follow() {
            panic!(
                "nstest::wall: could not prepare the programs this test starts to follow \
                 the clock: {error}"
            );
        }
        crate::sandbox::wall::offset_ns()
    }
}

#[cfg(not(nstest_wall))]
mod imp {
    use std::time::{Duration, SystemTime};

    pub(super) fn in_test() -> bool {
        true
    }

    pub(super) fn prepare_jump() -> i64 {
        panic!(
            "nstest::wall: the wall clock of a test can only be shifted on Linux with the GNU C \
             library, 64-bit"
        )
    }

    pub(super) fn offset_after(_: i64, _: Duration) -> Result<i64, String> {
        unreachable!("prepare_jump panics first")
    }

    pub(super) fn offset_to(_: SystemTime) -> Result<i64, String> {
        unreachable!("prepare_jump panics first")
    }

    pub(super) fn move_to(_: i64) {}
}
