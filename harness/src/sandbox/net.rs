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
/// [`enable_loopback_multicast`] for the rest.
///
/// # Errors
///
/// The ioctl or netlink request that failed.
pub(crate) fn bring_loopback_up() -> Result<()> {
    sys::bring_loopback_up().map_err(|(call, source)| Error::BringLoopbackUp { call, source })?;
    enable_loopback_multicast()
        .map_err(|(request, source)| Error::LoopbackMulticast { request, source })
}

/// `lo`'s interface index: the kernel registers it first in every network namespace.
const LOOPBACK_INDEX: u32 = 1;

/// What a host's loopback gives a test through its real interface: joining a multicast
/// group on the default interface (`join_multicast_v4(group, 0.0.0.0)`,
/// `join_multicast_v6(group, 0)`) and receiving what the test itself sends to the group.
/// A sandbox has no other interface, so `lo` takes that part, in one netlink batch:
///
/// - `IFF_MULTICAST` on `lo`, so that programs choosing an interface by its flags find it;
/// - `224.0.0.0/4 dev lo src 127.0.0.1`: without a route to the group the join fails with
///   ENODEV, and without `src` datagrams arrive from 0.0.0.0;
/// - `local ff00::/8 dev lo table local`: the kernel treats any other route through a
///   loopback device as a reject route (`fib6_is_reject`), so sends are dropped. Delivery
///   still checks membership: a group nobody joined is not received, as on a host.
///
/// # Errors
///
/// The request the kernel refused (or `socket`, `sendto`, `recv`) and its errno.
fn enable_loopback_multicast() -> std::result::Result<(), (&'static str, Errno)> {
    const REQUESTS: [&str; 3] = [
        "RTM_NEWLINK lo multicast on",
        "RTM_NEWROUTE 224.0.0.0/4 dev lo src 127.0.0.1",
        "RTM_NEWROUTE local ff00::/8 dev lo table local",
    ];
    let rtnl = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(|errno| ("socket(AF_NETLINK, NETLINK_ROUTE)", errno))?;
    let batch = multicast_requests();
    sys::retry_on_eintr(|| {
        sendto(
            rtnl.as_raw_fd(),
            &batch,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
    })
    .map_err(|errno| ("sendto(NETLINK_ROUTE)", errno))?;
    let mut answered = [false; REQUESTS.len()];
    let mut buf = [0u8; 1024];
    while answered.contains(&false) {
        let len = sys::retry_on_eintr(|| recv(rtnl.as_raw_fd(), &mut buf, MsgFlags::empty()))
            .map_err(|errno| ("recv(NETLINK_ROUTE)", errno))?;
        for (seq, code) in acknowledgements(&buf[..len]) {
            let Some(index) = (seq as usize)
                .checked_sub(1)
                .filter(|i| *i < REQUESTS.len())
            else {
                continue;
            };
            if code != 0 {
                return Err((REQUESTS[index], Errno::from_raw(-code)));
            }
            answered[index] = true;
        }
    }
    Ok(())
}

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
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

/// The three requests of [`enable_loopback_multicast`], sequence numbers 1 to 3, in one
/// buffer (rtnetlink(7)).
fn multicast_requests() -> Vec<u8> {
    let mut batch = Vec::with_capacity(192);
    // struct ifinfomsg: family, pad, type, index, flags, change.
    let mut link = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
    link.extend_from_slice(&LOOPBACK_INDEX.to_ne_bytes());
    link.extend_from_slice(&(libc::IFF_MULTICAST as u32).to_ne_bytes());
    link.extend_from_slice(&(libc::IFF_MULTICAST as u32).to_ne_bytes());
    push_message(&mut batch, RTM_NEWLINK, 0, 1, &link);

    let route = |family: i32, prefix_len: u8, table: u8, scope: u8, kind: u8| {
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        let mut msg = vec![
            family as u8,
            prefix_len,
            0,
            0,
            table,
            RTPROT_BOOT,
            scope,
            kind,
        ];
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg
    };
    let mut v4 = route(libc::AF_INET, 4, RT_TABLE_MAIN, RT_SCOPE_LINK, RTN_UNICAST);
    push_attr(&mut v4, RTA_DST, &[224, 0, 0, 0]);
    push_attr(&mut v4, RTA_OIF, &LOOPBACK_INDEX.to_ne_bytes());
    push_attr(&mut v4, RTA_PREFSRC, &[127, 0, 0, 1]);
    let create = NLM_F_CREATE | NLM_F_EXCL;
    push_message(&mut batch, RTM_NEWROUTE, create, 2, &v4);

    let mut v6 = route(libc::AF_INET6, 8, RT_TABLE_LOCAL, RT_SCOPE_HOST, RTN_LOCAL);
    let mut group = [0u8; 16];
    group[0] = 0xff;
    push_attr(&mut v6, RTA_DST, &group);
    push_attr(&mut v6, RTA_OIF, &LOOPBACK_INDEX.to_ne_bytes());
    push_message(&mut batch, RTM_NEWROUTE, create, 3, &v6);
    batch
}

/// Appends one netlink message: `struct nlmsghdr` (length, type, flags, sequence number,
/// port 0) and `body`, which is a multiple of 4 bytes long.
fn push_message(batch: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, body: &[u8]) {
    let len = u32::try_from(16 + body.len()).expect("a small netlink message");
    batch.extend_from_slice(&len.to_ne_bytes());
    batch.extend_from_slice(&kind.to_ne_bytes());
    batch.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    batch.extend_from_slice(&seq.to_ne_bytes());
    batch.extend_from_slice(&0u32.to_ne_bytes());
    batch.extend_from_slice(body);
}

/// Appends one route attribute (`struct rtattr` and `data`, padded to 4 bytes).
fn push_attr(msg: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = u16::try_from(4 + data.len()).expect("a small route attribute");
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(data);
    msg.resize(msg.len().next_multiple_of(4), 0);
}

/// The `(sequence number, error code)` of each `NLMSG_ERROR` message in `datagram` (an
/// acknowledgement is one with code 0); a truncated message ends the list.
fn acknowledgements(datagram: &[u8]) -> Vec<(u32, i32)> {
    let bytes = |at: usize| -> Option<[u8; 4]> { datagram.get(at..at + 4)?.try_into().ok() };
    let mut found = Vec::new();
    let mut at = 0;
    // struct nlmsghdr: u32 length, u16 type, u16 flags, u32 sequence number, u32 port.
    while let (Some(len), Some(kind), Some(seq)) = (bytes(at), bytes(at + 4), bytes(at + 8)) {
        let len = u32::from_ne_bytes(len) as usize;
        if len < 16 || at + len > datagram.len() {
            break;
        }
        if u16::from_ne_bytes([kind[0], kind[1]]) == NLMSG_ERROR
            && let Some(code) = bytes(at + 16)
        {
            found.push((u32::from_ne_bytes(seq), i32::from_ne_bytes(code)));
        }
        at += len.next_multiple_of(4);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_is_three_requests_the_kernel_can_parse() {
        let batch = multicast_requests();
        let mut at = 0;
        let mut seen = Vec::new();
        while at < batch.len() {
            let len = u32::from_ne_bytes(batch[at..at + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(batch[at + 4..at + 6].try_into().unwrap());
            let seq = u32::from_ne_bytes(batch[at + 8..at + 12].try_into().unwrap());
            assert_eq!(len % 4, 0, "message {seq} is padded");
            seen.push((kind, seq, len));
            at += len;
        }
        assert_eq!(at, batch.len());
        // ifinfomsg 16; rtmsg 12 + dst 8 + oif 8 + prefsrc 8; rtmsg 12 + dst 20 + oif 8.
        assert_eq!(
            seen,
            [
                (RTM_NEWLINK, 1, 16 + 16),
                (RTM_NEWROUTE, 2, 16 + 36),
                (RTM_NEWROUTE, 3, 16 + 40)
            ]
        );
    }

    #[test]
    fn acknowledgements_and_refusals_are_read_and_other_messages_skipped() {
        let message = |kind: u16, seq: u32, code: Option<i32>| {
            let mut m = Vec::new();
            push_message(
                &mut m,
                kind,
                0,
                seq,
                &code.map(i32::to_ne_bytes).unwrap_or([0; 4]),
            );
            m
        };
        let mut datagram = message(NLMSG_ERROR, 2, Some(0));
        datagram.extend(message(RTM_NEWLINK, 9, None));
        datagram.extend(message(NLMSG_ERROR, 3, Some(-17)));
        assert_eq!(acknowledgements(&datagram), [(2, 0), (3, -17)]);
        // A truncated message ends the list.
        assert_eq!(acknowledgements(&datagram[..datagram.len() - 1]), [(2, 0)]);
        assert_eq!(acknowledgements(&[]), []);
    }
}
