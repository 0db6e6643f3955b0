//! The system calls `nix` exposes only as `unsafe`, or not at all: the only room of the
//! crate allowed `unsafe`, at the bottom of the layers (it depends on nothing else in the
//! crate). Split by role, as rustix keeps its backend: [`process`] (fork, clone, exit,
//! descriptors), [`net`] (`lo`, packet sockets, entering a network namespace), [`mount`]
//! (`mount_setattr`) and [`profile`] (the LLVM profile runtime). The callers name them
//! through the re-exports here.
//!
//! Runs in: every process; each function's docs say which of them call it.
//!
//! # Safety
//!
//! Every `unsafe` block of the crate is in this module and keeps four rules:
//!
//! 1. [`fork`] and [`clone_into_namespaces`] are called only from processes that are
//!    single-threaded: the runner's main thread before it has spawned any thread (checked
//!    by [`thread_count`] in `process::fork_server::start`), or, in a run of one test, one
//!    that never spawns one (checked in `process::direct::prepare`), the fork server, the slots,
//!    and a PID namespace's init, none of which ever spawn a thread. The child of a
//!    single-threaded process may therefore allocate, lock and print freely; nothing in
//!    this crate forks a multithreaded process.
//! 2. Every raw pointer handed to the kernel points to a live, correctly sized value on the
//!    caller's stack for the whole call.
//! 3. A value is named across processes by its address ([`static_address`], read back by
//!    [`static_at`] with the same type): a test by its `Test`. Only the runner makes such
//!    addresses, from `&'static` values that exist in the fork server too: statics of the
//!    binary, or values leaked before the fork server was forked. Each process that
//!    receives one is a fork of the process that sent it.
//! 4. No signal handler is ever installed: the fork server takes its signals through a
//!    signalfd, and every other process leaves dispositions at their defaults, so no Rust
//!    code ever runs in signal context.
#![allow(unsafe_code)]

use nix::errno::Errno;

// The wall clock's interposers, and all of its `unsafe`, in a file of their own.
#[cfg(nstest_wall)]
mod clock;
#[cfg(nstest_wall)]
pub(crate) use clock::*;
pub(crate) mod limits;
pub(crate) mod mount;
pub(crate) mod net;
pub(crate) mod process;
pub(crate) mod profile;

pub(crate) use mount::mount_setattr;
pub(crate) use net::{
    bring_loopback_up, enter_netns_before_exec, enter_new_timens_before_exec, packet_socket,
};
pub(crate) use process::{
    at_exit, children_of_self, clone_into_namespaces, close_inherited, exit_now, fork,
    own_received_fd, pidfd_open, release_free_heap, set_env_single_threaded, static_address,
    static_at, thread_count,
};
pub(crate) use profile::{
    profile_is_continuous, profile_reset_counters, profile_set_dumped, profile_set_filename,
    profile_write_file, profiler_linked,
};

/// Calls `call` until it fails with something other than EINTR: the one retry loop for
/// interruptible system calls (signal(7), "Interruption of system calls").
///
/// # Errors
///
/// `call`'s error, unless it is EINTR.
pub(crate) fn retry_on_eintr<T>(mut call: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match call() {
            Err(Errno::EINTR) => {}
            other => return other,
        }
    }
}
