//! The libtest-mimic glue: registered tests become trials; each trial asks the fork server
//! for a sandbox, collects what comes back, classifies it and prints it as libtest would.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::duration;
use crate::error::{Error, Result};
use crate::sandbox::Plan;
use crate::sys;
use crate::test::{self as registry, Test};
use crate::wire::{EXIT_FRAME_LEN, ExitFrame, MAX_REPORT_LEN, REPORT_HEADER_LEN, Report};
use capture::{Captured, KEEP_EACH};
use client::{ForkServer, TestPipes};
use diagnosis::HostFacts;
use outcome::Outcome;
use probe::Missing;

mod capture;
mod client;
mod diagnosis;
pub(crate) mod doctor;
mod outcome;
mod probe;

/// The fork server, shared by all trial threads.
static SERVER: OnceLock<ForkServer> = OnceLock::new();
/// What the host probe found missing, set before the first test.
static MISSING: OnceLock<Vec<Missing>> = OnceLock::new();
/// `NSTEST_UNSUPPORTED=skip`: tests needing what the host lacks are ignored, not failed.
static SKIP_UNSUPPORTED: OnceLock<bool> = OnceLock::new();
/// Tests that passed but left processes running, which were killed: `(name, count)`.
static LEAKED: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());
/// Tests skipped for lack of a capability: `(what is missing, test name)`.
static SKIPPED: Mutex<Vec<(&'static str, String)>> = Mutex::new(Vec::new());
/// With `--show-output`: the captured output of each passing test, `(name, output)`.
static SUCCESSES: Mutex<Option<Vec<(String, String)>>> = Mutex::new(None);

/// libtest flags that libtest-mimic's parser rejects and nstest does not act on: taken
/// off the command line (with their value, where they take one) and named once on stderr,
/// so that tools passing them keep working and nobody is misled.
const ACCEPTED_NOT_ACTED_ON: &[(&str, bool, &str)] = &[
    ("--report-time", false, "test times are not reported"),
    ("--ensure-time", false, "test times are not checked"),
    ("--shuffle", false, "tests run in name order"),
    ("--shuffle-seed", true, "tests run in name order"),
];

/// The command line without the flags of [`ACCEPTED_NOT_ACTED_ON`], and a note per flag.
fn without_unsupported_flags(args: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut notes = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            kept.push(arg);
            kept.extend(args.by_ref());
            break;
        }
        let name = arg.split_once('=').map_or(arg.as_str(), |(name, _)| name);
        match ACCEPTED_NOT_ACTED_ON
            .iter()
            .find(|(flag, ..)| *flag == name)
        {
            Some((flag, takes_value, consequence)) => {
                if *takes_value && !arg.contains('=') {
                    args.next();
                }
                notes.push(format!(
                    "nstest: {flag} is accepted but not acted on: {consequence}"
                ));
            }
            None => kept.push(arg),
        }
    }
    (kept, notes)
}

/// Runs every registered test and exits like libtest: 0 if all passed, 101 otherwise.
pub fn run_main() -> ! {
    run_main_then(|| {})
}

