use nstest::ns_test;

#[ns_test(time = "+60000d")]
fn too_far() {}

nstest::main!();
