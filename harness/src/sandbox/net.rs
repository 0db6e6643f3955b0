//! The network namespace: only `lo`, brought up, with multicast as on a host.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

use crate::error::{Error, Result};
use crate::sys;

/// Brings `lo` up and lets it carry multicast. A new network namespace has only `lo`, and
/// it starts down (network_namespaces(7)); once up, the kernel gives it 127.0.0.1/8 and
/// ::1, and root of the owning user namespace may bind any port, 80 included. See
/// [`add_multicast_routes`] for the rest.
///
/// # Errors
///
/// The ioctl or netlink request that failed.
pub(crate) fn bring_loopback_up() -> Result<()> {
    sys::bring_loopback_up().map_err(|(call, source)| Error::BringLoopbackUp { call, source })?;
    add_multicast_routes().map_err(|(request, source)| Error::LoopbackMulticast { request, source })
}

/// `lo`'s interface index: the kernel registers it first in every network namespace.
const LOOPBACK_INDEX: u32 = 1;

/// The requests of [`add_multicast_routes`], by sequence number less one.
const REQUESTS: [&str; 2] = [
    "RTM_NEWROUTE 224.0.0.0/4 dev lo src 127.0.0.1",
    "RTM_NEWROUTE local ff00::/8 dev lo table local",
];

/// What a host's loopback gives a test through its real interface: joining a multicast
/// group on the default interface (`join_multicast_v4(group, 0.0.0.0)`,
/// `join_multicast_v6(group, 0)`) and receiving what the test itself sends to the group.
/// A sandbox has no other interface, so `lo` (up, with `IFF_MULTICAST`) takes that part,
/// with two routes added in one netlink message batch:
///
/// - `224.0.0.0/4 dev lo src 127.0.0.1`: without a route to the group the join fails with
///   ENODEV, and without `src` datagrams arrive from 0.0.0.0;
/// - `local ff00::/8 dev lo table local`: the kernel treats any other route through a
///   loopback device as a reject route (`fib6_is_reject`), so sends are dropped. Delivery
///   still checks membership: a group nobody joined is not received, as on a host.
///
/// The requests ask for no acknowledgement: the kernel handles rtnetlink requests within
/// `sendto` and queues only errors, so one non-blocking `recv` that finds nothing means
/// both succeeded (two syscalls instead of four on every `net` test's path).
///
/// # Errors
///
/// The request the kernel refused (or `socket`, `sendto`, `recv`) and its errno.
fn add_multicast_routes() -> std::result::Result<(), (&'static str, Errno)> {
    let rtnl = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(|errno| ("socket(AF_NETLINK, NETLINK_ROUTE)", errno))?;
    let (batch, len) = multicast_requests();
    sys::retry_on_eintr(|| {
        sendto(
            rtnl.as_raw_fd(),
            &batch[..len],
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
    })
    .map_err(|errno| ("sendto(NETLINK_ROUTE)", errno))?;
    let mut answer = [0u8; 512];
    match sys::retry_on_eintr(|| recv(rtnl.as_raw_fd(), &mut answer, MsgFlags::MSG_DONTWAIT)) {
        Err(Errno::EAGAIN) => Ok(()),
        Err(errno) => Err(("recv(NETLINK_ROUTE)", errno)),
        Ok(len) => match refusal(&answer[..len]) {
            Some((seq, code)) => {
                let request = (seq as usize)
                    .checked_sub(1)
                    .and_then(|i| REQUESTS.get(i))
                    .unwrap_or(&"RTM_NEWROUTE");
                Err((request, Errno::from_raw(-code)))
            }
            None => Err((
                "recv(NETLINK_ROUTE): an answer that is not an error",
                Errno::EBADMSG,
            )),
        },
    }
}

const NLMSG_ERROR: u16 = 2;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_PREFSRC: u16 = 7;
const RT_TABLE_MAIN: u8 = 254;
const RT_TABLE_LOCAL: u8 = 255;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_HOST: u8 = 254;
const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;

/// The two requests of [`add_multicast_routes`], sequence numbers 1 and 2, in one buffer
/// (rtnetlink(7)): the buffer and how much of it is used. On the stack: a fresh fork writes
/// to as few new heap pages as it can.
fn multicast_requests() -> ([u8; 128], usize) {
    let mut batch = Batch::default();
    let route = |family: i32, prefix_len: u8, table: u8, scope: u8, kind: u8| {
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        [
            family as u8,
            prefix_len,
            0,
            0,
            table,
            RTPROT_BOOT,
            scope,
            kind,
            0,
            0,
            0,
            0,
        ]
    };
    let create = NLM_F_CREATE | NLM_F_EXCL;
    batch.message(RTM_NEWROUTE, create, 1, |m| {
        m.put(&route(
            libc::AF_INET,
            4,
            RT_TABLE_MAIN,
            RT_SCOPE_LINK,
            RTN_UNICAST,
        ));
        m.attr(RTA_DST, &[224, 0, 0, 0]);
        m.attr(RTA_OIF, &LOOPBACK_INDEX.to_ne_bytes());
        m.attr(RTA_PREFSRC, &[127, 0, 0, 1]);
    });
    let mut group = [0u8; 16];
    group[0] = 0xff;
    batch.message(RTM_NEWROUTE, create, 2, |m| {
        m.put(&route(
            libc::AF_INET6,
            8,
            RT_TABLE_LOCAL,
            RT_SCOPE_HOST,
            RTN_LOCAL,
        ));
        m.attr(RTA_DST, &group);
        m.attr(RTA_OIF, &LOOPBACK_INDEX.to_ne_bytes());
    });
    (batch.buf, batch.len)
}

/// Netlink messages written into a fixed buffer (every field 4-byte aligned).
struct Batch {
    buf: [u8; 128],
    len: usize,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            buf: [0; 128],
            len: 0,
        }
    }
}

