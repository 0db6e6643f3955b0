//! Classic BPF programs (the instruction set of socket(7)'s `SO_ATTACH_FILTER`), built in
//! the test process and run by the kernel, that pick out the IP packets a fault acts on:
//! the same program drops them in the switch (as a `bpf` classifier in direct-action mode
//! on a port's ingress) and picks them up for a relay (as a socket filter).
//!
//! Both see the whole Ethernet frame from offset 0 (a `bpf` classifier at ingress has the
//! MAC header pushed back first). A packet matches when it is IPv4 or IPv6 and its
//! destination is one of the given hosts; ARP and the neighbour-discovery messages of
//! ICMPv6 (types 133 to 137) never match, so a fault never hides one host from another's
//! neighbour cache and a one-way block stays one-way.

use std::net::Ipv6Addr;

use super::link::Addresses;

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const LD_H_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
const LD_B_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGT: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JGE: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const RET: u16 = 0x06; // BPF_RET | BPF_K

/// What a program returns for a packet that matches and for one that does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Verdicts {
    pub(super) hit: u32,
    pub(super) miss: u32,
}

/// For a socket filter: keep the whole frame, or none of it.
pub(super) const TAKE: Verdicts = Verdicts {
    hit: 0xffff_ffff,
    miss: 0,
};

/// For a `bpf` classifier in direct-action mode: `TC_ACT_SHOT` (drop), or
/// `TC_ACT_UNSPEC` (-1: not classified, the packet goes on).
pub(super) const DROP: Verdicts = Verdicts {
    hit: 2,
    miss: 0xffff_ffff,
};

/// Appends the start both programs share: IPv4 and IPv6 frames jump on, every other frame
/// (ARP, ...) gets `miss`. Returns the indexes of the two jumps, whose offsets the caller
/// sets once it knows where the IPv4 and IPv6 parts start.
fn branch_on_ethertype(p: &mut Program, miss: u32) -> (usize, usize) {
    p.push(insn(LD_H_ABS, 0, 0, 12)); // EtherType
    p.push(insn(JEQ, 0, 1, 0x0800));
    let to_v4 = p.len();
    p.push(insn(JA, 0, 0, 0));
    p.push(insn(JEQ, 0, 1, 0x86dd));
    let to_v6 = p.len();
    p.push(insn(JA, 0, 0, 0));
    p.push(insn(RET, 0, 0, miss));
    (to_v4, to_v6)
}

/// Appends, at the start of the IPv6 part: neighbour discovery (ICMPv6 types 133 to 137)
/// gets `miss`, so faults never stop hosts finding each other; everything else goes on to
/// the five instructions after this.
fn let_neighbour_discovery_pass(p: &mut Program, miss: u32) {
    p.push(insn(LD_B_ABS, 0, 0, 14 + 6)); // next header
    p.push(insn(JEQ, 0, 4, 58)); // not ICMPv6: to the addresses
    p.push(insn(LD_B_ABS, 0, 0, 14 + 40)); // ICMPv6 type
    p.push(insn(JGE, 0, 2, 133)); // below router solicitation: to the addresses
    p.push(insn(JGT, 1, 0, 137)); // above redirect: to the addresses
    p.push(insn(RET, 0, 0, miss)); // neighbour discovery passes
}

/// A program: instructions as the kernel's `struct sock_filter`.
pub(super) type Program = Vec<libc::sock_filter>;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Returns `verdicts.hit` for IPv4/IPv6 packets (not ARP, not neighbour discovery) whose
/// destination is one of `dsts`, `verdicts.miss` for every other frame. With `skip_outgoing`, frames the interface sends are never matched (a packet
/// socket sees both directions; the `bpf` classifier only ingress).
pub(super) fn packets_to(dsts: &[Addresses], skip_outgoing: bool, verdicts: Verdicts) -> Program {
    let mut p = Vec::new();
    if skip_outgoing {
        let pkttype = (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32;
        p.push(insn(LD_W_ABS, 0, 0, pkttype));
        p.push(insn(JEQ, 0, 1, u32::from(libc::PACKET_OUTGOING)));
        p.push(insn(RET, 0, 0, verdicts.miss));
    }
    let (to_v4, to_v6) = branch_on_ethertype(&mut p, verdicts.miss);

    p[to_v4].k = (p.len() - to_v4 - 1) as u32;
    p.push(insn(LD_W_ABS, 0, 0, 14 + 16)); // IPv4 destination
    for dst in dsts {
        p.push(insn(JEQ, 0, 1, u32::from(dst.v4)));
        p.push(insn(RET, 0, 0, verdicts.hit));
    }
    p.push(insn(RET, 0, 0, verdicts.miss));

    p[to_v6].k = (p.len() - to_v6 - 1) as u32;
    let_neighbour_discovery_pass(&mut p, verdicts.miss);
    for dst in dsts {
        // Compare the four words of the destination (offset 38 of the frame); any
        // mismatch skips to the next address.
        for (i, word) in v6_words(dst.v6).iter().enumerate() {
            let left = (3 - i) as u8; // word comparisons still to come
            p.push(insn(LD_W_ABS, 0, 0, 14 + 24 + 4 * i as u32));
            p.push(insn(JEQ, 0, 2 * left + 1, *word));
        }
        p.push(insn(RET, 0, 0, verdicts.hit));
    }
    p.push(insn(RET, 0, 0, verdicts.miss));
    p
}

/// One source of [`packets_from_to`] and what the program returns for its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Source {
    pub(super) from: Addresses,
    pub(super) verdict: u32,
}

