//! `--format pretty`, the default: a line per test, then the failures and the counts.

use super::color::Color;
use super::{Desc, Out, Printer, Record, Summary, Verdict};
use crate::runner::cli::TimeOptions;

pub(super) struct Pretty {
    out: Out,
    multithreaded: bool,
    time: Option<TimeOptions>,
    show_output: bool,
}

impl Pretty {
    pub(super) fn new(
        out: Out,
        multithreaded: bool,
        time: Option<TimeOptions>,
        show_output: bool,
    ) -> Pretty {
        Pretty {
            out,
            multithreaded,
            time,
            show_output,
        }
    }

    fn name(&mut self, desc: &Desc) {
        self.out.plain(&name_of(desc));
    }
}

/// `test NAME ... `, as libtest starts a test's line.
fn name_of(desc: &Desc) -> String {
    let mode = if desc.should_panic {
        " - should panic"
    } else {
        ""
    };
    format!("test {}{mode} ... ", desc.name)
}

/// The end of a test's line: its verdict, with `--report-time` its time, and the newline.
fn verdict(out: &mut Out, record: &Record, time: Option<&TimeOptions>) {
    match &record.verdict {
        Verdict::Ok => out.colored("ok", Color::Green),
        Verdict::Failed | Verdict::FailedMsg(_) => out.colored("FAILED", Color::Red),
        Verdict::Ignored(reason) => match reason {
            Some(message) => out.colored(&format!("ignored, {message}"), Color::Yellow),
            None => out.colored("ignored", Color::Yellow),
        },
        Verdict::TimedFail => out.colored("FAILED (time limit exceeded)", Color::Red),
    }
    if let (Some(limits), Some(time)) = (time, record.exec_time) {
        let text = format!(" <{}>", super::test_time(time));
        match super::time_color(time, limits) {
            Some(color) => out.colored(&text, color),
            None => out.plain(&text),
        }
    }
    out.plain("\n");
}

impl Printer for Pretty {
    fn run_start(&mut self, test_count: usize, shuffle_seed: Option<u64>) {
        self.out
            .plain(&super::terse::running(test_count, shuffle_seed));
    }

    fn test_start(&mut self, desc: &Desc) {
        // One test at a time: its name goes out before it runs, so a hang shows which.
        if !self.multithreaded {
            self.name(desc);
        }
    }

    fn still_running(&mut self, desc: &Desc) {
        self.out.plain(&super::still_running_line(&desc.name));
    }

    fn result(&mut self, desc: &Desc, record: &Record, _: &Summary) {
        // Several tests at a time: the name goes out with the result, in one write.
        if self.multithreaded {
            let name = name_of(desc);
            let time = self.time.as_ref();
            self.out.whole_line(|out| {
                out.plain(&name);
                verdict(out, record, time);
            });
        } else {
            verdict(&mut self.out, record, self.time.as_ref());
        }
    }

    fn run_finish(&mut self, summary: &Summary) {
        if self.show_output {
            super::sections(&mut self.out, "successes", &summary.successes);
        }
        if !summary.success() {
            if !summary.failures.is_empty() {
                super::sections(&mut self.out, "failures", &summary.failures);
            }
            if !summary.time_failures.is_empty() {
                super::sections(
                    &mut self.out,
                    "failures (time limit exceeded)",
                    &summary.time_failures,
                );
            }
        }
        super::result_line(&mut self.out, summary);
    }
}
