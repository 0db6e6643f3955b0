//! The PID namespace: a fresh `/proc` that shows only the namespace's processes, mounted
//! by its init. (The namespace itself is created by the slot's `clone(2)`, and init's
//! reaping is in `process::reap`.)

use nix::mount::{MsFlags, mount};

use crate::error::Step;
use crate::error::{Error, Result};

/// Mounts a fresh procfs on `/proc`, so `/proc` lists only the PID namespace's processes.
/// Must run inside the new PID namespace (the procfs belongs to the mounter's PID
/// namespace). The kernel refuses (EPERM) where the host's /proc has parts hidden by
/// over-mounts, as in Docker and Kubernetes (mount(2), proc(5)).
///
/// # Errors
///
/// `mount(2)`'s errno.
pub(crate) fn mount_fresh_proc() -> Result<()> {
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|source| Error::Mount {
        step: Step::MountProc,
        source_name: "proc",
        target: "/proc",
        fstype: "proc",
        flags: "MS_NOSUID|MS_NODEV|MS_NOEXEC",
        data: "",
        source,
    })
}
