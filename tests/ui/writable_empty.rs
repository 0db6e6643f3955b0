use nstest::ns_test;

#[ns_test(writable = "")]
fn an_empty_path() {}

#[ns_test(writable = [])]
fn an_empty_list() {}

#[ns_test(writable)]
fn no_value() {}

nstest::main!();
