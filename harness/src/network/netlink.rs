//! A small rtnetlink client, used by the test process's threads: the few messages a
//! [`Network`](super::Network) needs, encoded by hand over nix's `NETLINK_ROUTE` socket
//! (rtnetlink(7), netlink(7)), sent one by one or in batches.
//!
//! Why not `netlink-packet-route`: it encodes links and addresses well, but not the traffic
//! control objects used here (`clsact`, a `bpf` classifier with classic BPF ops and a
//! `gact` action); those would need an encoder of our own anyway, and one encoder for
//! every message keeps them in one style, with no unsafe code and no new dependency
//! (nix already gives the socket).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

use super::error::Error;

pub(super) const RTM_NEWLINK: u16 = 16;
pub(super) const RTM_NEWADDR: u16 = 20;
pub(super) const RTM_NEWROUTE: u16 = 24;
pub(super) const RTM_NEWQDISC: u16 = 36;
pub(super) const RTM_DELQDISC: u16 = 37;
pub(super) const RTM_NEWTCLASS: u16 = 40;
pub(super) const RTM_DELTCLASS: u16 = 41;
pub(super) const RTM_NEWTFILTER: u16 = 44;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
pub(super) const NLM_F_REPLACE: u16 = 0x100;
pub(super) const NLM_F_EXCL: u16 = 0x200;
pub(super) const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLMSG_HDRLEN: usize = 16;

/// One request being built: the `nlmsghdr`, a fixed header, then attributes (each
/// `struct nlattr` plus payload, padded to 4 bytes), possibly nested.
#[derive(Debug)]
pub(super) struct Message {
    buf: Vec<u8>,
}

impl Message {
    /// A request of `kind` (`RTM_*`) with `flags` (`NLM_F_*`; `REQUEST` and `ACK` are
    /// always added) and the fixed header that kind takes.
    pub(super) fn new(kind: u16, flags: u16, header: &[u8]) -> Message {
        let mut buf = vec![0; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        let mut message = Message { buf };
        message.put(header);
        message
    }

    fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    /// Appends attribute `kind` with `data` as its payload.
    pub(super) fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Message {
        let len = u16::try_from(4 + data.len()).expect("netlink attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.put(data);
        self
    }

    pub(super) fn attr_u32(&mut self, kind: u16, value: u32) -> &mut Message {
        self.attr(kind, &value.to_ne_bytes())
    }

    pub(super) fn attr_u8(&mut self, kind: u16, value: u8) -> &mut Message {
        self.attr(kind, &[value])
    }

    /// A string attribute, NUL-terminated as the kernel's `NLA_STRING` parsers accept.
    pub(super) fn attr_str(&mut self, kind: u16, value: &str) -> &mut Message {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.attr(kind, &bytes)
    }

    /// A nested attribute `kind` whose payload `fill` appends.
    pub(super) fn nest(&mut self, kind: u16, fill: impl FnOnce(&mut Message)) -> &mut Message {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        fill(self);
        let len = u16::try_from(self.buf.len() - start).expect("nested attribute under 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// Raw bytes (a fixed header inside a nested attribute, as `VETH_INFO_PEER` has).
    pub(super) fn raw(&mut self, bytes: &[u8]) -> &mut Message {
        self.put(bytes);
        self
    }

    /// The message as built so far (length and sequence number not yet filled in).
    #[cfg(test)]
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The message as it would be sent first.
    #[cfg(test)]
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.finish(1)
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).expect("netlink message under 4 GiB");
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// `struct ifinfomsg` (rtnetlink(7)).
pub(super) fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0] = libc::AF_UNSPEC as u8;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `struct ifaddrmsg` (rtnetlink(7)).
pub(super) fn ifaddrmsg(family: i32, prefix_len: u8, flags: u8, index: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[0] = family as u8;
    h[1] = prefix_len;
    h[2] = flags;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h
}

/// `struct rtmsg` (rtnetlink(7)) of a route in the main table, added by the
/// administrator (`RTPROT_BOOT`, as `ip route add`), of `scope`, unicast.
pub(super) fn rtmsg(family: i32, dst_len: u8, scope: u8) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = family as u8;
    h[1] = dst_len;
    h[4] = libc::RT_TABLE_MAIN;
    h[5] = libc::RTPROT_BOOT;
    h[6] = scope;
    h[7] = libc::RTN_UNICAST;
    h
}

/// `struct tcmsg` (rtnetlink(7), tc(8)).
pub(super) fn tcmsg(ifindex: i32, handle: u32, parent: u32, info: u32) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = libc::AF_UNSPEC as u8;
    h[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    h[8..12].copy_from_slice(&handle.to_ne_bytes());
    h[12..16].copy_from_slice(&parent.to_ne_bytes());
    h[16..20].copy_from_slice(&info.to_ne_bytes());
    h
}

/// A `NETLINK_ROUTE` socket of the network namespace of the thread that opened it: every
/// request it sends acts on that namespace, whichever thread sends it later.
#[derive(Debug)]
pub(super) struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    /// Opens the socket in the calling thread's network namespace.
    ///
    /// # Errors
    ///
    /// socket(2)'s errno.
    pub(super) fn open() -> Result<Rtnl, Errno> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        Ok(Rtnl { fd, seq: 0 })
    }

