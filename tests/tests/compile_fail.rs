//! Every diagnostic of `#[ns_test]`, with the exact message and position the compiler
//! shows (checked in as `.stderr` next to each case), and every accepted form compiling.
//! These run the compiler, so they need cargo and the registry: `.ci/run` runs them in the
//! root pass only.

#[test]
fn bad_input_is_a_compile_error_at_the_offending_token() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    t.pass("ui-pass/*.rs");
}
