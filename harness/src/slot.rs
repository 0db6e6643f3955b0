//! Slots: one long-lived process per runner thread that runs that thread's direct tests
//! (plans that [run direct](crate::sandbox::Plan::runs_direct): no mount, PID or time
//! namespace) one after another, each in a fresh child.
//!
//! ```text
//! fork server ── fork, once per runner thread ──> slot (subreaper; waits, kills
//!                  │                               leftovers, writes the exit frame)
//!                  │                                 └─ fork, per test ──> test process:
//!                  │                                      unshare, id maps, lo, hostname
//!                  └─ fork, per test ──> supervisor ──> test     (mount, PID or time)
//! ```
//!
//! A slot does for its tests what a supervisor does for one, but it is forked once per
//! runner thread rather than once per test, so a direct test costs one process instead of
//! two (the supervisor's fork and exit were a fifth of a `net` test's CPU time). The test
//! process builds its sandbox in itself, which needs no second process for these kinds.
//!
//! A test can still kill its parent, now the slot: the test process dies with it
//! (PDEATHSIG), and the fork server, the subreaper above the slot, kills whatever else is
//! left. The runner thread sees the test end without an exit frame and asks for a new
//! slot, which the fork server starts only once it has reaped the old one and no stray
//! process is left; so, as with a supervisor, a test is reported only once every process
//! of it is gone.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::socket::{MsgFlags, send};
use nix::unistd::{ForkResult, getpid};

use crate::child::{self, Channels};
use crate::error::{Error, Result};
use crate::forkserver;
use crate::registry::Test;
use crate::sys;

/// A slot's first message on its socket: its pid, little-endian. Sent once it runs, which
/// for a replacement slot is once the processes its predecessor left are gone.
pub(crate) const HELLO_LEN: usize = 4;

/// The slot's loop: one test per request on `socket`, until the runner thread closes it.
pub(crate) fn serve(tests: &[&'static Test], socket: OwnedFd) -> ! {
    if prepare(&socket).is_err() {
        sys::exit_now(1);
    }
    let mut cmsg_buffer = nix::cmsg_space!([RawFd; 3]);
    loop {
        let Some(request) = forkserver::receive(&socket, &mut cmsg_buffer) else {
            sys::exit_now(0)
        };
        // Only direct tests are sent here; anything else is dropped, which the runner
        // sees as a test that ended without a word.
        if let Some((test, channels)) =
            forkserver::unpack(tests, request).filter(|(test, _)| test.plan.runs_direct())
        {
            run(test, channels, &socket);
        }
    }
}

/// Dies with the fork server, becomes the subreaper of its tests' processes (prctl(2)), and
/// says hello.
fn prepare(socket: &OwnedFd) -> Result<()> {
    child::die_with_parent()?;
    prctl::set_child_subreaper(true).map_err(|source| Error::Sys {
        call: "prctl(PR_SET_CHILD_SUBREAPER, 1)",
        source,
    })?;
    let hello = getpid().as_raw().to_le_bytes();
    loop {
        match send(socket.as_raw_fd(), &hello, MsgFlags::MSG_NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(source) => {
                return Err(Error::Sys {
                    call: "send(slot hello)",
                    source,
                });
            }
        }
    }
}

/// Runs one test in a fresh child and writes its exit frame once every process of it is
/// gone. The slot runs one test at a time, so all its children belong to this test.
fn run(test: &'static Test, channels: Channels, socket: &OwnedFd) {
    let Channels {
        report,
        exit,
        output,
    } = channels;
    match sys::fork() {
        Ok(ForkResult::Child) => {
            // The test must hold neither the slot's socket (it could send requests) nor
            // the exit pipe (it could forge its frame).
            let _ = sys::close_inherited(socket.as_raw_fd());
            drop(exit);
            child::run_direct(test, report, output)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(report);
            drop(output);
            child::finish(test, child, None, &exit);
        }
        Err(source) => child::send_report(
            &report,
            &child::setup_failed(&Error::Fork {
                what: "test process",
                source,
            }),
        ),
    }
}
