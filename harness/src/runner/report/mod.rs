//! What a run prints, in libtest's formats: one printer per `--format`, all fed the same
//! typed events by the scheduler, and all prose about an outcome made in [`failure`].

use std::io::Write;
use std::time::Duration;

use super::cli::{ColorChoice, Format, Options, TimeOptions};

mod color;
pub(crate) mod failure;
mod json;
mod junit;
pub(crate) mod notice;
mod pretty;
mod terse;

pub(crate) use color::Palette;

/// libtest's last line of a run, pretty and terse alike: `test result: ok. 3 passed; ...`.
pub(crate) fn result_line(out: &mut Out, summary: &Summary) {
    out.plain("\ntest result: ");
    if summary.success() {
        out.colored("ok", color::Color::Green);
    } else {
        out.colored("FAILED", color::Color::Red);
    }
    out.plain(&counts(summary));
}

/// libtest's warning about a test still running after a minute (pretty and terse alike).
pub(crate) fn still_running_line(name: &str) -> String {
    format!("test {name} has been running for over 60 seconds\n")
}

/// A test as the printers name it.
#[derive(Debug, Clone)]
pub(crate) struct Desc {
    pub name: String,
    /// `#[should_panic]`: pretty output says ` - should panic` after the name.
    pub should_panic: bool,
    /// `#[ignore]`.
    pub ignore: bool,
    /// Why the test is ignored, when it says.
    pub ignore_message: Option<String>,
    /// Where the test is written.
    pub source: crate::registry::Source,
}

/// libtest's classes of result, which decide how a test is printed and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok,
    /// Failed; its output says why.
    Failed,
    /// Failed with a message libtest prints as `note: ...` after the output.
    FailedMsg(String),
    /// Not run, with the reason when there is one.
    Ignored(Option<String>),
    /// Passed, but slower than `--ensure-time` allows.
    TimedFail,
}

/// One finished test, ready to print.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub verdict: Verdict,
    /// Measured only with `--report-time` or `--ensure-time`, as in libtest.
    pub exec_time: Option<Duration>,
    /// What the test printed (captured), with nstest's note on how it ended, if any.
    pub output: String,
}

/// The counts and texts of a run so far: libtest's console state, as a value the
/// scheduler owns and hands to the printer.
#[derive(Debug, Default)]
#[must_use]
pub(crate) struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
    pub filtered_out: usize,
    pub exec_time: Option<Duration>,
    /// `(name, output)` in the order they finished; libtest prints them so.
    pub failures: Vec<(String, String)>,
    pub successes: Vec<(String, String)>,
    pub time_failures: Vec<(String, String)>,
    /// `(name, reason)` of each test that was ignored.
    pub ignores: Vec<(String, Option<String>)>,
}

impl Summary {
    /// Counts `record` and keeps the text the end of the run prints for it.
    pub(crate) fn count(&mut self, desc: &Desc, record: &Record) {
        let name = desc.name.clone();
        match &record.verdict {
            Verdict::Ok => {
                self.passed += 1;
                self.successes.push((name, record.output.clone()));
            }
            Verdict::Ignored(reason) => {
                self.ignored += 1;
                self.ignores.push((name, reason.clone()));
            }
            Verdict::Failed => {
                self.failed += 1;
                self.failures.push((name, record.output.clone()));
            }
            Verdict::FailedMsg(message) => {
                self.failed += 1;
                self.failures
                    .push((name, format!("{}note: {message}", record.output)));
            }
            Verdict::TimedFail => {
                self.failed += 1;
                self.time_failures.push((name, record.output.clone()));
            }
        }
    }

    /// Whether the run passed: exit code 0 rather than 101.
    pub(crate) fn success(&self) -> bool {
        self.failed == 0
    }
}

/// How the printers write: stdout, flushed after each piece (tests printing with
/// `--nocapture` write to the same terminal), in colour when asked and possible.
pub(crate) struct Out {
    stdout: std::io::Stdout,
    palette: Option<Palette>,
    /// Pieces held back to go out as one write (see [`Out::whole_line`]).
    held: Option<String>,
}

impl Out {
    fn plain(&mut self, text: &str) {
        if let Some(held) = &mut self.held {
            held.push_str(text);
            return;
        }
        // A closed stdout (`| head`) must not stop the run: libtest fails the same way
        // only at its end, and the exit code still tells the result.
        let _ = self.stdout.write_all(text.as_bytes());
        let _ = self.stdout.flush();
    }

