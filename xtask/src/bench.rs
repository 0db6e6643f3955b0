//! `cargo xtask bench`: per-test isolation cost, side by side, in one run on one machine.
//!
//! Builds `xtask/bench-fixture` (release) and measures, in rounds (`NSTEST_BENCH_REPS`,
//! default 3) that each run every row once, interleaved, and as medians over the rounds:
//! the floor (raw system calls, no harness), nstest per mode and thread count, the anchors
//! (libtest in-process, nextest, rusty-fork), flatness (a runner holding 1 GiB), port
//! contention (serial_test against nstest), the runner's peak memory for 10,000 tests, and
//! `nstest::Network` (building 10 hosts, a TCP round trip between hosts against loopback and
//! with the packet capture on, the cost of a chaos event).
//! Prints a table with ratios, and for each target (issue 23) the ratio of every round,
//! whether the median met it and how many rounds did; writes it all to
//! `target/bench/bench.md`.
//! `NSTEST_BENCH_ONLY=network` measures only the network rows, `=limits` only the rows of
//! per-test limits, `=wall` only the wall clock's (reading the clocks with and without
//! nstest linked and `wall` set, and the per-test cost of `wall`).
//! `NSTEST_BENCH_USER=nstest-ci` (as root) runs every measured binary as that
//! unprivileged user.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Trivial tests per mode, as `bench-fixture/build.rs` generates them.
const N: f64 = 1000.0;
/// The nstest modes: each is a `mode_<name>` target of N tests in a module `<name>`.
const MODES: [&str; 4] = ["user", "net", "full", "full_time"];

