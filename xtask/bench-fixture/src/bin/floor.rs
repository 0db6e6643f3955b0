//! The floor: what the kernel needs for the sandbox of a trivial test, with raw system
//! calls and the fewest processes, and no harness (no fork server, slots, pipes, reports
//! or runner). Without a PID namespace that is one process per sandbox: fork it; it
//! unshares the whole set, writes the id maps, brings lo up, writes the time offsets and
//! enters the time namespace (`setns` to time_for_children), and exits. With a PID
//! namespace (the full set) it is two, built as nstest builds it: the forked process
//! unshares a user, mount, cgroup and PID namespace, maps its ids to themselves, makes /
//! private and then read-only (`mount_setattr`, recursive), /proc writable again, mounts
//! tmpfs on /tmp, /var/tmp and /dev/shm and a read-only cgroup2, and forks PID 1, which
//! mounts /proc, nests a user, mount, net, UTS and IPC namespace (which locks the
//! read-only view), maps root, brings lo up, and exits (a PID namespace applies only to
//! children, pid_namespaces(7)).
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
    /// With `full`: the host read-only (locked by a nested user namespace) and private
    /// scratch, as nstest builds it; without, the full set as before that view existed
    /// (one unshare, `/` private, a tmpfs on /tmp): the kernel's cost of the view.
    view: bool,
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
    assert!(nstest_bench_fixture::lo_up(), "SIOCSIFFLAGS");
}

fn write_maps(inside: &str, uid: Uid, gid: Gid) {
    std::fs::write("/proc/self/uid_map", format!("{inside} {uid} 1\n")).unwrap();
    std::fs::write("/proc/self/setgroups", "deny\n").unwrap();
    std::fs::write("/proc/self/gid_map", format!("{inside} {gid} 1\n")).unwrap();
}

fn set_mount_attr(path: &std::ffi::CStr, recursive: bool, set: u64, clear: u64) {
    let attr = libc::mount_attr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 } as libc::c_uint;
    // SAFETY: a NUL-terminated path and a mount_attr on this stack frame, with its size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    assert_eq!(ret, 0, "mount_setattr");
}

fn tmpfs(target: &str) {
    mount(Some("tmpfs"), target, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))
        .unwrap();
}

fn time_offsets() {
    std::fs::write("/proc/self/timens_offsets", "monotonic 3600 0\nboottime 3600 0\n").unwrap();
}

fn sandbox(mode: Mode, uid: Uid, gid: Gid) {
    let ForkResult::Child = fork_child() else {
        return;
    };
    let time = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    if !mode.full {
        let mut flags = CloneFlags::CLONE_NEWUSER;
        if mode.net {
            flags |= CloneFlags::CLONE_NEWNET;
        }
        if mode.time {
            flags |= time;
        }
        unshare(flags).expect("unshare");
        write_maps("0", uid, gid);
        if mode.net {
            lo_up();
        }
        if mode.time {
            time_offsets();
            let ns = std::fs::File::open("/proc/self/ns/time_for_children").unwrap();
            nix::sched::setns(ns, time).expect("setns");
        }
        // This process is the test.
        exit(0)
    }
    if !mode.view {
        unshare(
            CloneFlags::CLONE_NEWUSER
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWPID,
        )
        .expect("unshare");
        write_maps("0", uid, gid);
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).unwrap();
        tmpfs("/tmp");
        lo_up();
        match fork_child() {
            ForkResult::Child => {
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
    unshare(
        CloneFlags::CLONE_NEWUSER
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWCGROUP
            | CloneFlags::CLONE_NEWPID,
    )
    .expect("unshare");
    write_maps(&uid.to_string(), uid, gid);
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).unwrap();
    set_mount_attr(c"/", true, libc::MOUNT_ATTR_RDONLY, 0);
    set_mount_attr(c"/proc", false, 0, libc::MOUNT_ATTR_RDONLY);
    for dir in ["/tmp", "/var/tmp", "/dev/shm"] {
        tmpfs(dir);
    }
    let cgroup = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY;
    mount(Some("cgroup2"), "/sys/fs/cgroup", Some("cgroup2"), cgroup, None::<&str>).unwrap();
    match fork_child() {
        ForkResult::Child => {
            // PID 1, which is also the test: a fresh /proc, its own namespaces, then exit.
            mount(Some("proc"), "/proc", Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None::<&str>)
                .unwrap();
            unshare(
                CloneFlags::CLONE_NEWUSER
                    | CloneFlags::CLONE_NEWNS
                    | CloneFlags::CLONE_NEWNET
                    | CloneFlags::CLONE_NEWUTS
                    | CloneFlags::CLONE_NEWIPC,
            )
            .expect("unshare, nested");
            write_maps("0", uid, gid);
            lo_up();
            if mode.time {
                // Created and written here, entered by the test (this process, in the floor).
                unshare(time).expect("unshare(CLONE_NEWTIME)");
                time_offsets();
                let ns = std::fs::File::open("/proc/self/ns/time_for_children").unwrap();
                nix::sched::setns(ns, time).expect("setns");
            }
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
        Some("user") => Mode { net: false, full: false, time: false, view: false },
        Some("net") => Mode { net: true, full: false, time: false, view: false },
        Some("full") => Mode { net: true, full: true, time: false, view: true },
        Some("full_time") => Mode { net: true, full: true, time: true, view: true },
        Some("full_without_view") => Mode { net: true, full: true, time: false, view: false },
        _ => panic!("usage: floor user|net|full|full_time|full_without_view N WORKERS"),
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
