//! Packet capture: a thread of the test process, `nstest-capture`, in the switch's
//! namespace, that records every host's link (its switch port, both directions) into one
//! pcapng file per network, one interface per host named after it.
//!
//! A packet socket on port `p<N>` sees what host N sends before the switch's classifiers
//! act on it (a frame a partition drops is in the capture, sent and never delivered) and
//! what the switch forwards to it, relayed (delayed) frames when they leave. Timestamps
//! are the kernel's (`SO_TIMESTAMPNS`). The file goes where the test's sandbox cannot hide
//! it (see `host_view`); the runner removes it when the test passes and names it when the
//! test fails (`wire::note`). It stops growing at [`DEFAULT_LIMIT`] (or
//! `NSTEST_CAPTURE_LIMIT` bytes), and the failure section says so.

use std::fs::File;
use std::io::{BufWriter, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, LinkAddr, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::stat::{Mode, mkdirat};

use super::error::Error;
use super::host_view::{self, Dir};
use super::pcapng::{self, Way};
use super::switch::Lan;
use super::{filter, link};
use crate::sys;
use crate::wire::Note;

/// The most a capture file grows to, in bytes, unless `NSTEST_CAPTURE_LIMIT` says
/// otherwise: 64 MiB, a few minutes of a busy test's traffic.
pub(super) const DEFAULT_LIMIT: u64 = 64 << 20;
const LIMIT_VARIABLE: &str = "NSTEST_CAPTURE_LIMIT";
/// The directory under the target (or temporary) directory that holds the captures.
const CAPTURE_DIR: &str = "nstest-capture";
/// How long the thread waits for frames before looking for new hosts and its stop flag.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// How long [`Capture::record_hosts`] waits for the thread at most (a thread that died
/// never answers; the test then goes on without the capture of that host).
const SYNC_LIMIT: Duration = Duration::from_secs(5);

/// A running capture of one network. Dropping it records what is still queued, closes the
/// file and stops the thread.
#[derive(Debug)]
pub(super) struct Capture {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    /// Hosts the thread records so far, for [`Capture::record_hosts`] to wait on.
    recorded: Arc<Recorded>,
    /// A byte written here wakes the thread to look for new hosts at once.
    wake: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

/// The number of hosts whose sockets are open; `None` once the thread has ended.
#[derive(Debug, Default)]
struct Recorded {
    hosts: Mutex<Option<usize>>,
    changed: Condvar,
}

impl Recorded {
    fn set(&self, hosts: Option<usize>) {
        *self.hosts.lock().unwrap_or_else(|e| e.into_inner()) = hosts;
        self.changed.notify_all();
    }
}

impl Capture {
    /// Creates the file for network number `number` and starts recording every host of
    /// `lan`, present and future.
    ///
    /// # Errors
    ///
    /// Creating the directory or the file, or spawning the thread.
    pub(super) fn start(lan: Arc<Lan>) -> Result<Capture, Error> {
        let (file, path) = create_file(lan.number)?;
        let limit = std::env::var(LIMIT_VARIABLE)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_LIMIT);
        crate::process::send_note(&Note::Capture {
            path: path.display().to_string(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let recorded = Arc::new(Recorded::default());
        recorded.set(Some(0));
        let (woken, wake) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|source| {
                Error::Sys {
                    call: "pipe2(O_CLOEXEC|O_NONBLOCK)".into(),
                    source,
                }
            })?;
        let hosts_now = lan.lock().host_count();
        let recorder = Recorder {
            recorded: recorded.clone(),
            woken,
            lan,
            out: BufWriter::with_capacity(256 * 1024, file),
            path: path.clone(),
            written: 0,
            limit,
            ports: Vec::new(),
        };
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nstest-capture".into())
            .spawn(move || recorder.run(&flag))
            .map_err(|source| Error::Thread { source })?;
        let capture = Capture {
            path,
            stop,
            recorded,
            wake,
            thread: Some(thread),
        };
        capture.record_hosts(hosts_now);
        Ok(capture)
    }

    /// Returns once the first `hosts` hosts are recorded: packets they send from then on
    /// are in the file. [`Network::host`](super::Network::host) calls it for each new host.
    pub(super) fn record_hosts(&self, hosts: usize) {
        let _ = nix::unistd::write(&self.wake, &[1]);
        let deadline = std::time::Instant::now() + SYNC_LIMIT;
        let mut recorded = self
            .recorded
            .hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while let Some(n) = *recorded {
            let now = std::time::Instant::now();
            if n >= hosts || now >= deadline {
                return;
            }
            recorded = self
                .recorded
                .changed
                .wait_timeout(recorded, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The file, as the host names it.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The directory of this test process's captures, under `base`: the test's name and a
/// random suffix (a test in a PID namespace is always PID 2).
fn test_dir() -> &'static str {
    static DIR: OnceLock<String> = OnceLock::new();
    DIR.get_or_init(|| {
        let name = crate::process::running_test().map_or("test", |t| t.name());
        let name: String = name
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
                _ => '_',
            })
            .collect();
        format!("{name}-{:08x}", super::rng::Rng::random_seed() as u32)
    })
}

/// Creates `<base>/nstest-capture/<test>-<suffix>/net<number>.pcapng`, under the target
/// directory, or else under the host's temporary directory.
fn create_file(number: u8) -> Result<(File, PathBuf), Error> {
    let view = host_view::view();
    let relative = format!("{CAPTURE_DIR}/{}/net{number}.pcapng", test_dir());
    let mut last = Error::Sys {
        call: "open(the target directory and the host's temporary directory)".into(),
        source: Errno::ENOENT,
    };
    for base in [&view.target, &view.temp].into_iter().flatten() {
        match create_under(base, &relative) {
            Ok(file) => return Ok((file, base.path.join(&relative))),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn create_under(base: &Dir, relative: &str) -> Result<File, Error> {
    let sys = |call: String| move |source| Error::Sys { call, source };
    let dir = Path::new(relative)
        .parent()
        .expect("the file is in a directory");
    for level in [Path::new(CAPTURE_DIR), dir] {
        match mkdirat(base.fd.as_fd(), level, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(source) => {
                let call = format!("mkdir({:?})", base.path.join(level));
                return Err(sys(call)(source));
            }
        }
    }
    let fd: OwnedFd = openat(
        base.fd.as_fd(),
        relative,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(sys(format!(
        "open({:?}, O_CREAT|O_EXCL)",
        base.path.join(relative)
    )))?;
    Ok(File::from(fd))
}

/// The capture thread's state.
struct Recorder {
    lan: Arc<Lan>,
    out: BufWriter<File>,
    path: PathBuf,
    written: u64,
    limit: u64,
    /// One packet socket per host recorded so far, in host order (its interface id).
    ports: Vec<OwnedFd>,
    recorded: Arc<Recorded>,
    /// The read end of [`Capture`]'s wake pipe.
    woken: OwnedFd,
}

impl Recorder {
    fn run(mut self, stop: &AtomicBool) {
        let entered = nix::sched::setns(
            self.lan.switch.as_fd(),
            nix::sched::CloneFlags::CLONE_NEWNET,
        );
        if entered.is_err() || !self.write(&pcapng::section_header()) {
            return;
        }
        let mut buf = vec![0u8; 65536 + 64];
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            if !self.add_new_hosts() {
                return;
            }
            let timeout = if stopping {
                PollTimeout::ZERO
            } else {
                PollTimeout::from(IDLE_POLL.as_millis() as u16)
            };
            // The wake pipe first, then one socket per host.
            let mut fds: Vec<PollFd> = std::iter::once(&self.woken)
                .chain(&self.ports)
                .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
                .collect();
            if sys::retry_on_eintr(|| poll(&mut fds, timeout)).is_err() {
                return;
            }
            let ready: Vec<usize> = fds
                .iter()
                .skip(1)
                .enumerate()
                .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|(i, _)| i)
                .collect();
            drop(fds);
            let mut drained = [0u8; 64];
            while matches!(nix::unistd::read(&self.woken, &mut drained), Ok(n) if n > 0) {}
            for host in &ready {
                if !self.drain(*host, &mut buf) {
                    return;
                }
            }
            let _ = self.out.flush();
            if stopping && ready.is_empty() {
                return;
            }
        }
    }

    /// Opens a socket and writes an interface for every host added since the last look.
    fn add_new_hosts(&mut self) -> bool {
        let hosts: Vec<(String, link::Addresses)> = {
            let state = self.lan.lock();
            (self.ports.len()..state.host_count())
                .map(|h| (state.host_name(h).to_owned(), state.host_addresses(h)))
                .collect()
        };
        for (name, addresses) in hosts {
            let host = self.ports.len();
            let Ok(socket) =
                sys::packet_socket(link::port_index(host), Some(&filter::every_frame()))
            else {
                return false;
            };
            // Room for a burst, as a relay has; and the kernel's receive time on each frame.
            let _ = setsockopt(&socket, sockopt::RcvBuf, &(8 << 20));
            let _ = setsockopt(&socket, sockopt::ReceiveTimestampns, &true);
            let description = format!(
                "host {name} ({}, {}), seen from its switch port p{host}",
                addresses.v4, addresses.v6
            );
            if !self.write(&pcapng::interface(&name, &description)) {
                return false;
            }
            self.ports.push(socket);
        }
        self.recorded.set(Some(self.ports.len()));
        true
    }

    /// Records every frame queued on host `host`'s socket; `false` once the file is full
    /// or cannot be written.
    fn drain(&mut self, host: usize, buf: &mut [u8]) -> bool {
        let room = buf.len();
        loop {
            let (len, original, way, nanos) = {
                let mut iov = [IoSliceMut::new(buf)];
                let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
                let fd = self.ports[host].as_raw_fd();
                let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC;
                let Ok(message) = recvmsg::<LinkAddr>(fd, &mut iov, Some(&mut cmsg), flags) else {
                    // EAGAIN: drained. EINTR: the next poll comes back here. Another error:
                    // the port is gone with its host.
                    return true;
                };
                // A frame the port sends goes to the host.
                let to_host = message
                    .address
                    .is_some_and(|a| a.pkttype() == libc::PACKET_OUTGOING);
                let nanos = message
                    .cmsgs()
                    .ok()
                    .and_then(|mut c| {
                        c.find_map(|m| match m {
                            ControlMessageOwned::ScmTimestampns(ts) => {
                                Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
                            }
                            _ => None,
                        })
                    })
                    .unwrap_or_else(now_nanos);
                let way = if to_host { Way::Received } else { Way::Sent };
                (message.bytes.min(room), message.bytes, way, nanos)
            };
            let block = pcapng::packet(host as u32, nanos, &buf[..len], original, way);
            if !self.write(&block) {
                return false;
            }
        }
    }

    /// Appends `block` unless it would pass the limit; then says so once and stops.
    fn write(&mut self, block: &[u8]) -> bool {
        if self.written + block.len() as u64 > self.limit {
            let _ = self.out.flush();
            crate::process::send_note(&Note::CaptureFull {
                path: self.path.display().to_string(),
                limit: self.limit,
            });
            return false;
        }
        self.written += block.len() as u64;
        self.out.write_all(block).is_ok()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.out.flush();
        self.recorded.set(None);
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