    /// Writes what `pieces` prints as one write: a result line of a multithreaded run
    /// (`test NAME ... ok`), which a test printing with `--nocapture` in another process
    /// must not split (a pipe's write of at most `PIPE_BUF` bytes is never interleaved
    /// with another's, pipe(7)).
    fn whole_line(&mut self, pieces: impl FnOnce(&mut Out)) {
        self.held = Some(String::new());
        pieces(self);
        if let Some(line) = self.held.take() {
            self.plain(&line);
        }
    }

    fn colored(&mut self, text: &str, color: color::Color) {
        match &self.palette {
            Some(palette) => {
                let painted = palette.paint(text, color);
                self.plain(&painted);
            }
            None => self.plain(text),
        }
    }
}

/// The printer of one `--format`, fed in this order: `run_start`, then per test
/// `test_start` and later `result` (interleaved across tests), then `run_finish`.
pub(crate) trait Printer: Send {
    fn run_start(&mut self, test_count: usize, shuffle_seed: Option<u64>);
    fn test_start(&mut self, desc: &Desc);
    /// The test has run for more than a minute (libtest's warning, multithreaded only).
    fn still_running(&mut self, desc: &Desc);
    fn result(&mut self, desc: &Desc, record: &Record, summary: &Summary);
    fn run_finish(&mut self, summary: &Summary);
}

/// The printer `options` ask for; `multithreaded` as libtest decides it (more than one
/// test thread), which is when pretty output names a test only once it has finished.
pub(crate) fn printer(options: &Options, multithreaded: bool) -> Box<dyn Printer> {
    let out = Out {
        stdout: std::io::stdout(),
        palette: use_color(options).then(Palette::from_env).flatten(),
        held: None,
    };
    match options.format {
        Format::Pretty => Box::new(pretty::Pretty::new(
            out,
            multithreaded,
            options.time,
            options.show_output,
        )),
        Format::Terse => Box::new(terse::Terse::new(out, options.show_output)),
        Format::Json => Box::new(json::Json::new(out, options.show_output)),
        Format::Junit => Box::new(junit::Junit::new(out, options.show_output)),
    }
}

fn use_color(options: &Options) -> bool {
    use std::io::IsTerminal;
    match options.color {
        ColorChoice::Auto => !options.nocapture && std::io::stdout().is_terminal(),
        ColorChoice::Always => true,
        ColorChoice::Never => false,
    }
}

