//! The example from the README's "Usage" section, kept compiling and passing here.

use nstest::ns_test;

#[ns_test(net)]
fn binds_port_80() {
    let listener = std::net::TcpListener::bind("127.0.0.1:80").unwrap();
    let client = std::net::TcpStream::connect("127.0.0.1:80").unwrap();
    let (_served, peer) = listener.accept().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
}

#[ns_test(mount, time = "+3600")]
fn sees_shifted_uptime() {
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap();
    let secs: f64 = uptime.split_whitespace().next().unwrap().parse().unwrap();
    assert!(secs >= 3600.0);
    std::fs::write("/tmp/private", "only this test sees it").unwrap();
}

#[ns_test]
#[should_panic(expected = "refused")]
fn refuses_bad_input() {
    panic!("request refused");
}

#[ns_test(hostname = "web-3")]
fn returns_a_result() -> Result<(), std::io::Error> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    assert_eq!(name.trim(), "web-3");
    Ok(())
}

nstest::main!();