/// Runs the benchmark.
pub fn bench(workspace: &Path) -> Result<(), String> {
    let reps: usize = std::env::var("NSTEST_BENCH_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let fixture = workspace.join("xtask/bench-fixture");
    let target = workspace.join("target/bench");
    println!("building the benchmark fixture (release)...");
    let exes = build(&fixture, &target)?;
    let exe = |name: &str| -> Result<&PathBuf, String> {
        exes.get(name)
            .ok_or_else(|| format!("the fixture has no test target {name}"))
    };
    let floor = target.join("release/floor");
    let threads = [1usize, cores()];
    let t = cores();
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut note = |name: String, value: String| {
        println!("  {name:<48} {value}");
        rows.push((name, value));
    };
    if std::env::var("NSTEST_BENCH_ONLY").is_ok_and(|only| only == "network") {
        println!("measuring the network rows only, {reps} runs each...");
        let ratios = network_rows(exe("network")?, reps, &mut note)?;
        return report(&target, &rows, &ratios, &[], reps);
    }
    if std::env::var("NSTEST_BENCH_ONLY").is_ok_and(|only| only == "limits") {
        println!("measuring the limits rows only, {reps} runs each...");
        let ratios = limits_rows(&exe, &threads, reps, &mut note)?;
        return report(&target, &rows, &ratios, &[], reps);
    }
    // The rows of issue 23's targets alone: the floors, nstest's runner, libtest's
    // harness and nextest, in the same rounds.
    let only_floor = std::env::var("NSTEST_BENCH_ONLY").is_ok_and(|only| only == "floor");
    if only_floor {
        println!("measuring the rows against the floor only, {reps} rounds...");
    }
    if std::env::var("NSTEST_BENCH_ONLY").is_ok_and(|only| only == "wall") {
        println!("measuring the wall clock rows only, {reps} runs each...");
        let ratios = wall_rows(&exe, reps, &mut note)?;
        return report(&target, &rows, &ratios, &[], reps);
    }

    // Every row is measured once per round, and the rounds repeat: the rows a ratio
    // compares run minutes apart at most, not a whole bench apart, so that what the host
    // does meanwhile (the other tenants of a shared VM) falls on both sides alike. Each
    // ratio is then taken per round, and its median and the rounds that met its target
    // are reported.
    let manifest = fixture.join("Cargo.toml");
    let nextest_per_test = |test_target: &str| -> Result<f64, String> {
        let nextest = |extra: &[&str]| {
            let mut c = Command::new(cargo());
            c.args(["nextest", "run", "--release", "--manifest-path"])
                .arg(&manifest)
                .args(["--test", test_target, "--no-tests=pass"])
                .args(extra)
                .env("CARGO_TARGET_DIR", &target);
            if let Some(user) = bench_user() {
                // nextest runs each test binary through cargo's target runner.
                c.env(
                    "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER",
                    setpriv_args(&user).join(" "),
                );
            }
            wall_ms(&mut c)
        };
        let empty = nextest(&["-E", "none()"])?;
        Ok((nextest(&[])? - empty) / N)
    };
    let floor_run = |mode: &str, workers: usize| -> Result<f64, String> {
        let out = run_capture(as_user(&floor).args([mode, "1000", &workers.to_string()]))?;
        out.trim()
            .parse::<f64>()
            .map_err(|e| format!("floor printed {out:?}: {e}"))
    };
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for round in 1..=reps {
        println!("round {round} of {reps} (N = {N} trivial tests per row)...");
        let mut keep = |key: String, value: f64| {
            // Raw, as measured: a bench cut short still tells what it saw.
            println!("    {key}: {value:.3}");
            samples.entry(key).or_default().push(value);
        };
        for mode in MODES {
            for &t in &threads {
                keep(format!("floor {mode} {t}"), floor_run(mode, t)?);
                let binary = exe(&format!("mode_{mode}"))?;
                keep(
                    format!("nstest {mode} {t}"),
                    wall_ms(as_user(binary).args(test_args(t)))?,
                );
            }
        }
        // The kernel's cost of the read-only view (issue 12): the full set's floor without it.
        keep(
            "floor full_without_view 1".into(),
            floor_run("full_without_view", 1)?,
        );
        for &t in &threads {
            keep(
                format!("plain {t}"),
                wall_ms(as_user(exe("plain")?).args(test_args(t)))?,
            );
            // The same net tests under libtest's harness: unit tests in `mod tests`.
            keep(
                format!("libtest_net {t}"),
                wall_ms(as_user(exe("libtest_net")?).args(test_args(t)))?,
            );
        }
        // Under nextest every test is a process of its own (`--exact NAME`), so this is the
        // per-test cost a nextest user sees; the floor there is a plain `#[test]` that builds
        // the `net` sandbox by hand.
        for test_target in ["plain", "nextest_floor", "mode_net"] {
            keep(
                format!("nextest {test_target}"),
                nextest_per_test(test_target)?,
            );
        }
        if only_floor {
            continue;
        }
        keep(
            "forked".into(),
            wall_ms(as_user(exe("forked")?).args(test_args(t)))?,
        );
        // Flatness compares like with like: each side minus the same binary's run of no
        // test, so that touching (and, at exit, unmapping) the 1 GiB is not counted per test.
        keep(
            "flat".into(),
            per_test_vs_empty(exe("mode_full")?, "full::")?,
        );
        keep(
            "loaded".into(),
            per_test_vs_empty(exe("ballast")?, "full::")?,
        );
        keep(
            "serial".into(),
            wall_ms(&mut as_user(exe("ports_serial")?))?,
        );
        keep("ports".into(), wall_ms(&mut as_user(exe("ports_nstest")?))?);
    }
    let rounds = |key: &str| samples.get(key).cloned().unwrap_or_default();
    // Per-test overhead of a binary's run, per round: minus libtest's in-process run.
    let per_test = |key: &str, t: usize| -> Vec<f64> {
        rounds(key)
            .iter()
            .zip(rounds(&format!("plain {t}")))
            .map(|(wall, plain)| (wall - plain) / N)
            .collect()
    };
    // NaN for a row this run did not measure (`NSTEST_BENCH_ONLY=floor`); left out below.
    let med = |values: Vec<f64>| match values.is_empty() {
        true => f64::NAN,
        false => median_of(&mut values.clone()),
    };
    for mode in MODES {
        for &t in &threads {
            note(
                format!("floor, {mode}, {t} worker(s): ms per sandbox"),
                fmt(med(rounds(&format!("floor {mode} {t}")))),
            );
        }
    }
    note(
        "floor, full set without the read-only view, 1 worker: ms per sandbox".into(),
        fmt(med(rounds("floor full_without_view 1"))),
    );
    for &t in &threads {
        note(
            format!("libtest in-process, {t} thread(s): ms per test"),
            fmt(med(rounds(&format!("plain {t}"))) / N),
        );
    }
    for mode in MODES {
        for &t in &threads {
            note(
                format!("nstest, {mode}, {t} thread(s): ms per test"),
                fmt(med(per_test(&format!("nstest {mode} {t}"), t))),
            );
        }
    }
    for &t in &threads {
        note(
            format!("nstest, net, under libtest's harness, {t} thread(s): ms per test"),
            fmt(med(per_test(&format!("libtest_net {t}"), t))),
        );
    }
    note(
        format!("nextest, plain #[test], process per test, {t} threads: ms per test"),
        fmt(med(rounds("nextest plain"))),
    );
    note(
        format!(
            "nextest, floor(net) in a plain #[test], process per test, {t} threads: ms per test"
        ),
        fmt(med(rounds("nextest nextest_floor"))),
    );
    note(
        format!("nextest, nstest(net), process per test, {t} threads: ms per test"),
        fmt(med(rounds("nextest mode_net"))),
    );
    note(
        format!("rusty-fork, {t} threads: ms per test"),
        fmt(med(per_test("forked", t))),
    );
    note(
        "nstest, full, 1 thread, runner flat: ms per test (vs empty run)".into(),
        fmt(med(rounds("flat"))),
    );
    note(
        "nstest, full, 1 thread, runner holding 1 GiB: ms per test (vs empty run)".into(),
        fmt(med(rounds("loaded"))),
    );
    note(
        "16 tests holding :8080, serial_test: ms".into(),
        fmt(med(rounds("serial"))),
    );
    note(
        "16 tests holding :8080, nstest(net): ms".into(),
        fmt(med(rounds("ports"))),
    );
    let (mut network_ratios, mut limits_ratios, mut wall_ratios) = (vec![], vec![], vec![]);
    if !only_floor {
        let rss_kib = peak_rss_kib(exe("scale")?, &test_args(t))?;
        note(
            "runner peak memory, 10,000 tests: MiB".into(),
            fmt(rss_kib as f64 / 1024.0),
        );
        network_ratios = network_rows(exe("network")?, reps, &mut note)?;
        limits_ratios = limits_rows(&exe, &threads, reps, &mut note)?;
        wall_ratios = wall_rows(&exe, reps, &mut note)?;
    }

    // Each ratio per round: `a[i] / b[i]`.
    let per_round =
        |a: Vec<f64>, b: Vec<f64>| -> Vec<f64> { a.iter().zip(b).map(|(a, b)| a / b).collect() };
    let vs_floor = |mode: &str, t: usize| {
        per_round(
            per_test(&format!("nstest {mode} {t}"), t),
            rounds(&format!("floor {mode} {t}")),
        )
    };
    let targets: Vec<Target> = vec![
        Target::at_most(
            "under nextest: nstest(net) / floor(net) in a plain #[test], per test",
            1.1,
            per_round(rounds("nextest mode_net"), rounds("nextest nextest_floor")),
        ),
        Target::at_most("nstest / floor, net, 1 thread", 1.15, vs_floor("net", 1)),
        Target::at_most("nstest / floor, net, N threads", 1.15, vs_floor("net", t)),
        Target::at_most(
            "nstest / floor, full set + time, 1 thread",
            1.15,
            vs_floor("full_time", 1),
        ),
        Target::at_most(
            "nstest / floor, full set + time, N threads",
            1.15,
            vs_floor("full_time", t),
        ),
        Target::at_most(
            "libtest's harness / nstest::main!(), net, 1 thread",
            1.5,
            per_round(per_test("libtest_net 1", 1), per_test("nstest net 1", 1)),
        ),
        Target::at_most(
            "libtest's harness / nstest::main!(), net, N threads",
            1.5,
            per_round(
                per_test(&format!("libtest_net {t}"), t),
                per_test(&format!("nstest net {t}"), t),
            ),
        ),
        Target::at_most(
            "loaded / flat, full set",
            1.2,
            per_round(rounds("loaded"), rounds("flat")),
        ),
    ];
    let ratio = |values: Vec<f64>| med(values);
    let mut ratios = vec![
        (
            "nstest / floor, full set, 1 thread",
            ratio(vs_floor("full", 1)),
        ),
        (
            "nstest / floor, full set, N threads",
            ratio(vs_floor("full", t)),
        ),
        (
            "floor with / without the read-only view, full set, 1 worker (the kernel's cost)",
            ratio(per_round(
                rounds("floor full 1"),
                rounds("floor full_without_view 1"),
            )),
        ),
        (
            "under nextest: nstest(net) / plain #[test], per test",
            ratio(per_round(
                rounds("nextest mode_net"),
                rounds("nextest plain"),
            )),
        ),
        (
            "under nextest: floor(net) / plain #[test], per test (the least possible)",
            ratio(per_round(
                rounds("nextest nextest_floor"),
                rounds("nextest plain"),
            )),
        ),
        (
            "nstest(net) / nextest (target < 1)",
            ratio(per_round(
                per_test(&format!("nstest net {t}"), t),
                rounds("nextest plain"),
            )),
        ),
        (
            "nstest(net) / rusty-fork (target < 1)",
            ratio(per_round(
                per_test(&format!("nstest net {t}"), t),
                per_test("forked", t),
            )),
        ),
        (
            "floor(net) / rusty-fork, both on N workers",
            ratio(per_round(
                rounds(&format!("floor net {t}")),
                per_test("forked", t),
            )),
        ),
        (
            "serial_test / nstest, port contention",
            ratio(per_round(rounds("serial"), rounds("ports"))),
        ),
        (
            "nstest scaling 1 -> N threads, full set",
            ratio(per_round(
                per_test("nstest full 1", 1),
                per_test(&format!("nstest full {t}"), t),
            )),
        ),
        (
            "floor scaling 1 -> N workers, full set",
            ratio(per_round(
                rounds("floor full 1"),
                rounds(&format!("floor full {t}")),
            )),
        ),
    ];
    ratios.extend(network_ratios);
    ratios.extend(limits_ratios);
    ratios.extend(wall_ratios);
    ratios.retain(|(_, value)| value.is_finite());
    rows.retain(|(_, value)| value != "NaN");
    let targets: Vec<Target> = targets
        .into_iter()
        .filter(|t| !t.rounds.is_empty())
        .collect();
    report(&target, &rows, &ratios, &targets, reps)
}

/// A ratio with a limit, taken in every round.
struct Target {
    name: &'static str,
    limit: f64,
    /// The ratio of each round.
    rounds: Vec<f64>,
}

impl Target {
    fn at_most(name: &'static str, limit: f64, rounds: Vec<f64>) -> Target {
        Target {
            name,
            limit,
            rounds,
        }
    }

    /// How many rounds met the limit.
    fn met(&self) -> usize {
        self.rounds.iter().filter(|r| **r <= self.limit).count()
    }

    fn median(&self) -> f64 {
        median_of(&mut self.rounds.clone())
    }

    /// `name: median 1.07 (rounds 1.05 1.07 1.12), target <= 1.10: met, 2 of 3 rounds`.
    fn line(&self) -> String {
        let each: Vec<String> = self.rounds.iter().map(|r| format!("{r:.2}")).collect();
        let median = self.median();
        format!(
            "{}: median {median:.2} (rounds {}), target <= {:.2}: {}, {} of {} rounds",
            self.name,
            each.join(" "),
            self.limit,
            if median <= self.limit {
                "met"
            } else {
                "NOT met"
            },
            self.met(),
            self.rounds.len()
        )
    }
}

/// A test with all four limits (`pids`, `memory`, `disk`, `cpu`) against the same test
/// without them, both the full set, measured interleaved so that a busy moment of the
/// machine falls on both. Returns the ratio rows.
fn limits_rows<'a>(
    exe: &dyn Fn(&str) -> Result<&'a PathBuf, String>,
    threads: &[usize],
    reps: usize,
    note: &mut dyn FnMut(String, String),
) -> Result<Vec<(&'static str, f64)>, String> {
    let (without, with) = (exe("mode_full")?, exe("mode_full_limits")?);
    let mut ratios = Vec::new();
    for &t in threads {
        let (mut plain, mut bare, mut limited) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            plain.push(wall_ms(as_user(exe("plain")?).args(test_args(t)))?);
            bare.push(wall_ms(as_user(without).args(test_args(t)))?);
            limited.push(wall_ms(as_user(with).args(test_args(t)))?);
        }
        let baseline = median_of(&mut plain);
        let bare = (median_of(&mut bare) - baseline) / N;
        let limited = (median_of(&mut limited) - baseline) / N;
        note(
            format!("nstest, full, {t} thread(s), no limits: ms per test"),
            fmt(bare),
        );
        note(
            format!("nstest, full, {t} thread(s), all four limits: ms per test"),
            fmt(limited),
        );
        ratios.push((
            if t == 1 {
                "all four limits / none, full set, 1 thread (target <= 1.05)"
            } else {
                "all four limits / none, full set, N threads (target <= 1.05)"
            },
            limited / bare,
        ));
    }
    Ok(ratios)
}

