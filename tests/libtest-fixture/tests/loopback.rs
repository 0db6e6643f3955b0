//! The host-loopback behaviour of `tests/fixtures/loopback_bodies.rs` under libtest's own
//! harness (and, through tests/tests/libtest.rs, under cargo-nextest).

macro_rules! loopback_test {
    (fn $name:ident() $body:block) => {
        #[::nstest::ns_test(net)]
        fn $name() $body
    };
}

include!("../../fixtures/loopback_bodies.rs");
