//! Processes and descriptors: fork and clone (rule 1), exit, `atexit`, addresses across
//! forks (rule 3), pidfds, inherited and received descriptors, the environment.
//!
//! Runs in: the runner (before its first thread), the fork server, slots, inits and test
//! processes.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::ForkResult;

/// Forks the calling process. See fork(2): <https://man7.org/linux/man-pages/man2/fork.2.html>.
///
/// Only the processes listed in rule 1 of the module docs call this.
///
/// # Errors
///
/// The errno of fork(2), typically `EAGAIN` when `RLIMIT_NPROC` is reached.
pub(crate) fn fork() -> Result<ForkResult, Errno> {
    // SAFETY: nix's precondition is that the child of a multithreaded parent only makes
    // async-signal-safe calls. Every caller is single-threaded (rule 1 of the module docs),
    // so the child inherits no lock held by another thread.
    unsafe { nix::unistd::fork() }
}

/// Like [`fork`], but the child starts in the new namespaces of `flags` (clone(2):
/// <https://man7.org/linux/man-pages/man2/clone.2.html>). The slot uses it for a test with
/// a PID namespace: the namespace's first process must be its init, PID 1
/// (pid_namespaces(7)), and creating it in the same call as the user namespace that owns
/// it needs no privilege, so the sandbox takes two processes (init and the test) instead
/// of a third that would `unshare` and then fork init.
///
/// # Errors
///
/// clone(2)'s errno: EPERM, ENOSPC or EINVAL where the host refuses a namespace kind.
pub(crate) fn clone_into_namespaces(flags: nix::sched::CloneFlags) -> Result<ForkResult, Errno> {
    // No new stack, no CLONE_VM and no tid pointers: with a null stack the child continues
    // on a copy of the caller's stack, exactly as after fork(2). All four pointer
    // arguments are null, so their order, which differs between architectures, does not
    // matter.
    let raw_flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: the caller is single-threaded (rule 1), so the child, like fork's, inherits
    // no lock held by another thread. Unlike glibc's fork, this skips the atfork handlers
    // (none are registered in this crate's processes: the test's code runs only after this
    // point) and leaves glibc's cached thread id of the child stale; glibc's raise(3),
    // getpid(2) and gettid(2) ask the kernel, and Rust's std locks do not use that id.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            raw_flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
            0usize,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: nix::unistd::Pid::from_raw(pid as libc::pid_t),
        }),
    }
}

/// Registers `handler` to run when the process exits normally (atexit(3):
/// <https://man7.org/linux/man-pages/man3/atexit.3.html>). libtest's harness, whose `main`
/// nstest does not own, stops the fork server this way.
pub(crate) fn at_exit(handler: extern "C" fn()) {
    // SAFETY: `handler` is a plain function with no arguments, valid for the life of the
    // process; atexit only stores the pointer. A registration that fails (ENOMEM) leaves
    // the fork server to end by its PDEATHSIG when the process exits.
    unsafe {
        libc::atexit(handler);
    }
}

/// The address a request names `value` by (a test by its `Test`); see [`static_at`].
pub(crate) fn static_address<T>(value: &'static T) -> u64 {
    std::ptr::from_ref(value) as usize as u64
}

/// The value a request names by [`static_address`], in a fork of the process that made
/// the address, read as the type it was made from (rule 3 of the module docs).
pub(crate) fn static_at<T>(address: u64) -> &'static T {
    let pointer = address as usize as *const T;
    // SAFETY: by rule 3 the address came from a `&'static T` of the runner that this
    // process is a fork of, made before the fork (a static of the binary, or a value leaked
    // before the fork server started, never freed), so it points to a valid `T` here too,
    // for the life of the process. Request::decode rejects 0.
    unsafe { &*pointer }
}

