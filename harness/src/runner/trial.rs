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
    let collected = collect(&report_read, &exit_read, output_read.as_ref())?;
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

/// Reads the pipes until each reaches EOF, or, for the exit pipe, until a whole frame has
/// arrived. The report is read up to one byte past its bound (so an oversized message is
/// rejected by the decoder, not truncated into a valid one); anything beyond is drained and
/// discarded so a test that floods the pipe cannot block itself or grow the runner. Only
/// the slot writes the exit pipe, which the test process never holds.
fn collect(report: &OwnedFd, exit: &OwnedFd, output: Option<&OwnedFd>) -> Result<Collected> {
    let mut collected = Collected {
        report: Vec::new(),
        exit: Vec::new(),
        output: Captured::new(KEEP_EACH),
    };
    let mut open = [true, true, output.is_some()];
    let mut buf = vec![0u8; 64 * 1024];
    while open.iter().any(|&o| o) {
        let fds: [Option<&OwnedFd>; 3] = [Some(report), Some(exit), output];
        let watched: Vec<(usize, &OwnedFd)> = fds
            .iter()
            .enumerate()
            .filter_map(|(i, fd)| fd.filter(|_| open[i]).map(|fd| (i, fd)))
            .collect();
        let mut pollfds: Vec<PollFd> = watched
            .iter()
            .map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        sys::retry_on_eintr(|| poll(&mut pollfds, PollTimeout::NONE)).map_err(|source| {
            Error::Sys {
                call: "poll(test pipes)",
                source,
            }
        })?;
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
                        0 => keep_up_to(
                            &mut collected.report,
                            chunk,
                            MAX_NOTES * MAX_NOTE_LEN + REPORT_HEADER_LEN + MAX_REPORT_LEN + 1,
                        ),
                        1 => {
                            keep_up_to(&mut collected.exit, chunk, EXIT_FRAME_LEN);
                            // A whole frame means the slot has killed and reaped every
                            // process of the test. Without one the slot died, and the
                            // test is held back until the slot's replacement starts,
                            // which is once no stray process is left.
                            if collected.exit.len() == EXIT_FRAME_LEN {
                                open[i] = false;
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
