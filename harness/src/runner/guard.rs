//! The silent-skip guard: a binary that holds `#[ns_test]`s but never runs them fails.
//!
//! Runs in any binary built without libtest's harness (no `cfg(test)`) that holds
//! `#[ns_test]` functions: the macro emits there a constructor calling [`arm`]. If the
//! process then exits normally without `nstest::main!()` (or `run_main`) having started,
//! its tests were compiled into a binary whose `main` does not run them, typically a
//! `harness = false` target with a `main` of its own; a green run would be a lie, so the
//! exit handler names each test on stderr and ends the process with status 101.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::registry;
use crate::sys;

/// Set once nstest's runner has taken over `main`.
static RUNNER_STARTED: AtomicBool = AtomicBool::new(false);
static ARMED: Once = Once::new();

/// Registers the check for process exit, once. Called by the constructors the macro
/// emits outside libtest's harness.
pub fn arm() {
    ARMED.call_once(|| sys::at_exit(check_at_exit));
}

/// Tells the guard that nstest's runner runs this binary's tests.
pub(crate) fn runner_started() {
    RUNNER_STARTED.store(true, Ordering::Relaxed);
}

extern "C" fn check_at_exit() {
    if RUNNER_STARTED.load(Ordering::Relaxed) {
        return;
    }
    let tests: Vec<_> = registry::all_tests()
        .into_iter()
        .filter(|test| !in_a_doc_example(test.path))
        .collect();
    if tests.is_empty() {
        return;
    }
    let mut text = String::new();
    for test in &tests {
        text.push_str(&unrun_line(test.name()));
    }
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
    sys::exit_now(101)
}

/// Whether a test is written in a documentation example: rustdoc builds examples into a
/// runner of its own (crate `rust_out`; merged examples in modules `__doctest_N`), which
/// runs their `main`s or only compiles them (`no_run`), never nstest's. `cfg(doctest)`
/// cannot tell: rustdoc sets it while collecting examples, not while compiling them.
fn in_a_doc_example(path: &str) -> bool {
    let mut segments = path.split("::");
    segments.next() == Some("rust_out")
        || segments.next().is_some_and(|m| m.starts_with("__doctest_"))
}

/// The line that names a test no harness ran.
fn unrun_line(name: &str) -> String {
    format!(
        "nstest: the #[ns_test] `{name}` never ran: this binary's `main` does not run its \
         tests; end a `harness = false` target with `nstest::main!()`, or remove \
         `harness = false` so that libtest runs it\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_examples_are_rustdocs_to_run() {
        assert!(in_a_doc_example("rust_out::binds_port_80"));
        assert!(in_a_doc_example("doctest_bundle_2024::__doctest_3::talks"));
        assert!(!in_a_doc_example("service::binds_port_80"));
        assert!(!in_a_doc_example("service::tests::__doctest"));
    }

    #[test]
    fn the_line_names_the_test_and_the_fix() {
        let line = unrun_line("tests::binds_80");
        assert!(line.starts_with("nstest: the #[ns_test] `tests::binds_80` never ran"));
        assert!(line.contains("nstest::main!()"));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }
}
