//! A test's own wall clock under nstest's runner, run by nextest: one process per test.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nstest::ns_test;

/// 2038-01-19T03:14:00Z, then a day later; `date` started by the test agrees.
#[ns_test(wall = "2038-01-19T03:14:00Z")]
fn wall_clock_in_2038() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!((2_147_483_640..2_147_483_700).contains(&now), "{now}");
    nstest::wall::advance(Duration::from_secs(86_400));
    let date = std::process::Command::new("date").arg("+%s").output().unwrap();
    let date: u64 = String::from_utf8(date.stdout).unwrap().trim().parse().unwrap();
    assert!((2_147_570_040..2_147_570_100).contains(&date), "{date}");
}

nstest::main!();
