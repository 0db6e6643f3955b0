//! The public API of private networks inside a test ([`Network`], [`Fault`], [`Shape`];
//! [`Host`] is in `host`), called from the test's own threads: hosts on a private switched
//! LAN, and the faults a real network has (partitions, one-way loss, delay, jitter, random
//! loss, limited rate).
//!
//! Everything lives in namespaces owned by the test's own user namespace, so it needs no
//! privilege on the host and ends with the test's process. One file per job:
//!
//! - `switch`: the switch's state behind one lock (hosts, faults in force, what each port
//!   holds); the switch is a network namespace of its own holding a bridge `br0`;
//! - `namespace`: every namespace, made by one thread per network, one ahead of demand;
//! - `link`: the bridge, and each host's veth pair into it with its addresses: a network
//!   namespace with `lo` up and `eth0`, whose other end `p<N>` is created straight in the
//!   switch's namespace and enslaved to the bridge;
//! - `tc` and `filter`: drops (partition, block) are a `bpf` classifier (classic BPF) on
//!   the source's switch port, dropping IP packets by destination. Dropping on the
//!   switch's ingress is what a cut cable looks like: the sender's `sendto` succeeds and
//!   nothing arrives (a drop in the sender's own OUTPUT chain would fail its `sendto` with
//!   EPERM). Shapes are in the kernel where it can: an `htb` class per shaped direction on
//!   the receiver's switch port, with `netem` under it for a delay, jitter or loss;
//! - `relay`: where the kernel has no netem (this project's CI kernel), those shapes use a
//!   relay thread per direction that takes the packets the switch drops and sends them
//!   on, late, at a rate, or not at all;
//! - `host`: threads and commands inside a host; `hosts_file`: the test's `/etc/hosts`;
//! - `netlink` and `error`: the rtnetlink client every configuration goes through (no
//!   `ip` or `tc` is ever run), and what failed.

mod capture;
mod chaos;
mod clock;
mod error;
mod filter;
mod host;
mod host_view;
mod hosts_file;
mod link;
mod namespace;
mod netlink;
mod pcapng;
mod relay;
mod rng;
mod schedule;
mod switch;
mod tc;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capture::Capture;
pub use chaos::Chaos;
pub use host::Host;
use host::HostInner;
pub(crate) use host_view::prepare;
use link::Addresses;
pub use schedule::ChaosGuard;
use switch::{Direction, Lan};

