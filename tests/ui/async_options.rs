use nstest::ns_test;

#[ns_test(flavor = "multi_thread")]
fn not_async() {}

#[ns_test(worker_threads = 2)]
async fn current_thread_with_workers() {}

#[ns_test(flavor = "many_threads")]
async fn bad_flavor() {}

#[ns_test(flavor = "multi_thread", worker_threads = 0)]
async fn zero_workers() {}

#[ns_test(worker_threads = 2)]
fn not_async_with_workers() {}

#[ns_test(flavor = "multi_thread", worker_threads)]
async fn workers_without_a_value() {}

#[ns_test(flavor = "multi_thread", worker_threads = "2")]
async fn workers_as_a_string() {}

nstest::main!();
