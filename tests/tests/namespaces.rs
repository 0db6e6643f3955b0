//! Every row of the option table, checked from inside the sandbox by
//! `fixture_namespaces`, and then from the host: nothing the tests did is left behind.

mod support;

use support::{processes_named, processes_with, run};

const BIN: &str = env!("CARGO_BIN_EXE_fixture_namespaces");

/// The host's view, handed to the fixture so each test can compare.
fn host_env(marker: &str, ipc_key: u32) -> Vec<(&'static str, String)> {
    let read = |path: &str| {
        std::fs::read_link(path)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    let mut env = vec![
        ("HOST_NS_USER", read("/proc/self/ns/user")),
        ("HOST_NS_MNT", read("/proc/self/ns/mnt")),
        ("HOST_NS_NET", read("/proc/self/ns/net")),
        ("HOST_NS_UTS", read("/proc/self/ns/uts")),
        ("HOST_NS_IPC", read("/proc/self/ns/ipc")),
        ("HOST_NS_PID", read("/proc/self/ns/pid")),
        ("HOST_NS_TIME", read("/proc/self/ns/time")),
        ("HOST_UID", nix::unistd::geteuid().to_string()),
        ("HOST_GID", nix::unistd::getegid().to_string()),
        ("HOST_CPUS", cpus_allowed()),
        ("NSTEST_MARKER", marker.to_owned()),
        ("NSTEST_IPC_KEY", format!("{ipc_key:x}")),
    ];
    let clock = |id| {
        let ts = nix::time::clock_gettime(id).unwrap();
        format!("{}.{:09}", ts.tv_sec(), ts.tv_nsec())
    };
    env.push(("HOST_BOOTTIME", clock(nix::time::ClockId::CLOCK_BOOTTIME)));
    env.push(("HOST_MONOTONIC", clock(nix::time::ClockId::CLOCK_MONOTONIC)));
    env.push(("HOST_REALTIME", clock(nix::time::ClockId::CLOCK_REALTIME)));
    env
}

/// Keys of the host's System V shared memory segments.
/// The CPUs this process may run on, as `/proc/self/status` lists them; the runner it
/// starts inherits them.
fn cpus_allowed() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_owned()
}

fn shm_keys() -> Vec<u32> {
    std::fs::read_to_string("/proc/sysvipc/shm")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse::<i64>().ok())
        .map(|k| k as u32)
        .collect()
}

fn mount_points() -> Vec<String> {
    let mut points: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(4).unwrap().to_owned())
        .collect();
    points.sort();
    points
}

#[test]
fn every_option_gives_what_the_table_promises_and_nothing_leaks() {
    let marker = format!("nstest-marker-{}", std::process::id());
    let ipc_key = 0x6e73_0000 | (std::process::id() & 0xffff);
    let hostname = nix::unistd::gethostname().unwrap();
    let mounts = mount_points();
    let env = host_env(&marker, ipc_key);

    for threads in ["1", "8"] {
        let r = run(BIN, &["--test-threads", threads], &env);
        assert_eq!(r.code, Some(0), "{}", r.dump());
        assert_eq!(r.outcomes().len(), 15, "{}", r.dump());
        assert!(r.outcomes().values().all(|o| o == "ok"), "{}", r.dump());
        assert!(
            r.summary()
                .starts_with("test result: ok. 15 passed; 0 failed")
        );

        // Nothing the tests did is visible on the host once the run has printed its result.
        let tmp: Vec<_> = std::fs::read_dir("/tmp")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(&marker))
            .collect();
        assert!(tmp.is_empty(), "files left in the host's /tmp: {tmp:?}");
        assert_eq!(mount_points(), mounts, "the host's mount table changed");
        assert_eq!(nix::unistd::gethostname().unwrap(), hostname);
        assert!(
            !shm_keys().contains(&ipc_key),
            "the test's shm segment is on the host"
        );
        assert_eq!(
            processes_with(&marker),
            Vec::<String>::new(),
            "daemons left running"
        );
        // Not even the fork server is left, as a zombie for the host's init to reap.
        assert_eq!(processes_named("fixture_namespaces"), Vec::<String>::new());
    }
}
