//! The test's own wall clock (`wall = "..."`, `nstest::wall`), set up in the test process.
//!
//! The kernel has no per-namespace CLOCK_REALTIME (time_namespaces(7)), so the clock is
//! shifted where it is read, in two places:
//!
//! - In the test process, the test binary's own definitions of the C library's clock
//!   functions (`sys::clock`) add an offset, one atomic word, to the true wall clock.
//!   Every thread reads the same word, so a jump is seen by all of them at once.
//! - Programs the test starts are new images, reached only through the dynamic linker:
//!   the preload library built from `shim/wall.c` goes into `LD_PRELOAD`, and the offset
//!   from the true clock into [`OFFSET_VAR`]. The library is written into a memfd of the
//!   test process (nothing on disk, nothing to clean up) and named by its `/proc` path.
//!   A jump updates the variable, so programs started later follow it; a program keeps
//!   the offset it started with. The environment is changed by publishing a new copy
//!   (`sys::publish_env`), which is safe while the test's threads read it.
//!
//! The offset is always from the true clock, never from the process's start, so a child
//! started at any moment reads the same wall clock as the test at that moment, and the
//! clock runs at the true rate.

use std::ffi::OsString;
use std::os::fd::{AsFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::plan::Wall;
use crate::sys;

/// The environment variable that carries the offset to the programs a test starts:
/// nanoseconds from the true wall clock, signed decimal.
pub(crate) const OFFSET_VAR: &str = "NSTEST_WALL_OFFSET_NS";

/// The preload library, built by `build.rs` (empty where no C compiler was found).
static SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libnstest_wall.so"));

/// Whether this process has set `LD_PRELOAD` and [`OFFSET_VAR`] for its children.
static CHILDREN_FOLLOW: AtomicBool = AtomicBool::new(false);

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Looks up the C library's clock functions once in the runner, before anything is forked,
/// so that no process of the run does it later (see `sys::clock`).
pub(crate) fn prepare() {
    sys::resolve_real_clocks();
}

/// Starts the test's wall clock, in the test process before the test runs: programs the
/// test starts are made to follow it, then it is moved to where `wall` says.
///
/// # Errors
///
/// The call that failed while writing the preload library into a memfd.
pub(crate) fn start(wall: Wall) -> Result<()> {
    let offset_ns = match wall {
        Wall::Offset { secs } => secs.saturating_mul(NANOS_PER_SEC),
        Wall::At { unix_secs, nanos } => {
            let target = i128::from(unix_secs) * i128::from(NANOS_PER_SEC) + i128::from(nanos);
            clamp(target - true_wall_ns())
        }
    };
    let_children_follow()?;
    move_to(offset_ns);
    Ok(())
}

/// The wall clock's offset from the true one in this process, in nanoseconds.
pub(crate) fn offset_ns() -> i64 {
    sys::wall_offset_ns()
}

/// The true wall clock, in nanoseconds since the epoch.
pub(crate) fn true_wall_ns() -> i128 {
    sys::true_wall_ns()
}

/// Makes this process's wall clock read the true one plus `offset_ns`, in every thread at
/// once, and in the programs it starts from now on.
pub(crate) fn move_to(offset_ns: i64) {
    sys::set_wall_offset_ns(offset_ns);
    if CHILDREN_FOLLOW.load(Ordering::Relaxed) {
        sys::publish_env(&[(OFFSET_VAR, &OsString::from(offset_ns.to_string()))]);
    }
}

/// Writes the preload library into a memfd and sets `LD_PRELOAD` and [`OFFSET_VAR`] for
/// the programs this process starts, once: at the start of a test with `wall`, or at the
/// first jump of a test without (threads may run then: see `sys::publish_env`).
///
/// # Errors
///
/// The call that failed while writing the preload library into a memfd.
pub(crate) fn let_children_follow() -> Result<()> {
    if CHILDREN_FOLLOW.load(Ordering::Relaxed) {
        return Ok(());
    }
    if SHIM.is_empty() {
        eprintln!(
            "nstest: nstest was built without a C compiler, so without its wall-clock \
             preload library: programs this test starts read the true wall clock"
        );
        return Ok(());
    }
    let path = write_shim()?;
    let preload = match std::env::var_os("LD_PRELOAD").filter(|value| !value.is_empty()) {
        Some(others) => {
            let mut value = OsString::from(&path);
            value.push(":");
            value.push(others);
            value
        }
        None => OsString::from(&path),
    };
    let offset = OsString::from(offset_ns().to_string());
    sys::publish_env(&[("LD_PRELOAD", &preload), (OFFSET_VAR, &offset)]);
    CHILDREN_FOLLOW.store(true, Ordering::Relaxed);
    Ok(())
}

/// Writes [`SHIM`] into a memfd that stays open (close-on-exec) until the process exits,
/// and returns the path through which the programs it starts open it:
/// `/proc/<pid>/fd/<fd>`, with the pid as the mounted `/proc` numbers it (the test's own
/// `/proc` under a PID namespace, the host's otherwise), read from `/proc/self`.
fn write_shim() -> Result<String> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let sys_error = |call| move |source| Error::Sys { call, source };
    // MFD_EXEC (Linux 6.3): executable even where `vm.memfd_noexec` makes memfds
    // non-executable by default; older kernels reject the flag, and make every memfd
    // executable.
    let exec = MFdFlags::from_bits_retain(libc::MFD_EXEC);
    let fd = memfd_create(c"nstest-wall", MFdFlags::MFD_CLOEXEC | exec)
        .or_else(|_| memfd_create(c"nstest-wall", MFdFlags::MFD_CLOEXEC))
        .map_err(sys_error("memfd_create(\"nstest-wall\", MFD_CLOEXEC)"))?;
    let mut left = SHIM;
    while !left.is_empty() {
        let n = sys::retry_on_eintr(|| nix::unistd::write(fd.as_fd(), left)).map_err(sys_error(
            "write(memfd \"nstest-wall\", the preload library)",
        ))?;
        left = &left[n..];
    }
    let pid = std::fs::read_link("/proc/self").map_err(|e| Error::Sys {
        call: "readlink(\"/proc/self\")",
        source: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    })?;
    let fd = fd.into_raw_fd();
    Ok(format!("/proc/{}/fd/{fd}", pid.display()))
}

