//! Traffic-control messages (tc(8)), built in the test process for the switch's ports:
//! the one `bpf` filter builder for drops and shapes, the `clsact` qdisc the drops hang on,
//! and the `htb`/`netem` objects that make a shaped link where the kernel has them.
//!
//! A drop (partition, block) is the `bpf` filter in direct-action mode on the ingress hook
//! of a `clsact` qdisc on the source's port: the program's verdict drops the packet (see
//! `filter::DROP`).
//!
//! One direction of a shaped pair, from host X to host Y, lives on Y's switch port
//! (tc-htb(8), tc-netem(8)):
//!
//! - an `htb` root qdisc (handle `1:`) with no default class, so that everything not
//!   classified goes out at once, as if it were not there;
//! - a class `1:M` per shaped direction, at the shape's rate (or one no link here reaches,
//!   10 Gbit/s, where the shape has none);
//! - under it, where the shape has a delay, jitter or loss, a `netem` qdisc (handle `M:`)
//!   with them and netem's default queue of 1000 packets; otherwise htb's default leaf,
//!   a FIFO of the port's 1000 packets;
//! - the `bpf` filter on `1:` whose program (see `filter::packets_from_to`) returns
//!   class `1:M` for the IP packets from X to Y.
//!
//! htb and the classifier are everywhere this module's kernels go (this project's CI
//! kernel has both), so a shape of rate alone is always made here. netem is not: the
//! kernel is probed for it once per process, and where it lacks it a shape with a delay,
//! jitter or loss falls back to the relay (see `relay`).

use std::sync::OnceLock;
use std::time::Duration;

use super::Shape;
use super::filter::{self, Program};
use super::netlink::{self, Message, Rtnl};

pub(super) const TC_H_ROOT: u32 = 0xffff_ffff;
/// The htb root qdisc's handle, `1:`.
pub(super) const HTB_HANDLE: u32 = 0x0001_0000;
/// `TC_H_CLSACT` and the handle tc(8) gives the clsact qdisc.
const TC_H_CLSACT: u32 = 0xffff_fff1;
const CLSACT_HANDLE: u32 = 0xffff_0000;
/// `TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)`: the ingress hook of clsact.
const CLSACT_INGRESS: u32 = 0xffff_fff2;

const TCA_KIND: u16 = libc::TCA_KIND;
const TCA_OPTIONS: u16 = libc::TCA_OPTIONS;
const TCA_HTB_PARMS: u16 = 1;
const TCA_HTB_INIT: u16 = 2;
const TCA_HTB_DIRECT_QLEN: u16 = 5;
const TCA_HTB_RATE64: u16 = 6;
const TCA_HTB_CEIL64: u16 = 7;
const TC_HTB_PROTOVER: u32 = 3;
const TC_LINKLAYER_ETHERNET: u8 = 1;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
const TCA_BPF_OPS_LEN: u16 = 4;
const TCA_BPF_OPS: u16 = 5;
const TCA_BPF_FLAGS: u16 = 8;
const TCA_BPF_FLAG_ACT_DIRECT: u32 = 1;

/// Packets a shaped direction queues at most, as the relay does (netem's default).
const QUEUE_LIMIT: u32 = 1000;
/// The rate of a class whose shape has none: more than a veth carries here.
const UNLIMITED_BYTES_PER_SEC: u64 = 10_000_000_000 / 8;
/// The largest frame: `eth0` sends one segment per frame (`IFLA_GSO_MAX_SEGS` 1).
const MAX_FRAME: u64 = 1514;
/// The kernel's packet-scheduler clock: `PSCHED_TICKS2NS(x)` is `x << 6`.
const NS_PER_TICK: u64 = 64;

