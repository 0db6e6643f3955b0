//! A cgroup leaf per slot, where the runner may create cgroups (root, or a hierarchy
//! delegated to the user): the kernel then counts a test's whole tree, threads and
//! children included, with `pids.max` and the memory limit (page cache and tmpfs pages
//! included), kills precisely at the memory limit, and says afterwards which limit was
//! reached (`pids.events`, the OOM kill counter).
//!
//! Who does what, and who removes what:
//!
//! - the runner, before the fork server is forked ([`prepare`]): finds its own cgroup in
//!   each cgroup v1 hierarchy of the `pids` and `memory` controllers, if it may write there;
//! - the fork server, at its start ([`open_run`]): removes what runs killed outright left
//!   (`nstest-<pid>` directories whose process is gone), then makes `nstest-<its pid>`;
//!   when it reaps a slot, it removes the slot's leaf ([`slot_ended`]), and on its way out
//!   the whole run's directory ([`close_run`]). It dies with the runner by SIGTERM, which
//!   it handles, so a runner killed with SIGKILL still leaves nothing behind;
//! - a slot ([`SlotLeaf::join`]): makes `slot-<its pid>` in the run's directory and moves
//!   itself there once (through `tasks` on cgroup v1, see `Version::join_file`), so every
//!   test process it forks starts in it (a fork inherits its parent's cgroup) without a
//!   migration per test. Before each test it writes the test's limits (only when they change), after
//!   it reads which were reached. The slot and a PID namespace's init count as tasks of
//!   the leaf, so `pids.max` is the test's limit plus them;
//! - in a run of one test (`process::direct`) there is no fork server: the runner makes
//!   `nstest-<its pid>` in the `pids` hierarchy before it forks the lone slot, the lone
//!   slot makes it in the `memory` hierarchy only for a test with a `memory` limit
//!   ([`open_run_for`]), and the runner removes both once it has reaped the slot; a lone
//!   slot whose runner was killed moves itself out and removes them ([`SlotLeaf::leave_run`]).
//!
//! Where to make them is `find`'s job: the runner's own cgroup in the v1 hierarchies (this
//! project's CI hosts), else a cgroup2 directory (`NSTEST_CGROUP`, or for root the cgroup2
//! root) whose controllers the fork server hands to the run's directory. Where none is
//! found, the limits fall back to resource limits; `docs/src/limits.md` says what each
//! counts.

use std::io::ErrorKind;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::errno::Errno;

use super::Plan;
use super::limits::{self, Enforced};
use crate::error::{Error, Result};
use crate::wire::LimitsHit;

mod find;

pub(crate) use find::{Controller, Hierarchy, Version};

/// The hierarchies where the runner may make cgroups, found once in the runner.
static OWN: OnceLock<Vec<Hierarchy>> = OnceLock::new();

/// Finds them; called by the runner before it forks the fork server.
pub(crate) fn prepare() {
    let _ = own();
}

/// Where the runner may make cgroups for `pids` and `memory` (see `find`).
pub(crate) fn own() -> &'static [Hierarchy] {
    OWN.get_or_init(|| {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let asked = std::env::var("NSTEST_CGROUP")
            .ok()
            .filter(|dir| !dir.trim().is_empty());
        let given = asked.clone().filter(|dir| dir.starts_with('/'));
        let found = find::find(&find::Host {
            mountinfo: &read("/proc/self/mountinfo"),
            cgroups: &read("/proc/self/cgroup"),
            given: given.as_deref(),
            root: nix::unistd::geteuid().is_root(),
            writable: &|dir| nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok(),
            controllers: &|dir| read(&format!("{dir}/cgroup.controllers")),
        });
        // A directory the user named but that serves no controller is said once, with
        // the fix, rather than silently falling back to resource limits.
        if let Some(dir) = asked {
            let used = given.as_deref().is_some_and(|given| {
                let given = given.trim_end_matches('/');
                found.iter().any(|h| h.dir == given)
            });
            if !used {
                let instead = match found.first() {
                    None => "the limits fall back to resource limits".to_owned(),
                    Some(h) => format!("the run uses {} instead", h.dir),
                };
                eprintln!(
                    "nstest: NSTEST_CGROUP={dir:?} is not used: it must be the absolute path \
                     of an empty cgroup2 directory you may write, whose parent enables the \
                     pids and memory controllers for it (cgroup.subtree_control); {instead} \
                     (`cargo xtask doctor` says what each limit counts here)"
                );
            }
        }
        found
    })
}

