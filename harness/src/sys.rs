//! Thin wrappers over the system calls that `nix` exposes only as `unsafe`, or not at all.
//!
//! # Safety
//!
//! This is the only module of the crate allowed to use `unsafe`. It keeps three rules:
//!
//! 1. [`fork`] and [`clone_into_namespaces`] are called only from processes that are
//!    single-threaded: the runner's main thread before it has spawned any thread (checked
//!    by [`thread_count`] in `process::fork_server::start`), the fork server, the slots,
//!    and a PID namespace's init, none of which ever spawn a thread. The child of a
//!    single-threaded process may therefore allocate, lock and print freely; nothing in
//!    this crate forks a multithreaded process.
//! 2. Every raw pointer handed to the kernel points to a live, correctly sized value on the
//!    caller's stack for the whole call.
//! 3. A test is named across processes by the address of its `Test` ([`test_at`]), and
//!    only the runner makes such addresses, from `&'static Test`s that exist in the fork
//!    server too: statics of the binary, or values leaked before the fork server was
//!    forked. Each process that receives one is a fork of the process that sent it.
//! 4. No signal handler is ever installed: the fork server takes its signals through a
//!    signalfd, and every other process leaves dispositions at their defaults, so no Rust
//!    code ever runs in signal context.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::ForkResult;

use crate::test::Test;

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

/// The address a request names `test` by; see [`test_at`].
pub(crate) fn address_of(test: &'static Test) -> u64 {
    std::ptr::from_ref(test) as usize as u64
}

/// The test a request names by [`address_of`], in a fork of the process that made the
/// address (rule 3 of the module docs).
pub(crate) fn test_at(address: u64) -> &'static Test {
    let pointer = address as usize as *const Test;
    // SAFETY: by rule 3 the address came from a `&'static Test` of the runner that this
    // process is a fork of, made before the fork (a static of the binary, or a value leaked
    // before the fork server started, never freed), so it points to a valid `Test` here
    // too, for the life of the process. Request::decode rejects 0.
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

/// Brings the interface `lo` of the caller's network namespace up with the
/// `SIOCGIFFLAGS`/`SIOCSIFFLAGS` ioctls on an `AF_INET` datagram socket; the kernel then
/// assigns 127.0.0.1/8 and ::1 itself. See netdevice(7):
/// <https://man7.org/linux/man-pages/man7/netdevice.7.html>.
///
/// # Errors
///
/// `(ioctl name, errno)` of the step that failed, or `("socket", errno)`.
pub(crate) fn bring_loopback_up() -> Result<(), (&'static str, Errno)> {
    // SAFETY: socket(2) takes only integers; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(("socket", Errno::last()));
    }
    // SAFETY: `raw` is a fresh descriptor this function owns and nothing else refers to.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };

    // SAFETY: `ifreq` is a plain C struct for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads `ifr_name` and writes `ifr_ifru.ifru_flags` of the `ifreq`
    // that `req` points to, which lives on this stack frame for the whole call (rule 2).
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(("SIOCGIFFLAGS", Errno::last()));
    }
    // SAFETY: SIOCGIFFLAGS just initialised the `ifru_flags` member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: as for SIOCGIFFLAGS; SIOCSIFFLAGS only reads the struct.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(("SIOCSIFFLAGS", Errno::last()));
    }
    Ok(())
}

