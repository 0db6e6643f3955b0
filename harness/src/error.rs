//! The error of building a sandbox or talking to its processes: one variant per failing
//! operation, each naming the call with its arguments and carrying the errno, and the
//! [`Step`] of the setup it belongs to. (A `Network` has its own error type, in
//! `network::error`, for the operations of a test's network.)
//!
//! Plain data: runs in every process, depends on nothing in the crate but `sys`'s errno.

use nix::errno::Errno;

/// The sandbox setup step that failed, so the runner can diagnose the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    /// `unshare(2)` of the namespace set.
    Unshare = 1,
    /// Writing `/proc/self/uid_map`.
    WriteUidMap = 2,
    /// Writing `deny` to `/proc/self/setgroups`.
    DenySetgroups = 3,
    /// Writing `/proc/self/gid_map`.
    WriteGidMap = 4,
    /// Making `/` recursively private.
    MakeMountsPrivate = 5,
    /// Mounting the tmpfs on `/tmp`.
    MountTmp = 6,
    /// Mounting a fresh `/proc` inside the PID namespace.
    MountProc = 7,
    /// Bringing `lo` up.
    BringLoopbackUp = 8,
    /// `sethostname(2)`.
    SetHostname = 9,
    /// Writing `/proc/self/timens_offsets`.
    WriteTimeOffsets = 10,
    /// `fork(2)` inside the sandbox.
    Fork = 11,
    /// Any other step (prctl, pipe, dup2, spawning the test thread).
    Other = 12,
    /// Making the host's mounts read-only (`mount_setattr(2)`).
    MakeReadOnly = 13,
    /// Opening a `writable` path of the test.
    OpenWritable = 14,
    /// Binding a host path back into the read-only view.
    BindHostPath = 15,
    /// Mounting a fresh cgroup2 on `/sys/fs/cgroup`.
    MountCgroup = 16,
}

impl Step {
    /// The step whose tag is `byte`, as [`Report`](crate::wire::Report) encodes it.
    pub(crate) fn from_u8(byte: u8) -> Option<Step> {
        use Step::*;
        [
            Unshare,
            WriteUidMap,
            DenySetgroups,
            WriteGidMap,
            MakeMountsPrivate,
            MountTmp,
            MountProc,
            BringLoopbackUp,
            SetHostname,
            WriteTimeOffsets,
            Fork,
            Other,
            MakeReadOnly,
            OpenWritable,
            BindHostPath,
            MountCgroup,
        ]
        .into_iter()
        .find(|step| *step as u8 == byte)
    }
}

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
    /// `setrlimit(2)` of one of the test's resource limits.
    #[error("setrlimit({resource}, {value}): {}", describe(*.source))]
    SetLimit {
        /// The resource, as `RLIMIT_NPROC`.
        resource: &'static str,
        /// The limit asked for.
        value: u64,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// Writing a control file of the test's cgroup.
    #[error("write {path} ({content:?}): {}", describe(*.source))]
    WriteCgroupFile {
        /// The file.
        path: String,
        /// What was written.
        content: String,
        /// The errno of `open(2)` or `write(2)`.
        #[source]
        source: Errno,
    },
    /// An environment variable of the run that nstest cannot read.
    #[error("{message}")]
    Environment {
        /// What is wrong with it, and what it accepts.
        message: String,
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
            Error::Sys { .. }
            | Error::Multithreaded { .. }
            | Error::SetLimit { .. }
            | Error::WriteCgroupFile { .. }
            | Error::Environment { .. } => Step::Other,
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
            | Error::Sys { source, .. }
            | Error::SetLimit { source, .. }
            | Error::WriteCgroupFile { source, .. } => *source as i32,
            Error::Multithreaded { .. } | Error::Environment { .. } => 0,
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
