//! The fork server: a small, single-threaded process that forks a supervisor per test, and
//! a slot per runner thread for the tests that need no supervisor (see `slot`).
//!
//! `nstest::main!()` starts it first thing, while the test binary is still
//! single-threaded and small. From then on the runner (which has libtest-mimic's worker
//! threads and grows with every test) never forks: each test thread sends a request over a
//! `SOCK_SEQPACKET` socket with the three pipe ends of its test attached (`SCM_RIGHTS`,
//! unix(7)), to the fork server or to its slot, which forks. Forking is thus always from a process of the same
//! few megabytes, which keeps the per-test cost flat (fork costs about 35 µs per MB of the
//! forking process), and the forked child may do anything, since its parent has no other
//! thread that could hold a lock. It needs no exec, so the test's code is already mapped.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, Shutdown, SockFlag, SockType,
    recv, recvmsg, sendmsg, shutdown, socketpair,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, getpid, getppid};

use crate::child::{self, Channels};
use crate::error::{Error, Result};
use crate::registry::Test;
use crate::{slot, sys};

/// A request: the test's index (`u32`) and flags (`u32`), little-endian.
const REQUEST_LEN: usize = 8;
/// Flag: the third attached descriptor is the output pipe.
const FLAG_CAPTURE: u32 = 1;
/// Flag: a request for a slot (see `slot`). The one descriptor attached is the slot's end
/// of its socket; the first field is not a test but the pid of the slot this one replaces
/// (0: none), which must have been reaped, with no stray left, before the new one starts.
const FLAG_SLOT: u32 = 2;

thread_local! {
    /// The calling runner thread's slot, started on its first direct test.
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
    /// The test's plan [runs direct](crate::sandbox::Plan::runs_direct): it goes to the
    /// calling thread's slot, not to a supervisor of its own.
    pub direct: bool,
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

    /// Starts a test: a direct one in the calling thread's slot (started on first use, and
    /// replaced if it has died), any other through a supervisor the fork server forks. Safe
    /// to call from many threads at once: each request is one datagram, which the kernel
    /// delivers whole.
    ///
    /// # Errors
    ///
    /// `sendmsg(2)`'s errno (EPIPE: the fork server is gone), or why no slot could start.
    pub(crate) fn spawn(&self, request: &Request<'_>) -> Result<()> {
        let mut fds: Vec<RawFd> = vec![request.report.as_raw_fd(), request.exit.as_raw_fd()];
        let mut flags = 0;
        if let Some(output) = request.output {
            fds.push(output.as_raw_fd());
            flags |= FLAG_CAPTURE;
        }
        let bytes = encode_request(request.index, flags);
        if !request.direct {
            return send_request(&self.socket, &bytes, &fds).map_err(|source| {
                request_error("sendmsg(request to the nstest fork server)", source)
            });
        }
        SLOT.with(|slot| {
            let mut slot = slot.borrow_mut();
            let mut replaced = false;
            loop {
                let current = match slot.take() {
                    Some(current) => current,
                    None => self.start_slot(None)?,
                };
                match send_request(&current.socket, &bytes, &fds) {
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
                        return Err(request_error("sendmsg(request to an nstest slot)", source));
                    }
                }
            }
        })
    }

    /// A direct test ended without an exit frame, so the calling thread's slot died (the
    /// test killed it). Replaces it, and returns once the fork server has reaped it and
    /// killed every process it left: the runner reports a test only when nothing of it
    /// runs. Without a slot (none started yet) there is nothing to do.
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
        .map_err(|source| request_error("socketpair(AF_UNIX, SOCK_SEQPACKET)", source))?;
        let after = replacing.map_or(0, |pid| pid.as_raw().unsigned_abs());
        send_request(
            &self.socket,
            &encode_request(after, FLAG_SLOT),
            &[slot_end.as_raw_fd()],
        )
        .map_err(|source| {
            request_error("sendmsg(slot request to the nstest fork server)", source)
        })?;
        drop(slot_end);
        let mut hello = [0u8; slot::HELLO_LEN];
        loop {
            match recv(socket.as_raw_fd(), &mut hello, MsgFlags::empty()) {
                Ok(slot::HELLO_LEN) => break,
                Err(Errno::EINTR) => {}
                // EOF: the fork server could not fork the slot, or is gone.
                Ok(_) => {
                    return Err(request_error(
                        "recv(hello from an nstest slot)",
                        Errno::EPIPE,
                    ));
                }
                Err(source) => {
                    return Err(request_error("recv(hello from an nstest slot)", source));
                }
            }
        }
        Ok(Slot {
            socket,
            pid: Pid::from_raw(i32::from_le_bytes(hello)),
        })
    }
}