/// The rows of the wall clock (`wall = "..."`), whose interposed clock functions are in
/// every binary that links nstest:
///
/// - ns per `SystemTime::now()` and `Instant::now()` in a binary without nstest, and in
///   nstest tests without and with `wall` (the best batch of each run; the median run);
/// - ms per test of the full set with `wall`, against the full set without, each against
///   a run of no test, one thread (the median run).
///
/// Returns the ratio rows: what tests without `wall` pay for its existence, and what
/// `wall` costs a test that asks for it.
fn wall_rows<'a>(
    exe: &impl Fn(&str) -> Result<&'a PathBuf, String>,
    reps: usize,
    note: &mut impl FnMut(String, String),
) -> Result<Vec<(&'static str, f64)>, String> {
    let sides = [
        ("clock_plain", "plain", "a plain #[test], nstest not linked"),
        (
            "clock_nstest",
            "without_wall",
            "an nstest test without `wall`",
        ),
        (
            "clock_nstest",
            "with_wall",
            "an nstest test with `wall = \"+1d\"`",
        ),
    ];
    // The sides take turns within each repetition, so that a change in the machine's load
    // (other jobs on a shared host) falls on all of them alike.
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let (mut full, mut with_wall) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        for (target, test, _) in sides {
            for (name, value) in measurements(exe(target)?, test)? {
                samples.entry(name).or_default().push(value);
            }
        }
        full.push(per_test_vs_empty(exe("mode_full")?, "full::")?);
        with_wall.push(per_test_vs_empty(exe("mode_full_wall")?, "full_wall::")?);
    }
    let mut ns = BTreeMap::new();
    for (_, test, label) in sides {
        for (clock, call) in [
            ("system_time", "SystemTime::now()"),
            ("instant", "Instant::now()"),
        ] {
            let name = format!("{test}_{clock}_ns");
            let value = samples
                .get_mut(&name)
                .map(|values| median_of(values))
                .ok_or_else(|| format!("no {name} measured"))?;
            ns.insert((test, clock), value);
            note(format!("{call} in {label}: ns"), fmt(value));
        }
    }
    let (full_ms, wall_ms) = (median_of(&mut full), median_of(&mut with_wall));
    note(
        "nstest, full, 1 thread: ms per test (vs empty run)".into(),
        fmt(full_ms),
    );
    note(
        "nstest, full + wall, 1 thread: ms per test (vs empty run)".into(),
        fmt(wall_ms),
    );
    Ok(vec![
        (
            "SystemTime::now(), nstest test without wall / no nstest (target ~1)",
            ns[&("without_wall", "system_time")] / ns[&("plain", "system_time")],
        ),
        (
            "Instant::now(), nstest test without wall / no nstest (target ~1)",
            ns[&("without_wall", "instant")] / ns[&("plain", "instant")],
        ),
        (
            "SystemTime::now(), with wall / without",
            ns[&("with_wall", "system_time")] / ns[&("without_wall", "system_time")],
        ),
        ("full set + wall / full set, per test", wall_ms / full_ms),
    ])
}

