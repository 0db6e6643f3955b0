//! Virtual networks inside a test: hosts on a private switched LAN, and the faults a real
//! network has (partitions, one-way loss, delay, jitter, random loss, limited rate).
//!
//! Everything lives in namespaces owned by the test's own user namespace, so it needs no
//! privilege on the host and ends with the test's process:
//!
//! - the switch: a network namespace of its own holding a bridge `br0` (created there: a
//!   bridge cannot move between namespaces), multicast snooping off so neighbour
//!   discovery always floods;
//! - every namespace: made by one thread per network, one ahead of demand (see
//!   `namespace`);
//! - each host: a network namespace with `lo` up and `eth0`, one end of a veth pair whose
//!   other end `p<N>` is created straight in the switch's namespace and enslaved to the
//!   bridge; its addresses are added with `IFA_F_NODAD`, so IPv6 is usable at once;
//! - drops (partition, block): a `clsact` qdisc on the source's switch port with a `bpf`
//!   classifier in direct-action mode (classic BPF, see `filter`) that drops IP packets
//!   by destination. Dropping on the switch's ingress is what a cut cable looks like: the
//!   sender's `sendto` succeeds and nothing arrives (a drop in the sender's own OUTPUT
//!   chain would fail its `sendto` with EPERM);
//! - shapes: in the kernel where it can (see `qdisc`): an `htb` class per shaped direction
//!   on the receiver's switch port, with `netem` under it for a delay, jitter or loss;
//!   where the kernel has no netem (this project's CI kernel), those shapes use a relay
//!   thread per direction (see `relay`) that takes the packets the switch drops and sends
//!   them on, late, at a rate, or not at all.
//!
//! All configuration goes through rtnetlink (`netlink`); no `ip` or `tc` is ever run.

mod error;
mod filter;
mod hosts_file;
mod namespace;
mod netlink;
mod qdisc;
mod relay;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::CloneFlags;

use error::Error;
use namespace::Factory;
use netlink::{Message, Rtnl};
use relay::{Relay, Route};

/// Interface index of `br0` in the switch's namespace (`lo` is 1 in a new namespace).
const BRIDGE_INDEX: i32 = 2;
/// Interface index of `eth0` in each host's namespace.
const ETH0_INDEX: i32 = 2;
/// Host number N's port on the switch has index `PORT_BASE + N` (and name `p<N>`).
const PORT_BASE: i32 = 100;
/// Hosts per network: the addresses come from one /24.
const MAX_HOSTS: usize = 250;

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
const TCA_KIND: u16 = libc::TCA_KIND;
const TCA_OPTIONS: u16 = libc::TCA_OPTIONS;
const TCA_BPF_OPS_LEN: u16 = 4;
const TCA_BPF_OPS: u16 = 5;
const TCA_BPF_FLAGS: u16 = 8;
const TCA_BPF_FLAG_ACT_DIRECT: u32 = 1;
/// `TC_H_CLSACT` and the handle tc(8) gives the clsact qdisc.
const TC_H_CLSACT: u32 = 0xffff_fff1;
const CLSACT_HANDLE: u32 = 0xffff_0000;
/// `TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)`: the ingress hook of clsact.
const CLSACT_INGRESS: u32 = 0xffff_fff2;

/// Networks built so far in this process: the Nth gets the subnets numbered `N % 256`, so
/// the networks of one test are told apart in `/etc/hosts` and in packet captures.
static NETWORKS: AtomicU32 = AtomicU32::new(0);

/// A private switched LAN inside the test: an empty bridge until [`Network::host`] adds
/// hosts to it.
///
/// ```no_run
/// # use nstest::{ns_test, Network};
/// #[ns_test(net)]
/// fn talks() {
///     let net = Network::new();
///     let (a, b) = (net.host("a"), net.host("b"));
///     let ip = a.ipv4();
///     let server = a.spawn(|| {
///         let l = std::net::TcpListener::bind("0.0.0.0:80").unwrap();
///         l.accept().unwrap();
///     });
///     b.run(move || std::net::TcpStream::connect((ip, 80)).unwrap());
///     server.join().unwrap();
/// }
/// ```
pub struct Network {
    lan: Arc<Lan>,
}

