//! `cargo xtask doctor`: what this host can sandbox, and the fix for each missing piece.
//!
//! It runs the same probe sandboxes as the runner, through the same fork server, so what
//! it reports is what a test run will meet.

use super::diagnosis::HostFacts;
use super::probe::{self, Kind};
use super::session::{Runs, Session, Settings};
use crate::sandbox::leaf::{Controller, Version};

/// Prints the host report; returns whether every namespace kind works. Must be called
/// while the process is single-threaded (it starts a fork server).
pub fn doctor() -> bool {
    let facts = HostFacts::read();
    let sysctl = |path: &str| {
        std::fs::read_to_string(path)
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|_| "not present".into())
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map_or("unknown".to_owned(), |v| v.trim().to_owned())
    };
    let uid = nix::unistd::geteuid();
    println!("nstest doctor: what this host can sandbox\n");
    let rows = [
        ("kernel", sysctl("/proc/sys/kernel/osrelease")),
        (
            "running as",
            format!("uid {uid}{}", if facts.root { " (root)" } else { "" }),
        ),
        (
            "seccomp",
            match field("Seccomp:").as_str() {
                "0" => "off".to_owned(),
                "1" => "strict".to_owned(),
                "2" => "filtered (a container's profile may block unshare)".to_owned(),
                other => other.to_owned(),
            },
        ),
        ("no_new_privs", field("NoNewPrivs:")),
        (
            "kernel.apparmor_restrict_unprivileged_userns",
            sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
        ),
        (
            "kernel.unprivileged_userns_clone",
            sysctl("/proc/sys/kernel/unprivileged_userns_clone"),
        ),
    ];
    for (name, value) in rows {
        println!("  {name:<46} {value}");
    }
    for kind in ["user", "mnt", "net", "uts", "ipc", "pid", "time", "cgroup"] {
        let name = format!("user.max_{kind}_namespaces");
        println!(
            "  {name:<46} {}",
            sysctl(&format!("/proc/sys/user/max_{kind}_namespaces"))
        );
    }

    let everything = probe::everything();
    // The doctor runs no test: the run's settings are the defaults.
    let settings = Settings {
        default_timeout_secs: None,
        skip_unsupported: false,
    };
    // Its probe's sandboxes have no limits.
    let runs = Runs::Many {
        one_thread: false,
        memory_limits: false,
    };
    let session = match Session::start(settings, everything, runs) {
        Ok(session) => session,
        Err(error) => {
            println!("\nnstest cannot start its fork server: {error}");
            return false;
        }
    };
    let missing = session.find_missing(&everything);
    session.stop();

    println!();
    let without_user = missing.iter().any(|m| m.kind == Kind::User);
    for kind in probe::KINDS {
        match missing.iter().find(|m| m.kind == kind) {
            Some(m) => println!("  {:<34} MISSING\n{}\n", kind.name(), indent(&m.diagnosis)),
            None if without_user => {
                println!("  {:<34} not tried (needs user namespaces)", kind.name())
            }
            None => println!("  {:<34} ok", kind.name()),
        }
    }
    print_limits(facts.root);
    if missing.is_empty() {
        println!("\nEverything works: nstest tests can run here, as this user.");
        true
    } else {
        println!(
            "\n{} missing: the tests that need {} will fail, or be skipped with \
             NSTEST_UNSUPPORTED=skip.",
            missing.len(),
            if missing.len() == 1 { "it" } else { "them" }
        );
        false
    }
}

/// Which mechanism enforces each limit here, and what it counts (docs/src/limits.md).
fn print_limits(root: bool) {
    let own = crate::sandbox::leaf::own();
    let cgroup = |controller| {
        own.iter().find(|h| h.controller == controller).map(|h| {
            let version = match h.version {
                Version::V1 => "v1",
                Version::V2 => "v2",
            };
            (version, h.dir.clone())
        })
    };
    let default = match crate::sandbox::limits::run_pids() {
        Ok(n) => format!("{n} tasks"),
        Err(why) => why,
    };
    println!("\n  limits on a test's resources (default process limit: {default}, NSTEST_PIDS)");
    let pids = match cgroup(Controller::Pids) {
        Some((version, dir)) => format!(
            "cgroup {version} pids.max, a leaf per slot under {dir}: every task of the \
             test's tree, threads included"
        ),
        None if root => "NOT ENFORCED: the kernel exempts root from RLIMIT_NPROC, and no \
             pids cgroup can be made here (NSTEST_CGROUP; see docs/src/limits.md)"
            .to_owned(),
        None => "RLIMIT_NPROC in the test's own user namespace (Linux 5.14+): the test's \
             tasks, threads included"
            .to_owned(),
    };
    let memory = match cgroup(Controller::Memory) {
        Some((version, dir)) => format!(
            "cgroup {version} memory limit, a leaf per slot under {dir}: memory the tree \
             uses, page cache and tmpfs included; OOM kill at the limit"
        ),
        None => "RLIMIT_DATA per process: private writable memory as reserved (not as \
             touched), beyond what the process held at its start; no page cache"
            .to_owned(),
    };
    for (name, how) in [
        ("pids", pids),
        ("memory", memory),
        (
            "disk",
            "tmpfs size= on each of /tmp, /var/tmp, /dev/shm, CARGO_TARGET_TMPDIR".to_owned(),
        ),
        (
            "cpu",
            "the tree's CPU time, added up by the slot every 100 ms, and RLIMIT_CPU per \
             process (SIGXCPU at the limit)"
                .to_owned(),
        ),
    ] {
        println!("  {name:<34} {how}");
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
