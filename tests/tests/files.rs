//! Hermetic files, as a user meets them: `fixture_files` is copied under `/tmp` with a
//! data file beside it and run from there (as CI runs test binaries from its target
//! directory under `/tmp`), and then the host is checked: nothing any test wrote outside
//! its `writable` paths is there, and what it wrote to them is.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::run_in;

const BIN: &str = env!("CARGO_BIN_EXE_fixture_files");
const PACKAGE: &str = env!("CARGO_MANIFEST_DIR");

/// Entries of `dir` whose name contains `marker`.
fn marked(dir: &Path, marker: &str) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().contains(marker))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Creates `path` as a directory anyone may write to, as a shared cache would be.
fn shared_dir(path: &str) {
    fs::create_dir_all(path).unwrap();
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o1777));
}

#[test]
fn only_scratch_and_writable_paths_change_and_the_host_is_left_as_it_was() {
    let marker = format!("nstest-files-{}", std::process::id());
    let home = PathBuf::from(std::env::var("HOME").expect("HOME"));

    // A suite under /tmp: the binary in bin/, a data file beside, run from there.
    let suite = PathBuf::from(format!("/tmp/{marker}"));
    fs::create_dir_all(suite.join("bin")).unwrap();
    let binary = suite.join("bin/fixture_files");
    fs::copy(BIN, &binary).unwrap();
    fs::write(suite.join("nstest-files-data.txt"), &marker).unwrap();

    // The writable paths must exist before the run.
    shared_dir("/tmp/nstest-files-writable");
    let file = "/var/tmp/nstest-files-writable.txt";
    if fs::metadata(file).is_err() {
        fs::write(file, "").unwrap();
        let _ = fs::set_permissions(file, fs::Permissions::from_mode(0o666));
    }
    let relative = Path::new(PACKAGE).join("nstest-files-writable");
    // Unprivileged, in a checkout owned by root (CI's second pass), the package root is
    // not ours to write, with or without a sandbox: that case is left to the first pass.
    let relative_ok =
        fs::create_dir_all(&relative).is_ok() && fs::write(relative.join(".probe"), "").is_ok();
    let mut args = vec!["--test-threads", "2"];
    if !relative_ok {
        println!("skipping writable_relative_path_is_the_package_roots: {PACKAGE} is not writable");
        args.extend(["--skip", "writable_relative_path_is_the_package_roots"]);
    }

    let mut command_env = vec![
        ("NSTEST_MARKER", marker.clone()),
        ("HOST_CWD", suite.to_str().unwrap().to_owned()),
        (
            "HOST_CGROUP",
            fs::read_to_string("/proc/self/cgroup").unwrap(),
        ),
        ("RUST_BACKTRACE", "1".to_owned()),
    ];
    command_env.push(("NSTEST_KEPT", binary.to_str().unwrap().to_owned()));
    let r = run_in(Some(&suite), binary.to_str().unwrap(), &args, &command_env);

    let outcomes = r.outcomes();
    for (name, outcome) in &outcomes {
        let expected = match name.as_str() {
            "writable_missing_path" | "panics_with_a_backtrace" => "FAILED",
            _ => "ok",
        };
        assert_eq!(outcome, expected, "{name}\n{}", r.dump());
    }
    assert_eq!(
        outcomes.len(),
        if relative_ok { 16 } else { 15 },
        "{}",
        r.dump()
    );

    // A missing `writable` path fails the test before it runs, naming the path.
    let missing = r.failure("writable_missing_path");
    assert!(
        missing.contains("\"/nonexistent/nstest-missing-writable\"")
            && missing.contains("does not exist"),
        "{missing}"
    );
    assert!(!missing.contains("unreachable"), "{missing}");
    // The binary under /tmp reads itself: the backtrace has symbol names.
    let backtrace = r.failure("panics_with_a_backtrace");
    let frames = backtrace
        .split_once("stack backtrace:")
        .unwrap_or_else(|| panic!("no backtrace in:\n{backtrace}"))
        .1;
    // The frames are named as libtest names them: the test's own function, called from
    // a closure, although `#[ns_test]` emits the function under another name.
    for frame in [
        ": fixture_files::panics_with_a_backtrace\n",
        ": fixture_files::panics_with_a_backtrace::{{closure}}\n",
    ] {
        assert!(frames.contains(frame), "{frame:?} missing:\n{backtrace}");
    }
    assert!(!frames.contains("__nstest"), "{backtrace}");

    // What the writable tests wrote is on the host.
    let written = format!("/tmp/nstest-files-writable/{marker}");
    assert_eq!(fs::read_to_string(&written).unwrap(), "from the sandbox");
    assert_eq!(fs::read_to_string(file).unwrap(), marker);
    if relative_ok {
        assert_eq!(
            fs::read_to_string(relative.join(&marker)).unwrap(),
            "from the sandbox"
        );
    }
    // So is what tests without `mount` wrote.
    for suffix in ["-net", "-cgroup"] {
        let through = home.join(format!("{marker}{suffix}"));
        assert_eq!(fs::read_to_string(&through).unwrap(), "written through");
        fs::remove_file(through).unwrap();
    }
    // Nothing else: not where the writes were refused, nor in the scratch directories.
    for dir in [
        suite.as_path(),
        &home,
        Path::new(PACKAGE),
        Path::new("/etc"),
        Path::new("/"),
        Path::new("/tmp"),
        Path::new("/var/tmp"),
        Path::new("/dev/shm"),
        Path::new("/mnt"),
    ] {
        let left: Vec<PathBuf> = marked(dir, &marker)
            .into_iter()
            .filter(|p| *p != suite)
            .collect();
        assert!(left.is_empty(), "left on the host: {left:?}");
    }
    assert_eq!(
        fs::read_dir(&suite).unwrap().count(),
        2,
        "the suite's directory changed"
    );

    let _ = fs::remove_file(written);
    if relative_ok {
        let _ = fs::remove_dir_all(&relative);
    }
    let _ = fs::remove_dir_all(&suite);
}
