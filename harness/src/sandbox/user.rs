//! The user namespace: the test runs as uid 0 / gid 0, mapped to the invoking user.

use std::ffi::CStr;
use std::io::Write;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, write};

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
        c"/proc/self/uid_map",
        format_args!("0 {uid} 1\n"),
    )?;
    write_proc_file(
        Step::DenySetgroups,
        c"/proc/self/setgroups",
        format_args!("deny\n"),
    )?;
    write_proc_file(
        Step::WriteGidMap,
        c"/proc/self/gid_map",
        format_args!("0 {gid} 1\n"),
    )
}

/// Writes `content` to a /proc control file in a single write(2), as the id map and
/// time offset files require. It is formatted on the stack and the file opened without
/// allocating: this runs in a fresh fork, where each heap page touched costs a page fault.
pub(crate) fn write_proc_file(
    step: Step,
    path: &'static CStr,
    content: std::fmt::Arguments<'_>,
) -> Result<()> {
    let mut buf = [0u8; 128];
    let len = {
        let mut rest = &mut buf[..];
        // The longest content, two time offsets of 20 digits each, takes about 70 bytes.
        rest.write_fmt(content)
            .expect("a /proc control line fits in 128 bytes");
        128 - rest.len()
    };
    let bytes = &buf[..len];
    let error = |source: Errno| Error::WriteProcFile {
        step,
        path: path.to_str().unwrap_or("/proc"),
        content: String::from_utf8_lossy(bytes).into_owned(),
        source,
    };
    let file = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(error)?;
    let written = loop {
        match write(&file, bytes) {
            Err(Errno::EINTR) => {}
            other => break other.map_err(error)?,
        }
    };
    if written != bytes.len() {
        // The kernel takes these files in one write or not at all; a short write would
        // leave a half-configured namespace.
        return Err(error(Errno::EIO));
    }
    Ok(())
}
