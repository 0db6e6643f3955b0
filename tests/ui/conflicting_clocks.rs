use nstest::ns_test;

#[ns_test(time = "+1h", boottime = "+1d")]
fn both() {}

nstest::main!();
