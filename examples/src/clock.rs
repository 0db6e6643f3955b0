//! Time-dependent logic of the kind that is hard to test on a host whose clocks you do not
//! control: uptime thresholds, leases on CLOCK_BOOTTIME, and a rate limiter on `Instant`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};

/// Time since boot, including suspend (CLOCK_BOOTTIME; what /proc/uptime shows).
pub fn uptime() -> Duration {
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME).expect("CLOCK_BOOTTIME exists on Linux");
    Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32)
}

/// Whether a host has been up longer than `max`, the policy of a fleet that reboots hosts
/// for kernel updates.
pub fn needs_reboot(max: Duration) -> bool {
    uptime() > max
}

/// A lease granted until a point on CLOCK_BOOTTIME, as a DHCP client or a lock service
/// keeps it: it survives suspend, and it is stored as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// CLOCK_BOOTTIME at which the lease ends.
    pub expires_at: Duration,
}

impl Lease {
    /// A lease from now for `ttl`.
    pub fn grant(ttl: Duration) -> Lease {
        Lease {
            expires_at: uptime() + ttl,
        }
    }

    /// Whether the lease has run out.
    pub fn is_expired(&self) -> bool {
        uptime() >= self.expires_at
    }

    /// Time left, zero once expired.
    pub fn remaining(&self) -> Duration {
        self.expires_at.saturating_sub(uptime())
    }
}

/// A sliding-window rate limiter: at most `max` events in any `window`.
///
/// The window's start is `Instant::now() - window`, which does not exist while the
/// monotonic clock is younger than the window (a host booted less than `window` ago);
/// the limiter then counts every event since boot, instead of panicking as a plain
/// subtraction would.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    events: VecDeque<Instant>,
}

impl RateLimiter {
    /// A limiter allowing `max` events per `window`.
    pub fn new(max: usize, window: Duration) -> RateLimiter {
        RateLimiter {
            max,
            window,
            events: VecDeque::new(),
        }
    }

    /// The start of the current window, or `None` when the clock is younger than it.
    pub fn window_start(&self) -> Option<Instant> {
        Instant::now().checked_sub(self.window)
    }

    /// Records an event if the limit allows it.
    pub fn allow(&mut self) -> bool {
        if let Some(start) = self.window_start() {
            while self.events.front().is_some_and(|&t| t < start) {
                self.events.pop_front();
            }
        }
        if self.events.len() < self.max {
            self.events.push_back(Instant::now());
            true
        } else {
            false
        }
    }
}