/// One host of a [`Network`]: its own network namespace with `lo` and one interface on
/// the LAN. Cheap to clone; every clone is the same host.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

struct HostInner {
    name: String,
    index: usize,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
    netns: Arc<OwnedFd>,
    lan: Arc<Lan>,
}

/// What a shaped link does to each packet, in each direction, as netem would.
/// `Shape::default()` is a clean link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Shape {
    /// Added to every packet's trip.
    pub delay: Duration,
    /// The delay varies uniformly by up to this much either way (packets may reorder).
    pub jitter: Duration,
    /// The probability, `0.0..=1.0`, that a packet is lost.
    pub loss: f64,
    /// The link's rate in kilobits (1000 bits) per second; `None` for no limit. Frames
    /// wait in a queue of 1000; beyond it they are lost.
    pub rate_kbit: Option<u64>,
}

/// A fault in force: a partition, a one-way block or a shaped link. Dropping it, or
/// [`Fault::heal`], restores the network as it was without this fault (others stay).
#[must_use = "a Fault is healed as soon as it is dropped: bind it, as `let _cut = ...`"]
pub struct Fault {
    lan: Arc<Lan>,
    id: Option<u64>,
}

/// The switch: what every host and fault of one network shares.
struct Lan {
    number: u8,
    switch: Arc<OwnedFd>,
    state: Mutex<State>,
}

struct State {
    /// rtnetlink socket of the switch's namespace.
    rtnl: Rtnl,
    /// Where the hosts' namespaces come from.
    factory: Factory,
    hosts: Vec<Member>,
    ports: Vec<Port>,
    faults: BTreeMap<u64, Rule>,
    next_fault: u64,
}

struct Member {
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
    name: String,
}

/// What is installed on one switch port.
#[derive(Default)]
struct Port {
    clsact: bool,
    /// Destinations (host numbers) whose packets from this port are dropped.
    dropping: Option<BTreeSet<usize>>,
    /// Whether the htb root of shapes made in the kernel is on this port's egress.
    htb: bool,
    /// Sources (host numbers) whose packets to this port its classifier sends to a class,
    /// with the class's minor number.
    classifying: Option<BTreeMap<usize, u16>>,
}

/// One fault: directions (from, to) dropped, directions relayed, and directions shaped in
/// the kernel, each with the minor number of its class on `to`'s port (see `qdisc`).
struct Rule {
    drops: Vec<(usize, usize)>,
    relays: Vec<((usize, usize), Relay)>,
    classes: Vec<((usize, usize), u16)>,
}

impl Network {
    /// Builds an empty network: the switch's namespace and its bridge.
    ///
    /// # Panics
    ///
    /// Outside an `#[ns_test]`, and where the kernel refuses a step (the message names
    /// the call, the missing feature and what to do).
    #[allow(clippy::new_without_default)] // building namespaces is not a default value
    pub fn new() -> Network {
        if crate::process::running_test().is_none() {
            panic!(
                "nstest network: Network::new() was called outside an #[ns_test]: a Network \
                 is built inside the test's own user namespace, which only a test run by \
                 nstest has\n  fix: call it from a function marked #[ns_test], in a test \
                 target with `harness = false` that ends with `nstest::main!();`"
            );
        }
        let doing = "building the switch of a Network";
        let mut factory = Factory::start().unwrap_or_else(|e| panic!("{}", e.explain(doing)));
        let (switch, mut rtnl) = factory
            .take()
            .unwrap_or_else(|e| panic!("{}", e.explain(doing)));
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
        rtnl.request(bridge)
            .map_err(|source| Error::Netlink {
                call: "RTM_NEWLINK bridge br0".into(),
                needs: Some("bridges (CONFIG_BRIDGE, module `bridge`)"),
                source,
            })
            .unwrap_or_else(|e| panic!("{}", e.explain(doing)));
        let number = (NETWORKS.fetch_add(1, Ordering::Relaxed) % 256) as u8;
        Network {
            lan: Arc::new(Lan {
                number,
                switch: Arc::new(switch),
                state: Mutex::new(State {
                    rtnl,
                    factory,
                    hosts: Vec::new(),
                    ports: Vec::new(),
                    faults: BTreeMap::new(),
                    next_fault: 0,
                }),
            }),
        }
    }

