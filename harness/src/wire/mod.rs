//! The messages that travel from a sandbox back to the runner.
//!
//! Plain data (layer 1 of docs/src/architecture.md): depends on `error` and `sys` only.
//! Runs in: every process, each on its side of a pipe or socket.
//!
//! Two pipes per test, each with one writer the runner trusts to a different degree:
//!
//! - the **report pipe** carries one [`Report`] written by the test process (or by the
//!   process that builds the sandbox when setup fails): `b"NST"`, a version byte, a little-endian `u32` payload
//!   length, then the payload. The length is bounded by [`MAX_REPORT_LEN`]; the runner
//!   reads at most that much and rejects anything malformed, truncated or trailing.
//!   Before it, the test process may send [`Note`]s (what the runner names if the test
//!   fails: a chaos seed, a capture file), each `b"NSN"`, the version byte, a length and
//!   a payload of at most [`note::MAX_NOTE_LEN`] bytes.
//! - the **exit pipe** carries one fixed-size [`ExitFrame`] written by the slot after every process of the test is gone: how the
//!   test process ended and how many leftover processes had to be killed.
//!
//! Neither needs a parser crate: both are a handful of fixed fields, and hand-written
//! decoding lets every malformed input be rejected with a precise reason.
//!
//! A third kind of message crosses the other way: a [`Request`](request::Request) from a
//! runner thread to the fork server or a slot, one `SOCK_SEQPACKET` datagram with the
//! pipes attached as `SCM_RIGHTS`.

use std::fmt;

pub(crate) mod exit_frame;
pub(crate) mod note;
pub(crate) mod report;
pub(crate) mod request;

pub(crate) use exit_frame::{EXIT_FRAME_LEN, ExitFrame, LimitsHit, Termination};
pub(crate) use note::Note;
pub(crate) use report::{MAX_REPORT_LEN, REPORT_HEADER_LEN, Report};

/// Bumped whenever the encoding of a [`Report`] or an [`ExitFrame`] changes.
pub const VERSION: u8 = 1;

/// Why bytes from the report pipe were rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// Fewer bytes than the header or the announced length.
    Truncated { got: usize, wanted: usize },
    /// The first bytes are not the magic.
    BadMagic,
    /// A version this runner does not speak.
    UnsupportedVersion(u8),
    /// The announced length exceeds [`MAX_REPORT_LEN`].
    TooLong(usize),
    /// Bytes after the end of the message.
    TrailingBytes(usize),
    /// An unknown message or step tag.
    UnknownTag(u8),
    /// A string field that is not UTF-8.
    NotUtf8,
    /// A request with a field set that its kind leaves zero, or a test request naming no
    /// test.
    MisplacedField,
    /// A request arrived with another number of descriptors than it needs.
    WrongDescriptorCount {
        /// Descriptors attached.
        got: usize,
        /// Descriptors the request needs.
        wanted: usize,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { got, wanted } => {
                write!(f, "truncated report: {got} bytes, expected {wanted}")
            }
            Self::BadMagic => write!(f, "report does not start with the nstest magic"),
            Self::UnsupportedVersion(v) => {
                write!(f, "report version {v}, this runner speaks {VERSION}")
            }
            Self::TooLong(n) => {
                write!(
                    f,
                    "report of {n} bytes exceeds the {MAX_REPORT_LEN}-byte limit"
                )
            }
            Self::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the report"),
            Self::UnknownTag(t) => write!(f, "unknown tag {t} in report"),
            Self::NotUtf8 => write!(f, "report text is not UTF-8"),
            Self::MisplacedField => write!(f, "request with a field its kind does not use"),
            Self::WrongDescriptorCount { got, wanted } => {
                write!(f, "request with {got} descriptors, expected {wanted}")
            }
        }
    }
}

/// Checks that `bytes` holds at least `min_len` bytes and starts with `magic` and
/// [`VERSION`].
pub(crate) fn check_header(
    bytes: &[u8],
    magic: &[u8; 3],
    min_len: usize,
) -> Result<(), ProtocolError> {
    if bytes.len() < min_len {
        return Err(ProtocolError::Truncated {
            got: bytes.len(),
            wanted: min_len,
        });
    }
    if &bytes[..3] != magic {
        return Err(ProtocolError::BadMagic);
    }
    if bytes[3] != VERSION {
        return Err(ProtocolError::UnsupportedVersion(bytes[3]));
    }
    Ok(())
}