/// Whether this kernel has netem. Probed once per process: a netem qdisc is added to, and
/// removed from, `lo` of the namespace `rtnl` belongs to (the switch's, which nothing
/// sends on).
pub(super) fn has_netem(rtnl: &mut Rtnl) -> bool {
    static NETEM: OnceLock<bool> = OnceLock::new();
    *NETEM.get_or_init(|| {
        let probe = netem(1, 0xfff0_0000, TC_H_ROOT, &Shape::default());
        let present = rtnl.request(probe).is_ok();
        if present {
            let remove = Message::new(
                netlink::RTM_DELQDISC,
                0,
                &netlink::tcmsg(1, 0, TC_H_ROOT, 0),
            );
            // Left behind, a netem of no delay on an unused `lo` changes nothing.
            let _ = rtnl.request(remove);
        }
        present
    })
}

/// Whether `shape` needs netem: anything but a rate.
pub(super) fn needs_netem(shape: &Shape) -> bool {
    !shape.delay.is_zero() || !shape.jitter.is_zero() || shape.loss > 0.0
}

/// The htb root qdisc of port `ifindex`, with no default class.
pub(super) fn htb_root(ifindex: i32) -> Message {
    let mut m = Message::new(
        netlink::RTM_NEWQDISC,
        netlink::NLM_F_CREATE | netlink::NLM_F_EXCL,
        &netlink::tcmsg(ifindex, HTB_HANDLE, TC_H_ROOT, 0),
    );
    // struct tc_htb_glob: version, rate2quantum, defcls (0: none), debug, direct_pkts.
    let mut glob = [0u8; 20];
    glob[0..4].copy_from_slice(&TC_HTB_PROTOVER.to_ne_bytes());
    glob[4..8].copy_from_slice(&10u32.to_ne_bytes());
    m.attr_str(TCA_KIND, "htb").nest(TCA_OPTIONS, |m| {
        m.attr(TCA_HTB_INIT, &glob)
            .attr_u32(TCA_HTB_DIRECT_QLEN, QUEUE_LIMIT);
    });
    m
}

/// Class `1:minor` of the htb on port `ifindex`, at `rate_kbit` (none: unlimited).
pub(super) fn htb_class(ifindex: i32, minor: u16, rate_kbit: Option<u64>) -> Message {
    let rate = rate_kbit
        .filter(|k| *k > 0)
        .map_or(UNLIMITED_BYTES_PER_SEC, |k| (k * 1000 / 8).max(1));
    // A burst as tc(8) makes by default (a tick's worth at HZ=1000, plus one frame), as
    // the time it takes to send at `rate`.
    let burst = rate / 1000 + MAX_FRAME;
    let buffer = u32::try_from(burst * 1_000_000_000 / rate / NS_PER_TICK).unwrap_or(u32::MAX);
    let mut spec = [0u8; 12]; // struct tc_ratespec
    spec[1] = TC_LINKLAYER_ETHERNET; // no rate table needed
    spec[8..12].copy_from_slice(&u32::try_from(rate).unwrap_or(u32::MAX).to_ne_bytes());
    let mut opt = [0u8; 44]; // struct tc_htb_opt
    opt[0..12].copy_from_slice(&spec); // rate
    opt[12..24].copy_from_slice(&spec); // ceil
    opt[24..28].copy_from_slice(&buffer.to_ne_bytes());
    opt[28..32].copy_from_slice(&buffer.to_ne_bytes()); // cbuffer
    // One frame per round; given, so that htb does not derive one from the rate and
    // warn in the kernel log.
    opt[32..36].copy_from_slice(&(MAX_FRAME as u32).to_ne_bytes());
    let mut m = Message::new(
        netlink::RTM_NEWTCLASS,
        netlink::NLM_F_CREATE | netlink::NLM_F_EXCL,
        &netlink::tcmsg(ifindex, HTB_HANDLE | u32::from(minor), HTB_HANDLE, 0),
    );
    m.attr_str(TCA_KIND, "htb").nest(TCA_OPTIONS, |m| {
        m.attr(TCA_HTB_PARMS, &opt);
        if rate > u64::from(u32::MAX) {
            m.attr(TCA_HTB_RATE64, &rate.to_ne_bytes())
                .attr(TCA_HTB_CEIL64, &rate.to_ne_bytes());
        }
    });
    m
}

