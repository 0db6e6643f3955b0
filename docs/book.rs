//! The pages of the nstest book (`docs/src`), as documentation: rustdoc compiles and runs
//! their Rust. An example that is a test target ends with `nstest::main!();` as a user's
//! does; a hidden `fn main` runs it, since rustdoc looks for `main` before expanding macros.
#![doc = include_str!("src/introduction.md")]
// Getting started shows `examples/src/listener.rs` as it is, `#[test]` beside the
// `#[ns_test]`s; its tests run in nstest-examples, and rustdoc only compiles it here.
#![allow(clippy::test_attr_in_doctest)]

macro_rules! pages {
    ($($module:ident = $file:literal,)*) => {
        $(
            #[doc = include_str!($file)]
            pub mod $module {}
        )*
    };
}

pages! {
    getting_started = "src/getting-started.md",
    options = "src/options.md",
    files = "src/files.md",
    networks = "src/networks.md",
    ci_and_coverage = "src/ci-and-coverage.md",
    output = "src/output.md",
    performance = "src/performance.md",
    how_it_works = "src/how-it-works.md",
    architecture = "src/architecture.md",
    troubleshooting = "src/troubleshooting.md",
    limitations = "src/limitations.md",
    migrating = "src/migrating.md",
}