/// Prints the ratios, then writes the rows and the ratios to `target/bench/bench.md`.
fn report(
    target: &Path,
    rows: &[(String, String)],
    ratios: &[(&str, f64)],
    targets: &[Target],
    reps: usize,
) -> Result<(), String> {
    println!("\nratios:");
    for (name, value) in ratios {
        println!("  {name:<52} {value:.2}");
    }
    if !targets.is_empty() {
        println!("\ntargets (each ratio taken per round; met = the median is within):");
        for t in targets {
            println!("  {}", t.line());
        }
    }
    println!(
        "\nruns repeated because the hypervisor stole CPU time: {}",
        REPEATED.load(std::sync::atomic::Ordering::Relaxed)
    );
    let report = markdown(rows, ratios, targets, reps);
    std::fs::create_dir_all(target).map_err(|e| e.to_string())?;
    let path = target.join("bench.md");
    std::fs::write(&path, report).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("\nwritten to {}", path.display());
    Ok(())
}

/// The rows of `nstest::Network`, from the `network` test target, whose tests time
/// themselves and print `nstest-bench <name> <value>` lines; each test is a run of its own,
/// on a quiet machine, on one thread. Returns the ratio rows.
///
/// - Building a network of 10 hosts: every build of every run is one sample (each run
///   builds several, keeping them all, so no build overlaps the teardown of another).
/// - A TCP round trip of one byte between two hosts, and on loopback within one host: the
///   median of each run's median; the same between hosts with the network captured.
/// - A chaos event (heal the last fault, draw and apply the next) on a schedule with a 1 ms
///   period: every run's time per event is one sample.
fn network_rows(
    exe: &Path,
    reps: usize,
    note: &mut impl FnMut(String, String),
) -> Result<Vec<(&'static str, f64)>, String> {
    let run = |test: &str| measurements(exe, test);
    let named = |values: &[(String, f64)], name: &str| -> Result<Vec<f64>, String> {
        let found: Vec<f64> = values
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .collect();
        if found.is_empty() {
            return Err(format!("no {name} in {values:?}"));
        }
        Ok(found)
    };
    let mut builds = Vec::new();
    for _ in 0..reps.max(1) {
        builds.extend(named(&run("build_10_hosts")?, "build_10_hosts_ms")?);
    }
    let build_ms = median_of(&mut builds);
    let (mut between, mut loopback) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let values = run("tcp_round_trip")?;
        between.push(median_of(&mut named(&values, "tcp_rtt_hosts_us")?));
        loopback.push(median_of(&mut named(&values, "tcp_rtt_loopback_us")?));
    }
    let (between_us, loopback_us) = (median_of(&mut between), median_of(&mut loopback));
    let (mut captured, mut per_event) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let values = run("tcp_round_trip_captured")?;
        captured.push(median_of(&mut named(&values, "tcp_rtt_captured_us")?));
        per_event.extend(named(&run("chaos_scheduler")?, "chaos_event_us")?);
    }
    let (captured_us, event_us) = (median_of(&mut captured), median_of(&mut per_event));
    note(
        format!(
            "Network: build 10 hosts, median of {} builds: ms",
            builds.len()
        ),
        fmt(build_ms),
    );
    note(
        "Network: TCP round trip between two hosts: us".into(),
        fmt(between_us),
    );
    note(
        "Network: TCP round trip, loopback in one host: us".into(),
        fmt(loopback_us),
    );
    note(
        "Network: TCP round trip between hosts, captured: us".into(),
        fmt(captured_us),
    );
    note(
        "Network: chaos event (heal + apply), 1 ms period: us".into(),
        fmt(event_us),
    );
    Ok(vec![
        ("Network of 10 hosts built: ms (target < 20)", build_ms),
        (
            "TCP round trip, between hosts / loopback in one host",
            between_us / loopback_us,
        ),
        (
            "TCP round trip between hosts, capture on / off",
            captured_us / between_us,
        ),
    ])
}

