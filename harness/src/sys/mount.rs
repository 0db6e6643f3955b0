//! `mount_setattr(2)`, which `nix` does not wrap: the read-only view of the host in one call.
//!
//! Runs in: the process that builds a test's mount namespace.
#![allow(unsafe_code)]

use nix::errno::Errno;

/// Changes the mount attributes of the mount at `path` (and, with `recursive`, of every
/// mount below it) in one call: `set` and `clear` are `MOUNT_ATTR_*` bits. See
/// mount_setattr(2) (Linux 5.12+):
/// <https://man7.org/linux/man-pages/man2/mount_setattr.2.html>.
///
/// # Errors
///
/// mount_setattr(2)'s errno: ENOSYS on kernels older than 5.12, EPERM where the caller
/// lacks `CAP_SYS_ADMIN` over the mount namespace or an attribute is locked.
pub(crate) fn mount_setattr(
    path: &std::ffi::CStr,
    recursive: bool,
    set: u64,
    clear: u64,
) -> Result<(), Errno> {
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `path` is a NUL-terminated string and `attr` a `mount_attr` on this stack
    // frame, both live for the whole call, and the size passed is that struct's (rule 2).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as libc::c_uint,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(ret).map(drop)
}
