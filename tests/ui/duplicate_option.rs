use nstest::ns_test;

#[ns_test(net, mount, net)]
fn binds() {}

nstest::main!();
