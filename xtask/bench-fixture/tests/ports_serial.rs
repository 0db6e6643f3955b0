use serial_test::serial;

fn hold_port_8080() {
    let _listener = std::net::TcpListener::bind("127.0.0.1:8080").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
}

macro_rules! port_tests {
    ($($name:ident)*) => {$(
        #[test]
        #[serial]
        fn $name() { hold_port_8080(); }
    )*};
}
port_tests!(p01 p02 p03 p04 p05 p06 p07 p08 p09 p10 p11 p12 p13 p14 p15 p16);
