//! Every word nstest says about how a test ended, in one place: an [`Outcome`] (data) and
//! the test's output become the [`Record`] the printers print.
//!
//! Where libtest has a result of its own (a panic, an `Err`, `#[should_panic]` unmet,
//! `--ensure-time`), the record is what libtest's would be. Endings libtest cannot have
//! (a crash, a timeout, a sandbox that could not be built) add a line starting `nstest:`
//! after the output, which is where libtest users look.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::{Record, Verdict};
use crate::duration;
use crate::runner::cli::TimeOptions;
use crate::runner::diagnosis::{self, HostFacts};
use crate::runner::outcome::Outcome;
use crate::wire::Termination;

/// What a finished test looks like in the report; `facts` word a sandbox that could not
/// be built, and are asked for only then: reading them takes a dozen files of `/proc`,
/// which a run that passes never needs.
pub(crate) fn record<'f>(
    facts: impl FnOnce() -> &'f HostFacts,
    outcome: &Outcome,
    mut output: String,
    leaked: u32,
    exec_time: Option<Duration>,
    time: Option<&TimeOptions>,
) -> Record {
    let verdict = match outcome {
        Outcome::Passed => match (time, exec_time) {
            (Some(limits), Some(took)) if limits.ensure && took >= limits.critical => {
                Verdict::TimedFail
            }
            _ => Verdict::Ok,
        },
        Outcome::Skipped { kind } => {
            Verdict::Ignored(Some(format!("needs {kind}, which this host cannot create")))
        }
        // libtest names where the test is written.
        Outcome::DidNotPanic { source } if !source.file.is_empty() => Verdict::FailedMsg(format!(
            "test did not panic as expected at {}:{}:{}",
            source.file, source.line, source.column
        )),
        Outcome::DidNotPanic { .. } => Verdict::FailedMsg("test did not panic as expected".into()),
        Outcome::WrongPanic { message, expected } => Verdict::FailedMsg(format!(
            "panic did not contain expected string\n      panic message: {message:?}\n \
             expected substring: {expected:?}"
        )),
        // The rest failed. For a panic or an `Err` the test process printed the panic
        // (std's hook) or `Error: ...` into the output, as libtest's test thread does.
        _ => Verdict::Failed,
    };
    let failed = matches!(verdict, Verdict::Failed | Verdict::FailedMsg(_));
    if leaked > 0 && failed {
        // A passing test's leftovers are named after the summary instead.
        line_after(
            &mut output,
            &format!("nstest: killed {leaked} process(es) the test left running"),
        );
    }
    if let Some(note) = note(outcome, facts) {
        line_after(&mut output, &note);
    }
    Record {
        verdict,
        exec_time,
        output,
    }
}

/// The hint std's panic hook adds to the first panic of a process.
const BACKTRACE_HINT: &str =
    "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";

/// `output` without std's backtrace hint once a test before it has shown it. libtest's
/// tests share one process, so only the first panic of a run carries the hint; each
/// nstest test is a process of its own, whose first panic always does.
pub(crate) fn hint_once(output: String, hinted: &mut bool) -> String {
    match output.find(BACKTRACE_HINT) {
        Some(at) if *hinted => {
            let mut output = output;
            output.replace_range(at..at + BACKTRACE_HINT.len(), "");
            output
        }
        Some(_) => {
            *hinted = true;
            output
        }
        None => output,
    }
}

/// Appends `line` on a line of its own.
fn line_after(output: &mut String, line: &str) {
    if !output.is_empty() && !output.ends_with('\n') {
        output.push('\n');
    }
    output.push_str(line);
    output.push('\n');
}

/// The cause of an ending libtest has no word for.
fn note<'f>(outcome: &Outcome, facts: impl FnOnce() -> &'f HostFacts) -> Option<String> {
    Some(match outcome {
        Outcome::Crashed {
            signal,
            core_dumped,
        } => format!(
            "nstest: the test process was killed by {}{} before reporting a result",
            signal_name(*signal),
            if *core_dumped { ", core dumped" } else { "" }
        ),
        Outcome::TimedOut { after_secs } => format!(
            "nstest: timed out after {}; the test and every process it started were killed",
            duration::format_seconds(*after_secs)
        ),
        Outcome::ExitedWithoutReport { code } => {
            format!("nstest: the test process exited with status {code} without reporting a result")
        }
        Outcome::DiedAfterReport { end } => format!(
            "nstest: the test process reported success, then {}",
            describe_end(*end)
        ),
        Outcome::SetupFailed {
            step,
            errno,
            detail,
        } => diagnosis::diagnose(*step, *errno, facts()).render(detail),
        Outcome::BadReport { error, end } => format!(
            "nstest: the test process sent an invalid result ({error}); it {}",
            end.map_or("did not report how it ended".into(), describe_end)
        ),
        Outcome::Vanished => "nstest: the test's supervisor process was killed before the \
             test ended (did the test kill its parent?); the test and every process it \
             started were killed"
            .into(),
        Outcome::HostLacks { kind, detail } => format!(
            "nstest: this host cannot create {kind}: {detail}\n  (cause and fix: see the \
             diagnosis printed before the tests ran)"
        ),
        Outcome::NotStarted { error } => format!("nstest: {error}"),
        Outcome::Passed
        | Outcome::Skipped { .. }
        | Outcome::DidNotPanic { .. }
        | Outcome::WrongPanic { .. }
        | Outcome::Panicked { .. }
        | Outcome::ReturnedErr { .. } => return None,
    })
}

