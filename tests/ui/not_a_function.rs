use nstest::ns_test;

#[ns_test]
struct NotATest;

nstest::main!();
