use nstest::ns_test;

#[ns_test(net mount)]
fn missing_comma() {}

#[ns_test("net")]
fn a_string() {}

nstest::main!();
