//! `CARGO_TARGET_TMPDIR`, which cargo gives integration tests at compile time only: with
//! `mount` it is a fresh tmpfs, empty at the start, the test's own, and gone at its end.
//! An nstest suite of its own (`harness = false`), since fixture binaries get no
//! `CARGO_TARGET_TMPDIR`.

use std::fs;
use std::path::Path;
use std::process::Command;

use nstest::ns_test;

const TMPDIR: &str = env!("CARGO_TARGET_TMPDIR");
const NAME: &str = "nstest-target-tmpdir-shared-name";

/// Both tests write the same name at the same time; each reads back its own.
fn private(me: &str) {
    let entries: Vec<_> = fs::read_dir(TMPDIR).unwrap().collect();
    assert!(entries.is_empty(), "{TMPDIR} starts empty: {entries:?}");
    let path = Path::new(TMPDIR).join(NAME);
    fs::write(&path, me).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(fs::read_to_string(&path).unwrap(), me);
}

#[ns_test]
fn target_tmpdir_is_private_a() {
    private("a");
}

#[ns_test]
fn target_tmpdir_is_private_b() {
    private("b");
}

/// Without `mount` this test sees the host's directory: it runs test `a` of this binary
/// in a run of its own, and afterwards the name `a` wrote is not on the host.
#[ns_test(user)]
fn target_tmpdir_is_gone_after_the_test() {
    assert!(!Path::new(TMPDIR).join(NAME).exists());
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "target_tmpdir_is_private_a"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("test result: ok. 1 passed"), "{stdout}");
    assert!(
        !Path::new(TMPDIR).join(NAME).exists(),
        "{NAME} reached the host's {TMPDIR}"
    );
}

nstest::main!();
