use nstest::ns_test;

#[ns_test(net, timeout = "0s")]
fn never_runs() {}

#[ns_test(timeout = "-1m")]
fn negative() {}

#[ns_test(timeout = "10x")]
fn unknown_unit() {}

nstest::main!();
