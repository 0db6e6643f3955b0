//! Builds the wall-clock shim (`shim/wall.c`), the `LD_PRELOAD` library through which the
//! programs a test starts see the test's wall clock (see `sandbox::wall`). The library is
//! embedded in the harness (`include_bytes!`) and written out by a test that needs it, so
//! a test binary carries it wherever it goes.
//!
//! It is compiled with the C compiler that Rust itself needs as its linker on Linux: the
//! target's (`CC_<target>`, `TARGET_CC`), else `CC`, else `cc`. Where there is none, or it
//! fails, the build goes on with an empty shim and a warning; a test that would need the
//! shim then fails its setup saying so.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=shim/wall.c");
    println!("cargo::rerun-if-changed=build.rs");
    for var in ["CC", "TARGET_CC", "CFLAGS"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let shim = out.join("libnstest_wall.so");
    let target = std::env::var("TARGET").unwrap_or_default();
    // The wall clock needs the GNU C library, dynamically linked, on a 64-bit target (see
    // `sys::clock`): `cfg(nstest_wall)` says so to the crate.
    println!("cargo::rustc-check-cfg=cfg(nstest_wall)");
    let wall = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
        && std::env::var("CARGO_CFG_TARGET_POINTER_WIDTH").as_deref() == Ok("64");
    if wall {
        println!("cargo::rustc-cfg=nstest_wall");
        let target_var = format!("CC_{}", target.replace('-', "_"));
        println!("cargo::rerun-if-env-changed={target_var}");
        let compiler = [target_var.as_str(), "TARGET_CC", "CC"]
            .iter()
            .find_map(|var| std::env::var(var).ok().filter(|cc| !cc.trim().is_empty()))
            .unwrap_or_else(|| "cc".to_owned());
        // `CC` may carry arguments (`ccache cc`, `cc -m64`).
        let mut words = compiler.split_whitespace();
        let program = words.next().unwrap_or("cc");
        let status = Command::new(program)
            .args(words)
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
            .arg(&shim)
            .arg("shim/wall.c")
            .arg("-ldl")
            .status();
        match status {
            Ok(status) if status.success() => return,
            Ok(status) => println!(
                "cargo::warning=nstest: `{compiler}` failed ({status}) building the wall-clock \
                 shim; programs started by tests with `wall` will read the true clock"
            ),
            Err(error) => println!(
                "cargo::warning=nstest: no C compiler (`{compiler}`: {error}) for the wall-clock \
                 shim; programs started by tests with `wall` will read the true clock"
            ),
        }
    }
    std::fs::write(&shim, b"").expect("write an empty shim into OUT_DIR");
}