    /// Adds a host named `name`: a new network namespace with `lo` up and `eth0` on the
    /// LAN, with the next IPv4 address of the network's /24 (10.N.0.1, 10.N.0.2, ...) and
    /// the next of its IPv6 /64 (fd00:6e73:7400:N::1, ...), both usable at once. In a test
    /// with a mount namespace the name also resolves, through the test's `/etc/hosts`.
    ///
    /// # Panics
    ///
    /// When `name` is not 1 to 63 of `a-z`, `0-9`, `-`, when the network already has a
    /// host of that name or 250 hosts, and where the kernel refuses a step.
    pub fn host(&self, name: &str) -> Host {
        let valid = (1..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            panic!(
                "nstest network: {name:?} is not a valid host name: a name is 1 to 63 of \
                 a-z, 0-9 and '-'"
            );
        }
        let mut state = self.lan.lock();
        if state.hosts.iter().any(|m| m.name == name) {
            panic!(
                "nstest network: this network already has a host named {name:?}: names are \
                 unique within a network"
            );
        }
        let index = state.hosts.len();
        if index >= MAX_HOSTS {
            panic!("nstest network: a network has at most {MAX_HOSTS} hosts (one /24)");
        }
        let number = self.lan.number;
        let ipv4 = Ipv4Addr::new(10, number, 0, (index + 1) as u8);
        let ipv6 = Ipv6Addr::new(
            0xfd00,
            0x6e73,
            0x7400,
            number.into(),
            0,
            0,
            0,
            (index + 1) as u16,
        );
        let doing = format!("adding host {name:?} to a Network");
        let netns = add_host(&mut state, &self.lan.switch, index, ipv4, ipv6)
            .unwrap_or_else(|e| panic!("{}", e.explain(&doing)));
        state.hosts.push(Member {
            ipv4,
            ipv6,
            name: name.to_owned(),
        });
        state.ports.push(Port::default());
        drop(state);
        if crate::process::running_test().is_some_and(|t| t.plan.mount) {
            hosts_file::add(name, ipv4, ipv6)
                .unwrap_or_else(|e| panic!("{}", e.explain("listing the host in /etc/hosts")));
        }
        Host {
            inner: Arc::new(HostInner {
                name: name.to_owned(),
                index,
                ipv4,
                ipv6,
                netns: Arc::new(netns),
                lan: self.lan.clone(),
            }),
        }
    }

    /// Cuts the network in two: every IP packet between a host of `side_a` and a host of
    /// `side_b`, either way, is dropped silently on the switch (a `connect` times out, a
    /// datagram vanishes, an open connection stalls). ARP and neighbour discovery still
    /// pass. Lasts until the [`Fault`] is healed or dropped.
    ///
    /// # Panics
    ///
    /// When a host is of another network or on both sides, and where the kernel refuses
    /// the classifier (the message names what it lacks).
    pub fn partition(&self, side_a: &[&Host], side_b: &[&Host]) -> Fault {
        let a = self.numbers(side_a, "partition");
        let b = self.numbers(side_b, "partition");
        if let Some(both) = a.iter().find(|x| b.contains(x)) {
            panic!(
                "nstest network: partition: host {:?} is on both sides",
                self.lan.lock().hosts[*both].name
            );
        }
        let mut drops = Vec::new();
        for &x in &a {
            for &y in &b {
                drops.push((x, y));
                drops.push((y, x));
            }
        }
        self.add_fault(drops, Vec::new(), None, "partitioning the network")
    }

    /// Drops every IP packet from `from` to `to`, silently; packets from `to` to `from`
    /// are still delivered.
    ///
    /// # Panics
    ///
    /// As [`Network::partition`], and when `from` and `to` are the same host.
    pub fn block(&self, from: &Host, to: &Host) -> Fault {
        let pair = self.pair(from, to, "block");
        self.add_fault(vec![pair], Vec::new(), None, "blocking one direction")
    }

