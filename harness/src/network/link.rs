//! The links of a network, as rtnetlink messages sent from the test process: the switch's
//! bridge, each host's veth pair into it and its addresses.
//!
//! Host number N has interface `eth0` (index 2) in its own namespace, and its other end
//! `p<N>` (index `PORT_BASE + N`) is created straight in the switch's namespace and
//! enslaved to `br0` there. Its addresses are 10.M.0.(N+1)/24 and
//! fd00:6e73:7400:M::(N+1)/64 for network number M, the IPv6 one added with
//! `IFA_F_NODAD` so it is usable at once. IPv4 multicast (224.0.0.0/4) is routed out of
//! `eth0`, as on a host whose default route is there, so a group is joined with the default
//! interface (`join_multicast_v4(group, 0.0.0.0)`) and sent to; IPv6 has its `ff00::/8`
//! route on every interface that is up already.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};

use super::error::Error;
use super::netlink::{self, Call, Message, Rtnl};
use super::tc;

/// Interface index of `br0` in the switch's namespace (`lo` is 1 in a new namespace).
const BRIDGE_INDEX: i32 = 2;
/// Interface index of `eth0` in each host's namespace.
const ETH0_INDEX: i32 = 2;
/// Host number N's port on the switch has index `PORT_BASE + N` (and name `p<N>`).
const PORT_BASE: i32 = 100;

const IFF_UP: u32 = libc::IFF_UP as u32;
const IFLA_IFNAME: u16 = libc::IFLA_IFNAME;
const IFLA_LINKINFO: u16 = libc::IFLA_LINKINFO;
const IFLA_INFO_KIND: u16 = libc::IFLA_INFO_KIND;
const IFLA_INFO_DATA: u16 = libc::IFLA_INFO_DATA;
const IFLA_NUM_TX_QUEUES: u16 = libc::IFLA_NUM_TX_QUEUES;
const IFLA_NUM_RX_QUEUES: u16 = libc::IFLA_NUM_RX_QUEUES;
const VETH_INFO_PEER: u16 = 1;
const IFLA_BR_MCAST_SNOOPING: u16 = 23;
const IFA_ADDRESS: u16 = libc::IFA_ADDRESS;
const IFA_LOCAL: u16 = libc::IFA_LOCAL;
const IFA_BROADCAST: u16 = libc::IFA_BROADCAST;
const IFA_FLAGS: u16 = 8;
const RTA_DST: u16 = libc::RTA_DST;
const RTA_OIF: u16 = libc::RTA_OIF;
const NDTA_NAME: u16 = 1;
const NDTA_PARMS: u16 = 6;
const NDTPA_IFINDEX: u16 = 1;
const NDTPA_RETRANS_TIME: u16 = 5;

/// How long a host waits for an answer to an ARP request or a neighbour solicitation
/// before it asks again: 100 ms rather than the kernel's 1 s. See [`neighbour_retry`].
const NEIGHBOUR_RETRY_MS: u64 = 100;

/// A host's two addresses on the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Addresses {
    pub(super) v4: Ipv4Addr,
    pub(super) v6: Ipv6Addr,
}

impl Addresses {
    /// The addresses of host number `host` (from 0) of network number `network`.
    pub(super) fn of_host(network: u8, host: usize) -> Addresses {
        let last = u8::try_from(host + 1).expect("at most 254 hosts per network");
        Addresses {
            v4: Ipv4Addr::new(10, network, 0, last),
            v6: Ipv6Addr::new(0xfd00, 0x6e73, 0x7400, network.into(), 0, 0, 0, last.into()),
        }
    }
}

/// The interface index of host number `host`'s port on the switch.
pub(super) fn port_index(host: usize) -> i32 {
    PORT_BASE + i32::try_from(host).expect("at most 254 hosts per network")
}

