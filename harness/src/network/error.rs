//! What can fail while building a network or a fault (in the test process), and what to
//! tell the user.

use nix::errno::Errno;

use crate::error::describe;

/// A call of the network module that failed. The public API turns these into panics whose
/// message is [`Error::explain`]: what was being done, the call, and what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A system call made directly (unshare, open, setns, mount, memfd).
    #[error("{call}: {}", describe(*.source))]
    Sys {
        /// The call with its arguments.
        call: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// An rtnetlink request the kernel refused.
    #[error("netlink {call}: {}", describe(*.source))]
    Netlink {
        /// The request, as `RTM_NEWLINK veth eth0 (peer p0)`.
        call: String,
        /// What the kernel needs for it, named in the hint when it refuses with
        /// "not supported" or "not found".
        needs: Option<&'static str>,
        /// The errno of the `NLMSG_ERROR` answer.
        #[source]
        source: Errno,
    },
    /// Opening or binding a packet socket for a relay.
    #[error("{call} (AF_PACKET): {}", describe(*.source))]
    PacketSocket {
        /// `socket`, `setsockopt(SO_ATTACH_FILTER)` or `bind`.
        call: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// Spawning a thread that enters a namespace.
    #[error("spawning a thread: {source}")]
    Thread {
        /// The error of `std::thread::Builder::spawn`.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The message a test fails with: `nstest network: <doing>: <error>`, then the cause
    /// and the fix where they are known.
    pub(crate) fn explain(&self, doing: &str) -> String {
        let mut text = format!("nstest network: {doing}: {self}");
        let missing = matches!(
            self,
            Error::Netlink {
                source: Errno::EOPNOTSUPP | Errno::ENOENT | Errno::EINVAL,
                ..
            }
        );
        match self {
            Error::Netlink {
                needs: Some(needs), ..
            } if missing => text.push_str(&format!(
                "\n  cause: this kernel lacks {needs}\n  fix: load the module (modprobe, as \
                 root on the host) or use a kernel built with it; `cargo xtask doctor` \
                 checks the rest of the host"
            )),
            Error::PacketSocket {
                source: Errno::EAFNOSUPPORT,
                ..
            } => text.push_str(
                "\n  cause: this kernel lacks packet sockets (CONFIG_PACKET, module af_packet), \
                 which shaping without netem needs\n  fix: `modprobe af_packet` as root, or a \
                 kernel with CONFIG_PACKET or CONFIG_NET_SCH_NETEM",
            ),
            Error::Sys {
                source: Errno::EPERM | Errno::EACCES,
                ..
            } => text.push_str(
                "\n  cause: the test's user namespace may not create or enter network \
                 namespaces here\n  fix: see the README's troubleshooting section \
                 (`cargo xtask doctor` names what the host blocks)",
            ),
            Error::Sys {
                source: Errno::ENOSPC,
                ..
            } => text.push_str(
                "\n  cause: the limit on network namespaces is reached (dying ones count \
                 until the kernel has cleaned them up)\n  fix: raise \
                 /proc/sys/user/max_net_namespaces, or run fewer tests at once",
            ),
            _ => {}
        }
        text
    }
}

/// What a destructor does with a failure: panics, or, while the thread is already
/// unwinding (where a second panic would abort the process), prints it on stderr.
pub(crate) fn panic_unless_unwinding(text: &str) {
    if std::thread::panicking() {
        eprintln!("{text}");
    } else {
        panic!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_kernel_feature_is_named_with_the_fix() {
        let e = Error::Netlink {
            call: "RTM_NEWLINK bridge br0".into(),
            needs: Some("bridges (CONFIG_BRIDGE, module bridge)"),
            source: Errno::EOPNOTSUPP,
        };
        let text = e.explain("creating the switch");
        assert!(
            text.starts_with(
                "nstest network: creating the switch: netlink RTM_NEWLINK bridge br0: "
            )
        );
        assert!(text.contains("(EOPNOTSUPP)"), "{text}");
        assert!(text.contains("lacks bridges (CONFIG_BRIDGE"), "{text}");
        assert!(text.contains("fix: load the module"), "{text}");
        let busy = Error::Netlink {
            needs: Some("bridges"),
            source: Errno::EBUSY,
            call: "x".into(),
        };
        assert!(!busy.explain("x").contains("cause"));
    }
}
