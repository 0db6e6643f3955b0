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

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{MsgFlags, send};
use nix::unistd::{ForkResult, Pid, getegid, geteuid, getpid, getppid};

use super::reap::Waited;
use super::{Channels, die_with_parent, init, never_started, reap, test_process, write_all};
use crate::error::{Error, Result};
use crate::registry::Test;
use crate::sandbox;
use crate::sandbox::leaf::{LimitWatch, SlotLeaf};
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
    serve_requests(&socket, &[socket.as_raw_fd()], None, None)
}

/// One test per request on `socket`, until the runner thread closes it. `held` and
/// `interrupt` are as for [`run`]; `runner` is a lone slot's runner, which it outlives.
fn serve_requests(
    socket: &OwnedFd,
    held: &[RawFd],
    interrupt: Option<&SignalFd>,
    runner: Option<Pid>,
) -> ! {
    let mut leaf = SlotLeaf::join(runner.is_some());
    let mut cmsg_buffer = nix::cmsg_space!([RawFd; Request::MAX_FDS]);
    loop {
        let Some((request, fds)) = request::receive(socket, &mut cmsg_buffer) else {
            // A lone slot's runner removes the run's cgroup directories once it has
            // reaped the slot; when the runner is gone, the slot does.
            if runner.is_some_and(|runner| getppid() != runner) {
                leaf.leave_run();
            }
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
            let test = sys::static_at(test);
            run(test, timeout, channels, held, interrupt, &mut leaf);
        }
    }
}

/// A slot forked by the runner itself for the one test it runs (`direct`): no fork
/// server above it and no socket, the test handed over in the fork. It is then the last
/// line of clean-up too, as the fork server is for pooled slots: it dies with the runner
/// by SIGTERM (the runner may be killed by any signal, SIGKILL included, and the test's
/// leftovers must still go), and Ctrl-C reaches it with the whole process group; either
/// way, taken through a signalfd, it kills the test and everything it left, and exits.
/// It holds the test's cgroup leaves and watches its CPU time as a pooled slot does.
pub(super) fn run_alone(
    test: &'static Test,
    timeout: Option<Duration>,
    channels: Channels,
    runner: Pid,
) -> ! {
    let Ok(signals) = prepare_alone(runner) else {
        sys::exit_now(1)
    };
    let held = [signals.as_fd().as_raw_fd()];
    let mut leaf = SlotLeaf::join(true);
    run(test, timeout, channels, &held, Some(&signals), &mut leaf);
    sys::exit_now(0)
}

/// A lone slot that waits for its one test on `socket`: libtest's harness running one test,
/// whose runner is multithreaded by the time the test's thread asks (see `direct`). Says
/// hello, serves requests one after another as a pooled slot does, and exits when the
/// runner closes its end.
pub(super) fn serve_alone(socket: OwnedFd, runner: Pid) -> ! {
    let Ok(signals) = prepare_alone(runner) else {
        sys::exit_now(1)
    };
    if say_hello(&socket).is_err() {
        sys::exit_now(1);
    }
    let held = [socket.as_raw_fd(), signals.as_fd().as_raw_fd()];
    serve_requests(&socket, &held, Some(&signals), Some(runner))
}

/// A lone slot's start: SIGTERM when the runner dies, checked against a runner already
/// gone, the subreaper of its test's processes, and its signals through a signalfd.
fn prepare_alone(runner: Pid) -> Result<SignalFd> {
    let call = |call| move |source| Error::Sys { call, source };
    prctl::set_pdeathsig(Signal::SIGTERM).map_err(call("prctl(PR_SET_PDEATHSIG, SIGTERM)"))?;
    if getppid() != runner {
        sys::exit_now(1);
    }
    prctl::set_child_subreaper(true).map_err(call("prctl(PR_SET_CHILD_SUBREAPER, 1)"))?;
    let mut mask = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        mask.add(signal);
    }
    mask.thread_block()
        .map_err(call("sigprocmask(SIG_BLOCK)"))?;
    SIGNALS_BLOCKED.store(true, Ordering::Relaxed);
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(call("signalfd(SIGTERM|SIGINT|SIGHUP)"))
}

/// Dies with the fork server, becomes the subreaper of its tests' processes (prctl(2)), and
/// says hello.
fn prepare(socket: &OwnedFd) -> Result<()> {
    die_with_parent()?;
    prctl::set_child_subreaper(true).map_err(|source| Error::Sys {
        call: "prctl(PR_SET_CHILD_SUBREAPER, 1)",
        source,
    })?;
    say_hello(socket)
}

