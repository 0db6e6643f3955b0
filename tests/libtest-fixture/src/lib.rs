//! A small library whose unit tests use `#[ns_test]` where they used to use `#[test]`.

/// Binds `127.0.0.1:port` and says which address it got.
pub fn bind(port: u16) -> std::io::Result<std::net::SocketAddr> {
    std::net::TcpListener::bind(("127.0.0.1", port))?.local_addr()
}

/// Seconds since boot, from `/proc/uptime`.
pub fn uptime_secs() -> f64 {
    let text = std::fs::read_to_string("/proc/uptime").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[cfg_attr(not(test), allow(dead_code))]
fn private_helper() -> u32 {
    42
}

#[cfg(test)]
mod tests {
    use super::*;
    use nstest::ns_test;
    use std::time::Duration;

    #[ns_test(net)]
    fn binds_80() {
        assert_eq!(bind(80).unwrap().port(), 80);
    }

    #[ns_test]
    fn full_set_is_pid_1_world() {
        // PID 2 under the sandbox's init, root inside, its own hostname space.
        assert_eq!(std::process::id(), 2);
        assert_eq!(nix_uid(), 0);
        std::fs::write("/tmp/private", "mine").unwrap();
        assert_eq!(private_helper(), 42);
    }

    #[ns_test(time = "+10d")]
    fn uptime_is_shifted() {
        assert!(uptime_secs() >= 864_000.0);
    }

    #[ns_test]
    #[should_panic(expected = "refused")]
    fn should_panic_with_message() {
        panic!("request refused");
    }

    #[ns_test(net)]
    #[ignore = "slow"]
    fn ignored_with_reason() {}

    #[ns_test(net)]
    fn returns_ok() -> Result<(), std::io::Error> {
        bind(80)?;
        Ok(())
    }

    #[ns_test(net)]
    #[ignore = "fails on purpose: run by tests/tests/libtest.rs"]
    fn fails_with_output() {
        println!("to stdout from the test");
        eprintln!("to stderr from the test");
        std::process::Command::new("sh")
            .args(["-c", "echo from a child process"])
            .status()
            .unwrap();
        assert_eq!(1 + 1, 3, "arithmetic is broken");
    }

    #[ns_test(net, timeout = "1s")]
    #[ignore = "fails on purpose: run by tests/tests/libtest.rs"]
    fn times_out() {
        println!("about to hang");
        std::thread::sleep(Duration::from_secs(30));
    }

    #[ns_test(net)]
    #[should_panic]
    #[ignore = "fails on purpose: run by tests/tests/libtest.rs"]
    fn crash_is_not_the_panic_it_wanted() {
        std::process::abort();
    }

    #[test]
    fn plain() {}

    fn nix_uid() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}
