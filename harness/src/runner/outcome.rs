//! A test's outcome, classified from what the sandbox reported and how its process ended.
//! Not an error type: a failing test is a normal result of a run.

use crate::error::Step;
use crate::registry::{ShouldPanic, Source};
use crate::wire::{ExitFrame, ProtocolError, Report, Termination};

/// How one test ended: small data, no prose (the report module words it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It passed (or panicked as `#[should_panic]` required).
    Passed,
    /// It panicked without `#[should_panic]`.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// It returned `Err`; this is the error's `Debug` text.
    ReturnedErr { debug: String },
    /// `#[should_panic]`, and it returned normally.
    DidNotPanic { source: Source },
    /// `#[should_panic(expected = ...)]`, and the panic message lacked the text.
    WrongPanic {
        message: String,
        expected: &'static str,
    },
    /// Its process was killed by a signal before reporting.
    Crashed { signal: i32, core_dumped: bool },
    /// Its process exited before reporting.
    ExitedWithoutReport { code: i32 },
    /// It was still running at its timeout (in seconds); it and every process it started
    /// were killed.
    TimedOut { after_secs: u64 },
    /// Its process reported success but did not then exit cleanly.
    DiedAfterReport { end: Termination },
    /// The sandbox could not be built.
    SetupFailed {
        step: Step,
        errno: i32,
        detail: String,
    },
    /// The report was unreadable.
    BadReport {
        error: ProtocolError,
        end: Option<Termination>,
    },
    /// Neither a report nor an exit frame arrived: the supervisor (or slot) itself died.
    Vanished,
    /// Not run: the host cannot create `kind` (the probe found it), and the run fails
    /// such tests.
    HostLacks { kind: &'static str, detail: String },
    /// Not run: the host cannot create `kind`, and `NSTEST_UNSUPPORTED=skip` ignores such
    /// tests.
    Skipped { kind: &'static str },
    /// Not run: the runner could not start it (a pipe or the fork server failed).
    NotStarted { error: String },
    /// It failed at one of its resource limits, which the kernel enforced.
    LimitReached {
        limit: Limit,
        /// What the kernel refused or did, where known (std's allocation failure line).
        what_failed: Option<String>,
    },
}

/// A resource limit of a test, with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Tasks.
    Pids(u32),
    /// Bytes.
    Memory(u64),
    /// Seconds of CPU time.
    Cpu(u64),
}

