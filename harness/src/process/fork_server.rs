//! Runs in: the fork server, a small single-threaded fork of the runner made before the
//! runner's first thread (at the top of `nstest::main!()`'s `main`, or in the constructor
//! that libtest's harness runs before its `main`). It forks the slots, and is the last
//! line of clean-up.
//!
//! From then on the runner (which has worker threads, libtest's or its own, and grows with
//! every test) never forks: slots come from a pool the runner threads share, each asked of
//! the fork server once (a `SOCK_SEQPACKET` socket's end attached with `SCM_RIGHTS`,
//! unix(7)), and the runner sends each test to an idle slot. Forking is thus always from a
//! process of the same few megabytes, which keeps the per-test cost flat (fork costs about
//! 35 µs per MB of the forking process), and the forked child may do anything, since its
//! parent has no other thread that could hold a lock. It needs no exec, so the test's code
//! is already mapped.
//!
//! It is a subreaper, so when a slot dies before its test (a test that killed its parent,
//! a Ctrl-C) the test's processes are re-parented here rather than to the host's init; any
//! child that is not a live slot is such a stray and is killed at once. A replacement slot
//! starts only once its predecessor is reaped and no stray is left, and says hello only
//! then, so the runner thread that waits for that hello reports the test only once
//! everything it started is gone.

use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, getpid, getppid};

use super::{slot, test_process};
use crate::coverage;
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::sys;
use crate::wire::request::{self, Request};

pub(crate) use super::slot::HELLO_LEN;

/// Forks the fork server. Returns the runner's end of the request socket and the server's
/// pid. Must be called while the process has a single thread; tests are named in requests
/// by the address of their `Test` (see `wire::request`), so they must exist by now.
///
/// Also returns the runner's end of a socket to a first slot, which the fork server starts
/// at once, unasked: while the runner parses its command line and picks its tests, the
/// first slot is forked on another core, off the path of a process that runs one test
/// (every test under nextest).
///
/// `one_thread`: the run runs its tests one at a time (`--test-threads 1`). The runner,
/// the fork server and the one slot then stay on the CPU the runner runs on now; each test
/// process (and init) gets every CPU back as it starts (`slot::leave_the_slot`). A test
/// is a chain of hand-offs (runner → slot → test → slot → runner): where the scheduler
/// spreads them over CPUs each wake-up crosses to another CPU, and each `fork` of the
/// slot sends a TLB shoot-down to the CPU that last ran it (its pages become
/// copy-on-write). On a VM both are an interrupt between virtual CPUs, an exit to the
/// hypervisor each. Measured here (2 vCPUs, 10 rounds of 1,000 `net` tests against the
/// floor, interleaved): 1.21 times the floor unpinned, 1.06 pinned. With more threads the
/// slots would share that one CPU, so they are not pinned.
///
/// `memory_limits`: some test may have a `memory` limit, so the fork server makes the
/// run's `memory` cgroup too (`sandbox::leaf::open_run`).
///
/// # Errors
///
/// [`Error::Multithreaded`] if another thread exists, or the failing call.
pub(crate) fn start(
    one_thread: bool,
    memory_limits: bool,
    needs: &Plan,
) -> Result<(OwnedFd, OwnedFd, Pid)> {
    super::prepare_run(needs)?;
    if one_thread {
        sys::process::pin_to_this_cpu();
    }
    let (runner_end, server_end) = request::socket_pair()?;
    let (first_slot_runner_end, first_slot) = request::socket_pair()?;
    let runner = getpid();
    match sys::fork().map_err(|source| Error::Fork {
        what: "fork server",
        source,
    })? {
        ForkResult::Child => {
            // Only test processes write coverage profiles; the runner writes its own.
            coverage::stop_writing();
            // The runner's ends must not stay open here: a slot sees its runner thread go
            // only when every copy of that end is closed.
            drop(runner_end);
            drop(first_slot_runner_end);
            serve(server_end, first_slot, runner, memory_limits)
        }
        ForkResult::Parent { child } => {
            drop(first_slot);
            Ok((runner_end, first_slot_runner_end, child))
        }
    }
}

/// The fork server's state: the slots it started and has not reaped, the slot requests
/// that wait for their predecessor to be reaped and for no stray to be left, and whether
/// strays were left the last time it looked.
#[derive(Default)]
struct Slots {
    live: HashSet<Pid>,
    waiting: Vec<(Option<Pid>, OwnedFd)>,
    strays_left: bool,
}

