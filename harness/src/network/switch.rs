//! The switch's state, kept in the test process behind one lock: its hosts, the faults in
//! force, and the classifiers, classes and relays on its ports that make those faults.
//!
//! Each fault is a [`Rule`]: directions dropped on the switch, directions relayed (shaped
//! in user space, see `relay`), and directions shaped in the kernel (a class each, see
//! `tc`). Adding or removing a rule recomputes what the ports it touches must hold from
//! all the rules in force, and sends only what changed.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use super::Shape;
use super::error::Error;
use super::filter::{self, Source};
use super::link::{self, Addresses};
use super::namespace::{Factory, Made};
use super::netlink::{Call, Rtnl};
use super::relay::{Relay, Route};
use super::tc::{self, Hook};

/// The switch: what every host and fault of one network shares.
pub(super) struct Lan {
    /// The network's number, the M of its subnets 10.M.0.0/24 and fd00:6e73:7400:M::/64.
    pub(super) number: u8,
    /// The switch's network namespace.
    pub(super) switch: Arc<OwnedFd>,
    state: Mutex<State>,
}

/// What the lock of a [`Lan`] guards.
pub(super) struct State {
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
    name: String,
    addresses: Addresses,
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

/// Traffic from one host to another, by host number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Direction {
    pub(super) from: usize,
    pub(super) to: usize,
}

impl Direction {
    /// Every direction between a host of `side_a` and one of `side_b`, both ways: what a
    /// partition drops.
    pub(super) fn between(side_a: &[usize], side_b: &[usize]) -> Vec<Direction> {
        let mut all = Vec::with_capacity(2 * side_a.len() * side_b.len());
        for &from in side_a {
            for &to in side_b {
                let d = Direction { from, to };
                all.extend([d, d.reverse()]);
            }
        }
        all
    }

    pub(super) fn reverse(self) -> Direction {
        Direction {
            from: self.to,
            to: self.from,
        }
    }
}

/// A direction shaped by a relay thread.
struct Relayed {
    direction: Direction,
    relay: Relay,
}

/// A direction shaped in the kernel, by class `1:minor` on the destination's port.
#[derive(Debug, Clone, Copy)]
struct Class {
    direction: Direction,
    minor: u16,
}

/// One fault in force.
struct Rule {
    drops: Vec<Direction>,
    relays: Vec<Relayed>,
    classes: Vec<Class>,
}

