//! Runs in: a PID namespace's init, PID 1, cloned by the slot straight into the test's new
//! user, PID and other namespaces. Builds the sandbox, forks the test as PID 2, reaps, and
//! kills the rest of the namespace when the test ends.
//!
//! pid_namespaces(7): PID 1 ignores every signal it has no handler for, so a test running
//! as PID 1 that calls `abort()` would not die by SIGABRT, and when PID 1 exits the kernel
//! kills every other process of the namespace. So the test never runs as PID 1. A PID
//! namespace applies only to the children of the process that creates it, which is why
//! the slot creates it with `clone(2)` rather than the sandbox with `unshare(2)`: the child
//! is then init, and no third process is needed. A time namespace applies to children
//! too, so init creates it and the test enters it when init forks it.

use std::os::fd::OwnedFd;

use nix::unistd::{ForkResult, Gid, Uid};

use super::{reap, send_report, set_death_signal, setup_failed, test_process, write_all};
use crate::error::{Error, Result};
use crate::registry::Test;
use crate::sandbox;
use crate::sys;
use crate::wire::{ExitFrame, LimitsHit};

/// Init's life: `uid`/`gid` are the slot's ids, read before the clone (inside a new user
/// namespace they read as the overflow id until the maps are written). `frame` is where
/// init tells the slot how the test ended and how many processes it left.
pub(super) fn run(
    test: &'static Test,
    report: OwnedFd,
    output: Option<OwnedFd>,
    frame: OwnedFd,
    (uid, gid): (Uid, Gid),
) -> ! {
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
            send_report(&report, &setup_failed(&error));
            sys::exit_now(0);
        }
    };
    drop(report);
    drop(output);
    if let Some(end) = reap::reap_until(test_pid) {
        let leaked = reap::kill_and_reap_leftovers(reap::kill_namespace);
        // The slot, which owns the test's cgroup, adds which limits were reached.
        let frame_data = ExitFrame {
            test: end,
            leaked,
            limits: LimitsHit::default(),
        };
        let _ = write_all(&frame, &frame_data.encode());
    }
    sys::exit_now(0)
}