/// The netem qdisc under class `1:minor` of port `ifindex`, with handle `minor:`.
pub(super) fn netem_leaf(ifindex: i32, minor: u16, shape: &Shape) -> Message {
    netem(
        ifindex,
        u32::from(minor) << 16,
        HTB_HANDLE | u32::from(minor),
        shape,
    )
}

fn netem(ifindex: i32, handle: u32, parent: u32, shape: &Shape) -> Message {
    let ticks =
        |d: Duration| u32::try_from(d.as_nanos() / u128::from(NS_PER_TICK)).unwrap_or(u32::MAX);
    // struct tc_netem_qopt: latency, limit, loss, gap, duplicate, jitter. The times are
    // in scheduler ticks, and given again in nanoseconds below, which kernels since 4.15
    // use instead.
    let loss = (shape.loss.clamp(0.0, 1.0) * f64::from(u32::MAX)).round() as u32;
    let mut qopt = [0u8; 24];
    qopt[0..4].copy_from_slice(&ticks(shape.delay).to_ne_bytes());
    qopt[4..8].copy_from_slice(&QUEUE_LIMIT.to_ne_bytes());
    qopt[8..12].copy_from_slice(&loss.to_ne_bytes());
    qopt[20..24].copy_from_slice(&ticks(shape.jitter).to_ne_bytes());
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    let mut m = Message::new(
        netlink::RTM_NEWQDISC,
        netlink::NLM_F_CREATE | netlink::NLM_F_EXCL,
        &netlink::tcmsg(ifindex, handle, parent, 0),
    );
    // netem's options are the struct itself, then attributes (not a nest of attributes).
    m.attr_str(TCA_KIND, "netem").nest(TCA_OPTIONS, |m| {
        m.raw(&qopt)
            .attr(TCA_NETEM_LATENCY64, &nanos(shape.delay).to_ne_bytes())
            .attr(TCA_NETEM_JITTER64, &nanos(shape.jitter).to_ne_bytes());
    });
    m
}

/// Where a `bpf` filter hangs, which says what its program returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hook {
    /// The ingress of the port's `clsact`, in direct-action mode: the program's value is
    /// the verdict (`filter::DROP`), so no action module is needed (`act_gact` is often
    /// not built, as on this project's CI kernel).
    Ingress,
    /// The port's `htb` root: the program's value is a class id, or 0 to leave the packet
    /// unclassified.
    HtbClasses,
}

/// The `bpf` filter (priority 1, handle 1, all protocols) on `hook` of port `ifindex`,
/// running `program`. Sent again with a new program, it replaces the old one.
pub(super) fn bpf_filter(ifindex: i32, hook: Hook, program: &Program) -> Message {
    let all = u32::from((libc::ETH_P_ALL as u16).to_be());
    let parent = match hook {
        Hook::Ingress => CLSACT_INGRESS,
        Hook::HtbClasses => HTB_HANDLE,
    };
    let mut m = Message::new(
        netlink::RTM_NEWTFILTER,
        netlink::NLM_F_CREATE,
        &netlink::tcmsg(ifindex, 1, parent, (1 << 16) | all),
    );
    let len = u16::try_from(program.len()).expect("a program of a few thousand instructions");
    m.attr_str(TCA_KIND, "bpf").nest(TCA_OPTIONS, |m| {
        m.attr(TCA_BPF_OPS_LEN, &len.to_ne_bytes())
            .attr(TCA_BPF_OPS, &filter::to_bytes(program));
        if hook == Hook::Ingress {
            m.attr_u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
        }
    });
    m
}

