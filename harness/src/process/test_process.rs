//! Runs in: the test process, a fork of the slot (or, with a PID namespace, of its init,
//! as PID 2). Builds the sandbox when no init did, runs the test function on its only
//! thread, and writes the report.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use super::{die_with_parent, panic_output, send_report, setup_failed, write_all};
use crate::coverage;
use crate::error::Error;
use crate::registry::Test;
use crate::sandbox;
use crate::sys;
use crate::wire::note::MAX_NOTES;
use crate::wire::{Note, Report};

/// Where the panic hook leaves the location of the last panic, for the report.
static PANIC_LOCATION: Mutex<Option<String>> = Mutex::new(None);

/// The test this process runs; set only in test processes. A mutex rather than a
/// `OnceLock`: its uncontended lock is inline, where `OnceLock::set` runs cold code, and
/// each code page a fresh fork runs for the first time is a page fault.
static RUNNING: Mutex<Option<&'static Test>> = Mutex::new(None);

/// The report pipe (a duplicate) while the test function runs, with the notes sent on it
/// so far: `None` before, and again once the report is being written, so that a note never
/// lands inside the report.
static NOTES: Mutex<Option<(OwnedFd, usize)>> = Mutex::new(None);

/// Sends `note` to the runner (see `wire::note`), which names it if the test fails. Does
/// nothing outside a test process, after the [`MAX_NOTES`]th note, or for a note too long
/// to send whole.
pub(crate) fn send_note(note: &Note) {
    let mut notes = NOTES.lock().unwrap_or_else(|e| e.into_inner());
    let Some((fd, sent)) = notes.as_mut() else {
        return;
    };
    let Some(bytes) = note.encode().filter(|_| *sent < MAX_NOTES) else {
        return;
    };
    *sent += 1;
    // One write of at most MAX_NOTE_LEN (< PIPE_BUF) bytes: the pipe takes it whole.
    let _ = sys::retry_on_eintr(|| nix::unistd::write(&*fd, &bytes));
}

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
        // Text printed without a newline is still in stdout's buffer; libtest's capture
        // holds it before the panic message, so it goes out first here too.
        let _ = std::io::stdout().flush();
        // The main thread's id is the process id (gettid(2)). Asking std instead would
        // register a thread-local destructor in every test process.
        if nix::unistd::gettid() == nix::unistd::getpid() {
            panic_output::print_as(test.name(), || default_hook(info));
        } else {
            default_hook(info);
        }
    }));
}

/// The test process: enters the sandbox when `build_sandbox` (otherwise its init did),
/// runs the test function, with panic messages that read `thread 'name' panicked at ...`
/// as libtest's do, and reports the result.
pub(super) fn run(
    test: &'static Test,
    report: OwnedFd,
    output: Option<OwnedFd>,
    build_sandbox: bool,
) -> ! {
    // Before anything else runs here: counts inherited from the processes above are not
    // this test's.
    coverage::count_from_here();
    let setup = (|| {
        die_with_parent()?;
        if build_sandbox {
            sandbox::enter(&test.plan)?;
        }
        sandbox::limits::apply_in_test_process(
            &test.plan,
            sandbox::leaf::enforced(),
            !build_sandbox,
        )?;
        if let Some(output) = output {
            let dup_error = |call| move |source| Error::Sys { call, source };
            nix::unistd::dup2_stdout(output.as_fd()).map_err(dup_error("dup2(output, 1)"))?;
            nix::unistd::dup2_stderr(output.as_fd()).map_err(dup_error("dup2(output, 2)"))?;
        }
        // Last, so that the test's wall clock starts where the test does.
        if let Some(wall) = test.plan.wall {
            start_wall_clock(wall)?;
        }
        Ok(())
    })();
    if let Err(error) = setup {
        send_report(&report, &setup_failed(&error));
        sys::exit_now(0);
    }

    *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) = Some(test);
    if let Ok(dup) = report.try_clone() {
        *NOTES.lock().unwrap_or_else(|e| e.into_inner()) = Some((dup, 0));
    }

    // The test runs on this process's only thread rather than on a thread of its own as
    // in libtest: in a freshly forked process, creating a thread costs about as much as
    // the whole user-namespace sandbox (its stack and TLS are fresh pages, each a page
    // fault). So the panic message gets the test's name from `panic_output`, and the
    // backtrace is cut where libtest cuts it.
    let outcome = std::panic::catch_unwind(|| __rust_begin_short_backtrace(test.run));
    let result = match outcome {
        Ok(Ok(())) => Report::Passed,
        Ok(Err(debug)) => {
            // What libtest's `Termination` impl for `Result` prints, after what the test
            // printed without a newline (still in stdout's buffer).
            let _ = std::io::stdout().flush();
            eprintln!("Error: {debug}");
            Report::ReturnedErr {
                debug,
                at_pids_limit: sandbox::limits::at_pids_limit(),
            }
        }
        Err(payload) => Report::Panicked {
            message: panic_message(payload.as_ref()),
            location: PANIC_LOCATION
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
            at_pids_limit: sandbox::limits::at_pids_limit(),
        },
    };
    let _ = std::io::stdout().flush();
    if let Some((notes, _)) = NOTES.lock().unwrap_or_else(|e| e.into_inner()).take() {
        // Not closed: the test may have closed it already (a test that closes every
        // inherited descriptor), and closing it again is what `OwnedFd`'s drop aborts on.
        // The process exits in a moment, which closes it.
        std::mem::forget(notes);
    }
    // Before the report, so that a runtime error about the profile is in the test's
    // output; and before `_exit`, which skips the runtime's `atexit` writer.
    coverage::write_counts();
    match result {
        Report::Passed => drop(write_all(&report, &Report::PASSED)),
        other => send_report(&report, &other),
    }
    sys::exit_now(0)
}

/// Starts the test's own wall clock (`wall = "..."`).
#[cfg(nstest_wall)]
fn start_wall_clock(wall: crate::plan::Wall) -> Result<(), Error> {
    sandbox::wall::start(wall)
}

/// Where the C library is not glibc, or not 64-bit, the wall clock cannot be shifted.
#[cfg(not(nstest_wall))]
fn start_wall_clock(_wall: crate::plan::Wall) -> Result<(), Error> {
    Err(Error::Sys {
        call: "wall = \"...\" (a wall clock of the test's own needs the GNU C library on a 64-bit target)",
        source: nix::errno::Errno::ENOSYS,
    })
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
