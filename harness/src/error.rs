//! The one error type of the harness: one variant per failing operation, each naming the
//! call with its arguments and carrying the errno.

use nix::errno::Errno;

use crate::wire::Step;

/// Formats an errno as `Operation not permitted (EPERM)`.
pub(crate) fn describe(errno: Errno) -> String {
    format!("{} ({errno:?})", errno.desc())
}

/// A system call of the harness that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `unshare(2)` of the namespace set.
    #[error("unshare({flags}): {}", describe(*.source))]
    Unshare {
        /// The flags, as `CLONE_NEWUSER|CLONE_NEWNET`.
        flags: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// `clone(2)` of a PID namespace's init into the namespace set.
    #[error("clone({flags}): {}", describe(*.source))]
    Clone {
        /// The flags, as `CLONE_NEWUSER|CLONE_NEWPID`.
        flags: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// Writing one of the files under `/proc/self` that configure a namespace.
    #[error("write {path} ({content:?}): {}", describe(*.source))]
    WriteProcFile {
        /// Which step this write is.
        step: Step,
        /// The file.
        path: &'static str,
        /// What was written.
        content: String,
        /// The errno of `open(2)` or `write(2)`.
        #[source]
        source: Errno,
    },
    /// `mount(2)`.
    #[error("mount({source_name:?}, {target:?}, {fstype:?}, {flags}, {data:?}): {}", describe(*.source))]
    Mount {
        /// Which step this mount is.
        step: Step,
        /// The source argument.
        source_name: &'static str,
        /// The mount point.
        target: &'static str,
        /// The filesystem type, empty for a propagation change.
        fstype: &'static str,
        /// The flags, as `MS_REC|MS_PRIVATE`.
        flags: &'static str,
        /// The data argument.
        data: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// `mount_setattr(2)`.
    #[error("mount_setattr({path:?}, {change}): {}", describe(*.source))]
    MountSetattr {
        /// Which step this is.
        step: Step,
        /// The mount point.
        path: &'static str,
        /// What was changed, as `AT_RECURSIVE, set MOUNT_ATTR_RDONLY`.
        change: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// A `writable = "..."` path that cannot be opened, usually because it does not exist.
    #[error(
        "open({path:?}, O_PATH) of a `writable` path: {}; create it before the test runs, \
         or fix the path (a relative one is relative to the package root)",
        describe(*.source)
    )]
    Writable {
        /// The path, absolute.
        path: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// Creating the mount point of a host path inside a fresh tmpfs.
    #[error("mkdir -p {path:?} (a mount point in the fresh tmpfs): {}", describe(*.source))]
    MountPoint {
        /// The path.
        path: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// `chdir(2)` back into the working directory after the mounts.
    #[error("chdir({path:?}): {}", describe(*.source))]
    ChangeDirectory {
        /// The directory.
        path: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// Bringing `lo` up.
    #[error("ioctl({call}, \"lo\", IFF_UP): {}", describe(*.source))]
    BringLoopbackUp {
        /// `socket`, `SIOCGIFFLAGS` or `SIOCSIFFLAGS`.
        call: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// Letting `lo` carry multicast (`sandbox::net`), a netlink request.
    #[error("netlink {request}: {}", describe(*.source))]
    LoopbackMulticast {
        /// The request, or `socket`, `sendto`, `recv` of the netlink socket.
        request: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// `sethostname(2)`.
    #[error("sethostname({name:?}): {}", describe(*.source))]
    SetHostname {
        /// The requested name.
        name: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// `fork(2)`.
    #[error("fork() of the {what}: {}", describe(*.source))]
    Fork {
        /// Which process was being created.
        what: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// Any other call on the way (prctl, pipe2, dup2, socketpair, sendmsg, sigaction).
    #[error("{call}: {}", describe(*.source))]
    Sys {
        /// The call with its arguments.
        call: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// The process had threads where the design requires it to have none.
    #[error(
        "the test binary's main() already has {threads} threads before nstest::main!() runs; \
         nstest must fork its sandbox server while the process is single-threaded (is a \
         static initializer or another main wrapper starting threads?)"
    )]
    Multithreaded {
        /// How many threads were found.
        threads: usize,
    },
}

impl Error {
    /// The setup step this error belongs to, for the report to the runner.
    pub(crate) fn step(&self) -> Step {
        match self {
            Error::Unshare { .. } | Error::Clone { .. } => Step::Unshare,
            Error::WriteProcFile { step, .. }
            | Error::Mount { step, .. }
            | Error::MountSetattr { step, .. } => *step,
            Error::Writable { .. } => Step::OpenWritable,
            Error::MountPoint { .. } => Step::BindHostPath,
            Error::ChangeDirectory { .. } => Step::Other,
            Error::BringLoopbackUp { .. } | Error::LoopbackMulticast { .. } => {
                Step::BringLoopbackUp
            }
            Error::SetHostname { .. } => Step::SetHostname,
            Error::Fork { .. } => Step::Fork,
            Error::Sys { .. } | Error::Multithreaded { .. } => Step::Other,
        }
    }

    /// The errno of the failing call, 0 where there is none.
    pub(crate) fn errno(&self) -> i32 {
        match self {
            Error::Unshare { source, .. }
            | Error::Clone { source, .. }
            | Error::WriteProcFile { source, .. }
            | Error::Mount { source, .. }
            | Error::MountSetattr { source, .. }
            | Error::Writable { source, .. }
            | Error::MountPoint { source, .. }
            | Error::ChangeDirectory { source, .. }
            | Error::BringLoopbackUp { source, .. }
            | Error::LoopbackMulticast { source, .. }
            | Error::SetHostname { source, .. }
            | Error::Fork { source, .. }
            | Error::Sys { source, .. } => *source as i32,
            Error::Multithreaded { .. } => 0,
        }
    }
}

/// Shorthand for results of the harness.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_call_its_arguments_and_the_errno() {
        let err = Error::Unshare {
            flags: "CLONE_NEWUSER|CLONE_NEWNET".into(),
            source: Errno::EPERM,
        };
        assert_eq!(
            err.to_string(),
            "unshare(CLONE_NEWUSER|CLONE_NEWNET): Operation not permitted (EPERM)"
        );
        assert_eq!(err.step(), Step::Unshare);
        assert_eq!(err.errno(), libc::EPERM);

        let err = Error::WriteProcFile {
            step: Step::WriteUidMap,
            path: "/proc/self/uid_map",
            content: "0 1000 1\n".into(),
            source: Errno::EPERM,
        };
        assert_eq!(
            err.to_string(),
            "write /proc/self/uid_map (\"0 1000 1\\n\"): Operation not permitted (EPERM)"
        );
        assert_eq!(err.step(), Step::WriteUidMap);
    }
}
