//! N trivial `user` tests: one binary per mode, as a test suite of N tests would be.
use nstest::ns_test;

mod user {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/user.rs"));
}

nstest::main!();