    /// Shapes the link between `a` and `b`: in each direction, every packet gets the
    /// delay, jitter, loss and rate of `shape`. Other pairs are untouched. Made in the
    /// kernel (htb, and netem where the kernel has it), or else by a relay thread per
    /// direction; either way it behaves the same.
    ///
    /// # Panics
    ///
    /// When `shape.loss` is not within `0.0..=1.0`, as [`Network::block`], and where the
    /// kernel lacks what shaping needs (the message names it).
    pub fn shape(&self, a: &Host, b: &Host, shape: Shape) -> Fault {
        if !(0.0..=1.0).contains(&shape.loss) {
            panic!(
                "nstest network: Shape::loss is a probability, 0.0 to 1.0, not {}",
                shape.loss
            );
        }
        let (x, y) = self.pair(a, b, "shape");
        self.add_fault(
            Vec::new(),
            vec![(x, y), (y, x)],
            Some(shape),
            "shaping a link",
        )
    }

    fn numbers(&self, hosts: &[&Host], what: &str) -> Vec<usize> {
        hosts
            .iter()
            .map(|h| {
                if !Arc::ptr_eq(&h.inner.lan, &self.lan) {
                    panic!(
                        "nstest network: {what}: host {:?} belongs to another network",
                        h.name()
                    );
                }
                h.inner.index
            })
            .collect()
    }

    fn pair(&self, from: &Host, to: &Host, what: &str) -> (usize, usize) {
        let n = self.numbers(&[from, to], what);
        if n[0] == n[1] {
            panic!(
                "nstest network: {what}: both ends are host {:?}; a host's traffic to itself \
                 never crosses the network",
                from.name()
            );
        }
        (n[0], n[1])
    }

    fn add_fault(
        &self,
        drops: Vec<(usize, usize)>,
        relayed: Vec<(usize, usize)>,
        shape: Option<Shape>,
        doing: &str,
    ) -> Fault {
        let mut state = self.lan.lock();
        // In the kernel where it can be (see `qdisc`): a rate alone always, the rest where
        // the kernel has netem; through relays otherwise.
        let in_kernel = shape
            .is_some_and(|shape| !qdisc::needs_netem(&shape) || qdisc::has_netem(&mut state.rtnl));
        let mut classes = Vec::new();
        if let (true, Some(shape)) = (in_kernel, shape) {
            for (x, y) in relayed {
                match state.add_class(y, &shape) {
                    Ok(minor) => classes.push(((x, y), minor)),
                    Err(e) => {
                        let _ = state.remove_classes(&classes);
                        panic!("{}", e.explain(doing));
                    }
                }
            }
            return self.add_rule(state, drops, Vec::new(), classes, doing);
        }
        let mut relays = Vec::new();
        for (x, y) in relayed {
            let route = Route {
                from_port: PORT_BASE + x as i32,
                to_port: PORT_BASE + y as i32,
                to: (state.hosts[y].ipv4, state.hosts[y].ipv6),
            };
            let relay = Relay::start(self.lan.switch.clone(), route, shape.unwrap_or_default())
                .unwrap_or_else(|e| panic!("{}", e.explain(doing)));
            relays.push(((x, y), relay));
        }
        self.add_rule(state, drops, relays, classes, doing)
    }

    /// Puts a fault in force: its drops, relays and classes are ready; the classifiers
    /// are brought in line with it.
    fn add_rule(
        &self,
        mut state: MutexGuard<'_, State>,
        drops: Vec<(usize, usize)>,
        relays: Vec<((usize, usize), Relay)>,
        classes: Vec<((usize, usize), u16)>,
        doing: &str,
    ) -> Fault {
        let id = state.next_fault;
        state.next_fault += 1;
        let rule = Rule {
            drops,
            relays,
            classes,
        };
        let ports = rule.ports();
        state.faults.insert(id, rule);
        if let Err(e) = state.apply(&ports) {
            if let Some(rule) = state.faults.remove(&id) {
                let _ = state.apply(&ports);
                let _ = state.remove_classes(&rule.classes);
            }
            panic!("{}", e.explain(doing));
        }
        Fault {
            lan: self.lan.clone(),
            id: Some(id),
        }
    }
}

