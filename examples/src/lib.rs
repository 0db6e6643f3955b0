//! Small, real components of the kinds nstest is for, and the suites in `tests/` that
//! test them hermetically:
//!
//! - [`status`]: an HTTP status service that must listen on port 80;
//! - [`hits`]: an async (axum) service counting hits, also on port 80;
//! - [`clock`]: uptime, leases and rate limits on CLOCK_BOOTTIME and `Instant`;
//! - [`token`]: session tokens that expire, on the wall clock (`SystemTime`);
//! - [`spool`]: a record writer that must survive a full disk;
//! - [`identity`]: a node identity derived from the hostname;
//! - [`replica`]: a client that fails over from a primary to a backup;
//! - [`listener`]: a one-shot TCP server, with `#[ns_test]` unit tests under libtest's
//!   own harness (the README's first example).
#![deny(unsafe_code)]

pub mod clock;
pub mod hits;
pub mod identity;
pub mod listener;
pub mod replica;
pub mod spool;
pub mod status;
pub mod token;