impl Version {
    /// The file the calling process writes "0" to, to move itself into a cgroup.
    ///
    /// With cgroup v1, `tasks`: it moves the calling thread alone, and the kernel then
    /// skips the thread-group lock (`cgroup_procs_write_start`: a thread moving itself
    /// cannot exit or exec meanwhile), whose taking for writing waits for an RCU grace
    /// period first whenever no other move was made in the last one (`rcu_sync_enter`).
    /// Every process that moves itself here (a slot, a lone slot going home) has one
    /// thread, so moving it is moving the process. Measured here through `cgroup.procs`:
    /// in 300 one-test runs as root back to back, a median of 23 µs per move, but 7 moves
    /// over 1 ms and up to 21 ms (a mean of 0.3 ms); in 200 moves 10 ms apart, up to
    /// 30 ms. Through `tasks`, those 200 moves took at most 0.5 ms. Interleaved with other
    /// processes, as a mixed suite runs under nextest, 90 of 300 one-test runs took over
    /// 8 ms before, 4 after (docs/src/performance-floor.md). cgroup2's `cgroup.threads`
    /// only serves threaded cgroups, so there a move is `cgroup.procs`.
    fn join_file(self) -> &'static str {
        match self {
            Version::V1 => "tasks",
            Version::V2 => "cgroup.procs",
        }
    }

    /// The memory limit's control file, and how it spells "no limit".
    fn memory_limit(self) -> (&'static str, &'static str) {
        match self {
            Version::V1 => ("memory.limit_in_bytes", "-1"),
            Version::V2 => ("memory.max", "max"),
        }
    }

    /// The memory in use, in bytes.
    fn memory_usage(self) -> &'static str {
        match self {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        }
    }

    /// The file whose `oom_kill` line counts the processes killed at the limit.
    fn oom_events(self) -> &'static str {
        match self {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        }
    }
}

/// The run's directory in each hierarchy: made by the fork server in every hierarchy at
/// its start; in a run of one test (`process::direct`), by the runner for `pids`, and by
/// its lone slot for `memory` once a test has a `memory` limit.
static RUN: Mutex<Vec<Hierarchy>> = Mutex::new(Vec::new());

/// The pid the run's directories are named after (`nstest-<pid>`): the fork server's, or
/// the runner's in a run of one test; 0 before the run is opened.
static OWNER: AtomicU32 = AtomicU32::new(0);

