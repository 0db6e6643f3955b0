//! N trivial `full` tests with all four limits: against `mode_full`, the cost of limits.
use nstest::ns_test;

mod full {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/full_limits.rs"));
}

nstest::main!();
