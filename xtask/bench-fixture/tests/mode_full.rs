//! N trivial `full` tests: one binary per mode, as a test suite of N tests would be.
use nstest::ns_test;

mod full {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/full.rs"));
}

nstest::main!();
