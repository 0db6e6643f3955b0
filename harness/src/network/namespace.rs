//! New network namespaces for a `Network`, made on a thread of their own, one ahead of
//! demand.
//!
//! unshare(2) with `CLONE_NEWNET` moves only the calling thread, so namespaces are made by
//! a thread that does nothing else: each is kept as a descriptor (of
//! `/proc/thread-self/ns/net`) with an rtnetlink socket opened in it and `lo` up, and the
//! thread moves on to the next. One thread serves a whole network, so a host costs no thread start.
//!
//! Making a namespace is a third of the kernel's work for a host (`setup_net`: `lo`, the
//! per-namespace sysctl tables, routing tables), and most of it does not take the lock
//! that configuring links takes. So the thread makes the next namespace as soon as one is
//! taken: on a machine with a core to spare it is ready by the time the next host is
//! added, while this one's links are configured. The price is one namespace per network
//! that is never used, made and torn down on that spare core.

use std::os::fd::OwnedFd;
use std::sync::mpsc::{Receiver, Sender, channel};

use nix::sched::CloneFlags;

use super::error::Error;
use super::netlink::{self, Message, Rtnl};

/// A new network namespace, `lo` up, and an rtnetlink socket of it.
#[derive(Debug)]
pub(super) struct Made {
    pub(super) netns: OwnedFd,
    pub(super) rtnl: Rtnl,
}

/// The thread that makes namespaces, and the one it has made (or is making) next.
///
/// Dropping it ends the thread without waiting: the thread finishes the namespace it is
/// making, finds nobody to take it, closes it and returns.
#[derive(Debug)]
pub(super) struct Factory {
    requests: Sender<()>,
    made: Receiver<Result<Made, Error>>,
}

impl Factory {
    /// Starts the thread, which begins the first namespace at once.
    ///
    /// # Errors
    ///
    /// When the thread cannot be spawned.
    pub(super) fn start() -> Result<Factory, Error> {
        let (requests, wanted) = channel::<()>();
        let (done, made) = channel();
        std::thread::Builder::new()
            .name("nstest-netns".into())
            .spawn(move || {
                for () in wanted {
                    if done.send(make()).is_err() {
                        return;
                    }
                }
            })
            .map_err(|source| Error::Thread { source })?;
        requests
            .send(())
            .expect("the thread is running: it ends only when `requests` is dropped");
        Ok(Factory { requests, made })
    }

    /// The next namespace, waiting for it if it is still being made; the thread then starts
    /// on the one after.
    ///
    /// # Errors
    ///
    /// The call that failed while making it (unshare, open, socket).
    pub(super) fn take(&mut self) -> Result<Made, Error> {
        let made = self.made.recv().map_err(|_| Error::Thread {
            source: std::io::Error::other("the namespace thread ended"),
        })?;
        // A failed send means the thread is gone; the next `take` reports it.
        let _ = self.requests.send(());
        made
    }
}

/// Moves the calling thread into a new network namespace and returns it, with `lo` up
/// (a new namespace's `lo` is down) and a socket.
fn make() -> Result<Made, Error> {
    let sys = |call: &'static str| {
        move |source| Error::Sys {
            call: call.into(),
            source,
        }
    };
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(sys("unshare(CLONE_NEWNET)"))?;
    let file = std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| {
        sys("open(\"/proc/thread-self/ns/net\")")(nix::errno::Errno::from_raw(
            e.raw_os_error().unwrap_or(libc::EIO),
        ))
    })?;
    let mut rtnl = Rtnl::open().map_err(sys("socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)"))?;
    let up = libc::IFF_UP as u32;
    let lo_up = Message::new(netlink::RTM_NEWLINK, 0, &netlink::ifinfomsg(1, up, up));
    rtnl.request(lo_up).map_err(|source| Error::Netlink {
        call: "RTM_NEWLINK lo up".into(),
        needs: None,
        source,
    })?;
    Ok(Made {
        netns: OwnedFd::from(file),
        rtnl,
    })
}
