//! A program a test spawns: instrumented like the test binary, it writes its own profile
//! when it exits.
fn main() {
    coverage_fixture::in_a_spawned_program();
}
