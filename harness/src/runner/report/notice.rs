//! What nstest says on stderr beside libtest's output: what the host lacks (before the
//! tests), and which tests left processes behind or were skipped (after them). On stderr
//! so that stdout stays what libtest prints, for the tools that parse it.

use crate::runner::probe::Missing;

/// What the host lacks and how to fix it, once each, before the first test.
pub(crate) fn missing_kinds(missing: &[Missing], skip: bool) -> String {
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

/// After the summary: the passing tests that left processes running (`(name, count)`,
/// failed ones say it in their failure text) and how many tests were skipped for what
/// (`(kind, name)`).
pub(crate) fn leaks_and_skips(
    leaked: &mut [(String, u32)],
    skipped: &[(&'static str, String)],
) -> String {
    let mut text = String::new();
    if !leaked.is_empty() {
        leaked.sort();
        text.push_str(
            "\nnstest: LEAK: these tests passed but left processes running, which nstest \
             killed:\n",
        );
        for (name, count) in leaked.iter() {
            text.push_str(&format!("    {name} ({count} {})\n", processes(*count)));
        }
    }
    let mut kinds: Vec<&str> = skipped.iter().map(|(kind, _)| *kind).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let count = skipped.iter().filter(|(k, _)| *k == kind).count();
        text.push_str(&format!(
            "nstest: skipped {count} test{} that need{} {kind}, which this host cannot create \
             (NSTEST_UNSUPPORTED=skip)\n",
            if count == 1 { "" } else { "s" },
            if count == 1 { "s" } else { "" },
        ));
    }
    text
}

/// Under libtest's harness, at once: a passing test that left processes running.
pub(crate) fn leaked_one(name: &str, count: u32) -> String {
    format!(
        "nstest: LEAK: {name} passed but left {count} {} running, which nstest killed\n",
        processes(count)
    )
}

/// Under libtest's harness, at once: a test skipped for what the host lacks (libtest
/// cannot mark a running test ignored).
pub(crate) fn skipped_one(name: &str, kind: &str) -> String {
    format!(
        "nstest: {name} skipped: needs {kind}, which this host cannot create \
         (NSTEST_UNSUPPORTED=skip)\n"
    )
}

fn processes(count: u32) -> &'static str {
    if count == 1 { "process" } else { "processes" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaks_and_skips_are_counted_and_named() {
        let mut leaked = vec![("b".to_owned(), 2), ("a".to_owned(), 1)];
        let skipped = [
            ("time namespaces", "x".to_owned()),
            ("time namespaces", "y".to_owned()),
        ];
        assert_eq!(
            leaks_and_skips(&mut leaked, &skipped),
            "\nnstest: LEAK: these tests passed but left processes running, which nstest \
             killed:\n    a (1 process)\n    b (2 processes)\nnstest: skipped 2 tests that \
             need time namespaces, which this host cannot create (NSTEST_UNSUPPORTED=skip)\n"
        );
        assert_eq!(leaks_and_skips(&mut [], &[]), "");
        assert_eq!(
            leaked_one("t", 1),
            "nstest: LEAK: t passed but left 1 process running, which nstest killed\n"
        );
    }
}
