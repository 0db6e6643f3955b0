use std::net::{TcpListener, TcpStream};

/// Listens on 127.0.0.1:`port` and answers each connection with `greeting`.
pub fn serve_once(
    port: u16,
    greeting: &'static str,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    Ok(std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = std::io::Write::write_all(&mut stream, greeting.as_bytes());
        }
    }))
}

/// Reads what the server on 127.0.0.1:`port` says.
pub fn fetch(port: u16) -> std::io::Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut TcpStream::connect(("127.0.0.1", port))?, &mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nstest::ns_test;

    #[ns_test(net)]
    fn serves_on_port_80() {
        let server = serve_once(80, "hello").unwrap();
        assert_eq!(fetch(80).unwrap(), "hello");
        server.join().unwrap();
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

    #[test]
    fn plain_tests_live_beside_them() {}
}