/// The `clsact` qdisc of port `ifindex`, which the drop filters hang on.
pub(super) fn clsact(ifindex: i32) -> Message {
    let mut m = Message::new(
        netlink::RTM_NEWQDISC,
        netlink::NLM_F_CREATE | netlink::NLM_F_EXCL,
        &netlink::tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0),
    );
    m.attr_str(TCA_KIND, "clsact");
    m
}

/// A `noqueue` root qdisc on `ifindex`, replacing what is there (a veth's default).
pub(super) fn noqueue_root(ifindex: i32) -> Message {
    let mut m = Message::new(
        netlink::RTM_NEWQDISC,
        netlink::NLM_F_CREATE | netlink::NLM_F_REPLACE,
        &netlink::tcmsg(ifindex, 0, TC_H_ROOT, 0),
    );
    m.attr_str(TCA_KIND, "noqueue");
    m
}

/// Removes class `1:minor` of port `ifindex` and the qdisc under it.
pub(super) fn delete_class(ifindex: i32, minor: u16) -> Message {
    Message::new(
        netlink::RTM_DELTCLASS,
        0,
        &netlink::tcmsg(ifindex, HTB_HANDLE | u32::from(minor), HTB_HANDLE, 0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attributes of a message (after its 16-byte header and 20-byte tcmsg), as
    /// (type, payload), one level deep.
    fn attrs(bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 4 <= bytes.len() {
            let len = usize::from(u16::from_ne_bytes([bytes[at], bytes[at + 1]]));
            let kind = u16::from_ne_bytes([bytes[at + 2], bytes[at + 3]]);
            out.push((kind, bytes[at + 4..at + len].to_vec()));
            at += (len + 3) & !3;
        }
        out
    }

    fn body(m: Message) -> Vec<u8> {
        m.into_bytes()[16 + 20..].to_vec()
    }

    fn word(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn header(m: &Message) -> (i32, u32, u32) {
        let b = m.bytes();
        (word(b, 20) as i32, word(b, 24), word(b, 28))
    }

    #[test]
    fn netem_carries_delay_jitter_loss_and_limit_in_the_struct_and_in_nanoseconds() {
        let shape = Shape {
            delay: Duration::from_millis(50),
            jitter: Duration::from_micros(2500),
            loss: 0.25,
            rate_kbit: None,
        };
        let m = netem_leaf(102, 7, &shape);
        // Handle 7:, under class 1:7, on ifindex 102.
        assert_eq!(header(&m), (102, 0x0007_0000, 0x0001_0007));
        let a = attrs(&body(m));
        assert_eq!(a[0], (TCA_KIND, b"netem\0".to_vec()));
        assert_eq!(a[1].0, TCA_OPTIONS);
        let opts = &a[1].1;
        assert_eq!(word(opts, 0), 50_000_000 / 64, "latency in ticks");
        assert_eq!(word(opts, 4), 1000, "limit");
        assert_eq!(
            word(opts, 8),
            1_073_741_824,
            "loss: a quarter of 2^32 - 1, rounded"
        );
        assert_eq!(
            (word(opts, 12), word(opts, 16)),
            (0, 0),
            "no gap, no duplicates"
        );
        assert_eq!(word(opts, 20), 2_500_000 / 64, "jitter in ticks");
        let nested = attrs(&opts[24..]);
        assert_eq!(
            nested,
            [
                (TCA_NETEM_LATENCY64, 50_000_000i64.to_ne_bytes().to_vec()),
                (TCA_NETEM_JITTER64, 2_500_000i64.to_ne_bytes().to_vec()),
            ]
        );
        // The same struct, byte for byte, as tc(8) of iproute2 6.1 sends for `tc qdisc add
        // dev lo parent 1:7 handle 7: netem delay 50ms 2.5ms loss 25% limit 1000` (read
        // with strace on x86-64; tc sends the 64-bit times only when ticks overflow).
        #[cfg(target_endian = "little")]
        assert_eq!(
            opts[..24],
            [
                0xc2, 0xeb, 0x0b, 0x00, 0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x96, 0x98, 0x00, 0x00
            ]
        );
        let certain = netem_leaf(102, 7, &Shape { loss: 1.0, ..shape });
        assert_eq!(word(&attrs(&body(certain))[1].1, 8), u32::MAX);
    }

    #[test]
    fn an_htb_class_has_the_rate_in_bytes_and_a_default_burst() {
        let m = htb_class(105, 3, Some(1000));
        assert_eq!(header(&m), (105, 0x0001_0003, 0x0001_0000));
        let a = attrs(&body(m));
        assert_eq!(a[0], (TCA_KIND, b"htb\0".to_vec()));
        let parms = attrs(&a[1].1);
        assert_eq!(parms.len(), 1, "no 64-bit rates below 4 GB/s");
        let (kind, opt) = &parms[0];
        assert_eq!((*kind, opt.len()), (TCA_HTB_PARMS, 44));
        // 1000 kbit/s is 125,000 bytes/s, in rate and ceil, link layer Ethernet.
        assert_eq!((opt[1], word(opt, 8)), (1, 125_000));
        assert_eq!((opt[13], word(opt, 20)), (1, 125_000));
        // Burst 125 + 1514 bytes takes 13.112 ms at that rate: 204,875 ticks of 64 ns.
        assert_eq!((word(opt, 24), word(opt, 28)), (204_875, 204_875));
        assert_eq!(word(opt, 32), 1514, "quantum");

        let free = attrs(&body(htb_class(105, 3, None)));
        let opt = &attrs(&free[1].1)[0].1;
        assert_eq!(word(opt, 8), 1_250_000_000, "10 Gbit/s");
    }

    #[test]
    fn the_htb_root_has_no_default_class_and_the_classifier_returns_class_ids() {
        let root = htb_root(104);
        assert_eq!(header(&root), (104, 0x0001_0000, TC_H_ROOT));
        let a = attrs(&body(root));
        let init = attrs(&a[1].1);
        assert_eq!(init[0].0, TCA_HTB_INIT);
        let glob = &init[0].1;
        assert_eq!((word(glob, 0), word(glob, 4), word(glob, 8)), (3, 10, 0));
        assert_eq!(
            init[1],
            (TCA_HTB_DIRECT_QLEN, 1000u32.to_ne_bytes().to_vec())
        );

        let program = vec![libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        let c = bpf_filter(104, Hook::HtbClasses, &program);
        let (_, handle, parent) = header(&c);
        assert_eq!((handle, parent), (1, 0x0001_0000));
        let a = attrs(&body(c));
        assert_eq!(a[0], (TCA_KIND, b"bpf\0".to_vec()));
        let opts = attrs(&a[1].1);
        // Not direct action: the program's value is the class, so no flags.
        assert_eq!(
            opts.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [TCA_BPF_OPS_LEN, TCA_BPF_OPS]
        );
        // The same program dropping on clsact's ingress: direct action, so its value is
        // the verdict.
        let d = bpf_filter(104, Hook::Ingress, &program);
        assert_eq!(header(&d).2, CLSACT_INGRESS);
        let opts = attrs(&attrs(&body(d))[1].1);
        assert_eq!(
            opts[2],
            (
                TCA_BPF_FLAGS,
                TCA_BPF_FLAG_ACT_DIRECT.to_ne_bytes().to_vec()
            )
        );
        let d = delete_class(104, 9);
        assert_eq!(header(&d), (104, 0x0001_0009, 0x0001_0000));
    }

    #[test]
    fn only_a_rate_needs_no_netem() {
        assert!(!needs_netem(&Shape {
            rate_kbit: Some(10),
            ..Shape::default()
        }));
        assert!(needs_netem(&Shape {
            loss: 0.01,
            ..Shape::default()
        }));
        assert!(needs_netem(&Shape {
            jitter: Duration::from_millis(1),
            ..Shape::default()
        }));
    }
}
