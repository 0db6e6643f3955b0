//! Hostname-dependent code: each test sets the hostname it needs, in its own UTS
//! namespace, in parallel, without touching the host's.

use nstest::ns_test;
use nstest_examples::identity::NodeIdentity;

#[ns_test(hostname = "web-3")]
fn a_web_node_knows_its_role_and_index() {
    let id = NodeIdentity::from_hostname().unwrap();
    assert_eq!(id.role, "web");
    assert_eq!(id.index, 3);
    assert_eq!(id.shard(2), 1);
}

#[ns_test(hostname = "db-replica-12.eu.example")]
fn roles_may_contain_dashes_and_names_a_domain() {
    let id = NodeIdentity::from_hostname().unwrap();
    assert_eq!((id.role.as_str(), id.index), ("db-replica", 12));
}

#[ns_test(hostname = "localhost")]
fn a_hostname_without_an_index_is_an_error() {
    let error = NodeIdentity::from_hostname().unwrap_err();
    assert_eq!(
        error,
        "hostname `localhost` is not of the form <role>-<index>"
    );
}

#[ns_test(uts)]
fn a_test_may_change_the_hostname_itself() {
    nix::unistd::sethostname("cache-0").unwrap();
    assert_eq!(NodeIdentity::from_hostname().unwrap().role, "cache");
}

nstest::main!();
