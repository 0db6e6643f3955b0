use nstest::ns_test;

#[ns_test(net, disk = "8M")]
fn scratch_without_a_mount_namespace() {}

nstest::main!();
