//! What this host can sandbox, found once per run before the first test.
//!
//! The fast path is one sandbox with everything the selected tests need. Only if that
//! fails is each kind tried alone, so that a host without time namespaces fails (or,
//! with `NSTEST_UNSUPPORTED=skip`, skips) just the tests that need them, with the cause
//! and its fix printed once.

use super::diagnosis::{self, HostFacts};
use crate::plan::{Plan, TimeOffsets};
use crate::registry::{ShouldPanic, Test};

/// One capability a test may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    User,
    Mount,
    Net,
    Uts,
    Ipc,
    Pid,
    /// A fresh /proc inside a PID namespace (`pid` with `mount`), refused where the host's
    /// /proc has masked paths.
    ProcMount,
    Time,
    Cgroup,
    /// A fresh cgroup2 mount in a cgroup namespace (`cgroup` with `mount`), refused in
    /// containers that share the host's cgroup namespace.
    CgroupMount,
}

/// Every capability, in the order they are probed and reported.
pub(crate) const KINDS: [Kind; 10] = [
    Kind::User,
    Kind::Mount,
    Kind::Net,
    Kind::Uts,
    Kind::Ipc,
    Kind::Pid,
    Kind::ProcMount,
    Kind::Time,
    Kind::Cgroup,
    Kind::CgroupMount,
];

impl Kind {
    /// What a person calls it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::User => "user namespaces",
            Kind::Mount => "mount namespaces",
            Kind::Net => "network namespaces",
            Kind::Uts => "UTS namespaces",
            Kind::Ipc => "IPC namespaces",
            Kind::Pid => "PID namespaces",
            Kind::ProcMount => "a fresh /proc in a PID namespace",
            Kind::Time => "time namespaces",
            Kind::Cgroup => "cgroup namespaces",
            Kind::CgroupMount => "a fresh cgroup2 mount in a cgroup namespace",
        }
    }

    /// Whether a test with `plan` needs it.
    fn needed_by(self, plan: &Plan) -> bool {
        match self {
            Kind::User => true,
            Kind::Mount => plan.mount,
            Kind::Net => plan.net,
            Kind::Uts => plan.uts(),
            Kind::Ipc => plan.ipc,
            Kind::Pid => plan.pid,
            Kind::ProcMount => plan.pid && plan.mount,
            Kind::Time => plan.time.is_some(),
            Kind::Cgroup => plan.cgroup,
            Kind::CgroupMount => plan.cgroup && plan.mount,
        }
    }

    /// The smallest plan that tries it.
    fn plan(self) -> Plan {
        let user = Plan::user_only();
        match self {
            Kind::User => user,
            Kind::Mount => Plan {
                mount: true,
                ..user
            },
            Kind::Net => Plan { net: true, ..user },
            Kind::Uts => Plan { uts: true, ..user },
            Kind::Ipc => Plan { ipc: true, ..user },
            Kind::Pid => Plan { pid: true, ..user },
            Kind::ProcMount => Plan {
                pid: true,
                mount: true,
                ..user
            },
            Kind::Time => Plan {
                time: Some(TimeOffsets {
                    monotonic: 0,
                    boottime: 0,
                }),
                ..user
            },
            Kind::Cgroup => Plan {
                cgroup: true,
                ..user
            },
            Kind::CgroupMount => Plan {
                cgroup: true,
                mount: true,
                ..user
            },
        }
    }
}

/// The plan that needs every kind: what the doctor tries, and libtest's harness, which
/// cannot know before the first test which kinds its tests need.
pub(crate) fn everything() -> Plan {
    let plans: Vec<Plan> = KINDS.iter().map(|kind| kind.plan()).collect();
    Plan::union(&plans)
}

/// A capability the host lacks, with why.
#[derive(Debug, Clone)]
pub(crate) struct Missing {
    pub kind: Kind,
    /// The failing call, as the sandbox reported it.
    pub detail: String,
    /// The cause and fix, ready to print.
    pub diagnosis: String,
}

