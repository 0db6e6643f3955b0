//! The mount namespace: private propagation and a fresh `/tmp` (which keeps the coverage
//! profile directory, when that lies under `/tmp`).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};
use crate::wire::Step;

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

/// Mounts an empty tmpfs on `/tmp` (world-writable and sticky, as `/tmp` must be). tmpfs
/// may be mounted by root of a user namespace (`FS_USERNS_MOUNT`); `nosuid,nodev` are the
/// flags such a mount gets anyway.
///
/// # Errors
///
/// `mount(2)`'s errno.
pub(crate) fn mount_fresh_tmp() -> Result<()> {
    mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
    .map_err(|source| Error::Mount {
        step: Step::MountTmp,
        source_name: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: "MS_NOSUID|MS_NODEV",
        data: "mode=1777",
        source,
    })
}

/// Directories under `/tmp` that must outlive the fresh `/tmp`, held open across its mount.
pub(crate) struct KeptUnderTmp(Vec<(OwnedFd, &'static str)>);

/// Opens each directory of `dirs` that lies under `/tmp` (but is not `/tmp` itself), before
/// [`mount_fresh_tmp`] hides it, so that [`bind_back_under_tmp`] can put it back. The
/// coverage profile directory is such a one when the target directory is under `/tmp`:
/// without it, the test's profile would go to its own tmpfs and vanish with it. Must come
/// after [`make_mounts_private`]: a bind's source must be a mount of the caller's own
/// mount namespace (mount(2), EINVAL), and these descriptors then point into its copy.
/// Directories whose path is not UTF-8 are left out.
///
/// # Errors
///
/// `open(2)`'s errno.
pub(crate) fn hold_under_tmp(dirs: &'static [PathBuf]) -> Result<KeptUnderTmp> {
    let mut kept = Vec::new();
    for dir in dirs {
        let under_tmp = dir.starts_with("/tmp") && dir != Path::new("/tmp");
        let Some(path) = dir.to_str().filter(|_| under_tmp) else {
            continue;
        };
        let fd = open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|source| Error::Sys {
            call: "open(profile directory under /tmp, O_PATH|O_DIRECTORY)",
            source,
        })?;
        kept.push((fd, path));
    }
    Ok(KeptUnderTmp(kept))
}

/// Binds each directory [`hold_under_tmp`] held back to its path inside the fresh `/tmp`
/// (through `/proc/self/fd`, which names the directory the descriptor holds, not the
/// path's new meaning), so that what is written there reaches the host's directory.
///
/// # Errors
///
/// `mkdir(2)`'s or `mount(2)`'s errno.
pub(crate) fn bind_back_under_tmp(kept: KeptUnderTmp) -> Result<()> {
    for (fd, path) in kept.0 {
        std::fs::create_dir_all(path).map_err(|e| Error::Sys {
            call: "mkdir -p (profile directory inside the fresh /tmp)",
            source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        })?;
        let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
        mount(
            Some(source.as_str()),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|source| Error::Mount {
            step: Step::MountTmp,
            source_name: "/proc/self/fd/<the profile directory>",
            target: path,
            fstype: "",
            flags: "MS_BIND|MS_REC",
            data: "",
            source,
        })?;
    }
    Ok(())
}
