//! The README promises that its usage examples are `examples/src/listener.rs` and
//! `examples/tests/readme.rs`; keep them so.

#[test]
fn the_readme_example_is_the_tested_file() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("```rust\n// tests/service.rs\n")
        .expect("usage example")
        + 8;
    let example = &readme[start..];
    let example = &example[..example.find("```").expect("end of example")];
    let example = example.strip_prefix("// tests/service.rs\n").unwrap();
    let tested = include_str!("../../examples/tests/readme.rs");
    let tested = &tested[tested.find("use nstest::ns_test;").unwrap()..];
    assert_eq!(example, tested);
}

#[test]
fn the_readme_unit_test_example_is_the_tested_file() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("```rust\n// src/lib.rs\n")
        .expect("unit-test example")
        + "```rust\n// src/lib.rs\n".len();
    let example = &readme[start..];
    let example = &example[..example.find("```").expect("end of example")];
    assert_eq!(example, include_str!("../../examples/src/listener.rs"));
}