impl Lan {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Rule {
    /// The ports (host numbers) whose classifiers this rule touches: the sources of its
    /// drops and relays (ingress), the destinations of its classes (egress).
    fn ports(&self) -> BTreeSet<usize> {
        let drops = self.drops.iter().map(|(x, _)| *x);
        drops
            .chain(self.relays.iter().map(|((x, _), _)| *x))
            .chain(self.classes.iter().map(|((_, y), _)| *y))
            .collect()
    }
}

impl State {
    /// Brings the classifiers of `ports` and the relays' blocked flags in line with the
    /// faults in force.
    fn apply(&mut self, ports: &BTreeSet<usize>) -> Result<(), Error> {
        let drops: BTreeSet<(usize, usize)> = self
            .faults
            .values()
            .flat_map(|r| r.drops.iter().copied())
            .collect();
        for rule in self.faults.values() {
            for (pair, relay) in &rule.relays {
                relay.blocked.store(drops.contains(pair), Ordering::SeqCst);
            }
        }
        for &port in ports {
            let mut dsts: BTreeSet<usize> = drops
                .iter()
                .filter(|(x, _)| *x == port)
                .map(|(_, y)| *y)
                .collect();
            for rule in self.faults.values() {
                dsts.extend(
                    rule.relays
                        .iter()
                        .filter(|((x, _), _)| *x == port)
                        .map(|((_, y), _)| *y),
                );
            }
            self.classify(port)?;
            let unchanged = match &self.ports[port].dropping {
                Some(now) => *now == dsts,
                None => dsts.is_empty(),
            };
            if unchanged {
                continue;
            }
            let ifindex = PORT_BASE + port as i32;
            if !self.ports[port].clsact {
                let qdisc = {
                    let mut m = Message::new(
                        netlink::RTM_NEWQDISC,
                        netlink::NLM_F_CREATE | netlink::NLM_F_EXCL,
                        &netlink::tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0),
                    );
                    m.attr_str(TCA_KIND, "clsact");
                    m
                };
                self.rtnl.request(qdisc).map_err(|source| Error::Netlink {
                    call: format!("RTM_NEWQDISC clsact dev p{port}"),
                    needs: Some("the clsact qdisc (CONFIG_NET_SCH_INGRESS, module `sch_ingress`)"),
                    source,
                })?;
                self.ports[port].clsact = true;
            }
            let addrs: Vec<(Ipv4Addr, Ipv6Addr)> = dsts
                .iter()
                .map(|&y| (self.hosts[y].ipv4, self.hosts[y].ipv6))
                .collect();
            let program = filter::packets_to(&addrs, false, filter::DROP);
            self.rtnl
                .request(drop_filter(ifindex, &program))
                .map_err(|source| Error::Netlink {
                    call: format!("RTM_NEWTFILTER bpf direct-action, ingress of p{port}"),
                    needs: Some("the bpf classifier (CONFIG_NET_CLS_BPF, module `cls_bpf`)"),
                    source,
                })?;
            self.ports[port].dropping = Some(dsts);
        }
        Ok(())
    }

    /// Brings the classifier on the egress of `port` in line with the classes of the
    /// faults in force: packets to that host from each source shaped in the kernel go to
    /// that source's class (the newest fault's, where two shape one direction).
    fn classify(&mut self, port: usize) -> Result<(), Error> {
        let mut sources = BTreeMap::new();
        for rule in self.faults.values() {
            for ((x, y), minor) in &rule.classes {
                if *y == port {
                    sources.insert(*x, *minor);
                }
            }
        }
        let unchanged = match &self.ports[port].classifying {
            Some(now) => *now == sources,
            None => sources.is_empty(),
        };
        if unchanged {
            return Ok(());
        }
        let verdicts: Vec<((Ipv4Addr, Ipv6Addr), u32)> = sources
            .iter()
            .map(|(&x, &minor)| {
                let host = &self.hosts[x];
                ((host.ipv4, host.ipv6), qdisc::HTB_HANDLE | u32::from(minor))
            })
            .collect();
        let to = (self.hosts[port].ipv4, self.hosts[port].ipv6);
        let program = filter::packets_from_to(&verdicts, to, 0);
        self.rtnl
            .request(qdisc::classifier(PORT_BASE + port as i32, &program))
            .map_err(|source| Error::Netlink {
                call: format!("RTM_NEWTFILTER bpf, htb 1: on p{port}"),
                needs: Some("the bpf classifier (CONFIG_NET_CLS_BPF, module `cls_bpf`)"),
                source,
            })?;
        self.ports[port].classifying = Some(sources);
        Ok(())
    }

