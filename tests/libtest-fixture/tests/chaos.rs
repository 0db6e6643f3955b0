//! A chaos test that fails on purpose, under libtest's own harness. Built only with
//! `--features chaos`, by tests/tests/chaos_tools.rs, which checks that the failure names
//! the seed and the command that replays it.

#[nstest::ns_test(net)]
fn chaos_fails_under_libtest() {
    let net = nstest::Network::new();
    let (_a, _b) = (net.host("a"), net.host("b"));
    let _chaos = net.chaos(nstest::Chaos::new().partitions().seed(424_242));
    panic!("the cluster lost a write");
}
