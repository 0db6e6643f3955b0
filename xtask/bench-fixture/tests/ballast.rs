//! The full set, with the runner holding 1 GiB of touched memory once the fork server
//! runs, as a runner that has grown would.
use nstest::ns_test;

mod full {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/full.rs"));
}

fn grow_the_runner() {
    let ballast = vec![1u8; 1 << 30];
    // Touched (not zero pages) and kept for the whole run.
    std::mem::forget(std::hint::black_box(ballast));
}

fn main() {
    nstest::__private::run_main_then(grow_the_runner)
}
