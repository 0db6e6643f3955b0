//! Building the namespaces of one test, one module per kind, called from the process that
//! builds the sandbox: the test process itself ([`enter`]) or, with a PID namespace, its
//! init ([`enter_as_init`]).
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
pub(crate) mod mount;
#[cfg(target_os = "linux")]
pub(crate) mod net;
#[cfg(target_os = "linux")]
pub(crate) mod pid;
pub mod plan;
#[cfg(target_os = "linux")]
pub(crate) mod time;
#[cfg(target_os = "linux")]
pub(crate) mod user;
#[cfg(target_os = "linux")]
pub(crate) mod uts;

pub use plan::{Plan, TimeOffsets};

#[cfg(target_os = "linux")]
use nix::sched::CloneFlags;
#[cfg(target_os = "linux")]
use nix::unistd::{Gid, Uid, getegid, geteuid};

#[cfg(target_os = "linux")]
use crate::error::{Error, Result};

/// `CLONE_NEWTIME`, missing from nix's `CloneFlags` (nix issue 2574).
#[cfg(target_os = "linux")]
const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

/// The `unshare(2)` flags for `plan`; a user namespace is always part of it.
#[cfg(target_os = "linux")]
pub(crate) fn clone_flags(plan: &Plan) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWUSER;
    for (wanted, flag) in [
        (plan.mount, CloneFlags::CLONE_NEWNS),
        (plan.net, CloneFlags::CLONE_NEWNET),
        (plan.uts(), CloneFlags::CLONE_NEWUTS),
        (plan.ipc, CloneFlags::CLONE_NEWIPC),
        (plan.pid, CloneFlags::CLONE_NEWPID),
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
        (CLONE_NEWTIME, "CLONE_NEWTIME"),
    ]
    .into_iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| name)
    .collect::<Vec<_>>()
    .join("|")
}

/// The flags the slot clones a PID namespace's init with: every namespace of `plan` but
/// the time namespace, whose offsets init writes before the test enters it.
#[cfg(target_os = "linux")]
pub(crate) fn init_clone_flags(plan: &Plan) -> CloneFlags {
    clone_flags(plan) - CLONE_NEWTIME
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
    let flags = clone_flags(plan);
    nix::sched::unshare(flags).map_err(|source| Error::Unshare {
        flags: flag_names(flags),
        source,
    })?;
    user::write_id_maps(uid, gid)?;
    configure(plan)?;
    if let Some(offsets) = plan.time {
        time::apply_time_offsets(offsets)?;
        time::enter_time_namespace()?;
    }
    Ok(())
}

/// In a PID namespace's init, cloned into the namespaces of [`init_clone_flags`]: writes
/// the id maps for `uid`/`gid` (the slot's, read before the clone), configures each kind,
/// mounts a fresh `/proc` (with a mount namespace), and creates the time namespace, which
/// the test enters when init forks it.
///
/// # Errors
///
/// The first failing call, by name, arguments and errno.
#[cfg(target_os = "linux")]
pub(crate) fn enter_as_init(plan: &Plan, uid: Uid, gid: Gid) -> Result<()> {
    user::write_id_maps(uid, gid)?;
    configure(plan)?;
    if plan.mount {
        pid::mount_fresh_proc()?;
    }
    if let Some(offsets) = plan.time {
        nix::sched::unshare(CLONE_NEWTIME).map_err(|source| Error::Unshare {
            flags: flag_names(CLONE_NEWTIME),
            source,
        })?;
        time::apply_time_offsets(offsets)?;
    }
    Ok(())
}

/// What every kind but user and time needs once the caller is in its namespaces: the
/// mount namespace private with a fresh `/tmp`, `lo` up, the hostname.
#[cfg(target_os = "linux")]
fn configure(plan: &Plan) -> Result<()> {
    if plan.mount {
        mount::make_mounts_private()?;
        let kept = mount::hold_under_tmp(crate::coverage::profile_dirs())?;
        mount::mount_fresh_tmp()?;
        mount::bind_back_under_tmp(kept)?;
    }
    if plan.net {
        net::bring_loopback_up()?;
    }
    if let Some(name) = plan.hostname {
        uts::set_hostname(name)?;
    }
    Ok(())
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_plan_and_always_include_a_user_namespace() {
        let user_only = Plan::user_only();
        assert_eq!(flag_names(clone_flags(&user_only)), "CLONE_NEWUSER");
        let full = Plan::hermetic();
        assert_eq!(
            flag_names(clone_flags(&full)),
            "CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID"
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