fn run_dirs() -> Vec<Hierarchy> {
    RUN.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Slot leaves the fork server could not remove yet (a stray was still in them).
static PENDING: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// In the fork server, at its start: removes the directories of runs whose fork server is
/// gone, and makes this run's: in the `pids` hierarchy (every test has a process limit),
/// and in the `memory` one only when `memory_limits` (some test of the run may have a
/// `memory` limit; the runner says, see `runner::session::Runs`).
///
/// A process in a memory cgroup pays for it in every page the kernel charges to it: with
/// cgroup v1 each charge walks the memory, swap and kernel-memory counters of every level
/// up to the root, and a test's new namespaces are all charged kernel memory. Slots in
/// leaves two levels below the runner's cgroup made a run of 1,000 full-set tests with
/// `time` on one thread 5% slower as root here (1,774 against 1,682 ms, medians of 8
/// alternating runs, slower in each pair).
pub(crate) fn open_run(memory_limits: bool) {
    match memory_limits {
        true => open_run_for(&[Controller::Pids, Controller::Memory]),
        false => open_run_for(&[Controller::Pids]),
    }
}

/// Makes the run's directory in the hierarchies of `controllers` that have none yet,
/// first removing there the directories of runs that are gone. The first call names the
/// run after the calling process. A run of one test opens `memory` only for a test that
/// has a `memory` limit: a memory cgroup costs about 0.2 ms more per test process here
/// (made, joined, removed), which every test would pay under nextest.
pub(crate) fn open_run_for(controllers: &[Controller]) {
    let mut run = RUN.lock().unwrap_or_else(|e| e.into_inner());
    if OWNER.load(Ordering::Relaxed) == 0 {
        OWNER.store(std::process::id(), Ordering::Relaxed);
    }
    let me = OWNER.load(Ordering::Relaxed);
    let wanted = |own: &&Hierarchy| {
        controllers.contains(&own.controller) && !run.iter().any(|r| r.controller == own.controller)
    };
    let made: Vec<Hierarchy> = own()
        .iter()
        .filter(wanted)
        .filter_map(|own| {
            sweep_stale(&own.dir);
            let dir = format!("{}/nstest-{me}", own.dir);
            let created = std::fs::create_dir(&dir);
            // With cgroup2 both controllers share the directory: the second finds it made.
            if let Err(e) = created {
                let shared = own.version == Version::V2 && e.kind() == ErrorKind::AlreadyExists;
                if !shared {
                    return None;
                }
            }
            if own.version == Version::V2 && !hand_down(&own.dir, &dir, own.controller) {
                let _ = std::fs::remove_dir(&dir);
                return None;
            }
            Some(Hierarchy { dir, ..own.clone() })
        })
        .collect();
    run.extend(made);
}

/// cgroup2: enables `controller` for the children of `base` and of the run's directory
/// `run`, so that the slots' leaves have its control files (cgroups(7), "Enabling and
/// disabling controllers"). Already enabled is fine.
fn hand_down(base: &str, run: &str, controller: Controller) -> bool {
    let enable = format!("+{}", controller.name());
    [base, run].into_iter().all(|dir| {
        let enabled = std::fs::read_to_string(format!("{dir}/cgroup.subtree_control"))
            .is_ok_and(|text| text.split_whitespace().any(|c| c == controller.name()));
        enabled || write(dir, "cgroup.subtree_control", &enable).is_ok()
    })
}

/// Removes `nstest-<pid>` directories under `dir` whose pid is no longer running, with
/// the slot leaves in them. A cgroup that still holds a process cannot be removed
/// (rmdir(2) fails with EBUSY), so a live run elsewhere is never disturbed.
fn sweep_stale(dir: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix("nstest-"))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        remove_tree(&entry.path().to_string_lossy());
    }
}

/// rmdir(2) of every directory under `dir`, then of `dir` itself.
fn remove_tree(dir: &str) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn slot_dir(run: &Hierarchy, slot: u32) -> String {
    format!("{}/slot-{slot}", run.dir)
}

/// In the fork server, once it has reaped the slot `slot`: removes its leaves, or keeps
/// them for later while a stray of its last test is still in one.
pub(crate) fn slot_ended(slot: u32) {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    for run in run_dirs() {
        pending.push(slot_dir(&run, slot));
    }
    pending.retain(|dir| {
        !matches!(std::fs::remove_dir(dir), Err(e) if e.kind() != std::io::ErrorKind::NotFound)
    });
}

/// In the fork server (or the runner of one test, `process::direct`), once every process
/// it started is gone: removes the run's directories, in every hierarchy where there may
/// be one (a lone slot may have made one this process did not).
pub(crate) fn close_run() {
    let owner = OWNER.load(Ordering::Relaxed);
    if owner == 0 {
        return;
    }
    for own in own() {
        remove_tree(&format!("{}/nstest-{owner}", own.dir));
    }
}

/// What the slot's leaves enforce, for the test processes it forks (they inherit it).
static ENFORCED: AtomicU8 = AtomicU8::new(0);

