//! The runner's handle on the fork server and on each runner thread's slot.
//!
//! Runs in the runner, which is multithreaded and never forks: a test starts with a
//! request to the calling thread's slot, which the fork server forks on the thread's first
//! test and again whenever the slot has died.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::socketpair;
use nix::sys::socket::{AddressFamily, MsgFlags, Shutdown, SockFlag, SockType, recv, shutdown};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::process::fork_server::{self, HELLO_LEN};
use crate::sys;
use crate::test::Test;
use crate::wire::request::{self, Request};

thread_local! {
    /// The calling runner thread's slot, started on its first test.
    static SLOT: RefCell<Option<Slot>> = const { RefCell::new(None) };
}

/// A runner thread's handle on its slot: one end of the slot's socket, and its pid.
struct Slot {
    socket: OwnedFd,
    pid: Pid,
}

/// The runner's handle on the fork server: one end of the request socket, and its pid.
#[derive(Debug)]
pub(crate) struct ForkServer {
    socket: OwnedFd,
    pid: Pid,
}

/// The write ends of one test's pipes, sent along with its request.
pub(crate) struct TestPipes<'a> {
    /// Write end of the report pipe.
    pub report: &'a OwnedFd,
    /// Write end of the exit pipe.
    pub exit: &'a OwnedFd,
    /// Write end of the output pipe, unless output goes straight to the terminal.
    pub output: Option<&'a OwnedFd>,
}

impl ForkServer {
    /// Forks the fork server, serving `tests`. Must be called while the process has a
    /// single thread.
    ///
    /// # Errors
    ///
    /// [`Error::Multithreaded`] if another thread exists, or the failing call.
    pub(crate) fn start(tests: Vec<&'static Test>) -> Result<ForkServer> {
        let (socket, pid) = fork_server::start(tests)?;
        Ok(ForkServer { socket, pid })
    }

    /// Starts test `index` in the calling thread's slot (started on first use, and
    /// replaced if it has died).
    ///
    /// # Errors
    ///
    /// `sendmsg(2)`'s errno, or why no slot could start.
    pub(crate) fn spawn(&self, index: u32, pipes: &TestPipes<'_>) -> Result<()> {
        let mut fds: Vec<RawFd> = vec![pipes.report.as_raw_fd(), pipes.exit.as_raw_fd()];
        fds.extend(pipes.output.map(AsRawFd::as_raw_fd));
        let request = Request::RunTest {
            index,
            capture: pipes.output.is_some(),
        };
        SLOT.with(|slot| {
            let mut slot = slot.borrow_mut();
            let mut replaced = false;
            loop {
                let current = match slot.take() {
                    Some(current) => current,
                    None => self.start_slot(None)?,
                };
                match request::send(&current.socket, &request, &fds) {
                    Ok(()) => {
                        *slot = Some(current);
                        return Ok(());
                    }
                    // The slot died after its last test (a leftover of that test killed
                    // it): once, start another in its place.
                    Err(Errno::EPIPE | Errno::ECONNRESET) if !replaced => {
                        *slot = Some(self.start_slot(Some(current.pid))?);
                        replaced = true;
                    }
                    Err(source) => {
                        return Err(sys_error("sendmsg(request to an nstest slot)", source));
                    }
                }
            }
        })
    }

    /// A test ended without an exit frame, so the calling thread's slot died (the test
    /// killed it). Replaces it, and returns once the fork server has reaped it and killed
    /// every process it left: the runner reports a test only when nothing of it runs.
    /// Without a slot (none started yet) there is nothing to do.
    ///
    /// # Errors
    ///
    /// Why the new slot could not start.
    pub(crate) fn replace_lost_slot(&self) -> Result<()> {
        SLOT.with(|slot| {
            let mut slot = slot.borrow_mut();
            if let Some(lost) = slot.take() {
                let pid = lost.pid;
                // Closing our end ends the old slot if it is in fact still alive.
                drop(lost);
                *slot = Some(self.start_slot(Some(pid))?);
            }
            Ok(())
        })
    }

    /// Asks the fork server for a slot and waits for its hello: its pid, sent once it runs.
    fn start_slot(&self, replacing: Option<Pid>) -> Result<Slot> {
        let (socket, slot_end) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|source| sys_error("socketpair(AF_UNIX, SOCK_SEQPACKET)", source))?;
        let request = Request::StartSlot {
            replacing: replacing.map(|pid| pid.as_raw().unsigned_abs()),
        };
        request::send(&self.socket, &request, &[slot_end.as_raw_fd()]).map_err(|source| {
            sys_error("sendmsg(slot request to the nstest fork server)", source)
        })?;
        drop(slot_end);
        let mut hello = [0u8; HELLO_LEN];
        match sys::retry_on_eintr(|| recv(socket.as_raw_fd(), &mut hello, MsgFlags::empty())) {
            Ok(HELLO_LEN) => Ok(Slot {
                socket,
                pid: Pid::from_raw(i32::from_le_bytes(hello)),
            }),
            // EOF: the fork server could not fork the slot, or is gone.
            Ok(_) => Err(sys_error("recv(hello from an nstest slot)", Errno::EPIPE)),
            Err(source) => Err(sys_error("recv(hello from an nstest slot)", source)),
        }
    }

    /// Tells the fork server to exit (end-of-file on its socket) and reaps it, so that the
    /// run leaves no process behind, not even a zombie for the host's init to collect.
    /// Call it once every test has ended.
    pub(crate) fn stop(&self) {
        let _ = shutdown(self.socket.as_raw_fd(), Shutdown::Both);
        let _ = sys::retry_on_eintr(|| waitpid(self.pid, None));
    }
}

fn sys_error(call: &'static str, source: Errno) -> Error {
    Error::Sys { call, source }
}
