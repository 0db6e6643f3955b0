use nstest::ns_test;

#[ns_test(net, netwrok)]
fn binds() {}

#[ns_test(std::net)]
fn a_path() {}

nstest::main!();