/// [`run_main`], calling `in_runner` in the runner process once the fork server is
/// running, before the first test. The benchmark uses it to grow the runner and show that
/// per-test cost does not grow with it; tests never see anything it does.
pub fn run_main_then(in_runner: fn()) -> ! {
    let (argv, notes) = without_unsupported_flags(std::env::args().collect());
    let args = Arguments::from_iter(argv);
    for note in notes {
        eprintln!("{note}");
    }
    if args.show_output && !args.nocapture {
        *SUCCESSES.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }
    if let Err(message) = registry::read_default_timeout().and_then(|()| read_unsupported()) {
        eprintln!("nstest: {message}");
        std::process::exit(101);
    }
    let tests = registry::all_tests();
    // The fork server starts before anything is allocated per test (the trials, their
    // names): each fork it makes copies its page tables, and each sandbox process unmaps
    // them again when it exits, so every page it holds is paid twice per test. It serves
    // the probe too, whose first sandbox needs what any test needs (the selection is not
    // known yet; a kind only unselected tests need costs a few more probe sandboxes, and
    // only on a host that lacks it). `--list` (which nextest runs for every binary)
    // starts no process at all.
    let probes = probe::probe_tests(Plan::union(tests.iter().map(|test| &test.plan)));
    if !args.list {
        if let Err(error) = start_fork_server() {
            eprintln!("nstest: cannot start: {error}");
            std::process::exit(101);
        }
    }
    let capture = !args.nocapture;
    let trials: Vec<Trial> = tests
        .iter()
        .map(|&test| {
            Trial::ignorable_test(test.name(), move || run_trial(test, capture))
                .with_ignored_flag(test.ignore)
        })
        .collect();
    if args.list {
        list(&args, trials)
    }

    // Everything the selected tests need, tried before the first test, so that a host
    // that blocks namespaces is diagnosed once rather than in every test.
    let selected: Vec<&Plan> = tests
        .iter()
        .zip(&trials)
        .filter(|(_, trial)| !args.is_filtered_out(trial) && !args.is_ignored(trial))
        .map(|(test, _)| &test.plan)
        .collect();
    let needed = Plan::union(selected.iter().copied());
    // With one test selected (nextest runs each test in its own process) the probe would
    // only double the sandboxes: that test's own setup failure is diagnosed in full, once,
    // in its failure text. Skipping unsupported tests needs the probe, though.
    let skip = SKIP_UNSUPPORTED.get().copied().unwrap_or(false);
    if selected.len() > 1 || skip {
        probe_host(&needed, &probes);
    }
    in_runner();

    let conclusion = libtest_mimic::run(&args, trials);
    stop_fork_server();
    print_successes();
    report_leaks();
    report_skips();
    conclusion.exit()
}

/// Reads `NSTEST_UNSUPPORTED`: unset or `fail` (the default) fails the tests that need
/// what the host lacks; `skip` reports them as ignored, with the reason.
fn read_unsupported() -> std::result::Result<(), String> {
    let skip = match std::env::var("NSTEST_UNSUPPORTED")
        .as_deref()
        .map(str::trim)
    {
        Err(_) | Ok("") | Ok("fail") => false,
        Ok("skip") => true,
        Ok(other) => {
            return Err(format!(
                "NSTEST_UNSUPPORTED={other:?} is not understood; use `fail` (the default) or `skip`"
            ));
        }
    };
    let _ = SKIP_UNSUPPORTED.set(skip);
    Ok(())
}

