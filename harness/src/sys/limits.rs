//! The system calls of resource limits that `nix` offers only as `unsafe`. Under the rules
//! of the parent module's `# Safety` docs.

use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

/// Whether the calling process may start one more task now: forks a child that exits at
/// once (fork(2): <https://man7.org/linux/man-pages/man2/fork.2.html>) and reaps it.
/// `Ok(false)` when the kernel refuses the fork with EAGAIN, as it does at `RLIMIT_NPROC`
/// or a cgroup's `pids.max`. A test process calls it once, after its test failed, to say
/// whether it stood at its process limit.
///
/// # Errors
///
/// fork(2)'s errno other than EAGAIN, or waitpid(2)'s.
pub(crate) fn can_start_a_task() -> Result<bool, Errno> {
    // SAFETY: the caller may have threads (the test may have left some running), so the
    // child makes exactly one call, `_exit`, which is async-signal-safe: it touches no
    // lock, allocates nothing and runs no atfork-sensitive code of its own.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => match Errno::last() {
            Errno::EAGAIN => Ok(false),
            other => Err(other),
        },
        0 => {
            // SAFETY: `_exit` has no preconditions and never returns.
            unsafe { libc::_exit(0) }
        }
        child => {
            super::retry_on_eintr(|| waitpid(Pid::from_raw(child), None))?;
            Ok(true)
        }
    }
}
