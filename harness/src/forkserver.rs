//! The fork server: a small, single-threaded process that forks one supervisor per test.
//!
//! `nstest::main!()` starts it first thing, while the test binary is still
//! single-threaded and small. From then on the runner (which has libtest-mimic's worker
//! threads and grows with every test) never forks: each test thread sends a request over a
//! `SOCK_SEQPACKET` socket with the three pipe ends of its test attached (`SCM_RIGHTS`,
//! unix(7)), and the fork server forks. Forking is thus always from a process of the same
//! few megabytes, which keeps the per-test cost flat (fork costs about 35 µs per MB of the
//! forking process), and the forked child may do anything, since its parent has no other
//! thread that could hold a lock. It needs no exec, so the test's code is already mapped.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, Shutdown, SockFlag, SockType,
    recvmsg, sendmsg, shutdown, socketpair,
};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, getpid, getppid};

use crate::child::{self, Channels};
use crate::error::{Error, Result};
use crate::registry::Test;
use crate::sys;

/// A request: the test's index (`u32`) and flags (`u32`), little-endian.
const REQUEST_LEN: usize = 8;
/// Flag: the third attached descriptor is the output pipe.
const FLAG_CAPTURE: u32 = 1;

/// The runner's handle on the fork server: one end of the request socket, and its pid.
#[derive(Debug)]
pub(crate) struct ForkServer {
    socket: OwnedFd,
    pid: Pid,
}

/// What a test run asks the fork server to start.
pub(crate) struct Request<'a> {
    /// Index into the list the fork server was started with.
    pub index: u32,
    /// Write end of the report pipe.
    pub report: &'a OwnedFd,
    /// Write end of the exit pipe.
    pub exit: &'a OwnedFd,
    /// Write end of the output pipe, unless output goes straight to the terminal.
    pub output: Option<&'a OwnedFd>,
}

impl ForkServer {
    /// Forks the fork server. Must be called while the process has a single thread.
    ///
    /// # Errors
    ///
    /// [`Error::Multithreaded`] if another thread exists, or the failing call.
    pub(crate) fn start(tests: Vec<&'static Test>) -> Result<ForkServer> {
        if let Some(threads) = sys::thread_count().filter(|&n| n != 1) {
            return Err(Error::Multithreaded { threads });
        }
        let (runner_end, server_end) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|source| Error::Sys {
            call: "socketpair(AF_UNIX, SOCK_SEQPACKET)",
            source,
        })?;
        let runner = getpid();
        match sys::fork().map_err(|source| Error::Fork {
            what: "fork server",
            source,
        })? {
            ForkResult::Child => {
                drop(runner_end);
                serve(&tests, &server_end, runner)
            }
            ForkResult::Parent { child } => Ok(ForkServer {
                socket: runner_end,
                pid: child,
            }),
        }
    }

    /// Asks the fork server to start a test. Safe to call from many threads at once: each
    /// request is one datagram, which the kernel delivers whole.
    ///
    /// # Errors
    ///
    /// `sendmsg(2)`'s errno; EPIPE means the fork server is gone.
    pub(crate) fn spawn(&self, request: &Request<'_>) -> Result<()> {
        let mut fds: Vec<RawFd> = vec![request.report.as_raw_fd(), request.exit.as_raw_fd()];
        let mut flags = 0;
        if let Some(output) = request.output {
            fds.push(output.as_raw_fd());
            flags |= FLAG_CAPTURE;
        }
        let mut bytes = [0u8; REQUEST_LEN];
        bytes[..4].copy_from_slice(&request.index.to_le_bytes());
        bytes[4..].copy_from_slice(&flags.to_le_bytes());
        let cmsgs = [ControlMessage::ScmRights(&fds)];
        loop {
            match sendmsg::<()>(
                self.socket.as_raw_fd(),
                &[IoSlice::new(&bytes)],
                &cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(source) => {
                    return Err(Error::Sys {
                        call: "sendmsg(request to the nstest fork server)",
                        source,
                    });
                }
            }
        }
    }
}

impl ForkServer {
    /// Tells the fork server to exit (end-of-file on its socket) and reaps it, so that the
    /// run leaves no process behind, not even a zombie for the host's init to collect.
    /// Call it once every test has ended.
    pub(crate) fn stop(&self) {
        let _ = shutdown(self.socket.as_raw_fd(), Shutdown::Both);
        loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => {}
                _ => return,
            }
        }
    }
}

/// The fork server's loop. Exits when the runner closes its end or dies.
fn serve(tests: &[&'static Test], socket: &OwnedFd, runner: Pid) -> ! {
    // Die with the runner, and check it did not die before this took effect (prctl(2)).
    if prctl::set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != runner {
        sys::exit_now(1);
    }
    // Supervisors are reaped by the kernel; the fork server never waits (sigaction(2)).
    if sys::set_sigchld_ignored(true).is_err() {
        sys::exit_now(1);
    }
    loop {
        let Some((index, flags, mut fds)) = receive(socket) else {
            wait_for_supervisors();
            sys::exit_now(0);
        };
        let wanted = if flags & FLAG_CAPTURE != 0 { 3 } else { 2 };
        let test = tests.get(index as usize);
        if fds.len() != wanted || test.is_none() {
            // A malformed request: dropping the descriptors closes the pipes, which the
            // runner sees as a sandbox that ended without a word.
            continue;
        }
        let output = (wanted == 3).then(|| fds.pop().expect("three descriptors"));
        let exit = fds.pop().expect("two descriptors");
        let report = fds.pop().expect("two descriptors");
        match sys::fork() {
            Ok(ForkResult::Child) => child::supervise(
                test.expect("checked above"),
                Channels {
                    report,
                    exit,
                    output,
                },
            ),
            // The parent's copies close here; on a failed fork too, so the runner sees EOF.
            Ok(ForkResult::Parent { .. }) | Err(_) => {}
        }
    }
}

/// Blocks until every supervisor has finished exiting. A supervisor closes its pipes early
/// in exit(2), before its namespaces are torn down, so the runner can be done with a test
/// while its supervisor is still exiting; were the fork server to exit then, the
/// supervisor would be re-parented to the host's init and end as a zombie there. With
/// SIGCHLD ignored, waitpid(2) "blocks until all children have terminated, and then fails
/// with ECHILD" (wait(2), NOTES).
fn wait_for_supervisors() {
    while let Err(Errno::EINTR) | Ok(_) = waitpid(None::<Pid>, None) {}
}

/// Receives one request with its descriptors (marked close-on-exec). `None` on EOF or an
/// unrecoverable error.
fn receive(socket: &OwnedFd) -> Option<(u32, u32, Vec<OwnedFd>)> {
    let mut bytes = [0u8; REQUEST_LEN];
    let mut space = nix::cmsg_space!([RawFd; 3]);
    loop {
        let (len, fds) = {
            let mut iov = [IoSliceMut::new(&mut bytes)];
            let msg = match recvmsg::<()>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => msg,
                Err(Errno::EINTR) => continue,
                Err(_) => return None,
            };
            let mut fds = Vec::new();
            for cmsg in msg.cmsgs().into_iter().flatten() {
                if let ControlMessageOwned::ScmRights(received) = cmsg {
                    fds.extend(received.into_iter().map(sys::own_received_fd));
                }
            }
            (msg.bytes, fds)
        };
        match len {
            0 => return None,
            // A short request is dropped with its descriptors; the runner sees EOF.
            REQUEST_LEN => {}
            _ => continue,
        }
        let index = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
        let flags = u32::from_le_bytes(bytes[4..].try_into().expect("4 bytes"));
        return Some((index, flags, fds));
    }
}
