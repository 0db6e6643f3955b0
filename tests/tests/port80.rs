//! Eight tests binding 127.0.0.1:80 at the same time, each answering with its own name.

mod support;

use support::run;

#[test]
fn eight_tests_bind_port_80_at_once_and_all_pass() {
    let bin = env!("CARGO_BIN_EXE_fixture_port80");
    let r = run(bin, &["--test-threads", "8"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_eq!(r.outcomes().len(), 8, "{}", r.dump());
    assert!(r.outcomes().values().all(|o| o == "ok"), "{}", r.dump());
}
