//! N trivial `full_time` tests: one binary per mode, as a test suite of N tests would be.
use nstest::ns_test;

mod full_time {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/full_time.rs"));
}

nstest::main!();
