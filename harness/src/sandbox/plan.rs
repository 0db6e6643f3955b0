//! What a test asked for: the value `#[ns_test(...)]` compiles its arguments into.

/// The namespaces and settings of one test. A user namespace is always created.
///
/// The macro builds this as a constant; the fields are public for that reason only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// A network namespace with only `lo`, up.
    pub net: bool,
    /// A private mount namespace with a fresh tmpfs on `/tmp`.
    pub mount: bool,
    /// A UTS namespace (also implied by `hostname`).
    pub uts: bool,
    /// An IPC namespace.
    pub ipc: bool,
    /// A PID namespace, with a tiny init as PID 1 and the test as PID 2.
    pub pid: bool,
    /// The hostname to set inside the UTS namespace.
    pub hostname: Option<&'static str>,
    /// Clock offsets; `Some` creates a time namespace.
    pub time: Option<TimeOffsets>,
}

/// Offsets in seconds added to CLOCK_MONOTONIC and CLOCK_BOOTTIME inside the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOffsets {
    /// Seconds added to CLOCK_MONOTONIC (and its _RAW/_COARSE variants).
    pub monotonic: i64,
    /// Seconds added to CLOCK_BOOTTIME (and /proc/uptime).
    pub boottime: i64,
}

impl Plan {
    /// Only a user namespace.
    pub const fn user_only() -> Plan {
        Plan {
            net: false,
            mount: false,
            uts: false,
            ipc: false,
            pid: false,
            hostname: None,
            time: None,
        }
    }

    /// The full hermetic set that a bare `#[ns_test]` gets: user, mount, net, uts, ipc, pid.
    pub const fn hermetic() -> Plan {
        Plan {
            net: true,
            mount: true,
            uts: true,
            ipc: true,
            pid: true,
            hostname: None,
            time: None,
        }
    }

    /// Whether a UTS namespace is created: asked for, or implied by a hostname.
    pub const fn uts(&self) -> bool {
        self.uts || self.hostname.is_some()
    }

    /// The plan that needs everything any of `plans` needs (settings are dropped, and a
    /// time namespace gets zero offsets): what the host probe tries once before the run.
    pub(crate) fn union<'a>(plans: impl IntoIterator<Item = &'a Plan>) -> Plan {
        plans.into_iter().fold(Plan::user_only(), |acc, p| Plan {
            net: acc.net || p.net,
            mount: acc.mount || p.mount,
            uts: acc.uts || p.uts(),
            ipc: acc.ipc || p.ipc,
            pid: acc.pid || p.pid,
            hostname: None,
            time: (acc.time.is_some() || p.time.is_some()).then_some(TimeOffsets {
                monotonic: 0,
                boottime: 0,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_needs_everything_any_plan_needs_but_no_settings() {
        let a = Plan {
            net: true,
            hostname: Some("a"),
            ..Plan::user_only()
        };
        let b = Plan {
            pid: true,
            time: Some(TimeOffsets {
                monotonic: 5,
                boottime: 7,
            }),
            ..Plan::user_only()
        };
        let u = Plan::union([&a, &b]);
        assert!(u.net && u.pid && u.uts && !u.mount && !u.ipc);
        assert_eq!(u.hostname, None);
        assert_eq!(
            u.time,
            Some(TimeOffsets {
                monotonic: 0,
                boottime: 0
            })
        );
        assert_eq!(Plan::union([]), Plan::user_only());
    }
}
