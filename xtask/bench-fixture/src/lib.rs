//! The floor of one `net` sandbox as a plain `#[test]` can build it, for the nextest row
//! of `cargo xtask bench` (tests/nextest_floor.rs); see also src/bin/floor.rs.
#![allow(unsafe_code)]

/// Forks a child that unshares a user and a network namespace, writes the id maps,
/// brings `lo` up and exits; waits for it. Only raw system calls after the fork, on
/// buffers made before it, since libtest's process has threads.
pub fn net_sandbox() {
    // SAFETY: plain libc calls; the child makes only async-signal-safe calls (open,
    // write, close, unshare, socket, ioctl, _exit) on memory prepared before the fork.
    unsafe {
        let uid = libc::geteuid();
        let gid = libc::getegid();
        let uid_map = format!("0 {uid} 1\n");
        let gid_map = format!("0 {gid} 1\n");
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let write = |path: &[u8], text: &[u8]| {
                let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, text.as_ptr().cast(), text.len()) < 0 {
                    libc::_exit(2);
                }
                libc::close(fd);
            };
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
                libc::_exit(1);
            }
            write(b"/proc/self/uid_map\0", uid_map.as_bytes());
            write(b"/proc/self/setgroups\0", b"deny\n");
            write(b"/proc/self/gid_map\0", gid_map.as_bytes());
            if !lo_up() {
                libc::_exit(3);
            }
            libc::_exit(0);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        assert_eq!(status, 0, "the floor's net sandbox failed: wait status {status}");
    }
}

/// Brings `lo` up with the `SIOCGIFFLAGS`/`SIOCSIFFLAGS` ioctls (netdevice(7)); false if
/// the kernel refused. Async-signal-safe: a socket, two ioctls, a close.
pub fn lo_up() -> bool {
    // SAFETY: plain ioctls on a fresh socket with an ifreq on this stack frame.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let up = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) == 0;
        libc::close(sock);
        up
    }
}

/// Nanoseconds per `SystemTime::now()` and per `Instant::now()` in this process, the best
/// of a few batches: what reading the clocks costs where the binary links nstest (whose
/// clock functions stand in front of the C library's) and where it does not. Prints
/// `nstest-bench <prefix>_system_time_ns` and `<prefix>_instant_ns` lines for the bench.
pub fn print_clock_read_ns(prefix: &str) {
    const READS: u32 = 2_000_000;
    let best = |read: &dyn Fn()| {
        (0..5)
            .map(|_| {
                let started = std::time::Instant::now();
                for _ in 0..READS {
                    read();
                }
                started.elapsed().as_nanos() as f64 / f64::from(READS)
            })
            .fold(f64::INFINITY, f64::min)
    };
    let system_time = best(&|| {
        std::hint::black_box(std::time::SystemTime::now());
    });
    let instant = best(&|| {
        std::hint::black_box(std::time::Instant::now());
    });
    println!("nstest-bench {prefix}_system_time_ns {system_time:.2}");
    println!("nstest-bench {prefix}_instant_ns {instant:.2}");
}
