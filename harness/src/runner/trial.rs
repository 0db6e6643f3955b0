//! One test in its sandbox: the pipes it reports on, the request to the fork server, and
//! reading everything back until no process of the test is left.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::capture::{Captured, KEEP_EACH};
use super::client::{Lease, TestPipes};
use super::limit::{self, Evidence};
use super::outcome::{self, Outcome};
use super::session::Launcher;
use crate::error::{Error, Result};
use crate::process::Channels;
use crate::process::direct::{self, Direct};
use crate::registry::Test;
use crate::sys;
use crate::wire::note::{MAX_NOTE_LEN, MAX_NOTES};
use crate::wire::{EXIT_FRAME_LEN, ExitFrame, MAX_REPORT_LEN, Note, REPORT_HEADER_LEN, Report};

/// What came back from a test's sandbox.
#[derive(Debug)]
pub(crate) struct Sandboxed {
    pub outcome: Outcome,
    /// Everything the test printed (empty with `--nocapture`).
    pub output: String,
    /// Processes the test left running, which were killed.
    pub leaked: u32,
    /// What the test said about itself while it ran (see `wire::note`).
    pub notes: Vec<Note>,
}

/// Starts `test` through `launcher` (the fork server, or the runner itself for a run of
/// one test), to be killed after `timeout_secs`, and waits until every process of it is
/// gone.
pub(crate) fn run_sandboxed(
    launcher: &Launcher,
    test: &'static Test,
    capture: bool,
    timeout_secs: Option<u64>,
) -> Result<Sandboxed> {
    let (report_read, report_write) = pipe()?;
    let report_fits = holds_any_report(&report_read);
    let (exit_read, exit_write) = pipe()?;
    let (output_read, output_write) = match capture {
        true => pipe().map(|(read, write)| (Some(read), Some(write)))?,
        false => (None, None),
    };
    let started = match launcher {
        Launcher::Server(server) => {
            let pipes = TestPipes {
                report: &report_write,
                exit: &exit_write,
                output: output_write.as_ref(),
            };
            let lease = server.spawn(test, &pipes, timeout_secs)?;
            drop((report_write, exit_write, output_write));
            Started::Lease(lease)
        }
        Launcher::Direct => {
            let mut runner_ends = vec![report_read.as_raw_fd(), exit_read.as_raw_fd()];
            runner_ends.extend(output_read.as_ref().map(AsRawFd::as_raw_fd));
            let channels = Channels {
                report: report_write,
                exit: exit_write,
                output: output_write,
            };
            let timeout = timeout_secs.map(Duration::from_secs);
            Started::Direct(direct::start(test, channels, &runner_ends, timeout))
        }
    };
    // Only the sandbox may hold write ends now (the slot got copies, the direct path's
    // went into the fork), so EOF on all three means it is gone.
    let collected = collect(&report_read, &exit_read, output_read.as_ref(), report_fits)?;
    let frame_arrived = collected.exit.len() == EXIT_FRAME_LEN;
    let fallback = match started {
        // Without a frame the slot died with the test: this waits until its processes are
        // gone too.
        Started::Lease(lease) => {
            lease.finish(frame_arrived)?;
            None
        }
        Started::Direct(direct) => direct.finish(frame_arrived),
    };

    let (notes, report) = Note::split(&collected.report);
    let report = (!report.is_empty()).then(|| Report::decode(report));
    let exit = ExitFrame::decode(&collected.exit).ok().or(fallback);
    let evidence = Evidence::read(
        report.as_ref().and_then(|r| r.as_ref().ok()),
        exit.map(|frame| frame.limits).unwrap_or_default(),
    );
    let outcome = outcome::classify(
        report,
        exit,
        test.should_panic,
        timeout_secs.unwrap_or(0),
        test.source,
    );
    let output = collected.output.into_text();
    let outcome = limit::attribute(outcome, evidence, &test.plan, &output);
    Ok(Sandboxed {
        outcome,
        output,
        leaked: exit.map_or(0, |frame| frame.leaked),
        notes,
    })
}

/// A sandbox on its way: in a pooled slot, or forked by the runner itself.
enum Started<'a> {
    Lease(Lease<'a>),
    Direct(Direct),
}

/// The most a test's report pipe carries: its notes, then its report, each at its bound.
const REPORT_PIPE_MAX: usize = MAX_NOTES * MAX_NOTE_LEN + REPORT_HEADER_LEN + MAX_REPORT_LEN;