/// `--list`: the selected tests, as libtest lists them for each format.
pub(crate) fn list(options: &Options, tests: &[Desc]) {
    let mut out = std::io::stdout().lock();
    let mut text = String::new();
    match options.format {
        Format::Json => {
            text.push_str("{ \"type\": \"suite\", \"event\": \"discovery\" }\n");
            for desc in tests {
                let source = desc.source;
                text.push_str(&format!(
                    "{{ \"type\": \"test\", \"event\": \"discovered\", \"name\": \"{}\", \
                     \"ignore\": {}, \"ignore_message\": \"{}\", \"source_path\": \"{}\", \
                     \"start_line\": {}, \"start_col\": {}, \"end_line\": {}, \"end_col\": {} }}\n",
                    json::escape(&desc.name),
                    desc.ignore,
                    json::escape(desc.ignore_message.as_deref().unwrap_or("")),
                    json::escape(source.file),
                    source.line,
                    source.column,
                    source.line,
                    source.end_column,
                ));
            }
            let ignored = tests.iter().filter(|d| d.ignore).count();
            text.push_str(&format!(
                "{{ \"type\": \"suite\", \"event\": \"completed\", \"tests\": {n}, \
                 \"benchmarks\": 0, \"total\": {n}, \"ignored\": {ignored} }}\n",
                n = tests.len()
            ));
        }
        Format::Terse | Format::Pretty | Format::Junit => {
            for desc in tests {
                text.push_str(&format!("{}: test\n", desc.name));
            }
            if options.format != Format::Terse {
                if !tests.is_empty() {
                    text.push('\n');
                }
                let noun = if tests.len() == 1 { "test" } else { "tests" };
                text.push_str(&format!("{} {noun}, 0 benchmarks\n", tests.len()));
            }
        }
    }
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// `--logfile`: one line per result, as libtest's log has it.
pub(crate) fn log_line(desc: &Desc, record: &Record) -> String {
    let what = match &record.verdict {
        Verdict::Ok => "ok".to_owned(),
        Verdict::Failed => "failed".to_owned(),
        Verdict::FailedMsg(message) => format!("failed: {message}"),
        Verdict::Ignored(reason) => match reason {
            Some(message) => format!("ignored: {message}"),
            None => "ignored".to_owned(),
        },
        Verdict::TimedFail => "failed (time limit exceeded)".to_owned(),
    };
    let time = record
        .exec_time
        .map_or(String::new(), |t| format!(" <{}>", test_time(t)));
    format!("{what} {}{time}\n", desc.name)
}

/// A test's time as libtest prints it: seconds with three decimals.
pub(crate) fn test_time(time: Duration) -> String {
    format!("{:.3}s", time.as_secs_f64())
}

/// The whole run's time as libtest prints it: seconds with two decimals.
pub(crate) fn suite_time(time: Duration) -> String {
    format!("{:.2}s", time.as_secs_f64())
}

/// The time colour `--report-time` gives a test in pretty output.
pub(crate) fn time_color(time: Duration, options: &TimeOptions) -> Option<color::Color> {
    if time >= options.critical {
        Some(color::Color::Red)
    } else if time >= options.warn {
        Some(color::Color::Yellow)
    } else {
        None
    }
}

/// The `test result: ...` counts shared by pretty and terse output.
fn counts(summary: &Summary) -> String {
    let mut text = format!(
        ". {} passed; {} failed; {} ignored; 0 measured; {} filtered out",
        summary.passed, summary.failed, summary.ignored, summary.filtered_out
    );
    if let Some(time) = summary.exec_time {
        text.push_str(&format!("; finished in {}", suite_time(time)));
    }
    text.push_str("\n\n");
    text
}

/// A `successes:` / `failures:` block: each output under its `---- name stdout ----`
/// header, then the sorted names.
fn sections(out: &mut Out, heading: &str, entries: &[(String, String)]) {
    let mut text = format!("\n{heading}:\n");
    let mut outputs = String::new();
    for (name, output) in entries {
        if !output.is_empty() {
            outputs.push_str(&format!("---- {name} stdout ----\n{output}\n"));
        }
    }
    if !outputs.is_empty() {
        text.push('\n');
        text.push_str(&outputs);
    }
    text.push_str(&format!("\n{heading}:\n"));
    let mut names: Vec<&String> = entries.iter().map(|(name, _)| name).collect();
    names.sort();
    for name in names {
        text.push_str(&format!("    {name}\n"));
    }
    out.plain(&text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(name: &str) -> Desc {
        Desc {
            name: name.into(),
            should_panic: false,
            ignore: false,
            ignore_message: None,
            source: crate::registry::Source::NONE,
        }
    }

    #[test]
    fn a_message_becomes_a_note_after_the_output() {
        let mut summary = Summary::default();
        let record = Record {
            verdict: Verdict::FailedMsg("test did not panic as expected".into()),
            exec_time: None,
            output: "printed\n".into(),
        };
        summary.count(&desc("a"), &record);
        assert_eq!(
            summary.failures,
            [(
                "a".to_owned(),
                "printed\nnote: test did not panic as expected".to_owned()
            )]
        );
        assert!(!summary.success());
        assert_eq!(
            log_line(&desc("a"), &record),
            "failed: test did not panic as expected a\n"
        );
    }

    #[test]
    fn times_are_printed_as_libtest_prints_them() {
        assert_eq!(test_time(Duration::from_micros(120_600)), "0.121s");
        assert_eq!(suite_time(Duration::from_millis(1234)), "1.23s");
        let limits = TimeOptions {
            ensure: false,
            warn: Duration::from_millis(50),
            critical: Duration::from_millis(100),
        };
        assert_eq!(time_color(Duration::from_millis(10), &limits), None);
        assert_eq!(
            time_color(Duration::from_millis(50), &limits),
            Some(color::Color::Yellow)
        );
        assert_eq!(
            time_color(Duration::from_millis(100), &limits),
            Some(color::Color::Red)
        );
    }
}
