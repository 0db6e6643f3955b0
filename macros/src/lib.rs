//! The `#[ns_test]` attribute of [nstest](https://docs.rs/nstest). Use it through
//! `nstest::ns_test`; this crate is an implementation detail pinned by `nstest`.
//!
//! The entry point is a shim. The work is plain functions on `proc_macro2::TokenStream`,
//! unit-tested without a compiler, in three stages: `attr` and `ast` read the attribute
//! and the function, `valid` checks them against each other into a final config, and
//! `expand` emits the function and its registration.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod ast;
mod attr;
mod duration;
mod errors;
mod expand;
mod size;
mod valid;
mod wall;

/// Makes the function a hermetic test: it runs in a fresh process inside fresh Linux
/// namespaces, and `nstest::main!()` runs it with libtest's command line and output.
///
/// ```no_run
/// use nstest::ns_test;
///
/// // Only a network namespace (and the user namespace every test has): port 80 is free.
/// #[ns_test(net, timeout = "10s")]
/// fn binds_port_80() {
///     let listener = std::net::TcpListener::bind("127.0.0.1:80").unwrap();
///     assert_eq!(listener.local_addr().unwrap().port(), 80);
/// }
///
/// // No kind named: the full hermetic set, plus a time namespace for the offset.
/// #[ns_test(hostname = "web-3", time = "+1h")]
/// fn sees_its_own_host() -> Result<(), std::io::Error> {
///     let name = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
///     assert_eq!(name.trim(), "web-3");
///     Ok(())
/// }
///
/// #[ns_test]
/// #[should_panic(expected = "refused")]
/// fn refuses_bad_input() {
///     panic!("request refused");
/// }
///
/// nstest::main!();
/// ```
///
/// # Options
///
/// A user namespace is always created: the test runs as uid 0 inside it, mapped to the
/// user who ran `cargo test`.
///
/// | option | what the test gets |
/// |---|---|
/// | *(none)* | the full hermetic set: user, mount, net, uts, ipc, pid |
/// | `user` | only the user namespace |
/// | `net` | a network namespace with only `lo`, up; every port bindable |
/// | `mount` | a private mount namespace with a fresh tmpfs on `/tmp` |
/// | `uts` | its own hostname and domain name |
/// | `ipc` | its own System V IPC objects and POSIX message queues |
/// | `pid` | a PID namespace: the test is PID 2 under a tiny init |
/// | `hostname = "name"` | a UTS namespace with that hostname (1 to 64 letters, digits, `-`, `.`) |
/// | `time = "+1h"` | a time namespace with that offset on CLOCK_MONOTONIC and CLOCK_BOOTTIME |
/// | `boottime = "+1d"`, `monotonic = "-30s"` | the same, per clock (the other clock gets 0) |
/// | `wall = "+30d"`, `wall = "2038-01-19T03:14:00Z"` | the test's own wall clock (`SystemTime`), shifted or starting at that RFC 3339 instant; no namespace (see `nstest::wall`) |
/// | `timeout = "10s"` | the test and every process it started are killed after that long |
/// | `pids = 32` | at most 32 tasks (processes and threads, the test's own included); beyond, spawns fail with EAGAIN. Without it: 4096, or `NSTEST_PIDS` |
/// | `memory = "64M"` | the test fails, naming the limit, when its memory goes over (K, M, G: binary units) |
/// | `disk = "8M"` | with `mount`: each private scratch directory (`/tmp`, `/var/tmp`, `/dev/shm`, `CARGO_TARGET_TMPDIR`) holds at most that; writes beyond fail with ENOSPC |
/// | `cpu = "1s"` | the test fails, naming the limit, after that much CPU time (per process without a cgroup) |
/// | `flavor = "multi_thread"`, `worker_threads = 2` | `async fn` tests: the tokio runtime to build (default `current_thread`) |
///
/// Naming any kind (`user`, `net`, `mount`, `uts`, `ipc`, `pid`) selects exactly those;
/// settings (`hostname`, `time`, `boottime`, `monotonic`) add the namespace they need.
/// Durations are an optional sign, then whole seconds (`"3600"`) or numbers with units
/// `d`, `h`, `m`, `s`, largest first (`"+1h30m"`).
///
/// The function takes no parameters and returns `()` or `Result<(), E: Debug>`. It may
/// carry `#[ignore]`, `#[ignore = "reason"]`, `#[should_panic]` and
/// `#[should_panic(expected = "text")]`, and be an `async fn` with nstest's `tokio`
/// feature.
///
/// # Compile errors
///
/// Anything else is a compile error at the offending token that says what is accepted:
/// an unknown or repeated option, a malformed duration, instant, size or hostname, a zero
/// limit, `disk` in a test whose kinds leave out `mount`, `time` together with
/// a per-clock offset, runtime options on a non-async function, parameters, generics,
/// `unsafe`, `const` or `extern` functions, `#[should_panic]` on a function returning
/// `Result`, a leftover `#[test]`:
///
/// ```compile_fail
/// #[nstest::ns_test(net, time = "+1x")] // error: invalid `time` offset: unknown unit `x`
/// fn shifted() {}
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn ns_test(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand::ns_test(attr.into(), item.into()).into()
}
