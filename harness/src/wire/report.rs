//! The report: what the test process (or a failing setup) says about the test.

use super::{ProtocolError, VERSION, check_header};
use crate::error::Step;

/// Identifies a report: "NST".
const REPORT_MAGIC: &[u8; 3] = b"NST";
/// Upper bound on a report's payload. Strings are cut to fit when encoding.
pub const MAX_REPORT_LEN: usize = 64 * 1024;
/// Header: magic, version, payload length.
pub const REPORT_HEADER_LEN: usize = 3 + 1 + 4;

/// What the sandbox says about a test that ran (or could not start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The test function returned `()` or `Ok(())`.
    Passed,
    /// The test function panicked.
    Panicked {
        /// The payload as text, or a note that it was not a string.
        message: String,
        /// `file:line:column` of the panic, when the panic hook saw one.
        location: Option<String>,
        /// The kernel refused the test process one more task when it reported: it stood at
        /// its process limit.
        at_pids_limit: bool,
    },
    /// The test function returned `Err(e)`; this is `format!("{e:?}")`.
    ReturnedErr {
        /// The `Debug` text of the error.
        debug: String,
        /// As for [`Report::Panicked`].
        at_pids_limit: bool,
    },
    /// Building the sandbox failed before the test function ran.
    SetupFailed {
        /// Which step failed.
        step: Step,
        /// The errno of the failing call (0 when there is none).
        errno: i32,
        /// The failing call with its arguments and the error, as the user should read it.
        detail: String,
    },
}

const TAG_PASSED: u8 = 1;
const TAG_PANICKED: u8 = 2;
const TAG_RETURNED_ERR: u8 = 3;
const TAG_SETUP_FAILED: u8 = 4;

impl Report {
    /// [`Report::Passed`], encoded at compile time: most tests pass, and the test process
    /// is a fresh fork, where every heap page an allocation writes is a page fault.
    pub const PASSED: [u8; REPORT_HEADER_LEN + 1] = {
        let len = 1u32.to_le_bytes();
        [
            REPORT_MAGIC[0],
            REPORT_MAGIC[1],
            REPORT_MAGIC[2],
            VERSION,
            len[0],
            len[1],
            len[2],
            len[3],
            TAG_PASSED,
        ]
    };

