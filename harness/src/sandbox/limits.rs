//! Limits on a test's resources (`pids`, `memory`, `disk`, `cpu`, and the default process
//! limit): the values in force, and what the test process applies to itself.
//!
//! Where the slot found a cgroup it can use (`leaf`), the kernel counts the test's whole
//! tree there and this module only sets `RLIMIT_CPU`. Elsewhere it uses what the kernel
//! gives an unprivileged process, set in the test process after its sandbox is built and
//! inherited by everything it starts:
//!
//! - `RLIMIT_NPROC`, which since Linux 5.14 counts the tasks of one user in one user
//!   namespace (ucounts): the test's own namespace, so only its tree counts. The kernel
//!   exempts the host's root from it, so as root the pids limit needs the cgroup.
//! - `RLIMIT_DATA`, for memory: private writable mappings (the heap, anonymous `mmap`,
//!   thread stacks) of each process, reserved rather than touched, on top of what the test
//!   process already had when its test started.
//! - `RLIMIT_CPU`: CPU time of each process (SIGXCPU at the limit, SIGKILL a second later);
//!   the tree's total is the slot's to watch, with [`tree_cpu_ticks`].
//! - `disk` is the `size=` of each fresh tmpfs (`mount`).

use std::sync::OnceLock;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use super::Plan;
use crate::error::{Error, Result};

/// Tasks a test may have when it gives no `pids`: enough for any build tool or thread pool
/// a test may start, few enough that a fork bomb stops long before the host's limits.
pub(crate) const DEFAULT_PIDS: u32 = 4096;

/// The run's default process limit: `NSTEST_PIDS`, or [`DEFAULT_PIDS`]. Read in the
/// runner before the fork server is forked, so every sandbox process inherits it.
static RUN_PIDS: OnceLock<std::result::Result<u32, String>> = OnceLock::new();

/// Reads `NSTEST_PIDS` once.
pub(crate) fn prepare() {
    let _ = run_pids();
}

/// The default process limit of this run.
///
/// # Errors
///
/// A sentence naming `NSTEST_PIDS` and what it accepts.
pub(crate) fn run_pids() -> std::result::Result<u32, String> {
    RUN_PIDS
        .get_or_init(|| match std::env::var("NSTEST_PIDS") {
            Ok(text) if !text.trim().is_empty() => parse_pids(text.trim())
                .map_err(|why| format!("NSTEST_PIDS={text:?} is not a process limit: {why}")),
            _ => Ok(DEFAULT_PIDS),
        })
        .clone()
}

fn parse_pids(text: &str) -> std::result::Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "expected a number of tasks from 1 to {} (default {DEFAULT_PIDS})",
            u32::MAX
        )),
    }
}

/// The process limit of a test: its `pids`, else the run's default.
pub(crate) fn pids_of(plan: &Plan) -> u32 {
    plan.limits
        .pids
        .unwrap_or_else(|| run_pids().unwrap_or(DEFAULT_PIDS))
}

/// What the slot's cgroup already enforces for the test, so the test process need not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Enforced {
    pub(crate) pids: bool,
    pub(crate) memory: bool,
}

/// In the test process, once its sandbox is built and before the test runs: the limits
/// the cgroup does not enforce, as resource limits inherited by everything it starts.
/// `under_init`: the test runs as PID 2, and its init counts as one task of its user
/// namespace.
///
/// # Errors
///
/// The failing `setrlimit(2)`.
pub(crate) fn apply_in_test_process(
    plan: &Plan,
    enforced: Enforced,
    under_init: bool,
) -> Result<()> {
    if let Some(secs) = plan.limits.cpu_secs {
        // SIGXCPU (whose default action ends the process) at the limit, SIGKILL a second
        // later for a process that ignores it (getrlimit(2)).
        set(
            Resource::RLIMIT_CPU,
            "RLIMIT_CPU",
            secs,
            secs.saturating_add(1),
        )?;
    }
    if !enforced.pids {
        let tasks = u64::from(pids_of(plan)) + u64::from(under_init);
        set(Resource::RLIMIT_NPROC, "RLIMIT_NPROC", tasks, tasks)?;
    }
    if let (Some(bytes), false) = (plan.limits.memory, enforced.memory) {
        // An absolute value would count what this fork inherited (the runner's heap and
        // stacks, copied): the test gets `bytes` beyond what it holds now.
        let base = data_size().unwrap_or(0);
        let limit = base.saturating_add(bytes);
        set(Resource::RLIMIT_DATA, "RLIMIT_DATA", limit, limit)?;
    }
    Ok(())
}

