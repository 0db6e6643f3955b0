//! The network namespace: only `lo`, brought up.

use crate::error::{Error, Result};
use crate::sys;

/// Brings `lo` up. A new network namespace has only `lo`, and it starts down
/// (network_namespaces(7)); once up, the kernel gives it 127.0.0.1/8 and ::1, and root of
/// the owning user namespace may bind any port, 80 included.
///
/// # Errors
///
/// The ioctl that failed.
pub(crate) fn bring_loopback_up() -> Result<()> {
    sys::bring_loopback_up().map_err(|(call, source)| Error::BringLoopbackUp { call, source })
}
