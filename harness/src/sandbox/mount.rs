//! The mount namespace: private propagation and a fresh `/tmp`.

use nix::mount::{MsFlags, mount};

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
