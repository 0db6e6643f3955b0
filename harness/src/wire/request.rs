//! Requests: what a runner thread asks of the fork server or of its slot.
//!
//! One request is one `SOCK_SEQPACKET` datagram (unix(7)), so many runner threads can send
//! on one socket at once and each request arrives whole: [`Request::LEN`] bytes, with the
//! descriptors it names attached as `SCM_RIGHTS`. The bytes are a kind, a flags byte, two
//! zero bytes, a little-endian `u32` (a test's timeout in seconds, or the pid of the slot a
//! new one replaces) and a little-endian `u64` (a test's address); anything else, or the wrong
//! number of descriptors, is rejected and its descriptors closed, which the sender sees as
//! end-of-file.
//!
//! A test is named by the address of its `Test`, a `static` of the test binary (or, for
//! the host probe's sandboxes, leaked before the fork server started). The runner and the
//! fork server are forks of one image, so the address means the same in both, and naming
//! tests this way needs no list agreed on in advance: under libtest's own harness the fork
//! server starts in a constructor, before every other constructor has registered its test.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};

use super::ProtocolError;
use crate::sys;

const KIND_RUN_TEST: u8 = 1;
const KIND_START_SLOT: u8 = 2;
const FLAG_CAPTURE: u8 = 1;

/// A request, without the descriptors that travel with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// To a slot: run the test whose `Test` is at address `test`. Attached: the write ends
    /// of the report and exit pipes and, with `capture`, of the output pipe.
    RunTest {
        /// The address of the test's `Test` (see the module docs); never 0.
        test: u64,
        /// Whether the output pipe is attached (otherwise output goes to the terminal).
        capture: bool,
        /// Seconds after which the slot kills the test and everything it started: the
        /// test's own `timeout`, else the run's `NSTEST_TIMEOUT`; `None` for no limit.
        timeout_secs: Option<u32>,
    },
    /// To the fork server: start a slot serving the one attached socket, once the slot
    /// with pid `replacing` (if any) has been reaped and no stray process is left.
    StartSlot {
        /// The pid of the slot this one replaces.
        replacing: Option<u32>,
    },
}

impl Request {
    /// The size of every encoded request.
    pub(crate) const LEN: usize = 16;
    /// The most descriptors a request carries.
    pub(crate) const MAX_FDS: usize = 3;

    /// How many descriptors travel with this request.
    pub(crate) fn fd_count(&self) -> usize {
        match self {
            Request::RunTest { capture, .. } => 2 + usize::from(*capture),
            Request::StartSlot { .. } => 1,
        }
    }

    /// The request's bytes.
    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        let (kind, flags, value, test) = match *self {
            Request::RunTest {
                test,
                capture,
                timeout_secs,
            } => (
                KIND_RUN_TEST,
                if capture { FLAG_CAPTURE } else { 0 },
                timeout_secs.unwrap_or(0),
                test,
            ),
            Request::StartSlot { replacing } => (KIND_START_SLOT, 0, replacing.unwrap_or(0), 0),
        };
        let mut bytes = [0u8; Self::LEN];
        bytes[0] = kind;
        bytes[1] = flags;
        bytes[4..8].copy_from_slice(&value.to_le_bytes());
        bytes[8..16].copy_from_slice(&test.to_le_bytes());
        bytes
    }

    /// Decodes a request that arrived with `fds` descriptors.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] for a wrong length, an unknown kind or flag, or a descriptor
    /// count that does not match the request.
    pub(crate) fn decode(bytes: &[u8], fds: usize) -> Result<Request, ProtocolError> {
        if bytes.len() != Self::LEN {
            return Err(if bytes.len() < Self::LEN {
                ProtocolError::Truncated {
                    got: bytes.len(),
                    wanted: Self::LEN,
                }
            } else {
                ProtocolError::TrailingBytes(bytes.len() - Self::LEN)
            });
        }
        let value = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        let test = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        if bytes[2..4] != [0, 0] {
            return Err(ProtocolError::UnknownTag(bytes[2] | bytes[3]));
        }
        let request = match (bytes[0], bytes[1]) {
            (KIND_RUN_TEST, flags @ (0 | FLAG_CAPTURE)) if test != 0 => Request::RunTest {
                test,
                capture: flags == FLAG_CAPTURE,
                timeout_secs: (value != 0).then_some(value),
            },
            (KIND_START_SLOT, 0) if test == 0 => Request::StartSlot {
                replacing: (value != 0).then_some(value),
            },
            (KIND_RUN_TEST, 0 | FLAG_CAPTURE) | (KIND_START_SLOT, 0) => {
                return Err(ProtocolError::MisplacedField);
            }
            (KIND_RUN_TEST | KIND_START_SLOT, flags) => {
                return Err(ProtocolError::UnknownTag(flags));
            }
            (kind, _) => return Err(ProtocolError::UnknownTag(kind)),
        };
        if request.fd_count() != fds {
            return Err(ProtocolError::WrongDescriptorCount {
                got: fds,
                wanted: request.fd_count(),
            });
        }
        Ok(request)
    }
}

/// A connected pair of `SOCK_SEQPACKET` sockets (close-on-exec), the kind every request
/// travels on: the runner's end and the fork server's, or a runner thread's and a slot's.
///
/// # Errors
///
/// `socketpair(2)`'s errno.
pub(crate) fn socket_pair() -> crate::error::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|source| crate::error::Error::Sys {
        call: "socketpair(AF_UNIX, SOCK_SEQPACKET)",
        source,
    })
}