/// The fork server's loop. Exits when the runner closes its end or dies, after every
/// process it started is gone.
fn serve(socket: OwnedFd, first_slot: OwnedFd, runner: Pid, memory_limits: bool) -> ! {
    let signals = match prepare_server(runner, memory_limits) {
        Ok(signals) => signals,
        Err(_) => sys::exit_now(1),
    };
    sys::release_free_heap();
    // What every test process needs, done once here instead of in each fresh fork: the
    // panic hook, and std's stdout (its buffer is allocated on first use; a test process
    // flushes stdout before it reports).
    test_process::install_panic_hook();
    drop(std::io::stdout());
    let mut slots = Slots::default();
    slots.waiting.push((None, first_slot));
    start_slots(&socket, &signals, &mut slots);
    let mut cmsg_buffer = nix::cmsg_space!([RawFd; Request::MAX_FDS]);
    loop {
        let mut polled = [
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        if sys::retry_on_eintr(|| poll(&mut polled, PollTimeout::NONE)).is_err() {
            shut_down(&slots);
        }
        let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
        let (socket_ready, signal_ready) = (ready(&polled[0]), ready(&polled[1]));
        // SIGCHLD first: a slot request that waits for its predecessor may then go ahead.
        if signal_ready {
            while let Ok(Some(info)) = signals.read_signal() {
                if info.ssi_signo != Signal::SIGCHLD as u32 {
                    // SIGTERM (the runner died: PDEATHSIG) or SIGINT (Ctrl-C).
                    shut_down(&slots);
                }
            }
            reap(&mut slots);
        }
        if socket_ready {
            match request::receive(&socket, &mut cmsg_buffer) {
                Some((Request::StartSlot { replacing }, mut fds)) => {
                    let replacing = replacing.map(|pid| Pid::from_raw(pid as i32));
                    let end = fds.pop().expect("a slot request carries one descriptor");
                    slots.waiting.push((replacing, end));
                }
                // Tests go to slots; one sent here is dropped with its descriptors, which
                // its runner thread sees as a test that ended without a word.
                Some((Request::RunTest { .. }, _)) => {}
                // The runner is done, so every test has ended and the slots are idle:
                // they are killed on the way out.
                None => shut_down(&slots),
            }
        }
        if !slots.waiting.is_empty() {
            start_slots(&socket, &signals, &mut slots);
        }
    }
}

/// Dies with the runner (by SIGTERM, which it can catch and clean up after), becomes a
/// subreaper, makes the run's cgroups (`memory` too with `memory_limits`), and takes
/// SIGCHLD, SIGTERM and SIGINT through a signalfd.
fn prepare_server(runner: Pid, memory_limits: bool) -> nix::Result<SignalFd> {
    prctl::set_pdeathsig(Signal::SIGTERM)?;
    if getppid() != runner {
        sys::exit_now(1);
    }
    prctl::set_child_subreaper(true)?;
    crate::sandbox::leaf::open_run(memory_limits);
    let mut mask = SigSet::empty();
    for signal in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
        mask.add(signal);
    }
    mask.thread_block()?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// Starts the slots whose predecessor has been reaped, once no stray process is left.
fn start_slots(socket: &OwnedFd, signals: &SignalFd, slots: &mut Slots) {
    if slots.strays_left {
        return;
    }
    let mut i = 0;
    while i < slots.waiting.len() {
        let (after, _) = &slots.waiting[i];
        if after.is_some_and(|pid| slots.live.contains(&pid)) {
            i += 1;
            continue;
        }
        let (_, end) = slots.waiting.swap_remove(i);
        match sys::fork() {
            Ok(ForkResult::Child) => {
                leave_the_fork_server(socket, signals, slots);
                slot::serve(end)
            }
            Ok(ForkResult::Parent { child }) => {
                slots.live.insert(child);
            }
            // Dropping the slot's end tells the runner thread (EOF instead of a hello).
            Err(_) => {}
        }
    }
}

/// In a fresh fork of the fork server: closes what belongs to the fork server and
/// unblocks signals. Nothing of it may outlive this fork in a sandbox: not the request
/// socket, not the signal mask, not other slots' sockets.
///
/// Closed by number, reading the state only: dropping its entries would write to heap
/// pages this fresh fork shares with the fork server, a page fault each. The state itself
/// is never dropped here, since this process never returns to the loop that owns it.
fn leave_the_fork_server(socket: &OwnedFd, signals: &SignalFd, slots: &Slots) {
    for (_, end) in &slots.waiting {
        let _ = sys::close_inherited(end.as_raw_fd());
    }
    let _ = sys::close_inherited(socket.as_raw_fd());
    let _ = sys::close_inherited(signals.as_fd().as_raw_fd());
    if SigSet::empty().thread_set_mask().is_err() {
        sys::exit_now(1);
    }
}

/// Reaps what has ended and, if something other than a slot that ended cleanly did,
/// kills the strays. A slot exits with status 0 when its runner thread closes its socket,
/// with nothing running; killed, it leaves its test's processes behind.
fn reap(slots: &mut Slots) {
    let mut look_for_strays = slots.strays_left;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(status) => {
                let Some(pid) = status.pid() else { continue };
                let slot = slots.live.remove(&pid);
                if slot {
                    crate::sandbox::leaf::slot_ended(pid.as_raw().unsigned_abs());
                }
                let clean = slot && matches!(status, WaitStatus::Exited(_, 0));
                look_for_strays |= !clean;
            }
        }
    }
    if look_for_strays {
        slots.strays_left = kill_strays(&slots.live) > 0;
    }
}

/// SIGKILL to every child that is not one of `keep`; returns how many there were.
fn kill_strays(keep: &HashSet<Pid>) -> usize {
    let strays: Vec<Pid> = sys::children_of_self()
        .into_iter()
        .filter(|pid| !keep.contains(pid))
        .collect();
    for pid in &strays {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    strays.len()
}

/// Kills every slot and stray, waits until no child is left, and exits.
fn shut_down(slots: &Slots) -> ! {
    for pid in &slots.live {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    let none = HashSet::new();
    loop {
        let _ = kill_strays(&none);
        if sys::retry_on_eintr(|| waitpid(None::<Pid>, None)).is_err() {
            crate::sandbox::leaf::close_run();
            sys::exit_now(0);
        }
    }
}
