use nstest::ns_test;

#[ns_test(net, netwrok)]
fn binds() {}

nstest::main!();