/// `offset_ns` clamped into an `i64`: about ±292 years from now.
fn clamp(offset_ns: i128) -> i64 {
    offset_ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The offset that makes the wall clock read `to` now.
///
/// # Errors
///
/// A sentence, when `to` is more than about 292 years from the true clock.
pub(crate) fn offset_to(to: SystemTime) -> std::result::Result<i64, String> {
    let target = match to.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    };
    i64::try_from(target - true_wall_ns())
        .map_err(|_| format!("{to:?} is more than 292 years from the true clock"))
}

/// The offset after moving the clock forward by `by` from `offset_ns`.
///
/// # Errors
///
/// A sentence, when the clock would be more than about 292 years ahead of the true one.
pub(crate) fn offset_after(offset_ns: i64, by: Duration) -> std::result::Result<i64, String> {
    i64::try_from(by.as_nanos())
        .ok()
        .and_then(|by| offset_ns.checked_add(by))
        .ok_or_else(|| format!("advancing by {by:?} would put the clock more than 292 years ahead"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_from_the_true_clock() {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let offset = offset_to(now + day).unwrap();
        assert!(
            (offset - 86_400 * NANOS_PER_SEC).abs() < NANOS_PER_SEC,
            "{offset}"
        );
        let offset = offset_to(UNIX_EPOCH - day).unwrap();
        assert!(offset < -86_400 * NANOS_PER_SEC, "{offset}");
        assert!(offset_to(now + day * 365 * 300).is_err());
        assert_eq!(offset_after(5, Duration::from_nanos(7)), Ok(12));
        assert!(offset_after(i64::MAX - 1, Duration::from_nanos(2)).is_err());
        assert!(offset_after(0, Duration::MAX).is_err());
    }

    #[test]
    fn the_shim_is_built_and_is_a_shared_library() {
        assert!(SHIM.starts_with(b"\x7fELF"), "no C compiler at build time?");
    }
}
