//! Runs in: a slot, one long-lived fork of the fork server per runner thread. Runs that
//! thread's tests one after another, each in a fresh sandbox: waits for it with its
//! timeout, kills what it left, and writes its exit frame.
//!
//! ```text
//! slot (subreaper) ── fork, per test without pid ──> test process: builds its sandbox
//!   │                                                 (unshare, id maps, mounts, lo,
//!   │                                                 hostname, time), runs the test
//!   └─ clone(NEWUSER|NEWPID|..), per test with pid ──> init, PID 1 ── fork ──> test, PID 2
//! ```
//!
//! A slot is forked once per runner thread, not once per test, so a test costs the
//! processes its sandbox needs and no more: one without a PID namespace (a mount, time,
//! network, UTS or IPC namespace can each be entered by the process itself), two with one
//! (init and the test; see `init`).
//!
//! The slot is a subreaper (prctl(2)), so a test's orphans are re-parented to it; it
//! waits for the test on a pidfd with the deadline, then kills and reaps every leftover,
//! and only then writes the exit frame. The last process of a mount namespace tears the
//! namespace down in its own exit (an RCU grace period, measured at 0.05 to 0.08 ms per
//! sandbox here), which the slot's `waitpid` includes; the README's Performance section
//! has the measurements.
//!
//! A test can kill its parent, the slot: the test process dies with it (PDEATHSIG), and
//! the fork server, the subreaper above the slot, kills whatever else is left. The runner
//! thread sees the test end without an exit frame and asks for a new slot, which the fork
//! server starts only once it has reaped the old one and no stray process is left; so a
//! test is reported only once every process of it is gone.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::prctl;
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{MsgFlags, send};
use nix::unistd::{ForkResult, Pid, getegid, geteuid, getpid};

use super::{
    Channels, die_with_parent, init, reap, send_report, setup_failed, test_process, write_all,
};
use crate::error::{Error, Result};
use crate::registry::Test;
use crate::sandbox;
use crate::sandbox::leaf::SlotLeaf;
use crate::sys;
use crate::wire::request::{self, Request};
use crate::wire::{EXIT_FRAME_LEN, ExitFrame, LimitsHit, Termination};

/// A slot's first message on its socket: its pid, little-endian. Sent once it runs, which
/// for a replacement slot is once the processes its predecessor left are gone.
pub(crate) const HELLO_LEN: usize = 4;

/// The slot's loop: one test per request on `socket`, until the runner thread closes it.
pub(super) fn serve(socket: OwnedFd) -> ! {
    if prepare(&socket).is_err() {
        sys::exit_now(1);
    }
    let mut leaf = SlotLeaf::join();
    let mut cmsg_buffer = nix::cmsg_space!([RawFd; Request::MAX_FDS]);
    loop {
        let Some((request, fds)) = request::receive(&socket, &mut cmsg_buffer) else {
            sys::exit_now(0)
        };
        // Anything but a test request is dropped with its descriptors, which the runner
        // sees as a test that ended without a word.
        let Request::RunTest {
            test, timeout_secs, ..
        } = request
        else {
            continue;
        };
        if let Some(channels) = Channels::from_request(fds) {
            let timeout = timeout_secs.map(|secs| Duration::from_secs(secs.into()));
            run(sys::static_at(test), timeout, channels, &socket, &mut leaf);
        }
    }
}

/// Dies with the fork server, becomes the subreaper of its tests' processes (prctl(2)), and
/// says hello.
fn prepare(socket: &OwnedFd) -> Result<()> {
    die_with_parent()?;
    prctl::set_child_subreaper(true).map_err(|source| Error::Sys {
        call: "prctl(PR_SET_CHILD_SUBREAPER, 1)",
        source,
    })?;
    let hello = getpid().as_raw().to_le_bytes();
    sys::retry_on_eintr(|| send(socket.as_raw_fd(), &hello, MsgFlags::MSG_NOSIGNAL))
        .map(drop)
        .map_err(|source| Error::Sys {
            call: "send(slot hello)",
            source,
        })
}

