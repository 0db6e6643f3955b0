//! Turning a failed sandbox step into its cause and the command that fixes it.
//!
//! The kernel answers every refusal with a bare errno; which host setting caused it can
//! only be told from the step that failed, the errno and a few host facts (the table in
//! the README's troubleshooting section). This module is pure so each row is unit-tested.

use nix::errno::Errno;

use crate::error::Step;
use crate::error::describe;

/// What the runner knows about the host, read once per run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostFacts {
    /// Running as uid 0.
    pub root: bool,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu 23.10+), if present.
    pub apparmor_restricts_userns: Option<bool>,
    /// `kernel.unprivileged_userns_clone` (Debian's patch), if present.
    pub unprivileged_userns_clone: Option<bool>,
    /// `user.max_user_namespaces`, if readable.
    pub max_user_namespaces: Option<u64>,
    /// Whether `/proc/self/ns/time` exists (Linux 5.6+ with `CONFIG_TIME_NS`).
    pub time_namespaces: bool,
    /// The `user.max_*_namespaces` limits that are 0, by sysctl name.
    pub zero_limits: Vec<String>,
}

impl HostFacts {
    /// Reads the facts from /proc.
    pub(crate) fn read() -> HostFacts {
        let sysctl =
            |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
        HostFacts {
            root: nix::unistd::geteuid().is_root(),
            apparmor_restricts_userns: sysctl(
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            )
            .map(|v| v != 0),
            unprivileged_userns_clone: sysctl("/proc/sys/kernel/unprivileged_userns_clone")
                .map(|v| v != 0),
            max_user_namespaces: sysctl("/proc/sys/user/max_user_namespaces"),
            time_namespaces: std::path::Path::new("/proc/self/ns/time").exists(),
            zero_limits: ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
                .into_iter()
                .map(|kind| format!("user.max_{kind}_namespaces"))
                .filter(|name| sysctl(&format!("/proc/sys/{}", name.replace('.', "/"))) == Some(0))
                .collect(),
        }
    }
}

/// A cause and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diagnosis {
    /// What is wrong with the host, in one line.
    pub cause: String,
    /// The command or change that fixes it.
    pub fix: String,
}

impl Diagnosis {
    fn new(cause: impl Into<String>, fix: impl Into<String>) -> Diagnosis {
        Diagnosis {
            cause: cause.into(),
            fix: fix.into(),
        }
    }

    /// The multi-line text shown to the user under the failing call.
    pub(crate) fn render(&self, detail: &str) -> String {
        format!(
            "nstest: cannot build the test sandbox: {detail}\n  cause: {}\n  fix:   {}",
            self.cause,
            self.fix.replace('\n', "\n         ")
        )
    }
}

const APPARMOR_FIX: &str = "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0\n\
    (or load an AppArmor profile that grants `userns,` to the test binary)";

