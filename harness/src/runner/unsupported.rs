//! The runner on platforms without Linux namespaces: lists tests, and fails each one that
//! runs with a message saying why, instead of running it without isolation.

use libtest_mimic::{Arguments, Trial};

use crate::registry;

/// Runs (that is, refuses) every registered test and exits like libtest.
pub fn run_main() -> ! {
    run_main_then(|| {})
}

/// [`run_main`], calling `in_runner` first.
pub fn run_main_then(in_runner: fn()) -> ! {
    in_runner();
    let args = Arguments::from_args();
    let trials = registry::all_tests()
        .into_iter()
        .map(|test| {
            Trial::test(test.name(), || {
                Err(
                    "nstest needs Linux namespaces; this platform has none, so the test \
                     was not run"
                        .into(),
                )
            })
            .with_ignored_flag(test.ignore)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

/// `#[ns_test]` under libtest's harness, on a platform without Linux namespaces: each test
/// fails saying why, instead of running without isolation.
pub mod libtest {
    use crate::registry::Test;

    /// Nothing to start here.
    pub fn start() {}

    /// Fails the test: it needs Linux namespaces. (A `#[should_panic]` test fails by
    /// returning, so that the refusal is not taken for the panic it wants.)
    pub fn run(_test: &'static Test, should_panic: bool) {
        let why = "nstest needs Linux namespaces; this platform has none, so the test was not run";
        if should_panic {
            println!("{why}");
            return;
        }
        panic!("{why}")
    }
}

/// The silent-skip guard has nothing to guard where no test can run.
pub mod guard {
    /// Nothing to arm here.
    pub fn arm() {}
}
