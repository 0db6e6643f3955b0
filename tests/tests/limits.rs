//! Per-test limits, run by `fixture_limits` as root (a cgroup leaf per slot, on this
//! project's cgroup v1 hosts) and as an unprivileged user (resource limits in the test's
//! user namespace): each limit reached and named in the failure, in every output format;
//! each respected by a test that stays under it; children and threads counted; `disk`
//! giving ENOSPC inside; all four with `net, mount`; neighbours passing beside bombs and
//! hogs; the default limit stopping a bomb; and nothing left afterwards. One at a time:
//! each looks for the processes of its own run.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serial_test::serial;
use support::{eventually, processes_with, run};

const BIN: &str = env!("CARGO_BIN_EXE_fixture_limits");

/// The `sleep` argument of every child the fixture starts.
const NAP: &str = "61.4142";

/// The failure line of a tree that reached `cpu = "1s"` together.
const TREE_CPU: &str = "nstest: cpu time limit (1s) reached: the test and the processes it \
    started used it, counted together; nstest ended them all";

/// The run's default process limit in most runs: small, so a bomb of processes ends fast.
const SMALL_DEFAULT: &str = "200";

fn last_line(r: &support::Run, name: &str) -> String {
    r.failure(name)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// `nstest-<pid>` cgroup directories, in this process's cgroup of each v1 hierarchy of
/// `pids` and `memory`, whose process is gone: what a run must never leave.
fn stale_cgroups() -> Vec<String> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut stale = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, names, path) = (parts.next(), parts.next(), parts.next());
        let (Some(names), Some(path)) = (names, path) else {
            continue;
        };
        for controller in ["pids", "memory"] {
            if !names.split(',').any(|n| n == controller) {
                continue;
            }
            let dir = format!("/sys/fs/cgroup/{controller}{}", path.trim_end_matches('/'));
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = name.strip_prefix("nstest-") else {
                    continue;
                };
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    stale.push(format!("{dir}/{name}"));
                }
            }
        }
    }
    stale
}

fn assert_nothing_left() {
    assert!(
        eventually(Duration::from_secs(5), || processes_with(NAP).is_empty()
            && stale_cgroups().is_empty()),
        "left behind: {:?} {:?}",
        processes_with(NAP),
        stale_cgroups()
    );
}

#[test]
#[serial]
fn each_limit_is_reached_and_named_and_the_neighbours_pass() {
    let started = Instant::now();
    let r = run(
        BIN,
        &["--test-threads", "3"],
        &[("NSTEST_PIDS", SMALL_DEFAULT.to_owned())],
    );
    let took = started.elapsed();
    assert_eq!(r.code, Some(101), "{}", r.dump());
    let outcomes = r.outcomes();
    let expected = [
        ("all_four_with_net_and_mount", "ok"),
        ("cpu_spin_fails_naming_the_limit", "FAILED"),
        ("cpu_counts_the_whole_tree", "FAILED"),
        ("cpu_under_the_limit_passes", "ok"),
        ("default_limit_stops_a_bomb", "FAILED"),
        ("default_limit_stops_a_thread_bomb", "FAILED"),
        ("disk_full_is_enospc_inside", "ok"),
        ("limits_under_a_pid_namespace_pass", "ok"),
        ("memory_hog_fails_naming_the_limit", "FAILED"),
        ("memory_limit_reaches_children", "ok"),
        ("memory_under_the_limit_passes", "ok"),
        ("neighbour_passes", "ok"),
        ("pids_bomb_fails_naming_the_limit", "FAILED"),
        ("pids_counts_threads", "ok"),
        ("pids_refuses_the_ninth_task_with_eagain", "ok"),
        ("pids_with_the_full_set_counts_the_test_alone", "ok"),
        ("times_out_with_limits", "FAILED"),
        ("waits_for_the_runner_to_be_killed", "ignored"),
    ];
    for (name, outcome) in expected {
        assert_eq!(
            outcomes.get(name).map(String::as_str),
            Some(outcome),
            "{name}\n{}",
            r.dump()
        );
    }
    assert_eq!(outcomes.len(), expected.len(), "{}", r.dump());

    let pids = |n: u32| {
        format!(
            "nstest: pids limit ({n}) reached: the kernel refused the test a new process or thread (EAGAIN)"
        )
    };
    assert_eq!(last_line(&r, "pids_bomb_fails_naming_the_limit"), pids(16));
    assert_eq!(last_line(&r, "default_limit_stops_a_bomb"), pids(200));
    assert_eq!(
        last_line(&r, "default_limit_stops_a_thread_bomb"),
        pids(200)
    );
    // The refused spawn is the test's own panic, shown as it is.
    assert!(
        r.failure("pids_bomb_fails_naming_the_limit")
            .contains("Resource temporarily unavailable"),
        "{}",
        r.dump()
    );
    let memory = last_line(&r, "memory_hog_fails_naming_the_limit");
    assert!(
        memory.starts_with("nstest: memory limit (64 MiB) reached: "),
        "{memory}"
    );
    // One process alone: the kernel's SIGXCPU, or the slot's count of the tree, whichever
    // comes first (the slot adds up every 100 ms).
    let spin = last_line(&r, "cpu_spin_fails_naming_the_limit");
    assert!(
        spin == "nstest: cpu time limit (1s) reached: the kernel ended the test process with SIGXCPU"
            || spin == TREE_CPU,
        "{spin}"
    );
    // Three processes, each with a third of it: only the tree's count reaches it.
    assert_eq!(last_line(&r, "cpu_counts_the_whole_tree"), TREE_CPU);
    assert_eq!(
        last_line(&r, "times_out_with_limits"),
        "nstest: timed out after 1s; the test and every process it started were killed"
    );
    // The bombs and hogs are stopped by their limits, not by a timeout: the whole run,
    // a 1 s timeout and a 1 s CPU spin included, takes seconds.
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert_nothing_left();
}

