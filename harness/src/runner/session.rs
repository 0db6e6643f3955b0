//! The one way a run starts and meets the host, for `nstest::main!()`'s runner and for
//! libtest's harness alike: the settings read from the environment once, the probe's
//! sandboxes, the fork server, the host facts, and the one mapping of a test that needs
//! what the host lacks to its outcome.
//!
//! Runs in: the runner process. [`Session::start`] runs while it is single-threaded
//! (before `main`'s first thread, or in libtest's constructor); the rest on any thread.

use std::sync::OnceLock;

use super::client::ForkServer;
use super::diagnosis::HostFacts;
use super::outcome::Outcome;
use super::probe::{self, Missing};
use super::trial::{self, Sandboxed};
use crate::duration;
use crate::error::Result;
use crate::plan::Plan;
use crate::process::direct;
use crate::registry::Test;

/// What a run reads from its environment, once, before its first test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// `NSTEST_TIMEOUT` (the syntax of `timeout = "..."`): the timeout of a test that
    /// names none. Unset or empty means none, as with libtest.
    pub default_timeout_secs: Option<u64>,
    /// `NSTEST_UNSUPPORTED=skip`: a test that needs what the host lacks is skipped (the
    /// default, `fail`, fails it).
    pub skip_unsupported: bool,
}

impl Settings {
    /// Reads the settings from the process environment.
    ///
    /// # Errors
    ///
    /// A message naming the variable and what it accepts.
    pub(crate) fn from_env() -> std::result::Result<Settings, String> {
        Settings::from_values(
            std::env::var("NSTEST_TIMEOUT").ok().as_deref(),
            std::env::var("NSTEST_UNSUPPORTED").ok().as_deref(),
        )
    }

    fn from_values(
        timeout: Option<&str>,
        unsupported: Option<&str>,
    ) -> std::result::Result<Settings, String> {
        let default_timeout_secs = match timeout.map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                duration::parse_timeout(text)
                    .map_err(|why| format!("NSTEST_TIMEOUT={text:?} is not a timeout: {why}"))?,
            ),
        };
        let skip_unsupported = match unsupported.map(str::trim) {
            None | Some("") | Some("fail") => false,
            Some("skip") => true,
            Some(other) => {
                return Err(format!(
                    "NSTEST_UNSUPPORTED={other:?} is not understood; use `fail` (the default) \
                     or `skip`"
                ));
            }
        };
        Ok(Settings {
            default_timeout_secs,
            skip_unsupported,
        })
    }

    /// Seconds after which `test` is killed: its own `timeout`, else `NSTEST_TIMEOUT`.
    pub(crate) fn timeout_of(&self, test: &Test) -> Option<u64> {
        test.timeout_secs.or(self.default_timeout_secs)
    }
}

/// What a run will run, as far as it knows when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runs {
    /// Any number of tests: a fork server and a pool of slots. `one_thread`: the runner
    /// runs them one at a time on this thread (`--test-threads 1`), and keeps its fork
    /// server and slot on the CPU it runs on (see `process::fork_server::start`).
    ///
    /// `memory_limits`: a test of the run may have a `memory` limit, so the fork server
    /// makes the run's `memory` cgroup too (see `sandbox::leaf::open_run`). The runner
    /// decides it, since only it knows: under libtest's harness the fork server starts in
    /// a constructor, possibly before the constructors that register the tests.
    Many {
        one_thread: bool,
        memory_limits: bool,
    },
    /// One test at most, on this thread, which stays the only one (`nstest::main!()`):
    /// the runner forks the sandbox itself.
    OneHere,
    /// One test at most, on a thread libtest starts later: one lone slot, forked now.
    OneLater,
}

/// How a run's sandboxes are started.
pub(crate) enum Launcher {
    /// Through the fork server and its slots (or one lone slot, [`Runs::OneLater`]).
    Server(ForkServer),
    /// Forked by the runner itself: a run of one test (see `process::direct`).
    Direct,
}

/// A started run: its settings, how it starts sandboxes and what it learns about the host.
pub(crate) struct Session {
    pub settings: Settings,
    pub launcher: Launcher,
    /// The probe's sandboxes, made before the fork server started (so they exist in it).
    probes: Vec<&'static Test>,
    /// Read the first time a failure is worded or the host is probed.
    facts: OnceLock<HostFacts>,
}