/// Runs one test in a fresh sandbox and writes its exit frame once every process of it is
/// gone. The slot runs one test at a time, so all its children belong to this test.
fn run(
    test: &'static Test,
    timeout: Option<Duration>,
    channels: Channels,
    socket: &OwnedFd,
    leaf: &mut SlotLeaf,
) {
    let Channels {
        report,
        exit,
        output,
    } = channels;
    let started = if let Err(error) = leaf.set_for(&test.plan) {
        Err(StartFailed {
            error,
            report,
            exit,
        })
    } else if test.plan.pid {
        start_init(test, socket, report, exit, output)
    } else {
        start_test_process(test, socket, report, exit, output)
    };
    match started {
        Ok(Started {
            child,
            frame_from_init,
            exit,
        }) => finish(test, timeout, child, frame_from_init, &exit, leaf),
        Err(StartFailed {
            error,
            report,
            exit,
        }) => {
            // The sandbox never started: what the report says is all there is, and the
            // frame says so as a test process that failed its setup says it (status 0,
            // nothing left). Without a frame the runner would take this slot for dead.
            send_report(&report, &setup_failed(&error));
            let frame = ExitFrame {
                test: Termination::Exited(0),
                leaked: 0,
                limits: LimitsHit::default(),
            };
            let _ = write_all(&exit, &frame.encode());
        }
    }
}

/// A sandbox the slot started: its first process, init's frame pipe (with a PID
/// namespace), and the exit pipe the slot writes the frame to.
struct Started {
    child: Pid,
    frame_from_init: Option<OwnedFd>,
    exit: OwnedFd,
}

/// A sandbox the slot could not start: why, and the report and exit pipes to say so on.
struct StartFailed {
    error: Error,
    report: OwnedFd,
    exit: OwnedFd,
}

/// In a fresh child: closes what the test must not hold: the slot's socket (it could send
/// requests) and the exit pipe (it could forge its frame).
fn leave_the_slot(socket: &OwnedFd, exit: OwnedFd) {
    let _ = sys::close_inherited(socket.as_raw_fd());
    drop(exit);
}

/// Without a PID namespace: the test process is a plain fork that builds its sandbox in
/// itself.
fn start_test_process(
    test: &'static Test,
    socket: &OwnedFd,
    report: OwnedFd,
    exit: OwnedFd,
    output: Option<OwnedFd>,
) -> std::result::Result<Started, StartFailed> {
    match sys::fork() {
        Ok(ForkResult::Child) => {
            leave_the_slot(socket, exit);
            test_process::run(test, report, output, true)
        }
        Ok(ForkResult::Parent { child }) => Ok(Started {
            child,
            frame_from_init: None,
            exit,
        }),
        Err(source) => Err(StartFailed {
            error: Error::Fork {
                what: "test process",
                source,
            },
            report,
            exit,
        }),
    }
}

/// With a PID namespace: init is cloned straight into the new namespaces, and tells the
/// slot on a pipe of its own how the test (PID 2) ended.
fn start_init(
    test: &'static Test,
    socket: &OwnedFd,
    report: OwnedFd,
    exit: OwnedFd,
    output: Option<OwnedFd>,
) -> std::result::Result<Started, StartFailed> {
    let (frame_read, frame_write) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(pipe) => pipe,
        Err(source) => {
            let call = "pipe2(O_CLOEXEC)";
            let error = Error::Sys { call, source };
            return Err(StartFailed {
                error,
                report,
                exit,
            });
        }
    };
    // Read before the clone: inside the new user namespace the ids read as the overflow id
    // until init has written the maps (user_namespaces(7)).
    let ids = (geteuid(), getegid());
    let flags = sandbox::init_clone_flags(&test.plan);
    match sys::clone_into_namespaces(flags) {
        Ok(ForkResult::Child) => {
            leave_the_slot(socket, exit);
            drop(frame_read);
            init::run(test, report, output, frame_write, ids)
        }
        Ok(ForkResult::Parent { child }) => Ok(Started {
            child,
            frame_from_init: Some(frame_read),
            exit,
        }),
        Err(source) => Err(StartFailed {
            error: Error::Clone {
                flags: sandbox::flag_names(flags),
                source,
            },
            report,
            exit,
        }),
    }
}