/// Creates the bridge `br0`, up, in the namespace of `rtnl` (the switch's). Multicast
/// snooping is off, so neighbour discovery always floods.
///
/// # Errors
///
/// The kernel's refusal, naming bridges where it lacks them.
pub(super) fn add_bridge(rtnl: &mut Rtnl) -> Result<(), Error> {
    let mut bridge = Message::new(
        netlink::RTM_NEWLINK,
        netlink::NLM_F_CREATE | netlink::NLM_F_EXCL,
        &netlink::ifinfomsg(BRIDGE_INDEX, IFF_UP, IFF_UP),
    );
    bridge
        .attr_str(IFLA_IFNAME, "br0")
        .nest(IFLA_LINKINFO, |m| {
            m.attr_str(IFLA_INFO_KIND, "bridge")
                .nest(IFLA_INFO_DATA, |m| {
                    m.attr_u8(IFLA_BR_MCAST_SNOOPING, 0);
                });
        });
    rtnl.apply_one(Call::new(
        bridge,
        "RTM_NEWLINK bridge br0",
        Some("bridges (CONFIG_BRIDGE, module `bridge`)"),
    ))
}

/// Links host number `index`, whose fresh namespace (with `lo` up) `host` speaks for, to
/// the switch: the veth pair into the switch's namespace `switch` and both addresses in
/// one batch, then the port enslaved to the bridge through `switch_rtnl`.
///
/// # Errors
///
/// The first request the kernel refused, named.
pub(super) fn add_host_link(
    host: &mut Rtnl,
    switch_rtnl: &mut Rtnl,
    switch: &OwnedFd,
    index: usize,
    addresses: Addresses,
) -> Result<(), Error> {
    let port = port_index(index);
    let port_name = format!("p{index}");

    let mut veth = Message::new(
        netlink::RTM_NEWLINK,
        netlink::NLM_F_CREATE | netlink::NLM_F_EXCL,
        &netlink::ifinfomsg(ETH0_INDEX, IFF_UP, IFF_UP),
    );
    // One segment per packet: a relay reads frames from a packet socket and sends them on
    // as they are, and a 64 KiB TSO frame would not fit the next interface's MTU. One
    // queue each way at both ends: a veth gets one per possible CPU by default, each a
    // directory of sysfs files to create and remove, and nothing here uses more than one.
    veth.attr_str(IFLA_IFNAME, "eth0")
        .attr_u32(libc::IFLA_GSO_MAX_SEGS, 1)
        .attr_u32(IFLA_NUM_TX_QUEUES, 1)
        .attr_u32(IFLA_NUM_RX_QUEUES, 1)
        .nest(IFLA_LINKINFO, |m| {
            m.attr_str(IFLA_INFO_KIND, "veth")
                .nest(IFLA_INFO_DATA, |m| {
                    m.nest(VETH_INFO_PEER, |m| {
                        // Down: a veth end brought up before its pair is linked fails with
                        // ENOTCONN (`veth_open`); enslaving it below brings it up.
                        m.raw(&netlink::ifinfomsg(port, 0, 0))
                            .attr_str(IFLA_IFNAME, &port_name)
                            .attr_u32(IFLA_NUM_TX_QUEUES, 1)
                            .attr_u32(IFLA_NUM_RX_QUEUES, 1)
                            .attr_u32(libc::IFLA_NET_NS_FD, switch.as_raw_fd() as u32);
                    });
                });
        });

    let Addresses { v4: ipv4, v6: ipv6 } = addresses;
    let mut v4 = Message::new(
        netlink::RTM_NEWADDR,
        netlink::NLM_F_CREATE | netlink::NLM_F_EXCL,
        &netlink::ifaddrmsg(libc::AF_INET, 24, 0, ETH0_INDEX as u32),
    );
    let broadcast = Ipv4Addr::from(u32::from(ipv4) | 0xff);
    v4.attr(IFA_LOCAL, &ipv4.octets())
        .attr(IFA_ADDRESS, &ipv4.octets())
        .attr(IFA_BROADCAST, &broadcast.octets());

    let nodad = libc::IFA_F_NODAD;
    let mut v6 = Message::new(
        netlink::RTM_NEWADDR,
        netlink::NLM_F_CREATE | netlink::NLM_F_EXCL,
        &netlink::ifaddrmsg(libc::AF_INET6, 64, nodad as u8, ETH0_INDEX as u32),
    );
    v6.attr(IFA_ADDRESS, &ipv6.octets())
        .attr_u32(IFA_FLAGS, nodad);

    let mut multicast = Message::new(
        netlink::RTM_NEWROUTE,
        netlink::NLM_F_CREATE | netlink::NLM_F_EXCL,
        &netlink::rtmsg(libc::AF_INET, 4, libc::RT_SCOPE_LINK),
    );
    multicast
        .attr(RTA_DST, &Ipv4Addr::new(224, 0, 0, 0).octets())
        .attr_u32(RTA_OIF, ETH0_INDEX as u32);

    // Everything in the host's namespace in one batch; the addresses may be added before
    // the switch's end is up.
    host.apply(vec![
        Call::new(
            veth,
            format!("RTM_NEWLINK veth eth0 (peer {port_name} in the switch)"),
            Some("veth pairs (CONFIG_VETH, module `veth`)"),
        ),
        neighbour_retry(libc::AF_INET, "arp_cache", None),
        // The first IPv6 request: without IPv6 the kernel has no `ndisc_cache` (ENOENT).
        neighbour_retry(libc::AF_INET6, "ndisc_cache", Some("IPv6 (CONFIG_IPV6)")),
        Call::new(v4, format!("RTM_NEWADDR {ipv4}/24 dev eth0"), None),
        Call::new(
            v6,
            format!("RTM_NEWADDR {ipv6}/64 dev eth0 nodad"),
            Some("IPv6 (CONFIG_IPV6)"),
        ),
        Call::new(
            multicast,
            "RTM_NEWROUTE 224.0.0.0/4 dev eth0 scope link",
            None,
        ),
    ])?;

    let mut enslave = Message::new(
        netlink::RTM_NEWLINK,
        0,
        &netlink::ifinfomsg(port, IFF_UP, IFF_UP),
    );
    enslave.attr_u32(libc::IFLA_MASTER, BRIDGE_INDEX as u32);
    switch_rtnl.apply_one(Call::new(
        enslave,
        format!("RTM_NEWLINK {port_name} master br0 up"),
        None,
    ))?;

    // Bringing the port up gave `eth0` its carrier, but a device that was up before its
    // carrier came sends nothing (its qdisc is `noop`, which drops) until the kernel's
    // link watcher gets to it, and that runs at most once a second: a host's first ARP
    // request was lost, and its first packet a second late, in about 1 in 30 networks
    // (and more under load). Grafting a root qdisc activates the device at once;
    // `noqueue` is what a veth has by default anyway. A kernel that refuses it (one too
    // old to attach `noqueue`) activates the device anyway, only later: the host works,
    // its first packet may be late.
    let _ = host.request(tc::noqueue_root(ETH0_INDEX));
    Ok(())
}