/// Grows the report pipe so that the largest report fits in it whole (fcntl(2),
/// `F_SETPIPE_SZ`; a pipe holds 64 KiB by default, and an unprivileged user may make one
/// as large as `/proc/sys/fs/pipe-max-size`, 1 MiB by default). Then the test never waits
/// for the runner to read its report, and the runner need not wake when it is written:
/// it reads it after the exit frame. Returns whether it fits; where the kernel refuses
/// (the user's pipes already hold `pipe-user-pages-soft`), the runner reads the report as
/// it comes.
fn holds_any_report(pipe: &OwnedFd) -> bool {
    let wanted = libc::c_int::try_from(REPORT_PIPE_MAX).unwrap_or(libc::c_int::MAX);
    nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(wanted))
        .is_ok_and(|size| usize::try_from(size).is_ok_and(|size| size >= REPORT_PIPE_MAX))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|source| Error::Sys {
        call: "pipe2(O_CLOEXEC)",
        source,
    })
}

/// What came back from one sandbox.
struct Collected {
    report: Vec<u8>,
    exit: Vec<u8>,
    output: Captured,
}

/// Reads the pipes until a whole exit frame has arrived, and then what is left in the
/// others without waiting: the frame is written once every process of the test is gone,
/// and its writer (the slot, or init) holds the other pipes open until then, so the
/// runner does not wake for their end-of-file. Without a frame (the slot died), until
/// each reaches EOF. The report is read up to one byte past its bound (so an oversized message is
/// rejected by the decoder, not truncated into a valid one); anything beyond is drained and
/// discarded so a test that floods the pipe cannot block itself or grow the runner. Only
/// the slot writes the exit pipe, which the test process never holds.
/// `report_fits`: the report pipe holds the largest report (see [`holds_any_report`]), so
/// it is read only once the frame is in (or the exit pipe is closed without one).
fn collect(
    report: &OwnedFd,
    exit: &OwnedFd,
    output: Option<&OwnedFd>,
    report_fits: bool,
) -> Result<Collected> {
    let mut collected = Collected {
        report: Vec::new(),
        exit: Vec::new(),
        output: Captured::new(KEEP_EACH),
    };
    let mut open = [true, true, output.is_some()];
    let mut buf = vec![0u8; 64 * 1024];
    // Once the frame is in, every write to the others has been made: poll without waiting.
    let mut wait = PollTimeout::NONE;
    while open.iter().any(|&o| o) {
        let fds: [Option<&OwnedFd>; 3] = [Some(report), Some(exit), output];
        let watched: Vec<(usize, &OwnedFd)> = fds
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 0 || !report_fits || !open[1])
            .filter_map(|(i, fd)| fd.filter(|_| open[i]).map(|fd| (i, fd)))
            .collect();
        let mut pollfds: Vec<PollFd> = watched
            .iter()
            .map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        let ready =
            sys::retry_on_eintr(|| poll(&mut pollfds, wait)).map_err(|source| Error::Sys {
                call: "poll(test pipes)",
                source,
            })?;
        if ready == 0 {
            break;
        }
        let ready: Vec<usize> = watched
            .iter()
            .zip(&pollfds)
            .filter(|(_, pfd)| pfd.revents().is_some_and(|r| !r.is_empty()))
            .map(|((i, _), _)| *i)
            .collect();
        drop(pollfds);
        for i in ready {
            let fd = fds[i].expect("open implies present");
            match sys::retry_on_eintr(|| nix::unistd::read(fd.as_fd(), &mut buf)) {
                Ok(0) => open[i] = false,
                Ok(n) => {
                    let chunk = &buf[..n];
                    match i {
                        0 => keep_up_to(&mut collected.report, chunk, REPORT_PIPE_MAX + 1),
                        1 => {
                            keep_up_to(&mut collected.exit, chunk, EXIT_FRAME_LEN);
                            // A whole frame means the slot has killed and reaped every
                            // process of the test. Without one the slot died, and the
                            // test is held back until the slot's replacement starts,
                            // which is once no stray process is left.
                            if collected.exit.len() == EXIT_FRAME_LEN {
                                open[i] = false;
                                wait = PollTimeout::ZERO;
                            }
                        }
                        _ => collected.output.push(chunk),
                    }
                }
                Err(Errno::EAGAIN) => {}
                Err(source) => {
                    return Err(Error::Sys {
                        call: "read(test pipe)",
                        source,
                    });
                }
            }
        }
    }
    Ok(collected)
}

fn keep_up_to(into: &mut Vec<u8>, chunk: &[u8], limit: usize) {
    let room = limit.saturating_sub(into.len());
    into.extend_from_slice(&chunk[..room.min(chunk.len())]);
}

/// Removes the packet captures a passing test made (a failing test's are kept, and named
/// in its failure section), with their directory once it is empty.
pub(crate) fn discard_captures(notes: &[Note]) {
    for note in notes {
        if let Note::Capture { path } = note {
            let path = std::path::Path::new(path);
            let _ = std::fs::remove_file(path);
            // The test's directory, then `nstest-capture` itself: each removal fails while
            // another capture (of this test, or a kept one) is still in it.
            for dir in path.ancestors().skip(1).take(2) {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}
