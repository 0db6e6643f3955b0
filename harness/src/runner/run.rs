//! A run's state as one value, and the scheduler that runs the selected tests on worker
//! threads and feeds their results, in libtest's order of events, to the printer.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::cli::Options;
use super::outcome::Outcome;
use super::probe::Missing;
use super::report::{self, Desc, Printer, Record, Summary, Verdict};
use super::select::Selected;
use super::session::Session;
use super::trial;
use crate::registry::{ShouldPanic, Test};
use crate::wire::Note;

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
    /// What the test said about itself while it ran (a chaos seed, a capture file).
    pub notes: Vec<Note>,
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

impl Finished {
    /// A test that did not run: `outcome` says why (an ignored test "passes").
    fn not_run(outcome: Outcome) -> Finished {
        Finished {
            outcome,
            output: String::new(),
            leaked: 0,
            exec_time: None,
            notes: Vec::new(),
        }
    }
}

impl Run {
    /// Runs `test` in its sandbox, or decides without
    /// running it when the host lacks what it needs.
    pub(crate) fn run_one(&self, test: &'static Test) -> Finished {
        if let Some(outcome) = self.session.outcome_if_lacking(&self.missing, &test.plan) {
            return Finished::not_run(outcome);
        }
        let started = Instant::now();
        match self.session.run_sandboxed(test, self.capture) {
            Ok(done) => Finished {
                outcome: done.outcome,
                output: done.output,
                leaked: done.leaked,
                exec_time: self.timed.then(|| started.elapsed()),
                notes: done.notes,
            },
            Err(error) => Finished::not_run(Outcome::NotStarted {
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
///
/// libtest's main thread hands each test to a thread and takes each result back through
/// a channel: two wake-ups between threads per test, on top of the runner's wake-up for
/// the test's exit frame. Here the thread that ran a test does the main thread's part
/// itself, under the board's lock (report the result, announce the next tests), and runs
/// the next one: the events come in libtest's order (each result, then the tests that
/// its freed turn starts) and no thread waits for another between tests. The calling
/// thread only says which tests have run for over a minute.
pub(crate) fn run_all(
    run: &Run,
    tests: &[&'static Test],
    selected: &[Selected],
    options: &Options,
    concurrency: usize,
    printer: &mut dyn Printer,
    log: &mut (dyn FnMut(&Desc, &Record) + Send),
) -> (Summary, Tally) {
    let descs: Vec<Desc> = selected
        .iter()
        .map(|s| Desc {
            ignore: s.ignore,
            ..desc(tests[s.index])
        })
        .collect();
    let started = Instant::now();
    printer.run_start(selected.len(), options.shuffle_seed);
    let mut board = Board {
        next: 0,
        pending: 0,
        finished: VecDeque::new(),
        jobs: VecDeque::new(),
        running: VecDeque::new(),
        over: false,
        hinted: false,
        summary: Summary {
            total: selected.len(),
            filtered_out: tests.len() - selected.len(),
            ..Summary::default()
        },
        tally: Tally::default(),
        printer,
        log,
    };
    let shared = Shared {
        run,
        tests,
        selected,
        options,
        concurrency,
        descs: &descs,
    };
    shared.fill(&mut board);
    let board = Mutex::new(board);
    let (work, ended) = (Condvar::new(), Condvar::new());
    let table = Table {
        shared: &shared,
        board: &board,
        work: &work,
        ended: &ended,
    };
    // One test at a time runs on this thread, as it is the one whose slot ran the probe:
    // a worker would need a slot of its own. So does a single selected test (every test
    // under nextest): a worker thread would only add its start and its join.
    if concurrency == 1 || selected.len() == 1 {
        table.work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..concurrency.min(selected.len()) {
                scope.spawn(|| table.work());
            }
            table.watch();
            // Workers still running a test (after --fail-fast) finish it first.
        });
    }
    let mut board = board.into_inner().unwrap_or_else(|e| e.into_inner());
    board.summary.exec_time = Some(started.elapsed());
    board.printer.run_finish(&board.summary);
    (board.summary, board.tally)
}

/// What every thread of a run reads.
struct Shared<'a> {
    run: &'a Run,
    tests: &'a [&'static Test],
    selected: &'a [Selected],
    options: &'a Options,
    concurrency: usize,
    descs: &'a [Desc],
}

/// The run's progress, changed by one thread at a time: what libtest's main thread keeps.
struct Board<'p> {
    /// The next selected test to announce.
    next: usize,
    /// Announced tests whose result is not reported yet (at most `concurrency`).
    pending: usize,
    /// Results not reported yet, in the order they came (libtest's channel).
    finished: VecDeque<(usize, Finished)>,
    /// Announced tests no thread has taken yet.
    jobs: VecDeque<usize>,
    /// Running tests, oldest first, with when each is said to be still running.
    running: VecDeque<(usize, Instant)>,
    /// No more results are reported: every test's is, or --fail-fast stopped the run.
    over: bool,
    /// Whether a test's output has shown std's `RUST_BACKTRACE` hint yet.
    hinted: bool,
    summary: Summary,
    tally: Tally,
    printer: &'p mut dyn Printer,
    log: &'p mut (dyn FnMut(&Desc, &Record) + Send),
}

/// The board and the threads that wait on it.
struct Table<'a, 'p> {
    shared: &'a Shared<'a>,
    board: &'a Mutex<Board<'p>>,
    /// A worker waits here for a job, or for the end.
    work: &'a Condvar,
    /// The calling thread waits here for the end, or for a still-running deadline.
    ended: &'a Condvar,
}

impl<'p> Table<'_, 'p> {
    fn lock(&self) -> MutexGuard<'_, Board<'p>> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker: takes a job, runs it, reports its result and announces the tests that
    /// take its turn; takes the next. Ends when no job is left to take.
    fn work(&self) {
        let shared = self.shared;
        let mut board = self.lock();
        loop {
            if let Some((position, finished)) = board.finished.pop_front() {
                if board.over {
                    continue;
                }
                let watched = !board.running.is_empty();
                shared.report(&mut board, position, finished);
                if !board.over {
                    shared.fill(&mut board);
                }
                if board.over || board.jobs.len() > 1 || board.next == shared.selected.len() {
                    // More jobs than this thread takes, or none to come: wake the others.
                    self.work.notify_all();
                }
                if board.over || (!watched && !board.running.is_empty()) {
                    self.ended.notify_one();
                }
                continue;
            }
            if board.over || (board.jobs.is_empty() && board.next == shared.selected.len()) {
                return;
            }
            let Some(position) = board.jobs.pop_front() else {
                board = self.work.wait(board).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            drop(board);
            let test = shared.tests[shared.selected[position].index];
            let finished = shared.run.run_one(test);
            board = self.lock();
            board.finished.push_back((position, finished));
        }
    }

    /// The calling thread of a multithreaded run: says which tests have run for over a
    /// minute, once each, until the run is over.
    fn watch(&self) {
        let mut board = self.lock();
        while !board.over {
            board = match board.running.front().map(|(_, at)| *at) {
                None => self.ended.wait(board).unwrap_or_else(|e| e.into_inner()),
                Some(at) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    let (mut board, _) = self
                        .ended
                        .wait_timeout(board, wait)
                        .unwrap_or_else(|e| e.into_inner());
                    while let Some(&(position, at)) = board.running.front() {
                        if at > Instant::now() || board.over {
                            break;
                        }
                        board.printer.still_running(&self.shared.descs[position]);
                        board.running.pop_front();
                    }
                    board
                }
            };
        }
    }
}

