//! A run's state as one value, and the scheduler that runs the selected tests on worker
//! threads and feeds their results, in libtest's order of events, to the printer.

use std::collections::VecDeque;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use super::cli::Options;
use super::outcome::Outcome;
use super::probe::Missing;
use super::report::{self, Desc, Printer, Record, Summary, Verdict};
use super::select::Selected;
use super::session::Session;
use crate::registry::{ShouldPanic, Test};

/// libtest warns about a test still running after this long (multithreaded runs only).
const STILL_RUNNING_AFTER: Duration = Duration::from_secs(60);

/// Everything a run shares between its worker threads.
pub(crate) struct Run {
    pub session: Session,
    /// What the host probe found missing (empty when it did not run or found nothing).
    pub missing: Vec<Missing>,
    /// Output goes through a pipe to the runner (not `--nocapture`).
    pub capture: bool,
    /// `--report-time` or `--ensure-time`: each test is timed.
    pub timed: bool,
}

/// How one test ended, as a worker thread hands it back.
#[derive(Debug)]
pub(crate) struct Finished {
    pub outcome: Outcome,
    pub output: String,
    pub leaked: u32,
    pub exec_time: Option<Duration>,
}

/// What the run learned besides the results, said on stderr after the summary.
#[derive(Debug, Default)]
#[must_use]
pub(crate) struct Tally {
    /// Tests that passed but left processes running: `(name, count)`.
    pub leaked: Vec<(String, u32)>,
    /// Tests skipped for what the host lacks: `(what, name)`.
    pub skipped: Vec<(&'static str, String)>,
}

impl Run {
    /// Runs `test` in its sandbox, or decides without
    /// running it when the host lacks what it needs.
    pub(crate) fn run_one(&self, test: &'static Test) -> Finished {
        let not_run = |outcome| Finished {
            outcome,
            output: String::new(),
            leaked: 0,
            exec_time: None,
        };
        if let Some(outcome) = self.session.outcome_if_lacking(&self.missing, &test.plan) {
            return not_run(outcome);
        }
        let started = Instant::now();
        match self.session.run_sandboxed(test, self.capture) {
            Ok(done) => Finished {
                outcome: done.outcome,
                output: done.output,
                leaked: done.leaked,
                exec_time: self.timed.then(|| started.elapsed()),
            },
            Err(error) => not_run(Outcome::NotStarted {
                error: error.to_string(),
            }),
        }
    }
}

/// The printers' view of a registered test.
pub(crate) fn desc(test: &Test) -> Desc {
    Desc {
        name: test.name().to_owned(),
        should_panic: test.should_panic != ShouldPanic::No,
        ignore: test.ignore,
        ignore_message: test.ignore_message.map(str::to_owned),
        source: test.source,
    }
}

/// Runs `selected` (of `tests`) on `concurrency` worker threads, printing with `printer`
/// as libtest does: a test is announced when it is handed to a thread (ignored ones too,
/// which take a thread's turn without running), and reported when it ends.
pub(crate) fn run_all(
    run: &Run,
    tests: &[&'static Test],
    selected: &[Selected],
    options: &Options,
    concurrency: usize,
    printer: &mut dyn Printer,
    log: &mut dyn FnMut(&Desc, &Record),
) -> (Summary, Tally) {
    let mut summary = Summary {
        total: selected.len(),
        filtered_out: tests.len() - selected.len(),
        ..Summary::default()
    };
    let mut tally = Tally::default();
    let descs: Vec<Desc> = selected
        .iter()
        .map(|s| Desc {
            ignore: s.ignore,
            ..desc(tests[s.index])
        })
        .collect();
    let started = Instant::now();
    printer.run_start(selected.len(), options.shuffle_seed);
    let (job_tx, job_rx) = mpsc::channel::<usize>();
    let jobs = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Finished)>();
    // One test at a time runs on this thread, as it is the one whose slot ran the probe:
    // a worker would need a slot of its own. So does a single selected test (every test
    // under nextest): a worker thread would only add its start and its join.
    let workers = if concurrency == 1 || selected.len() == 1 {
        0
    } else {
        concurrency
    };
    std::thread::scope(|scope| {
        for _ in 0..workers.min(selected.len()) {
            let done_tx = done_tx.clone();
            let jobs = &jobs;
            scope.spawn(move || {
                loop {
                    let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(position) = job else { break };
                    let index = selected[position].index;
                    let finished = run.run_one(tests[index]);
                    if done_tx.send((position, finished)).is_err() {
                        break;
                    }
                }
            });
        }
        let multithreaded = concurrency > 1;
        let mut running: VecDeque<(usize, Instant)> = VecDeque::new();
        let (mut next, mut pending) = (0, 0);
        // Whether a test's output has shown std's `RUST_BACKTRACE` hint yet.
        let mut hinted = false;
        while pending > 0 || next < selected.len() {
            while pending < concurrency && next < selected.len() {
                printer.test_start(&descs[next]);
                if descs[next].ignore || options.benchmarks_only {
                    let ignored = Finished {
                        outcome: Outcome::Passed,
                        output: String::new(),
                        leaked: 0,
                        exec_time: None,
                    };
                    let _ = done_tx.send((next, ignored));
                } else if workers == 0 {
                    let index = selected[next].index;
                    let _ = done_tx.send((next, run.run_one(tests[index])));
                } else {
                    running.push_back((next, Instant::now() + STILL_RUNNING_AFTER));
                    let _ = job_tx.send(next);
                }
                pending += 1;
                next += 1;
            }
            let Some((position, finished)) =
                next_result(&done_rx, multithreaded, &mut running, &descs, printer)
            else {
                break;
            };
            running.retain(|(p, _)| *p != position);
            let desc = &descs[position];
            let record = if desc.ignore || options.benchmarks_only {
                Record {
                    verdict: Verdict::Ignored(desc.ignore_message.clone()),
                    exec_time: None,
                    output: String::new(),
                }
            } else {
                tally_extras(&mut tally, desc, &finished);
                let output = report::failure::hint_once(finished.output, &mut hinted);
                report::failure::record(
                    || run.session.facts(),
                    &finished.outcome,
                    output,
                    finished.leaked,
                    finished.exec_time,
                    options.time.as_ref(),
                )
            };
            printer.result(desc, &record, &summary);
            log(desc, &record);
            summary.count(desc, &record);
            pending -= 1;
            let failed = !matches!(record.verdict, Verdict::Ok | Verdict::Ignored(_));
            if failed && options.fail_fast {
                break;
            }
        }
        // Workers end when the queue closes; one still running a test (after
        // --fail-fast) finishes it first.
        drop(job_tx);
    });
    summary.exec_time = Some(started.elapsed());
    printer.run_finish(&summary);
    (summary, tally)
}

/// Waits for the next result; while waiting in a multithreaded run, says which tests
/// have been running for over a minute, once each.
fn next_result(
    results: &mpsc::Receiver<(usize, Finished)>,
    multithreaded: bool,
    running: &mut VecDeque<(usize, Instant)>,
    descs: &[Desc],
    printer: &mut dyn Printer,
) -> Option<(usize, Finished)> {
    loop {
        let deadline = running.front().map(|(_, at)| *at).filter(|_| multithreaded);
        let Some(deadline) = deadline else {
            return results.recv().ok();
        };
        match results.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(result) => return Some(result),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                while let Some(&(position, at)) = running.front() {
                    if at > Instant::now() {
                        break;
                    }
                    printer.still_running(&descs[position]);
                    running.pop_front();
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
}

fn tally_extras(tally: &mut Tally, desc: &Desc, finished: &Finished) {
    match finished.outcome {
        Outcome::Passed if finished.leaked > 0 => {
            tally.leaked.push((desc.name.clone(), finished.leaked));
        }
        Outcome::Skipped { kind } => tally.skipped.push((kind, desc.name.clone())),
        _ => {}
    }
}
