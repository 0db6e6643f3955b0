use nstest::ns_test;

#[ns_test(time = "+1x")]
fn shifted() {}

#[ns_test(boottime = "30m1h")]
fn out_of_order() {}

#[ns_test(monotonic = 3600)]
fn not_a_string() {}

nstest::main!();
