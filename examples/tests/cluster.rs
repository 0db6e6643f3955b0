//! The replicated lookup of `replica` on a network of three hosts: a primary, a backup
//! and a client, each its own network namespace on one private LAN, found by name through
//! the test's `/etc/hosts`. A partition isolates the primary, a slow link makes it miss
//! the client's timeout, and the client must fail over and come back. Then the same under
//! a seeded chaos schedule: random partitions, delays and losses, replayable from the seed
//! the failure names (`NSTEST_SEED=<n> cargo test --test cluster -- --exact NAME`).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use nstest::{Chaos, Host, Network, Shape, ns_test};
use nstest_examples::replica::{Answer, Client, serve};

/// The client's patience with each replica: generous enough that a healthy replica on a
/// loaded CI machine (two cores, networks built by tests in parallel) always answers in
/// time, short enough that a failover test stays quick.
const TIMEOUT: Duration = Duration::from_millis(1000);

/// Starts a replica named after its host on port 7000, holding `color = blue`.
fn start_replica(host: &Host) {
    let listener = host.run(|| TcpListener::bind("[::]:7000").unwrap());
    let name = host.name().to_owned();
    let data = BTreeMap::from([("color".to_owned(), "blue".to_owned())]);
    std::thread::spawn(move || serve(listener, &name, data));
}

fn cluster() -> (Network, Host, Host, Host) {
    let net = Network::new();
    let (primary, backup, client) = (net.host("primary"), net.host("backup"), net.host("client"));
    start_replica(&primary);
    start_replica(&backup);
    (net, primary, backup, client)
}

fn lookup(client: &Host) -> Answer {
    let c = Client::new(&["primary:7000", "backup:7000"], TIMEOUT);
    client
        .run(move || c.get("color"))
        .expect("some replica answers")
}

fn answer(from: &str) -> Answer {
    Answer {
        from: from.into(),
        value: Some("blue".into()),
    }
}

#[ns_test]
fn the_client_fails_over_when_the_primary_is_cut_off_and_returns_after_the_heal() {
    let (net, primary, backup, client) = cluster();
    assert_eq!(lookup(&client), answer("primary"));

    let cut = net.partition(&[&primary], &[&backup, &client]);
    let started = Instant::now();
    assert_eq!(lookup(&client), answer("backup"));
    // It waited for the primary's timeout first: the partition dropped silently, as a
    // dead host or cut cable would, rather than refusing.
    assert!(started.elapsed() >= TIMEOUT, "{:?}", started.elapsed());

    cut.heal();
    assert_eq!(lookup(&client), answer("primary"));
}

#[ns_test]
fn a_primary_behind_a_slow_link_misses_the_timeout_and_the_backup_answers() {
    let (net, primary, _backup, client) = cluster();
    // 700 ms each way: the connect alone takes 1.4 s, beyond the 1 s timeout.
    let slow = Shape {
        delay: Duration::from_millis(700),
        ..Shape::default()
    };
    let _slow = net.shape(&client, &primary, slow);
    assert_eq!(lookup(&client), answer("backup"));
    // With a patient client the slow primary still answers.
    let patient = Client::new(&["primary:7000"], Duration::from_secs(5));
    let started = Instant::now();
    assert_eq!(
        client.run(move || patient.get("color")).unwrap(),
        answer("primary")
    );
    // A connect and a request-reply: two round trips of 1.4 s.
    assert!(
        started.elapsed() >= Duration::from_millis(2800),
        "{:?}",
        started.elapsed()
    );
}

/// How long each fault of the chaos schedule lasts: longer than the client's timeout, so
/// that a lookup begun while the primary is cut off always times out on it (a shorter
/// fault could heal just before the kernel resends the connect, and the primary answer
/// after all).
const CHAOS_PERIOD: Duration = Duration::from_millis(1500);

/// A seeded schedule of partitions, delays and losses while the client keeps asking:
/// every answer must be right, and whenever the schedule cut the primary off from the
/// others, the client must have failed over to the backup. Another seed (`NSTEST_SEED`)
/// draws other faults; the checks hold for any. The seed is printed, and named with the
/// command that replays it if the test fails.
#[ns_test]
fn the_client_fails_over_under_a_seeded_chaos_schedule() {
    let (net, _primary, _backup, client) = cluster();
    let chaos = net.chaos(
        Chaos::new()
            .partitions()
            .delays(Duration::from_millis(5)..Duration::from_millis(300))
            .loss(0.3)
            .every(CHAOS_PERIOD)
            .seed(20_261_206),
    );
    println!("chaos seed {}", chaos.seed());
    let c = Client::new(&["primary:7000", "backup:7000"], TIMEOUT);
    let mut answered_by = BTreeMap::<String, usize>::new();
    let started = Instant::now();
    // Three events, and half a period after the last.
    while started.elapsed() < CHAOS_PERIOD * 7 / 2 {
        let c = c.clone();
        // No replica in reach (the client itself cut off) is allowed; a wrong answer is not.
        if let Ok(answer) = client.run(move || c.get("color")) {
            assert_eq!(answer.value.as_deref(), Some("blue"), "{answer:?}");
            *answered_by.entry(answer.from).or_default() += 1;
        }
    }
    let events = chaos.events();
    chaos.stop();
    println!("events: {events:#?}\nanswered by: {answered_by:?}");
    let primary_cut_off = events
        .iter()
        .any(|e| e.ends_with("partition [primary] | [backup client]"));
    if primary_cut_off {
        assert!(
            answered_by.contains_key("backup"),
            "no failover: {events:#?}"
        );
    }
    // Healed: the primary answers again.
    assert_eq!(lookup(&client), answer("primary"));
}

#[ns_test(net)]
fn an_async_client_reaches_an_async_server_on_another_host() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let net = Network::new();
    let (server, client) = (net.host("server"), net.host("client"));
    let addr = (server.ipv6(), 7000);
    let listener = server.block_on(async move { tokio::net::TcpListener::bind(addr).await });
    let listener = listener.unwrap().into_std().unwrap();
    let served = server.spawn_async(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let (mut stream, peer) = listener.accept().await.unwrap();
        stream.write_all(b"hello\n").await.unwrap();
        peer.ip()
    });
    let line = client.block_on(async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await.unwrap();
        line
    });
    assert_eq!(line, "hello\n");
    assert_eq!(
        served.join().unwrap(),
        std::net::IpAddr::from(client.ipv6())
    );
}

nstest::main!();
