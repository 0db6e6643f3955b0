//! `--format junit` (unstable): one JUnit XML document, written when the run ends.

use std::time::Duration;

use super::{Desc, Out, Printer, Record, Summary, Verdict};

pub(super) struct Junit {
    out: Out,
    show_output: bool,
    /// Every result in the order it came, since the suite's counts head the document.
    results: Vec<(Desc, Record)>,
}

impl Junit {
    pub(super) fn new(out: Out, show_output: bool) -> Junit {
        Junit {
            out,
            show_output,
            results: Vec::new(),
        }
    }
}

/// Output as CDATA on one line: newlines (and the sequences CDATA cannot hold) are
/// stepped out of the section, as libtest does it.
fn cdata(text: &str) -> String {
    let text = text
        .replace("]]>", "]]]]><![CDATA[>")
        .replace("<?", "<]]><![CDATA[?")
        .replace('\n', "]]>&#xA;<![CDATA[")
        .replace("<![CDATA[]]>", "");
    format!("<![CDATA[{text}]]>")
}

/// The time attribute: seconds as Rust prints an `f64`, `0` without `--report-time`.
fn seconds(time: Option<Duration>) -> f64 {
    time.unwrap_or_default().as_secs_f64()
}

impl Printer for Junit {
    fn run_start(&mut self, _: usize, _: Option<u64>) {
        self.out.plain("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    }

    fn test_start(&mut self, _: &Desc) {}

    fn still_running(&mut self, _: &Desc) {}

    fn result(&mut self, desc: &Desc, record: &Record, _: &Summary) {
        self.results.push((desc.clone(), record.clone()));
    }

    fn run_finish(&mut self, summary: &Summary) {
        let mut xml = format!(
            "<testsuites><testsuite name=\"test\" package=\"test\" id=\"0\" errors=\"0\" \
             failures=\"{}\" tests=\"{}\" skipped=\"{}\" >",
            summary.failed, summary.total, summary.ignored
        );
        for (desc, record) in &self.results {
            // nstest's tests are integration tests (a `tests/` target), which libtest
            // files under the class `integration` with their whole name.
            let case = format!(
                "<testcase classname=\"integration\" name=\"{}\" time=\"{}\"",
                desc.name,
                seconds(record.exec_time)
            );
            let output = |xml: &mut String| {
                if !record.output.is_empty() {
                    xml.push_str("<system-out>");
                    xml.push_str(&cdata(&record.output));
                    xml.push_str("</system-out>");
                }
            };
            match &record.verdict {
                Verdict::Ignored(_) => {}
                Verdict::Failed => {
                    xml.push_str(&case);
                    xml.push_str("><failure type=\"assert\"/>");
                    output(&mut xml);
                    xml.push_str("</testcase>");
                }
                Verdict::FailedMsg(message) => {
                    xml.push_str(&case);
                    // libtest writes the message as it is (and stops at a newline in
                    // it); here newlines become character references.
                    xml.push_str(&format!(
                        "><failure message=\"{}\" type=\"assert\"/>",
                        message.replace('\n', "&#xA;")
                    ));
                    output(&mut xml);
                    xml.push_str("</testcase>");
                }
                Verdict::TimedFail => {
                    xml.push_str(&case);
                    xml.push_str("><failure type=\"timeout\"/></testcase>");
                }
                Verdict::Ok => {
                    xml.push_str(&case);
                    if record.output.is_empty() || !self.show_output {
                        xml.push_str("/>");
                    } else {
                        xml.push('>');
                        output(&mut xml);
                        xml.push_str("</testcase>");
                    }
                }
            }
        }
        xml.push_str("<system-out/><system-err/></testsuite></testsuites>\n");
        self.out.plain(&xml);
    }
}

#[cfg(test)]
mod tests {
    use super::cdata;

    #[test]
    fn output_stays_on_one_line_and_inside_cdata() {
        assert_eq!(
            cdata("a\n\nb ]]> <?x\n"),
            "<![CDATA[a]]>&#xA;&#xA;<![CDATA[b ]]]]><![CDATA[> <]]><![CDATA[?x]]>&#xA;<![CDATA[]]>"
        );
    }
}
