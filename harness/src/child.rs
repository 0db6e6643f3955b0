//! What runs inside the sandbox: the supervisor, the PID namespace's init, and the test.
//!
//! ```text
//! fork server ── fork ──> supervisor: unshare, id maps, mounts, lo, hostname, offsets
//!                           │  (subreaper; waits, kills leftovers, writes the exit frame)
//!                           ├─ fork ──> test process              (mount or time, no pid)
//!                           └─ fork ──> init, PID 1 ── fork ──> test, PID 2 (with pid)
//! ```
//!
//! Tests without mount, PID and time namespaces have no supervisor: a slot (see `slot`)
//! forks the test process, which builds the sandbox itself ([`run_direct`]), and the slot
//! does the supervisor's waiting ([`finish`]).
//!
//! All of these are forks of the single-threaded fork server and spawn no threads (the
//! test runs on the test process's main thread), so they may allocate and print freely.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Pid, getppid};

use crate::error::{Error, Result};
use crate::panic_output;
use crate::protocol::{EXIT_FRAME_LEN, ExitFrame, Report, Termination};
use crate::registry::Test;
use crate::sandbox::{self, pid};
use crate::sys;

/// The runner's ends of one test's pipes, as the fork server received them.
pub(crate) struct Channels {
    /// Where the test process (or a failing setup) writes its [`Report`].
    pub report: OwnedFd,
    /// Where the supervisor writes the [`ExitFrame`].
    pub exit: OwnedFd,
    /// The test's stdout and stderr; `None` with `--nocapture`.
    pub output: Option<OwnedFd>,
}

/// The supervisor: builds the sandbox, starts the test, and reports how it ended once
/// every process of the test is gone. Never returns.
pub(crate) fn supervise(test: &'static Test, channels: Channels) -> ! {
    let Channels {
        report,
        exit,
        output,
    } = channels;
    let test_child = match prepare_supervisor(test).and_then(|()| fork_test_side(test)) {
        Ok(TestSide::Child(private_frame)) => {
            drop(exit);
            match test.plan.pid {
                true => run_init(test, report, output, private_frame),
                false => run_test(test, report, output, false),
            }
        }
        Ok(TestSide::Parent(child, frame_from_init)) => {
            drop(report);
            drop(output);
            (child, frame_from_init)
        }
        Err(error) => {
            send_report(&report, &setup_failed(&error));
            sys::exit_now(0);
        }
    };
    let (child, frame_from_init) = test_child;
    finish(test, child, frame_from_init, &exit);
    sys::exit_now(0)
}

/// Waits for the test side `child` to end, killing it at the test's timeout, makes sure
/// nothing it started is left, and writes the exit frame. The caller is the parent of
/// `child` and a subreaper, so the test's orphans are its children too.
pub(crate) fn finish(
    test: &'static Test,
    child: Pid,
    frame_from_init: Option<OwnedFd>,
    exit: &OwnedFd,
) {
    let deadline = test
        .timeout()
        .map(|secs| Instant::now() + Duration::from_secs(secs));
    let Some(end) = pid::reap_until_deadline(child, deadline) else {
        // Timed out. Killing the test process (or init, which takes the whole PID
        // namespace with it) and then every leftover leaves nothing running.
        let _ = kill(child, Signal::SIGKILL);
        let _ = pid::reap_until(child);
        let leaked = pid::kill_and_reap_leftovers(kill_children);
        let frame = ExitFrame {
            test: Termination::TimedOut,
            leaked,
        };
        let _ = write_all(exit, &frame.encode());
        return;
    };
    let end = Some(end);
    let frame = match frame_from_init {
        // With a PID namespace, init has killed and reaped the rest and knows how the test
        // (PID 2) ended; the supervisor only knows how init ended, the fallback when init
        // died without a word. Either way nothing of the namespace is left once init has
        // been reaped: when a PID namespace's init exits, the kernel kills every other
        // process in it and waits for them (pid_namespaces(7); zap_pid_ns_processes).
        Some(reader) => read_frame(&reader).or(end.map(|test| ExitFrame { test, leaked: 0 })),
        // Without one, leftovers were re-parented to this subreaper: kill and reap them.
        None => end.map(|test| ExitFrame {
            test,
            leaked: pid::kill_and_reap_leftovers(kill_children),
        }),
    };
    if let Some(frame) = frame {
        let _ = write_all(exit, &frame.encode());
    }
}

