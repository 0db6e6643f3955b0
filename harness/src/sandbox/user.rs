//! The user namespace: the test runs as uid 0 / gid 0, mapped to the invoking user.

use std::ffi::CStr;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, write};

use crate::error::Step;
use crate::error::{Error, Result};
use crate::sys;

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
    write_maps(uid, gid, |id| {
        ProcLine::new().text("0 ").int(i64::from(id)).text(" 1\n")
    })
}

/// Maps `uid`/`gid` to themselves: the outer user namespace of a sandbox with a mount
/// namespace (see `sandbox::enter`). Its processes keep the capabilities `unshare` gave
/// them; the inner namespace, nested in it, then maps 0 to the same ids, so that inside
/// `/proc/self/uid_map` reads `0 <your uid> 1`, as with one level.
///
/// # Errors
///
/// The write that failed, as for [`write_id_maps`].
pub(crate) fn write_identity_maps(uid: Uid, gid: Gid) -> Result<()> {
    write_maps(uid, gid, |id| {
        let id = i64::from(id);
        ProcLine::new().int(id).text(" ").int(id).text(" 1\n")
    })
}

/// `uid_map`, `deny` to `setgroups`, `gid_map`, in that order, each the line `map` makes
/// of the outer id.
fn write_maps(uid: Uid, gid: Gid, map: impl Fn(u32) -> ProcLine) -> Result<()> {
    write_proc_file(Step::WriteUidMap, c"/proc/self/uid_map", &map(uid.as_raw()))?;
    write_proc_file(
        Step::DenySetgroups,
        c"/proc/self/setgroups",
        &ProcLine::new().text("deny\n"),
    )?;
    write_proc_file(Step::WriteGidMap, c"/proc/self/gid_map", &map(gid.as_raw()))
}

/// One line for a /proc control file, built on the stack without `core::fmt`: this runs
/// in a fresh fork, where each heap page written and each code page run for the first
/// time (the formatting machinery's included) is a page fault.
pub(crate) struct ProcLine {
    buf: [u8; 128],
    len: usize,
}

impl ProcLine {
    pub(crate) fn new() -> ProcLine {
        ProcLine {
            buf: [0; 128],
            len: 0,
        }
    }

    /// Appends `text`. The longest line, two time offsets of 20 characters each, takes
    /// about 70 bytes, so running out of room is a bug.
    pub(crate) fn text(mut self, text: &str) -> ProcLine {
        let end = self.len + text.len();
        self.buf[self.len..end].copy_from_slice(text.as_bytes());
        self.len = end;
        self
    }

    /// Appends `n` in decimal.
    pub(crate) fn int(self, n: i64) -> ProcLine {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = n.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let line = if n < 0 { self.text("-") } else { self };
        line.text(std::str::from_utf8(&digits[at..]).expect("ASCII digits"))
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Writes `line` to a /proc control file in a single write(2), as the id map and time
/// offset files require, opening it without allocating.
pub(crate) fn write_proc_file(step: Step, path: &'static CStr, line: &ProcLine) -> Result<()> {
    let bytes = line.bytes();
    let error = |source: Errno| Error::WriteProcFile {
        step,
        path: path.to_str().unwrap_or("/proc"),
        content: String::from_utf8_lossy(bytes).into_owned(),
        source,
    };
    let file = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(error)?;
    let written = sys::retry_on_eintr(|| write(&file, bytes)).map_err(error)?;
    if written != bytes.len() {
        // The kernel takes these files in one write or not at all; a short write would
        // leave a half-configured namespace.
        return Err(error(Errno::EIO));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ProcLine;

    fn text(line: ProcLine) -> String {
        String::from_utf8(line.bytes().to_vec()).unwrap()
    }

    #[test]
    fn lines_format_like_the_kernel_reads_them() {
        let map = |id| ProcLine::new().text("0 ").int(id).text(" 1\n");
        assert_eq!(text(map(0)), "0 0 1\n");
        assert_eq!(text(map(1000)), "0 1000 1\n");
        assert_eq!(text(map(4_294_967_295)), "0 4294967295 1\n");
        assert_eq!(text(ProcLine::new().int(-3600)), "-3600");
        assert_eq!(text(ProcLine::new().int(i64::MIN)), "-9223372036854775808");
        assert_eq!(text(ProcLine::new().int(i64::MAX)), "9223372036854775807");
    }
}
