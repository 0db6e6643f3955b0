use nstest::ns_test;

#[ns_test(hostname = "not a hostname")]
fn named() {}

#[ns_test(hostname)]
fn unnamed() {}

nstest::main!();
