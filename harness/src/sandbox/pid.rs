//! The PID namespace's init, and the reaping both init and the supervisor rely on.
//!
//! pid_namespaces(7): the first process forked after `unshare(CLONE_NEWPID)` is PID 1 of
//! the new namespace. PID 1 ignores every signal it has no handler for (so a test running
//! as PID 1 that calls `abort()` would not die by SIGABRT), and when it exits the kernel
//! kills every other process of the namespace. So the test never runs as PID 1: a tiny
//! init forks it as PID 2, reaps orphans, and when the test ends kills whatever is left.

use std::os::fd::AsFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::protocol::Termination;
use crate::sys;

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
        match waitpid(None, None) {
            Ok(status) if status.pid() == Some(target) => {
                if let Some(end) = termination(status) {
                    return Some(end);
                }
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return None,
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
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) if left.is_zero() => return None,
            Ok(0) | Err(Errno::EINTR) => {}
            _ => {
                return match waitpid(target, None) {
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
        match waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                kill_all();
                match waitpid(None, None) {
                    Ok(status) if termination(status).is_some() => leaked += 1,
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(_) => return leaked,
                }
            }
            Ok(status) if termination(status).is_some() => leaked += 1,
            Ok(_) | Err(Errno::EINTR) => {}
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
