//! N plain `#[test]`s that each build the floor's `net` sandbox with raw system calls:
//! under nextest (a process per test), the least a hermetic `net` test can cost there.
include!(concat!(env!("OUT_DIR"), "/nextest_floor.rs"));
