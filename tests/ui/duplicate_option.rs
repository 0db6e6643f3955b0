use nstest::ns_test;

#[ns_test(net, mount, net)]
fn binds() {}

#[ns_test(timeout = "1m", timeout = "2m")]
fn twice() {}

nstest::main!();
