use nstest::ns_test;

#[ns_test(pids = 8, pids = 16)]
fn pids_twice() {}

#[ns_test(memory = "64M", cpu = "1s", memory = "32M")]
fn memory_twice() {}

nstest::main!();