impl Shared<'_> {
    /// Announces tests until `concurrency` are pending: ignored ones have their result
    /// at once, the others become jobs.
    fn fill(&self, board: &mut Board<'_>) {
        while board.pending < self.concurrency && board.next < self.selected.len() {
            let position = board.next;
            board.printer.test_start(&self.descs[position]);
            if self.descs[position].ignore || self.options.benchmarks_only {
                let ignored = Finished::not_run(Outcome::Passed);
                board.finished.push_back((position, ignored));
            } else {
                board
                    .running
                    .push_back((position, Instant::now() + STILL_RUNNING_AFTER));
                board.jobs.push_back(position);
            }
            board.pending += 1;
            board.next += 1;
        }
        // A result not reported yet is pending too: none pending is the end.
        if board.pending == 0 {
            board.over = true;
        }
    }

    /// Reports one test's result; with --fail-fast a failure ends the run.
    fn report(&self, board: &mut Board<'_>, position: usize, finished: Finished) {
        board.running.retain(|(p, _)| *p != position);
        let desc = &self.descs[position];
        let record = if desc.ignore || self.options.benchmarks_only {
            Record {
                verdict: Verdict::Ignored(desc.ignore_message.clone()),
                exec_time: None,
                output: String::new(),
            }
        } else {
            tally_extras(&mut board.tally, desc, &finished);
            let output = report::failure::hint_once(finished.output, &mut board.hinted);
            let mut record = report::failure::record(
                || self.run.session.facts(),
                &finished.outcome,
                output,
                finished.leaked,
                finished.exec_time,
                self.options.time.as_ref(),
            );
            report::failure::add_notes(&mut record, &finished.notes, &desc.name);
            if record.verdict == Verdict::Ok {
                trial::discard_captures(&finished.notes);
            }
            record
        };
        board.printer.result(desc, &record, &board.summary);
        (board.log)(desc, &record);
        board.summary.count(desc, &record);
        board.pending -= 1;
        let failed = !matches!(record.verdict, Verdict::Ok | Verdict::Ignored(_));
        if failed && self.options.fail_fast {
            board.over = true;
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
