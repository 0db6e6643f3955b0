//! The user namespace: the test runs as uid 0 / gid 0, mapped to the invoking user.

use std::io::Write;

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

use crate::error::{Error, Result};
use crate::protocol::Step;

/// Maps uid 0 and gid 0 inside to `uid`/`gid` outside, in the order user_namespaces(7)
/// requires for an unprivileged writer: `uid_map`, then `deny` in `setgroups` (which must
/// precede `gid_map`), then `gid_map`. Each map can be written only once. As real root the
/// same sequence works, and the process keeps full capabilities inside.
///
/// # Errors
///
/// The write that failed; EPERM on `uid_map` is the signature of AppArmor's
/// `kernel.apparmor_restrict_unprivileged_userns`.
pub(crate) fn write_id_maps(uid: Uid, gid: Gid) -> Result<()> {
    write_proc_file(
        Step::WriteUidMap,
        "/proc/self/uid_map",
        &format!("0 {uid} 1\n"),
    )?;
    write_proc_file(Step::DenySetgroups, "/proc/self/setgroups", "deny\n")?;
    write_proc_file(
        Step::WriteGidMap,
        "/proc/self/gid_map",
        &format!("0 {gid} 1\n"),
    )
}

/// Writes `content` to a /proc control file in a single write(2), as the id map and
/// time offset files require.
pub(crate) fn write_proc_file(step: Step, path: &'static str, content: &str) -> Result<()> {
    let error = |source: Errno| Error::WriteProcFile {
        step,
        path,
        content: content.to_owned(),
        source,
    };
    let errno = |e: std::io::Error| error(Errno::from_raw(e.raw_os_error().unwrap_or(0)));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(errno)?;
    let written = file.write(content.as_bytes()).map_err(errno)?;
    if written != content.len() {
        // The kernel takes these files in one write or not at all; a short write would
        // leave a half-configured namespace.
        return Err(error(Errno::EIO));
    }
    Ok(())
}