/// Decides the outcome from the decoded report (if any bytes came), the exit frame (if a
/// valid one came) and the test's `#[should_panic]`.
/// `timeout_secs` is the test's limit, named when it timed out.
pub(crate) fn classify(
    report: Option<Result<Report, ProtocolError>>,
    exit: Option<ExitFrame>,
    should_panic: ShouldPanic,
    timeout_secs: u64,
    source: Source,
) -> Outcome {
    let end = exit.map(|frame| frame.test);
    if end == Some(Termination::TimedOut) {
        // Whatever it reported before, it then did not end in time.
        return Outcome::TimedOut {
            after_secs: timeout_secs,
        };
    }
    match report {
        Some(Err(error)) => Outcome::BadReport { error, end },
        Some(Ok(Report::SetupFailed {
            step,
            errno,
            detail,
        })) => Outcome::SetupFailed {
            step,
            errno,
            detail,
        },
        Some(Ok(Report::Passed)) => match end {
            Some(Termination::Exited(0)) => match should_panic {
                ShouldPanic::No => Outcome::Passed,
                ShouldPanic::Yes | ShouldPanic::WithMessage(_) => Outcome::DidNotPanic { source },
            },
            Some(end) => Outcome::DiedAfterReport { end },
            None => Outcome::Vanished,
        },
        Some(Ok(Report::Panicked {
            message, location, ..
        })) => match should_panic {
            ShouldPanic::Yes => Outcome::Passed,
            ShouldPanic::WithMessage(expected) if message.contains(expected) => Outcome::Passed,
            ShouldPanic::WithMessage(expected) => Outcome::WrongPanic { message, expected },
            ShouldPanic::No => Outcome::Panicked { message, location },
        },
        Some(Ok(Report::ReturnedErr { debug, .. })) => Outcome::ReturnedErr { debug },
        None => match end {
            Some(Termination::Signaled {
                signal,
                core_dumped,
            }) => Outcome::Crashed {
                signal,
                core_dumped,
            },
            Some(Termination::Exited(code)) => Outcome::ExitedWithoutReport { code },
            Some(Termination::TimedOut) | None => Outcome::Vanished,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32) -> Option<ExitFrame> {
        Some(ExitFrame {
            test: Termination::Exited(code),
            leaked: 0,
            limits: Default::default(),
        })
    }

    fn panicked(message: &str) -> Option<Result<Report, ProtocolError>> {
        Some(Ok(Report::Panicked {
            message: message.into(),
            location: Some("src/a.rs:1:2".into()),
            at_pids_limit: false,
        }))
    }

    #[test]
    fn a_report_of_success_needs_a_clean_exit() {
        let passed = Some(Ok(Report::Passed));
        assert_eq!(
            classify(passed.clone(), exited(0), ShouldPanic::No, 9, Source::NONE),
            Outcome::Passed
        );
        assert_eq!(
            classify(passed.clone(), exited(3), ShouldPanic::No, 9, Source::NONE),
            Outcome::DiedAfterReport {
                end: Termination::Exited(3)
            }
        );
        assert_eq!(
            classify(passed, None, ShouldPanic::No, 9, Source::NONE),
            Outcome::Vanished
        );
    }

    #[test]
    fn should_panic_follows_libtest() {
        assert_eq!(
            classify(
                panicked("boom"),
                exited(0),
                ShouldPanic::Yes,
                9,
                Source::NONE
            ),
            Outcome::Passed
        );
        assert_eq!(
            classify(
                panicked("a boom!"),
                exited(0),
                ShouldPanic::WithMessage("boom"),
                9,
                Source::NONE
            ),
            Outcome::Passed
        );
        assert_eq!(
            classify(
                panicked("bang"),
                exited(0),
                ShouldPanic::WithMessage("boom"),
                9,
                Source::NONE
            ),
            Outcome::WrongPanic {
                message: "bang".into(),
                expected: "boom"
            }
        );
        assert_eq!(
            classify(
                Some(Ok(Report::Passed)),
                exited(0),
                ShouldPanic::Yes,
                9,
                Source::NONE
            ),
            Outcome::DidNotPanic {
                source: Source::NONE
            }
        );
    }

    #[test]
    fn a_silent_death_is_classified_from_the_wait_status() {
        let crash = Some(ExitFrame {
            test: Termination::Signaled {
                signal: 11,
                core_dumped: false,
            },
            leaked: 0,
            limits: Default::default(),
        });
        assert_eq!(
            classify(None, crash, ShouldPanic::No, 9, Source::NONE),
            Outcome::Crashed {
                signal: 11,
                core_dumped: false
            }
        );
        // A crash is never what #[should_panic] asks for.
        assert!(matches!(
            classify(None, crash, ShouldPanic::Yes, 9, Source::NONE),
            Outcome::Crashed { .. }
        ));
        assert_eq!(
            classify(None, exited(0), ShouldPanic::No, 9, Source::NONE),
            Outcome::ExitedWithoutReport { code: 0 }
        );
        assert_eq!(
            classify(None, None, ShouldPanic::No, 9, Source::NONE),
            Outcome::Vanished
        );
    }

    #[test]
    fn a_timeout_wins_over_whatever_was_reported() {
        let timed_out = Some(ExitFrame {
            test: Termination::TimedOut,
            leaked: 2,
            limits: Default::default(),
        });
        assert_eq!(
            classify(None, timed_out, ShouldPanic::No, 9, Source::NONE),
            Outcome::TimedOut { after_secs: 9 }
        );
        assert_eq!(
            classify(
                Some(Ok(Report::Passed)),
                timed_out,
                ShouldPanic::No,
                9,
                Source::NONE
            ),
            Outcome::TimedOut { after_secs: 9 }
        );
        assert_eq!(
            classify(
                panicked("boom"),
                timed_out,
                ShouldPanic::Yes,
                9,
                Source::NONE
            ),
            Outcome::TimedOut { after_secs: 9 }
        );
    }

    #[test]
    fn garbage_and_setup_failures_are_failures() {
        assert!(matches!(
            classify(
                Some(Err(ProtocolError::BadMagic)),
                exited(0),
                ShouldPanic::No,
                9,
                Source::NONE
            ),
            Outcome::BadReport { .. }
        ));
        assert!(matches!(
            classify(
                Some(Ok(Report::SetupFailed {
                    step: Step::Unshare,
                    errno: 1,
                    detail: "x".into()
                })),
                None,
                ShouldPanic::Yes,
                9,
                Source::NONE
            ),
            Outcome::SetupFailed { .. }
        ));
    }
}
