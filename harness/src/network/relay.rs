//! The shaping fallback: a thread of the test process, in the switch's namespace, that
//! holds packets in user space. Used where the kernel has no netem (this project's CI
//! kernel, for one).
//!
//! A relay serves one direction of one shaped pair, from host A's port on the switch to
//! host B's. A packet socket on A's port sees every frame A sends before the switch's
//! ingress classifier drops it (taps run before ingress in `__netif_receive_skb_core`);
//! its socket filter keeps only IP packets to B (see `filter`). The relay loses each with
//! the shape's probability, queues the rest to leave after the delay (plus jitter, and
//! after the frames before them have been sent at the shape's rate), and sends them out of
//! B's port straight to B.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv, send, setsockopt, sockopt};

use super::Shape;
use super::error::Error;
use super::filter;
use super::link::Addresses;
use super::rng::Rng;
use crate::sys;

/// Frames a relay holds at most, as netem's default `limit`: beyond it new ones are lost,
/// as on a full router queue.
const QUEUE_LIMIT: usize = 1000;

/// How often a relay with nothing to send looks at its stop flag.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// One running relay; stopping it (or dropping it) sends what it still holds at once.
#[derive(Debug)]
pub(super) struct Relay {
    stop: Arc<AtomicBool>,
    /// Set while a drop fault covers the same direction: the relay then loses everything,
    /// so a partition on a shaped link still cuts it.
    pub(super) blocked: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The two ends of one relayed direction, as switch port indexes and the destination's
/// addresses.
#[derive(Debug, Clone, Copy)]
pub(super) struct Route {
    pub(super) from_port: i32,
    pub(super) to_port: i32,
    pub(super) to: Addresses,
}

impl Relay {
    /// Starts a relay in the switch's network namespace `switch` and returns once its
    /// sockets are open.
    ///
    /// # Errors
    ///
    /// The setns(2) or packet-socket call that failed.
    pub(super) fn start(switch: Arc<OwnedFd>, route: Route, shape: Shape) -> Result<Relay, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let blocked = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop2, blocked2) = (stop.clone(), blocked.clone());
        let thread = std::thread::Builder::new()
            .name("nstest-relay".into())
            .spawn(move || {
                let sockets = open_sockets(&switch, route);
                let (rx, tx) = match sockets {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                relay(&rx, &tx, shape, &stop2, &blocked2);
            })
            .map_err(|source| Error::Thread { source })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Relay {
                stop,
                blocked,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::Thread {
                    source: std::io::Error::other("the relay thread ended before it was ready"),
                })
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The receiving socket (on the source's port, filtered) and the sending one (on the
/// destination's port), created in the switch's namespace.
fn open_sockets(switch: &OwnedFd, route: Route) -> Result<(OwnedFd, OwnedFd), Error> {
    nix::sched::setns(switch.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
        Error::Sys {
            call: "setns(switch, CLONE_NEWNET)".into(),
            source,
        }
    })?;
    let program = filter::packets_to(&[route.to], true, filter::TAKE);
    let packet_error = |(call, source): (&'static str, Errno)| Error::PacketSocket { call, source };
    let rx = sys::packet_socket(route.from_port, Some(&program)).map_err(packet_error)?;
    // Room for a burst: the default receive buffer holds only a few hundred small frames,
    // and any the relay does not read in time would be an extra loss.
    let _ = setsockopt(&rx, sockopt::RcvBuf, &(8 << 20));
    let tx = sys::packet_socket(route.to_port, None).map_err(packet_error)?;
    Ok((rx, tx))
}

/// A frame waiting to leave: ordered by departure, then by arrival.
type Pending = Reverse<(Instant, u64, Vec<u8>)>;

fn relay(rx: &OwnedFd, tx: &OwnedFd, shape: Shape, stop: &AtomicBool, blocked: &AtomicBool) {
    let mut queue: BinaryHeap<Pending> = BinaryHeap::new();
    let mut rng = Rng::new(Rng::random_seed());
    let mut link_free = Instant::now();
    let mut arrivals = 0u64;
    let mut buf = vec![0u8; 65536 + 64];
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        let now = Instant::now();
        while let Some(Reverse((due, _, _))) = queue.peek() {
            if *due > now && !stopping {
                break;
            }
            let Reverse((_, _, frame)) = queue.pop().expect("peeked");
            if !blocked.load(Ordering::SeqCst) {
                // A send that fails (the destination's port went away) loses the frame,
                // as a wire would.
                let _ = send(tx.as_raw_fd(), &frame, MsgFlags::empty());
            }
        }
        if stopping {
            return;
        }
        let wait = queue
            .peek()
            .map_or(IDLE_POLL, |Reverse((due, _, _))| {
                due.saturating_duration_since(now)
            })
            .min(IDLE_POLL);
        // Round up: leaving a millisecond late is a slower link, leaving early a wrong one.
        let millis = wait.as_micros().div_ceil(1000) as u16;
        let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
        if sys::retry_on_eintr(|| poll(&mut fds, PollTimeout::from(millis))).is_err() {
            return;
        }
        // Until the socket is drained (EAGAIN).
        while let Ok(n) =
            sys::retry_on_eintr(|| recv(rx.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT))
        {
            let arrived = Instant::now();
            if shape.loss > 0.0 && rng.unit() < shape.loss {
                continue;
            }
            if queue.len() >= QUEUE_LIMIT {
                continue;
            }
            let mut frame = buf[..n].to_vec();
            fix_checksum(&mut frame);
            let mut leaves = arrived;
            if let Some(kbit) = shape.rate_kbit.filter(|k| *k > 0) {
                let bits = (n as u64) * 8;
                let on_wire = Duration::from_nanos(bits * 1_000_000 / kbit);
                let start = link_free.max(arrived);
                link_free = start + on_wire;
                leaves = link_free;
            }
            leaves += jittered(shape.delay, shape.jitter, &mut rng);
            arrivals += 1;
            queue.push(Reverse((leaves, arrivals, frame)));
        }
    }
}

/// `delay` moved by a uniform amount in `-jitter..=jitter`, never below zero, as netem's
/// default (no correlation, uniform distribution).
fn jittered(delay: Duration, jitter: Duration, rng: &mut Rng) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    let offset = jitter.as_secs_f64() * (2.0 * rng.unit() - 1.0);
    Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0))
}