    /// Sends `message` and waits for the kernel's acknowledgement.
    ///
    /// # Errors
    ///
    /// The errno the kernel answered with (`NLMSG_ERROR`), or that of sendto/recv.
    pub(super) fn request(&mut self, message: Message) -> Result<(), Errno> {
        self.batch(vec![message]).map_err(|(_, errno)| errno)
    }

    /// Sends `messages` in one sendmsg and waits for all their acknowledgements at once:
    /// the kernel handles them in order, each as if sent alone, and goes on after one
    /// fails (so a later one may fail only because an earlier one did).
    ///
    /// # Errors
    ///
    /// The index of the first message the kernel refused, with its errno; or, for
    /// sendto/recv or a malformed answer, the index of the first message not known to
    /// have succeeded.
    pub(super) fn batch(&mut self, messages: Vec<Message>) -> Result<(), (usize, Errno)> {
        if messages.is_empty() {
            return Ok(());
        }
        let first = self.seq.wrapping_add(1);
        let mut bytes = Vec::new();
        for message in messages {
            self.seq = self.seq.wrapping_add(1);
            bytes.extend_from_slice(&message.finish(self.seq));
        }
        let mut answers = Acks::new(first, self.seq);
        let sent = sendto(
            self.fd.as_raw_fd(),
            &bytes,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        );
        if let Err(errno) = sent {
            return Err((0, errno));
        }
        let mut buf = vec![0u8; 32 * 1024];
        while !answers.complete() {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())
                .map_err(|errno| (answers.first_unanswered(), errno))?;
            answers
                .read(&buf[..n])
                .map_err(|errno| (answers.first_unanswered(), errno))?;
        }
        answers.result()
    }
}

/// A message with what an error calls it (`RTM_NEWQDISC clsact dev p0`) and what the
/// kernel needs for it (named when the kernel refuses with "not supported").
#[derive(Debug)]
pub(super) struct Call {
    message: Message,
    call: String,
    needs: Option<&'static str>,
}

impl Call {
    pub(super) fn new(
        message: Message,
        call: impl Into<String>,
        needs: Option<&'static str>,
    ) -> Call {
        Call {
            message,
            call: call.into(),
            needs,
        }
    }
}

impl Rtnl {
    /// Sends `calls` as one batch ([`Rtnl::batch`]).
    ///
    /// # Errors
    ///
    /// The first call refused, named (those after it may have failed only because of it).
    pub(super) fn apply(&mut self, calls: Vec<Call>) -> Result<(), Error> {
        let mut names = Vec::with_capacity(calls.len());
        let mut messages = Vec::with_capacity(calls.len());
        for call in calls {
            names.push((call.call, call.needs));
            messages.push(call.message);
        }
        self.batch(messages).map_err(|(index, source)| {
            let (call, needs) = names.swap_remove(index);
            Error::Netlink {
                call,
                needs,
                source,
            }
        })
    }

    /// Sends one call and waits for its acknowledgement.
    ///
    /// # Errors
    ///
    /// The call, named, with the kernel's errno.
    pub(super) fn apply_one(&mut self, call: Call) -> Result<(), Error> {
        self.apply(vec![call])
    }
}

/// The acknowledgements of one batch, sequence numbers `first..=last`, as they arrive.
#[derive(Debug)]
struct Acks {
    first: u32,
    codes: Vec<Option<i32>>,
}

