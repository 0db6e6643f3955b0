use nstest::ns_test;

#[ns_test(net = true)]
fn flag() {}

#[ns_test(mount(tmpfs))]
fn flag_with_arguments() {}

nstest::main!();
