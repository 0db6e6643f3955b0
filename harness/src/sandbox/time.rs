//! The time namespace: offsets on CLOCK_MONOTONIC and CLOCK_BOOTTIME.

use super::TimeOffsets;
use super::user::{ProcLine, write_proc_file};
use crate::error::Result;
use crate::protocol::Step;

/// Writes the clock offsets of the time namespace created by `unshare(CLONE_NEWTIME)`.
///
/// time_namespaces(7): the caller itself stays in its old time namespace; its children
/// enter the new one when they are forked. The offsets can be written only until the
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
