use nstest::ns_test;

#[ns_test]
fn takes(port: u16) {
    let _ = port;
}

nstest::main!();
