//! What a test asked for: the value `#[ns_test(...)]` compiles its arguments into.
//!
//! Plain data (layer 1 of docs/src/architecture.md): depends on nothing in the crate.
//! Runs in: every process; the macro builds it as a constant.

/// The namespaces and settings of one test. A user namespace is always created.
///
/// The macro builds this as a constant; the fields are public for that reason only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// A network namespace with only `lo`, up.
    pub net: bool,
    /// A private mount namespace in which the host's whole tree is read-only (and locked
    /// so), with fresh tmpfs on `/tmp`, `/var/tmp`, `/dev/shm` and `target_tmpdir`.
    pub mount: bool,
    /// A UTS namespace (also implied by `hostname`).
    pub uts: bool,
    /// An IPC namespace.
    pub ipc: bool,
    /// A PID namespace, with a tiny init as PID 1 and the test as PID 2.
    pub pid: bool,
    /// A cgroup namespace: `/proc/self/cgroup` reads `0::/`; with `mount`, a fresh cgroup2
    /// mount on `/sys/fs/cgroup` shows the test's own subtree.
    pub cgroup: bool,
    /// The hostname to set inside the UTS namespace.
    pub hostname: Option<&'static str>,
    /// Clock offsets; `Some` creates a time namespace.
    pub time: Option<TimeOffsets>,
    /// `wall = "..."`: where the test's own wall clock starts (no namespace: see
    /// `sandbox::wall`).
    pub wall: Option<Wall>,
    /// `writable = ...`: absolute host paths bound read-write into the read-only view
    /// (relative ones were joined to the package root by the macro).
    pub writable: &'static [&'static str],
    /// `pids`, `memory`, `disk`, `cpu`: the resource limits the test asked for.
    pub limits: Limits,
    /// The package root (`CARGO_MANIFEST_DIR` of the test's crate), kept visible at its
    /// host path when it lies under a fresh tmpfs such as `/tmp`.
    pub manifest_dir: Option<&'static str>,
    /// `CARGO_TARGET_TMPDIR` of the test's crate (integration tests only): with `mount`, a
    /// fresh tmpfs there; its parent, the target directory, stays visible.
    pub target_tmpdir: Option<&'static str>,
}

/// Where a test's wall clock (CLOCK_REALTIME, `SystemTime`) starts; it then runs at the
/// true clock's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wall {
    /// `wall = "+1d"`: the true wall clock plus this many seconds (negative: minus).
    Offset {
        /// Seconds added.
        secs: i64,
    },
    /// `wall = "2038-01-19T03:14:00Z"`: this instant when the test starts.
    At {
        /// Whole seconds since the Unix epoch (negative before 1970).
        unix_secs: i64,
        /// Nanoseconds after them, below 1e9.
        nanos: u32,
    },
}

/// Offsets in seconds added to CLOCK_MONOTONIC and CLOCK_BOOTTIME inside the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOffsets {
    /// Seconds added to CLOCK_MONOTONIC (and its _RAW/_COARSE variants).
    pub monotonic: i64,
    /// Seconds added to CLOCK_BOOTTIME (and /proc/uptime).
    pub boottime: i64,
}

/// The resource limits of one test, as `#[ns_test(...)]` wrote them; `None` where it gave
/// none. `docs/src/limits.md` says how each is enforced on each kind of host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// `pids = N`: at most N tasks (processes and threads, the test's own process
    /// included) in the test's tree; `None` takes the run's default (`NSTEST_PIDS`).
    pub pids: Option<u32>,
    /// `memory = "64M"`, in bytes: what the test's tree may use.
    pub memory: Option<u64>,
    /// `disk = "8M"`, in bytes: the size of each fresh tmpfs of the mount namespace.
    pub disk: Option<u64>,
    /// `cpu = "1s"`: seconds of CPU time.
    pub cpu_secs: Option<u64>,
}

impl Limits {
    /// No limit given.
    pub const NONE: Limits = Limits {
        pids: None,
        memory: None,
        disk: None,
        cpu_secs: None,
    };
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
            cgroup: false,
            hostname: None,
            time: None,
            wall: None,
            writable: &[],
            limits: Limits::NONE,
            manifest_dir: None,
            target_tmpdir: None,
        }
    }

    /// The full hermetic set that a bare `#[ns_test]` gets: user, mount, net, uts, ipc, pid,
    /// cgroup.
    pub const fn hermetic() -> Plan {
        Plan {
            net: true,
            mount: true,
            uts: true,
            ipc: true,
            pid: true,
            cgroup: true,
            ..Plan::user_only()
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
            cgroup: acc.cgroup || p.cgroup,
            hostname: None,
            time: (acc.time.is_some() || p.time.is_some()).then_some(TimeOffsets {
                monotonic: 0,
                boottime: 0,
            }),
            ..Plan::user_only()
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
            cgroup: true,
            writable: &["/x"],
            time: Some(TimeOffsets {
                monotonic: 5,
                boottime: 7,
            }),
            ..Plan::user_only()
        };
        let u = Plan::union([&a, &b]);
        assert!(u.net && u.pid && u.uts && u.cgroup && !u.mount && !u.ipc);
        assert_eq!(u.hostname, None);
        assert!(u.writable.is_empty(), "paths are settings, not needs");
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
