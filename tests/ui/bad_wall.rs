use nstest::ns_test;

#[ns_test(wall = "+1x")]
fn unknown_unit() {}

#[ns_test(wall = "tomorrow")]
fn not_a_duration() {}

#[ns_test(wall = "2038-01-19 03:14:00Z")]
fn space_for_t() {}

#[ns_test(wall = "2038-01-19T03:14:00")]
fn no_time_zone() {}

#[ns_test(wall = "2023-02-29T00:00:00Z")]
fn no_such_day() {}

#[ns_test(wall = "2016-12-31T23:59:60Z")]
fn leap_second() {}

#[ns_test(wall = "54000d")]
fn too_far() {}

#[ns_test(wall = 86400)]
fn not_a_string() {}

#[ns_test(wall)]
fn no_value() {}

#[ns_test(wall = "+1d", wall = "-1d")]
fn twice() {}

nstest::main!();
