//! Building the namespaces of one test, one module per kind, called from the process that
//! builds the sandbox: the test process itself ([`enter`]) or, with a PID namespace, its
//! init ([`enter_as_init`]).
//!
//! Layer 2 of docs/src/architecture.md: depends on `plan`, `error` and `sys`; what it needs
//! from elsewhere (the coverage profile directories) it is given by `process`, which orders
//! the preparation. Runs in: the runner once ([`prepare`]), then the test process or init.
//!
//! The order is the one user_namespaces(7) and time_namespaces(7) require: the namespaces
//! are created in one call (the kernel creates the user namespace first and gives the
//! caller full capabilities over the others), then the id maps are written, then each
//! kind is configured. PID and time namespaces apply only to children
//! (pid_namespaces(7), time_namespaces(7)): a PID namespace is therefore created with
//! `clone(2)` by the slot, its child being init; a time namespace's offsets are written
//! before any process is in it, and the test process then enters it with `setns(2)`, or,
//! under an init, by being forked.

#[cfg(target_os = "linux")]
pub(crate) mod cgroup;
#[cfg(target_os = "linux")]
pub(crate) mod leaf;
#[cfg(target_os = "linux")]
pub(crate) mod limits;
#[cfg(target_os = "linux")]
pub(crate) mod mount;
#[cfg(target_os = "linux")]
pub(crate) mod net;
#[cfg(target_os = "linux")]
pub(crate) mod pid;
#[cfg(target_os = "linux")]
pub(crate) mod time;
#[cfg(target_os = "linux")]
pub(crate) mod user;
#[cfg(target_os = "linux")]
pub(crate) mod uts;
#[cfg(nstest_wall)]
pub(crate) mod wall;

use crate::plan::Plan;

#[cfg(target_os = "linux")]
use nix::sched::CloneFlags;
#[cfg(target_os = "linux")]
use nix::unistd::{Gid, Uid, getegid, geteuid};

#[cfg(target_os = "linux")]
use crate::error::{Error, Result};

/// `CLONE_NEWTIME`, missing from nix's `CloneFlags` (nix issue 2574).
#[cfg(target_os = "linux")]
const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