fn request_error(call: &'static str, source: Errno) -> Error {
    Error::Sys { call, source }
}

/// A request's bytes: the test's index (or a slot's predecessor) and the flags.
fn encode_request(index: u32, flags: u32) -> [u8; REQUEST_LEN] {
    let mut bytes = [0u8; REQUEST_LEN];
    bytes[..4].copy_from_slice(&index.to_le_bytes());
    bytes[4..].copy_from_slice(&flags.to_le_bytes());
    bytes
}

/// Sends one request datagram with `fds` attached.
fn send_request(socket: &OwnedFd, bytes: &[u8; REQUEST_LEN], fds: &[RawFd]) -> nix::Result<()> {
    let cmsgs = [ControlMessage::ScmRights(fds)];
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(bytes)],
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(source) => return Err(source),
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
/// wait for the last stray process to die; the slots it started and has not reaped, and
/// the slot requests that wait for their predecessor to be reaped and for no stray to be
/// left.
#[derive(Default)]
struct Supervisors {
    live: HashMap<Pid, OwnedFd>,
    ended: Vec<OwnedFd>,
    slots: HashSet<Pid>,
    waiting_slots: Vec<(Option<Pid>, OwnedFd)>,
    strays_left: bool,
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
                Some((after, FLAG_SLOT, mut fds)) if fds.len() == 1 => {
                    let after = (after != 0).then(|| Pid::from_raw(after as i32));
                    let end = fds.pop().expect("one descriptor");
                    supervisors.waiting_slots.push((after, end));
                }
                Some(request) => {
                    start_supervisor(tests, request, &socket, &signals, &mut supervisors)
                }
                // The runner is done: once every supervisor has ended, exit. Its slots
                // are idle by then, and are killed on the way out.
                None => socket = None,
            }
        }
        if !supervisors.waiting_slots.is_empty() {
            start_slots(tests, &socket, &signals, &mut supervisors);
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

/// A test request's test and pipes; `None` for a malformed request, whose descriptors are
/// then dropped: the runner sees a sandbox that ended without a word.
pub(crate) fn unpack(
    tests: &[&'static Test],
    (index, flags, mut fds): (u32, u32, Vec<OwnedFd>),
) -> Option<(&'static Test, Channels)> {
    let wanted = if flags & FLAG_CAPTURE != 0 { 3 } else { 2 };
    let test = tests.get(index as usize).filter(|_| fds.len() == wanted)?;
    let output = (wanted == 3).then(|| fds.pop().expect("three descriptors"));
    let exit = fds.pop().expect("two descriptors");
    let report = fds.pop().expect("two descriptors");
    Some((
        test,
        Channels {
            report,
            exit,
            output,
        },
    ))
}

fn start_supervisor(
    tests: &[&'static Test],
    request: (u32, u32, Vec<OwnedFd>),
    socket: &Option<OwnedFd>,
    signals: &SignalFd,
    supervisors: &mut Supervisors,
) {
    let Some((test, channels)) = unpack(tests, request) else {
        return;
    };
    match sys::fork() {
        Ok(ForkResult::Child) => {
            leave_the_fork_server(socket, signals, supervisors);
            child::supervise(test, channels)
        }
        Ok(ForkResult::Parent { child }) => {
            supervisors.live.insert(child, channels.exit);
        }
        // The descriptors close here, so the runner sees EOF on all three.
        Err(_) => {}
    }
}

/// Starts the slots whose predecessor has been reaped, once no stray process is left.
fn start_slots(
    tests: &[&'static Test],
    socket: &Option<OwnedFd>,
    signals: &SignalFd,
    supervisors: &mut Supervisors,
) {
    if supervisors.strays_left {
        return;
    }
    let mut i = 0;
    while i < supervisors.waiting_slots.len() {
        let (after, _) = &supervisors.waiting_slots[i];
        if after.is_some_and(|pid| supervisors.slots.contains(&pid)) {
            i += 1;
            continue;
        }
        let (_, end) = supervisors.waiting_slots.swap_remove(i);
        match sys::fork() {
            Ok(ForkResult::Child) => {
                leave_the_fork_server(socket, signals, supervisors);
                slot::serve(tests, end)
            }
            Ok(ForkResult::Parent { child }) => {
                supervisors.slots.insert(child);
            }
            // Dropping the slot's end tells the runner thread (EOF instead of a hello).
            Err(_) => {}
        }
    }
}

/// In a fresh fork of the fork server: closes what belongs to the fork server and
/// unblocks signals. Nothing of it may outlive this fork in a sandbox: not the request
/// socket, not the signal mask, and above all not the other tests' exit pipes (which would
/// delay their results until this test ends) or other slots' sockets.
///
/// Closed by number, reading the state only: dropping its entries would write to heap
/// pages this fresh fork shares with the fork server, a page fault each. The state itself
/// is never dropped here, since this process never returns to the loop that owns it.
fn leave_the_fork_server(socket: &Option<OwnedFd>, signals: &SignalFd, supervisors: &Supervisors) {
    for exit in supervisors.live.values().chain(&supervisors.ended) {
        let _ = sys::close_inherited(exit.as_raw_fd());
    }
    for (_, end) in &supervisors.waiting_slots {
        let _ = sys::close_inherited(end.as_raw_fd());
    }
    let _ = socket.as_ref().map(|s| sys::close_inherited(s.as_raw_fd()));
    let _ = sys::close_inherited(signals.as_fd().as_raw_fd());
    if SigSet::empty().thread_set_mask().is_err() {
        sys::exit_now(1);
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
                if supervisors.slots.remove(&pid) {
                    // A slot exits with 0 when its runner thread closes its socket, with
                    // nothing running; killed, it leaves its test's processes behind.
                    look_for_strays |= !matches!(status, WaitStatus::Exited(_, 0));
                    continue;
                }
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
    if look_for_strays {
        let left = kill_strays(supervisors);
        supervisors.strays_left = left > 0;
        if left == 0 {
            supervisors.ended.clear();
        }
    }
}

/// SIGKILL to every child that is not a live supervisor or slot; returns how many there
/// were.
fn kill_strays(supervisors: &Supervisors) -> usize {
    let strays: Vec<Pid> = sys::children_of_self()
        .into_iter()
        .filter(|pid| !supervisors.live.contains_key(pid) && !supervisors.slots.contains(pid))
        .collect();
    for pid in &strays {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    strays.len()
}

/// Kills every supervisor, slot and stray, waits until no child is left, and exits.
fn shut_down(supervisors: &mut Supervisors) -> ! {
    for pid in supervisors.live.keys().chain(&supervisors.slots) {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    let none = Supervisors::default();
    loop {
        let _ = kill_strays(&none);
        match waitpid(None::<Pid>, None) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => sys::exit_now(0),
        }
    }
}

/// Receives one request with its descriptors (marked close-on-exec) into `space`, a
/// buffer made by `nix::cmsg_space!` for three. `None` on EOF or an unrecoverable error.
pub(crate) fn receive(socket: &OwnedFd, space: &mut Vec<u8>) -> Option<(u32, u32, Vec<OwnedFd>)> {
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