/// The supervisor's own setup before any namespace exists.
fn prepare_supervisor(test: &'static Test) -> Result<()> {
    let sys_error = |call| move |source| Error::Sys { call, source };
    die_with_parent()?;
    // As a subreaper, orphans of the test (daemons, double forks) are re-parented here
    // instead of to the host's init, so they can be found and killed (prctl(2)).
    prctl::set_child_subreaper(true).map_err(sys_error("prctl(PR_SET_CHILD_SUBREAPER, 1)"))?;
    sandbox::enter(&test.plan)
}

/// Sets `PR_SET_PDEATHSIG` to SIGKILL, then checks that the parent did not die before it
/// took effect (prctl(2): the signal is sent when the parent *thread* exits, and not at
/// all if it was already gone).
pub(crate) fn die_with_parent() -> Result<()> {
    let parent = getppid();
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(|source| Error::Sys {
        call: "prctl(PR_SET_PDEATHSIG, SIGKILL)",
        source,
    })?;
    if getppid() != parent {
        sys::exit_now(1);
    }
    Ok(())
}

enum TestSide {
    /// In the forked child; with a PID namespace, the pipe for init's exit frame.
    Child(Option<OwnedFd>),
    /// In the supervisor: the child's pid and, with a PID namespace, init's frame pipe.
    Parent(Pid, Option<OwnedFd>),
}

fn fork_test_side(test: &'static Test) -> Result<TestSide> {
    let frame_pipe = if test.plan.pid {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|source| Error::Sys {
                call: "pipe2(O_CLOEXEC)",
                source,
            })?;
        Some((read, write))
    } else {
        None
    };
    let what = if test.plan.pid {
        "PID namespace init"
    } else {
        "test process"
    };
    match sys::fork().map_err(|source| Error::Fork { what, source })? {
        ForkResult::Child => Ok(TestSide::Child(frame_pipe.map(|(_, write)| write))),
        ForkResult::Parent { child } => {
            Ok(TestSide::Parent(child, frame_pipe.map(|(read, _)| read)))
        }
    }
}

/// PID 1 of the test's PID namespace: mounts a fresh /proc (with `mount`), forks the test
/// as PID 2, reaps, kills the rest when the test ends, and tells the supervisor.
fn run_init(
    test: &'static Test,
    report: OwnedFd,
    output: Option<OwnedFd>,
    frame: Option<OwnedFd>,
) -> ! {
    let frame = frame.expect("init is only forked with a frame pipe");
    let started = (|| {
        die_with_parent()?;
        if test.plan.mount {
            sandbox::mount::mount_fresh_proc()?;
        }
        sys::fork().map_err(|source| Error::Fork {
            what: "test process",
            source,
        })
    })();
    let test_pid = match started {
        Ok(ForkResult::Child) => {
            drop(frame);
            run_test(test, report, output, false)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(error) => {
            send_report(&report, &setup_failed(&error));
            sys::exit_now(0);
        }
    };
    drop(report);
    drop(output);
    if let Some(end) = pid::reap_until(test_pid) {
        let leaked = pid::kill_and_reap_leftovers(pid::kill_namespace);
        let _ = write_all(&frame, &ExitFrame { test: end, leaked }.encode());
    }
    sys::exit_now(0)
}

/// Where the panic hook leaves the location of the last panic, for the report.
static PANIC_LOCATION: Mutex<Option<String>> = Mutex::new(None);

/// The test this process runs; set only in test processes. A mutex rather than a
/// `OnceLock`: its uncontended lock is inline, where `OnceLock::set` runs cold code, and
/// each code page a fresh fork runs for the first time is a page fault.
static RUNNING: Mutex<Option<&'static Test>> = Mutex::new(None);

/// The test this process runs, or `None` outside a test process. `network` asks: a
/// `Network` may only be built inside a test, and lists its hosts in `/etc/hosts` only
/// when the test has a mount namespace of its own.
pub(crate) fn running_test() -> Option<&'static Test> {
    *RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the panic hook of test processes. The fork server calls it once, before it
/// forks anything, so that a test process inherits the hook instead of allocating one
/// (every heap page a fresh fork writes is a page fault). In a test process the hook
/// records the location for the report and names the panicking main thread after the
/// test (see `panic_output`); anywhere else it is std's default hook.
pub(crate) fn install_panic_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let running = *RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        let Some(test) = running else {
            return default_hook(info);
        };
        if let Some(location) = info.location() {
            *PANIC_LOCATION.lock().unwrap_or_else(|e| e.into_inner()) = Some(location.to_string());
        }
        // The main thread's id is the process id (gettid(2)). Asking std instead would
        // register a thread-local destructor in every test process.
        if nix::unistd::gettid() == nix::unistd::getpid() {
            panic_output::print_as(&test.name(), || default_hook(info));
        } else {
            default_hook(info);
        }
    }));
}