/// The probe's sandboxes, registered with the fork server like tests: the union of what
/// the selected tests need first, then one per kind.
pub(crate) fn probe_tests(needed: Plan) -> Vec<&'static Test> {
    std::iter::once(needed)
        .chain(KINDS.iter().map(|kind| kind.plan()))
        .map(|plan| {
            &*Box::leak(Box::new(Test {
                path: "nstest::host_probe",
                run: || Ok(()),
                plan,
                timeout_secs: None,
                ignore: false,
                ignore_message: None,
                should_panic: ShouldPanic::No,
                source: crate::registry::Source::NONE,
            }))
        })
        .collect()
}

/// What the host cannot do, found by running the probe sandboxes through `try_sandbox`
/// (index into [`probe_tests`]; returns the failed step, errno and detail, or `None` when
/// the sandbox worked).
pub(crate) fn find_missing(
    needed: &Plan,
    facts: &HostFacts,
    mut try_sandbox: impl FnMut(usize) -> Option<(crate::error::Step, i32, String)>,
) -> Vec<Missing> {
    if try_sandbox(0).is_none() {
        return Vec::new();
    }
    let mut missing = Vec::new();
    for (i, kind) in KINDS.iter().enumerate() {
        if !kind.needed_by(needed) {
            continue;
        }
        if let Some((step, errno, detail)) = try_sandbox(i + 1) {
            let diagnosis = diagnosis::diagnose(step, errno, facts).render(&detail);
            missing.push(Missing {
                kind: *kind,
                detail,
                diagnosis,
            });
            if *kind == Kind::User {
                // Nothing else can work without a user namespace.
                break;
            }
        }
    }
    missing
}

/// The first capability `plan` needs that the host lacks.
pub(crate) fn missing_for<'a>(missing: &'a [Missing], plan: &Plan) -> Option<&'a Missing> {
    missing.iter().find(|m| m.kind.needed_by(plan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Step;

    #[test]
    fn a_working_union_needs_no_more_probes() {
        let mut tried = Vec::new();
        let missing = find_missing(&Plan::hermetic(), &HostFacts::default(), |i| {
            tried.push(i);
            None
        });
        assert!(missing.is_empty());
        assert_eq!(tried, [0]);
    }

    #[test]
    fn a_failing_union_is_split_into_the_kinds_that_fail() {
        let needed = Plan {
            time: Some(TimeOffsets {
                monotonic: 0,
                boottime: 0,
            }),
            ..Plan::hermetic()
        };
        let time_index = 1 + KINDS.iter().position(|k| *k == Kind::Time).unwrap();
        let missing = find_missing(&needed, &HostFacts::default(), |i| {
            (i == 0 || i == time_index).then(|| (Step::Unshare, libc::ENOSPC, "unshare".into()))
        });
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].kind, Kind::Time);
        let time_test = Plan {
            net: true,
            ..needed
        };
        assert_eq!(
            missing_for(&missing, &time_test).map(|m| m.kind),
            Some(Kind::Time)
        );
        assert!(missing_for(&missing, &Plan::hermetic()).is_none());
    }

    #[test]
    fn without_user_namespaces_nothing_else_is_tried() {
        let mut tried = Vec::new();
        let missing = find_missing(&Plan::hermetic(), &HostFacts::default(), |i| {
            tried.push(i);
            Some((Step::Unshare, libc::EPERM, "unshare".into()))
        });
        assert_eq!(tried, [0, 1]);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].kind, Kind::User);
        assert!(missing_for(&missing, &Plan::user_only()).is_some());
    }

    #[test]
    fn each_probe_plan_needs_exactly_its_kind_beyond_user() {
        for kind in KINDS {
            let plan = kind.plan();
            assert!(kind.needed_by(&plan), "{kind:?}");
            let others: Vec<Kind> = KINDS
                .into_iter()
                .filter(|k| *k != kind && *k != Kind::User && k.needed_by(&plan))
                .collect();
            let expected: &[Kind] = match kind {
                Kind::ProcMount => &[Kind::Mount, Kind::Pid],
                Kind::CgroupMount => &[Kind::Mount, Kind::Cgroup],
                _ => &[],
            };
            assert_eq!(others, expected, "{kind:?}");
        }
    }
}
