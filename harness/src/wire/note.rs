//! Notes: what the test process says about its test while it runs, on the report pipe
//! before the report, for the runner to name in the failure section if the test fails
//! (and to clean up if it passes). They are sent as soon as they are known, so a test that
//! then hangs or crashes still has them.
//!
//! Each note is a message of its own: `b"NSN"`, the version byte, a little-endian `u32`
//! payload length, the payload (a tag, then the fields). A note is at most
//! [`MAX_NOTE_LEN`] bytes, written with one write(2), which a pipe keeps whole (at most
//! `PIPE_BUF`), so notes from two threads never interleave; the test process stops sending
//! them before it writes its report.

use super::{ProtocolError, VERSION, check_header};

const NOTE_MAGIC: &[u8; 3] = b"NSN";
const NOTE_HEADER_LEN: usize = 3 + 1 + 4;
/// Upper bound on one encoded note, header included: below `PIPE_BUF` (4096).
pub const MAX_NOTE_LEN: usize = 2048;
/// Notes a test process sends at most; the runner reads the report pipe up to
/// `MAX_NOTES * MAX_NOTE_LEN` bytes more than a report.
pub const MAX_NOTES: usize = 32;

const TAG_CHAOS_SEED: u8 = 1;
const TAG_CAPTURE: u8 = 2;
const TAG_CAPTURE_FULL: u8 = 3;

/// One thing a test says about itself while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A chaos schedule of the test runs with this seed.
    ChaosSeed(u64),
    /// The test's packets are recorded in this file (an absolute path).
    Capture {
        /// The file.
        path: String,
    },
    /// Recording to this file stopped at its cap of `limit` bytes.
    CaptureFull {
        /// The file.
        path: String,
        /// The cap, in bytes.
        limit: u64,
    },
}

impl Note {
    /// Encodes the note with its header; `None` when a path makes it longer than
    /// [`MAX_NOTE_LEN`] (a note cut short would name another file).
    pub fn encode(&self) -> Option<Vec<u8>> {
        let mut payload = Vec::new();
        match self {
            Note::ChaosSeed(seed) => {
                payload.push(TAG_CHAOS_SEED);
                payload.extend_from_slice(&seed.to_le_bytes());
            }
            Note::Capture { path } => {
                payload.push(TAG_CAPTURE);
                payload.extend_from_slice(path.as_bytes());
            }
            Note::CaptureFull { path, limit } => {
                payload.push(TAG_CAPTURE_FULL);
                payload.extend_from_slice(&limit.to_le_bytes());
                payload.extend_from_slice(path.as_bytes());
            }
        }
        if NOTE_HEADER_LEN + payload.len() > MAX_NOTE_LEN {
            return None;
        }
        let mut out = Vec::with_capacity(NOTE_HEADER_LEN + payload.len());
        out.extend_from_slice(NOTE_MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        Some(out)
    }

    /// Splits what came on a report pipe into the notes at its start and the rest (the
    /// report, or nothing). A malformed note ends the notes: what follows is left to the
    /// report's decoder, which rejects it with a reason.
    pub fn split(mut bytes: &[u8]) -> (Vec<Note>, &[u8]) {
        let mut notes = Vec::new();
        while bytes.starts_with(NOTE_MAGIC) {
            match Note::decode_one(bytes) {
                Ok((note, len)) => {
                    notes.push(note);
                    bytes = &bytes[len..];
                }
                Err(_) => break,
            }
        }
        (notes, bytes)
    }

    /// Decodes the note at the start of `bytes`; returns it with its encoded length.
    fn decode_one(bytes: &[u8]) -> Result<(Note, usize), ProtocolError> {
        check_header(bytes, NOTE_MAGIC, NOTE_HEADER_LEN)?;
        let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
        if NOTE_HEADER_LEN + len > MAX_NOTE_LEN {
            return Err(ProtocolError::TooLong(len));
        }
        let end = NOTE_HEADER_LEN + len;
        let payload = bytes
            .get(NOTE_HEADER_LEN..end)
            .ok_or(ProtocolError::Truncated {
                got: bytes.len(),
                wanted: end,
            })?;
        let (&tag, fields) = payload
            .split_first()
            .ok_or(ProtocolError::Truncated { got: 0, wanted: 1 })?;
        let word = |fields: &[u8]| -> Result<u64, ProtocolError> {
            let bytes = fields.get(..8).ok_or(ProtocolError::Truncated {
                got: fields.len(),
                wanted: 8,
            })?;
            Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
        };
        let text =
            |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::NotUtf8);
        let note = match tag {
            TAG_CHAOS_SEED if fields.len() == 8 => Note::ChaosSeed(word(fields)?),
            TAG_CHAOS_SEED => return Err(ProtocolError::TrailingBytes(fields.len())),
            TAG_CAPTURE => Note::Capture {
                path: text(fields)?,
            },
            TAG_CAPTURE_FULL => Note::CaptureFull {
                limit: word(fields)?,
                path: text(&fields[8..])?,
            },
            other => return Err(ProtocolError::UnknownTag(other)),
        };
        Ok((note, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Report;

    #[test]
    fn notes_before_a_report_are_split_from_it() {
        let notes = vec![
            Note::ChaosSeed(424_242),
            Note::Capture {
                path: "/t/ünï.pcapng".into(),
            },
            Note::CaptureFull {
                path: "/t/x.pcapng".into(),
                limit: 1 << 26,
            },
        ];
        let mut bytes: Vec<u8> = notes.iter().flat_map(|n| n.encode().unwrap()).collect();
        let report = Report::Panicked {
            message: "boom".into(),
            location: None,
            at_pids_limit: false,
        };
        bytes.extend(report.encode());
        let (got, rest) = Note::split(&bytes);
        assert_eq!(got, notes);
        assert_eq!(Report::decode(rest), Ok(report));
        // Notes and no report: the test process died after sending them.
        let only: Vec<u8> = notes[0].encode().unwrap();
        assert_eq!(Note::split(&only), (vec![notes[0].clone()], &[][..]));
    }

    #[test]
    fn a_malformed_note_is_left_to_the_report_decoder() {
        let mut bad = Note::ChaosSeed(1).encode().unwrap();
        bad.truncate(bad.len() - 1);
        let (notes, rest) = Note::split(&bad);
        assert!(notes.is_empty());
        assert!(Report::decode(rest).is_err());
        let long = Note::Capture {
            path: "x".repeat(MAX_NOTE_LEN),
        };
        assert_eq!(long.encode(), None);
    }
}
