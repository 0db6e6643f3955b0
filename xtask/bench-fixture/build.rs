//! Generates the trivial tests: writing 1,000 functions by hand would bury the point.

use std::fmt::Write;

/// Trivial tests per mode; the scale run has ten times as many.
const N: usize = 1000;

fn tests(attribute: &str, count: usize) -> String {
    let mut out = String::new();
    for i in 0..count {
        writeln!(out, "{attribute}\nfn t{i:05}() {{}}").unwrap();
    }
    out
}

fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    let write = |name: &str, text: String| std::fs::write(format!("{out}/{name}.rs"), text).unwrap();
    write("user", tests("#[ns_test(user)]", N));
    write("net", tests("#[ns_test(net)]", N));
    write("full", tests("#[ns_test]", N));
    write("full_time", tests("#[ns_test(time = \"+1h\")]", N));
    write(
        "full_limits",
        tests(
            "#[ns_test(pids = 64, memory = \"64M\", disk = \"8M\", cpu = \"10s\")]",
            N,
        ),
    );
    write("full_wall", tests("#[ns_test(wall = \"+1d\")]", N));
    write("scale", tests("#[ns_test(user)]", 10 * N));
    write("plain", tests("#[test]", N));
    let mut floor = String::new();
    for i in 0..N {
        writeln!(floor, "#[test]\nfn t{i:05}() {{ nstest_bench_fixture::net_sandbox() }}").unwrap();
    }
    write("nextest_floor", floor);
    let mut forked = String::from("rusty_fork_test! {\n");
    forked.push_str(&tests("#[test]", N));
    forked.push_str("}\n");
    write("forked", forked);
    println!("cargo:rerun-if-changed=build.rs");
}
