//! Waiting for a test's processes and killing what they leave: what the slot and a PID
//! namespace's init both do once their test process ends.
//!
//! Both are subreapers or init (prctl(2) `PR_SET_CHILD_SUBREAPER`, pid_namespaces(7)), so
//! every orphan of the test (a daemon, a double fork) is re-parented to them and shows up
//! in their `waitpid(2)`.

use std::os::fd::AsFd;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::sys;
use crate::wire::Termination;

/// How a process ended, from its wait status; `None` for stop/continue notifications.
pub(crate) fn termination(status: WaitStatus) -> Option<Termination> {
    match status {
        WaitStatus::Exited(_, code) => Some(Termination::Exited(code)),
        WaitStatus::Signaled(_, signal, core_dumped) => Some(Termination::Signaled {
            signal: signal as i32,
            core_dumped,
        }),
        _ => None,
    }
}

/// Reaps children (including orphans re-parented to the caller, which is an init or a
/// subreaper) until `target` ends, and returns how it ended. `None` if the caller has no
/// such child.
pub(crate) fn reap_until(target: Pid) -> Option<Termination> {
    loop {
        let status = sys::retry_on_eintr(|| waitpid(None, None)).ok()?;
        if status.pid() == Some(target) {
            if let Some(end) = termination(status) {
                return Some(end);
            }
        }
    }
}

/// Waits for the child `target` like [`reap_until`], but gives up at `deadline`: `None`
/// then means it is still running. Orphans that end meanwhile stay zombies until the
/// caller reaps the leftovers.
pub(crate) fn reap_until_deadline(target: Pid, deadline: Option<Instant>) -> Option<Termination> {
    let Some(deadline) = deadline else {
        return reap_until(target);
    };
    let Ok(pidfd) = sys::pidfd_open(target) else {
        // No pidfd (kernel before 5.3): wait without a deadline rather than not at all.
        return reap_until(target);
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis().min(u128::from(u16::MAX))).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match sys::retry_on_eintr(|| poll(&mut fds, PollTimeout::from(ms))) {
            Ok(0) if left.is_zero() => return None,
            Ok(0) => {}
            _ => {
                return match sys::retry_on_eintr(|| waitpid(target, None)) {
                    Ok(status) => termination(status).or_else(|| reap_until(target)),
                    Err(_) => None,
                };
            }
        }
    }
}

/// Kills every process still left and reaps them all, returning how many there were.
/// `kill_all` sends SIGKILL to what it can see; it is called again whenever a reaped
/// process had descendants that were re-parented to the caller in the meantime.
pub(crate) fn kill_and_reap_leftovers(mut kill_all: impl FnMut()) -> u32 {
    let mut leaked = 0;
    loop {
        let status = match sys::retry_on_eintr(|| waitpid(None, Some(WaitPidFlag::WNOHANG))) {
            Ok(WaitStatus::StillAlive) => {
                kill_all();
                sys::retry_on_eintr(|| waitpid(None, None))
            }
            other => other,
        };
        match status {
            Ok(status) if termination(status).is_some() => leaked += 1,
            Ok(_) => {}
            // ECHILD: nothing is left.
            Err(_) => return leaked,
        }
    }
}

/// Inside a PID namespace, `kill(-1, SIGKILL)` from init reaches every process of the
/// namespace (and of namespaces nested in it) except init itself (kill(2)).
pub(crate) fn kill_namespace() {
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
}
