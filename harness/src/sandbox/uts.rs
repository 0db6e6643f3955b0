//! The UTS namespace: the test's own hostname.

use crate::error::{Error, Result};

/// Sets the hostname inside the test's UTS namespace (sethostname(2)); the host's is
/// untouched. The macro has already checked that the name fits `HOST_NAME_MAX`.
///
/// # Errors
///
/// `sethostname(2)`'s errno.
pub(crate) fn set_hostname(name: &'static str) -> Result<()> {
    nix::unistd::sethostname(name).map_err(|source| Error::SetHostname { name, source })
}
