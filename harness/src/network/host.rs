//! [`Host`]: one host of a network, and the ways code runs on it: threads of the test
//! process moved into its network namespace (`run`, `spawn`, the tokio helpers), and
//! child processes that enter it between fork and exec (`command`), in a time namespace
//! of their own when the host's clock is set (see `clock`).

use std::ffi::OsStr;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use nix::sched::CloneFlags;

use super::clock::Clock;
use super::error::Error;
use super::link::Addresses;
use super::switch::Lan;

/// One host of a [`Network`](super::Network): its own network namespace with `lo` and one
/// interface on the LAN. Cheap to clone; every clone is the same host.
#[derive(Clone)]
pub struct Host {
    pub(super) inner: Arc<HostInner>,
}

pub(super) struct HostInner {
    pub(super) name: String,
    /// The host's number in its network, from 0.
    pub(super) index: usize,
    pub(super) addresses: Addresses,
    pub(super) netns: Arc<OwnedFd>,
    pub(super) lan: Arc<Lan>,
    /// The offset [`Host::set_clock`] gave, for the processes `command` starts.
    pub(super) clock: Mutex<Option<Clock>>,
}

impl Host {
    /// The name given to [`Network::host`](super::Network::host).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The host's IPv4 address on the LAN (a /24 from 10.0.0.0/8).
    pub fn ipv4(&self) -> Ipv4Addr {
        self.inner.addresses.v4
    }

    /// The host's IPv6 address on the LAN (a /64 from fd00::/8, unique-local).
    pub fn ipv6(&self) -> Ipv6Addr {
        self.inner.addresses.v6
    }

    /// Runs `f` to completion on a thread inside this host's network namespace, so every
    /// socket it creates is on this host, and returns what it returns.
    ///
    /// # Panics
    ///
    /// When `f` panics (with its panic), or when the thread cannot enter the namespace.
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(self.inner.name.clone())
                .spawn_scoped(scope, || {
                    self.enter();
                    f()
                })
                .unwrap_or_else(|e| panic!("nstest network: spawning a thread: {e}"));
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Starts `f` on a thread inside this host's network namespace (see [`Host::run`]).
    ///
    /// # Panics
    ///
    /// When the thread cannot be spawned; the thread panics when it cannot enter the
    /// namespace.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let host = self.clone();
        std::thread::Builder::new()
            .name(self.inner.name.clone())
            .spawn(move || {
                host.enter();
                f()
            })
            .unwrap_or_else(|e| panic!("nstest network: spawning a thread: {e}"))
    }

    /// A [`Command`] for `program` whose child starts inside this host's network
    /// namespace (it enters it between fork and exec), and, once [`Host::set_clock`] was
    /// called, in a time namespace with the host's clock. Like every process a test
    /// starts, it is killed when the test ends.
    ///
    /// # Panics
    ///
    /// When the host's clock is set and the test's own clock offsets cannot be read
    /// (`/proc/self/timens_offsets`: a kernel without time namespaces).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        crate::sys::enter_netns_before_exec(&mut command, self.inner.netns.clone());
        let clock = *self.inner.clock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(clock) = clock {
            clock.apply(&mut command).unwrap_or_else(|e| {
                panic!(
                    "{}",
                    e.explain(&format!("setting the clock of host {:?}", self.inner.name))
                )
            });
        }
        command
    }

    /// Shifts this host's CLOCK_MONOTONIC and CLOCK_BOOTTIME (and `/proc/uptime`) by
    /// `offset` from the test's own, for every process [`Host::command`] starts from now
    /// on: each enters a time namespace of its own with those offsets. `offset` has the
    /// syntax of `#[ns_test(time = ...)]`: `"+30s"`, `"-1h30m"`, `"90"`. Other hosts, and
    /// processes started before, keep their clocks.
    ///
    /// Threads of [`Host::run`] and [`Host::spawn`] keep the test's clocks: a time
    /// namespace belongs to a whole process (the kernel serves `clock_gettime` from a page
    /// mapped into its address space), and setns(2) refuses to move a process with more
    /// than one thread. CLOCK_REALTIME (`SystemTime`) is never shifted: the kernel has no
    /// per-namespace wall clock.
    ///
    /// # Panics
    ///
    /// When `offset` is not a duration of that syntax. A shift that would make a clock
    /// negative is refused when the command is spawned (`ERANGE` from `spawn`).
    pub fn set_clock(&self, offset: impl AsRef<str>) {
        let offset = offset.as_ref();
        let secs = crate::duration::parse_offset(offset)
            .unwrap_or_else(|e| panic!("nstest network: Host::set_clock({offset:?}): {e}"));
        *self.inner.clock.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Clock { offset_secs: secs });
    }

    /// Runs `future` to completion on a current-thread tokio runtime, on a thread inside
    /// this host's network namespace. Blocks the calling thread meanwhile.
    ///
    /// # Panics
    ///
    /// As [`Host::run`], and when the runtime cannot be built.
    #[cfg(feature = "tokio")]
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        self.run(move || current_thread_runtime().block_on(future))
    }

    /// Starts `future` on a current-thread tokio runtime of its own, on a thread inside
    /// this host's network namespace; join the handle for its output.
    ///
    /// # Panics
    ///
    /// As [`Host::spawn`]; the thread panics when the runtime cannot be built.
    #[cfg(feature = "tokio")]
    pub fn spawn_async<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn(move || current_thread_runtime().block_on(future))
    }

    /// Moves the calling thread into this host's network namespace.
    fn enter(&self) {
        nix::sched::setns(self.inner.netns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap_or_else(
            |source| {
                let e = Error::Sys {
                    call: "setns(host, CLONE_NEWNET)".into(),
                    source,
                };
                panic!(
                    "{}",
                    e.explain(&format!("entering host {:?}", self.inner.name))
                )
            },
        );
    }
}

#[cfg(feature = "tokio")]
fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("nstest network: building a tokio runtime for a host")
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.inner.name)
            .field("ipv4", &self.inner.addresses.v4)
            .field("ipv6", &self.inner.addresses.v6)
            .finish()
    }
}
