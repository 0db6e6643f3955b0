//! Runs in: the runner, once, before it forks the fork server ([`prepare`]); read in the
//! test processes, which inherit what it opened. Descriptors of the host's own view of the
//! filesystem, for what a test must reach outside its sandbox: where packet captures are
//! written, and the `/proc` through which a host's clock is set.
//!
//! A test with a mount namespace sees the host's tree read-only (see `sandbox::mount`), and
//! a fresh tmpfs on `/tmp`; its `/proc` is read-only too. A descriptor opened before the
//! sandbox existed still names the host's mount, writable as it was: the capture files land
//! in the target directory (or the host's temporary directory), where they outlive the
//! test, and `timens_offsets` can be written. `O_PATH` descriptors: nothing is read or
//! created until a test asks, and they cost one `open` per run.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

/// A directory of the host's view, by descriptor, with its absolute path as the host
/// names it.
#[derive(Debug)]
pub(super) struct Dir {
    pub(super) fd: OwnedFd,
    pub(super) path: PathBuf,
}

#[derive(Debug, Default)]
pub(super) struct HostView {
    /// The target directory of the test binary (`target/debug`, above `deps`).
    pub(super) target: Option<Dir>,
    /// The host's temporary directory, where captures go when the target directory is not
    /// writable (as for CI's unprivileged pass, which runs root's build).
    pub(super) temp: Option<Dir>,
    /// The host's `/proc`.
    pub(super) proc: Option<OwnedFd>,
}

static VIEW: OnceLock<HostView> = OnceLock::new();

/// Opens the host's view. The runner calls it while it is still the only process of the
/// run, before the fork server (so every test process inherits it).
pub(crate) fn prepare() {
    let _ = view();
}

/// The view opened by [`prepare`], or opened now (then as this process sees it).
pub(super) fn view() -> &'static HostView {
    VIEW.get_or_init(|| HostView {
        target: target_dir().and_then(|path| open_dir(&path)),
        temp: open_dir(&std::env::temp_dir()),
        proc: open_path(Path::new("/proc")),
    })
}

/// The directory above the test binary's `deps` (or `examples`), else the binary's own.
fn target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let named = |name: &str| dir.file_name().is_some_and(|n| n == name);
    if named("deps") || named("examples") {
        dir.parent().map(Path::to_owned)
    } else {
        Some(dir.to_owned())
    }
}

fn open_dir(path: &Path) -> Option<Dir> {
    let path = path.canonicalize().ok()?;
    Some(Dir {
        fd: open_path(&path)?,
        path,
    })
}

fn open_path(path: &Path) -> Option<OwnedFd> {
    open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()
}
