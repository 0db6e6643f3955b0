use nstest::ns_test;

#[ns_test(net)]
fn binds_port_80() {
    std::net::TcpListener::bind("127.0.0.1:80").unwrap();
}

#[ns_test]
fn full_set() {
    assert_eq!(std::process::id(), 2);
}

#[ns_test(net)]
fn fails() {
    panic!("this one fails");
}

#[ns_test(net)]
#[should_panic(expected = "boom")]
fn should_panic_passes() {
    panic!("boom");
}

#[ns_test(net)]
#[should_panic]
fn should_panic_fails() {}

#[ns_test(net)]
#[ignore]
fn ignored_passes() {}

#[ns_test(net)]
#[ignore]
fn ignored_fails() {
    panic!("ignored, and failing when run");
}

#[ns_test(net)]
async fn async_echo_on_port_80() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:80").await.unwrap();
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await.unwrap();
        conn.write_all(&buf).await.unwrap();
    });
    let mut client = tokio::net::TcpStream::connect("127.0.0.1:80").await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    client.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");
    server.await.unwrap();
}

mod module {
    #[nstest::ns_test(time = "+1h")]
    fn in_a_module() {}
}

/// Fails the first time it runs and passes the next, to check nextest's retries: it
/// counts its runs in a file under $FLAKY_DIR (no `mount`, so the host's filesystem).
#[ns_test(net)]
fn flaky() {
    let Ok(dir) = std::env::var("FLAKY_DIR") else {
        return;
    };
    let path = std::path::Path::new(&dir).join("runs");
    let runs = std::fs::read_to_string(&path).map_or(0, |s| s.len());
    std::fs::write(&path, "x".repeat(runs + 1)).unwrap();
    assert!(runs > 0, "fails on its first run");
}

/// Sleeps with a daemon running, for nextest's terminate-after: nothing may be left.
#[ns_test(net)]
#[ignore]
fn sleeps_with_a_daemon() {
    let marker = std::env::var("NSTEST_MARKER").unwrap_or_default();
    std::process::Command::new("sh")
        .args(["-c", &format!("setsid sh -c 'sleep 600; : {marker}' >/dev/null 2>&1 &")])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(600));
}

nstest::main!();
