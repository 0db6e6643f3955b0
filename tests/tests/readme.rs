//! The README promises that its usage example is `examples/tests/readme.rs`; keep it so.

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
