//! `#[ns_test]` under libtest's own harness: in a `#[cfg(test)]` module of a library or
//! binary, or in a test target that keeps `harness = true`, with no `nstest::main!()`.
//!
//! Runs in the test binary, whose `main` is libtest's. libtest runs every test on a thread
//! of its own, so the process is multithreaded long before the first test, and a sandbox
//! cannot be forked from it (see the `process` module). So the macro also emits, in the
//! user's crate, a constructor (an `.init_array` entry, run by the dynamic loader before
//! `main`, while the process is still single-threaded): the first of them to run calls
//! `start`, which forks the fork server there, once. Each test's `#[test]` wrapper then
//! calls `run`, which sends the test to a slot exactly as `nstest::main!()`'s runner does,
//! collects its result and output, and hands them to libtest:
//!
//! - the output (fds 1 and 2 of the test and of everything it started) is printed with
//!   `print!`, which libtest captures per test and shows for a failure (or live with
//!   `--nocapture`, when the test writes straight to the terminal);
//! - a panic is resumed in the wrapper with the test's own message
//!   (`std::panic::resume_unwind`, which skips the panic hook, so the message is not
//!   printed twice), so libtest's `#[should_panic(expected = ...)]` check sees it;
//! - any other failure (a crash, a timeout, a sandbox the host refused) panics with
//!   nstest's one-line cause, except in a `#[should_panic]` test, where the wrapper returns
//!   normally so that libtest fails it ("test did not panic as expected") rather than
//!   count a segfault as the panic it wanted.
//!
//! The host probe runs only when a sandbox fails to build, once per run; its diagnosis
//! goes to stderr (past libtest's capture), and every test that needs what the host lacks
//! then fails (or, with `NSTEST_UNSUPPORTED=skip`, passes with a line on stderr: libtest
//! has no way to ignore a test once it runs) without trying again.
//!
//! This module keeps its state in statics: the constructor that starts the fork server
//! and libtest's test threads share no `main` that could own a value.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use super::cli::{self, Parsed, ProcessEnv};
use super::outcome::Outcome;
use super::probe::{self, Missing};
use super::report::{Verdict, failure, notice};
use super::select;
use super::session::{Runs, Session, Settings};
use super::trial;
use crate::registry::Test;
use crate::sys;

/// What the constructor set up, or why it could not.
static STATE: OnceLock<Result<Libtest, String>> = OnceLock::new();

struct Libtest {
    session: Session,
    /// What the host lacks; probed once, after the first sandbox that failed to build.
    missing: OnceLock<Vec<Missing>>,
    /// Tests skipped for what the host lacks, said once each on stderr.
    skipped: Mutex<Vec<&'static str>>,
}

/// Starts the fork server for a libtest binary; called by the constructors the macro
/// emits, before `main`. Only the first call does anything. Nothing is started for a run
/// that only lists tests (`--list`, which nextest runs on every binary) or prints help.
pub fn start() {
    super::guard::runner_started();
    STATE.get_or_init(|| {
        if listing_only() {
            return Err("the test binary was started to list its tests".into());
        }
        let settings = Settings::from_env()?;
        // Run as nextest runs every test, `--exact NAME`: one lone slot, no fork server.
        let runs = match one_test_only() {
            true => Runs::OneLater,
            // libtest runs each test on a thread of its own, even with one thread. Which
            // tests have a `memory` limit is not known in this constructor: some may not
            // be registered yet.
            false => Runs::Many {
                one_thread: false,
                memory_limits: true,
            },
        };
        // Which kinds the tests need is not known before the first test: probe for all.
        let session = Session::start(settings, probe::everything(), runs)
            .map_err(|error| format!("nstest cannot start its fork server before main: {error}"))?;
        // Stop it when the binary exits, so that not even a zombie is left.
        sys::at_exit(stop_at_exit);
        Ok(Libtest {
            session,
            missing: OnceLock::new(),
            skipped: Mutex::new(Vec::new()),
        })
    });
}

extern "C" fn stop_at_exit() {
    if let Some(Ok(state)) = STATE.get() {
        state.session.stop();
    }
}

/// `--list`, `--help` or `-h` on the command line.
fn listing_only() -> bool {
    command_line()
        .iter()
        .skip(1)
        .any(|arg| matches!(arg.as_str(), "--list" | "--help" | "-h"))
}

/// Whether the command line selects one test at most (`--exact` and one name), read as
/// `nstest::main!()`'s runner reads its own; a line it cannot read runs a fork server.
fn one_test_only() -> bool {
    match cli::parse(&command_line(), &ProcessEnv) {
        Ok(Parsed::Run(options)) => select::at_most_one(&options),
        _ => false,
    }
}