impl Session {
    /// Makes the probe's sandboxes (the first one with `probe_needs`) and forks the fork
    /// server; for a run of one test (see [`Runs`]), the runner instead forks that test's
    /// sandbox itself, or one lone slot for it (`process::direct`): a fork server and a
    /// pool would only add processes to the test's own. `probe_needs` holds every kind a
    /// sandbox of the run may have: what is read for them beforehand (`sandbox::prepare`)
    /// is read for these alone. Must run while the process is single-threaded, once every
    /// test exists; with [`Runs::OneHere`] it must stay so.
    ///
    /// # Errors
    ///
    /// Why the fork server could not start.
    pub(crate) fn start(settings: Settings, probe_needs: Plan, runs: Runs) -> Result<Session> {
        // Under tarpaulin's ptrace engine without --follow-exec the forked sandboxes would
        // hang or crash: this stops the run at once, with the fix, before the first fork.
        super::tracer::refuse_tarpaulin_without_follow_exec();
        let probes = probe::probe_tests(probe_needs);
        // What a test's network needs from the host's view (capture files, clocks) is
        // opened now, while this process is the only one of the run, so every test
        // process inherits it.
        crate::network::prepare();
        let launcher = match runs {
            Runs::Many {
                one_thread,
                memory_limits,
            } => Launcher::Server(ForkServer::start(one_thread, memory_limits, &probe_needs)?),
            Runs::OneHere => {
                direct::prepare(&probe_needs)?;
                Launcher::Direct
            }
            Runs::OneLater => Launcher::Server(ForkServer::start_alone(&probe_needs)?),
        };
        Ok(Session {
            settings,
            launcher,
            probes,
            facts: OnceLock::new(),
        })
    }

    /// The host facts a diagnosis reads, read once.
    pub(crate) fn facts(&self) -> &HostFacts {
        self.facts.get_or_init(HostFacts::read)
    }

    /// Runs `test` in its sandbox with the run's timeout for it.
    ///
    /// # Errors
    ///
    /// Why the test could not be started (a pipe or the fork server failed).
    pub(crate) fn run_sandboxed(&self, test: &'static Test, capture: bool) -> Result<Sandboxed> {
        trial::run_sandboxed(
            &self.launcher,
            test,
            capture,
            self.settings.timeout_of(test),
        )
    }

    /// Ends the run's fork server, if it has one, once every test has ended.
    pub(crate) fn stop(&self) {
        match &self.launcher {
            Launcher::Server(server) => server.stop(),
            Launcher::Direct => direct::stop(),
        }
    }

    /// What the host lacks of `needed`, found by running the probe's sandboxes.
    pub(crate) fn find_missing(&self, needed: &Plan) -> Vec<Missing> {
        probe::find_missing(needed, self.facts(), |i| {
            match self.run_sandboxed(self.probes[i], true) {
                Ok(Sandboxed {
                    outcome:
                        Outcome::SetupFailed {
                            step,
                            errno,
                            detail,
                        },
                    ..
                }) => Some((step, errno, detail)),
                _ => None,
            }
        })
    }

    /// The outcome of a test that needs what the host lacks, without running it: skipped
    /// with `NSTEST_UNSUPPORTED=skip`, else failed naming what is missing. `None` when
    /// the host has all it needs.
    pub(crate) fn outcome_if_lacking(&self, missing: &[Missing], plan: &Plan) -> Option<Outcome> {
        let missing = probe::missing_for(missing, plan)?;
        let kind = missing.kind.name();
        Some(if self.settings.skip_unsupported {
            Outcome::Skipped { kind }
        } else {
            Outcome::HostLacks {
                kind,
                detail: missing.detail.clone(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_the_timeout_and_the_unsupported_mode() {
        assert_eq!(
            Settings::from_values(None, None),
            Ok(Settings {
                default_timeout_secs: None,
                skip_unsupported: false
            })
        );
        assert_eq!(
            Settings::from_values(Some(" 90s "), Some("skip")),
            Ok(Settings {
                default_timeout_secs: Some(90),
                skip_unsupported: true
            })
        );
        assert_eq!(
            Settings::from_values(Some(""), Some("fail")).map(|s| s.skip_unsupported),
            Ok(false)
        );
        let bad = Settings::from_values(Some("soon"), None).unwrap_err();
        assert!(
            bad.starts_with("NSTEST_TIMEOUT=\"soon\" is not a timeout"),
            "{bad}"
        );
        let bad = Settings::from_values(None, Some("maybe")).unwrap_err();
        assert!(bad.contains("use `fail` (the default) or `skip`"), "{bad}");
    }
}