/// `SIGSEGV (signal 11)`, or `signal 99` for a number the platform does not name.
fn signal_name(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(sig) => format!("{} (signal {signal})", sig.as_str()),
        Err(_) => format!("signal {signal}"),
    }
}

/// `exited with status 3` / `was killed by SIGKILL (signal 9)`.
fn describe_end(end: Termination) -> String {
    match end {
        Termination::Exited(code) => format!("exited with status {code}"),
        Termination::Signaled {
            signal,
            core_dumped,
        } => format!(
            "was killed by {}{}",
            signal_name(signal),
            if core_dumped { ", core dumped" } else { "" }
        ),
        Termination::TimedOut => "timed out".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_FACTS: HostFacts = HostFacts {
        root: false,
        apparmor_restricts_userns: None,
        unprivileged_userns_clone: None,
        max_user_namespaces: None,
        time_namespaces: false,
        zero_limits: Vec::new(),
    };

    fn failed_text(outcome: &Outcome, output: &str) -> String {
        let record = record(|| &NO_FACTS, outcome, output.into(), 0, None, None);
        assert_eq!(record.verdict, Verdict::Failed, "{outcome:?}");
        record.output
    }

    #[test]
    fn the_backtrace_hint_is_shown_once_per_run() {
        let panic = format!("thread 'a' panicked at x:\nboom\n{BACKTRACE_HINT}after\n");
        let mut hinted = false;
        assert_eq!(hint_once("no panic\n".into(), &mut hinted), "no panic\n");
        assert_eq!(hint_once(panic.clone(), &mut hinted), panic);
        assert_eq!(
            hint_once(panic, &mut hinted),
            "thread 'a' panicked at x:\nboom\nafter\n"
        );
    }

    #[test]
    fn a_timeout_names_the_limit_as_it_was_written() {
        assert_eq!(
            failed_text(&Outcome::TimedOut { after_secs: 90 }, "partial output"),
            "partial output\nnstest: timed out after 1m30s; the test and every process it \
             started were killed\n"
        );
    }

    #[test]
    fn silent_deaths_say_how_the_process_ended() {
        let crashed = Outcome::Crashed {
            signal: 11,
            core_dumped: false,
        };
        assert_eq!(
            failed_text(&crashed, ""),
            "nstest: the test process was killed by SIGSEGV (signal 11) before reporting a \
             result\n"
        );
        assert_eq!(
            failed_text(&Outcome::ExitedWithoutReport { code: 3 }, "x\n"),
            "x\nnstest: the test process exited with status 3 without reporting a result\n"
        );
    }

    #[test]
    fn libtests_own_results_read_as_libtest_words_them() {
        let panic = Outcome::Panicked {
            message: "boom".into(),
            location: None,
        };
        // The panic is in the output already, printed by the hook: nothing is added.
        assert_eq!(
            failed_text(&panic, "thread 'a' panicked\n"),
            "thread 'a' panicked\n"
        );
        let unmet = record(
            || &NO_FACTS,
            &Outcome::DidNotPanic {
                source: crate::registry::Source::NONE,
            },
            String::new(),
            0,
            None,
            None,
        );
        assert_eq!(
            unmet.verdict,
            Verdict::FailedMsg("test did not panic as expected".into())
        );
        let wrong = Outcome::WrongPanic {
            message: "a different failure".into(),
            expected: "specific",
        };
        assert_eq!(
            record(|| &NO_FACTS, &wrong, String::new(), 0, None, None).verdict,
            Verdict::FailedMsg(
                "panic did not contain expected string\n      panic message: \"a different \
                 failure\"\n expected substring: \"specific\""
                    .into()
            )
        );
    }

    #[test]
    fn ensure_time_fails_only_passing_tests_at_the_critical_time() {
        let limits = TimeOptions {
            ensure: true,
            warn: Duration::from_millis(5),
            critical: Duration::from_millis(10),
        };
        let at = |ms| Some(Duration::from_millis(ms));
        let verdict = |outcome: &Outcome, ms| {
            record(
                || &NO_FACTS,
                outcome,
                String::new(),
                0,
                at(ms),
                Some(&limits),
            )
            .verdict
        };
        assert_eq!(verdict(&Outcome::Passed, 9), Verdict::Ok);
        assert_eq!(verdict(&Outcome::Passed, 10), Verdict::TimedFail);
        assert_eq!(
            verdict(&Outcome::ReturnedErr { debug: "e".into() }, 50),
            Verdict::Failed
        );
        let report_only = TimeOptions {
            ensure: false,
            ..limits
        };
        assert_eq!(
            record(
                || &NO_FACTS,
                &Outcome::Passed,
                String::new(),
                0,
                at(50),
                Some(&report_only)
            )
            .verdict,
            Verdict::Ok
        );
    }

    #[test]
    fn a_skip_is_an_ignore_with_its_reason() {
        assert_eq!(
            record(
                || &NO_FACTS,
                &Outcome::Skipped {
                    kind: "time namespaces"
                },
                String::new(),
                0,
                None,
                None
            )
            .verdict,
            Verdict::Ignored(Some(
                "needs time namespaces, which this host cannot create".into()
            ))
        );
    }

    #[test]
    fn signals_are_named() {
        assert_eq!(signal_name(11), "SIGSEGV (signal 11)");
        assert_eq!(signal_name(99), "signal 99");
        assert_eq!(
            describe_end(Termination::Signaled {
                signal: 6,
                core_dumped: true
            }),
            "was killed by SIGABRT (signal 6), core dumped"
        );
    }
}
