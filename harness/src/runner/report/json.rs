//! `--format json` (unstable): one libtest event per line.

use super::{Desc, Out, Printer, Record, Summary, Verdict};

pub(super) struct Json {
    out: Out,
    show_output: bool,
}

impl Json {
    pub(super) fn new(out: Out, show_output: bool) -> Json {
        Json { out, show_output }
    }
}

impl Printer for Json {
    fn run_start(&mut self, test_count: usize, shuffle_seed: Option<u64>) {
        let seed = shuffle_seed.map_or(String::new(), |s| format!(", \"shuffle_seed\": {s}"));
        self.out.plain(&format!(
            "{{ \"type\": \"suite\", \"event\": \"started\", \"test_count\": {test_count}{seed} }}\n"
        ));
    }

    fn test_start(&mut self, desc: &Desc) {
        self.out.plain(&format!(
            "{{ \"type\": \"test\", \"event\": \"started\", \"name\": \"{}\" }}\n",
            escape(&desc.name)
        ));
    }

    fn still_running(&mut self, desc: &Desc) {
        self.out.plain(&format!(
            "{{ \"type\": \"test\", \"event\": \"timeout\", \"name\": \"{}\" }}\n",
            escape(&desc.name)
        ));
    }

    fn result(&mut self, desc: &Desc, record: &Record, _: &Summary) {
        let (event, extra) = match &record.verdict {
            Verdict::Ok => ("ok", None),
            Verdict::Failed => ("failed", None),
            Verdict::FailedMsg(message) => (
                "failed",
                Some(format!("\"message\": \"{}\"", escape(message))),
            ),
            Verdict::TimedFail => ("failed", Some("\"reason\": \"time limit exceeded\"".into())),
            Verdict::Ignored(reason) => (
                "ignored",
                reason
                    .as_ref()
                    .map(|m| format!("\"message\": \"{}\"", escape(m))),
            ),
        };
        let mut line = format!(
            "{{ \"type\": \"test\", \"name\": \"{}\", \"event\": \"{event}\"",
            escape(&desc.name)
        );
        if let Some(time) = record.exec_time {
            line.push_str(&format!(", \"exec_time\": {}", time.as_secs_f64()));
        }
        let shown = self.show_output || record.verdict != Verdict::Ok;
        if shown && !record.output.is_empty() {
            line.push_str(&format!(", \"stdout\": \"{}\"", escape(&record.output)));
        }
        if let Some(extra) = extra {
            line.push_str(", ");
            line.push_str(&extra);
        }
        line.push_str(" }\n");
        self.out.plain(&line);
    }

    fn run_finish(&mut self, s: &Summary) {
        let event = if s.success() { "ok" } else { "failed" };
        let time = s.exec_time.map_or(String::new(), |t| {
            format!(", \"exec_time\": {}", t.as_secs_f64())
        });
        self.out.plain(&format!(
            "{{ \"type\": \"suite\", \"event\": \"{event}\", \"passed\": {}, \"failed\": {}, \
             \"ignored\": {}, \"measured\": 0, \"filtered_out\": {}{time} }}\n",
            s.passed, s.failed, s.ignored, s.filtered_out
        ));
    }
}

/// `text` inside a JSON string, escaped as libtest escapes it: quotes, backslashes and
/// every control character (DEL too); everything else as it is.
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            '\u{8}' => escaped.push_str("\\b"),
            '\t' => escaped.push_str("\\t"),
            '\n' => escaped.push_str("\\n"),
            '\u{c}' => escaped.push_str("\\f"),
            '\r' => escaped.push_str("\\r"),
            c if c < ' ' || c == '\u{7f}' => escaped.push_str(&format!("\\u{:04x}", c as u32)),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            escape("a \"q\"\t\\ é\n\u{1}\u{1b}\u{7f}\u{b}"),
            "a \\\"q\\\"\\t\\\\ é\\n\\u0001\\u001b\\u007f\\u000b"
        );
    }
}
