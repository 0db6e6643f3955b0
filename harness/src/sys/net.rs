//! Network calls: bringing `lo` up in a fresh network namespace, `AF_PACKET` sockets for a
//! `Network`'s switch, and entering a host's network namespace (and, with its own clock, a
//! time namespace) before a program's exec.
//!
//! Runs in: test processes (and the threads of a `Network` inside them).
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// Brings the interface `lo` of the caller's network namespace up with the
/// `SIOCGIFFLAGS`/`SIOCSIFFLAGS` ioctls on an `AF_INET` datagram socket; the kernel then
/// assigns 127.0.0.1/8 and ::1 itself. `IFF_MULTICAST` too, in the same call, as a host's
/// default interface has it (`sandbox::net` adds the multicast routes). See netdevice(7):
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
    req.ifr_ifru.ifru_flags =
        flags | (libc::IFF_UP | libc::IFF_RUNNING | libc::IFF_MULTICAST) as libc::c_short;
    // SAFETY: as for SIOCGIFFLAGS; SIOCSIFFLAGS only reads the struct.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(("SIOCSIFFLAGS", Errno::last()));
    }
    Ok(())
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
