//! N trivial `net` tests: one binary per mode, as a test suite of N tests would be.
use nstest::ns_test;

mod net {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/net.rs"));
}

nstest::main!();