/// Waits for the test side `child` to end, killing it at the test's timeout, makes sure
/// nothing it started is left, and writes the exit frame. The slot is the parent of
/// `child` and a subreaper, so the test's orphans are its children too.
fn finish(
    test: &'static Test,
    timeout: Option<Duration>,
    child: Pid,
    frame_from_init: Option<OwnedFd>,
    exit: &OwnedFd,
    leaf: &mut SlotLeaf,
) {
    let deadline = timeout.map(|after| Instant::now() + after);
    let cpu_before = reaped_cpu();
    // Once everything of the test is reaped, the slot's children's CPU time has grown by
    // exactly the tree's: each process is reaped by its parent, by init or by this
    // subreaper, and each reaper's count holds what it reaped (getrusage(2)).
    let cpu_reached = |test: &Test| {
        test.plan.limits.cpu_secs.is_some_and(|secs| {
            reaped_cpu().saturating_sub(cpu_before) >= Duration::from_secs(secs)
        })
    };
    let Some(end) = wait_within_limits(test, child, deadline) else {
        // Timed out, or at the CPU time limit of the tree. Killing the test process (or
        // init, which takes the whole PID namespace with it) and then every leftover
        // leaves nothing running.
        let at_cpu_limit =
            test.plan.limits.cpu_secs.is_some() && deadline.is_none_or(|at| Instant::now() < at);
        let _ = kill(child, Signal::SIGKILL);
        let end = reap::reap_until(child);
        let leaked = reap::kill_and_reap_leftovers(kill_children);
        let mut limits = leaf.hits(&test.plan);
        limits.cpu = at_cpu_limit || cpu_reached(test);
        let frame = ExitFrame {
            test: match (at_cpu_limit, end) {
                (true, Some(end)) => end,
                _ => Termination::TimedOut,
            },
            leaked,
            limits,
        };
        let _ = write_all(exit, &frame.encode());
        return;
    };
    let frame = match frame_from_init {
        // With a PID namespace, init has killed and reaped the rest and knows how the test
        // (PID 2) ended; the slot only knows how init ended, the fallback when init died
        // without a word. Either way nothing of the namespace is left once init has been
        // reaped: when a PID namespace's init exits, the kernel kills every other process
        // in it and waits for them (pid_namespaces(7); zap_pid_ns_processes).
        Some(reader) => read_frame(&reader).unwrap_or(ExitFrame {
            test: end,
            leaked: 0,
            limits: LimitsHit::default(),
        }),
        // Without one, leftovers were re-parented to this subreaper: kill and reap them.
        None => ExitFrame {
            test: end,
            leaked: reap::kill_and_reap_leftovers(kill_children),
            limits: LimitsHit::default(),
        },
    };
    let mut limits = leaf.hits(&test.plan);
    limits.cpu = cpu_reached(test);
    let frame = ExitFrame { limits, ..frame };
    let _ = write_all(exit, &frame.encode());
}

/// User and system CPU time of the slot's reaped children (getrusage(2),
/// `RUSAGE_CHILDREN`).
fn reaped_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(Duration::ZERO, |usage| {
        let micros = |tv: nix::sys::time::TimeVal| {
            Duration::from_secs(tv.tv_sec().unsigned_abs())
                + Duration::from_micros(tv.tv_usec().unsigned_abs())
        };
        micros(usage.user_time()) + micros(usage.system_time())
    })
}

/// How often the slot adds up the CPU time of a test that has a `cpu` limit.
const CPU_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Waits for `child` as [`reap::reap_until_deadline`] does; with a `cpu` limit, also
/// wakes every [`CPU_CHECK_EVERY`] to add up the CPU time of the test's whole tree, and
/// returns `None` early once it reaches the limit. (Each process also has the limit as its
/// own `RLIMIT_CPU`, which stops one process alone at once.)
fn wait_within_limits(
    test: &'static Test,
    child: Pid,
    deadline: Option<Instant>,
) -> Option<Termination> {
    let Some(secs) = test.plan.limits.cpu_secs else {
        return reap::reap_until_deadline(child, deadline);
    };
    let limit = secs.saturating_mul(sandbox::limits::ticks_per_second());
    loop {
        let step = Instant::now() + CPU_CHECK_EVERY;
        let until = deadline.map_or(step, |at| at.min(step));
        if let Some(end) = reap::reap_until_deadline(child, Some(until)) {
            return Some(end);
        }
        if deadline.is_some_and(|at| Instant::now() >= at)
            || sandbox::limits::tree_cpu_ticks() >= limit
        {
            return None;
        }
    }
}

fn read_frame(fd: &OwnedFd) -> Option<ExitFrame> {
    let mut buf = [0u8; EXIT_FRAME_LEN];
    let mut filled = 0;
    while filled < buf.len() {
        match sys::retry_on_eintr(|| nix::unistd::read(fd, &mut buf[filled..])) {
            Ok(0) | Err(_) => return None,
            Ok(n) => filled += n,
        }
    }
    ExitFrame::decode(&buf).ok()
}

/// Without a PID namespace: SIGKILL to every child of this subreaper.
fn kill_children() {
    for pid in sys::children_of_self() {
        let _ = kill(pid, Signal::SIGKILL);
    }
}
