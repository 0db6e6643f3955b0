//! Tests that misbehave, run by `fixture_hostile`: each must fail (or pass) with the exact
//! one-line cause below, the rest of the run must be unaffected, no run may hang, and
//! nothing may be left running on the host. Also: timeouts, and the runner itself being
//! interrupted, terminated or killed mid-test.

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{eventually, processes_named, processes_with, run};

const BIN: &str = env!("CARGO_BIN_EXE_fixture_hostile");

fn marker(what: &str) -> String {
    format!("nstest-hostile-{what}-{}", std::process::id())
}

/// Live (not zombie) processes in process group `group`: the runner and everything it
/// started but `setsid` daemons, which the marker finds.
fn live_processes_in_group(group: Pid) -> Vec<String> {
    let group = group.to_string();
    processes_named("")
        .into_iter()
        .filter(|stat| {
            // After the name come the state, the parent and the process group.
            let fields: Vec<&str> = stat
                .rsplit_once(") ")
                .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
            fields.first() != Some(&"Z") && fields.get(2) == Some(&group.as_str())
        })
        .collect()
}

/// The run printed exactly these tests, each with its outcome (`ok`, `FAILED`, `ignored`).
fn assert_outcomes(r: &support::Run, expected: &[(&str, &str)]) {
    let outcomes = r.outcomes();
    for (name, outcome) in expected {
        assert_eq!(
            outcomes.get(*name).map(String::as_str),
            Some(*outcome),
            "{name}\n{}",
            r.dump()
        );
    }
    assert_eq!(outcomes.len(), expected.len(), "{}", r.dump());
}

/// The tests a run of the fixture runs, each with its outcome, but for the two whose
/// output is checked by content only.
const MISBEHAVIOURS: [(&str, &str); 13] = [
    ("passes", "ok"),
    ("passes_but_leaves_a_daemon", "ok"),
    ("passes_but_leaves_a_child_holding_its_output", "ok"),
    ("tries_to_kill_its_parent_with_pid", "ok"),
    ("sleeps_past_its_timeout", "FAILED"),
    ("sleeps_past_its_timeout_with_pid", "FAILED"),
    ("kills_itself_with_sigkill", "FAILED"),
    ("exits_zero_before_reporting", "FAILED"),
    ("panics_inside_the_panic_hook", "FAILED"),
    ("panics_while_panicking", "FAILED"),
    ("writes_garbage_into_every_inherited_fd", "FAILED"),
    ("closes_every_inherited_fd", "FAILED"),
    ("kills_its_parent", "FAILED"),
];

