//! Runs in: the runner, when it runs exactly one test (nextest runs every test in a
//! process of its own with `--exact NAME`; so do an editor's run button and
//! `cargo test NAME -- --exact`), on its only thread. It forks that test's sandbox itself:
//! no fork server, no pool of slots, only the processes the test's kinds need.
//!
//! ```text
//! runner ── clone(NEWUSER|NEWPID|..), pid, no cgroup, no cpu ──> init, PID 1 ── fork ──> test, PID 2
//!   └──── fork, otherwise ──> lone slot ── fork (or clone, with pid) ──> test process (or init)
//! ```
//!
//! With a PID namespace the kernel itself is the last line of clean-up: init dies with the
//! runner (PDEATHSIG), and when a namespace's init dies the kernel kills everything in it.
//! So init is the runner's own child, keeps the test's clock, and writes its exit frame
//! straight to the runner's exit pipe. Unless the run makes cgroups (as root here: the
//! test's cgroup leaf must be held by a process outside the test, which can remove it)
//! or the test has a `cpu` limit (its tree's CPU time is added up by its reaper, which
//! init would count itself in): those take the lone slot, which does both as a pooled
//! slot does.
//!
//! Without one, nothing in the kernel kills a test's daemon (a `setsid` double fork) when
//! the runner is killed with SIGKILL, which a runner cannot catch: some process must
//! outlive the runner and be an ancestor of every process of the test, so that orphans are
//! re-parented to it. That is the lone slot (`slot::run_alone`): the one process more than
//! the sandbox itself needs, measured at 0.07-0.10 ms of CPU per test here (see
//! docs/src/performance-floor.md). The runner is a subreaper too, for the case where the
//! test kills its slot.

use std::os::fd::{OwnedFd, RawFd};
use std::sync::Once;
use std::time::Duration;

use nix::sys::prctl;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, getegid, geteuid, getpid};

use super::{Channels, init, never_started, reap, slot, test_process};
use crate::coverage;
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::registry::Test;
use crate::sandbox;
use crate::sys;
use crate::wire::ExitFrame;
use crate::wire::request;

/// A sandbox the runner started itself: its first process, init or the lone slot (none
/// when it could not be forked, which its pipes then say).
#[must_use = "a started sandbox must be finished, or its first process stays a zombie"]
pub(crate) struct Direct {
    child: Option<Pid>,
    init: bool,
}

/// Once per run, before the first fork: what the fork server does once for every process
/// it forks (the profile and host paths read, the panic hook of test processes), and the
/// runner made a subreaper. `needs`: every kind the run's sandboxes may have (the one
/// test's, and the probe's). Must run while the runner has a single thread.
///
/// # Errors
///
/// [`Error::Multithreaded`] if another thread exists, or the failing `prctl`.
pub(crate) fn prepare(needs: &Plan) -> Result<()> {
    super::prepare_run(needs)?;
    // Where the run may make cgroups, the runner makes the run's directory itself (the
    // fork server's job in a run of many), and the lone slot a leaf in it; the `memory`
    // hierarchy only for a test with a `memory` limit, which the lone slot opens.
    if !sandbox::leaf::own().is_empty() {
        sandbox::leaf::open_run_for(&[sandbox::leaf::Controller::Pids]);
    }
    static HOOK: Once = Once::new();
    HOOK.call_once(test_process::install_panic_hook);
    prctl::set_child_subreaper(true).map_err(|source| Error::Sys {
        call: "prctl(PR_SET_CHILD_SUBREAPER, 1)",
        source,
    })
}

