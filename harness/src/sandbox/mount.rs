//! The mount namespace: the host's whole tree read-only, fresh tmpfs where a test may
//! write (`/tmp`, `/var/tmp`, `/dev/shm`, `CARGO_TARGET_TMPDIR`), and the host paths that
//! must stay reachable bound back into it: `writable` paths and the coverage profile
//! directories read-write, the working directory, the test binary and the package and
//! target directories read-only where a fresh tmpfs would hide them.
//!
//! Everything here runs in the outer of the test's two user namespaces (see
//! [`super::enter`]): the read-only flags it sets are locked when the mount namespace is
//! copied into the inner one (mount_namespaces(7), "Restrictions on mount namespaces").

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;

use crate::error::Step;
use crate::error::{Error, Result};
use crate::sys;

use crate::plan::Plan;

/// Where a fresh, empty tmpfs hides the host's directory: the places programs write
/// scratch files to (`/dev/shm` holds POSIX shared memory and semaphores).
const FRESH: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// What every test's view needs from the host, read once in the runner before the fork
/// server is forked ([`prepare`]), so that no sandbox process reads or allocates it.
#[derive(Debug, Default)]
pub(crate) struct HostPaths {
    /// The runner's working directory, re-entered after the mounts.
    cwd: Option<&'static str>,
    /// The directory of the test binary and the target directory above it.
    binary_dirs: Vec<&'static str>,
    /// The coverage profile directories (which must stay writable), created if missing.
    profile_dirs: Vec<&'static str>,
    /// The entries of [`FRESH`] that are real directories on this host.
    fresh: Vec<&'static str>,
    /// Whether the host delegated the runner's cgroup to this (unprivileged) user.
    pub(crate) cgroup_delegated: bool,
}

static HOST_PATHS: OnceLock<HostPaths> = OnceLock::new();

/// Reads [`HostPaths`], keeping `profile_dirs` writable in every view. Called by the runner
/// while still single-threaded, before it forks the fork server.
pub(crate) fn prepare(profile_dirs: &[std::path::PathBuf]) {
    let _ = HOST_PATHS.get_or_init(|| HostPaths::read(profile_dirs));
}

/// What [`prepare`] read; every sandbox is forked after it.
pub(crate) fn host_paths() -> &'static HostPaths {
    HOST_PATHS
        .get()
        .expect("sandbox::prepare runs in the runner before the fork server is forked")
}

fn leak(path: &Path) -> Option<&'static str> {
    Some(Box::leak(path.to_str()?.to_owned().into_boxed_str()))
}

impl HostPaths {
    fn read(profile_dirs: &[std::path::PathBuf]) -> HostPaths {
        let cwd = std::env::current_dir().ok();
        let mut binary_dirs = Vec::new();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned))
        {
            // Cargo marks its target directory with CACHEDIR.TAG; the binary sits in
            // `<target>/<profile>/deps` (or `<target>/<triple>/<profile>/deps`).
            if let Some(target) = dir.ancestors().find(|d| d.join("CACHEDIR.TAG").is_file()) {
                binary_dirs.extend(leak(target));
            }
            binary_dirs.extend(leak(&dir));
        }
        let profile_dirs = profile_dirs
            .iter()
            .filter(|dir| std::fs::create_dir_all(dir).is_ok())
            .filter_map(|dir| leak(dir))
            .collect();
        let fresh = FRESH
            .into_iter()
            .filter(|dir| std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()))
            .collect();
        HostPaths {
            cwd: cwd.as_deref().and_then(leak),
            binary_dirs,
            profile_dirs,
            fresh,
            cgroup_delegated: super::cgroup::delegated_to_caller(),
        }
    }

    /// Whether `path` lies in (or is) a directory a fresh tmpfs hides.
    fn under_fresh(&self, path: &str) -> bool {
        self.fresh
            .iter()
            .any(|dir| Path::new(path).starts_with(dir))
    }
}

/// Makes every mount recursively private, so nothing the test mounts propagates back to
/// the host, and nothing the host mounts appears mid-test (mount_namespaces(7),
/// "Shared subtrees"). Must come before any other mount.
///
/// # Errors
///
/// `mount(2)`'s errno.
pub(crate) fn make_mounts_private() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|source| Error::Mount {
        step: Step::MakeMountsPrivate,
        source_name: "none",
        target: "/",
        fstype: "",
        flags: "MS_REC|MS_PRIVATE",
        data: "",
        source,
    })
}

