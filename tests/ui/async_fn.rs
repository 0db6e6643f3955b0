use nstest::ns_test;

#[ns_test(net)]
async fn serves() {}

nstest::main!();
