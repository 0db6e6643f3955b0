//! `--format terse` (`-q`): a character per test, a line per failure, then the counts.

use super::color::Color;
use super::{Desc, Out, Printer, Record, Summary, Verdict};

/// A progress count ends the line after this many characters, so that line-buffered
/// readers see progress (libtest's width).
const LINE_RESULTS: usize = 88;

pub(super) struct Terse {
    out: Out,
    show_output: bool,
    done: usize,
    column: usize,
    total: usize,
}

/// `running N tests`, with the seed when shuffled.
pub(super) fn running(test_count: usize, shuffle_seed: Option<u64>) -> String {
    let noun = if test_count == 1 { "test" } else { "tests" };
    let seed = shuffle_seed.map_or(String::new(), |seed| format!(" (shuffle seed: {seed})"));
    format!("\nrunning {test_count} {noun}{seed}\n")
}

impl Terse {
    pub(super) fn new(out: Out, show_output: bool) -> Terse {
        Terse {
            out,
            show_output,
            done: 0,
            column: 0,
            total: 0,
        }
    }

    fn progress(&mut self) {
        self.out.plain(&format!(" {}/{}\n", self.done, self.total));
        self.column = 0;
    }

    fn short(&mut self, mark: &str, color: Color) {
        self.out.colored(mark, color);
        self.done += 1;
        self.column += 1;
        if self.column % LINE_RESULTS == LINE_RESULTS - 1 {
            self.progress();
        }
    }
}

impl Printer for Terse {
    fn run_start(&mut self, test_count: usize, shuffle_seed: Option<u64>) {
        self.total = test_count;
        self.out.plain(&running(test_count, shuffle_seed));
    }

    fn test_start(&mut self, _: &Desc) {}

    fn still_running(&mut self, desc: &Desc) {
        self.out.plain(&super::still_running_line(&desc.name));
    }

    fn result(&mut self, desc: &Desc, record: &Record, _: &Summary) {
        match record.verdict {
            Verdict::Ok => self.short(".", Color::Green),
            Verdict::Ignored(_) => self.short("i", Color::Yellow),
            Verdict::Failed | Verdict::FailedMsg(_) | Verdict::TimedFail => {
                // A failure gets a line of its own, with its name.
                if self.column != 0 {
                    self.progress();
                }
                self.done += 1;
                self.out.plain(&format!("{} --- ", desc.name));
                self.out.colored("FAILED", Color::Red);
                self.out.plain("\n");
            }
        }
    }

    fn run_finish(&mut self, summary: &Summary) {
        if self.show_output {
            super::sections(&mut self.out, "successes", &summary.successes);
        }
        if !summary.success() {
            super::sections(&mut self.out, "failures", &summary.failures);
        }
        super::result_line(&mut self.out, summary);
        // A run of a single ignored test says why it was ignored.
        if let ([(name, Some(message))], 1) = (summary.ignores.as_slice(), self.total) {
            self.out
                .plain(&format!("test: {name}, ignore_message: {message}\n\n"));
        }
    }
}
