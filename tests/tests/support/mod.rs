//! Running fixture test binaries as a user would, and reading what they printed.
#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a fixture run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A fixture that runs longer than this is a hang, and fails the test instead of CI. Some
/// runs are cargo building a fixture crate from cold (tokio and all) in a fresh clone: on a
/// 2-core machine shared with other builds one took more than 120 s (two such tests share
/// one build lock), so the bound leaves room for that.
const WATCHDOG: Duration = Duration::from_secs(420);

/// Runs `binary` with `args` and extra environment, with backtraces off so output is
/// stable. Kills it (by the pid we started) if it outlives the watchdog.
pub fn run(binary: &str, args: &[&str], envs: &[(&str, String)]) -> Run {
    run_in(None, binary, args, envs)
}

/// [`run`], started in the working directory `dir` (this process's when `None`).
pub fn run_in(
    dir: Option<&std::path::Path>,
    binary: &str,
    args: &[&str],
    envs: &[(&str, String)],
) -> Run {
    let mut command = Command::new(binary);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("NSTEST_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {binary}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{binary} {args:?} hung for {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

impl Run {
    /// `name -> ok|FAILED|ignored` from the `test name ... outcome` lines (libtest's
    /// ` - should panic` after a name is left out).
    pub fn outcomes(&self) -> BTreeMap<String, String> {
        self.stdout
            .lines()
            .filter_map(|line| line.strip_prefix("test "))
            .filter_map(|rest| rest.split_once(" ... "))
            .map(|(name, outcome)| {
                let name = name.trim();
                let name = name.strip_suffix(" - should panic").unwrap_or(name);
                (name.to_owned(), outcome.trim().to_owned())
            })
            .collect()
    }

    /// The failure text printed for `name` under `---- name stdout ----`, as libtest
    /// heads it.
    pub fn failure(&self, name: &str) -> String {
        let header = format!("---- {name} stdout ----\n");
        let start = self
            .stdout
            .find(&header)
            .unwrap_or_else(|| panic!("no failure section for {name} in:\n{}", self.stdout))
            + header.len();
        let rest = &self.stdout[start..];
        let end = [rest.find("\n---- "), rest.find("\n\nfailures:\n")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(rest.len());
        rest[..end].trim_end().to_owned()
    }

    /// The `test result: ...` line.
    pub fn summary(&self) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with("test result: "))
            .unwrap_or_else(|| {
                panic!(
                    "no summary line in:\n{}\nstderr:\n{}",
                    self.stdout, self.stderr
                )
            })
    }

    /// Fails with everything printed, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "exit code {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The file `file` (e.g. `cmdline`, `stat`) of every process, read as bytes.
fn each_process(file: &str) -> Vec<Vec<u8>> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| std::fs::read(e.path().join(file)).ok())
        .collect()
}

/// Processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<String> {
    each_process("cmdline")
        .into_iter()
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(marker) && !c.contains("cargo"))
        .collect()
}

/// Processes (zombies included, whose command line is empty) whose name, as the kernel
/// keeps it (15 bytes at most), starts with `name`.
pub fn processes_named(name: &str) -> Vec<String> {
    let prefix: String = name.chars().take(15).collect();
    each_process("stat")
        .into_iter()
        .map(|stat| String::from_utf8_lossy(&stat).into_owned())
        .filter(|stat| {
            let comm = stat
                .split_once(" (")
                .and_then(|(_, rest)| rest.rsplit_once(") "));
            comm.is_some_and(|(comm, _)| comm.starts_with(&prefix))
        })
        .collect()
}

/// Waits up to `limit` for `done`, polling every 20 ms; whether it came true.
pub fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}