#[test]
#[serial]
fn the_default_limit_stops_a_bomb_in_a_test_without_options() {
    let started = Instant::now();
    let r = run(BIN, &["--exact", "default_limit_stops_a_thread_bomb"], &[]);
    assert_eq!(
        last_line(&r, "default_limit_stops_a_thread_bomb"),
        "nstest: pids limit (4096) reached: the kernel refused the test a new process or \
         thread (EAGAIN)",
        "{}",
        r.dump()
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_nothing_left();
}

#[test]
#[serial]
fn a_bad_nstest_pids_stops_the_run_naming_it() {
    for bad in ["0", "lots", "-1"] {
        let r = run(BIN, &[], &[("NSTEST_PIDS", bad.to_owned())]);
        assert_eq!(r.code, Some(101), "{}", r.dump());
        assert!(
            r.stderr.contains(&format!(
                "NSTEST_PIDS=\"{bad}\" is not a process limit: expected a number of tasks from 1 to"
            )),
            "{}",
            r.dump()
        );
    }
}

#[test]
#[serial]
fn every_output_format_names_the_limit() {
    let failing = [
        "pids_bomb_fails_naming_the_limit",
        "memory_hog_fails_naming_the_limit",
        "cpu_spin_fails_naming_the_limit",
    ];
    let names = [
        "pids limit (16) reached",
        "memory limit (64 MiB) reached",
        "cpu time limit (1s) reached",
    ];
    let unstable = [("RUSTC_BOOTSTRAP", "1".to_owned())];
    for format in ["pretty", "terse", "json", "junit"] {
        let mut args = vec!["-Z", "unstable-options", "--format", format, "--exact"];
        args.extend(failing);
        let r = run(BIN, &args, &unstable);
        assert_eq!(r.code, Some(101), "{format}: {}", r.dump());
        for name in names {
            assert!(
                r.stdout.contains(name),
                "{format}: no {name:?} in {}",
                r.dump()
            );
        }
    }
    assert_nothing_left();
}

#[test]
#[serial]
fn nothing_is_left_after_the_runner_is_killed() {
    let mut child = Command::new(BIN)
        .args(["--ignored", "--exact", "waits_for_the_runner_to_be_killed"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runner = Pid::from_raw(child.id() as i32);
    assert!(
        eventually(Duration::from_secs(30), || !processes_with(NAP).is_empty()),
        "the test never started its child"
    );
    kill(runner, Signal::SIGKILL).unwrap();
    let _ = child.wait();
    assert_nothing_left();
}

/// A run of one test, as nextest runs every test and as an editor's run button does, has
/// no fork server: the runner (and, for `memory`, its lone slot) makes the cgroups, and
/// removes them. Each limit still holds, is named, and nothing is left.
#[test]
#[serial]
fn each_limit_holds_in_a_run_of_one_test() {
    let runs = [
        (
            "pids_bomb_fails_naming_the_limit",
            101,
            "pids limit (16) reached",
        ),
        (
            "memory_hog_fails_naming_the_limit",
            101,
            "memory limit (64 MiB) reached",
        ),
        (
            "cpu_spin_fails_naming_the_limit",
            101,
            "cpu time limit (1s) reached",
        ),
        ("memory_limit_reaches_children", 0, "1 passed"),
        ("limits_under_a_pid_namespace_pass", 0, "1 passed"),
        (
            "pids_with_the_full_set_counts_the_test_alone",
            0,
            "1 passed",
        ),
    ];
    for (test, code, says) in runs {
        let r = run(BIN, &["--exact", test], &[]);
        assert_eq!(r.code, Some(code), "{test}: {}", r.dump());
        assert!(
            r.stdout.contains(says),
            "{test}: no {says:?} in {}",
            r.dump()
        );
    }
    assert_nothing_left();
}