/// Reads, once in the runner before the fork server is forked, what the read-only view
/// of the host needs (see `mount::HostPaths`), so that no sandbox process reads it.
/// `profile_dirs` are the coverage profile directories, which stay writable in every
/// view; the process module, which orders the preparation, passes them in. `needs`:
/// every kind a sandbox of the run may have. A run without a mount namespace (a run of
/// one `net` test, as nextest runs it) reads no host paths: they are a dozen system
/// calls and a read of `mountinfo`, about 0.06 ms of a one-test process here.
#[cfg(target_os = "linux")]
pub(crate) fn prepare(profile_dirs: &[std::path::PathBuf], needs: &Plan) {
    if needs.mount {
        mount::prepare(profile_dirs);
    } else {
        // The profile runtime writes there from the test process, as it would with a view.
        for dir in profile_dirs {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    #[cfg(nstest_wall)]
    wall::prepare();
    limits::prepare();
    leaf::prepare();
}

/// The flags of the first `unshare(2)` of `plan` (or, with a PID namespace, of the
/// slot's clone, see [`init_clone_flags`]); a user namespace is always part of it.
///
/// With a mount namespace the sandbox is two levels deep: this outer user namespace owns
/// the mount namespace in which the host is made read-only (and the cgroup namespace,
/// whose cgroup2 mount is made there too), and [`inner_flags`] then copies that mount
/// namespace under a nested user namespace, which locks the read-only flags
/// (mount_namespaces(7)). Everything the test administers itself (network, hostname,
/// IPC, its own mounts) belongs to the inner one, since capabilities do not flow from a
/// child user namespace to its parent (user_namespaces(7)).
#[cfg(target_os = "linux")]
pub(crate) fn clone_flags(plan: &Plan) -> CloneFlags {
    if plan.mount {
        let mut flags = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS;
        if plan.cgroup {
            flags |= CloneFlags::CLONE_NEWCGROUP;
        }
        return flags;
    }
    CloneFlags::CLONE_NEWUSER | administered(plan)
}

/// The flags of the nested `unshare(2)` of a plan with a mount namespace.
#[cfg(target_os = "linux")]
fn inner_flags(plan: &Plan) -> CloneFlags {
    CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | administered(plan)
}

/// The namespaces the test administers, and time, which is set up before it runs.
#[cfg(target_os = "linux")]
fn administered(plan: &Plan) -> CloneFlags {
    let mut flags = CloneFlags::empty();
    for (wanted, flag) in [
        (plan.net, CloneFlags::CLONE_NEWNET),
        (plan.uts(), CloneFlags::CLONE_NEWUTS),
        (plan.ipc, CloneFlags::CLONE_NEWIPC),
        (plan.cgroup && !plan.mount, CloneFlags::CLONE_NEWCGROUP),
        (plan.time.is_some(), CLONE_NEWTIME),
    ] {
        if wanted {
            flags |= flag;
        }
    }
    flags
}

/// `CLONE_NEWUSER|CLONE_NEWNET`, as a person would write the flags.
#[cfg(target_os = "linux")]
pub(crate) fn flag_names(flags: CloneFlags) -> String {
    [
        (CloneFlags::CLONE_NEWUSER, "CLONE_NEWUSER"),
        (CloneFlags::CLONE_NEWNS, "CLONE_NEWNS"),
        (CloneFlags::CLONE_NEWNET, "CLONE_NEWNET"),
        (CloneFlags::CLONE_NEWUTS, "CLONE_NEWUTS"),
        (CloneFlags::CLONE_NEWIPC, "CLONE_NEWIPC"),
        (CloneFlags::CLONE_NEWPID, "CLONE_NEWPID"),
        (CloneFlags::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
        (CLONE_NEWTIME, "CLONE_NEWTIME"),
    ]
    .into_iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| name)
    .collect::<Vec<_>>()
    .join("|")
}

/// The flags the slot clones a PID namespace's init with: [`clone_flags`] and the PID
/// namespace, but not the time namespace, whose offsets init writes before the test
/// enters it.
#[cfg(target_os = "linux")]
pub(crate) fn init_clone_flags(plan: &Plan) -> CloneFlags {
    (clone_flags(plan) | CloneFlags::CLONE_NEWPID) - CLONE_NEWTIME
}

#[cfg(target_os = "linux")]
fn unshare(flags: CloneFlags) -> Result<()> {
    nix::sched::unshare(flags).map_err(|source| Error::Unshare {
        flags: flag_names(flags),
        source,
    })
}

/// Moves the calling test process into the namespaces of `plan` and configures them, time
/// included: one process, no init (`plan` has no PID namespace).
///
/// # Errors
///
/// The first failing call, by name, arguments and errno.
#[cfg(target_os = "linux")]
pub(crate) fn enter(plan: &Plan) -> Result<()> {
    debug_assert!(
        !plan.pid,
        "a PID namespace needs an init: see enter_as_init"
    );
    // The ids must be read before unshare: afterwards, until the maps are written, the
    // kernel reports the overflow id 65534 (user_namespaces(7), "Defining user and group ID
    // mappings").
    let (uid, gid) = (geteuid(), getegid());
    unshare(clone_flags(plan))?;
    if plan.mount {
        user::write_identity_maps(uid, gid)?;
        build_view(plan)?;
        unshare(inner_flags(plan))?;
    }
    user::write_id_maps(uid, gid)?;
    configure(plan)?;
    if let Some(offsets) = plan.time {
        time::apply_time_offsets(offsets)?;
        time::enter_time_namespace()?;
    }
    Ok(())
}

/// In a PID namespace's init, cloned into the namespaces of [`init_clone_flags`]: writes
/// the id maps for `uid`/`gid` (the slot's, read before the clone), builds the read-only
/// view with a fresh `/proc` (with a mount namespace; a procfs can only be mounted by the
/// user namespace that owns the PID namespace, the outer one) and nests the inner
/// namespaces, configures each kind, and creates the time namespace, which the test
/// enters when init forks it.
///
/// # Errors
///
/// The first failing call, by name, arguments and errno.
#[cfg(target_os = "linux")]
pub(crate) fn enter_as_init(plan: &Plan, uid: Uid, gid: Gid) -> Result<()> {
    if plan.mount {
        user::write_identity_maps(uid, gid)?;
        build_view(plan)?;
        pid::mount_fresh_proc()?;
        unshare(inner_flags(plan) - CLONE_NEWTIME)?;
    }
    user::write_id_maps(uid, gid)?;
    configure(plan)?;
    if let Some(offsets) = plan.time {
        unshare(CLONE_NEWTIME)?;
        time::apply_time_offsets(offsets)?;
    }
    Ok(())
}

/// In the outer user namespace of a plan with a mount namespace: the read-only view of
/// the host, and the cgroup2 mount, so that the inner copy locks both.
#[cfg(target_os = "linux")]
fn build_view(plan: &Plan) -> Result<()> {
    mount::make_mounts_private()?;
    mount::build_read_only_view(plan)?;
    if plan.cgroup && std::path::Path::new("/sys/fs/cgroup").is_dir() {
        cgroup::mount_fresh_cgroup(mount::host_paths().cgroup_delegated)?;
    }
    Ok(())
}

/// What the test's own namespaces need once the caller is in them: `lo` up, the
/// hostname, and the working directory entered again in the new mounts.
#[cfg(target_os = "linux")]
fn configure(plan: &Plan) -> Result<()> {
    if plan.net {
        net::bring_loopback_up()?;
    }
    if let Some(name) = plan.hostname {
        uts::set_hostname(name)?;
    }
    if plan.mount {
        mount::reenter_working_directory()?;
    }
    Ok(())
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;
    use crate::plan::TimeOffsets;

    #[test]
    fn flags_follow_the_plan_and_always_include_a_user_namespace() {
        let user_only = Plan::user_only();
        assert_eq!(flag_names(clone_flags(&user_only)), "CLONE_NEWUSER");
        let full = Plan::hermetic();
        assert_eq!(
            flag_names(init_clone_flags(&full)),
            "CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWCGROUP"
        );
        assert_eq!(
            flag_names(inner_flags(&full)),
            "CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWUTS|CLONE_NEWIPC"
        );
        let unmounted = Plan {
            mount: false,
            pid: false,
            ..full
        };
        assert_eq!(
            flag_names(clone_flags(&unmounted)),
            "CLONE_NEWUSER|CLONE_NEWNET|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWCGROUP"
        );
        let named = Plan {
            hostname: Some("box"),
            time: Some(TimeOffsets {
                monotonic: 1,
                boottime: 0,
            }),
            ..user_only
        };
        assert_eq!(
            flag_names(clone_flags(&named)),
            "CLONE_NEWUSER|CLONE_NEWUTS|CLONE_NEWTIME"
        );
    }
}
