//! The spool on a full disk. On the host, an ordinary user cannot mount a small
//! filesystem to fill up; inside the test's mount namespace it can, and the mount is gone
//! when the test ends.

use std::fs;

use nix::mount::{MsFlags, mount};
use nstest::ns_test;
use nstest_examples::spool::{Spool, SpoolError};

/// Mounts a tmpfs of `size` on a fresh directory under the test's private /tmp.
fn tiny_disk(size: &str) -> String {
    let dir = "/tmp/spool";
    fs::create_dir_all(dir).unwrap();
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(format!("size={size}").as_str()),
    )
    .expect("mount a tmpfs inside the test's mount namespace");
    dir.to_owned()
}

#[ns_test(mount)]
fn records_are_written_in_order() {
    let mut spool = Spool::new(tiny_disk("1m"));
    for i in 0..3 {
        spool.push(format!("record {i}").as_bytes()).unwrap();
    }
    let records = spool.records().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(fs::read_to_string(&records[2]).unwrap(), "record 2");
}

#[ns_test(mount)]
fn a_full_disk_is_reported_and_leaves_no_partial_record() {
    let mut spool = Spool::new(tiny_disk("64k"));
    let record = vec![b'x'; 16 * 1024];
    let mut written = 0;
    let error = loop {
        match spool.push(&record) {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 100, "a 64 KiB disk never filled up");
    };
    assert!(matches!(error, SpoolError::Full), "{error:?}");
    assert!(written >= 1, "some records fit before the disk filled");
    // Only complete records remain: no `.partial` file for a reader to trip on.
    assert_eq!(spool.all_files().unwrap(), written);
    assert_eq!(spool.records().unwrap().len(), written);
}

#[ns_test(mount)]
fn the_test_starts_with_an_empty_tmp() {
    // Nothing of anyone's, only (when the test binary or the package lives under /tmp, as
    // in many CI set-ups) the read-only way to them.
    // The package root stays visible too (read-only) when the checkout lies under /tmp.
    let ways: Vec<_> = [
        std::env::current_exe().unwrap(),
        std::env::current_dir().unwrap(),
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    ]
    .iter()
    .filter_map(|path| {
        path.strip_prefix("/tmp")
            .ok()?
            .iter()
            .next()
            .map(|c| c.to_owned())
    })
    .collect();
    let others: Vec<_> = fs::read_dir("/tmp")
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| !ways.contains(name))
        .collect();
    assert_eq!(others, Vec::<std::ffi::OsString>::new());
}

nstest::main!();
