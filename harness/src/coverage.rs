//! Coverage through forked tests: in a binary built with `-C instrument-coverage`
//! (`cargo llvm-cov`, `cargo llvm-cov nextest`, `cargo tarpaulin --engine llvm`), makes
//! the LLVM profile runtime count what each test process runs, once. In any other binary
//! every function here is one load of a null pointer and returns.
//!
//! Layer 2 of docs/src/architecture.md: depends on `sys` only.
//!
//! Runs in: the runner ([`prepare`], [`profile_dirs`]), the fork server ([`stop_writing`],
//! inherited by every slot and init it forks) and each test process ([`count_from_here`],
//! [`write_counts`]).
//!
//! The runtime counts in memory and writes its `.profraw` file from an `atexit` handler.
//! Three things of that go wrong under a fork server, and each has its remedy here:
//!
//! - A forked child inherits its parent's counters, so what `main` ran before the fork
//!   server would be counted once more by every test process. A test process therefore
//!   resets its counters first thing; the runner, which never forks after that point,
//!   writes what ran before the tests exactly once, at its own exit.
//! - The sandbox processes end with `_exit(2)`, which skips `atexit`. A test process
//!   writes its counts itself just before; the fork server, the slots and the inits are
//!   marked as already written, so they never write, even if one ended through `exit`.
//! - `%p` in `LLVM_PROFILE_FILE` is expanded once, at start-up, so every test process
//!   would name its file after the runner; a PID namespace's test is PID 2 in all of them.
//!   A pattern with `%m` (cargo-llvm-cov's and tarpaulin's, and rustc's default) merges
//!   into a pool of files under a lock, where a shared name is harmless. A pattern
//!   without `%m` is given one for the test processes (`cov-%p.profraw` becomes
//!   `cov-%p-%m.profraw`, in the same directory), and a relative one is made absolute
//!   against the runner's working directory, so that a test that changes directory still
//!   writes beside the others. The test process also exports that pattern as
//!   `LLVM_PROFILE_FILE`, for the instrumented programs it spawns, which write their own
//!   profiles.
//!
//! In continuous mode (`%c`) the counters are the file's pages, shared by every forked
//! process, so nothing is reset, renamed or written: each process counts straight into
//! the file. A test that ends by a signal or a timeout never reaches [`write_counts`], and
//! its own counts are lost (what it spawned keeps its own).

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use crate::sys;

/// The variable the runtime reads its file pattern from at start-up.
const PATTERN_VARIABLE: &str = "LLVM_PROFILE_FILE";

/// What the runner found out about the profile runtime, before it forked.
#[derive(Debug, PartialEq, Eq)]
struct Profile {
    /// Counters mapped onto the file (`%c`): nothing to do in any process.
    continuous: bool,
    /// The pattern test processes write with, when it differs from the one the runtime
    /// read at start-up.
    tests_pattern: Option<CString>,
    /// The directories profiles are written to: what must stay writable in a sandbox.
    dirs: Vec<PathBuf>,
}

/// Set once, in the runner, before the fork server is forked; every process inherits it.
static PROFILE: OnceLock<Option<Profile>> = OnceLock::new();

/// The profile of an instrumented binary; `None` (one load) in any other.
fn profile() -> Option<&'static Profile> {
    if !sys::profiler_linked() {
        return None;
    }
    PROFILE.get_or_init(read_profile).as_ref()
}

/// Reads the runtime's mode and `LLVM_PROFILE_FILE` against the working directory.
fn read_profile() -> Option<Profile> {
    let continuous = sys::profile_is_continuous();
    let cwd = std::env::current_dir().ok();
    let given = std::env::var_os(PATTERN_VARIABLE).filter(|pattern| !pattern.is_empty());
    let Some(given) = given else {
        // The runtime's own default (rustc's `default_%m_%p.profraw`, or the directory of
        // `-C profile-generate=DIR`) is left alone; it merges, and is relative to the
        // working directory.
        return Some(Profile {
            continuous,
            tests_pattern: None,
            dirs: cwd.into_iter().collect(),
        });
    };
    let tests = pattern_for_tests(Path::new(&given), cwd.as_deref());
    let dirs = profile_dir(&tests).into_iter().collect();
    let tests_pattern = (tests.as_os_str() != given.as_os_str() && !continuous)
        .then(|| CString::new(tests.into_os_string().into_vec()).ok())
        .flatten();
    Some(Profile {
        continuous,
        tests_pattern,
        dirs,
    })
}

/// The pattern a test process writes with: `given`, absolute (against `cwd`), with a
/// merge specifier `%m` before the extension when it has none.
fn pattern_for_tests(given: &Path, cwd: Option<&Path>) -> PathBuf {
    let absolute = match cwd {
        Some(cwd) if given.is_relative() => cwd.join(given),
        _ => given.to_owned(),
    };
    if has_merge_specifier(absolute.as_os_str().as_bytes()) {
        return absolute;
    }
    let Some(name) = absolute.file_name() else {
        return absolute;
    };
    let name = name.as_bytes();
    let merged = match name.iter().rposition(|&b| b == b'.').filter(|&dot| dot > 0) {
        Some(dot) => [&name[..dot], b"-%m", &name[dot..]].concat(),
        None => [name, b"-%m"].concat(),
    };
    absolute.with_file_name(OsString::from_vec(merged))
}

