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

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, Shutdown, SockFlag, SockType,
    recvmsg, sendmsg, shutdown, socketpair,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
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
                serve(&tests, server_end, runner)
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

/// The fork server's state: the supervisors it started and has not reaped yet, each with
/// its copy of the runner's exit pipe, and the copies whose supervisor is gone but which
/// wait for the last stray process to die.
#[derive(Default)]
struct Supervisors {
    live: HashMap<Pid, OwnedFd>,
    ended: Vec<OwnedFd>,
}

/// The fork server's loop. Exits when the runner closes its end or dies, after every
/// process it started is gone.
///
/// It is a subreaper, so when a supervisor dies before its test (a test that killed its
/// parent, a Ctrl-C) the test's processes are re-parented here rather than to the host's
/// init; any child that is not a live supervisor is such a stray and is killed at once.
/// It keeps a copy of each test's exit pipe until that supervisor is reaped and no stray
/// is left, so the runner's end-of-file on that pipe means the test's processes are all
/// gone, whatever happened to them.
fn serve(tests: &[&'static Test], socket: OwnedFd, runner: Pid) -> ! {
    let signals = match prepare_server(runner) {
        Ok(signals) => signals,
        Err(_) => sys::exit_now(1),
    };
    sys::release_free_heap();
    // What every test process needs, done once here instead of in each fresh fork: the
    // panic hook, and std's stdout (its buffer is allocated on first use; a test process
    // flushes stdout before it reports).
    child::install_panic_hook();
    drop(std::io::stdout());
    let mut supervisors = Supervisors::default();
    let mut socket = Some(socket);
    // The loop allocates little: after each fork every page the fork server writes is a
    // copy-on-write fault, and malloc and free write to several (perf: 6 of its 9 faults
    // per test were in malloc and free). The poll set lives on the stack and the
    // control-message buffer is reused; what is left is the received descriptors' Vecs.
    let mut cmsg_buffer = nix::cmsg_space!([RawFd; 3]);
    loop {
        let signal_fd = PollFd::new(signals.as_fd(), PollFlags::POLLIN);
        let mut both;
        let mut only_signals;
        let polled: &mut [PollFd] = match socket.as_ref() {
            Some(s) => {
                both = [PollFd::new(s.as_fd(), PollFlags::POLLIN), signal_fd];
                &mut both
            }
            None => {
                only_signals = [signal_fd];
                &mut only_signals
            }
        };
        match poll(polled, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => shut_down(&mut supervisors),
        }
        let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
        let (socket_ready, signal_ready) = match polled {
            [s, g] => (ready(s), ready(g)),
            [g] => (false, ready(g)),
            _ => (false, false),
        };
        if signal_ready {
            while let Ok(Some(info)) = signals.read_signal() {
                if info.ssi_signo != Signal::SIGCHLD as u32 {
                    // SIGTERM (the runner died: PDEATHSIG) or SIGINT (Ctrl-C).
                    shut_down(&mut supervisors);
                }
            }
            reap(&mut supervisors);
        }
        if socket_ready {
            match socket.as_ref().and_then(|s| receive(s, &mut cmsg_buffer)) {
                Some(request) => {
                    start_supervisor(tests, request, &socket, &signals, &mut supervisors)
                }
                // The runner is done: once every supervisor has ended, exit.
                None => socket = None,
            }
        }
        if socket.is_none() && supervisors.live.is_empty() {
            shut_down(&mut supervisors);
        }
    }
}

/// Dies with the runner (by SIGTERM, which it can catch and clean up after), becomes a
/// subreaper, and takes SIGCHLD, SIGTERM and SIGINT through a signalfd.
fn prepare_server(runner: Pid) -> nix::Result<SignalFd> {
    prctl::set_pdeathsig(Signal::SIGTERM)?;
    if getppid() != runner {
        sys::exit_now(1);
    }
    prctl::set_child_subreaper(true)?;
    let mut mask = SigSet::empty();
    for signal in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
        mask.add(signal);
    }
    mask.thread_block()?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

fn start_supervisor(
    tests: &[&'static Test],
    (index, flags, mut fds): (u32, u32, Vec<OwnedFd>),
    socket: &Option<OwnedFd>,
    signals: &SignalFd,
    supervisors: &mut Supervisors,
) {
    let wanted = if flags & FLAG_CAPTURE != 0 { 3 } else { 2 };
    let Some(test) = tests.get(index as usize).filter(|_| fds.len() == wanted) else {
        // A malformed request: dropping the descriptors closes the pipes, which the
        // runner sees as a sandbox that ended without a word.
        return;
    };
    let output = (wanted == 3).then(|| fds.pop().expect("three descriptors"));
    let exit = fds.pop().expect("two descriptors");
    let report = fds.pop().expect("two descriptors");
    match sys::fork() {
        Ok(ForkResult::Child) => {
            // Nothing of the fork server may outlive this fork in the sandbox: not the
            // request socket, not the signal mask, and above all not the other tests'
            // exit pipes, which would delay their results until this test ends.
            // Closed by number, reading the map only: dropping its entries would write
            // to heap pages this fresh fork shares with the fork server, a page fault
            // each. The map itself is never dropped here, since this process never
            // returns to the loop that owns it.
            for exit in supervisors.live.values().chain(&supervisors.ended) {
                let _ = sys::close_inherited(exit.as_raw_fd());
            }
            let _ = socket.as_ref().map(|s| sys::close_inherited(s.as_raw_fd()));
            let _ = sys::close_inherited(signals.as_fd().as_raw_fd());
            if SigSet::empty().thread_set_mask().is_err() {
                sys::exit_now(1);
            }
            child::supervise(
                test,
                Channels {
                    report,
                    exit,
                    output,
                },
            )
        }
        Ok(ForkResult::Parent { child }) => {
            supervisors.live.insert(child, exit);
        }
        // The descriptors close here, so the runner sees EOF on all three.
        Err(_) => {}
    }
}

/// Reaps what has ended, kills strays, and releases the exit pipes of ended supervisors
/// once no stray is left.
///
/// A supervisor that exits with status 0 has killed and reaped everything of its test
/// (`child::supervise`), so only another ending (a supervisor killed, or a stray reaped)
/// sends the fork server looking for strays in /proc; the common case costs no syscall.
fn reap(supervisors: &mut Supervisors) {
    let mut look_for_strays = !supervisors.ended.is_empty();
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(status) => {
                let Some(pid) = status.pid() else { continue };
                match supervisors.live.remove(&pid) {
                    Some(exit) if matches!(status, WaitStatus::Exited(_, 0)) => drop(exit),
                    Some(exit) => {
                        supervisors.ended.push(exit);
                        look_for_strays = true;
                    }
                    None => look_for_strays = true,
                }
            }
        }
    }
    if look_for_strays && kill_strays(&supervisors.live) == 0 {
        supervisors.ended.clear();
    }
}

/// SIGKILL to every child that is not a live supervisor; returns how many there were.
fn kill_strays(live: &HashMap<Pid, OwnedFd>) -> usize {
    let strays: Vec<Pid> = sys::children_of_self()
        .into_iter()
        .filter(|pid| !live.contains_key(pid))
        .collect();
    for pid in &strays {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    strays.len()
}

/// Kills every supervisor and stray, waits until no child is left, and exits.
fn shut_down(supervisors: &mut Supervisors) -> ! {
    for pid in supervisors.live.keys() {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    loop {
        let _ = kill_strays(&HashMap::new());
        match waitpid(None::<Pid>, None) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => sys::exit_now(0),
        }
    }
}

/// Receives one request with its descriptors (marked close-on-exec) into `space`, a
/// buffer made by `nix::cmsg_space!` for three. `None` on EOF or an unrecoverable error.
fn receive(socket: &OwnedFd, space: &mut Vec<u8>) -> Option<(u32, u32, Vec<OwnedFd>)> {
    let mut bytes = [0u8; REQUEST_LEN];
    loop {
        let (len, fds) = {
            let mut iov = [IoSliceMut::new(&mut bytes)];
            let msg = match recvmsg::<()>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut *space),
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