#[test]
fn every_misbehaviour_fails_with_its_cause_and_the_others_still_pass() {
    let marker = marker("all");
    let r = run(BIN, &[], &[("NSTEST_MARKER", marker.clone())]);
    assert_eq!(r.code, Some(101), "{}", r.dump());
    let mut expected = MISBEHAVIOURS.to_vec();
    expected.extend([
        ("panics_with_a_payload_that_is_not_a_string", "FAILED"),
        ("prints_a_gigabyte", "FAILED"),
        ("sleeps_until_the_default_timeout", "ignored"),
        ("runs_after_a_test_killed_its_parent", "ignored"),
        ("waits_for_the_runner_to_be_killed", "ignored"),
        ("waits_for_the_runner_to_be_killed_with_pid", "ignored"),
    ]);
    assert_outcomes(&r, &expected);

    let last_line = |name: &str| {
        r.failure(name)
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned()
    };
    let timed_out = "nstest: timed out after 1s; the test and every process it started were killed";
    assert_eq!(last_line("sleeps_past_its_timeout"), timed_out);
    assert_eq!(last_line("sleeps_past_its_timeout_with_pid"), timed_out);
    for name in [
        "sleeps_past_its_timeout",
        "sleeps_past_its_timeout_with_pid",
    ] {
        assert!(
            r.failure(name).starts_with("printed before the timeout\n"),
            "{name}"
        );
    }
    assert_eq!(
        last_line("kills_itself_with_sigkill"),
        "nstest: the test process was killed by SIGKILL (signal 9) before reporting a result"
    );
    let no_report = "nstest: the test process exited with status 0 without reporting a result";
    assert_eq!(last_line("exits_zero_before_reporting"), no_report);
    assert_eq!(last_line("closes_every_inherited_fd"), no_report);
    let aborted =
        "nstest: the test process was killed by SIGABRT (signal 6) before reporting a result";
    assert_eq!(last_line("panics_inside_the_panic_hook"), aborted);
    assert_eq!(last_line("panics_while_panicking"), aborted);
    assert!(
        r.failure("panics_with_a_payload_that_is_not_a_string")
            .contains("\nBox<dyn Any>\n")
    );
    assert_eq!(
        last_line("writes_garbage_into_every_inherited_fd"),
        "nstest: the test process sent an invalid result (report does not start with the \
         nstest magic); it exited with status 0"
    );
    assert_eq!(
        last_line("kills_its_parent"),
        "nstest: the test's supervisor process was killed before the test ended (did the test \
         kill its parent?); the test and every process it started were killed"
    );

    // A gigabyte of output: the head and the tail are kept, the middle is counted.
    let gigabyte = r.failure("prints_a_gigabyte");
    assert!(gigabyte.starts_with("first line\n"), "{}", &gigabyte[..100]);
    // The count includes the panic message, whose thread id varies in length.
    let dropped: u64 = gigabyte
        .split_once("\n[nstest: ")
        .and_then(|(_, rest)| {
            rest.split_once(" bytes of output dropped here; the first and last 512 KiB are kept]\n")
        })
        .and_then(|(count, _)| count.parse().ok())
        .unwrap_or_else(|| panic!("no dropped-bytes line in {}", &gigabyte[..200]));
    let kept = 2 * 512 * 1024;
    assert!(
        ((1 << 30) - kept..(1 << 30) - kept + 1024).contains(&dropped),
        "{dropped}"
    );
    assert!(gigabyte.contains("\nlast line\n"));
    assert!(gigabyte.contains("after a gigabyte"));
    // ... and the runner's memory stayed bounded (ru_maxrss is in KiB).
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    assert!(
        usage.max_rss() < 64 * 1024,
        "a fixture process peaked at {} KiB",
        usage.max_rss()
    );

    // Leftovers of passing tests are named, on stderr. How many processes there were
    // depends on timing (whether the daemon's shell had started `sleep` yet).
    let leak = r
        .stderr
        .split_once(
            "nstest: LEAK: these tests passed but left processes running, which nstest killed:\n",
        )
        .unwrap_or_else(|| panic!("no LEAK note: {}", r.dump()))
        .1;
    let named: Vec<&str> = leak
        .lines()
        .map(|l| l.trim().split(" (").next().unwrap())
        .collect();
    assert_eq!(
        named,
        [
            "passes_but_leaves_a_child_holding_its_output",
            "passes_but_leaves_a_daemon"
        ]
    );
    assert!(
        leak.lines()
            .all(|l| l.ends_with(" process)") || l.ends_with(" processes)"))
    );
    // Nothing survives the run.
    assert_eq!(processes_with(&marker), Vec::<String>::new());
}

/// A run of one test (`--exact NAME`, as nextest runs every test) forks the sandbox from
/// the runner itself, without a fork server or a pool (see `process::direct`): every
/// misbehaviour ends there with the same verdict and the same cause as in a run of all,
/// leftovers are killed and counted, and nothing survives.
#[test]
fn a_run_of_one_test_ends_each_misbehaviour_as_a_run_of_all_does() {
    let marker = marker("one");
    let envs = [("NSTEST_MARKER", marker.clone())];
    // The gigabyte is left to the run of all: it proves the pipe, not the process tree.
    let all = run(BIN, &["--skip", "prints_a_gigabyte"], &envs);
    let last_line = |r: &support::Run, name: &str| {
        r.failure(name)
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned()
    };
    let leaked = |r: &support::Run, name: &str| {
        r.stderr
            .lines()
            .any(|l| l.trim().starts_with(&format!("{name} (")))
    };
    for (name, verdict) in MISBEHAVIOURS {
        let one = run(BIN, &["--exact", name], &envs);
        assert_outcomes(&one, &[(name, verdict)]);
        assert_eq!(
            one.code,
            Some(if verdict == "ok" { 0 } else { 101 }),
            "{name}"
        );
        if verdict == "FAILED" {
            assert_eq!(last_line(&one, name), last_line(&all, name), "{name}");
        }
        assert_eq!(
            leaked(&one, name),
            leaked(&all, name),
            "{name}: {}",
            one.dump()
        );
        assert_eq!(
            processes_with(&marker),
            Vec::<String>::new(),
            "after {name}"
        );
    }
}

