//! Reading the clocks in nstest tests, without and with a wall clock of their own (`wall`).
use nstest::ns_test;

#[ns_test(user)]
fn without_wall() {
    nstest_bench_fixture::print_clock_read_ns("without_wall");
}

#[ns_test(user, wall = "+1d")]
fn with_wall() {
    nstest_bench_fixture::print_clock_read_ns("with_wall");
}

nstest::main!();
