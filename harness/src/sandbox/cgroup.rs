//! The cgroup namespace: `/proc/self/cgroup` reads `0::/` (cgroup_namespaces(7)), and with
//! a mount namespace a fresh cgroup2 mount on `/sys/fs/cgroup` shows the test's own
//! subtree, read-only unless the host delegated it to the user running the tests.

use nix::mount::{MsFlags, mount};

use crate::error::Step;
use crate::error::{Error, Result};

/// Whether the runner's cgroup (v2) is delegated to the calling user: its directory is
/// owned by the caller, who is not root. Root owns every undelegated cgroup too, so for
/// root nothing tells a delegated cgroup from the host's own, and the mount stays
/// read-only: a test must not create cgroups that outlive it on the host.
pub(crate) fn delegated_to_caller() -> bool {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        return false;
    }
    let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else {
        return false;
    };
    let Some(path) = own.lines().find_map(|line| line.strip_prefix("0::")) else {
        return false;
    };
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    // mountinfo(5): field 5 is the mount point; the filesystem type follows " - ".
    let Some(root) = mounts.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        rest.starts_with("cgroup2 ")
            .then(|| fields.split(' ').nth(4))
            .flatten()
    }) else {
        return false;
    };
    let dir = format!("{root}{}", path.trim_end());
    std::fs::metadata(dir).is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == euid.as_raw()
    })
}

/// Mounts a fresh cgroup2 on `/sys/fs/cgroup`. Its root is the root of the caller's
/// cgroup namespace, that is the cgroup the sandbox started in. Read-only unless
/// `delegated`; made in the outer user namespace, where it is then locked, so a test
/// running as the host's root cannot make it writable and leave cgroups behind.
///
/// # Errors
///
/// `mount(2)`'s errno.
pub(crate) fn mount_fresh_cgroup(delegated: bool) -> Result<()> {
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let (flags, shown) = if delegated {
        (base, "MS_NOSUID|MS_NODEV|MS_NOEXEC")
    } else {
        (
            base | MsFlags::MS_RDONLY,
            "MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_RDONLY",
        )
    };
    mount(
        Some("cgroup2"),
        "/sys/fs/cgroup",
        Some("cgroup2"),
        flags,
        None::<&str>,
    )
    .map_err(|source| Error::Mount {
        step: Step::MountCgroup,
        source_name: "cgroup2",
        target: "/sys/fs/cgroup",
        fstype: "cgroup2",
        flags: shown,
        data: "",
        source,
    })
}