/// Returns the heap's free pages to the kernel (malloc_trim(3); glibc releases free pages
/// anywhere in the heap, not only at its top). The fork server calls it once: it starts
/// as a copy of the runner, whose freed allocations would otherwise stay mapped in it and
/// in every process it forks.
/// Elsewhere (musl) there is no such call, and nothing is done.
pub(crate) fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions; the fork server is single-threaded.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Ends the calling process at once with `code`, without running `atexit` handlers or
/// flushing stdio buffers a forked child shares with its parent. See _exit(2):
/// <https://man7.org/linux/man-pages/man2/_exit.2.html>.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// The number of threads of the calling process, from the `Threads:` line of
/// `/proc/self/status` (proc_pid_status(5):
/// <https://man7.org/linux/man-pages/man5/proc_pid_status.5.html>). `None` when /proc is
/// not mounted. Safe code; it lives here because it guards [`fork`].
pub(crate) fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Takes ownership of a descriptor that `recvmsg(2)` just installed with `SCM_RIGHTS`
/// (unix(7)), so it is closed exactly once.
pub(crate) fn own_received_fd(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `fd` in this process for this one `recvmsg` call; no
    // other owner of that number exists, so the OwnedFd is its sole owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Opens a pidfd for `pid` (pidfd_open(2), Linux 5.3+): a descriptor that polls readable
/// once the process has ended, so a parent can wait for a child with a deadline.
///
/// # Errors
///
/// pidfd_open(2)'s errno (ESRCH: no such process; ENOSYS: kernel older than 5.3).
pub(crate) fn pidfd_open(pid: nix::unistd::Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags, both plain integers, and returns a new
    // descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just created descriptor `fd` for this call alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as std::os::fd::RawFd) })
}

/// Closes a descriptor a forked child inherited but does not own as an `OwnedFd` (its
/// owner lives on in the parent). See close(2).
///
/// # Errors
///
/// close(2)'s errno.
pub(crate) fn close_inherited(fd: std::os::fd::RawFd) -> Result<(), Errno> {
    // SAFETY: called right after fork, in the child, on a descriptor number whose owner
    // (an `OwnedFd` in the parent's copy of memory) is never dropped in this process,
    // because the child never returns to the code that owns it: it runs the sandbox and
    // exits. So the number is closed once here and nowhere else.
    Errno::result(unsafe { libc::close(fd) }).map(drop)
}

/// The children of the calling (single-threaded) process, from
/// `/proc/self/task/<tid>/children` (proc_pid_task(5); needs `CONFIG_PROC_CHILDREN`).
/// Safe code; it lives here because the file's meaning depends on the caller having
/// exactly one thread, which rule 1 guarantees for every process that calls it.
pub(crate) fn children_of_self() -> Vec<nix::unistd::Pid> {
    let me = nix::unistd::getpid();
    std::fs::read_to_string(format!("/proc/self/task/{me}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(nix::unistd::Pid::from_raw)
        .collect()
}

/// Sets `name` in the environment of the calling process, which its later children
/// inherit (`setenv(3)`). Only for a test process before its test runs: it has one
/// thread, so no other thread can be reading the environment.
pub(crate) fn set_env_single_threaded(name: &str, value: &std::ffi::OsStr) {
    // SAFETY: std's precondition is that no other thread reads or writes the environment
    // at the same time; the caller has a single thread (see above, and rule 1).
    unsafe { std::env::set_var(name, value) }
}

/// The CPUs this process could run on before [`pin_to_this_cpu`], to give back to what
/// it forks; unset when it was not pinned.
static UNPINNED: std::sync::OnceLock<nix::sched::CpuSet> = std::sync::OnceLock::new();

/// Pins the calling thread, and what it forks from now on, to the CPU it runs on
/// (sched_setaffinity(2), sched_getcpu(3)). Best effort: where either call fails nothing
/// changes.
pub(crate) fn pin_to_this_cpu() {
    let Ok(all) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return;
    };
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    let Ok(cpu) = usize::try_from(cpu) else {
        return;
    };
    let mut one = nix::sched::CpuSet::new();
    if one.set(cpu).is_err() {
        return;
    }
    if nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &one).is_ok() {
        let _ = UNPINNED.set(all);
    }
}

/// In a process forked after [`pin_to_this_cpu`]: the CPUs it had before. Nothing to do
/// (and no system call) where nothing was pinned.
pub(crate) fn unpin() {
    if let Some(all) = UNPINNED.get() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), all);
    }
}