/// Returns, for an IPv4/IPv6 packet (not neighbour discovery) to `to` from one of
/// `sources`, that source's verdict, and `miss` for every other frame. On a switch port's
/// egress it picks each shaped link's packets out of all those going to `to`, as a `bpf`
/// classifier returning class ids. Where a source is listed twice, the first wins.
pub(super) fn packets_from_to(sources: &[Source], to: Addresses, miss: u32) -> Program {
    let mut p = Vec::new();
    let (to_v4, to_v6) = branch_on_ethertype(&mut p, miss);

    p[to_v4].k = (p.len() - to_v4 - 1) as u32;
    p.push(insn(LD_W_ABS, 0, 0, 14 + 16)); // IPv4 destination
    p.push(insn(JEQ, 1, 0, u32::from(to.v4)));
    p.push(insn(RET, 0, 0, miss));
    p.push(insn(LD_W_ABS, 0, 0, 14 + 12)); // IPv4 source
    for source in sources {
        p.push(insn(JEQ, 0, 1, u32::from(source.from.v4)));
        p.push(insn(RET, 0, 0, source.verdict));
    }
    p.push(insn(RET, 0, 0, miss));

    p[to_v6].k = (p.len() - to_v6 - 1) as u32;
    let_neighbour_discovery_pass(&mut p, miss);
    for (i, word) in v6_words(to.v6).iter().enumerate() {
        // The destination (offset 38 of the frame), word by word: any mismatch is a miss.
        p.push(insn(LD_W_ABS, 0, 0, 14 + 24 + 4 * i as u32));
        p.push(insn(JEQ, 1, 0, *word));
        p.push(insn(RET, 0, 0, miss));
    }
    for source in sources {
        // The source (offset 22), as `packets_to` compares destinations.
        for (i, word) in v6_words(source.from.v6).iter().enumerate() {
            let left = (3 - i) as u8;
            p.push(insn(LD_W_ABS, 0, 0, 14 + 8 + 4 * i as u32));
            p.push(insn(JEQ, 0, 2 * left + 1, *word));
        }
        p.push(insn(RET, 0, 0, source.verdict));
    }
    p.push(insn(RET, 0, 0, miss));
    p
}

/// Takes every frame (for a socket filter: a capture records everything).
pub(super) fn every_frame() -> Program {
    vec![insn(RET, 0, 0, TAKE.hit)]
}

fn v6_words(address: Ipv6Addr) -> [u32; 4] {
    let o = address.octets();
    std::array::from_fn(|i| {
        u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
    })
}

