//! The runner's handle on the fork server and on each runner thread's slot.
//!
//! Runs in the runner, which is multithreaded and never forks: a test starts with a
//! request to an idle slot, taken from a pool for the time of the test. The fork server
//! forks a slot whenever none is idle, so there are as many as tests run at once (one per
//! runner thread under `nstest::main!()`; under libtest's harness, whose threads live for
//! one test each, the pool outlives them), and again whenever one has died.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, Shutdown, recv, shutdown};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::process::direct;
use crate::process::fork_server::{self, HELLO_LEN};
use crate::registry::Test;
use crate::sys;
use crate::wire::request::{self, Request};

/// The runner's handle on a slot: one end of the slot's socket, and its pid.
#[derive(Debug)]
struct Slot {
    socket: OwnedFd,
    pid: Pid,
}

/// The runner's handle on the fork server: one end of the request socket, its pid, and
/// the slots that run no test right now.
#[derive(Debug)]
pub(crate) struct ForkServer {
    /// One end of the fork server's request socket, and its pid; `None` for a lone slot
    /// (libtest's harness running one test: see `process::direct`), which is not replaced.
    server: Option<(OwnedFd, Pid)>,
    idle: Mutex<Vec<Slot>>,
    /// The runner's end of the first slot's socket, which the fork server starts unasked;
    /// taken by the first test that needs a slot.
    first_slot: Mutex<Option<OwnedFd>>,
}

/// A slot lent to one running test; give it back with [`Lease::finish`].
#[must_use = "a lease not finished takes its slot out of the pool"]
pub(crate) struct Lease<'a> {
    server: &'a ForkServer,
    slot: Slot,
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
    /// Forks the fork server. Must be called while the process has a single thread, once
    /// every test it will be asked for exists (see `wire::request`). `one_thread`: see
    /// `fork_server::start`; `memory_limits`: see `Runs::Many`; `needs`: every kind its
    /// sandboxes may have.
    ///
    /// # Errors
    ///
    /// [`Error::Multithreaded`] if another thread exists, or the failing call.
    pub(crate) fn start(one_thread: bool, memory_limits: bool, needs: &Plan) -> Result<ForkServer> {
        let (socket, first_slot, pid) = fork_server::start(one_thread, memory_limits, needs)?;
        Ok(ForkServer {
            server: Some((socket, pid)),
            idle: Mutex::new(Vec::new()),
            first_slot: Mutex::new(Some(first_slot)),
        })
    }

    /// Forks one lone slot and no fork server: for libtest's harness running one test,
    /// whose runner has threads by the time the test asks. Same conditions as [`start`].
    ///
    /// # Errors
    ///
    /// As for [`ForkServer::start`].
    pub(crate) fn start_alone(needs: &Plan) -> Result<ForkServer> {
        let (slot, _pid) = direct::start_lone_slot(needs)?;
        Ok(ForkServer {
            server: None,
            idle: Mutex::new(Vec::new()),
            first_slot: Mutex::new(Some(slot)),
        })
    }

    /// Starts `test` in an idle slot (or a new one), which is the caller's until it gives
    /// the lease back.
    ///
    /// # Errors
    ///
    /// `sendmsg(2)`'s errno, or why no slot could start.
    pub(crate) fn spawn(
        &self,
        test: &'static Test,
        pipes: &TestPipes<'_>,
        timeout_secs: Option<u64>,
    ) -> Result<Lease<'_>> {
        let mut fds: Vec<RawFd> = vec![pipes.report.as_raw_fd(), pipes.exit.as_raw_fd()];
        fds.extend(pipes.output.map(AsRawFd::as_raw_fd));
        let request = Request::RunTest {
            test: sys::static_address(test),
            capture: pipes.output.is_some(),
            // A limit past u32::MAX seconds (136 years) is no limit in practice.
            timeout_secs: timeout_secs.map(|secs| u32::try_from(secs).unwrap_or(u32::MAX)),
        };
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut slot = match idle {
            Some(slot) => slot,
            None => self.start_slot(None)?,
        };
        match request::send(&slot.socket, &request, &fds) {
            Ok(()) => {}
            // The slot died after its last test (a leftover of that test killed it): once,
            // start another in its place.
            Err(Errno::EPIPE | Errno::ECONNRESET) => {
                slot = self.start_slot(Some(slot.pid))?;
                request::send(&slot.socket, &request, &fds)
                    .map_err(|source| sys_error("sendmsg(request to an nstest slot)", source))?;
            }
            Err(source) => return Err(sys_error("sendmsg(request to an nstest slot)", source)),
        }
        Ok(Lease { server: self, slot })
    }

    /// Asks the fork server for a slot and waits for its hello: its pid, sent once it runs.
    fn start_slot(&self, replacing: Option<Pid>) -> Result<Slot> {
        let first = self
            .first_slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let (Some(socket), None) = (first, replacing) {
            return hello(socket);
        }
        let Some((server, _)) = &self.server else {
            // A run of one test had its one slot.
            return Err(sys_error(
                "a second nstest slot in a run of one test",
                Errno::EBUSY,
            ));
        };
        let (socket, slot_end) = request::socket_pair()?;
        let request = Request::StartSlot {
            replacing: replacing.map(|pid| pid.as_raw().unsigned_abs()),
        };
        request::send(server, &request, &[slot_end.as_raw_fd()]).map_err(|source| {
            sys_error("sendmsg(slot request to the nstest fork server)", source)
        })?;
        drop(slot_end);
        hello(socket)
    }

    /// Tells the fork server to exit (end-of-file on its socket) and reaps it, so that the
    /// run leaves no process behind, not even a zombie for the host's init to collect.
    /// Call it once every test has ended.
    pub(crate) fn stop(&self) {
        match &self.server {
            Some((socket, pid)) => {
                let _ = shutdown(socket.as_raw_fd(), Shutdown::Both);
                let _ = sys::retry_on_eintr(|| waitpid(*pid, None));
            }
            // A lone slot exits when its socket closes.
            None => {
                let idle =
                    std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
                for slot in idle {
                    let _ = shutdown(slot.socket.as_raw_fd(), Shutdown::Both);
                    let _ = sys::retry_on_eintr(|| waitpid(slot.pid, None));
                }
                direct::stop();
            }
        }
    }
}

impl Lease<'_> {
    /// Gives the slot back once its test has ended. `frame_arrived` false means the slot
    /// died with the test (the test killed it): then a replacement is started, and this
    /// returns once the fork server has reaped the old slot and killed every process it
    /// left, so the runner reports a test only when nothing of it runs.
    ///
    /// # Errors
    ///
    /// Why the replacement could not start.
    pub(crate) fn finish(self, frame_arrived: bool) -> Result<()> {
        let Lease { server, slot } = self;
        let slot = if frame_arrived {
            slot
        } else if server.server.is_none() {
            // A lone slot has no fork server to clean up after it: this runner, its
            // subreaper, does, and the run has no slot left.
            let pid = slot.pid;
            drop(slot);
            let _ = sys::retry_on_eintr(|| waitpid(pid, None));
            direct::kill_and_reap_orphans();
            return Ok(());
        } else {
            let pid = slot.pid;
            // Closing our end ends the old slot if it is in fact still alive.
            drop(slot);
            server.start_slot(Some(pid))?
        };
        server
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
        Ok(())
    }
}

/// Waits for a slot's hello on `socket`: its pid, sent once it runs.
fn hello(socket: OwnedFd) -> Result<Slot> {
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

fn sys_error(call: &'static str, source: Errno) -> Error {
    Error::Sys { call, source }
}
