//! `cargo xtask ci`: what CI runs, runnable by any developer; `cargo xtask doctor`: what
//! this host can sandbox.
//!
//! 1. `cargo test --workspace`, the README's command, as the current user.
//! 2. As root only: every test binary again as the unprivileged user `nstest-ci` (created
//!    if missing), because nstest must work for ordinary users and CI runs as root. The
//!    binaries are built into a world-readable target directory and run with
//!    setpriv(1). Binaries that need the toolchain at run time (see [`NEEDS_TOOLCHAIN`])
//!    are left out of this pass: it lives in root's home.
#![deny(unsafe_code)]

mod bench;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// The user the second pass runs as.
const CI_USER: &str = "nstest-ci";
/// Test binaries that need the toolchain at run time, which lives in root's home: the
/// compile-fail tests run the compiler, the ecosystem and libtest tests run cargo and cargo-nextest,
/// the coverage tests run cargo-llvm-cov and cargo-tarpaulin, the parity tests run rustc,
/// the docs tests run mdbook (installed with cargo), and a proc-macro crate's unit tests
/// link the toolchain's `libstd-*.so` dynamically.
const NEEDS_TOOLCHAIN: &[&str] = &[
    "compile_fail",
    "docs",
    "nstest_macros",
    "ecosystem",
    "libtest",
    "parity",
    "coverage",
    "chaos_tools",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench::bench(&workspace_root()),
        Some("bench-rss") => bench::rss_of(&args[1..]),
        Some("doctor") => {
            if nstest::__private::doctor() {
                Ok(())
            } else {
                Err("some namespace kinds are missing (see above)".to_owned())
            }
        }
        _ => Err("usage: cargo xtask ci|doctor|bench\n\n  \
                  ci      run the README's test command, then (as root) the test binaries \
                  again as an unprivileged user, as .ci/run does\n  \
                  doctor  print what this host can sandbox, and how to fix what is missing\n  \
                  bench   measure per-test isolation cost against the floor and the anchors"
            .to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace's root directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn ci() -> Result<(), String> {
    let root = workspace_root();
    let uid = current_uid()?;
    // As root, build where the unprivileged user can read: a clone under /root is not.
    // `NSTEST_CI_TARGET` gives each checkout on one machine its own (worktrees side by side
    // would otherwise overwrite each other's test binaries mid-run).
    let target = (uid == 0).then(|| {
        std::env::var_os("NSTEST_CI_TARGET")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/nstest-ci/target"))
    });

    banner(&format!("pass 1: cargo test --workspace (uid {uid})"));
    let mut test = cargo(&root, target.as_deref());
    test.args(["test", "--workspace"]);
    run(&mut test)?;

    let Some(target) = target else {
        banner("pass 2 skipped: pass 1 already ran as an unprivileged user");
        return Ok(());
    };
    banner(&format!(
        "pass 2: the test binaries again as the unprivileged user {CI_USER}"
    ));
    ensure_user()?;
    let binaries = test_binaries(&root, &target)?;
    make_traversable(&target)?;
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, path) in &binaries {
        if NEEDS_TOOLCHAIN.contains(&name.as_str()) {
            println!("skipping {name}: it needs the toolchain, which only pass 1 has");
            continue;
        }
        ran += 1;
        println!("\n$ setpriv --reuid={CI_USER} {}", path.display());
        let status = Command::new("setpriv")
            .args([
                &format!("--reuid={CI_USER}"),
                &format!("--regid={CI_USER}"),
                "--init-groups",
                "env",
                "-i",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                &format!("HOME=/home/{CI_USER}"),
                "RUST_BACKTRACE=1",
            ])
            .arg(path)
            .current_dir(target.parent().unwrap_or(&target))
            .status()
            .map_err(|e| format!("setpriv: {e} (is util-linux installed?)"))?;
        if !status.success() {
            failed.push(name.clone());
        }
    }
    if failed.is_empty() {
        banner(&format!(
            "pass 2: all {} test binaries passed as {CI_USER}",
            ran
        ));
        Ok(())
    } else {
        Err(format!("pass 2 failed as {CI_USER}: {}", failed.join(", ")))
    }
}

fn cargo(root: &Path, target: Option<&Path>) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root);
    if let Some(target) = target {
        command.env("CARGO_TARGET_DIR", target);
    }
    command
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("{command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {status}"))
    }
}

fn banner(text: &str) {
    println!("\n==== {text}");
}

fn current_uid() -> Result<u32, String> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("id -u: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("id -u: {e}"))
}

fn ensure_user() -> Result<(), String> {
    let exists = Command::new("id")
        .arg(CI_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        run(Command::new("useradd").args(["--create-home", "--shell", "/bin/sh", CI_USER]))?;
    }
    Ok(())
}

/// Builds the workspace's test binaries into `target`.
fn test_binaries(root: &Path, target: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut command = cargo(root, Some(target));
    command.args(["test", "--workspace", "--no-run"]);
    built_test_binaries(&mut command)
}

/// Runs a `cargo test --no-run` command with `--message-format=json` and returns
/// `(target name, executable)` for each test binary, from cargo's JSON messages.
pub(crate) fn built_test_binaries(command: &mut Command) -> Result<Vec<(String, PathBuf)>, String> {
    let out = command
        .arg("--message-format=json")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{command:?} failed"));
    }
    let mut binaries = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_test = message["profile"]["test"].as_bool() == Some(true);
        if let (true, Some(exe), Some(name)) = (
            is_test,
            message["executable"].as_str(),
            message["target"]["name"].as_str(),
        ) {
            binaries.push((name.to_owned(), PathBuf::from(exe)));
        }
    }
    if binaries.is_empty() {
        return Err("cargo reported no test binaries".into());
    }
    Ok(binaries)
}

/// Lets other users reach the target directory: every ancestor needs `o+x`.
fn make_traversable(target: &Path) -> Result<(), String> {
    run(Command::new("chmod").args(["-R", "o+rX"]).arg(target))?;
    let mut dir = target.parent();
    while let Some(d) = dir.filter(|d| *d != Path::new("/")) {
        run(Command::new("chmod").arg("o+x").arg(d))?;
        dir = d.parent();
    }
    Ok(())
}
