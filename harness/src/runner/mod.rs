//! The runner: the multithreaded side, which never forks. It reads libtest's command line
//! (`cli`), picks and orders the tests (`select`), starts the run the one way both entries
//! share (`session`: settings, probe, fork server), runs each test in its sandbox through
//! the fork server (`run`, `trial`, `client`) and prints the results in libtest's formats
//! (`report`, where every sentence a user reads is written).
//!
//! Runs in: the runner process, the test binary's own; above `process` (whose fork server
//! it starts and talks to through `wire`), beside `network`.

use std::io::Write;

use crate::plan::Plan;
use crate::registry::{self, ShouldPanic};
use cli::{Parsed, ProcessEnv};
use report::{Desc, Record};
use run::{Run, Tally};
use session::{Runs, Session, Settings};

mod capture;
mod cli;
mod client;
mod diagnosis;
pub(crate) mod doctor;
pub mod guard;
pub mod libtest;
mod limit;
mod outcome;
mod probe;
mod report;
mod run;
mod select;
mod session;
mod tracer;
mod trial;

/// Runs every registered test and exits like libtest: 0 if all passed, 101 otherwise.
pub fn run_main() -> ! {
    run_main_then(|| {})
}

/// [`run_main`], calling `in_runner` in the runner process once the fork server is
/// running, before the first test. The benchmark uses it to grow the runner and show that
/// per-test cost does not grow with it; tests never see anything it does.
pub fn run_main_then(in_runner: fn()) -> ! {
    guard::runner_started();
    let args: Vec<String> = std::env::args().collect();
    let options = match cli::parse(&args, &ProcessEnv) {
        Ok(Parsed::Run(options)) => *options,
        Ok(Parsed::Help(text)) => {
            println!("{text}");
            std::process::exit(0)
        }
        Err(message) => fail(&format!("error: {message}")),
    };
    if options.logfile.is_some() {
        // libtest's words, without a newline, as libtest writes them.
        eprint!("warning: `--logfile` is deprecated");
    }
    let settings =
        Settings::from_env().unwrap_or_else(|message| fail(&format!("nstest: {message}")));
    // A run of one test (nextest's `--exact NAME` for every test, an editor's run button)
    // forks that test's sandbox itself, on this thread: see `process::direct`.
    let one_test = select::at_most_one(&options);
    let concurrency = cli::concurrency(&options, &ProcessEnv)
        .unwrap_or_else(|message| fail(&format!("error: {message}")));
    let tests = match one_test {
        true => registry::unordered_tests(),
        false => registry::all_tests(),
    };
    let runs = match one_test {
        true => Runs::OneHere,
        false => Runs::Many {
            one_thread: concurrency == 1,
            memory_limits: tests.iter().any(|t| t.plan.limits.memory.is_some()),
        },
    };
    // In a run of one test, the one test of that name (names are unique), if any: the
    // only one the filters may select, and the only one the run prepares for.
    let found = one_test.then(|| {
        let name = options.filters.first().map_or("", String::as_str);
        tests.iter().position(|t| t.name() == name)
    });
    // The fork server starts before anything is allocated per test (the selection, the
    // names): each fork it makes copies its page tables, and each sandbox process unmaps
    // them again when it exits, so every page it holds is paid twice per test. It serves
    // the probe too, whose first sandbox needs what any test needs (the selection is not
    // known yet; a kind only unselected tests need costs a few more probe sandboxes, and
    // only on a host that lacks it). `--list` (which nextest runs for every binary)
    // starts no process at all.
    let session = (!options.list).then(|| {
        // A run of one test prepares for that test alone: its probe, if any, needs no
        // more (see `process::direct::prepare`).
        let needs = match found {
            Some(found) => Plan::union(found.iter().map(|&i| &tests[i].plan)),
            None => Plan::union(tests.iter().map(|test| &test.plan)),
        };
        Session::start(settings, needs, runs)
            .unwrap_or_else(|error| fail(&format!("nstest: cannot start: {error}")))
    });
    // Borrowed: only the selected tests' names are copied.
    let candidates: Vec<usize> = match found {
        Some(found) => found.into_iter().collect(),
        None => (0..tests.len()).collect(),
    };
    let named: Vec<select::Candidate<'_>> = candidates
        .into_iter()
        .map(|index| {
            let t = tests[index];
            select::Candidate {
                index,
                name: t.name(),
                ignore: t.ignore,
                should_panic: t.should_panic != ShouldPanic::No,
            }
        })
        .collect();
    let selected = select::select(&options, &named);
    let Some(session) = session else {
        let listed: Vec<Desc> = selected.iter().map(|s| run::desc(tests[s.index])).collect();
        report::list(&options, &listed);
        std::process::exit(0)
    };

    // Everything the selected tests need, tried before the first test, so that a host
    // that blocks namespaces is diagnosed once rather than in every test. With one test
    // selected (nextest runs each test in its own process) the probe would only double
    // the sandboxes: that test's own setup failure is diagnosed in full, once, in its
    // failure text. Skipping unsupported tests needs the probe, though.
    let to_run: Vec<&Plan> = selected
        .iter()
        .filter(|s| !s.ignore && !options.benchmarks_only)
        .map(|s| &tests[s.index].plan)
        .collect();
    let missing = if to_run.len() > 1 || settings.skip_unsupported {
        let missing = session.find_missing(&Plan::union(to_run.iter().copied()));
        eprint!(
            "{}",
            report::notice::missing_kinds(&missing, settings.skip_unsupported)
        );
        missing
    } else {
        Vec::new()
    };
    in_runner();

    let run = Run {
        session,
        missing,
        capture: !options.nocapture,
        timed: options.time.is_some(),
    };
    let mut logfile = options.logfile.as_ref().map(|path| {
        std::fs::File::create(path)
            .unwrap_or_else(|e| fail(&format!("error: cannot create {path}: {e}")))
    });
    let mut log = |desc: &Desc, record: &Record| {
        if let Some(file) = logfile.as_mut() {
            let _ = file.write_all(report::log_line(desc, record).as_bytes());
        }
    };
    // libtest prints as a multithreaded run whenever it may use threads, one test or not.
    let mut printer = report::printer(&options, concurrency > 1);
    // A run of one test forks from this thread and must start no other (`process::direct`).
    let concurrency = if one_test { 1 } else { concurrency };
    let (summary, mut tally): (_, Tally) = run::run_all(
        &run,
        &tests,
        &selected,
        &options,
        concurrency,
        printer.as_mut(),
        &mut log,
    );
    run.session.stop();
    eprint!(
        "{}",
        report::notice::leaks_and_skips(&mut tally.leaked, &tally.skipped)
    );
    std::process::exit(if summary.success() { 0 } else { 101 })
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(101)
}
