//! Every accepted form of the attribute compiles.
use nstest::ns_test;

#[ns_test]
fn bare() {}

#[ns_test(net, mount, uts, ipc, pid, cgroup)]
fn every_kind() {}

#[ns_test(writable = ".")]
fn one_writable_path() {}

#[ns_test(net, writable = [".", "/var/tmp"])]
fn writable_paths() {}

#[ns_test(hostname = "a-b.c", time = "-90s")]
fn settings() {}

#[ns_test(boottime = "+1d", monotonic = "1h30m")]
fn per_clock() {}

#[ns_test(time = "3600")]
#[ignore = "reason"]
#[should_panic = "text"]
fn with_test_attributes() {
    panic!("text");
}

#[ns_test]
#[should_panic(expected = "text")]
fn should_panic_expected() {
    panic!("the text it expects");
}

#[ns_test]
fn returns_result() -> Result<(), std::io::Error> {
    Ok(())
}

#[ns_test(pids = 32)]
fn a_process_limit() {}

#[ns_test(user, memory = "64M", cpu = "1s")]
fn memory_and_cpu() {}

#[ns_test(mount, disk = "8M")]
fn a_small_disk() {}

#[ns_test(net, mount, pids = 64, memory = "1G", disk = "512K", cpu = "1m30s", timeout = "1m")]
fn every_limit_with_kinds() {}

#[ns_test(disk = "8m", memory = "268435456")]
fn lowercase_units_and_bytes() {}

mod nested {
    #[nstest::ns_test(net)]
    pub(crate) fn in_module() {}
}

nstest::main!();
