//! A test target that keeps libtest's harness (no `harness = false`).

use nstest::ns_test;

#[ns_test(net)]
fn integration_binds_80() {
    assert_eq!(libtest_fixture::bind(80).unwrap().port(), 80);
}

#[ns_test(hostname = "box-7")]
fn integration_hostname() {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(name.trim(), "box-7");
}

#[test]
fn integration_plain() {}