    /// Encodes the report with its header. Strings are shortened (at a character
    /// boundary) so the payload never exceeds [`MAX_REPORT_LEN`].
    pub fn encode(&self) -> Vec<u8> {
        // Each string gets an equal share of the budget; the fixed fields are tiny.
        let budget = MAX_REPORT_LEN / 2 - 16;
        let mut payload = Vec::new();
        match self {
            Report::Passed => payload.push(TAG_PASSED),
            Report::Panicked {
                message,
                location,
                at_pids_limit,
            } => {
                payload.push(TAG_PANICKED);
                put_str(&mut payload, message, budget);
                match location {
                    Some(location) => {
                        payload.push(1);
                        put_str(&mut payload, location, budget);
                    }
                    None => payload.push(0),
                }
                payload.push(u8::from(*at_pids_limit));
            }
            Report::ReturnedErr {
                debug,
                at_pids_limit,
            } => {
                payload.push(TAG_RETURNED_ERR);
                put_str(&mut payload, debug, budget);
                payload.push(u8::from(*at_pids_limit));
            }
            Report::SetupFailed {
                step,
                errno,
                detail,
            } => {
                payload.push(TAG_SETUP_FAILED);
                payload.push(*step as u8);
                payload.extend_from_slice(&errno.to_le_bytes());
                put_str(&mut payload, detail, budget);
            }
        }
        let mut out = Vec::with_capacity(REPORT_HEADER_LEN + payload.len());
        out.extend_from_slice(REPORT_MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// Decodes exactly one report from `bytes`, which must hold nothing else.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] naming what is wrong with the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Report, ProtocolError> {
        check_header(bytes, REPORT_MAGIC, REPORT_HEADER_LEN)?;
        let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
        if len > MAX_REPORT_LEN {
            return Err(ProtocolError::TooLong(len));
        }
        let body = &bytes[REPORT_HEADER_LEN..];
        if body.len() < len {
            return Err(ProtocolError::Truncated {
                got: bytes.len(),
                wanted: REPORT_HEADER_LEN + len,
            });
        }
        if body.len() > len {
            return Err(ProtocolError::TrailingBytes(body.len() - len));
        }
        let mut reader = Reader { bytes: body };
        let report = match reader.u8()? {
            TAG_PASSED => Report::Passed,
            TAG_PANICKED => {
                let message = reader.string()?;
                let location = match reader.u8()? {
                    0 => None,
                    1 => Some(reader.string()?),
                    other => return Err(ProtocolError::UnknownTag(other)),
                };
                let at_pids_limit = reader.flag()?;
                Report::Panicked {
                    message,
                    location,
                    at_pids_limit,
                }
            }
            TAG_RETURNED_ERR => Report::ReturnedErr {
                debug: reader.string()?,
                at_pids_limit: reader.flag()?,
            },
            TAG_SETUP_FAILED => {
                let tag = reader.u8()?;
                let step = Step::from_u8(tag).ok_or(ProtocolError::UnknownTag(tag))?;
                let errno = i32::from_le_bytes(reader.array()?);
                let detail = reader.string()?;
                Report::SetupFailed {
                    step,
                    errno,
                    detail,
                }
            }
            other => return Err(ProtocolError::UnknownTag(other)),
        };
        if !reader.bytes.is_empty() {
            return Err(ProtocolError::TrailingBytes(reader.bytes.len()));
        }
        Ok(report)
    }
}

/// Appends `s` as a `u32` length and bytes, cut at a character boundary to `max` bytes.
fn put_str(out: &mut Vec<u8>, s: &str, max: usize) {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u32).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ProtocolError> {
        if self.bytes.len() < n {
            return Err(ProtocolError::Truncated {
                got: self.bytes.len(),
                wanted: n,
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }

    fn flag(&mut self) -> Result<bool, ProtocolError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(ProtocolError::UnknownTag(other)),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    fn string(&mut self) -> Result<String, ProtocolError> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constant_passed_report_is_the_encoded_one() {
        assert_eq!(Report::PASSED.to_vec(), Report::Passed.encode());
        assert_eq!(Report::decode(&Report::PASSED), Ok(Report::Passed));
    }

    fn all_reports() -> Vec<Report> {
        vec![
            Report::Passed,
            Report::Panicked {
                message: "boom ünïcode".into(),
                location: Some("src/lib.rs:3:5".into()),
                at_pids_limit: false,
            },
            Report::Panicked {
                message: String::new(),
                location: None,
                at_pids_limit: true,
            },
            Report::ReturnedErr {
                debug: "Custom { kind: Other }".into(),
                at_pids_limit: true,
            },
            Report::SetupFailed {
                step: Step::WriteUidMap,
                errno: 1,
                detail: "write /proc/self/uid_map".into(),
            },
        ]
    }

    #[test]
    fn every_report_round_trips() {
        for report in all_reports() {
            assert_eq!(Report::decode(&report.encode()), Ok(report));
        }
    }

    #[test]
    fn every_step_round_trips_through_its_byte() {
        for byte in 0..=255u8 {
            if let Some(step) = Step::from_u8(byte) {
                assert_eq!(step as u8, byte);
            }
        }
        assert_eq!(Step::from_u8(Step::Other as u8), Some(Step::Other));
        assert_eq!(
            Step::from_u8(Step::MountCgroup as u8),
            Some(Step::MountCgroup)
        );
        assert_eq!((1..=255u8).filter_map(Step::from_u8).count(), 16);
        assert_eq!(Step::from_u8(0), None);
    }

    #[test]
    fn oversized_strings_are_cut_at_a_char_boundary_and_stay_under_the_bound() {
        let message = "é".repeat(MAX_REPORT_LEN);
        let encoded = Report::Panicked {
            message,
            location: None,
            at_pids_limit: false,
        }
        .encode();
        assert!(encoded.len() <= REPORT_HEADER_LEN + MAX_REPORT_LEN);
        match Report::decode(&encoded) {
            Ok(Report::Panicked { message, .. }) => {
                assert!(!message.is_empty());
                assert!(message.chars().all(|c| c == 'é'));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_prefix_of_a_report_is_rejected_as_truncated() {
        let encoded = all_reports()[1].encode();
        for cut in 0..encoded.len() {
            assert!(
                matches!(
                    Report::decode(&encoded[..cut]),
                    Err(ProtocolError::Truncated { .. })
                ),
                "prefix of {cut} bytes accepted"
            );
        }
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        assert_eq!(
            Report::decode(b"XYZ\x01\0\0\0\0"),
            Err(ProtocolError::BadMagic)
        );
        assert_eq!(
            Report::decode(b"NST\x09\0\0\0\0"),
            Err(ProtocolError::UnsupportedVersion(9))
        );
        assert_eq!(
            Report::decode(b"NST\x01\xff\xff\xff\x7f"),
            Err(ProtocolError::TooLong(0x7fff_ffff))
        );
        assert_eq!(
            Report::decode(b"NST\x01\x01\0\0\0\x63"),
            Err(ProtocolError::UnknownTag(0x63))
        );
        let mut trailing = Report::Passed.encode();
        trailing.push(0);
        assert_eq!(
            Report::decode(&trailing),
            Err(ProtocolError::TrailingBytes(1))
        );
        // A payload whose inner string runs past the announced length.
        assert!(matches!(
            Report::decode(b"NST\x01\x05\0\0\0\x03\xff\0\0\0"),
            Err(ProtocolError::Truncated { .. })
        ));
        assert_eq!(
            Report::decode(b"NST\x01\x06\0\0\0\x03\x02\0\0\0\xff"),
            Err(ProtocolError::Truncated { got: 1, wanted: 2 })
        );
        assert_eq!(
            Report::decode(b"NST\x01\x07\0\0\0\x03\x02\0\0\0\xff\xfe"),
            Err(ProtocolError::NotUtf8)
        );
    }
}
