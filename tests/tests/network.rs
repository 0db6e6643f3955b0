//! `nstest::Network` as a user meets it: `fixture_network` run twice at once (every test in
//! both copies uses the same host names and addresses), each copy with 8 test threads, and
//! then the host checked for anything left behind.

mod support;

use support::{processes_named, run};

const BIN: &str = env!("CARGO_BIN_EXE_fixture_network");
const TESTS: usize = 18;

fn host_interfaces() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn host_tmp_leftovers() -> Vec<String> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".nstest-hosts"))
        .collect()
}

#[test]
#[serial_test::serial] // the leftover check must not see a sibling's fixture
fn every_network_test_passes_in_parallel_copies_and_nothing_is_left() {
    let interfaces = host_interfaces();
    let copies: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(|| run(BIN, &["--test-threads", "8"], &[])))
        .collect();
    for copy in copies {
        let r = copy.join().unwrap();
        assert_eq!(r.code, Some(0), "{}", r.dump());
        assert_eq!(r.outcomes().len(), TESTS, "{}", r.dump());
        assert!(r.outcomes().values().all(|o| o == "ok"), "{}", r.dump());
        assert!(
            r.summary()
                .starts_with(&format!("test result: ok. {TESTS} passed; 0 failed")),
            "{}",
            r.dump()
        );
    }
    // Every bridge, veth and namespace lived inside the tests' own namespaces: the host's
    // interfaces are as they were, and no process of the run (relay threads die with
    // their process; python3 children are killed with their test) is left to hold any.
    assert_eq!(
        host_interfaces(),
        interfaces,
        "interfaces appeared on the host"
    );
    assert_eq!(processes_named("fixture_network"), Vec::<String>::new());
    assert_eq!(host_tmp_leftovers(), Vec::<String>::new());
}

#[test]
#[serial_test::serial]
fn a_network_outside_a_test_panics_saying_why() {
    let r = run(BIN, &[], &[("FIXTURE_NETWORK_OUTSIDE_TEST", "1".into())]);
    assert_eq!(r.code, Some(101), "{}", r.dump());
    assert!(
        r.stderr
            .contains("Network::new() was called outside an #[ns_test]"),
        "{}",
        r.dump()
    );
    assert!(
        r.stderr
            .contains("fix: call it from a function marked #[ns_test]")
    );
}

#[test]
#[serial_test::serial]
fn one_test_runs_alone_as_an_editor_would_run_it() {
    let r = run(
        BIN,
        &[
            "a_partition_makes_connect_time_out_stalls_connections_and_heals",
            "--exact",
            "--nocapture",
        ],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert_eq!(r.outcomes().len(), 1, "{}", r.dump());
}