/// Changes the mount attributes of the mount at `path` (and, with `recursive`, of every
/// mount below it) in one call: `set` and `clear` are `MOUNT_ATTR_*` bits. See
/// mount_setattr(2) (Linux 5.12+):
/// <https://man7.org/linux/man-pages/man2/mount_setattr.2.html>.
///
/// # Errors
///
/// mount_setattr(2)'s errno: ENOSYS on kernels older than 5.12, EPERM where the caller
/// lacks `CAP_SYS_ADMIN` over the mount namespace or an attribute is locked.
pub(crate) fn mount_setattr(
    path: &std::ffi::CStr,
    recursive: bool,
    set: u64,
    clear: u64,
) -> Result<(), Errno> {
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `path` is a NUL-terminated string and `attr` a `mount_attr` on this stack
    // frame, both live for the whole call, and the size passed is that struct's (rule 2).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as libc::c_uint,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(ret).map(drop)
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

/// Opens an `AF_PACKET` raw socket (packet(7):
/// <https://man7.org/linux/man-pages/man7/packet.7.html>) in the calling thread's network
/// namespace, bound to interface `ifindex`. With `receive`, the socket takes every frame
/// the interface sees (`ETH_P_ALL`) that the classic BPF program accepts; the filter is
/// attached before the bind, so no unfiltered frame is ever queued. Without it the socket
/// receives nothing and only sends.
///
/// # Errors
///
/// `(call, errno)` of `socket`, `setsockopt(SO_ATTACH_FILTER)` or `bind`.
pub(crate) fn packet_socket(
    ifindex: i32,
    receive: Option<&[libc::sock_filter]>,
) -> Result<OwnedFd, (&'static str, Errno)> {
    // Protocol 0: the socket takes no frames until bound with a protocol.
    // SAFETY: socket(2) takes only integers; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(("socket", Errno::last()));
    }
    // SAFETY: `raw` is a fresh descriptor this function owns and nothing else refers to.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut protocol = 0u16;
    if let Some(program) = receive {
        let prog = libc::sock_fprog {
            len: u16::try_from(program.len()).map_err(|_| ("SO_ATTACH_FILTER", Errno::E2BIG))?,
            filter: program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` and the instructions it points to live on the caller's stack and
        // heap for the whole call (rule 2); the kernel copies the program and does not
        // write through the pointer.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&raw const prog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(("setsockopt(SO_ATTACH_FILTER)", Errno::last()));
        }
        protocol = (libc::ETH_P_ALL as u16).to_be();
    }
    // SAFETY: `sockaddr_ll` is a plain C struct for which all-zero bytes are a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol;
    addr.sll_ifindex = ifindex;
    // SAFETY: `addr` is a live `sockaddr_ll` on this stack frame and the length passed is
    // its size (rule 2); bind(2) only reads it.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(("bind", Errno::last()));
    }
    Ok(sock)
}

/// Makes `command`'s child enter the network namespace `netns` (setns(2):
/// <https://man7.org/linux/man-pages/man2/setns.2.html>) between fork and exec, so the
/// program runs on that host of a `Network`. The descriptor lives as long as the command.
pub(crate) fn enter_netns_before_exec(
    command: &mut std::process::Command,
    netns: std::sync::Arc<OwnedFd>,
) {
    use std::os::unix::process::CommandExt;
    let enter = move || {
        // SAFETY: setns(2) takes a descriptor and a flag, both integers; `netns` is kept
        // open by this closure. It is async-signal-safe, as a pre_exec hook must be.
        if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            // `last_os_error` only reads errno: no allocation after fork.
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: `pre_exec` requires the hook to be safe between fork and exec in a possibly
    // multithreaded parent: `enter` makes one async-signal-safe system call, allocates
    // nothing and takes no lock.
    unsafe {
        command.pre_exec(enter);
    }
}

/// Makes `command`'s child enter a time namespace of its own between fork and exec, with
/// `offsets` (the text of time_namespaces(7)'s `timens_offsets`, absolute) on its
/// CLOCK_MONOTONIC and CLOCK_BOOTTIME: unshare(2) `CLONE_NEWTIME`, the offsets written,
/// then setns(2) into `time_for_children`, which a single-threaded process (the child) may.
/// The files are reached through `proc`, a descriptor of a `/proc` opened before the
/// sandbox made its own read-only (<https://man7.org/linux/man-pages/man7/time_namespaces.7.html>).
pub(crate) fn enter_new_timens_before_exec(
    command: &mut std::process::Command,
    proc: std::sync::Arc<OwnedFd>,
    offsets: Vec<u8>,
) {
    use std::os::unix::process::CommandExt;
    let enter = move || {
        let fail = || Err(std::io::Error::last_os_error());
        // SAFETY: unshare(2) takes an integer flag.
        if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
            return fail();
        }
        let file = c"self/timens_offsets";
        let flags = libc::O_WRONLY | libc::O_CLOEXEC;
        // SAFETY: `proc` is open for the closure's life; `file` is a static C string.
        let fd = unsafe { libc::openat(proc.as_raw_fd(), file.as_ptr(), flags) };
        if fd < 0 {
            return fail();
        }
        // SAFETY: `offsets` lives in the closure and the length passed is its own.
        let written = unsafe { libc::write(fd, offsets.as_ptr().cast(), offsets.len()) };
        // SAFETY: `fd` was opened above and is not used after this.
        unsafe { libc::close(fd) };
        if written != offsets.len() as isize {
            return fail();
        }
        let ns = c"self/ns/time_for_children";
        let flags = libc::O_RDONLY | libc::O_CLOEXEC;
        // SAFETY: as for `file` above.
        let fd = unsafe { libc::openat(proc.as_raw_fd(), ns.as_ptr(), flags) };
        if fd < 0 {
            return fail();
        }
        // SAFETY: setns(2) takes a descriptor opened above and an integer flag.
        let entered = unsafe { libc::setns(fd, libc::CLONE_NEWTIME) };
        // SAFETY: `fd` was opened above and is not used after this.
        unsafe { libc::close(fd) };
        if entered != 0 {
            return fail();
        }
        Ok(())
    };
    // SAFETY: `pre_exec` requires the hook to be safe between fork and exec in a possibly
    // multithreaded parent: `enter` makes only async-signal-safe system calls (unshare,
    // openat, write, close, setns) on buffers made before the fork, allocates nothing and
    // takes no lock (`last_os_error` only reads errno).
    unsafe {
        command.pre_exec(enter);
    }
}

// The LLVM profile runtime (`-C instrument-coverage`, as cargo-llvm-cov and tarpaulin's
// llvm engine build), reached through weak references so that a binary without it links
// and finds nothing. Its symbols are hidden, so `dlsym(3)` never finds them, and
// `cfg(coverage)` is set only for the user's own workspace, never for nstest as a
// dependency; a weak undefined symbol, which the static linker resolves to the runtime's
// definition when it is linked in and to 0 otherwise, is what is left, and stable Rust
// can only spell it in assembly. Each pointer lives in `.data.rel.ro`, which the dynamic
// linker may relocate and then makes read-only.
#[cfg(target_pointer_width = "64")]
macro_rules! profile_runtime_pointers {
    ($($name:literal),*) => {
        core::arch::global_asm!(
            $(concat!(".weak ", $name),)*
            ".pushsection .data.rel.ro.nstest_llvm_profile,\"aw\"",
            ".balign 8",
            $(
                concat!(".globl nstest_ptr", $name),
                concat!(".hidden nstest_ptr", $name),
                concat!("nstest_ptr", $name, ":"),
                concat!(".quad ", $name),
            )*
            ".popsection",
        );
    };
}
#[cfg(target_pointer_width = "32")]
macro_rules! profile_runtime_pointers {
    ($($name:literal),*) => {
        core::arch::global_asm!(
            $(concat!(".weak ", $name),)*
            ".pushsection .data.rel.ro.nstest_llvm_profile,\"aw\"",
            ".balign 4",
            $(
                concat!(".globl nstest_ptr", $name),
                concat!(".hidden nstest_ptr", $name),
                concat!("nstest_ptr", $name, ":"),
                concat!(".long ", $name),
            )*
            ".popsection",
        );
    };
}
profile_runtime_pointers!(
    "__llvm_profile_write_file",
    "__llvm_profile_reset_counters",
    "__llvm_profile_set_dumped",
    "__llvm_profile_set_filename",
    "__llvm_profile_is_continuous_mode_enabled"
);

// SAFETY (of the declarations): each static is a pointer-sized word defined by the
// assembly above, holding either 0 or the address of the runtime function of that name,
// whose C signature (compiler-rt's `InstrProfiling.h`) is the one written here; `Option`
// of an `extern "C" fn` has the layout of a nullable pointer.
unsafe extern "C" {
    #[link_name = "nstest_ptr__llvm_profile_write_file"]
    static PROFILE_WRITE_FILE: Option<unsafe extern "C" fn() -> libc::c_int>;
    #[link_name = "nstest_ptr__llvm_profile_reset_counters"]
    static PROFILE_RESET_COUNTERS: Option<unsafe extern "C" fn()>;
    #[link_name = "nstest_ptr__llvm_profile_set_dumped"]
    static PROFILE_SET_DUMPED: Option<unsafe extern "C" fn()>;
    #[link_name = "nstest_ptr__llvm_profile_set_filename"]
    static PROFILE_SET_FILENAME: Option<unsafe extern "C" fn(*const libc::c_char)>;
    #[link_name = "nstest_ptr__llvm_profile_is_continuous_mode_enabled"]
    static PROFILE_IS_CONTINUOUS: Option<unsafe extern "C" fn() -> libc::c_int>;
}

/// Whether the binary was built with `-C instrument-coverage`: the LLVM profile runtime's
/// writer is linked in. One load of a word; false costs nothing more.
pub(crate) fn profiler_linked() -> bool {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    unsafe { PROFILE_WRITE_FILE }.is_some()
}

/// `__llvm_profile_is_continuous_mode_enabled()`: whether the counters are mapped onto the
/// profile file (`%c` in `LLVM_PROFILE_FILE`), so every process that shares the mapping,
/// forked children too, counts straight into the file. False without the runtime.
pub(crate) fn profile_is_continuous() -> bool {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    let Some(call) = (unsafe { PROFILE_IS_CONTINUOUS }) else {
        return false;
    };
    // SAFETY: the runtime's function, taking nothing and reading its own state.
    unsafe { call() != 0 }
}

/// `__llvm_profile_reset_counters()`: zeroes every counter this process inherited, and
/// clears the "already written" mark of [`profile_set_dumped`], so that this process
/// counts only what it runs from here on and writes it at its end. No-op without the
/// runtime. Never call it in continuous mode: the counters are then the file's pages.
pub(crate) fn profile_reset_counters() {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    if let Some(call) = unsafe { PROFILE_RESET_COUNTERS } {
        // SAFETY: the runtime's function; it writes only the counter sections of this
        // process, and the caller is single-threaded (rule 1), so nothing counts meanwhile.
        unsafe { call() }
    }
}

/// `__llvm_profile_set_dumped()`: marks the profile as written, so that neither
/// [`profile_write_file`] nor the runtime's `atexit` handler writes this process's counts.
/// No-op without the runtime.
pub(crate) fn profile_set_dumped() {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    if let Some(call) = unsafe { PROFILE_SET_DUMPED } {
        // SAFETY: the runtime's function; it sets one flag of its own.
        unsafe { call() }
    }
}

/// `__llvm_profile_set_filename(pattern)`: the file pattern (`%p`, `%m`, ... as in
/// `LLVM_PROFILE_FILE`) this process writes with from now on. The runtime copies it.
/// No-op without the runtime.
pub(crate) fn profile_set_filename(pattern: &std::ffi::CStr) {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    if let Some(call) = unsafe { PROFILE_SET_FILENAME } {
        // SAFETY: `pattern` is a NUL-terminated string that outlives the call (rule 2);
        // the runtime parses it and keeps its own copy (`strdup`), not the pointer.
        unsafe { call(pattern.as_ptr()) }
    }
}

/// `__llvm_profile_write_file()`: writes (or, with `%m`, merges under a file lock) this
/// process's counters into its profile file, as the runtime's `atexit` handler would;
/// `_exit(2)` skips that handler. Returns the runtime's status, 0 on success (on failure
/// it has printed `LLVM Profile Error: ...` with the file and `strerror` to stderr).
/// `None` without the runtime.
pub(crate) fn profile_write_file() -> Option<libc::c_int> {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    let call = unsafe { PROFILE_WRITE_FILE }?;
    // SAFETY: the runtime's function; it allocates on the stack, opens, locks and writes
    // the profile file, and the caller is single-threaded or at least not racing it.
    Some(unsafe { call() })
}

/// Sets `name` in the environment of the calling process, which its later children
/// inherit (`setenv(3)`). Only for a test process before its test runs: it has one
/// thread, so no other thread can be reading the environment.
pub(crate) fn set_env_single_threaded(name: &str, value: &std::ffi::OsStr) {
    // SAFETY: std's precondition is that no other thread reads or writes the environment
    // at the same time; the caller has a single thread (see above, and rule 1).
    unsafe { std::env::set_var(name, value) }
}
