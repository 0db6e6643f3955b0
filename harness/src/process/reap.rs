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
    match wait_for(target, Some(deadline), None) {
        Waited::Ended(end) => Some(end),
        Waited::TimedOut | Waited::Interrupted => None,
    }
}

/// How [`wait_for`] ended.
pub(crate) enum Waited {
    /// The target ended so.
    Ended(Termination),
    /// The deadline passed with the target still running.
    TimedOut,
    /// A signal arrived on the caller's signalfd first.
    Interrupted,
}

/// Waits for the child `target` until `deadline`, or until `interrupt` (a signalfd)
/// becomes readable: what [`reap_until_deadline`] does, for a process that must also stop
/// waiting when its runner goes (a lone slot; see `slot::run_alone`). Orphans that end meanwhile
/// stay zombies until the caller reaps the leftovers.
pub(crate) fn wait_for(
    target: Pid,
    deadline: Option<Instant>,
    interrupt: Option<std::os::fd::BorrowedFd<'_>>,
) -> Waited {
    if deadline.is_none() && interrupt.is_none() {
        // Nothing to wake for but the end: a blocking wait, without a pidfd to open.
        // No such child is taken as a wait that ran out, as `reap_until_deadline` does.
        return reap_until(target).map_or(Waited::TimedOut, Waited::Ended);
    }
    let Ok(pidfd) = sys::pidfd_open(target) else {
        // No pidfd (kernel before 5.3): wait without a deadline rather than not at all.
        return reap_until(target).map_or(Waited::Interrupted, Waited::Ended);
    };
    loop {
        let left = deadline.map(|at| at.saturating_duration_since(Instant::now()));
        let timeout = match left {
            None => PollTimeout::NONE,
            Some(left) => {
                let ms = left.as_millis().min(u128::from(u16::MAX));
                PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
            }
        };
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        fds.extend(interrupt.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        let ready = sys::retry_on_eintr(|| poll(&mut fds, timeout));
        let readable = |i: usize| {
            fds.get(i)
                .and_then(PollFd::revents)
                .is_some_and(|r| !r.is_empty())
        };
        match ready {
            Ok(0) if left.is_some_and(|left| left.is_zero()) => return Waited::TimedOut,
            Ok(0) => {}
            Ok(_) if readable(0) => {
                return match sys::retry_on_eintr(|| waitpid(target, None)) {
                    Ok(status) => termination(status)
                        .or_else(|| reap_until(target))
                        .map_or(Waited::Interrupted, Waited::Ended),
                    Err(_) => Waited::Interrupted,
                };
            }
            Ok(_) => return Waited::Interrupted,
            Err(_) => return Waited::Interrupted,
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
