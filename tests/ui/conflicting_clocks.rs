use nstest::ns_test;

#[ns_test(time = "+1h", boottime = "+1d")]
fn both() {}

#[ns_test(monotonic = "-1m", time = "+1h")]
fn per_clock_first() {}

nstest::main!();