/// Runs the probe sandboxes and prints, once each, what the host lacks and how to fix it.
fn probe_host(needed: &Plan, probes: &[&'static Test]) {
    let missing = find_missing_with(needed, probes);
    let skip = SKIP_UNSUPPORTED.get().copied().unwrap_or(false);
    for m in &missing {
        eprintln!(
            "nstest: this host cannot create {}; the tests that need them will {}.\n{}\n",
            m.kind.name(),
            if skip {
                "be skipped (NSTEST_UNSUPPORTED=skip)"
            } else {
                "fail (NSTEST_UNSUPPORTED=skip skips them instead)"
            },
            m.diagnosis
        );
    }
    let _ = MISSING.set(missing);
}

/// [`probe::find_missing`] through the running fork server, whose list holds `probes`
/// made before it started.
pub(crate) fn find_missing_with(needed: &Plan, probes: &[&'static Test]) -> Vec<Missing> {
    probe::find_missing(needed, |i| match run_sandboxed(probes[i], true) {
        Ok((
            Outcome::SetupFailed {
                step,
                errno,
                detail,
            },
            ..,
        )) => Some((step, errno, detail)),
        _ => None,
    })
}

/// Starts the fork server; must be called while single-threaded, once every test it will
/// be asked for exists.
///
/// # Errors
///
/// When the fork server cannot be started.
pub(crate) fn start_fork_server() -> Result<()> {
    let server = ForkServer::start()?;
    SERVER.set(server).expect("the fork server is started once");
    Ok(())
}

/// Stops the fork server, if one was started.
pub(crate) fn stop_fork_server() {
    if let Some(server) = SERVER.get() {
        server.stop();
    }
}

/// Says how many tests were skipped for what (`NSTEST_UNSUPPORTED=skip`), on stderr.
fn report_skips() {
    let skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let mut kinds: Vec<&str> = skipped.iter().map(|(kind, _)| *kind).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let count = skipped.iter().filter(|(k, _)| *k == kind).count();
        eprintln!(
            "nstest: skipped {count} test{} that need{} {kind}, which this host cannot create \
             (NSTEST_UNSUPPORTED=skip)",
            if count == 1 { "" } else { "s" },
            if count == 1 { "s" } else { "" },
        );
    }
}

/// `--list`: libtest-mimic prints the `name: test` lines; libtest then ends a pretty list
/// with a count, which tools and people read, so it is added here.
fn list(args: &Arguments, trials: Vec<Trial>) -> ! {
    let listed = trials
        .iter()
        .filter(|trial| !args.is_filtered_out(trial))
        .filter(|trial| !args.ignored || trial.has_ignored_flag())
        .count();
    let terse = matches!(args.format, Some(libtest_mimic::FormatSetting::Terse));
    let _listed_only = libtest_mimic::run(args, trials);
    if !terse {
        println!("\n{listed} tests, 0 benchmarks");
    }
    std::process::exit(0)
}

/// `--show-output`: the output of passing tests, in libtest's `successes:` format (after
/// the summary, since libtest-mimic prints its own sections).
fn print_successes() {
    let successes = SUCCESSES.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(mut successes) = successes.filter(|s| !s.is_empty()) else {
        return;
    };
    successes.sort();
    println!("\nsuccesses:\n");
    for (name, output) in &successes {
        println!("---- {name} stdout ----\n{output}\n");
    }
    println!("\nsuccesses:");
    for (name, _) in &successes {
        println!("    {name}");
    }
}

/// Says which passing tests left processes behind (failed ones say it in their failure
/// text). On stderr, so that stdout stays what libtest prints, for the tools that parse it.
fn report_leaks() {
    let mut leaked = LEAKED.lock().unwrap_or_else(|e| e.into_inner());
    if leaked.is_empty() {
        return;
    }
    leaked.sort();
    eprintln!(
        "\nnstest: LEAK: these tests passed but left processes running, which nstest killed:"
    );
    for (name, count) in leaked.iter() {
        eprintln!(
            "    {name} ({count} process{})",
            if *count == 1 { "" } else { "es" }
        );
    }
}

/// One trial: the test in its sandbox, rendered for libtest-mimic.
fn run_trial(test: &'static Test, capture: bool) -> Result<Completion, Failed> {
    let missing = MISSING.get().map_or(&[][..], Vec::as_slice);
    if let Some(missing) = probe::missing_for(missing, &test.plan) {
        if SKIP_UNSUPPORTED.get().copied().unwrap_or(false) {
            SKIPPED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((missing.kind.name(), test.name().to_owned()));
            return Ok(Completion::ignored_with(format!(
                "needs {}, which this host cannot create",
                missing.kind.name()
            )));
        }
        return Err(format!(
            "nstest: this host cannot create {}: {}\n  (cause and fix: see the diagnosis \
             printed before the tests ran)",
            missing.kind.name(),
            missing.detail
        )
        .into());
    }
    let (outcome, output, leaked) =
        run_sandboxed(test, capture).map_err(|error| Failed::from(format!("nstest: {error}")))?;
    if leaked > 0 && outcome == Outcome::Passed {
        LEAKED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((test.name().to_owned(), leaked));
    }
    if outcome == Outcome::Passed {
        if let Some(successes) = SUCCESSES.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            successes.push((test.name().to_owned(), output.trim_end().to_owned()));
        }
    }
    match render_failure(&outcome, output, test) {
        None => Ok(Completion::Completed),
        Some(message) => Err(message.into()),
    }
}