/// What the calling test process's slot enforces through its cgroup.
pub(crate) fn enforced() -> Enforced {
    let bits = ENFORCED.load(Ordering::Relaxed);
    Enforced {
        pids: bits & 1 != 0,
        memory: bits & 2 != 0,
    }
}

/// One control directory of a slot, with what was last written to it and the event
/// counter last read from it.
struct Leaf {
    dir: String,
    version: Version,
    /// Its event counter: `pids.events`, or the OOM kills of the memory controller.
    counter: Counter,
    written: Option<u64>,
    events: u64,
    /// `events` was read after the last test, so it is current.
    counted: bool,
}

/// A slot's leaves: where it and every test it forks are counted.
pub(crate) struct SlotLeaf {
    pids: Option<Leaf>,
    memory: Option<Leaf>,
    /// A lone slot (`process::direct`) opens the `memory` hierarchy itself, for the first
    /// test with a `memory` limit.
    opens_memory: bool,
}

/// `u64::MAX` stands for "no limit" in the two files below.
const UNLIMITED: u64 = u64::MAX;

/// How much more than a test's `memory` a limit written for an earlier test may give it
/// before it is written again.
const MEMORY_SLACK: u64 = 1 << 20;

impl SlotLeaf {
    /// In a fresh slot: makes its leaf in each hierarchy of the run and moves itself in.
    /// A hierarchy where that fails is left out; its limit then falls back to a resource
    /// limit in the test process. `lone`: a run of one test's slot, which opens the
    /// `memory` hierarchy when a test needs it (see [`open_run_for`]).
    pub(crate) fn join(lone: bool) -> SlotLeaf {
        let mut leaf = SlotLeaf {
            pids: None,
            memory: None,
            opens_memory: lone,
        };
        leaf.join_open_hierarchies();
        leaf
    }

    /// Joins each hierarchy of the run this slot is not in yet.
    fn join_open_hierarchies(&mut self) {
        let me = std::process::id();
        let mut joined_dirs: Vec<String> = [&self.pids, &self.memory]
            .into_iter()
            .flatten()
            .map(|leaf| leaf.dir.clone())
            .collect();
        for run in run_dirs() {
            let joined_already = match run.controller {
                Controller::Pids => self.pids.is_some(),
                Controller::Memory => self.memory.is_some(),
            };
            if joined_already {
                continue;
            }
            let dir = slot_dir(&run, me);
            // With cgroup2 one leaf serves both controllers: joined once.
            if !joined_dirs.contains(&dir) {
                if std::fs::create_dir(&dir).is_err() {
                    continue;
                }
                if write(&dir, run.version.join_file(), "0").is_err() {
                    let _ = std::fs::remove_dir(&dir);
                    continue;
                }
                joined_dirs.push(dir.clone());
            }
            let counter = match run.controller {
                Controller::Pids => Counter::open(&dir, "pids.events", "max "),
                Controller::Memory => Counter::open(&dir, run.version.oom_events(), "oom_kill "),
            };
            let joined = Some(Leaf {
                dir,
                version: run.version,
                counter,
                written: None,
                events: 0,
                counted: false,
            });
            match run.controller {
                Controller::Pids => self.pids = joined,
                Controller::Memory => self.memory = joined,
            }
        }
        let bits = u8::from(self.pids.is_some()) | (u8::from(self.memory.is_some()) << 1);
        ENFORCED.store(bits, Ordering::Relaxed);
    }