    /// Adds a class with `shape` (and netem under it where the shape needs it) to the
    /// htb on `port`'s egress, adding the htb first if the port has none. Returns its
    /// minor number; no packet goes to it until a classifier says so.
    fn add_class(&mut self, port: usize, shape: &Shape) -> Result<u16, Error> {
        let ifindex = PORT_BASE + port as i32;
        if !self.ports[port].htb {
            self.rtnl
                .request(qdisc::htb_root(ifindex))
                .map_err(|source| Error::Netlink {
                    call: format!("RTM_NEWQDISC htb 1: root dev p{port}"),
                    needs: Some("the htb qdisc (CONFIG_NET_SCH_HTB, module `sch_htb`)"),
                    source,
                })?;
            self.ports[port].htb = true;
        }
        let used: BTreeSet<u16> = self
            .faults
            .values()
            .flat_map(|r| r.classes.iter())
            .filter(|((_, y), _)| *y == port)
            .map(|(_, minor)| *minor)
            .collect();
        // 1: is the htb itself; a class's netem takes its minor as its major, which must
        // stay clear of the majors tc reserves (ffff: is the port's clsact).
        let minor = (2..0xfff0)
            .find(|m| !used.contains(m))
            .ok_or(Error::Netlink {
                call: format!("RTM_NEWTCLASS htb dev p{port}: 65,518 shapes at once"),
                needs: None,
                source: nix::errno::Errno::ENOSPC,
            })?;
        let rate = match shape.rate_kbit {
            Some(kbit) => format!("rate {kbit}kbit"),
            None => "no rate".into(),
        };
        let mut steps = vec![Step::new(
            qdisc::htb_class(ifindex, minor, shape.rate_kbit),
            format!("RTM_NEWTCLASS htb 1:{minor:x} {rate} dev p{port}"),
            None,
        )];
        if qdisc::needs_netem(shape) {
            steps.push(Step::new(
                qdisc::netem_leaf(ifindex, minor, shape),
                format!("RTM_NEWQDISC netem {minor:x}: parent 1:{minor:x} dev p{port}"),
                Some("netem (CONFIG_NET_SCH_NETEM, module `sch_netem`)"),
            ));
        }
        if let Err(e) = send_all(&mut self.rtnl, steps) {
            let _ = self.rtnl.request(qdisc::delete_class(ifindex, minor));
            return Err(e);
        }
        Ok(minor)
    }

    /// Removes classes no classifier sends packets to any more (with what is under them).
    fn remove_classes(&mut self, classes: &[((usize, usize), u16)]) -> Result<(), Error> {
        let steps = classes
            .iter()
            .map(|((_, y), minor)| {
                Step::new(
                    qdisc::delete_class(PORT_BASE + *y as i32, *minor),
                    format!("RTM_DELTCLASS htb 1:{minor:x} dev p{y}"),
                    None,
                )
            })
            .collect();
        send_all(&mut self.rtnl, steps)
    }
}

/// The `bpf` classifier (priority 1, handle 1, all protocols) on a port's ingress that
/// drops what `program` matches. Direct action: the program's return value is the verdict
/// (see `filter::DROP`), so no action module is needed (`act_gact` is often not built, as
/// on this project's CI kernel). Sent again with a new program, it replaces the old one.
fn drop_filter(ifindex: i32, program: &filter::Program) -> Message {
    let all = u32::from((libc::ETH_P_ALL as u16).to_be());
    let mut m = Message::new(
        netlink::RTM_NEWTFILTER,
        netlink::NLM_F_CREATE,
        &netlink::tcmsg(ifindex, 1, CLSACT_INGRESS, (1 << 16) | all),
    );
    let len = u16::try_from(program.len()).expect("a program of a few hundred instructions");
    m.attr_str(TCA_KIND, "bpf").nest(TCA_OPTIONS, |m| {
        m.attr(TCA_BPF_OPS_LEN, &len.to_ne_bytes())
            .attr(TCA_BPF_OPS, &filter::to_bytes(program))
            .attr_u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
    });
    m
}

