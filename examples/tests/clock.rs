//! Time-dependent code under clock offsets. A time namespace moves CLOCK_MONOTONIC (what
//! `Instant` reads) and CLOCK_BOOTTIME (what /proc/uptime shows) for the test and every
//! process it starts, so code paths that depend on how long the host has been up can be
//! tested on any host. CLOCK_REALTIME (`SystemTime`) cannot be moved by the kernel; the
//! `wall` option moves it for the test instead (see `token.rs`).

use std::process::Command;
use std::time::Duration;

use nstest::ns_test;
use nstest_examples::clock::{Lease, RateLimiter, needs_reboot, uptime};

const DAY: Duration = Duration::from_secs(86_400);

#[ns_test(boottime = "+31d")]
fn a_host_up_for_a_month_needs_a_reboot() {
    assert!(needs_reboot(30 * DAY));
}

#[ns_test(boottime = "+31d")]
fn uptime_as_other_tools_see_it_moves_too() {
    // A process the test spawns is in the same time namespace.
    let out = Command::new("cat").arg("/proc/uptime").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let secs: f64 = text.split_whitespace().next().unwrap().parse().unwrap();
    assert!(secs >= 31.0 * 86_400.0, "/proc/uptime says {secs}");
    assert!(uptime() >= 31 * DAY);
}

#[ns_test(boottime = "+400d")]
fn a_lease_granted_for_a_year_is_still_valid_and_then_expires() {
    let lease = Lease::grant(365 * DAY);
    assert!(!lease.is_expired());
    assert!(lease.remaining() > 364 * DAY);
    // A lease stored earlier, ending on day 100 of uptime, has run out on day 400.
    let stored = Lease {
        expires_at: 100 * DAY,
    };
    assert!(stored.is_expired());
    assert_eq!(stored.remaining(), Duration::ZERO);
}

#[ns_test(time = "+7300d")]
fn a_yearly_rate_limit_works_on_a_host_up_for_decades() {
    let mut limiter = RateLimiter::new(3, 365 * DAY);
    // Only once the monotonic clock is older than the window does the window have a start.
    assert!(limiter.window_start().is_some());
    assert!(limiter.allow() && limiter.allow() && limiter.allow());
    assert!(
        !limiter.allow(),
        "the fourth event within the window is refused"
    );
}

nstest::main!();
