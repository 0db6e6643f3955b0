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

/// The test's own wall clock under libtest's harness (and nextest), against the kernel's
/// true one: a file's modification time is stamped by the kernel, never shifted.
#[ns_test(wall = "+1d")]
fn integration_wall_clock() {
    std::fs::write("/tmp/stamp", "").unwrap();
    let stamped = std::fs::metadata("/tmp/stamp").unwrap().modified().unwrap();
    let ahead = std::time::SystemTime::now()
        .duration_since(stamped)
        .unwrap()
        .as_secs();
    assert!((86_399..=86_410).contains(&ahead), "{ahead} s ahead");
    nstest::wall::advance(std::time::Duration::from_secs(86_400));
    let date = std::process::Command::new("date")
        .arg("+%s")
        .output()
        .unwrap();
    let date: u64 = String::from_utf8(date.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stamped = stamped
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (2 * 86_399..=2 * 86_400 + 10).contains(&(date - stamped)),
        "{date}"
    );
}