/// Hosts per network: the addresses come from one /24.
const MAX_HOSTS: usize = 250;

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
    /// The capture of this network's traffic, once [`Network::capture`] started it.
    capture: Mutex<Option<Capture>>,
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
        let number = (NETWORKS.fetch_add(1, Ordering::Relaxed) % 256) as u8;
        let lan = Lan::new(number)
            .unwrap_or_else(|e| panic!("{}", e.explain("building the switch of a Network")));
        Network {
            lan: Arc::new(lan),
            capture: Mutex::new(None),
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
        if state.host_names().any(|n| n == name) {
            panic!(
                "nstest network: this network already has a host named {name:?}: names are \
                 unique within a network"
            );
        }
        let index = state.host_count();
        if index >= MAX_HOSTS {
            panic!("nstest network: a network has at most {MAX_HOSTS} hosts (one /24)");
        }
        let addresses = Addresses::of_host(self.lan.number, index);
        let netns = state
            .add_host(&self.lan.switch, name, addresses)
            .unwrap_or_else(|e| {
                panic!(
                    "{}",
                    e.explain(&format!("adding host {name:?} to a Network"))
                )
            });
        drop(state);
        if crate::process::running_test().is_some_and(|t| t.plan.mount) {
            hosts_file::add(name, addresses.v4, addresses.v6)
                .unwrap_or_else(|e| panic!("{}", e.explain("listing the host in /etc/hosts")));
        }
        if let Some(capture) = &*self.capture.lock().unwrap_or_else(|e| e.into_inner()) {
            capture.record_hosts(index + 1);
        }
        Host {
            inner: Arc::new(HostInner {
                name: name.to_owned(),
                index,
                addresses,
                netns: Arc::new(netns),
                lan: self.lan.clone(),
                clock: Mutex::new(None),
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
        if let Some(&both) = a.iter().find(|host| b.contains(host)) {
            panic!(
                "nstest network: partition: host {:?} is on both sides",
                self.lan.lock().host_name(both)
            );
        }
        let drops = Direction::between(&a, &b);
        self.add_fault(drops, Vec::new(), None, "partitioning the network")
    }

    /// Drops every IP packet from `from` to `to`, silently; packets from `to` to `from`
    /// are still delivered.
    ///
    /// # Panics
    ///
    /// As [`Network::partition`], and when `from` and `to` are the same host.
    pub fn block(&self, from: &Host, to: &Host) -> Fault {
        let direction = self.direction(from, to, "block");
        self.add_fault(vec![direction], Vec::new(), None, "blocking one direction")
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
        let direction = self.direction(a, b, "shape");
        self.add_fault(
            Vec::new(),
            vec![direction, direction.reverse()],
            Some(shape),
            "shaping a link",
        )
    }

    /// Starts a schedule of random faults drawn from `chaos`'s seed, on a thread of its
    /// own, over the hosts present and those added later; returns its guard. Each period
    /// (`Chaos::every`) heals the last fault and draws the next: one of the kinds the
    /// schedule enables, or a calm period, each equally likely. The same seed gives the same
    /// events; `NSTEST_SEED=<n>` in the environment replaces every seed given in code, and
    /// with neither a seed is drawn at random. When the test fails, its failure section
    /// names the seed and the command that replays it:
    /// `chaos seed N: replay with NSTEST_SEED=N cargo test -- --exact NAME`.
    ///
    /// # Panics
    ///
    /// When `chaos` enables no kind of fault, has a zero period, a loss outside
    /// `0.0..=1.0` or a delay range that ends before it starts, or when `NSTEST_SEED` is
    /// not a decimal `u64`.
    pub fn chaos(&self, chaos: Chaos) -> ChaosGuard {
        let seed = chaos::choose_seed(chaos.seed_given());
        ChaosGuard::start(self.lan.clone(), chaos, seed)
    }

    /// Records every host's traffic from now on (both directions of its link, present
    /// hosts and those added later) into one pcapng file for this network, one interface
    /// per host named after it, until the network is dropped; returns the file's absolute
    /// path. Calling it again returns the same file.
    ///
    /// The file is `nstest-capture/<test>-<suffix>/net<N>.pcapng` under the target
    /// directory of the test binary (`target/debug`), or under the host's temporary
    /// directory when that is not writable; it outlives the test's sandbox. When the test
    /// fails, the file is kept and its failure section names it; when it passes, the file
    /// is removed. It grows to 64 MiB at most (`NSTEST_CAPTURE_LIMIT=<bytes>` sets
    /// another cap); recording then stops, and the failure section says so. Open it with
    /// Wireshark, `tshark -r FILE` or `tcpdump -r FILE`; no privilege and no capture
    /// tool is needed to make it.
    ///
    /// # Panics
    ///
    /// When neither directory can hold the file (the message names the call), or the
    /// capture thread cannot be started.
    pub fn capture(&self) -> PathBuf {
        let mut capture = self.capture.lock().unwrap_or_else(|e| e.into_inner());
        if capture.is_none() {
            let started = Capture::start(self.lan.clone())
                .unwrap_or_else(|e| panic!("{}", e.explain("starting a packet capture")));
            *capture = Some(started);
        }
        capture
            .as_ref()
            .map(|c| c.path().to_owned())
            .expect("started above")
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

    fn direction(&self, from: &Host, to: &Host, what: &str) -> Direction {
        let n = self.numbers(&[from, to], what);
        if n[0] == n[1] {
            panic!(
                "nstest network: {what}: both ends are host {:?}; a host's traffic to itself \
                 never crosses the network",
                from.name()
            );
        }
        Direction {
            from: n[0],
            to: n[1],
        }
    }

    fn add_fault(
        &self,
        drops: Vec<Direction>,
        shaped: Vec<Direction>,
        shape: Option<Shape>,
        doing: &str,
    ) -> Fault {
        let id = self
            .lan
            .add_fault(drops, shaped, shape)
            .unwrap_or_else(|e| panic!("{}", e.explain(doing)));
        Fault {
            lan: self.lan.clone(),
            id: Some(id),
        }
    }
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

    fn restore(&mut self) -> Result<(), error::Error> {
        match self.id.take() {
            Some(id) => self.lan.heal(id),
            None => Ok(()),
        }
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            error::panic_unless_unwinding(&e.explain("healing a fault"));
        }
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lan.lock();
        let names: Vec<&str> = state.host_names().collect();
        f.debug_struct("Network")
            .field("subnet", &format!("10.{}.0.0/24", self.lan.number))
            .field("hosts", &names)
            .field("faults", &state.fault_count())
            .finish()
    }
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault").field("id", &self.id).finish()
    }
}