/// A test whose plan [runs without a supervisor](crate::sandbox::Plan::runs_direct): the
/// child of a slot (see `slot`) that builds the sandbox in itself and runs the test, so
/// each such test costs one process instead of two.
pub(crate) fn run_direct(test: &'static Test, report: OwnedFd, output: Option<OwnedFd>) -> ! {
    run_test(test, report, output, true)
}

/// The test process: enters the sandbox when `build_sandbox` (otherwise its supervisor
/// did), runs the test function, with panic messages that read `thread 'name' panicked at
/// ...` as libtest's do, and reports the result.
fn run_test(
    test: &'static Test,
    report: OwnedFd,
    output: Option<OwnedFd>,
    build_sandbox: bool,
) -> ! {
    let setup = (|| {
        die_with_parent()?;
        if build_sandbox {
            sandbox::enter(&test.plan)?;
        }
        if let Some(output) = output {
            let dup_error = |call| move |source| Error::Sys { call, source };
            nix::unistd::dup2_stdout(output.as_fd()).map_err(dup_error("dup2(output, 1)"))?;
            nix::unistd::dup2_stderr(output.as_fd()).map_err(dup_error("dup2(output, 2)"))?;
        }
        Ok(())
    })();
    if let Err(error) = setup {
        send_report(&report, &setup_failed(&error));
        sys::exit_now(0);
    }

    *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) = Some(test);

    // The test runs on this process's only thread rather than on a thread of its own as
    // in libtest: in a freshly forked process, creating a thread costs about as much as
    // the whole user-namespace sandbox (its stack and TLS are fresh pages, each a page
    // fault). So the panic message gets the test's name from `panic_output`, and the
    // backtrace is cut where libtest cuts it.
    let outcome = std::panic::catch_unwind(|| __rust_begin_short_backtrace(test.run));
    let result = match outcome {
        Ok(Ok(())) => Report::Passed,
        Ok(Err(debug)) => {
            // What libtest's `Termination` impl for `Result` prints.
            eprintln!("Error: {debug}");
            Report::ReturnedErr { debug }
        }
        Err(payload) => Report::Panicked {
            message: panic_message(payload.as_ref()),
            location: PANIC_LOCATION
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        },
    };
    let _ = std::io::stdout().flush();
    match result {
        Report::Passed => drop(write_all(&report, &Report::PASSED)),
        other => send_report(&report, &other),
    }
    sys::exit_now(0)
}

/// Calls the test. std's backtrace printer drops the frames below a function of this name,
/// so a `RUST_BACKTRACE=1` backtrace starts at the test, as libtest's do (libtest calls its
/// tests through a function of the same name).
#[inline(never)]
fn __rust_begin_short_backtrace<T>(run: fn() -> T) -> T {
    let result = run();
    // Keeps this frame on the stack (no tail call), so the printer can find it.
    std::hint::black_box(());
    result
}

/// The text of a panic payload, as libtest shows it.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

pub(crate) fn setup_failed(error: &Error) -> Report {
    Report::SetupFailed {
        step: error.step(),
        errno: error.errno(),
        detail: error.to_string(),
    }
}

/// Writes the report; if the runner is gone there is no one left to tell.
pub(crate) fn send_report(fd: &OwnedFd, report: &Report) {
    let _ = write_all(fd, &report.encode());
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_frame(fd: &OwnedFd) -> Option<ExitFrame> {
    let mut buf = [0u8; EXIT_FRAME_LEN];
    let mut filled = 0;
    while filled < buf.len() {
        match nix::unistd::read(fd, &mut buf[filled..]) {
            Ok(0) => return None,
            Ok(n) => filled += n,
            Err(Errno::EINTR) => {}
            Err(_) => return None,
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
