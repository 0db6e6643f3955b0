//! Runs in: the runner, before it forks anything. A test binary traced by cargo-tarpaulin's
//! ptrace engine without `--follow-exec` stops at once, saying what to run instead.
//!
//! That engine (tarpaulin's default on x86_64 Linux) traces every fork of the test binary
//! (`PTRACE_O_TRACEFORK`), but without `--follow-exec` it stops serving them once the
//! binary's first process exits: nstest's fork server, slots and tests inherit the
//! engine's breakpoints and either die by SIGTRAP or SIGSEGV ("A segfault occurred while
//! executing tests") or are left stopped, holding tarpaulin's output pipe, so whatever
//! waits on tarpaulin hangs. With `--follow-exec` it follows every process, and with
//! `--engine llvm` nothing is traced at all; both count coverage through nstest's forks.
//! Other tracers (`strace -f`, gdb) follow forks as the kernel reports them, and are left
//! alone.

use std::fs;

/// What the runner prints before it exits with 101 under tarpaulin's ptrace engine
/// without `--follow-exec`.
pub(crate) const DIAGNOSIS: &str = "nstest: cargo tarpaulin's ptrace engine cannot follow \
     nstest's forked test processes without --follow-exec (they would crash or be left \
     stopped); run `cargo tarpaulin --follow-exec` or `cargo tarpaulin --engine llvm`\n";

/// Exits with libtest's failure status, after [`DIAGNOSIS`], when this process is traced by
/// cargo-tarpaulin and tarpaulin's command line lacks `--follow-exec`. Costs one read of
/// `/proc/self/status` when nothing traces the process.
pub(crate) fn refuse_tarpaulin_without_follow_exec() {
    let Some(tracer) = tracer_pid() else {
        return;
    };
    let Ok(cmdline) = fs::read(format!("/proc/{tracer}/cmdline")) else {
        return;
    };
    if needs_follow_exec(&cmdline) {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), DIAGNOSIS.as_bytes());
        std::process::exit(101);
    }
}

/// The pid on the `TracerPid:` line of `/proc/self/status`, if not 0.
fn tracer_pid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let pid: u32 = status
        .lines()
        .find_map(|line| line.strip_prefix("TracerPid:"))?
        .trim()
        .parse()
        .ok()?;
    (pid != 0).then_some(pid)
}

/// Whether a tracer's NUL-separated command line is cargo-tarpaulin's with the ptrace engine
/// (the only one that traces) and without `--follow-exec`.
fn needs_follow_exec(cmdline: &[u8]) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_tarpaulin = args.iter().take(2).any(|arg| {
        let name = arg.rsplit(|b| *b == b'/').next().unwrap_or(arg);
        name == b"cargo-tarpaulin" || name == b"tarpaulin"
    });
    is_tarpaulin && !args.iter().any(|arg| *arg == b"--follow-exec")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tarpaulin_without_follow_exec_is_refused() {
        let refused = [
            &b"/root/.cargo/bin/cargo-tarpaulin\0tarpaulin\0"[..],
            b"cargo-tarpaulin\0tarpaulin\0--manifest-path\0x/Cargo.toml\0",
            b"/usr/bin/tarpaulin\0--engine\0ptrace\0",
        ];
        for cmdline in refused {
            assert!(
                needs_follow_exec(cmdline),
                "{:?}",
                String::from_utf8_lossy(cmdline)
            );
        }
        let accepted = [
            &b"/root/.cargo/bin/cargo-tarpaulin\0tarpaulin\0--follow-exec\0"[..],
            b"strace\0-f\0./tests\0",
            b"gdb\0--args\0./tarpaulin-report\0",
            b"",
        ];
        for cmdline in accepted {
            assert!(
                !needs_follow_exec(cmdline),
                "{:?}",
                String::from_utf8_lossy(cmdline)
            );
        }
    }

    #[test]
    fn the_diagnosis_is_one_line_naming_both_ways_out() {
        assert_eq!(DIAGNOSIS.matches('\n').count(), 1);
        assert!(DIAGNOSIS.ends_with('\n'));
        assert!(DIAGNOSIS.contains("--follow-exec") && DIAGNOSIS.contains("--engine llvm"));
    }
}
