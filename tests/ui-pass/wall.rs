use std::time::{Duration, SystemTime};

use nstest::ns_test;

#[ns_test(wall = "+30d")]
fn offset_with_days() {}

#[ns_test(net, wall = "-1h30m")]
fn negative_offset_with_a_kind() {}

#[ns_test(wall = "2038-01-19T03:14:00Z", time = "+3600")]
fn instant_and_a_time_namespace() {
    nstest::wall::advance(Duration::from_secs(1));
    nstest::wall::set(SystemTime::UNIX_EPOCH);
}

#[ns_test(wall = "2024-02-29T12:00:00.5+01:00")]
fn fraction_and_zone() {}

nstest::main!();
