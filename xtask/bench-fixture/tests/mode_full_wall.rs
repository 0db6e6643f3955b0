//! N trivial `full_wall` tests: the full set with a wall clock of their own.
use nstest::ns_test;

mod full_wall {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/full_wall.rs"));
}

nstest::main!();