/// Creates host number `index`: its namespace (with `lo` up), the veth pair into the
/// switch and both addresses in one batch, then the port enslaved to the bridge. Returns
/// the namespace.
fn add_host(
    state: &mut State,
    switch: &OwnedFd,
    index: usize,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
) -> Result<OwnedFd, Error> {
    let (netns, mut rtnl) = state.factory.take()?;
    let port = PORT_BASE + index as i32;
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

    // Everything in the host's namespace in one batch; the addresses may be added before
    // the switch's end is up.
    send_all(
        &mut rtnl,
        vec![
            Step::new(
                veth,
                format!("RTM_NEWLINK veth eth0 (peer {port_name} in the switch)"),
                Some("veth pairs (CONFIG_VETH, module `veth`)"),
            ),
            Step::new(v4, format!("RTM_NEWADDR {ipv4}/24 dev eth0"), None),
            Step::new(
                v6,
                format!("RTM_NEWADDR {ipv6}/64 dev eth0 nodad"),
                Some("IPv6 (CONFIG_IPV6)"),
            ),
        ],
    )?;

    let mut enslave = Message::new(
        netlink::RTM_NEWLINK,
        0,
        &netlink::ifinfomsg(port, IFF_UP, IFF_UP),
    );
    enslave.attr_u32(libc::IFLA_MASTER, BRIDGE_INDEX as u32);
    send_all(
        &mut state.rtnl,
        vec![Step::new(
            enslave,
            format!("RTM_NEWLINK {port_name} master br0 up"),
            None,
        )],
    )?;

    // Bringing the port up gave `eth0` its carrier, but a device that was up before its
    // carrier came sends nothing (its qdisc is `noop`, which drops) until the kernel's
    // link watcher gets to it, and that runs at most once a second: a host's first ARP
    // request was lost, and its first packet a second late, in about 1 in 30 networks
    // (and more under load). Grafting a root qdisc activates the device at once;
    // `noqueue` is what a veth has by default anyway.
    let mut activate = Message::new(
        netlink::RTM_NEWQDISC,
        netlink::NLM_F_CREATE | netlink::NLM_F_REPLACE,
        &netlink::tcmsg(ETH0_INDEX, 0, qdisc::TC_H_ROOT, 0),
    );
    activate.attr_str(TCA_KIND, "noqueue");
    // A kernel that refuses it (one too old to attach `noqueue`) activates the device
    // anyway, only later: the host works, its first packet may be late.
    let _ = rtnl.request(activate);
    Ok(netns)
}

/// One request of a batch, with what to call it and what it needs when it is refused.
struct Step {
    message: Message,
    call: String,
    needs: Option<&'static str>,
}

impl Step {
    fn new(message: Message, call: String, needs: Option<&'static str>) -> Step {
        Step {
            message,
            call,
            needs,
        }
    }
}

/// Sends `steps` as one batch; the first one refused is the error (those after it may
/// have failed only because of it).
fn send_all(rtnl: &mut Rtnl, steps: Vec<Step>) -> Result<(), Error> {
    let mut names = Vec::with_capacity(steps.len());
    let mut messages = Vec::with_capacity(steps.len());
    for step in steps {
        names.push((step.call, step.needs));
        messages.push(step.message);
    }
    rtnl.batch(messages).map_err(|(index, source)| {
        let (call, needs) = names.swap_remove(index);
        Error::Netlink {
            call,
            needs,
            source,
        }
    })
}

impl Host {
    /// The name given to [`Network::host`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The host's IPv4 address on the LAN (a /24 from 10.0.0.0/8).
    pub fn ipv4(&self) -> Ipv4Addr {
        self.inner.ipv4
    }

