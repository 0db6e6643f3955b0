//! The floor: what the kernel needs for the sandbox of a trivial test, with raw system
//! calls and the fewest processes, and no harness (no fork server, slots, pipes, reports
//! or runner). Without a PID namespace that is one process per sandbox: fork it; it
//! unshares the whole set, writes the id maps, makes / private and mounts /tmp (full), brings
//! lo up, writes the time offsets and enters the time namespace (`setns` to
//! time_for_children), and exits. With a PID namespace (the full set) it is two: the
//! forked process does the same and then forks PID 1, which mounts /proc and exits (a
//! PID namespace applies only to children, pid_namespaces(7)).
//!
//! Usage: floor MODE N WORKERS, MODE one of user, net, full, full_time. Prints the wall
//! time per sandbox in ms. WORKERS processes share the N sandboxes.
#![allow(unsafe_code)]

use std::time::Instant;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Gid, Uid, fork, getegid, geteuid};

#[derive(Clone, Copy)]
struct Mode {
    net: bool,
    full: bool,
    time: bool,
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(code) }
}

/// fork(2) from this single-threaded program.
fn fork_child() -> ForkResult {
    // SAFETY: the floor program never starts a thread, so the child inherits no lock.
    unsafe { fork() }.expect("fork")
}

fn lo_up() {
    // SAFETY: plain ioctls on a fresh socket with an ifreq on this stack frame.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        assert_eq!(libc::ioctl(sock, libc::SIOCSIFFLAGS, &req), 0, "SIOCSIFFLAGS");
        libc::close(sock);
    }
}

fn sandbox(mode: Mode, uid: Uid, gid: Gid) {
    let ForkResult::Child = fork_child() else {
        return;
    };
    let mut flags = CloneFlags::CLONE_NEWUSER;
    if mode.net {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if mode.full {
        flags |= CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWPID;
    }
    if mode.time {
        flags |= CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    }
    unshare(flags).expect("unshare");
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1\n")).unwrap();
    std::fs::write("/proc/self/setgroups", "deny\n").unwrap();
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1\n")).unwrap();
    if mode.full {
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
            .unwrap();
        mount(Some("tmpfs"), "/tmp", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))
            .unwrap();
    }
    if mode.net {
        lo_up();
    }
    if mode.time {
        std::fs::write("/proc/self/timens_offsets", "monotonic 3600 0\nboottime 3600 0\n").unwrap();
        let ns = std::fs::File::open("/proc/self/ns/time_for_children").unwrap();
        nix::sched::setns(ns, CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)).expect("setns");
    }
    if !mode.full {
        // This process is the test.
        exit(0)
    }
    match fork_child() {
        ForkResult::Child => {
            // PID 1, which is also the test: a fresh /proc, then exit.
            mount(Some("proc"), "/proc", Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None::<&str>)
                .unwrap();
            exit(0)
        }
        ForkResult::Parent { child } => {
            waitpid(child, None).unwrap();
            exit(0)
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = match args.get(1).map(String::as_str) {
        Some("user") => Mode { net: false, full: false, time: false },
        Some("net") => Mode { net: true, full: false, time: false },
        Some("full") => Mode { net: true, full: true, time: false },
        Some("full_time") => Mode { net: true, full: true, time: true },
        _ => panic!("usage: floor user|net|full|full_time N WORKERS"),
    };
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let workers: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let (uid, gid) = (geteuid(), getegid());
    let start = Instant::now();
    let mut pids = Vec::new();
    for w in 0..workers {
        let share = n / workers + usize::from(w < n % workers);
        match fork_child() {
            ForkResult::Child => {
                for _ in 0..share {
                    sandbox(mode, uid, gid);
                    nix::sys::wait::wait().unwrap();
                }
                exit(0)
            }
            ForkResult::Parent { child } => pids.push(child),
        }
    }
    for pid in pids {
        waitpid(pid, None).unwrap();
    }
    println!("{:.4}", start.elapsed().as_secs_f64() * 1e3 / n as f64);
}