/// The arguments, from `/proc/self/cmdline`: `std::env::args` is not guaranteed to be
/// set up yet in a constructor.
fn command_line() -> Vec<String> {
    let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
    // Each argument ends with a NUL: the last split is the empty rest.
    let cmdline = cmdline.strip_suffix(&[0]).unwrap_or(&cmdline);
    cmdline
        .split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// Whether libtest captures output: not with `--nocapture` (or `--no-capture`), nor with
/// `RUST_TEST_NOCAPTURE` set to anything but `0`, as libtest decides.
fn captures_output() -> bool {
    let flag = std::env::args().any(|arg| arg == "--nocapture" || arg == "--no-capture");
    let env = std::env::var_os("RUST_TEST_NOCAPTURE").is_some_and(|v| v != "0");
    !(flag || env)
}

/// The body of the `#[test]` wrapper of an `#[ns_test]`: runs `test` in its sandbox and
/// ends as libtest expects (see the module docs). `should_panic` is whether the wrapper
/// carries `#[should_panic]`.
pub fn run(test: &'static Test, should_panic: bool) {
    let state = match STATE.get() {
        Some(Ok(state)) => state,
        Some(Err(why)) => return fail(should_panic, format!("nstest: {why}")),
        None => {
            return fail(
                should_panic,
                "nstest: the fork server was not started before main (no constructor ran); \
                 use a `harness = false` target with `nstest::main!()`"
                    .into(),
            );
        }
    };
    let capture = captures_output();
    let trial::Sandboxed {
        outcome,
        output,
        leaked,
        notes,
    } = state.run_one(test, capture);
    let name = test.name();
    if leaked > 0 && outcome == Outcome::Passed {
        eprint_now(&notice::leaked_one(name, leaked));
    }
    if let Outcome::Skipped { kind } = outcome {
        let mut skipped = state.skipped.lock().unwrap_or_else(|e| e.into_inner());
        if !skipped.contains(&kind) {
            skipped.push(kind);
        }
        eprint_now(&notice::skipped_one(name, kind));
        return;
    }
    let mut record = failure::record(
        || state.session.facts(),
        &outcome,
        output,
        leaked,
        None,
        None,
    );
    failure::add_notes(&mut record, &notes, name);
    if record.verdict == Verdict::Ok {
        trial::discard_captures(&notes);
    }
    print!("{}", record.output);
    match (outcome, record.verdict) {
        (_, Verdict::Ok) => {}
        // The test's own panic, with its own message: libtest's `#[should_panic]` check,
        // and its failure report, see what they would have seen in-process.
        (Outcome::Panicked { message, .. }, _) => std::panic::resume_unwind(Box::new(message)),
        // The cause is in the output printed above; a `#[should_panic]` test fails by
        // returning.
        (other, _) if !should_panic => std::panic::resume_unwind(Box::new(cause(state, &other))),
        _ => {}
    }
}

impl Libtest {
    /// Runs `test` (as `nstest::main!()`'s runner does), probing the host the first time
    /// a sandbox cannot be built.
    fn run_one(&self, test: &'static Test, capture: bool) -> trial::Sandboxed {
        let not_run = |outcome| trial::Sandboxed {
            outcome,
            output: String::new(),
            leaked: 0,
            notes: Vec::new(),
        };
        let lacking = |missing: &[Missing]| self.session.outcome_if_lacking(missing, &test.plan);
        if let Some(outcome) = self.missing.get().and_then(|m| lacking(m)) {
            return not_run(outcome);
        }
        let done = match self.session.run_sandboxed(test, capture) {
            Ok(done) => done,
            Err(error) => {
                let error = error.to_string();
                return not_run(Outcome::NotStarted { error });
            }
        };
        if let Outcome::SetupFailed { .. } = done.outcome {
            let missing = self.missing.get_or_init(|| {
                let missing = self.session.find_missing(&probe::everything());
                let skip = self.session.settings.skip_unsupported;
                eprint_now(&notice::missing_kinds(&missing, skip));
                missing
            });
            if let Some(outcome) = lacking(missing) {
                return not_run(outcome);
            }
        }
        done
    }
}

/// The last line of a failure's note: what the wrapper's panic says.
fn cause(state: &Libtest, outcome: &Outcome) -> String {
    let record = failure::record(
        || state.session.facts(),
        outcome,
        String::new(),
        0,
        None,
        None,
    );
    let text = record.output.trim_end();
    match text.lines().next() {
        Some(first) if !first.is_empty() => first.to_owned(),
        _ => "nstest: the test failed".to_owned(),
    }
}

/// Fails the wrapper: a panic with `message`; under `#[should_panic]` the message is
/// printed and the wrapper returns instead, so that libtest fails the test for not
/// panicking rather than pass it for a panic it never had.
fn fail(should_panic: bool, message: String) {
    if should_panic {
        println!("{message}");
        return;
    }
    std::panic::resume_unwind(Box::new(message))
}

/// Writes to the process's stderr directly, past libtest's capture of `eprint!`.
fn eprint_now(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}