/// Sets a resource limit, never above the hard limit the process already has (only a
/// privileged process may raise it).
fn set(resource: Resource, name: &'static str, soft: u64, hard: u64) -> Result<()> {
    let (_, current_hard) = getrlimit(resource).map_err(|source| Error::Sys {
        call: "getrlimit",
        source,
    })?;
    let hard = hard.min(current_hard);
    setrlimit(resource, soft.min(hard), hard).map_err(|source| Error::SetLimit {
        resource: name,
        value: hard,
        source,
    })
}

/// `VmData` of `/proc/self/status` in bytes: what `RLIMIT_DATA` counts (proc_pid_status(5)).
fn data_size() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmData:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Whether a test process whose test just failed stands at its process limit: the
/// kernel refuses it one more task.
pub(crate) fn at_pids_limit() -> bool {
    matches!(crate::sys::limits::can_start_a_task(), Ok(false))
}

/// CPU time used so far by the calling slot's test, in clock ticks: every process below
/// the slot, live or not yet reaped (utime + stime), with what each has reaped of its own
/// children (cutime + cstime), from proc_pid_stat(5). The slot runs one test at a time, so
/// everything below it is that test's; processes the test reaped are in their reaper's
/// counts, orphans wait as zombies of the slot (or of init) until the test ends.
pub(crate) fn tree_cpu_ticks() -> u64 {
    let mut total = 0;
    let mut pending: Vec<u32> = crate::sys::children_of_self()
        .into_iter()
        .map(|pid| pid.as_raw().unsigned_abs())
        .collect();
    while let Some(pid) = pending.pop() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        total += cpu_ticks_of(&stat);
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            pending.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    total
}

/// utime + stime + cutime + cstime (fields 14 to 17) of a `/proc/<pid>/stat` line; the
/// name before them is in parentheses and may hold spaces.
fn cpu_ticks_of(stat: &str) -> u64 {
    let Some((_, after_name)) = stat.rsplit_once(") ") else {
        return 0;
    };
    // After the name: state (field 3) ... utime is field 14, the 12th from here.
    after_name
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|n| n.parse::<i64>().ok())
        .map(i64::unsigned_abs)
        .sum()
}

/// Clock ticks per second, as `/proc/<pid>/stat` counts CPU time (sysconf(3)).
pub(crate) fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|n| u64::try_from(n).ok())
        .filter(|&n| n > 0)
        .unwrap_or(100)
}

/// `64 MiB`, `512 KiB`, `1 GiB`, or `1000 bytes`: a size as the failure texts say it.
pub(crate) fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_they_were_written() {
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(8 << 10), "8 KiB");
        assert_eq!(format_size(2 << 30), "2 GiB");
        assert_eq!(format_size(1536 << 10), "1536 KiB");
        assert_eq!(format_size(1000), "1000 bytes");
    }

    #[test]
    fn cpu_ticks_are_the_four_time_fields_after_the_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 5 0 0";
        assert_eq!(cpu_ticks_of(stat), 7 + 3 + 2 + 1);
        assert_eq!(cpu_ticks_of("garbage"), 0);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_ticks_of(&own) < 1_000_000);
        assert!(ticks_per_second() > 0);
    }

    #[test]
    fn the_default_process_limit_is_a_positive_count() {
        assert_eq!(parse_pids("32"), Ok(32));
        assert!(parse_pids("0").unwrap_err().contains("from 1 to"));
        assert!(parse_pids("-1").is_err() && parse_pids("lots").is_err());
    }
}