/// The `nstest-bench <name> <value>` lines of a run's output.
/// Runs the one test `test` of `exe` on one thread, with its output shown, and returns the
/// `nstest-bench` lines it printed (at least one).
fn measurements(exe: &Path, test: &str) -> Result<Vec<(String, f64)>, String> {
    let out =
        run_capture(as_user(exe).args([test, "--exact", "--nocapture", "--test-threads", "1"]))?;
    let values = bench_lines(&out)?;
    if values.is_empty() {
        return Err(format!("{test} printed no measurement:\n{out}"));
    }
    Ok(values)
}

fn bench_lines(out: &str) -> Result<Vec<(String, f64)>, String> {
    let mut values = Vec::new();
    for line in out.lines() {
        // libtest prints `test NAME ... ` before the test's own first line.
        let Some((_, rest)) = line.split_once("nstest-bench ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        match (words.next(), words.next().map(str::parse::<f64>)) {
            (Some(name), Some(Ok(value))) => values.push((name.to_owned(), value)),
            _ => return Err(format!("unreadable measurement {line:?}")),
        }
    }
    Ok(values)
}

/// (wall time of `filter`'s tests - wall time of a run selecting no test) / N, one thread.
fn per_test_vs_empty(exe: &Path, filter: &str) -> Result<f64, String> {
    let all = wall_ms(as_user(exe).arg(filter).args(test_args(1)))?;
    let none = wall_ms(
        as_user(exe)
            .args(["--exact", "no_such_test"])
            .args(test_args(1)),
    )?;
    Ok((all - none) / N)
}