/// The failure text libtest would print under `---- name stdout ----`: the captured
/// output, then what nstest knows about the end. `None` when the test passed.
fn render_failure(outcome: &Outcome, output: String, test: &Test) -> Option<String> {
    let note = match outcome {
        Outcome::Passed => return None,
        Outcome::Failed { note } => match note {
            // Skip the note where the output already says it (the default panic hook
            // printed the location and message; `Error:` was printed by the test process).
            Some(note) if output.contains(note.lines().next().unwrap_or(note)) => None,
            Some(note) if note.starts_with("panicked at") => {
                let first = note.lines().next().unwrap_or(note);
                (!output.contains(&first["panicked at ".len()..])).then(|| note.clone())
            }
            other => other.clone(),
        },
        Outcome::Crashed {
            signal,
            core_dumped,
        } => Some(format!(
            "nstest: the test process was killed by {}{} before reporting a result",
            outcome::signal_name(*signal),
            if *core_dumped { ", core dumped" } else { "" }
        )),
        Outcome::TimedOut => Some(format!(
            "nstest: timed out after {}; the test and every process it started were killed",
            duration::format_seconds(test.timeout().unwrap_or(0))
        )),
        Outcome::ExitedWithoutReport { code } => Some(format!(
            "nstest: the test process exited with status {code} without reporting a result"
        )),
        Outcome::DiedAfterReport { end } => Some(format!(
            "nstest: the test process reported success, then {}",
            outcome::describe_end(*end)
        )),
        Outcome::SetupFailed {
            step,
            errno,
            detail,
        } => Some(diagnosis::diagnose(*step, *errno, &HostFacts::read()).render(detail)),
        Outcome::BadReport { error, end } => Some(format!(
            "nstest: the test process sent an invalid result ({error}); it {}",
            end.map_or("did not report how it ended".into(), outcome::describe_end)
        )),
        Outcome::Vanished => Some(
            "nstest: the test's supervisor process was killed before the test ended (did the \
             test kill its parent?); the test and every process it started were killed"
                .into(),
        ),
    };
    let mut message = output;
    if let Some(note) = note {
        if !message.is_empty() && !message.ends_with('\n') {
            message.push('\n');
        }
        message.push_str(&note);
    }
    Some(message.trim_end_matches('\n').to_owned())
}

/// Starts `test` through the fork server and waits until every process of it is gone.
fn run_sandboxed(test: &'static Test, capture: bool) -> Result<(Outcome, String, u32)> {
    let server = SERVER.get().expect("run_main starts the fork server first");
    let (report_read, report_write) = pipe()?;
    let (exit_read, exit_write) = pipe()?;
    let (output_read, output_write) = match capture {
        true => pipe().map(|(read, write)| (Some(read), Some(write)))?,
        false => (None, None),
    };
    let lease = server.spawn(
        test,
        &TestPipes {
            report: &report_write,
            exit: &exit_write,
            output: output_write.as_ref(),
        },
    )?;
    // Only the sandbox may hold write ends now, so EOF on all three means it is gone.
    drop((report_write, exit_write, output_write));
    let collected = collect(&report_read, &exit_read, output_read.as_ref())?;
    // Without a frame the slot died with the test: this waits until its processes are
    // gone too.
    lease.finish(collected.exit.len() == EXIT_FRAME_LEN)?;

    let report = (!collected.report.is_empty()).then(|| Report::decode(&collected.report));
    let exit = ExitFrame::decode(&collected.exit).ok();
    let outcome = outcome::classify(report, exit, test.should_panic);
    let mut text = collected.output.into_text();
    let leaked = exit.map_or(0, |frame| frame.leaked);
    if leaked > 0 && outcome != Outcome::Passed {
        text.push_str(&format!(
            "nstest: killed {leaked} process(es) the test left running\n"
        ));
    }
    Ok((outcome, text, leaked))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|source| Error::Sys {
        call: "pipe2(O_CLOEXEC)",
        source,
    })
}

/// What came back from one sandbox.
struct Collected {
    report: Vec<u8>,
    exit: Vec<u8>,
    output: Captured,
}

