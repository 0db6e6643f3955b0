//! Per-test limits under libtest's harness: each limit reached is named in the failure,
//! as under `nstest::main!()`. The failing ones are ignored, so a plain `cargo test` of the
//! fixture passes; the end-to-end tests run them with `--include-ignored`.

use std::process::Command;

use nstest::ns_test;

#[ns_test(pids = 8)]
#[ignore = "fails on purpose: it reaches its process limit"]
fn libtest_pids_bomb() {
    let mut children = Vec::new();
    loop {
        children.push(Command::new("sleep").arg("61.4142").spawn().unwrap());
    }
}

#[ns_test(memory = "64M")]
#[ignore = "fails on purpose: it reaches its memory limit"]
fn libtest_memory_hog() {
    let held: Vec<Vec<u8>> = (0..512).map(|_| vec![1u8; 1 << 20]).collect();
    assert_eq!(held.len(), 512);
}

#[ns_test(cpu = "1s")]
#[ignore = "fails on purpose: it reaches its cpu time limit"]
fn libtest_cpu_spin() {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

#[ns_test(mount, pids = 8, memory = "64M", disk = "1M", cpu = "5s")]
fn libtest_under_its_limits() {
    let out = Command::new("sh")
        .args(["-c", "echo under"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"under\n");
    let error = std::fs::write("/tmp/big", vec![0u8; 2 << 20]).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::StorageFull);
}
