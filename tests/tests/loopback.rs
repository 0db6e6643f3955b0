//! A host's loopback behaviour inside the sandbox's `lo`, under nstest's runner: multicast
//! joined on the default interface (IPv4 and IPv6), broadcast, `localhost` and `::1`
//! (`tests/fixtures/loopback_bodies.rs`). The same bodies run under libtest's harness and
//! cargo-nextest from `tests/libtest-fixture`.

mod support;

use support::run;

#[test]
fn multicast_broadcast_and_localhost_work_as_on_the_host() {
    let r = run(env!("CARGO_BIN_EXE_fixture_loopback"), &[], &[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let outcomes = r.outcomes();
    for name in [
        "multicast_v4_joined_on_the_default_interface",
        "multicast_v6_joined_on_the_default_interface",
        "a_group_nobody_joined_is_not_received",
        "broadcast_to_the_loopback_network_arrives",
        "localhost_resolves_and_every_loopback_address_answers",
    ] {
        assert_eq!(
            outcomes.get(name).map(String::as_str),
            Some("ok"),
            "{name}: {}",
            r.dump()
        );
    }
    assert_eq!(outcomes.len(), 5, "{}", r.dump());
}
