//! The time namespace: offsets on CLOCK_MONOTONIC and CLOCK_BOOTTIME.

use super::user::{ProcLine, write_proc_file};
use crate::plan::TimeOffsets;
use std::os::fd::OwnedFd;

use crate::error::Step;
use crate::error::{Error, Result};

/// Writes the clock offsets of the time namespace created by `unshare(CLONE_NEWTIME)`.
///
/// time_namespaces(7): the caller itself stays in its old time namespace; its children
/// enter the new one when they are forked, and it can enter it itself with
/// [`enter_time_namespace`]. The offsets can be written only until the
/// first process enters (then EACCES), so this runs before the fork. An offset that would
/// make a clock negative, or exceeds about 146 years, gives ERANGE.
///
/// # Errors
///
/// The write of `/proc/self/timens_offsets` that failed.
pub(crate) fn apply_time_offsets(offsets: TimeOffsets) -> Result<()> {
    let line = ProcLine::new()
        .text("monotonic ")
        .int(offsets.monotonic)
        .text(" 0\nboottime ")
        .int(offsets.boottime)
        .text(" 0\n");
    write_proc_file(Step::WriteTimeOffsets, c"/proc/self/timens_offsets", &line)
}

/// Moves the calling process into the time namespace it created, which so far only its
/// future children would enter (`/proc/self/ns/time_for_children`, setns(2)). Only a
/// single-threaded process may (EUSERS otherwise), and the offsets must be written first:
/// once a process is in the namespace they can no longer change (time_namespaces(7)).
///
/// # Errors
///
/// The `open(2)` or `setns(2)` that failed.
pub(crate) fn enter_time_namespace() -> Result<()> {
    let sys_error = |call| move |source| Error::Sys { call, source };
    let fd: OwnedFd = nix::fcntl::open(
        c"/proc/self/ns/time_for_children",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys_error("open(/proc/self/ns/time_for_children)"))?;
    nix::sched::setns(fd, super::CLONE_NEWTIME)
        .map_err(sys_error("setns(time_for_children, CLONE_NEWTIME)"))
}
