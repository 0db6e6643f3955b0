//! The runner: the multithreaded side, which never forks. It reads libtest's command line
//! (`cli`), picks and orders the tests (`select`), probes the host once (`probe`), runs
//! each test in its sandbox through the fork server (`run`, `trial`, `client`) and prints
//! the results in libtest's formats (`report`).

use std::io::Write;

use crate::sandbox::Plan;
use crate::test as registry;
use cli::{Parsed, ProcessEnv};
use client::ForkServer;
use report::{Desc, Record};
use run::{Run, Tally};

mod capture;
mod cli;
mod client;
mod diagnosis;
pub(crate) mod doctor;
pub mod guard;
pub mod libtest;
mod outcome;
mod probe;
mod report;
mod run;
mod select;
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
    let skip_unsupported = match registry::read_default_timeout().and_then(|()| read_unsupported())
    {
        Ok(skip) => skip,
        Err(message) => fail(&format!("nstest: {message}")),
    };
    let concurrency = cli::concurrency(&options, &ProcessEnv)
        .unwrap_or_else(|message| fail(&format!("error: {message}")));
    let tests = registry::all_tests();
    // The fork server starts before anything is allocated per test (the selection, the
    // names): each fork it makes copies its page tables, and each sandbox process unmaps
    // them again when it exits, so every page it holds is paid twice per test. It serves
    // the probe too, whose first sandbox needs what any test needs (the selection is not
    // known yet; a kind only unselected tests need costs a few more probe sandboxes, and
    // only on a host that lacks it). `--list` (which nextest runs for every binary)
    // starts no process at all.
    let probes = probe::probe_tests(Plan::union(tests.iter().map(|test| &test.plan)));
    if !options.list {
        tracer::refuse_tarpaulin_without_follow_exec();
    }
    let server = (!options.list).then(|| {
        ForkServer::start().unwrap_or_else(|error| fail(&format!("nstest: cannot start: {error}")))
    });
    let named: Vec<(String, bool, bool)> = tests
        .iter()
        .map(|t| {
            (
                t.name().to_owned(),
                t.ignore,
                t.should_panic != registry::ShouldPanic::No,
            )
        })
        .collect();
    let selected = select::select(&options, &named);
    let Some(server) = server else {
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
    let missing = if to_run.len() > 1 || skip_unsupported {
        let needed = Plan::union(to_run.iter().copied());
        let missing = run::find_missing_with(&server, &needed, &probes);
        say_missing(&missing, skip_unsupported);
        missing
    } else {
        Vec::new()
    };
    in_runner();

    let run = Run {
        server,
        missing,
        skip_unsupported,
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
    let mut printer = report::printer(&options, concurrency > 1);
    let (summary, tally) = run::run_all(
        &run,
        &tests,
        &selected,
        &options,
        concurrency,
        printer.as_mut(),
        &mut log,
    );
    run.server.stop();
    report_leaks_and_skips(tally);
    std::process::exit(if summary.success() { 0 } else { 101 })
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(101)
}

/// Reads `NSTEST_UNSUPPORTED`: unset or `fail` (the default) fails the tests that need
/// what the host lacks; `skip` reports them as ignored, with the reason.
fn read_unsupported() -> std::result::Result<bool, String> {
    match std::env::var("NSTEST_UNSUPPORTED")
        .as_deref()
        .map(str::trim)
    {
        Err(_) | Ok("") | Ok("fail") => Ok(false),
        Ok("skip") => Ok(true),
        Ok(other) => Err(format!(
            "NSTEST_UNSUPPORTED={other:?} is not understood; use `fail` (the default) or `skip`"
        )),
    }
}

/// Prints, once each, what the host lacks and how to fix it.
fn say_missing(missing: &[probe::Missing], skip: bool) {
    eprint!("{}", missing_text(missing, skip));
}

/// What [`say_missing`] prints.
fn missing_text(missing: &[probe::Missing], skip: bool) -> String {
    let mut text = String::new();
    for m in missing {
        text.push_str(&format!(
            "nstest: this host cannot create {}; the tests that need them will {}.\n{}\n\n",
            m.kind.name(),
            if skip {
                "be skipped (NSTEST_UNSUPPORTED=skip)"
            } else {
                "fail (NSTEST_UNSUPPORTED=skip skips them instead)"
            },
            m.diagnosis
        ));
    }
    text
}

/// Says which passing tests left processes behind (failed ones say it in their failure
/// text) and how many tests were skipped for what. On stderr, so that stdout stays what
/// libtest prints, for the tools that parse it.
fn report_leaks_and_skips(mut tally: Tally) {
    if !tally.leaked.is_empty() {
        tally.leaked.sort();
        eprintln!(
            "\nnstest: LEAK: these tests passed but left processes running, which nstest killed:"
        );
        for (name, count) in &tally.leaked {
            eprintln!(
                "    {name} ({count} process{})",
                if *count == 1 { "" } else { "es" }
            );
        }
    }
    let mut kinds: Vec<&str> = tally.skipped.iter().map(|(kind, _)| *kind).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let count = tally.skipped.iter().filter(|(k, _)| *k == kind).count();
        eprintln!(
            "nstest: skipped {count} test{} that need{} {kind}, which this host cannot create \
             (NSTEST_UNSUPPORTED=skip)",
            if count == 1 { "" } else { "s" },
            if count == 1 { "s" } else { "" },
        );
    }
}
