//! The processes nstest forks, one module per role. Each module's first doc line says
//! which process it runs in.
//!
//! Layer 3 of docs/src/architecture.md: depends on `sandbox`, `coverage`, `wire`, `registry`,
//! `error` and `sys`; the runner above starts the fork server through it.
//!
//! ```text
//! runner (multithreaded; forks once, at the top of main, while still single-threaded)
//!   └─ fork ─> fork server                       fork_server.rs
//!                └─ fork, as the pool needs one ─> slot      slot.rs
//!                     ├─ fork, per test without pid ─> test process     test_process.rs
//!                     └─ clone(NEWUSER|NEWPID|..), per test with pid ─> init, PID 1   init.rs
//!                                                         └─ fork ─> test process, PID 2
//!
//! runner of one test (single-threaded throughout; nextest's `--exact NAME`)  direct.rs
//!   ├─ fork ─> lone slot (slot.rs) ─ fork (or clone, with pid) ─> test process (or init)
//!   └─ clone(NEWUSER|NEWPID|..), with pid, no cgroup, no cpu limit ─> init, PID 1
//!                                                         └─ fork ─> test process, PID 2
//! ```
//!
//! Imports follow the tree: a role calls only the entry of the roles it forks, and what
//! they share goes through [`crate::wire`] (the bytes that cross process boundaries),
//! [`crate::sandbox`] (building the namespaces) and [`crate::sys`] (the system calls).
//! Every process here is single-threaded, so each may fork, and its children may allocate
//! and print freely.

use std::os::fd::OwnedFd;

use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::unistd::getppid;

use crate::error::{Error, Result};
use crate::sys;
use crate::wire::{ExitFrame, Report, Termination};

pub(crate) mod direct;
pub(crate) mod fork_server;
mod init;
mod panic_output;
mod reap;
mod slot;
mod test_process;

pub(crate) use test_process::{running_test, send_note};

/// The runner's ends of one test's pipes, as a slot received them.
pub(crate) struct Channels {
    /// Where the test process (or a failing setup) writes its [`Report`].
    pub report: OwnedFd,
    /// Where the slot writes the exit frame.
    pub exit: OwnedFd,
    /// The test's stdout and stderr; `None` with `--nocapture`.
    pub output: Option<OwnedFd>,
}

impl Channels {
    /// The descriptors of a `RunTest` request, in the order the runner attached them:
    /// report, exit, and output when captured. `None` for any other count.
    pub(crate) fn from_request(fds: Vec<OwnedFd>) -> Option<Channels> {
        let mut fds = fds.into_iter();
        let (report, exit, output) = (fds.next()?, fds.next()?, fds.next());
        fds.next().is_none().then_some(Channels {
            report,
            exit,
            output,
        })
    }
}

/// Sets `PR_SET_PDEATHSIG` to SIGKILL, then checks that the parent did not die before it
/// took effect (prctl(2): the signal is sent when the parent *thread* exits, and not at
/// all if it was already gone).
pub(crate) fn die_with_parent() -> Result<()> {
    let parent = getppid();
    set_death_signal()?;
    if getppid() != parent {
        sys::exit_now(1);
    }
    Ok(())
}

/// `PR_SET_PDEATHSIG` to SIGKILL, without the check of [`die_with_parent`]: for a PID
/// namespace's init, whose parent is outside its namespace and so always reads as pid 0.
fn set_death_signal() -> Result<()> {
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(|source| Error::Sys {
        call: "prctl(PR_SET_PDEATHSIG, SIGKILL)",
        source,
    })
}

/// The report of a sandbox that could not be built.
fn setup_failed(error: &Error) -> Report {
    Report::SetupFailed {
        step: error.step(),
        errno: error.errno(),
        detail: error.to_string(),
    }
}

/// A sandbox that never started: what the report says is all there is, and the frame
/// says so as a test process that failed its setup says it (status 0, nothing left).
fn never_started(error: &Error, report: &OwnedFd, exit: &OwnedFd) {
    send_report(report, &setup_failed(error));
    let frame = ExitFrame::nothing_left(Termination::Exited(0));
    let _ = write_all(exit, &frame.encode());
}

/// Once per run, in the runner while it has a single thread, before its first fork (of
/// the fork server, or of a run of one test's sandbox): what every process it forks
/// inherits is read here, so that no fork has to. `needs`: every kind a sandbox of the
/// run may have (see [`crate::sandbox::prepare`]).
///
/// # Errors
///
/// [`Error::Multithreaded`] if another thread exists, or a bad `NSTEST_PIDS`.
fn prepare_run(needs: &crate::plan::Plan) -> Result<()> {
    if let Some(threads) = sys::thread_count().filter(|&n| n != 1) {
        return Err(Error::Multithreaded { threads });
    }
    crate::coverage::prepare();
    crate::sandbox::prepare(crate::coverage::profile_dirs(), needs);
    crate::sandbox::limits::run_pids().map_err(|message| Error::Environment { message })?;
    Ok(())
}

/// Writes the report; if the runner is gone there is no one left to tell.
fn send_report(fd: &OwnedFd, report: &Report) {
    let _ = write_all(fd, &report.encode());
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        let n = sys::retry_on_eintr(|| nix::unistd::write(fd, bytes))?;
        bytes = &bytes[n..];
    }
    Ok(())
}