/// Sends `request` with `fds` attached, retrying on EINTR.
///
/// # Errors
///
/// `sendmsg(2)`'s errno: EPIPE or ECONNRESET when the other end is gone.
pub(crate) fn send(socket: &OwnedFd, request: &Request, fds: &[RawFd]) -> nix::Result<()> {
    debug_assert_eq!(fds.len(), request.fd_count());
    let bytes = request.encode();
    let cmsgs = [ControlMessage::ScmRights(fds)];
    sys::retry_on_eintr(|| {
        sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
    })
    .map(drop)
}

/// Receives the next well-formed request with its descriptors (marked close-on-exec) into
/// `space`, a buffer made by `nix::cmsg_space!([RawFd; Request::MAX_FDS])`. Malformed
/// requests are dropped with their descriptors. `None` on end-of-file or an unrecoverable
/// error.
pub(crate) fn receive(socket: &OwnedFd, space: &mut Vec<u8>) -> Option<(Request, Vec<OwnedFd>)> {
    loop {
        let mut bytes = [0u8; Request::LEN + 1];
        // The closure makes the message's borrows of `bytes` and `space` afresh on each
        // try and returns only owned values, so the one EINTR helper can retry it.
        let (len, fds) = sys::retry_on_eintr(|| {
            let mut iov = [IoSliceMut::new(&mut bytes)];
            let msg = recvmsg::<()>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut *space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )?;
            let mut fds = Vec::new();
            for cmsg in msg.cmsgs().into_iter().flatten() {
                if let ControlMessageOwned::ScmRights(received) = cmsg {
                    fds.extend(received.into_iter().map(sys::own_received_fd));
                }
            }
            Ok((msg.bytes, fds))
        })
        .ok()?;
        if len == 0 {
            return None;
        }
        if let Ok(request) = Request::decode(&bytes[..len], fds.len()) {
            return Some((request, fds));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_round_trips() {
        for request in [
            Request::RunTest {
                test: 8,
                capture: false,
                timeout_secs: None,
            },
            Request::RunTest {
                test: u64::MAX,
                capture: true,
                timeout_secs: Some(u32::MAX),
            },
            Request::StartSlot { replacing: None },
            Request::StartSlot {
                replacing: Some(4242),
            },
        ] {
            assert_eq!(
                Request::decode(&request.encode(), request.fd_count()),
                Ok(request)
            );
        }
    }

    #[test]
    fn descriptor_counts_follow_the_request() {
        let capture = Request::RunTest {
            test: 1,
            capture: true,
            timeout_secs: None,
        };
        assert_eq!(capture.fd_count(), 3);
        let plain = Request::RunTest {
            test: 1,
            capture: false,
            timeout_secs: None,
        };
        assert_eq!(plain.fd_count(), 2);
        assert_eq!(Request::StartSlot { replacing: None }.fd_count(), 1);
        assert_eq!(
            Request::decode(&capture.encode(), 2),
            Err(ProtocolError::WrongDescriptorCount { got: 2, wanted: 3 })
        );
        assert_eq!(
            Request::decode(&plain.encode(), 0),
            Err(ProtocolError::WrongDescriptorCount { got: 0, wanted: 2 })
        );
    }

    #[test]
    fn malformed_requests_are_rejected_with_a_reason() {
        let good = Request::RunTest {
            test: 3,
            capture: false,
            timeout_secs: None,
        }
        .encode();
        assert_eq!(
            Request::decode(&good[..15], 2),
            Err(ProtocolError::Truncated {
                got: 15,
                wanted: 16
            })
        );
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(
            Request::decode(&long, 2),
            Err(ProtocolError::TrailingBytes(1))
        );
        let mut bad = good;
        bad[0] = 9;
        assert_eq!(Request::decode(&bad, 2), Err(ProtocolError::UnknownTag(9)));
        let mut bad = good;
        bad[1] = 4;
        assert_eq!(Request::decode(&bad, 2), Err(ProtocolError::UnknownTag(4)));
        let mut bad = Request::StartSlot { replacing: None }.encode();
        bad[1] = FLAG_CAPTURE;
        assert_eq!(Request::decode(&bad, 1), Err(ProtocolError::UnknownTag(1)));
        let mut bad = good;
        bad[3] = 1;
        assert_eq!(Request::decode(&bad, 2), Err(ProtocolError::UnknownTag(1)));
        // A test request names a test and nothing else; a slot request no test.
        let no_test = Request::RunTest {
            test: 0,
            capture: false,
            timeout_secs: None,
        }
        .encode();
        assert_eq!(
            Request::decode(&no_test, 2),
            Err(ProtocolError::MisplacedField)
        );
        let mut with_timeout = good;
        with_timeout[4] = 7;
        assert!(matches!(
            Request::decode(&with_timeout, 2),
            Ok(Request::RunTest {
                timeout_secs: Some(7),
                ..
            })
        ));
        let mut slot_with_test = Request::StartSlot { replacing: None }.encode();
        slot_with_test[8] = 1;
        assert_eq!(
            Request::decode(&slot_with_test, 1),
            Err(ProtocolError::MisplacedField)
        );
    }
}