/// Whether `pattern` has `%m` or `%<N>m`, the runtime's merge-pool specifier
/// (compiler-rt's `getMergePoolSize`).
fn has_merge_specifier(pattern: &[u8]) -> bool {
    pattern.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && pattern[i + 1..]
                .iter()
                .find(|c| !c.is_ascii_digit())
                .is_some_and(|&c| c == b'm')
    })
}

/// The directory profiles of `pattern` go to: its parent, up to the first component that
/// holds a specifier (the runtime creates the rest when it writes). `None` when that
/// leaves no absolute directory.
fn profile_dir(pattern: &Path) -> Option<PathBuf> {
    let parent = pattern.parent()?;
    let fixed: PathBuf = parent
        .components()
        .take_while(|part| match part {
            Component::Normal(name) => !name.as_bytes().contains(&b'%'),
            _ => true,
        })
        .collect();
    fixed.is_absolute().then_some(fixed)
}

/// The directories the profile runtime writes to, which must stay writable in every view
/// of the host a sandbox gives a test; empty when the binary is not instrumented. Read
/// once, in the runner before it forks (see [`prepare`]), so it costs a forked process
/// nothing.
pub(crate) fn profile_dirs() -> &'static [PathBuf] {
    profile().map_or(&[], |p| &p.dirs)
}

/// In the runner, before the fork server is forked: reads what every process needs, so
/// none of them reads it again.
pub(crate) fn prepare() {
    let _ = profile();
}

/// In the fork server right after its fork: neither it nor any slot or init it forks ever
/// writes a profile; only test processes, after [`count_from_here`], do.
pub(crate) fn stop_writing() {
    if profile().is_some_and(|p| !p.continuous) {
        sys::profile_set_dumped();
    }
}

/// First thing in a test process: forgets the counts it inherited and names its file.
pub(crate) fn count_from_here() {
    let Some(profile) = profile().filter(|p| !p.continuous) else {
        return;
    };
    sys::profile_reset_counters();
    if let Some(pattern) = &profile.tests_pattern {
        sys::profile_set_filename(pattern);
        sys::set_env_single_threaded(PATTERN_VARIABLE, OsStr::from_bytes(pattern.as_bytes()));
    }
}

/// Last thing in a test process, before `_exit(2)`: writes what it counted since
/// [`count_from_here`]. A failure is printed by the runtime to the test's stderr.
pub(crate) fn write_counts() {
    if profile().is_some_and(|p| !p.continuous) {
        let _ = sys::profile_write_file();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unexpected_cfgs)] // `cfg(coverage)`: set by cargo-llvm-cov, which links the runtime.
    fn a_plain_build_has_no_profile_runtime() {
        assert_eq!(sys::profiler_linked(), cfg!(coverage));
        assert_eq!(profile_dirs().is_empty(), !cfg!(coverage));
    }

    #[test]
    fn merge_specifiers_are_found_as_the_runtime_parses_them() {
        for merging in ["a-%m.profraw", "a-%p-%8m.profraw", "%12m", "x_%m-%p"] {
            assert!(has_merge_specifier(merging.as_bytes()), "{merging}");
        }
        for not in ["a-%p.profraw", "a.profraw", "%", "a-%8p", "a-%h-%c", "m%"] {
            assert!(!has_merge_specifier(not.as_bytes()), "{not}");
        }
    }

    #[test]
    fn a_merging_absolute_pattern_is_kept() {
        let given = Path::new("/t/ws-%p-%m.profraw");
        assert_eq!(pattern_for_tests(given, Some(Path::new("/c"))), given);
    }

    #[test]
    fn a_pattern_without_merge_gets_one_before_the_extension() {
        let cwd = Some(Path::new("/work/x"));
        let cases = [
            ("/t/cov-%p.profraw", "/t/cov-%p-%m.profraw"),
            ("/t/cov.profraw", "/t/cov-%m.profraw"),
            ("/t/cov", "/t/cov-%m"),
            ("/t/.profraw", "/t/.profraw-%m"),
            ("rel/cov-%p.profraw", "/work/x/rel/cov-%p-%m.profraw"),
        ];
        for (given, tests) in cases {
            assert_eq!(pattern_for_tests(Path::new(given), cwd), Path::new(tests));
        }
        assert_eq!(
            pattern_for_tests(Path::new("rel-%m.profraw"), cwd),
            Path::new("/work/x/rel-%m.profraw")
        );
    }

    #[test]
    fn the_profile_dir_stops_at_the_first_specifier() {
        let dir = |p: &str| profile_dir(Path::new(p));
        assert_eq!(dir("/t/target/ws-%p-%m.profraw"), Some("/t/target".into()));
        assert_eq!(dir("/t/run-%p/x/a.profraw"), Some("/t".into()));
        assert_eq!(dir("/a.profraw"), Some("/".into()));
        assert_eq!(dir("rel/a.profraw"), None);
        assert_eq!(dir("%t/a.profraw"), None);
    }
}