/// Builds the test's view of the files, in the order the kernel needs: the host paths to
/// bind back are opened first (a fresh tmpfs hides them), `CARGO_TARGET_TMPDIR` is
/// created if cargo has not yet, then every mount is made read-only in one call, `/proc`
/// writable again (the id maps and time offsets of the inner namespaces are written
/// there, and it is the kernel's view of the test's own namespaces, guarded by its own
/// permission checks), the fresh tmpfs mounted, the held paths bound back, and a fresh
/// tmpfs put on `CARGO_TARGET_TMPDIR`. Must come after [`make_mounts_private`]: a bind's
/// source must be a mount of the caller's own mount namespace (mount(2), EINVAL).
///
/// # Errors
///
/// The first failing call; a `writable` path that cannot be opened is
/// [`Error::Writable`], naming it.
pub(crate) fn build_read_only_view(plan: &Plan) -> Result<()> {
    let host = host_paths();
    let held = hold(plan, host)?;
    if let Some(dir) = plan.target_tmpdir {
        // Cargo creates it when it builds the test; if someone removed it since, the
        // directory is cargo's to have, and a mount point is needed.
        if !Path::new(dir).is_dir() {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    make_host_read_only()?;
    keep_proc_writable()?;
    for dir in &host.fresh {
        mount_fresh_tmpfs(dir, plan.limits.disk)?;
    }
    bind_back(held, host)?;
    if let Some(dir) = plan.target_tmpdir.filter(|dir| Path::new(dir).is_dir()) {
        mount_fresh_tmpfs(dir, plan.limits.disk)?;
    }
    Ok(())
}

/// `mount_setattr("/", AT_RECURSIVE, MOUNT_ATTR_RDONLY)`: every mount of the tree
/// read-only at once (Linux 5.12+). It also makes `/proc` read-only, hence
/// [`keep_proc_writable`].
fn make_host_read_only() -> Result<()> {
    sys::mount_setattr(c"/", true, libc::MOUNT_ATTR_RDONLY, 0).map_err(|source| {
        Error::MountSetattr {
            step: Step::MakeReadOnly,
            path: "/",
            change: "AT_RECURSIVE, set MOUNT_ATTR_RDONLY",
            source,
        }
    })
}

fn keep_proc_writable() -> Result<()> {
    sys::mount_setattr(c"/proc", false, 0, libc::MOUNT_ATTR_RDONLY).map_err(|source| {
        Error::MountSetattr {
            step: Step::MakeReadOnly,
            path: "/proc",
            change: "clear MOUNT_ATTR_RDONLY",
            source,
        }
    })
}

/// Mounts an empty tmpfs on `target` (world-writable and sticky, as `/tmp` must be). tmpfs
/// may be mounted by root of a user namespace (`FS_USERNS_MOUNT`), on a read-only mount
/// point too, and the new mount is writable; `nosuid,nodev` are the flags such a mount
/// gets anyway. With `size` (the test's `disk`), writes beyond it fail with ENOSPC
/// (tmpfs(5)): each such tmpfs holds at most that much, in the host's memory.
///
/// # Errors
///
/// `mount(2)`'s errno.
pub(crate) fn mount_fresh_tmpfs(target: &'static str, size: Option<u64>) -> Result<()> {
    let sized;
    let data = match size {
        Some(bytes) => {
            sized = format!("mode=1777,size={bytes}");
            sized.as_str()
        }
        None => "mode=1777",
    };
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(data),
    )
    .map_err(|source| Error::Mount {
        step: Step::MountTmp,
        source_name: "tmpfs",
        target,
        fstype: "tmpfs",
        flags: "MS_NOSUID|MS_NODEV",
        data: if size.is_some() {
            "mode=1777,size=<disk>"
        } else {
            "mode=1777"
        },
        source,
    })
}

/// A host path held open across the mounts that hide it or make it read-only.
struct Held {
    fd: OwnedFd,
    path: &'static str,
    writable: bool,
}

/// Opens every host path the view binds back: `writable` paths and profile directories
/// (read-write, wherever they are), and the working directory, the binary's directories
/// and the package root where they lie under a fresh tmpfs (read-only; elsewhere the
/// read-only root shows them). A read-only path inside another held one is left out, as
/// the outer bind (recursive) shows it; the rest come back shortest path first, so an
/// inner bind lands on top of an outer one. Directories whose path is not UTF-8 are left
/// out.
fn hold(plan: &Plan, host: &HostPaths) -> Result<Vec<Held>> {
    let mut wanted: Vec<(&'static str, bool)> = Vec::new();
    wanted.extend(plan.writable.iter().map(|path| (*path, true)));
    wanted.extend(host.profile_dirs.iter().map(|path| (*path, true)));
    let target_dir = plan.target_tmpdir.and_then(parent_of);
    let visible = host
        .cwd
        .iter()
        .chain(&host.binary_dirs)
        .chain(plan.manifest_dir.iter())
        .chain(target_dir.iter())
        .copied()
        .filter(|path| host.under_fresh(path) && !host.fresh.contains(path));
    for path in visible {
        let covered = wanted
            .iter()
            .any(|(other, _)| Path::new(path).starts_with(other));
        if !covered {
            wanted.retain(|(other, writable)| *writable || !Path::new(other).starts_with(path));
            wanted.push((path, false));
        }
    }
    wanted.sort_by_key(|(path, _)| Path::new(path).components().count());
    let mut held = Vec::with_capacity(wanted.len());
    for (path, writable) in wanted {
        let opened = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty());
        let fd = match opened {
            Ok(fd) => fd,
            Err(source) if plan.writable.contains(&path) => {
                return Err(Error::Writable { path, source });
            }
            // A directory of the run that is gone (the working directory was removed)
            // has nothing to show.
            Err(Errno::ENOENT) => continue,
            Err(source) => {
                return Err(Error::Sys {
                    call: "open(a host path to keep in the sandbox, O_PATH)",
                    source,
                });
            }
        };
        held.push(Held { fd, path, writable });
    }
    Ok(held)
}

fn parent_of(path: &'static str) -> Option<&'static str> {
    Path::new(path).parent()?.to_str()
}

/// Binds each held path back at its own path (through `/proc/self/fd`, which names what
/// the descriptor holds, not what the path shows now), creating its mount point in a
/// fresh tmpfs where needed. A bind copies the flags of its source, read-only included,
/// so a writable one has the flag cleared again: allowed here, where it is not locked.
fn bind_back(held: Vec<Held>, host: &HostPaths) -> Result<()> {
    for Held { fd, path, writable } in held {
        if host.under_fresh(path) {
            make_mount_point(path, &fd)?;
        }
        let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
        mount(
            Some(source.as_str()),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|source| Error::Mount {
            step: Step::BindHostPath,
            source_name: "/proc/self/fd/<the host path>",
            target: path,
            fstype: "",
            flags: "MS_BIND|MS_REC",
            data: "",
            source,
        })?;
        if writable {
            let c_path = std::ffi::CString::new(path).map_err(|_| Error::Sys {
                call: "a writable path with a NUL byte",
                source: Errno::EINVAL,
            })?;
            clear_read_only(&c_path, path)?;
        }
    }
    Ok(())
}

fn clear_read_only(c_path: &CStr, path: &'static str) -> Result<()> {
    sys::mount_setattr(c_path, true, 0, libc::MOUNT_ATTR_RDONLY).map_err(|source| {
        Error::MountSetattr {
            step: Step::BindHostPath,
            path,
            change: "AT_RECURSIVE, clear MOUNT_ATTR_RDONLY",
            source,
        }
    })
}

/// Creates `path` inside a fresh tmpfs as what `fd` holds: a directory, or an empty file
/// (a file can only be bound onto a file). An existing path (inside a bind made before)
/// is left as it is.
fn make_mount_point(path: &'static str, fd: &OwnedFd) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    let is_dir = nix::sys::stat::fstat(fd)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(true);
    let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
    let made = std::fs::create_dir_all(parent).and_then(|()| {
        if is_dir {
            std::fs::create_dir(path)
        } else {
            std::fs::File::create(path).map(drop)
        }
    });
    made.map_err(|e| Error::MountPoint {
        path,
        source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    })
}

/// Enters the working directory again: a process keeps its old one across new mounts, so
/// without this a test started in `/tmp/x` would still write to the host's `/tmp/x`.
///
/// # Errors
///
/// chdir(2)'s errno.
pub(crate) fn reenter_working_directory() -> Result<()> {
    let Some(cwd) = host_paths().cwd else {
        return Ok(());
    };
    nix::unistd::chdir(cwd).map_err(|source| Error::ChangeDirectory { path: cwd, source })
}