/// `eth0`'s neighbour table (`arp_cache` for IPv4, `ndisc_cache` for IPv6) asks again
/// after [`NEIGHBOUR_RETRY_MS`] (`RTM_SETNEIGHTBL`, rtnetlink(7); the `retrans_time_ms`
/// of arp(7) and ipv6(7)). A host sends as soon as it exists, and its first request can
/// be lost while the switch's new port is still being enabled: the bridge enables a port
/// once its operational state is up, which the kernel's link watcher sets asynchronously,
/// later under load. With the kernel's default the first packet then arrives a second
/// late, which a test that measures time reads as a fault; on a LAN of veth pairs a
/// tenth of that is plenty for an answer. A packet waiting for the answer is queued, not
/// lost (`unres_qlen_bytes`). `needs`: what the kernel lacks if it has no such table.
fn neighbour_retry(family: i32, table: &str, needs: Option<&'static str>) -> Call {
    let family = u8::try_from(family).unwrap_or(0);
    let mut m = Message::new(libc::RTM_SETNEIGHTBL, 0, &[family, 0, 0, 0]);
    m.attr_str(NDTA_NAME, table).nest(NDTA_PARMS, |m| {
        m.attr_u32(NDTPA_IFINDEX, ETH0_INDEX as u32)
            .attr(NDTPA_RETRANS_TIME, &NEIGHBOUR_RETRY_MS.to_ne_bytes());
    });
    Call::new(
        m,
        format!("RTM_SETNEIGHTBL {table} dev eth0 retrans_time {NEIGHBOUR_RETRY_MS}ms"),
        needs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_numbered_from_one_in_their_network_s_subnets() {
        let a = Addresses::of_host(7, 0);
        assert_eq!(a.v4, Ipv4Addr::new(10, 7, 0, 1));
        assert_eq!(a.v6, "fd00:6e73:7400:7::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(Addresses::of_host(0, 249).v4, Ipv4Addr::new(10, 0, 0, 250));
        assert_eq!(port_index(3), 103);
    }
}
