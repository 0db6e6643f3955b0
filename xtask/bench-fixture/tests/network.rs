//! `nstest::Network`, timed from inside the tests, for `cargo xtask bench`.
//!
//! Run with `--nocapture`: each test prints lines `nstest-bench <name> <value>` that the
//! bench parses. What is timed is what a test using a Network waits for; the time to tear
//! it down afterwards (asynchronous in the kernel) is not, as a test does not wait for it.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use nstest::{ns_test, Chaos, Host, Network};

/// Networks built per run of `build_10_hosts`; `NSTEST_BENCH_NET_BUILDS` overrides it.
const BUILDS: usize = 7;
/// Round trips timed per path, after `WARM_UP` untimed ones.
const ROUND_TRIPS: usize = 2000;
const WARM_UP: usize = 200;

fn print(name: &str, value: f64) {
    println!("nstest-bench {name} {value:.3}");
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Builds networks of 10 hosts one after another and prints each build's time. Every
/// network is kept until the end, so no build overlaps the kernel's teardown of another.
#[ns_test(net)]
fn build_10_hosts() {
    let builds = std::env::var("NSTEST_BENCH_NET_BUILDS")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(BUILDS);
    let mut kept = Vec::new();
    for _ in 0..builds {
        let started = Instant::now();
        let net = Network::new();
        let hosts: Vec<Host> = (0..10).map(|i| net.host(&format!("h{i}"))).collect();
        let took = started.elapsed();
        print("build_10_hosts_ms", took.as_secs_f64() * 1e3);
        kept.push((net, hosts));
    }
    // The last host can reach the first: what was timed is a working network.
    let (_, hosts) = kept.last().expect("at least one build");
    let first = hosts[0].ipv4();
    let listener = hosts[0].run(move || TcpListener::bind((first, 7)).unwrap());
    hosts[9].run(move || {
        TcpStream::connect_timeout(&(first, 7).into(), Duration::from_secs(5))
            .expect("host h9 reaches h0")
    });
    drop(listener);
}

/// Pins the calling thread to the first CPU it may run on. Both ends of a round trip are
/// pinned to the same one, so that what is timed is the kernel's network path and two
/// context switches, not how long the hypervisor takes to wake an idle vCPU for the other
/// end (on this project's VMs that added about 50 us per round trip on a quiet machine).
fn pin_to_first_cpu() {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let allowed = sched_getaffinity(Pid::from_raw(0)).unwrap();
    let first = (0..CpuSet::count())
        .find(|&cpu| allowed.is_set(cpu).unwrap_or(false))
        .expect("the thread may run on some CPU");
    let mut one = CpuSet::new();
    one.set(first).unwrap();
    sched_setaffinity(Pid::from_raw(0), &one).unwrap();
}

/// The median time of one-byte TCP round trips from `client` to an echo server on
/// `server` at `ip`, in microseconds, both ends on one CPU.
fn round_trip_us(server: &Host, client: &Host, ip: IpAddr) -> f64 {
    let listener = server.run(move || TcpListener::bind((ip, 0)).unwrap());
    let addr = listener.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        pin_to_first_cpu();
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut byte = [0u8; 1];
        while s.read_exact(&mut byte).is_ok() {
            s.write_all(&byte).unwrap();
        }
    });
    let times = client.run(move || {
        pin_to_first_cpu();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_nodelay(true).unwrap();
        let mut times = Vec::with_capacity(ROUND_TRIPS);
        let mut byte = [0u8; 1];
        for i in 0..WARM_UP + ROUND_TRIPS {
            let started = Instant::now();
            s.write_all(b"x").unwrap();
            s.read_exact(&mut byte).unwrap();
            if i >= WARM_UP {
                times.push(started.elapsed().as_secs_f64() * 1e6);
            }
        }
        times
    });
    echo.join().unwrap();
    median(times)
}

/// A TCP round trip between two hosts of a network, against the same within one host
/// over its loopback.
#[ns_test(net)]
fn tcp_round_trip() {
    let net = Network::new();
    let (a, b) = (net.host("a"), net.host("b"));
    print("tcp_rtt_hosts_us", round_trip_us(&a, &b, a.ipv4().into()));
    print(
        "tcp_rtt_loopback_us",
        round_trip_us(&a, &a, Ipv4Addr::LOCALHOST.into()),
    );
}

/// The same round trip between two hosts with the network's packet capture on: every
/// frame of both links is read by the capture thread and written to the pcapng file.
#[ns_test(net)]
fn tcp_round_trip_captured() {
    let net = Network::new();
    let (a, b) = (net.host("a"), net.host("b"));
    let _file = net.capture();
    print("tcp_rtt_captured_us", round_trip_us(&a, &b, a.ipv4().into()));
}

/// What a chaos schedule costs per event: partitions and one-way blocks over four hosts,
/// one event per millisecond for a second (each heals the last fault and applies the next,
/// rebuilding the classifiers of the ports concerned), timed per event applied.
#[ns_test(net)]
fn chaos_scheduler() {
    let net = Network::new();
    let _hosts: Vec<Host> = (0..4).map(|i| net.host(&format!("h{i}"))).collect();
    let started = Instant::now();
    let chaos = net.chaos(
        Chaos::new()
            .partitions()
            .blocks()
            .every(Duration::from_millis(1))
            .seed(1),
    );
    std::thread::sleep(Duration::from_secs(1));
    chaos.stop();
    let took = started.elapsed();
    let events = chaos.events().len();
    assert!(events > 0, "no event applied");
    print("chaos_event_us", took.as_secs_f64() * 1e6 / events as f64);
}

nstest::main!();