    /// Before a test: its limits, written where they differ from the last test's, and the
    /// event counters it will be compared against.
    ///
    /// # Errors
    ///
    /// The failing write.
    pub(crate) fn set_for(&mut self, plan: &Plan) -> Result<()> {
        if self.opens_memory && self.memory.is_none() && plan.limits.memory.is_some() {
            // Once: where it cannot be made, the memory limit falls back as elsewhere.
            self.opens_memory = false;
            open_run_for(&[Controller::Memory]);
            self.join_open_hierarchies();
        }
        if let Some(leaf) = &mut self.pids {
            // The slot and a PID namespace's init are in the leaf too.
            let tasks = u64::from(limits::pids_of(plan)) + 1 + u64::from(plan.pid);
            leaf.set("pids.max", tasks, |n| n.to_string())?;
        }
        if let Some(leaf) = &mut self.memory {
            // What the leaf holds now (the slot's own pages, page cache an earlier test
            // left) is not the test's: it gets `memory` on top. Never below what is held,
            // which the kernel refuses with EBUSY.
            // A limit already written that gives the test its value, and at most
            // `MEMORY_SLACK` more, is kept: the slot's few pages move a little from test
            // to test, and a write per test would cost more than the precision is worth.
            let version = leaf.version;
            let bytes = plan.limits.memory.map_or(UNLIMITED, |bytes| {
                let want = counter(&leaf.dir, version.memory_usage(), "").saturating_add(bytes);
                match leaf.written {
                    Some(kept) if (want..=want.saturating_add(MEMORY_SLACK)).contains(&kept) => {
                        kept
                    }
                    _ => want,
                }
            });
            let (file, unlimited) = version.memory_limit();
            leaf.set(file, bytes, |n| match n {
                UNLIMITED => unlimited.to_owned(),
                n => n.to_string(),
            })?;
            if bytes != UNLIMITED && !leaf.counted {
                leaf.events = leaf.counter.read();
                leaf.counted = true;
            }
        }
        Ok(())
    }

    /// A lone slot whose runner is gone (`process::direct`), once every process of its
    /// test is: no fork server is left to remove the run's directories, so the slot moves
    /// itself back to the cgroup the run's directory was made in and removes them itself.
    /// Where it may not go back (a delegated cgroup2 directory holds no process once it
    /// hands controllers down), they stay until the next run, which removes the
    /// directories of runs that are gone.
    pub(crate) fn leave_run(&self) {
        for run in run_dirs() {
            if let Some(home) = Path::new(&run.dir).parent() {
                let _ = write(&home.to_string_lossy(), run.version.join_file(), "0");
            }
        }
        close_run();
    }

    /// What a PID namespace's init needs to say itself which limits the kernel enforced
    /// on `plan`'s test: the counters, open, and their values before the test. Init cannot
    /// see the hierarchy (it is in the test's mount namespace) but inherits the
    /// descriptors; so it writes the whole exit frame straight to the runner, and the slot
    /// need not wake to add the limits to it (one wake-up less on every `pid` test's way
    /// where the run makes cgroups). Call after [`SlotLeaf::set_for`].
    pub(crate) fn watch(&self, plan: &Plan) -> LimitWatch<'_> {
        let memory = self
            .memory
            .as_ref()
            .filter(|leaf| plan.limits.memory.is_some() && leaf.counted);
        LimitWatch {
            pids: self.pids.as_ref().and_then(Leaf::watched),
            memory: memory.and_then(Leaf::watched),
        }
    }

    /// After a test, once all its processes are gone: which limits the kernel enforced.
    pub(crate) fn hits(&mut self, plan: &Plan) -> LimitsHit {
        let mut hit = LimitsHit::default();
        if let Some(leaf) = &mut self.pids {
            let now = leaf.counter.read();
            hit.pids = now > leaf.events;
            leaf.events = now;
        }
        if let Some(leaf) = &mut self.memory {
            if plan.limits.memory.is_some() {
                let now = leaf.counter.read();
                hit.memory = now > leaf.events;
                leaf.events = now;
            } else {
                // Not read after this test: read again before the next limited one.
                leaf.counted = false;
            }
        }
        hit
    }
}

/// The limits a PID namespace's init reads itself (see [`SlotLeaf::watch`]): the slot's
/// counters, which init inherits open, and their values before the test.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LimitWatch<'a> {
    pids: Option<Watched<'a>>,
    memory: Option<Watched<'a>>,
}

#[derive(Debug, Clone, Copy)]
struct Watched<'a> {
    fd: BorrowedFd<'a>,
    key: &'static str,
    before: u64,
}