/// Fills in the TCP or UDP checksum of an IPv4 or IPv6 frame. A sender on a veth leaves it
/// to the "hardware" (`CHECKSUM_PARTIAL`): the bytes a packet socket reads hold only the
/// pseudo-header's sum, and a frame sent on from user space would arrive with a bad one.
/// Recomputing a correct checksum changes nothing, so every frame gets it.
fn fix_checksum(frame: &mut [u8]) {
    let Some(ethertype) = frame.get(12..14) else {
        return;
    };
    let (proto, pseudo, l4) = match ethertype {
        [0x08, 0x00] => {
            let Some(ip) = frame.get(14..34) else { return };
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff;
            if fragment != 0 || ihl < 20 || total < ihl || 14 + total > frame.len() {
                return;
            }
            let proto = ip[9];
            let len = (total - ihl) as u32;
            let mut pseudo = Vec::with_capacity(12);
            pseudo.extend_from_slice(&ip[12..20]);
            pseudo.extend_from_slice(&[0, proto]);
            pseudo.extend_from_slice(&(len as u16).to_be_bytes());
            (proto, pseudo, 14 + ihl..14 + total)
        }
        [0x86, 0xdd] => {
            let Some(ip) = frame.get(14..54) else { return };
            let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if 54 + len > frame.len() {
                return;
            }
            let proto = ip[6];
            let mut pseudo = Vec::with_capacity(40);
            pseudo.extend_from_slice(&ip[8..40]);
            pseudo.extend_from_slice(&(len as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, proto]);
            (proto, pseudo, 54..54 + len)
        }
        _ => return,
    };
    let offset = match proto {
        6 => 16,
        17 => 6,
        _ => return,
    };
    let segment = &mut frame[l4];
    if segment.len() < offset + 2 {
        return;
    }
    let v4_udp_without_checksum = pseudo.len() == 12 && proto == 17 && segment[6..8] == [0, 0];
    if v4_udp_without_checksum {
        return;
    }
    segment[offset..offset + 2].copy_from_slice(&[0, 0]);
    let mut sum = ones_complement_sum(&pseudo, 0);
    sum = ones_complement_sum(segment, sum);
    let mut checksum = !(sum as u16);
    if proto == 17 && checksum == 0 {
        checksum = 0xffff;
    }
    segment[offset..offset + 2].copy_from_slice(&checksum.to_be_bytes());
}

fn ones_complement_sum(bytes: &[u8], mut sum: u32) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP/IPv4 frame as captured from a real sender (10.0.0.1:40000 -> 10.0.0.2:9,
    /// payload "hi"), with the checksum the kernel computed: 0x8ee7 hand-checked below.
    fn udp_v4() -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[
            0x45, 0, 0, 30, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f.extend_from_slice(&[0x9c, 0x40, 0, 9, 0, 10, 0x12, 0x34, b'h', b'i']);
        f
    }

    #[test]
    fn checksums_are_recomputed_and_a_correct_one_is_kept() {
        let mut f = udp_v4();
        fix_checksum(&mut f);
        let computed = [f[40], f[41]];
        // Verify: the sum over pseudo-header and segment, checksum included, is 0xffff.
        let mut pseudo = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 10];
        pseudo.extend_from_slice(&f[34..44]);
        assert_eq!(ones_complement_sum(&pseudo, 0), 0xffff);
        fix_checksum(&mut f);
        assert_eq!([f[40], f[41]], computed);
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let mut rng = Rng::new(7);
        let (d, j) = (Duration::from_millis(10), Duration::from_millis(4));
        for _ in 0..1000 {
            let x = jittered(d, j, &mut rng);
            assert!(x >= Duration::from_millis(6) && x <= Duration::from_millis(14));
        }
    }
}
