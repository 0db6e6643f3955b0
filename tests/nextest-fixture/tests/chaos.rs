//! A chaos test that fails on purpose, run by cargo-nextest through nstest's runner. Built
//! only with `--features chaos`, by tests/tests/chaos_tools.rs.

#[nstest::ns_test(net)]
fn chaos_fails_under_nextest() {
    let net = nstest::Network::new();
    let (_a, _b) = (net.host("a"), net.host("b"));
    let _chaos = net.chaos(nstest::Chaos::new().partitions().seed(424_242));
    panic!("the cluster lost a write");
}

nstest::main!();