impl LimitWatch<'_> {
    /// Once every other process of the test is gone: which limits the kernel enforced.
    pub(crate) fn hits(&self) -> LimitsHit {
        let grew = |watched: Option<Watched<'_>>| {
            watched.is_some_and(|w| read_counter(w.fd, w.key) > w.before)
        };
        LimitsHit {
            pids: grew(self.pids),
            memory: grew(self.memory),
            cpu: false,
        }
    }
}

/// An event counter file of a leaf, opened when the slot joins it and kept open. A read
/// at offset 0 (pread(2)) makes the kernel print the file anew, so one system call serves
/// each test where opening, reading and closing it took five.
struct Counter {
    /// `None` where it could not be opened: it then reads as 0, as an unreadable file did.
    file: Option<std::fs::File>,
    /// The line the count is on (`max `, `oom_kill `).
    key: &'static str,
}

impl Counter {
    fn open(dir: &str, file: &str, key: &'static str) -> Counter {
        let file = std::fs::File::open(format!("{dir}/{file}")).ok();
        Counter { file, key }
    }

    fn read(&self) -> u64 {
        self.file
            .as_ref()
            .map_or(0, |file| read_counter(file.as_fd(), self.key))
    }
}

/// The value after `key` in the counter file open on `fd`; 0 if it cannot be read.
fn read_counter(fd: BorrowedFd<'_>, key: &str) -> u64 {
    let mut buf = [0u8; 512];
    let len = nix::sys::uio::pread(fd, &mut buf, 0).unwrap_or(0);
    parse_counter(&String::from_utf8_lossy(&buf[..len]), key)
}

fn parse_counter(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

impl Leaf {
    /// Its counter and its value before the test, for init to compare.
    fn watched(&self) -> Option<Watched<'_>> {
        let file = self.counter.file.as_ref()?;
        Some(Watched {
            fd: file.as_fd(),
            key: self.counter.key,
            before: self.events,
        })
    }

    fn set(&mut self, file: &str, value: u64, shown: impl Fn(u64) -> String) -> Result<()> {
        if self.written == Some(value) {
            return Ok(());
        }
        let text = shown(value);
        write(&self.dir, file, &text).map_err(|source| Error::WriteCgroupFile {
            path: format!("{}/{file}", self.dir),
            content: text,
            source,
        })?;
        self.written = Some(value);
        Ok(())
    }
}

fn write(dir: &str, file: &str, text: &str) -> std::result::Result<(), Errno> {
    std::fs::write(format!("{dir}/{file}"), text)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// The number after `key` in a flat-keyed control file (`max 3`, `oom_kill 1`); 0 if
/// absent.
fn counter(dir: &str, file: &str, key: &str) -> u64 {
    parse_counter(
        &std::fs::read_to_string(format!("{dir}/{file}")).unwrap_or_default(),
        key,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_key() {
        let dir = std::env::temp_dir().join(format!("nstest-leaf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.to_str().unwrap();
        std::fs::write(
            format!("{path}/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        assert_eq!(counter(path, "memory.oom_control", "oom_kill "), 3);
        assert_eq!(counter(path, "pids.events", "max "), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A kept counter is read from its start every time, as a PID namespace's init reads
    /// the slot's; a value that grew is a limit hit, one that did not is none.
    #[test]
    fn a_kept_counter_is_read_again_and_compared_with_its_value_before() {
        let dir = std::env::temp_dir().join(format!("nstest-kept-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pids.events");
        std::fs::write(&path, "max 2\n").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        assert_eq!(read_counter(file.as_fd(), "max "), 2);
        let watch = |before| LimitWatch {
            pids: Some(Watched {
                fd: file.as_fd(),
                key: "max ",
                before,
            }),
            memory: None,
        };
        assert!(!watch(2).hits().pids);
        std::fs::write(&path, "max 3\n").unwrap();
        assert_eq!(read_counter(file.as_fd(), "max "), 3);
        assert!(watch(2).hits().pids);
        assert!(!watch(2).hits().memory);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