    /// The host's IPv6 address on the LAN (a /64 from fd00::/8, unique-local).
    pub fn ipv6(&self) -> Ipv6Addr {
        self.inner.ipv6
    }

    /// Runs `f` to completion on a thread inside this host's network namespace, so every
    /// socket it creates is on this host, and returns what it returns.
    ///
    /// # Panics
    ///
    /// When `f` panics (with its panic), or when the thread cannot enter the namespace.
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(self.inner.name.clone())
                .spawn_scoped(scope, || {
                    self.enter();
                    f()
                })
                .unwrap_or_else(|e| panic!("nstest network: spawning a thread: {e}"));
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Starts `f` on a thread inside this host's network namespace (see [`Host::run`]).
    ///
    /// # Panics
    ///
    /// When the thread cannot be spawned; the thread panics when it cannot enter the
    /// namespace.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let host = self.clone();
        std::thread::Builder::new()
            .name(self.inner.name.clone())
            .spawn(move || {
                host.enter();
                f()
            })
            .unwrap_or_else(|e| panic!("nstest network: spawning a thread: {e}"))
    }

    /// A [`Command`] for `program` whose child starts inside this host's network
    /// namespace (it enters it between fork and exec). Like every process a test starts,
    /// it is killed when the test ends.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        crate::sys::enter_netns_before_exec(&mut command, self.inner.netns.clone());
        command
    }

    /// Runs `future` to completion on a current-thread tokio runtime, on a thread inside
    /// this host's network namespace. Blocks the calling thread meanwhile.
    ///
    /// # Panics
    ///
    /// As [`Host::run`], and when the runtime cannot be built.
    #[cfg(feature = "tokio")]
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        self.run(move || current_thread_runtime().block_on(future))
    }

    /// Starts `future` on a current-thread tokio runtime of its own, on a thread inside
    /// this host's network namespace; join the handle for its output.
    ///
    /// # Panics
    ///
    /// As [`Host::spawn`]; the thread panics when the runtime cannot be built.
    #[cfg(feature = "tokio")]
    pub fn spawn_async<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn(move || current_thread_runtime().block_on(future))
    }

    /// Moves the calling thread into this host's network namespace.
    fn enter(&self) {
        nix::sched::setns(self.inner.netns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap_or_else(
            |source| {
                let e = Error::Sys {
                    call: "setns(host, CLONE_NEWNET)".into(),
                    source,
                };
                panic!(
                    "{}",
                    e.explain(&format!("entering host {:?}", self.inner.name))
                )
            },
        );
    }
}

#[cfg(feature = "tokio")]
fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("nstest network: building a tokio runtime for a host")
}

impl Fault {
    /// Ends the fault now; the same as dropping it, with a panic instead of a message
    /// when the kernel refuses.
    ///
    /// # Panics
    ///
    /// When the switch's classifier cannot be changed back.
    pub fn heal(mut self) {
        if let Err(e) = self.restore() {
            panic!("{}", e.explain("healing a fault"));
        }
    }

    fn restore(&mut self) -> Result<(), Error> {
        let Some(id) = self.id.take() else {
            return Ok(());
        };
        let mut state = self.lan.lock();
        let Some(rule) = state.faults.remove(&id) else {
            return Ok(());
        };
        // Stop dropping before the relays stop, so nothing is lost in between (a few
        // frames may arrive twice); stop classifying before the classes go.
        let applied = state.apply(&rule.ports());
        let removed = state.remove_classes(&rule.classes);
        drop(rule);
        applied.and(removed)
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            let text = e.explain("healing a fault");
            if std::thread::panicking() {
                eprintln!("{text}");
            } else {
                panic!("{text}");
            }
        }
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lan.lock();
        let names: Vec<&str> = state.hosts.iter().map(|m| m.name.as_str()).collect();
        f.debug_struct("Network")
            .field("subnet", &format!("10.{}.0.0/24", self.lan.number))
            .field("hosts", &names)
            .field("faults", &state.faults.len())
            .finish()
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.inner.name)
            .field("ipv4", &self.inner.ipv4)
            .field("ipv6", &self.inner.ipv6)
            .finish()
    }
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault").field("id", &self.id).finish()
    }
}
