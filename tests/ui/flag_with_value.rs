use nstest::ns_test;

#[ns_test(net = true)]
fn flag() {}

nstest::main!();