/// The hello: this slot's pid, once it runs.
fn say_hello(socket: &OwnedFd) -> Result<()> {
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
/// `held` are the slot's own descriptors, which no child may keep; `interrupt`, a lone
/// slot's signalfd, ends the wait early.
fn run(
    test: &'static Test,
    timeout: Option<Duration>,
    channels: Channels,
    held: &[RawFd],
    interrupt: Option<&SignalFd>,
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
        // Init reads the cgroup counters itself; only the CPU time is the slot's to add.
        let adds_limits = test.plan.limits.cpu_secs.is_some();
        let watch = leaf.watch(&test.plan);
        start_init(test, held, report, exit, output, adds_limits, watch)
    } else {
        start_test_process(test, held, report, exit, output)
    };
    match started {
        Ok(Started {
            child,
            init,
            exit,
            held_open,
        }) => {
            finish(test, timeout, child, init, &exit, leaf, interrupt);
            drop(held_open);
        }
        // Without a frame the runner would take this slot for dead.
        Err(StartFailed {
            error,
            report,
            exit,
        }) => never_started(&error, &report, &exit),
    }
}

/// A sandbox the slot started: its first process, where init's frame goes (with a PID
/// namespace), and the exit pipe.
struct Started {
    child: Pid,
    init: InitFrame,
    exit: OwnedFd,
    /// The slot's copies of the report and output pipes, closed only once the frame is
    /// written: so the runner never wakes for their end-of-file, only for the frame (and
    /// for what the test prints), and then reads what is left in them without waiting.
    held_open: (OwnedFd, Option<OwnedFd>),
}

/// Where the frame of a PID namespace's init goes.
enum InitFrame {
    /// No init: the test process is the slot's child, and the slot writes the frame.
    NoInit,
    /// Straight to the runner's exit pipe: init reads the cgroup counters itself (see
    /// `SlotLeaf::watch`), the slot has no CPU time to add, and the runner
    /// hears the test end without waiting for the slot to wake, read the frame and write
    /// it again (one wake-up of a process fewer on a test's way). Init's status 0 says it
    /// wrote it.
    ToRunner,
    /// To the slot, on this pipe, which adds whether the CPU time limit was reached.
    ToSlot(OwnedFd),
}

/// A sandbox the slot could not start: why, and the report and exit pipes to say so on.
struct StartFailed {
    error: Error,
    report: OwnedFd,
    exit: OwnedFd,
}

/// Whether this slot blocked the signals it takes through a signalfd (a lone slot).
static SIGNALS_BLOCKED: AtomicBool = AtomicBool::new(false);

/// In a fresh child: gives back the CPUs a run of one thread kept its slot off (see
/// `fork_server::start`), closes the slot's own descriptors (its socket could send
/// requests), and unblocks the signals a lone slot takes through its signalfd.
fn leave_the_slot(held: &[RawFd]) {
    sys::process::unpin();
    for fd in held {
        let _ = sys::close_inherited(*fd);
    }
    if SIGNALS_BLOCKED.load(Ordering::Relaxed) && SigSet::empty().thread_set_mask().is_err() {
        sys::exit_now(1);
    }
}