/// The program as the bytes of `TCA_BPF_OPS`: the `struct sock_filter` array.
pub(super) fn to_bytes(program: &Program) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for i in program {
        bytes.extend_from_slice(&i.code.to_ne_bytes());
        bytes.push(i.jt);
        bytes.push(i.jf);
        bytes.extend_from_slice(&i.k.to_ne_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// A classic BPF interpreter for the instructions above, to check the programs without
    /// a kernel. `pkttype` stands for the ancillary load.
    fn run(p: &Program, frame: &[u8], pkttype: u32) -> u32 {
        let mut pc = 0;
        let mut a = 0u32;
        loop {
            let i = p[pc];
            pc += 1;
            let load = |n: usize| -> Option<u32> {
                let at = i.k as usize;
                frame
                    .get(at..at + n)
                    .map(|b| b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x)))
            };
            match i.code {
                LD_W_ABS if i.k >= 0xffff_f000 => a = pkttype,
                LD_W_ABS => match load(4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_ABS => match load(2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_B_ABS => match load(1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                JA => pc += i.k as usize,
                JEQ | JGT | JGE => {
                    let yes = match i.code {
                        JEQ => a == i.k,
                        JGT => a > i.k,
                        _ => a >= i.k,
                    };
                    pc += usize::from(if yes { i.jt } else { i.jf });
                }
                RET => return i.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn v4_frame(dst: Ipv4Addr) -> Vec<u8> {
        v4_packet(Ipv4Addr::UNSPECIFIED, dst)
    }

    fn v4_packet(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[26..30].copy_from_slice(&src.octets());
        f[30..34].copy_from_slice(&dst.octets());
        f
    }

    fn v6_frame(dst: Ipv6Addr, next: u8, icmp_type: u8) -> Vec<u8> {
        v6_packet(Ipv6Addr::UNSPECIFIED, dst, next, icmp_type)
    }

    fn v6_packet(src: Ipv6Addr, dst: Ipv6Addr, next: u8, icmp_type: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 40 + 8];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[20] = next;
        f[22..38].copy_from_slice(&src.octets());
        f[38..54].copy_from_slice(&dst.octets());
        f[54] = icmp_type;
        f
    }

    fn host(n: u8) -> Addresses {
        Addresses {
            v4: Ipv4Addr::new(10, 0, 0, n),
            v6: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(n)),
        }
    }

    fn from(from: Addresses, verdict: u32) -> Source {
        Source { from, verdict }
    }

    #[test]
    fn matches_ip_to_the_hosts_and_nothing_else() {
        let p = packets_to(&[host(2), host(3)], false, TAKE);
        const MATCH: u32 = TAKE.hit;
        for n in [2, 3] {
            assert_eq!(run(&p, &v4_frame(host(n).v4), 0), MATCH);
            assert_eq!(run(&p, &v6_frame(host(n).v6, 6, 0), 0), MATCH);
            assert_eq!(run(&p, &v6_frame(host(n).v6, 58, 128), 0), MATCH, "echo");
        }
        assert_eq!(run(&p, &v4_frame(host(4).v4), 0), 0);
        assert_eq!(run(&p, &v6_frame(host(4).v6, 17, 0), 0), 0);
        // Only the last word differs from host 2's: the comparison must reach it.
        let near = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 1, 2);
        assert_eq!(run(&p, &v6_frame(near, 17, 0), 0), 0);
        let mut arp = v4_frame(host(2).v4);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run(&p, &arp, 0), 0);
        for nd in 133..=137 {
            assert_eq!(run(&p, &v6_frame(host(2).v6, 58, nd), 0), 0, "type {nd}");
        }
        assert_eq!(
            run(&packets_to(&[], false, TAKE), &v4_frame(host(2).v4), 0),
            0
        );
        let drop = packets_to(&[host(2)], false, DROP);
        assert_eq!(run(&drop, &v4_frame(host(2).v4), 0), DROP.hit);
        assert_eq!(run(&drop, &v4_frame(host(3).v4), 0), DROP.miss);
        assert_eq!(run(&drop, &arp, 0), DROP.miss);
    }

    #[test]
    fn a_relay_never_takes_what_its_interface_sends() {
        let p = packets_to(&[host(2)], true, TAKE);
        let outgoing = u32::from(libc::PACKET_OUTGOING);
        assert_eq!(run(&p, &v4_frame(host(2).v4), 0), TAKE.hit);
        assert_eq!(run(&p, &v4_frame(host(2).v4), outgoing), 0);
    }

    #[test]
    fn a_shaped_link_is_picked_by_source_and_destination_with_each_its_verdict() {
        let (a, b, c, d) = (host(1), host(2), host(3), host(4));
        let p = packets_from_to(&[from(a, 0x1_0002), from(c, 0x1_0003)], b, 0);
        assert_eq!(run(&p, &v4_packet(a.v4, b.v4), 0), 0x1_0002);
        assert_eq!(run(&p, &v4_packet(c.v4, b.v4), 0), 0x1_0003);
        assert_eq!(run(&p, &v6_packet(a.v6, b.v6, 6, 0), 0), 0x1_0002);
        assert_eq!(
            run(&p, &v6_packet(c.v6, b.v6, 58, 128), 0),
            0x1_0003,
            "echo"
        );
        // Another source, another destination, or neighbour discovery: not classified.
        assert_eq!(run(&p, &v4_packet(d.v4, b.v4), 0), 0);
        assert_eq!(run(&p, &v4_packet(a.v4, d.v4), 0), 0);
        assert_eq!(run(&p, &v6_packet(d.v6, b.v6, 17, 0), 0), 0);
        assert_eq!(run(&p, &v6_packet(a.v6, d.v6, 17, 0), 0), 0);
        for nd in 133..=137 {
            assert_eq!(run(&p, &v6_packet(a.v6, b.v6, 58, nd), 0), 0, "type {nd}");
        }
        // Addresses that differ from a listed one only in their last word.
        let near_src = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 1, 1);
        let near_dst = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 1, 2);
        assert_eq!(run(&p, &v6_packet(near_src, b.v6, 17, 0), 0), 0);
        assert_eq!(run(&p, &v6_packet(a.v6, near_dst, 17, 0), 0), 0);
        let mut arp = v4_packet(a.v4, b.v4);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run(&p, &arp, 0), 0);
        assert_eq!(
            run(&packets_from_to(&[], b, 0), &v4_packet(a.v4, b.v4), 0),
            0
        );
        let first = packets_from_to(&[from(a, 7), from(a, 8)], b, 0);
        assert_eq!(run(&first, &v4_packet(a.v4, b.v4), 0), 7);
    }
}