/// `NSTEST_BENCH_USER`: run every measured binary as this (unprivileged) user, through
/// setpriv(1), as root may: nstest must be as fast for the users who run it as for CI.
/// Both sides of every ratio run the same way.
fn bench_user() -> Option<String> {
    std::env::var("NSTEST_BENCH_USER")
        .ok()
        .filter(|user| !user.is_empty())
}

fn setpriv_args(user: &str) -> Vec<String> {
    vec![
        "setpriv".into(),
        format!("--reuid={user}"),
        format!("--regid={user}"),
        "--init-groups".into(),
    ]
}

/// A command for a measured binary, run as [`bench_user`] when one is set.
fn as_user(program: impl AsRef<std::ffi::OsStr>) -> Command {
    match bench_user() {
        Some(user) => {
            let args = setpriv_args(&user);
            let mut command = Command::new(&args[0]);
            command.args(&args[1..]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn test_args(threads: usize) -> Vec<String> {
    vec!["-q".into(), "--test-threads".into(), threads.to_string()]
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn fmt(value: f64) -> String {
    format!("{value:.3}")
}

/// The median of measurements already made.
fn median_of(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// The machine's CPU time so far, from the first line of /proc/stat (proc(5)), in ticks.
#[derive(Clone, Copy)]
struct CpuTicks {
    busy: u64,
    steal: u64,
    total: u64,
}

impl CpuTicks {
    fn read() -> Option<CpuTicks> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|t| t.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal
        let idle = ticks.get(3)? + ticks.get(4)?;
        let total: u64 = ticks.iter().take(8).sum();
        Some(CpuTicks {
            busy: total - idle,
            steal: *ticks.get(7)?,
            total,
        })
    }

    /// (busy share, stolen share) of the CPU time between `self` and `later`.
    fn shares_until(self, later: CpuTicks) -> Option<(f64, f64)> {
        let total = later.total.checked_sub(self.total).filter(|&t| t > 0)? as f64;
        Some((
            (later.busy - self.busy) as f64 / total,
            (later.steal - self.steal) as f64 / total,
        ))
    }
}

/// Runs that were repeated because the hypervisor took too much of the CPU meanwhile.
static REPEATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// A run is repeated when more than this share of the CPU time was stolen during it.
const MAX_STEAL: f64 = 0.03;
/// ... at most this many times; the run with the least steal is kept.
const ATTEMPTS: usize = 5;

/// Runs `run` on a quiet machine and returns what it measured. Two things made rows move by
/// 2x between runs minutes apart on our shared VMs, and both are the host's, not ours:
///
/// - The kernel tears network namespaces down asynchronously, in a workqueue, after their
///   last process is gone, so a run that created a thousand keeps a core busy after it
///   ended and the next run paid for it. So each run starts once at most 10% of the CPU
///   has been busy for 200 ms in a row (or after 10 s).
/// - The hypervisor steals CPU time (the `steal` column of /proc/stat): up to 80% of a
///   run's at times. So a run during which more than 3% was stolen is repeated, up to 5
///   times, keeping the one with the least steal.
fn on_quiet_machine<T>(mut run: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let mut best: Option<(f64, T)> = None;
    for attempt in 0..ATTEMPTS {
        settle();
        let before = CpuTicks::read();
        let value = run()?;
        let stolen = before
            .zip(CpuTicks::read())
            .and_then(|(before, after)| before.shares_until(after))
            .map_or(0.0, |(_, stolen)| stolen);
        if stolen <= MAX_STEAL {
            return Ok(value);
        }
        if attempt + 1 < ATTEMPTS {
            REPEATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if best.as_ref().is_none_or(|(least, _)| stolen < *least) {
            best = Some((stolen, value));
        }
    }
    Ok(best.expect("at least one attempt").1)
}

/// Waits until at most 10% of the CPU has been busy over 100 ms, twice in a row, or 10 s.
fn settle() {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let mut quiet = 0;
    let mut last = CpuTicks::read();
    while quiet < 2 && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = CpuTicks::read();
        let Some((busy, _)) = last.zip(now).and_then(|(a, b)| a.shares_until(b)) else {
            return;
        };
        quiet = if busy <= 0.10 { quiet + 1 } else { 0 };
        last = now;
    }
}

/// Wall time of a command that must succeed, in ms, measured on a quiet machine.
fn wall_ms(command: &mut Command) -> Result<f64, String> {
    on_quiet_machine(|| {
        let start = Instant::now();
        succeed(command)?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    })
}

/// Runs a command that must succeed, its output discarded.
fn succeed(command: &mut Command) -> Result<(), String> {
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {status}"))
    }
}

/// The standard output of a command that must succeed, run on a quiet machine.
fn run_capture(command: &mut Command) -> Result<String, String> {
    on_quiet_machine(|| {
        let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!("{command:?} failed: {}", out.status));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

/// Peak RSS of a run, from a helper process whose only child it is (so that
/// `RUSAGE_CHILDREN` is that run's, and its descendants').
fn peak_rss_kib(exe: &Path, args: &[String]) -> Result<i64, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = run_capture(Command::new(me).arg("bench-rss").arg(exe).args(args))?;
    out.trim()
        .parse()
        .map_err(|e| format!("bench-rss printed {out:?}: {e}"))
}

/// `xtask bench-rss CMD ARGS...`: runs the command and prints the peak RSS in KiB.
pub fn rss_of(args: &[String]) -> Result<(), String> {
    let (exe, rest) = args.split_first().ok_or("bench-rss needs a command")?;
    // No settling here: the bench runs this helper through `run_capture`, which already does.
    succeed(as_user(exe).args(rest))?;
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| e.to_string())?;
    println!("{}", usage.max_rss());
    Ok(())
}

/// Builds the fixture; returns each test target's executable by name.
fn build(fixture: &Path, target: &Path) -> Result<BTreeMap<String, PathBuf>, String> {
    let status = Command::new(cargo())
        .args(["build", "--release", "--bin", "floor"])
        .current_dir(fixture)
        .env("CARGO_TARGET_DIR", target)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("building the floor failed".into());
    }
    let mut command = Command::new(cargo());
    command
        .args(["test", "--release", "--no-run"])
        .current_dir(fixture)
        .env("CARGO_TARGET_DIR", target);
    Ok(crate::built_test_binaries(&mut command)?
        .into_iter()
        .collect())
}

/// The machine, as the report describes it.
fn machine() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    let who = match bench_user() {
        Some(user) => format!("as user {user} (setpriv from uid {uid})"),
        None => format!("uid {uid}"),
    };
    format!("{} cores ({cpu}), Linux {}, {who}", cores(), kernel.trim())
}

fn markdown(
    rows: &[(String, String)],
    ratios: &[(&str, f64)],
    targets: &[Target],
    reps: usize,
) -> String {
    let mut out = format!(
        "Machine: {}. Medians of {reps} runs; N = {N} trivial tests per row. Per-test \
         overhead = (wall time of the run - libtest's in-process run) / N (nextest: minus its \
         own run of no test). Each run starts on a quiet machine (at most 10% CPU busy for \
         200 ms), after the kernel has torn down the previous run's namespaces; a run during \
         which the hypervisor stole more than 3% of the CPU was repeated (up to 5 times, \
         keeping the least stolen): {} run(s) this time. Network rows: every build of 10 hosts \
         in every run is a sample; a round trip is the median of 2,000 in one run, both ends \
         on one CPU.\n\n| measurement | value |\n|---|---|\n",
        machine(),
        REPEATED.load(std::sync::atomic::Ordering::Relaxed)
    );
    for (name, value) in rows {
        out.push_str(&format!("| {name} | {value} |\n"));
    }
    out.push_str("\n| ratio | value |\n|---|---|\n");
    for (name, value) in ratios {
        out.push_str(&format!("| {name} | {value:.2} |\n"));
    }
    if !targets.is_empty() {
        out.push_str("\n| target | median | each round | limit | met | rounds met |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for t in targets {
            let each: Vec<String> = t.rounds.iter().map(|r| format!("{r:.2}")).collect();
            out.push_str(&format!(
                "| {} | {:.2} | {} | <= {:.2} | {} | {} of {} |\n",
                t.name,
                t.median(),
                each.join(", "),
                t.limit,
                if t.median() <= t.limit { "yes" } else { "no" },
                t.met(),
                t.rounds.len()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_are_read_from_test_output_and_a_bad_one_is_an_error() {
        let out = "running 1 test\ntest build_10_hosts ... nstest-bench build_10_hosts_ms 13.080\n\
                   nstest-bench build_10_hosts_ms 12.5\nok\n";
        assert_eq!(
            bench_lines(out).unwrap(),
            [
                ("build_10_hosts_ms".to_owned(), 13.08),
                ("build_10_hosts_ms".to_owned(), 12.5)
            ]
        );
        assert_eq!(bench_lines("test result: ok.\n").unwrap(), []);
        assert!(bench_lines("nstest-bench x ms\n").is_err());
        assert!(bench_lines("nstest-bench x\n").is_err());
    }
}