/// Reads the pipes until each reaches EOF, or, for the exit pipe, until a whole frame has
/// arrived. The report is read up to one byte past its bound (so an oversized message is
/// rejected by the decoder, not truncated into a valid one); anything beyond is drained and
/// discarded so a test that floods the pipe cannot block itself or grow the runner. Only
/// the slot writes the exit pipe, which the test process never holds.
fn collect(report: &OwnedFd, exit: &OwnedFd, output: Option<&OwnedFd>) -> Result<Collected> {
    let mut collected = Collected {
        report: Vec::new(),
        exit: Vec::new(),
        output: Captured::new(KEEP_EACH),
    };
    let mut open = [true, true, output.is_some()];
    let mut buf = vec![0u8; 64 * 1024];
    while open.iter().any(|&o| o) {
        let fds: [Option<&OwnedFd>; 3] = [Some(report), Some(exit), output];
        let watched: Vec<(usize, &OwnedFd)> = fds
            .iter()
            .enumerate()
            .filter_map(|(i, fd)| fd.filter(|_| open[i]).map(|fd| (i, fd)))
            .collect();
        let mut pollfds: Vec<PollFd> = watched
            .iter()
            .map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        sys::retry_on_eintr(|| poll(&mut pollfds, PollTimeout::NONE)).map_err(|source| {
            Error::Sys {
                call: "poll(test pipes)",
                source,
            }
        })?;
        let ready: Vec<usize> = watched
            .iter()
            .zip(&pollfds)
            .filter(|(_, pfd)| pfd.revents().is_some_and(|r| !r.is_empty()))
            .map(|((i, _), _)| *i)
            .collect();
        drop(pollfds);
        for i in ready {
            let fd = fds[i].expect("open implies present");
            match sys::retry_on_eintr(|| nix::unistd::read(fd.as_fd(), &mut buf)) {
                Ok(0) => open[i] = false,
                Ok(n) => {
                    let chunk = &buf[..n];
                    match i {
                        0 => keep_up_to(
                            &mut collected.report,
                            chunk,
                            REPORT_HEADER_LEN + MAX_REPORT_LEN + 1,
                        ),
                        1 => {
                            keep_up_to(&mut collected.exit, chunk, EXIT_FRAME_LEN);
                            // A whole frame means the slot has killed and reaped every
                            // process of the test. Without one the slot died, and the
                            // test is held back until the slot's replacement starts,
                            // which is once no stray process is left.
                            if collected.exit.len() == EXIT_FRAME_LEN {
                                open[i] = false;
                            }
                        }
                        _ => collected.output.push(chunk),
                    }
                }
                Err(Errno::EAGAIN) => {}
                Err(source) => {
                    return Err(Error::Sys {
                        call: "read(test pipe)",
                        source,
                    });
                }
            }
        }
    }
    Ok(collected)
}

fn keep_up_to(into: &mut Vec<u8>, chunk: &[u8], limit: usize) {
    let room = limit.saturating_sub(into.len());
    into.extend_from_slice(&chunk[..room.min(chunk.len())]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test::ShouldPanic;

    const TEST: Test = Test {
        path: "fixture::t",
        run: || Ok(()),
        plan: Plan::hermetic(),
        timeout_secs: Some(90),
        ignore: false,
        should_panic: ShouldPanic::No,
    };

    #[test]
    fn libtest_only_flags_are_taken_off_with_their_values() {
        let argv = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let (kept, notes) = without_unsupported_flags(argv(
            "bin --shuffle-seed 7 --report-time filter --shuffle --shuffle-seed=9 --exact -- --shuffle",
        ));
        assert_eq!(kept, argv("bin filter --exact -- --shuffle"));
        assert_eq!(notes.len(), 4);
        assert_eq!(
            notes[1],
            "nstest: --report-time is accepted but not acted on: test times are not reported"
        );
    }

    #[test]
    fn a_timeout_names_the_limit_as_it_was_written() {
        assert_eq!(
            render_failure(&Outcome::TimedOut, "partial output\n".into(), &TEST).as_deref(),
            Some(
                "partial output\nnstest: timed out after 1m30s; the test and every process it \
                 started were killed"
            )
        );
    }

    #[test]
    fn a_panic_note_is_not_repeated_when_the_hook_printed_it() {
        let outcome = Outcome::Failed {
            note: Some("panicked at src/a.rs:1:2:\nboom".into()),
        };
        let printed =
            "thread 'a' panicked at src/a.rs:1:2:\nboom\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            render_failure(&outcome, printed.into(), &TEST).as_deref(),
            Some(printed.trim_end())
        );
        // A custom hook that printed nothing: the note carries location and message.
        assert_eq!(
            render_failure(&outcome, "log line\n".into(), &TEST).as_deref(),
            Some("log line\npanicked at src/a.rs:1:2:\nboom")
        );
    }

    #[test]
    fn silent_deaths_say_how_the_process_ended() {
        let crashed = Outcome::Crashed {
            signal: 11,
            core_dumped: false,
        };
        assert_eq!(
            render_failure(&crashed, String::new(), &TEST).as_deref(),
            Some(
                "nstest: the test process was killed by SIGSEGV (signal 11) before reporting a result"
            )
        );
        let exited = Outcome::ExitedWithoutReport { code: 3 };
        assert!(
            render_failure(&exited, "x".into(), &TEST)
                .unwrap()
                .ends_with(
                    "x\nnstest: the test process exited with status 3 without reporting a result"
                )
        );
        assert_eq!(render_failure(&Outcome::Passed, "x".into(), &TEST), None);
    }
}
