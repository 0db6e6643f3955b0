//! A test's own wall clock (`wall = "..."`, `nstest::wall`): what each test of
//! `fixtures/wall.rs` read, checked against the true clock, which this process (outside
//! every sandbox) reads; and that the runner's own timings stay on the true clock.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::run;

const DAY: f64 = 86_400.0;
/// 2038-01-19T03:14:00Z.
const Y2038: f64 = 2_147_483_640.0;

fn true_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The fixture run once with its output shown, between two readings of the true clock.
struct Observed {
    run: support::Run,
    before: f64,
    after: f64,
    /// `label -> seconds` from the fixture's `WALL <label> <seconds>` lines.
    walls: BTreeMap<String, f64>,
}

fn observe(args: &[&str]) -> Observed {
    let before = true_now();
    let mut all = vec!["--nocapture", "--test-threads", "2"];
    all.extend_from_slice(args);
    let run = run(env!("CARGO_BIN_EXE_fixture_wall"), &all, &[]);
    let after = true_now();
    let walls = run
        .stdout
        .split("WALL ")
        .skip(1)
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            let label = words.next()?.to_owned();
            let secs = words.next()?.parse().ok()?;
            Some((label, secs))
        })
        .collect();
    Observed {
        run,
        before,
        after,
        walls,
    }
}

impl Observed {
    /// Asserts that `label` read the true clock plus `offset`, as it was during the run
    /// (one second of slack each way for whole-second readers).
    fn read_offset(&self, label: &str, offset: f64) {
        let seen = self
            .walls
            .get(label)
            .copied()
            .unwrap_or_else(|| panic!("no WALL line for {label}:\n{}", self.run.dump()));
        let (low, high) = (self.before + offset - 1.0, self.after + offset + 1.0);
        assert!(
            (low..=high).contains(&seen),
            "{label} read {seen}, expected the true clock {offset:+} s: {low}..={high}\n{}",
            self.run.dump()
        );
    }
}

#[test]
fn each_test_reads_its_own_wall_clock_and_the_runner_the_true_one() {
    let o = observe(&[]);
    assert_eq!(o.run.code, Some(101), "{}", o.run.dump());
    let outcomes = o.run.outcomes();
    for (name, outcome) in &outcomes {
        let expected = if name == "fails_with_its_clock_in_2038" {
            "FAILED"
        } else {
            "ok"
        };
        assert_eq!(outcome, expected, "{name}\n{}", o.run.dump());
    }
    assert_eq!(outcomes.len(), 16, "{}", o.run.dump());

    o.read_offset("a_day_ahead", DAY);
    o.read_offset("a_month_behind", -30.0 * DAY);
    o.read_offset("starts_at_2038", Y2038 - o.before);
    o.read_offset("untouched_without_the_option", 0.0);
    o.read_offset("untouched_date", 0.0);
    o.read_offset("date_started_by_the_test", DAY);
    o.read_offset("date_after_advance", 2.0 * DAY);
    // Fifty jumps of a minute, in a test without `wall` whose threads read the environment.
    o.read_offset("threads_then_date", 3000.0);
    // `time` moves CLOCK_MONOTONIC and CLOCK_BOOTTIME, `wall` the wall clock: each its own.
    o.read_offset("combines_with_a_time_namespace", DAY);

    // The runner's summary times the run by the true clock.
    assert!(
        o.run
            .summary()
            .starts_with("test result: FAILED. 15 passed; 1 failed;"),
        "{}",
        o.run.dump()
    );
    let finished: f64 = o
        .run
        .summary()
        .rsplit_once("finished in ")
        .and_then(|(_, secs)| secs.trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("{}", o.run.dump()));
    assert!(
        finished <= o.after - o.before + 0.5,
        "the summary says {finished} s for a run of {} s",
        o.after - o.before
    );
}

#[test]
fn a_failing_test_is_reported_as_any_other() {
    let r = run(
        env!("CARGO_BIN_EXE_fixture_wall"),
        &["fails_with_its_clock_in_2038", "--exact"],
        &[],
    );
    assert_eq!(r.code, Some(101), "{}", r.dump());
    let failure = r.failure("fails_with_its_clock_in_2038");
    assert!(
        failure.starts_with("\nthread 'fails_with_its_clock_in_2038' (2) panicked at")
            || failure.starts_with("thread 'fails_with_its_clock_in_2038' (2) panicked at"),
        "{}",
        r.dump()
    );
    assert!(
        failure.contains("the certificate expired in 2038"),
        "{}",
        r.dump()
    );
    assert!(
        r.summary()
            .starts_with("test result: FAILED. 0 passed; 1 failed;"),
        "{}",
        r.dump()
    );
}

#[test]
fn report_time_measures_by_the_true_clock() {
    let before = true_now();
    let r = run(
        env!("CARGO_BIN_EXE_fixture_wall"),
        &[
            "-Z",
            "unstable-options",
            "--report-time",
            "--test-threads",
            "1",
        ],
        &[("RUSTC_BOOTSTRAP", "1".to_owned())],
    );
    let took = true_now() - before;
    let times: Vec<f64> = r
        .stdout
        .lines()
        .filter(|line| line.starts_with("test "))
        .filter_map(|line| line.rsplit_once(" <")?.1.strip_suffix("s>")?.parse().ok())
        .collect();
    // Every test was timed, the one that jumped a week ahead and set its clock to 2001 too,
    // and no time is longer than the whole run.
    assert_eq!(times.len(), 16, "{}", r.dump());
    for time in times {
        assert!(
            (0.0..=took).contains(&time),
            "{time} s in a run of {took} s\n{}",
            r.dump()
        );
    }
}

#[test]
fn moving_the_clock_outside_a_test_panics_saying_so() {
    for (function, call) in [
        (
            "advance",
            Box::new(|| nstest::wall::advance(Duration::from_secs(1))) as Box<dyn Fn()>,
        ),
        ("set", Box::new(|| nstest::wall::set(UNIX_EPOCH))),
    ] {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
            .expect_err("moving the clock outside a test must panic");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            message.starts_with(&format!(
                "nstest::wall::{function} was called outside a test"
            )),
            "{message}"
        );
    }
    // And this process's clock did not move: it agrees with date(1)'s.
    let date = std::process::Command::new("date")
        .arg("+%s")
        .output()
        .unwrap();
    let date: f64 = String::from_utf8(date.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let now = true_now();
    assert!((now - date).abs() < 2.0, "SystemTime {now}, date {date}");
}
