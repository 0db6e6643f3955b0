//! A failing chaos test names its seed and the replay line under libtest's own harness
//! (every format) and under cargo-nextest, with `tests/libtest-fixture` and
//! `tests/nextest-fixture` built with their `chaos` feature.
//!
//! These run cargo, so `cargo xtask ci` runs them in the root pass only (`NEEDS_TOOLCHAIN`).

mod support;

use std::path::Path;

use support::{Run, run};

const LINE: &str = "chaos seed 424242: replay with NSTEST_SEED=424242 cargo test -- --exact";

/// `cargo` with `args` on fixture `fixture`, built where the fixture's own end-to-end
/// tests build it (a target directory of its own, shared with them).
fn cargo(fixture: &str, args: &[&str]) -> Run {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("{fixture}/Cargo.toml"));
    let mut all = vec![args[0], "--manifest-path", manifest.to_str().unwrap()];
    all.extend_from_slice(&args[1..]);
    let envs = [
        (
            "CARGO_TARGET_DIR",
            format!("{}/{fixture}", env!("CARGO_TARGET_TMPDIR")),
        ),
        ("CARGO_TERM_COLOR", "never".to_owned()),
        ("RUSTC_BOOTSTRAP", "1".to_owned()),
    ];
    run(env!("CARGO"), &all, &envs)
}

#[test]
fn under_libtest_s_harness_every_format_names_the_seed() {
    let base = ["test", "--features", "chaos", "--test", "chaos", "--"];
    for format in [
        &[][..],
        &["--format", "terse"][..],
        &["-Z", "unstable-options", "--format", "json"][..],
        &["-Z", "unstable-options", "--format", "junit"][..],
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(format);
        let r = cargo("libtest-fixture", &args);
        assert_eq!(r.code, Some(101), "{format:?}: {}", r.dump());
        assert!(
            r.stdout
                .contains(&format!("{LINE} chaos_fails_under_libtest")),
            "{format:?}: {}",
            r.dump()
        );
    }
}

#[test]
fn under_nextest_the_failure_names_the_seed() {
    for fixture in ["libtest-fixture", "nextest-fixture"] {
        let r = cargo(
            fixture,
            &[
                "nextest",
                "run",
                "--features",
                "chaos",
                "--test",
                "chaos",
                "--no-fail-fast",
            ],
        );
        assert_eq!(r.code, Some(100), "{fixture}: {}", r.dump());
        let printed = format!("{}{}", r.stdout, r.stderr);
        assert!(printed.contains(LINE), "{fixture}: {}", r.dump());
    }
}
