//! Per-host clocks: the time namespace a host's `command` children enter, with offsets
//! relative to the test process's own clocks. Set up in the test process (the offsets are
//! read and written out before the fork); applied in the child between fork and exec.
//!
//! A new time namespace starts with its creator's offsets, and `timens_offsets` takes
//! absolute values (relative to the host's clocks, time_namespaces(7)), so a host's offsets
//! are the test's own (non-zero when the test has `time = ...`) plus the host's shift.

use std::process::Command;
use std::sync::Arc;

use nix::errno::Errno;

use super::error::Error;
use super::host_view;

/// A host's clock: its shift from the test's clocks, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Clock {
    pub(super) offset_secs: i64,
}

impl Clock {
    /// Makes `command`'s child enter a time namespace with this clock.
    ///
    /// # Errors
    ///
    /// Reading the test's own offsets.
    pub(super) fn apply(self, command: &mut Command) -> Result<(), Error> {
        let own = std::fs::read_to_string("/proc/self/timens_offsets").map_err(|e| Error::Sys {
            call: "read(\"/proc/self/timens_offsets\")".into(),
            source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        let offsets = self.offsets(&own).ok_or(Error::Sys {
            call: format!("parse(/proc/self/timens_offsets: {own:?})"),
            source: Errno::EINVAL,
        })?;
        let proc = match &host_view::view().proc {
            Some(fd) => fd.try_clone(),
            None => std::fs::File::open("/proc").map(Into::into),
        }
        .map_err(|e| Error::Sys {
            call: "open(\"/proc\")".into(),
            source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        crate::sys::enter_new_timens_before_exec(command, Arc::new(proc), offsets.into_bytes());
        Ok(())
    }

    /// The text to write to the new namespace's `timens_offsets`, from the test's own
    /// (`own`, as that file reads: `monotonic <secs> <nanos>` and `boottime ...` lines).
    fn offsets(self, own: &str) -> Option<String> {
        let mut out = String::new();
        for clock in ["monotonic", "boottime"] {
            let line = own
                .lines()
                .find(|l| l.split_whitespace().next() == Some(clock))?;
            let mut fields = line.split_whitespace().skip(1);
            let secs: i64 = fields.next()?.parse().ok()?;
            let nanos: i64 = fields.next()?.parse().ok()?;
            out.push_str(&format!(
                "{clock} {} {nanos}\n",
                secs.checked_add(self.offset_secs)?
            ));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_shift_adds_to_the_test_s_own_offsets() {
        let own = "monotonic       3600         0\nboottime         -5     12345\n";
        let clock = Clock { offset_secs: 30 };
        assert_eq!(
            clock.offsets(own).unwrap(),
            "monotonic 3630 0\nboottime 25 12345\n"
        );
        assert_eq!(
            Clock { offset_secs: -30 }
                .offsets("monotonic 0 0\nboottime 0 0\n")
                .unwrap(),
            "monotonic -30 0\nboottime -30 0\n"
        );
        assert_eq!(clock.offsets("garbage"), None);
    }
}
