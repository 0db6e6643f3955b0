//! Which of its limits a failed test reached: the outcome the sandbox reported, read
//! against the evidence of the kernel (the cgroup's counters in the exit frame, the test
//! process finding itself at its process limit, the signal that ended it).

use nix::sys::signal::Signal;

use super::outcome::{Limit, Outcome};
use crate::plan::Plan;
use crate::sandbox::limits;
use crate::wire::{LimitsHit, Report};

/// What the sandbox said that bears on the limits, taken before the report is classified.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Evidence {
    /// What the test's cgroup counted (nothing without a cgroup).
    pub hit: LimitsHit,
    /// The test process stood at its process limit when it reported a failure.
    pub at_pids_limit: bool,
}

impl Evidence {
    pub(crate) fn read(report: Option<&Report>, hit: LimitsHit) -> Evidence {
        let at_pids_limit = matches!(
            report,
            Some(
                Report::Panicked {
                    at_pids_limit: true,
                    ..
                } | Report::ReturnedErr {
                    at_pids_limit: true,
                    ..
                }
            )
        );
        Evidence { hit, at_pids_limit }
    }
}

/// std's words when an allocation fails (`alloc::handle_alloc_error`), which is how a
/// test process meets `RLIMIT_DATA`: the line names the allocation that failed.
const ALLOCATION_FAILED: &str = "memory allocation of ";

/// `outcome`, or, when it is a failure that a limit explains, the limit reached.
pub(crate) fn attribute(
    outcome: Outcome,
    evidence: Evidence,
    plan: &Plan,
    output: &str,
) -> Outcome {
    let failed = matches!(
        outcome,
        Outcome::Panicked { .. }
            | Outcome::ReturnedErr { .. }
            | Outcome::Crashed { .. }
            | Outcome::ExitedWithoutReport { .. }
            | Outcome::DiedAfterReport { .. }
            | Outcome::BadReport { .. }
            | Outcome::Vanished
    );
    if !failed {
        return outcome;
    }
    if let Some(bytes) = plan.limits.memory {
        let allocation = output
            .lines()
            .find(|line| line.starts_with(ALLOCATION_FAILED))
            .map(str::to_owned);
        if evidence.hit.memory || allocation.is_some() {
            let what_failed = allocation.or_else(|| match outcome {
                Outcome::Crashed { signal, .. } if signal == Signal::SIGKILL as i32 => {
                    Some("the kernel killed the test process (SIGKILL)".to_owned())
                }
                _ => Some("the kernel killed a process of the test (SIGKILL)".to_owned()),
            });
            return Outcome::LimitReached {
                limit: Limit::Memory(bytes),
                what_failed,
            };
        }
    }
    if let Some(secs) = plan.limits.cpu_secs {
        let what_failed = match &outcome {
            Outcome::Crashed { signal, .. } if *signal == Signal::SIGXCPU as i32 => {
                Some("the kernel ended the test process with SIGXCPU")
            }
            _ if evidence.hit.cpu => Some(
                "the test and the processes it started used it, counted together; nstest ended them all",
            ),
            _ => None,
        };
        if let Some(what_failed) = what_failed {
            return Outcome::LimitReached {
                limit: Limit::Cpu(secs),
                what_failed: Some(what_failed.to_owned()),
            };
        }
    }
    if evidence.at_pids_limit || evidence.hit.pids {
        return Outcome::LimitReached {
            limit: Limit::Pids(limits::pids_of(plan)),
            what_failed: None,
        };
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Limits;

    fn plan(limits: Limits) -> Plan {
        Plan {
            limits,
            ..Plan::user_only()
        }
    }

    fn panicked() -> Outcome {
        Outcome::Panicked {
            message: "spawn: Resource temporarily unavailable".into(),
            location: None,
        }
    }

    #[test]
    fn a_failure_at_the_process_limit_names_it() {
        let limited = plan(Limits {
            pids: Some(32),
            ..Limits::NONE
        });
        let at_limit = Evidence {
            at_pids_limit: true,
            ..Evidence::default()
        };
        assert_eq!(
            attribute(panicked(), at_limit, &limited, ""),
            Outcome::LimitReached {
                limit: Limit::Pids(32),
                what_failed: None
            }
        );
        let counted = Evidence {
            hit: LimitsHit {
                pids: true,
                ..LimitsHit::default()
            },
            ..Evidence::default()
        };
        assert!(matches!(
            attribute(panicked(), counted, &limited, ""),
            Outcome::LimitReached { .. }
        ));
        // A test that passed, or failed with no limit reached, is left as it was.
        assert_eq!(
            attribute(Outcome::Passed, at_limit, &limited, ""),
            Outcome::Passed
        );
        assert_eq!(
            attribute(panicked(), Evidence::default(), &limited, ""),
            panicked()
        );
    }

    #[test]
    fn memory_names_what_failed_and_cpu_its_signal() {
        let limited = plan(Limits {
            memory: Some(64 << 20),
            cpu_secs: Some(1),
            ..Limits::NONE
        });
        let abort = Outcome::Crashed {
            signal: Signal::SIGABRT as i32,
            core_dumped: false,
        };
        let output = "memory allocation of 1073741824 bytes failed\n";
        assert_eq!(
            attribute(abort.clone(), Evidence::default(), &limited, output),
            Outcome::LimitReached {
                limit: Limit::Memory(64 << 20),
                what_failed: Some("memory allocation of 1073741824 bytes failed".into())
            }
        );
        assert_eq!(
            attribute(abort.clone(), Evidence::default(), &limited, ""),
            abort,
            "an abort without the allocation failure is the test's own"
        );
        let killed = Outcome::Crashed {
            signal: Signal::SIGKILL as i32,
            core_dumped: false,
        };
        let oom = Evidence {
            hit: LimitsHit {
                memory: true,
                ..LimitsHit::default()
            },
            ..Evidence::default()
        };
        assert!(matches!(
            attribute(killed, oom, &limited, ""),
            Outcome::LimitReached {
                limit: Limit::Memory(_),
                what_failed: Some(_)
            }
        ));
        let xcpu = Outcome::Crashed {
            signal: Signal::SIGXCPU as i32,
            core_dumped: true,
        };
        assert_eq!(
            attribute(xcpu, Evidence::default(), &limited, ""),
            Outcome::LimitReached {
                limit: Limit::Cpu(1),
                what_failed: Some("the kernel ended the test process with SIGXCPU".into())
            }
        );
        let tree = Evidence {
            hit: LimitsHit {
                cpu: true,
                ..LimitsHit::default()
            },
            ..Evidence::default()
        };
        assert!(matches!(
            attribute(panicked(), tree, &limited, ""),
            Outcome::LimitReached {
                limit: Limit::Cpu(1),
                what_failed: Some(_)
            }
        ));
    }
}