/// Forks `test`'s sandbox, to be killed after `timeout`. `channels` are the write ends of
/// its pipes (the parent's copies are closed here, so that end-of-file on them means the
/// sandbox is gone); `runner_ends` are the runner's read ends, which no process of the
/// test may keep. Call [`prepare`] first, once.
///
/// A `clone(2)` the host refuses (a namespace kind it lacks) is the test's setup failure,
/// said on its pipes as a slot says it, so that it is diagnosed the same way.
pub(crate) fn start(
    test: &'static Test,
    channels: Channels,
    runner_ends: &[RawFd],
    timeout: Option<Duration>,
) -> Direct {
    let Channels {
        report,
        exit,
        output,
    } = channels;
    let runner = getpid();
    let leave_the_runner = || {
        for fd in runner_ends {
            let _ = sys::close_inherited(*fd);
        }
        coverage::stop_writing();
    };
    // Init alone can keep the test's clock and tell how it ended, but it cannot hold a
    // cgroup leaf for the test (it would be counted in it and could not remove it) nor
    // add up the CPU time of its tree with its own: those take the lone slot.
    let init_alone = sandbox::leaf::own().is_empty() && test.plan.limits.cpu_secs.is_none();
    if test.plan.pid && init_alone {
        // Read before the clone: inside the new user namespace the ids read as the
        // overflow id until init has written the maps (user_namespaces(7)).
        let ids = (geteuid(), getegid());
        let flags = sandbox::init_clone_flags(&test.plan);
        return match sys::clone_into_namespaces(flags) {
            Ok(ForkResult::Child) => {
                leave_the_runner();
                init::run(test, report, output, exit, ids, timeout, Default::default())
            }
            Ok(ForkResult::Parent { child }) => Direct::started(child, true),
            Err(source) => {
                let flags = sandbox::flag_names(flags);
                Direct::failed(&Error::Clone { flags, source }, &report, &exit)
            }
        };
    }
    match sys::fork() {
        Ok(ForkResult::Child) => {
            leave_the_runner();
            let channels = Channels {
                report,
                exit,
                output,
            };
            slot::run_alone(test, timeout, channels, runner)
        }
        Ok(ForkResult::Parent { child }) => Direct::started(child, false),
        Err(source) => {
            let what = "nstest slot";
            Direct::failed(&Error::Fork { what, source }, &report, &exit)
        }
    }
}

/// For libtest's harness running one test: forks a lone slot now, from the constructor
/// that runs before libtest's `main` while the process is single-threaded, to wait for
/// the test that a libtest thread will send later. Returns the runner's end of its socket
/// and its pid. The runner is made a subreaper too (see [`prepare`]).
///
/// # Errors
///
/// [`Error::Multithreaded`] if another thread exists, or the failing call.
pub(crate) fn start_lone_slot(needs: &Plan) -> Result<(OwnedFd, Pid)> {
    prepare(needs)?;
    let (runner_end, slot_end) = request::socket_pair()?;
    let runner = getpid();
    match sys::fork() {
        Ok(ForkResult::Child) => {
            coverage::stop_writing();
            drop(runner_end);
            slot::serve_alone(slot_end, runner)
        }
        Ok(ForkResult::Parent { child }) => Ok((runner_end, child)),
        Err(source) => Err(Error::Fork {
            what: "nstest slot",
            source,
        }),
    }
}

impl Direct {
    fn started(child: Pid, init: bool) -> Direct {
        Direct {
            child: Some(child),
            init,
        }
    }

    /// The sandbox never started: its report says why, and its frame says so as a test
    /// process that failed its setup says it (status 0, nothing left), as `slot::run` does.
    fn failed(error: &Error, report: &OwnedFd, exit: &OwnedFd) -> Direct {
        never_started(error, report, exit);
        Direct {
            child: None,
            init: false,
        }
    }

    /// Reaps the sandbox's first process once the runner has read its pipes to the end,
    /// and, when `frame_arrived` is false, makes sure nothing of the test is left: init's
    /// namespace is gone with it, and its wait status is the frame; a lone slot that died
    /// (its test killed it) re-parented what the test left to this subreaper, which kills
    /// and reaps them, and there is no frame, as when a pooled slot dies.
    pub(crate) fn finish(self, frame_arrived: bool) -> Option<ExitFrame> {
        let child = self.child?;
        let status = sys::retry_on_eintr(|| waitpid(child, None)).ok();
        if self.init {
            if frame_arrived {
                return None;
            }
            let end = status.and_then(reap::termination)?;
            return Some(ExitFrame::nothing_left(end));
        }
        if !frame_arrived {
            let _ = reap::kill_and_reap_leftovers(slot::kill_children);
        }
        // The lone slot's cgroup leaves, now empty.
        sandbox::leaf::slot_ended(child.as_raw().unsigned_abs());
        None
    }
}

/// Once the run's one test has ended: removes the run's cgroup directories, if it made
/// any (see [`prepare`]).
pub(crate) fn stop() {
    sandbox::leaf::close_run();
}

/// In libtest's runner, once its lone slot died with the test (the test killed it): the
/// test process died with it (PDEATHSIG), and what it left was re-parented to this
/// subreaper; kills and reaps them. The runner has threads by then, and an orphan is the
/// child of whichever thread adopted it, so every thread's children are read.
pub(crate) fn kill_and_reap_orphans() {
    let _ = reap::kill_and_reap_leftovers(|| {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return;
        };
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children"));
            for pid in children.unwrap_or_default().split_whitespace() {
                if let Ok(pid) = pid.parse() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
    });
}
