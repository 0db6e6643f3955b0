use nstest::ns_test;

#[ns_test(writable = 5)]
fn a_number() {}

#[ns_test(writable = snapshots)]
fn a_path() {}

#[ns_test(writable = ["snapshots", 5])]
fn one_in_a_list() {}

nstest::main!();