impl Acks {
    fn new(first: u32, last: u32) -> Acks {
        let count = last.wrapping_sub(first) as usize + 1;
        Acks {
            first,
            codes: vec![None; count],
        }
    }

    /// Takes the `NLMSG_ERROR` answers (acknowledgements are errors with code 0) to this
    /// batch from one datagram; anything else (notifications, answers to earlier
    /// requests) is skipped.
    fn read(&mut self, datagram: &[u8]) -> Result<(), Errno> {
        let word = |i: usize| u32::from_ne_bytes(datagram[i..i + 4].try_into().unwrap());
        let mut at = 0;
        while at + NLMSG_HDRLEN <= datagram.len() {
            let len = word(at) as usize;
            let kind = u16::from_ne_bytes([datagram[at + 4], datagram[at + 5]]);
            if len < NLMSG_HDRLEN || at + len > datagram.len() {
                return Err(Errno::EBADMSG);
            }
            let index = word(at + 8).wrapping_sub(self.first) as usize;
            if kind == NLMSG_ERROR && index < self.codes.len() && len >= NLMSG_HDRLEN + 4 {
                let code = i32::from_ne_bytes(datagram[at + 16..at + 20].try_into().unwrap());
                self.codes[index] = Some(code);
            }
            at += (len + 3) & !3;
        }
        Ok(())
    }

    fn complete(&self) -> bool {
        self.codes.iter().all(Option::is_some)
    }

    fn first_unanswered(&self) -> usize {
        self.codes.iter().position(Option::is_none).unwrap_or(0)
    }

    fn result(&self) -> Result<(), (usize, Errno)> {
        match self.codes.iter().position(|c| *c != Some(0)) {
            None => Ok(()),
            Some(i) => Err((i, Errno::from_raw(-self.codes[i].unwrap_or(-libc::EIO)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_count_their_contents() {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE, &ifinfomsg(2, 1, 1));
        m.attr_str(3, "br0").nest(18, |m| {
            m.attr_str(1, "bridge");
        });
        let bytes = m.finish(7);
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize,
            bytes.len()
        );
        assert_eq!(u32::from_ne_bytes(bytes[8..12].try_into().unwrap()), 7);
        // nlmsghdr (16) + ifinfomsg (16), then IFLA_IFNAME: len 8 ("br0\0"), type 3.
        assert_eq!(&bytes[32..36], &[8, 0, 3, 0]);
        assert_eq!(&bytes[36..40], b"br0\0");
        // IFLA_LINKINFO: 4 + IFLA_INFO_KIND (4 + "bridge\0" = 11, padded 12) = 16.
        assert_eq!(&bytes[40..44], &[16, 0, 18, 0]);
        assert_eq!(&bytes[44..46], &[11, 0]);
    }

    /// An `NLMSG_ERROR` answer to `seq` with `code` (0: an acknowledgement).
    fn answer(seq: u32, code: i32) -> Vec<u8> {
        let mut a = vec![0u8; NLMSG_HDRLEN + 4 + NLMSG_HDRLEN];
        let len = a.len() as u32;
        a[0..4].copy_from_slice(&len.to_ne_bytes());
        a[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        a[8..12].copy_from_slice(&seq.to_ne_bytes());
        a[16..20].copy_from_slice(&code.to_ne_bytes());
        a
    }

    #[test]
    fn a_batch_is_answered_once_every_message_is_and_names_the_first_refused() {
        let mut acks = Acks::new(u32::MAX, 2); // wraps: u32::MAX, 0, 1, 2
        let mut datagram = answer(1, -libc::ENODEV);
        datagram.extend(answer(u32::MAX, 0));
        datagram.extend(answer(7, -libc::EEXIST)); // another batch's: ignored
        acks.read(&datagram).unwrap();
        assert!(!acks.complete());
        assert_eq!(acks.first_unanswered(), 1);
        acks.read(&[answer(0, -libc::EEXIST), answer(2, 0)].concat())
            .unwrap();
        assert!(acks.complete());
        assert_eq!(acks.result(), Err((1, Errno::EEXIST)));

        let mut fine = Acks::new(5, 6);
        fine.read(&[answer(6, 0), answer(5, 0)].concat()).unwrap();
        assert_eq!(fine.result(), Ok(()));

        let mut short = answer(5, 0);
        short[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(Acks::new(5, 5).read(&short), Err(Errno::EBADMSG));
    }
}
