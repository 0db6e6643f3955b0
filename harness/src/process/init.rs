//! Runs in: a PID namespace's init, PID 1, cloned by the slot (or by the runner of one
//! test, see `direct`) straight into the test's new user, PID and other namespaces. Builds
//! the sandbox, forks the test as PID 2, reaps, kills the rest of the namespace when the
//! test ends, and writes the exit frame, with the cgroup limits it read from its slot's
//! counters: straight to the runner, or to its slot when the slot watches the test's CPU
//! time.
//!
//! pid_namespaces(7): PID 1 ignores every signal it has no handler for, so a test running
//! as PID 1 that calls `abort()` would not die by SIGABRT, and when PID 1 exits the kernel
//! kills every other process of the namespace. So the test never runs as PID 1. A PID
//! namespace applies only to the children of the process that creates it, which is why
//! the slot creates it with `clone(2)` rather than the sandbox with `unshare(2)`: the child
//! is then init, and no third process is needed. A time namespace applies to children
//! too, so init creates it and the test enters it when init forks it.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::unistd::{ForkResult, Gid, Uid};

use super::{never_started, reap, set_death_signal, test_process, write_all};
use crate::error::{Error, Result};
use crate::registry::Test;
use crate::sandbox;
use crate::sandbox::leaf::LimitWatch;
use crate::sys;
use crate::wire::{ExitFrame, Termination};

/// Init's life: `uid`/`gid` are its parent's ids, read before the clone (inside a new
/// user namespace they read as the overflow id until the maps are written). `frame` is
/// the runner's exit pipe (or the slot's pipe, see `slot::start_init`), where init tells
/// how the test ended and how many processes it left, and then exits with status 0 (with
/// any other status its parent writes the frame). With `timeout` init kills the namespace when the test runs longer (the runner,
/// unlike a slot, does not watch the clock); a slot passes `None` and keeps the clock.
pub(super) fn run(
    test: &'static Test,
    report: OwnedFd,
    output: Option<OwnedFd>,
    frame: OwnedFd,
    (uid, gid): (Uid, Gid),
    timeout: Option<Duration>,
    watch: LimitWatch<'_>,
) -> ! {
    let deadline = timeout.map(|after| Instant::now() + after);
    let started = (|| -> Result<ForkResult> {
        set_death_signal()?;
        sandbox::enter_as_init(&test.plan, uid, gid)?;
        sys::fork().map_err(|source| Error::Fork {
            what: "test process",
            source,
        })
    })();
    let test_pid = match started {
        Ok(ForkResult::Child) => {
            drop(frame);
            test_process::run(test, report, output, false)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(error) => {
            never_started(&error, &report, &frame);
            sys::exit_now(0);
        }
    };
    // The report and output pipes stay open here until the frame is written, so that the
    // runner wakes for the frame alone (see `slot::Started`).
    let end = match reap::reap_until_deadline(test_pid, deadline) {
        Some(end) => Some(end),
        // The deadline passed: the kill below takes the test with the rest.
        None if deadline.is_some() => Some(Termination::TimedOut),
        None => None,
    };
    if let Some(end) = end {
        let leaked = reap::kill_and_reap_leftovers(reap::kill_namespace);
        // After a timeout everything was killed, as the failure says: no count, as when a
        // slot kills init at the deadline.
        let leaked = match end {
            Termination::TimedOut => 0,
            _ => leaked,
        };
        // Which cgroup limits were reached, from the slot's counters; whether the CPU
        // time limit was is added by a slot that watches it, which gives init a pipe of
        // its own as `frame`.
        let frame_data = ExitFrame {
            test: end,
            leaked,
            limits: watch.hits(),
        };
        let _ = write_all(&frame, &frame_data.encode());
        drop((report, output));
        // Status 0 says the frame was written: the parent writes none of its own.
        sys::exit_now(0)
    }
    sys::exit_now(1)
}
