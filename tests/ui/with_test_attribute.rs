use nstest::ns_test;

#[ns_test]
#[test]
fn doubled() {}

nstest::main!();
