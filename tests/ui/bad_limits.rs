use nstest::ns_test;

#[ns_test(memory = "64 MB")]
fn not_a_size() {}

#[ns_test(disk = "0M")]
fn zero_disk() {}

#[ns_test(pids = 0)]
fn zero_pids() {}

#[ns_test(pids = "32")]
fn pids_as_a_string() {}

#[ns_test(cpu = "0s")]
fn zero_cpu() {}

#[ns_test(cpu = "1x")]
fn cpu_unit() {}

#[ns_test(memory = 64)]
fn memory_as_a_number() {}

nstest::main!();
