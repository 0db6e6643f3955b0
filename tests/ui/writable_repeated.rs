use nstest::ns_test;

#[ns_test(writable = "a", writable = "b")]
fn the_option_twice() {}

#[ns_test(writable = ["snapshots", "snapshots"])]
fn a_path_twice() {}

nstest::main!();