/// A test without a supervisor runs in its runner thread's slot; one that kills the slot
/// fails, and the next test on that thread gets a new slot, which starts only once
/// everything the killer left is gone.
#[test]
fn a_test_that_kills_its_slot_does_not_disturb_the_next() {
    let marker = marker("slot");
    let r = run(
        BIN,
        &["--include-ignored", "--test-threads=1", "parent"],
        &[("NSTEST_MARKER", marker.clone())],
    );
    assert_outcomes(
        &r,
        &[
            ("kills_its_parent", "FAILED"),
            ("runs_after_a_test_killed_its_parent", "ok"),
            ("tries_to_kill_its_parent_with_pid", "ok"),
        ],
    );
    assert_eq!(processes_with(&marker), Vec::<String>::new());
}

#[test]
fn nstest_timeout_is_the_default_and_a_bad_value_is_refused() {
    let envs = [("NSTEST_TIMEOUT", "2s".to_owned())];
    let r = run(
        BIN,
        &["--ignored", "--exact", "sleeps_until_the_default_timeout"],
        &envs,
    );
    assert_eq!(
        r.failure("sleeps_until_the_default_timeout"),
        "nstest: timed out after 2s; the test and every process it started were killed"
    );
    // A test's own timeout wins over the default.
    let r = run(BIN, &["--exact", "sleeps_past_its_timeout_with_pid"], &envs);
    assert!(
        r.failure("sleeps_past_its_timeout_with_pid")
            .ends_with("timed out after 1s; the test and every process it started were killed")
    );

    let r = run(
        BIN,
        &["--exact", "passes"],
        &[("NSTEST_TIMEOUT", "soon".to_owned())],
    );
    assert_eq!(r.code, Some(101), "{}", r.dump());
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.starts_with(
            "nstest: NSTEST_TIMEOUT=\"soon\" is not a timeout: unit `s` without a number"
        ),
        "{}",
        r.dump()
    );
}

/// Starts a test that leaves processes running, signals the runner once they exist, and
/// checks that all of them are gone soon after the runner ends.
fn runner_interrupted(test: &str, signal: Signal, whole_group: bool) {
    let marker = marker(&format!("{signal}-{test}"));
    let mut child = Command::new(BIN)
        .args(["--ignored", "--exact", test])
        .env("NSTEST_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let runner = Pid::from_raw(child.id() as i32);
    assert!(
        eventually(Duration::from_secs(30), || !processes_with(&marker)
            .is_empty()),
        "the test never started its processes"
    );
    std::thread::sleep(Duration::from_millis(100));
    // Ctrl-C in a terminal signals the whole foreground process group.
    let target = if whole_group {
        Pid::from_raw(-runner.as_raw())
    } else {
        runner
    };
    kill(target, signal).unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the runner did not end after {signal}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(!status.success());
    assert!(
        eventually(Duration::from_secs(5), || processes_with(&marker)
            .is_empty()
            && live_processes_in_group(runner).is_empty()),
        "left running after {signal} to the runner: {:?} {:?}",
        processes_with(&marker),
        live_processes_in_group(runner)
    );
}

#[test]
fn ctrl_c_to_the_process_group_leaves_nothing_behind() {
    runner_interrupted("waits_for_the_runner_to_be_killed", Signal::SIGINT, true);
    runner_interrupted(
        "waits_for_the_runner_to_be_killed_with_pid",
        Signal::SIGINT,
        true,
    );
}

#[test]
fn sigterm_to_the_runner_leaves_nothing_behind() {
    runner_interrupted("waits_for_the_runner_to_be_killed", Signal::SIGTERM, false);
    runner_interrupted(
        "waits_for_the_runner_to_be_killed_with_pid",
        Signal::SIGTERM,
        false,
    );
}

#[test]
fn sigkill_to_the_runner_leaves_nothing_behind() {
    runner_interrupted("waits_for_the_runner_to_be_killed", Signal::SIGKILL, false);
    runner_interrupted(
        "waits_for_the_runner_to_be_killed_with_pid",
        Signal::SIGKILL,
        false,
    );
}