/// Without a PID namespace: the test process is a plain fork that builds its sandbox in
/// itself.
fn start_test_process(
    test: &'static Test,
    held: &[RawFd],
    report: OwnedFd,
    exit: OwnedFd,
    output: Option<OwnedFd>,
) -> std::result::Result<Started, StartFailed> {
    match sys::fork() {
        Ok(ForkResult::Child) => {
            leave_the_slot(held);
            // The test must not hold the exit pipe: it could forge its frame.
            drop(exit);
            test_process::run(test, report, output, true)
        }
        Ok(ForkResult::Parent { child }) => Ok(Started {
            child,
            init: InitFrame::NoInit,
            exit,
            held_open: (report, output),
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

/// With a PID namespace: init is cloned straight into the new namespaces, and writes the
/// exit frame itself: it alone knows how the test (PID 2) ended and what was left, and it
/// reads the slot's cgroup counters (`watch`) to say which limits the kernel enforced. It
/// writes it on the runner's exit pipe, or, when `adds_limits` (the slot watches the
/// test's CPU time), on a pipe of the slot's, which adds whether that limit was reached.
fn start_init(
    test: &'static Test,
    held: &[RawFd],
    report: OwnedFd,
    exit: OwnedFd,
    output: Option<OwnedFd>,
    adds_limits: bool,
    watch: LimitWatch<'_>,
) -> std::result::Result<Started, StartFailed> {
    let pipe = match adds_limits {
        true => nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map(Some),
        false => Ok(None),
    };
    let frame_pipe = match pipe {
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
            leave_the_slot(held);
            let frame = match frame_pipe {
                Some((read, write)) => {
                    drop((read, exit));
                    write
                }
                None => exit,
            };
            init::run(test, report, output, frame, ids, None, watch)
        }
        Ok(ForkResult::Parent { child }) => Ok(Started {
            child,
            init: match frame_pipe {
                Some((read, _write)) => InitFrame::ToSlot(read),
                None => InitFrame::ToRunner,
            },
            exit,
            held_open: (report, output),
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
    init: InitFrame,
    exit: &OwnedFd,
    leaf: &mut SlotLeaf,
    interrupt: Option<&SignalFd>,
) {
    let deadline = timeout.map(|after| Instant::now() + after);
    // Read only for a test with a `cpu` limit: one system call less on every other's way.
    let cpu_before = match test.plan.limits.cpu_secs {
        Some(_) => reaped_cpu(),
        None => Duration::ZERO,
    };
    // Once everything of the test is reaped, the slot's children's CPU time has grown by
    // exactly the tree's: each process is reaped by its parent, by init or by this
    // subreaper, and each reaper's count holds what it reaped (getrusage(2)).
    let cpu_reached = |test: &Test| {
        test.plan.limits.cpu_secs.is_some_and(|secs| {
            reaped_cpu().saturating_sub(cpu_before) >= Duration::from_secs(secs)
        })
    };
    let end = match wait_within_limits(test, child, deadline, interrupt) {
        Waited::Ended(end) => Some(end),
        Waited::TimedOut => None,
        // A lone slot whose runner is gone or interrupted: no one reads a frame, and no
        // one else removes the run's cgroup directories.
        Waited::Interrupted => {
            let _ = kill(child, Signal::SIGKILL);
            let _ = reap::reap_until(child);
            let _ = reap::kill_and_reap_leftovers(kill_children);
            leaf.leave_run();
            sys::exit_now(1)
        }
    };
    let Some(end) = end else {
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
    // With a PID namespace, init has killed and reaped the rest and knows how the test
    // (PID 2) ended; the slot only knows how init ended, the fallback when init died
    // without a word. Either way nothing of the namespace is left once init has been
    // reaped: when a PID namespace's init exits, the kernel kills every other process in
    // it and waits for them (pid_namespaces(7); zap_pid_ns_processes).
    let init_died = ExitFrame::nothing_left(end);
    let frame = match init {
        // Init wrote the frame to the runner itself, with the limits it read, when it
        // exited with status 0: the counters only need to catch up for the next test.
        InitFrame::ToRunner if end == Termination::Exited(0) => {
            let _ = leaf.hits(&test.plan);
            return;
        }
        InitFrame::ToRunner => init_died,
        InitFrame::ToSlot(reader) => read_frame(&reader).unwrap_or(init_died),
        // Without one, leftovers were re-parented to this subreaper: kill and reap them.
        InitFrame::NoInit => ExitFrame {
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
    interrupt: Option<&SignalFd>,
) -> Waited {
    let interrupt = interrupt.map(AsFd::as_fd);
    let Some(secs) = test.plan.limits.cpu_secs else {
        return reap::wait_for(child, deadline, interrupt);
    };
    let limit = secs.saturating_mul(sandbox::limits::ticks_per_second());
    loop {
        let step = Instant::now() + CPU_CHECK_EVERY;
        let until = deadline.map_or(step, |at| at.min(step));
        match reap::wait_for(child, Some(until), interrupt) {
            Waited::TimedOut => {}
            waited => return waited,
        }
        if deadline.is_some_and(|at| Instant::now() >= at)
            || sandbox::limits::tree_cpu_ticks() >= limit
        {
            return Waited::TimedOut;
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

/// Without a PID namespace: SIGKILL to every child of this subreaper (a slot, or the
/// runner that runs one test).
pub(super) fn kill_children() {
    for pid in sys::children_of_self() {
        let _ = kill(pid, Signal::SIGKILL);
    }
}
