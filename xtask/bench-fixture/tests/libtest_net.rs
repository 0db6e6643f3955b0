//! The N trivial `net` tests of `mode_net`, under libtest's own harness (no
//! `harness = false`, no `nstest::main!()`), as unit tests are written.
use nstest::ns_test;

mod net {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/net.rs"));
}