/// The cause of a failed `step` with `errno` on a host with `facts`.
pub(crate) fn diagnose(step: Step, errno: i32, facts: &HostFacts) -> Diagnosis {
    let errno = Errno::from_raw(errno);
    let apparmor = || {
        Diagnosis::new(
            "unprivileged user namespaces are restricted by AppArmor \
             (kernel.apparmor_restrict_unprivileged_userns = 1)",
            APPARMOR_FIX,
        )
    };
    let restricted = facts.apparmor_restricts_userns == Some(true) && !facts.root;
    match (step, errno) {
        (Step::Unshare, Errno::EPERM) if facts.unprivileged_userns_clone == Some(false) => {
            Diagnosis::new(
                "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)",
                "sudo sysctl -w kernel.unprivileged_userns_clone=1",
            )
        }
        (Step::Unshare, Errno::EPERM) if restricted => apparmor(),
        (Step::Unshare, Errno::EPERM) => Diagnosis::new(
            "the kernel refused to create namespaces; inside a container this is the \
             default seccomp profile or a missing CAP_SYS_ADMIN",
            "run the container with `--security-opt seccomp=unconfined --security-opt \
             apparmor=unconfined`, or run the tests on the host",
        ),
        (Step::Unshare, Errno::ENOSPC) if facts.max_user_namespaces == Some(0) => Diagnosis::new(
            "user namespaces are disabled (user.max_user_namespaces = 0)",
            "sudo sysctl -w user.max_user_namespaces=15000",
        ),
        (Step::Unshare, Errno::ENOSPC) if !facts.zero_limits.is_empty() => Diagnosis::new(
            format!(
                "namespace creation is disabled by {} = 0",
                facts.zero_limits.join(" = 0, ")
            ),
            facts
                .zero_limits
                .iter()
                .map(|name| format!("sudo sysctl -w {name}=15000"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        (Step::Unshare, Errno::ENOSPC) => Diagnosis::new(
            "a namespace limit is exhausted, or namespaces are nested more than 32 deep",
            "check /proc/sys/user/max_*_namespaces and raise the one that is used up, \
             e.g. sudo sysctl -w user.max_net_namespaces=15000",
        ),
        (Step::Unshare, Errno::EINVAL) if !facts.time_namespaces => Diagnosis::new(
            "this kernel has no time namespaces (they need Linux 5.6+ built with \
             CONFIG_TIME_NS; stock WSL2 kernels lack them)",
            "use a kernel with CONFIG_TIME_NS, or drop `time`, `boottime` and `monotonic` \
             from the tests",
        ),
        (Step::Unshare, Errno::EINVAL) => Diagnosis::new(
            "this kernel lacks a namespace kind the test asks for (CONFIG_USER_NS, \
             CONFIG_NET_NS, CONFIG_PID_NS, CONFIG_UTS_NS or CONFIG_IPC_NS)",
            "use a kernel built with user, mount, net, uts, ipc and pid namespaces",
        ),
        (
            Step::WriteUidMap | Step::DenySetgroups | Step::WriteGidMap,
            Errno::EPERM | Errno::EACCES,
        )
        | (
            Step::MakeMountsPrivate | Step::MountTmp | Step::MakeReadOnly | Step::BindHostPath,
            Errno::EPERM | Errno::EACCES,
        ) if restricted => apparmor(),
        (Step::WriteUidMap | Step::DenySetgroups | Step::WriteGidMap, _) => Diagnosis::new(
            "the kernel refused the user namespace's id map; a security module (AppArmor, \
             SELinux) is restricting user namespaces",
            "allow unprivileged user namespaces for the test binary in that security module",
        ),
        (Step::MountProc, Errno::EPERM | Errno::EACCES) => Diagnosis::new(
            "the host's /proc has paths hidden by over-mounts (as in Docker and Kubernetes \
             containers), so the kernel refuses a fresh /proc in a user namespace",
            "run the container with `--security-opt systempaths=unconfined`, or drop \
             `pid` or `mount` from the tests that need no private /proc",
        ),
        (Step::MakeReadOnly, Errno::ENOSYS) => Diagnosis::new(
            "this kernel has no mount_setattr(2), which makes the host's files read-only \
             inside a `mount` test (it needs Linux 5.12+)",
            "use Linux 5.12 or later, or drop `mount` from the tests (name the kinds they \
             need, like `#[ns_test(net)]`)",
        ),
        (Step::OpenWritable, Errno::ENOENT | Errno::ENOTDIR) => Diagnosis::new(
            "a path named in the test's `writable` does not exist on the host",
            "create it before the tests run, or fix the path in `#[ns_test(writable = ...)]` \
             (a relative path is relative to the package root)",
        ),
        (Step::OpenWritable, _) => Diagnosis::new(
            "a path named in the test's `writable` cannot be reached by the user running \
             the tests",
            "give that user search permission on every directory above it, or choose a \
             path it owns",
        ),
        (Step::MountCgroup, Errno::EPERM | Errno::EACCES) => Diagnosis::new(
            "the kernel refused a fresh cgroup2 mount in the test's cgroup namespace (a \
             container without a cgroup namespace of its own, or a security module)",
            "run the container with `--cgroupns=private`, or name the kinds the tests \
             need without `cgroup`",
        ),
        (Step::WriteTimeOffsets, Errno::ERANGE) => Diagnosis::new(
            "the clock offset puts CLOCK_MONOTONIC or CLOCK_BOOTTIME below zero (a \
             negative offset larger than the time since boot) or past the kernel's limit of \
             about 146 years",
            "use a smaller offset; `cat /proc/uptime` shows how far back the clocks can go",
        ),
        (Step::SetHostname, Errno::EINVAL) => Diagnosis::new(
            "the kernel rejected the hostname (longer than 64 bytes?)",
            "use a shorter `hostname`",
        ),
        (Step::Fork, Errno::EAGAIN) => Diagnosis::new(
            "the process limit is reached (RLIMIT_NPROC or kernel.pid_max)",
            "lower --test-threads, or raise `ulimit -u`",
        ),
        (step, errno) => Diagnosis::new(
            format!(
                "an unexpected failure at step {step:?}: {}",
                describe(errno)
            ),
            "please report this with the output of `uname -a` and the failing test's \
             attributes",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> HostFacts {
        HostFacts {
            time_namespaces: true,
            ..HostFacts::default()
        }
    }

    #[test]
    fn apparmor_is_named_with_its_sysctl_for_unprivileged_users_only() {
        let ubuntu = HostFacts {
            apparmor_restricts_userns: Some(true),
            ..user()
        };
        for step in [Step::WriteUidMap, Step::MakeMountsPrivate, Step::Unshare] {
            let d = diagnose(step, libc::EPERM, &ubuntu);
            assert!(d.cause.contains("AppArmor"), "{step:?}: {d:?}");
            assert!(
                d.fix
                    .starts_with("sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
            );
        }
        let as_root = HostFacts {
            root: true,
            ..ubuntu
        };
        assert!(
            !diagnose(Step::Unshare, libc::EPERM, &as_root)
                .cause
                .contains("AppArmor")
        );
    }

    #[test]
    fn each_blocking_host_setting_gets_its_own_fix() {
        let debian = HostFacts {
            unprivileged_userns_clone: Some(false),
            ..user()
        };
        assert_eq!(
            diagnose(Step::Unshare, libc::EPERM, &debian).fix,
            "sudo sysctl -w kernel.unprivileged_userns_clone=1"
        );
        assert!(
            diagnose(Step::Unshare, libc::EPERM, &user())
                .fix
                .contains("seccomp=unconfined")
        );
        let zero = HostFacts {
            max_user_namespaces: Some(0),
            ..user()
        };
        assert!(
            diagnose(Step::Unshare, libc::ENOSPC, &zero)
                .fix
                .contains("max_user_namespaces")
        );
        let no_time = HostFacts {
            zero_limits: vec!["user.max_time_namespaces".into()],
            ..user()
        };
        let d = diagnose(Step::Unshare, libc::ENOSPC, &no_time);
        assert_eq!(
            d.cause,
            "namespace creation is disabled by user.max_time_namespaces = 0"
        );
        assert_eq!(d.fix, "sudo sysctl -w user.max_time_namespaces=15000");
        let wsl = HostFacts {
            time_namespaces: false,
            ..user()
        };
        assert!(
            diagnose(Step::Unshare, libc::EINVAL, &wsl)
                .cause
                .contains("CONFIG_TIME_NS")
        );
        assert!(
            diagnose(Step::MountProc, libc::EPERM, &user())
                .cause
                .contains("/proc")
        );
        assert!(
            diagnose(Step::WriteTimeOffsets, libc::ERANGE, &user())
                .cause
                .contains("negative")
        );
        assert!(
            diagnose(Step::MakeReadOnly, libc::ENOSYS, &user())
                .fix
                .contains("Linux 5.12")
        );
        assert!(
            diagnose(Step::OpenWritable, libc::ENOENT, &user())
                .cause
                .contains("`writable`")
        );
        assert!(
            diagnose(Step::MountCgroup, libc::EPERM, &user())
                .fix
                .contains("--cgroupns=private")
        );
    }

    #[test]
    fn render_puts_call_cause_and_fix_on_their_own_lines() {
        let text = Diagnosis::new("c", "a\nb").render("unshare(X): E");
        assert_eq!(
            text,
            "nstest: cannot build the test sandbox: unshare(X): E\n  cause: c\n  fix:   a\n         b"
        );
    }
}