impl Lan {
    /// Builds the switch: starts the namespace factory, takes the switch's namespace from
    /// it and makes the bridge there.
    ///
    /// # Errors
    ///
    /// The call that failed.
    pub(super) fn new(number: u8) -> Result<Lan, Error> {
        let mut factory = Factory::start()?;
        let Made {
            netns: switch,
            mut rtnl,
        } = factory.take()?;
        link::add_bridge(&mut rtnl)?;
        Ok(Lan {
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
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts a fault in force: `drops` dropped on the switch, `shaped` given `shape` (in the
    /// kernel where it can be, by relays otherwise). Returns the fault's id for
    /// [`Lan::heal`].
    ///
    /// # Errors
    ///
    /// The call that failed; nothing of the fault is left in force then.
    pub(super) fn add_fault(
        &self,
        drops: Vec<Direction>,
        shaped: Vec<Direction>,
        shape: Option<Shape>,
    ) -> Result<u64, Error> {
        let mut state = self.lock();
        // In the kernel where it can be (see `tc`): a rate alone always, the rest where
        // the kernel has netem; through relays otherwise.
        let in_kernel =
            shape.is_some_and(|shape| !tc::needs_netem(&shape) || tc::has_netem(&mut state.rtnl));
        let mut rule = Rule {
            drops,
            relays: Vec::new(),
            classes: Vec::new(),
        };
        match shape {
            Some(shape) if in_kernel => {
                for direction in shaped {
                    match state.add_class(direction.to, &shape) {
                        Ok(minor) => rule.classes.push(Class { direction, minor }),
                        Err(e) => {
                            let _ = state.remove_classes(&rule.classes);
                            return Err(e);
                        }
                    }
                }
            }
            _ => {
                for direction in shaped {
                    let route = Route {
                        from_port: link::port_index(direction.from),
                        to_port: link::port_index(direction.to),
                        to: state.hosts[direction.to].addresses,
                    };
                    // A relay that fails to start stops those started before it as the
                    // rule is dropped.
                    let relay =
                        Relay::start(self.switch.clone(), route, shape.unwrap_or_default())?;
                    rule.relays.push(Relayed { direction, relay });
                }
            }
        }
        let id = state.next_fault;
        state.next_fault += 1;
        let ports = rule.ports();
        state.faults.insert(id, rule);
        if let Err(e) = state.apply(&ports) {
            if let Some(rule) = state.faults.remove(&id) {
                let _ = state.apply(&ports);
                let _ = state.remove_classes(&rule.classes);
            }
            return Err(e);
        }
        Ok(id)
    }

    /// Ends fault `id`; one already ended is no error.
    ///
    /// # Errors
    ///
    /// The call that failed while changing the classifiers back.
    pub(super) fn heal(&self, id: u64) -> Result<(), Error> {
        let mut state = self.lock();
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

impl Rule {
    /// The ports (host numbers) whose classifiers this rule touches: the sources of its
    /// drops and relays (ingress), the destinations of its classes (egress).
    fn ports(&self) -> BTreeSet<usize> {
        let drops = self.drops.iter().map(|d| d.from);
        drops
            .chain(self.relays.iter().map(|r| r.direction.from))
            .chain(self.classes.iter().map(|c| c.direction.to))
            .collect()
    }
}

impl State {
    /// The number of hosts so far; the next host gets this number.
    pub(super) fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// The name of host number `index`.
    pub(super) fn host_name(&self, index: usize) -> &str {
        &self.hosts[index].name
    }

    /// The addresses of host number `index`.
    pub(super) fn host_addresses(&self, index: usize) -> Addresses {
        self.hosts[index].addresses
    }

    /// The hosts' names, by number.
    pub(super) fn host_names(&self) -> impl Iterator<Item = &str> {
        self.hosts.iter().map(|m| m.name.as_str())
    }

    /// The number of faults in force.
    pub(super) fn fault_count(&self) -> usize {
        self.faults.len()
    }

    /// Adds the next host: a namespace from the factory, linked to the switch `switch`
    /// with `addresses`. Returns the namespace.
    ///
    /// # Errors
    ///
    /// The call that failed.
    pub(super) fn add_host(
        &mut self,
        switch: &OwnedFd,
        name: &str,
        addresses: Addresses,
    ) -> Result<OwnedFd, Error> {
        let Made { netns, mut rtnl } = self.factory.take()?;
        let index = self.hosts.len();
        link::add_host_link(&mut rtnl, &mut self.rtnl, switch, index, addresses)?;
        self.hosts.push(Member {
            name: name.to_owned(),
            addresses,
        });
        self.ports.push(Port::default());
        Ok(netns)
    }

    /// Brings the classifiers of `ports` and the relays' blocked flags in line with the
    /// faults in force.
    fn apply(&mut self, ports: &BTreeSet<usize>) -> Result<(), Error> {
        let drops: BTreeSet<Direction> = self
            .faults
            .values()
            .flat_map(|r| r.drops.iter().copied())
            .collect();
        for rule in self.faults.values() {
            for relayed in &rule.relays {
                let blocked = drops.contains(&relayed.direction);
                relayed.relay.blocked.store(blocked, Ordering::SeqCst);
            }
        }
        for &port in ports {
            let mut dsts: BTreeSet<usize> = drops
                .iter()
                .filter(|d| d.from == port)
                .map(|d| d.to)
                .collect();
            for rule in self.faults.values() {
                dsts.extend(
                    rule.relays
                        .iter()
                        .filter(|r| r.direction.from == port)
                        .map(|r| r.direction.to),
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
            let ifindex = link::port_index(port);
            if !self.ports[port].clsact {
                self.rtnl.apply_one(Call::new(
                    tc::clsact(ifindex),
                    format!("RTM_NEWQDISC clsact dev p{port}"),
                    Some("the clsact qdisc (CONFIG_NET_SCH_INGRESS, module `sch_ingress`)"),
                ))?;
                self.ports[port].clsact = true;
            }
            let addresses: Vec<Addresses> =
                dsts.iter().map(|&to| self.hosts[to].addresses).collect();
            let program = filter::packets_to(&addresses, false, filter::DROP);
            self.rtnl.apply_one(Call::new(
                tc::bpf_filter(ifindex, Hook::Ingress, &program),
                format!("RTM_NEWTFILTER bpf direct-action, ingress of p{port}"),
                Some("the bpf classifier (CONFIG_NET_CLS_BPF, module `cls_bpf`)"),
            ))?;
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
            for class in &rule.classes {
                if class.direction.to == port {
                    sources.insert(class.direction.from, class.minor);
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
        let verdicts: Vec<Source> = sources
            .iter()
            .map(|(&from, &minor)| Source {
                from: self.hosts[from].addresses,
                verdict: tc::HTB_HANDLE | u32::from(minor),
            })
            .collect();
        let program = filter::packets_from_to(&verdicts, self.hosts[port].addresses, 0);
        self.rtnl.apply_one(Call::new(
            tc::bpf_filter(link::port_index(port), Hook::HtbClasses, &program),
            format!("RTM_NEWTFILTER bpf, htb 1: on p{port}"),
            Some("the bpf classifier (CONFIG_NET_CLS_BPF, module `cls_bpf`)"),
        ))?;
        self.ports[port].classifying = Some(sources);
        Ok(())
    }

    /// Adds a class with `shape` (and netem under it where the shape needs it) to the
    /// htb on `port`'s egress, adding the htb first if the port has none. Returns its
    /// minor number; no packet goes to it until a classifier says so.
    fn add_class(&mut self, port: usize, shape: &Shape) -> Result<u16, Error> {
        let ifindex = link::port_index(port);
        if !self.ports[port].htb {
            self.rtnl.apply_one(Call::new(
                tc::htb_root(ifindex),
                format!("RTM_NEWQDISC htb 1: root dev p{port}"),
                Some("the htb qdisc (CONFIG_NET_SCH_HTB, module `sch_htb`)"),
            ))?;
            self.ports[port].htb = true;
        }
        let used: BTreeSet<u16> = self
            .faults
            .values()
            .flat_map(|r| r.classes.iter())
            .filter(|c| c.direction.to == port)
            .map(|c| c.minor)
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
        let mut calls = vec![Call::new(
            tc::htb_class(ifindex, minor, shape.rate_kbit),
            format!("RTM_NEWTCLASS htb 1:{minor:x} {rate} dev p{port}"),
            None,
        )];
        if tc::needs_netem(shape) {
            calls.push(Call::new(
                tc::netem_leaf(ifindex, minor, shape),
                format!("RTM_NEWQDISC netem {minor:x}: parent 1:{minor:x} dev p{port}"),
                Some("netem (CONFIG_NET_SCH_NETEM, module `sch_netem`)"),
            ));
        }
        if let Err(e) = self.rtnl.apply(calls) {
            let _ = self.rtnl.request(tc::delete_class(ifindex, minor));
            return Err(e);
        }
        Ok(minor)
    }

    /// Removes classes no classifier sends packets to any more (with what is under them).
    fn remove_classes(&mut self, classes: &[Class]) -> Result<(), Error> {
        let calls = classes
            .iter()
            .map(|class| {
                let to = class.direction.to;
                Call::new(
                    tc::delete_class(link::port_index(to), class.minor),
                    format!("RTM_DELTCLASS htb 1:{:x} dev p{to}", class.minor),
                    None,
                )
            })
            .collect();
        self.rtnl.apply(calls)
    }
}