impl Batch {
    /// Appends `bytes`, padded with zeros to a multiple of 4.
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len().next_multiple_of(4);
    }

    /// Appends one attribute (`struct rtattr` and `data`).
    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = 4 + data.len() as u16;
        self.put(&[len.to_ne_bytes(), kind.to_ne_bytes()].concat());
        self.put(data);
    }

    /// Appends one message: `struct nlmsghdr` (length, type, flags, sequence number, port
    /// 0), then what `body` puts; the length is filled in afterwards.
    fn message(&mut self, kind: u16, flags: u16, seq: u32, body: impl FnOnce(&mut Batch)) {
        let start = self.len;
        self.put(&[0; 16]);
        body(self);
        let len = (self.len - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        self.buf[start + 4..start + 6].copy_from_slice(&kind.to_ne_bytes());
        self.buf[start + 6..start + 8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        self.buf[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
    }
}

/// The `(sequence number, error code)` of the first `NLMSG_ERROR` message in `datagram`
/// that carries an error (an acknowledgement is one with code 0).
fn refusal(datagram: &[u8]) -> Option<(u32, i32)> {
    let word = |at: usize| -> Option<[u8; 4]> { datagram.get(at..at + 4)?.try_into().ok() };
    let mut at = 0;
    // struct nlmsghdr: u32 length, u16 type, u16 flags, u32 sequence number, u32 port.
    while let (Some(len), Some(kind), Some(seq)) = (word(at), word(at + 4), word(at + 8)) {
        let len = u32::from_ne_bytes(len) as usize;
        if len < 16 || at + len > datagram.len() {
            return None;
        }
        if u16::from_ne_bytes([kind[0], kind[1]]) == NLMSG_ERROR
            && let Some(code) = word(at + 16).map(i32::from_ne_bytes)
            && code != 0
        {
            return Some((u32::from_ne_bytes(seq), code));
        }
        at += len.next_multiple_of(4);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(type, flags, sequence number, length)` of each message in `batch`.
    fn messages(batch: &[u8]) -> Vec<(u16, u16, u32, usize)> {
        let mut at = 0;
        let mut seen = Vec::new();
        while at < batch.len() {
            let len = u32::from_ne_bytes(batch[at..at + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(batch[at + 4..at + 6].try_into().unwrap());
            let flags = u16::from_ne_bytes(batch[at + 6..at + 8].try_into().unwrap());
            let seq = u32::from_ne_bytes(batch[at + 8..at + 12].try_into().unwrap());
            assert_eq!(len % 4, 0, "message {seq} is padded");
            seen.push((kind, flags, seq, len));
            at += len;
        }
        assert_eq!(at, batch.len());
        seen
    }

    #[test]
    fn the_batch_is_two_route_requests_without_acknowledgements() {
        let (buf, len) = multicast_requests();
        let create = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
        // rtmsg 12 + dst 8 + oif 8 + prefsrc 8; rtmsg 12 + dst 20 + oif 8.
        assert_eq!(
            messages(&buf[..len]),
            [
                (RTM_NEWROUTE, create, 1, 16 + 36),
                (RTM_NEWROUTE, create, 2, 16 + 40)
            ]
        );
        // The IPv6 route is of type local in the local table, through lo.
        let v6 = &buf[52..len];
        assert_eq!(
            &v6[16..24],
            &[
                10,
                8,
                0,
                0,
                RT_TABLE_LOCAL,
                RTPROT_BOOT,
                RT_SCOPE_HOST,
                RTN_LOCAL
            ]
        );
        assert_eq!(&v6[28..32], &[20, 0, 1, 0], "RTA_DST of 16 bytes");
        assert_eq!(v6[32], 0xff);
    }

    #[test]
    fn a_refusal_is_found_after_acknowledgements_and_other_messages() {
        let mut batch = Batch::default();
        batch.message(NLMSG_ERROR, 0, 1, |m| m.put(&0i32.to_ne_bytes()));
        batch.message(24, 0, 9, |m| m.put(&[0; 4]));
        batch.message(NLMSG_ERROR, 0, 2, |m| m.put(&(-17i32).to_ne_bytes()));
        let datagram = &batch.buf[..batch.len];
        assert_eq!(refusal(datagram), Some((2, -17)));
        assert_eq!(refusal(&datagram[..20]), None, "an acknowledgement alone");
        assert_eq!(refusal(&datagram[..datagram.len() - 1]), None, "truncated");
        assert_eq!(refusal(&[]), None);
    }
}
