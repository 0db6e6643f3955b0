//! Reading the clocks in a plain `#[test]` of a binary that does not link nstest: the C
//! library's own clock functions, the baseline of `clock_nstest`.
#[test]
fn plain() {
    nstest_bench_fixture::print_clock_read_ns("plain");
}
