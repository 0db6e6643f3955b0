//! Running `async fn` tests: a tokio runtime built inside the sandbox, per test, as
//! `#[tokio::test]` builds one per test. Behind the `tokio` feature.
//!
//! Layer 1 of docs/src/architecture.md: depends on nothing in the crate.
//! Runs in: the test process, around the test function.

use std::future::Future;

/// The runtime an async test asked for, as `#[tokio::test]` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `flavor = "current_thread"` (the default): everything on the test's thread.
    CurrentThread,
    /// `flavor = "multi_thread"`, with `worker_threads` (tokio's default: one per core).
    MultiThread {
        /// `worker_threads = N`.
        worker_threads: Option<usize>,
    },
}

/// Marks that the `tokio` feature is on; without it, an `async fn` test fails to compile
/// with the message below, at the test.
#[diagnostic::on_unimplemented(
    message = "async #[ns_test] functions need nstest's `tokio` feature",
    label = "this async test needs a runtime",
    note = "enable it in Cargo.toml: nstest = {{ version = \"...\", features = [\"tokio\"] }}"
)]
pub trait TokioFeature {}

#[cfg(feature = "tokio")]
impl<F> TokioFeature for F {}

/// Builds the runtime `flavor` asks for and runs `future` on it to completion.
///
/// # Panics
///
/// When the runtime cannot be built (the test fails with the reason).
#[cfg(feature = "tokio")]
pub fn block_on<F: Future + TokioFeature>(flavor: Flavor, future: F) -> F::Output {
    let mut builder = match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread { worker_threads } => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = worker_threads {
                builder.worker_threads(n);
            }
            builder
        }
    };
    builder
        .enable_all()
        .build()
        .expect("nstest: building the tokio runtime for this async test")
        .block_on(future)
}

/// Without the `tokio` feature: never callable, because no type implements
/// `TokioFeature`; the compiler says which feature to enable.
#[cfg(not(feature = "tokio"))]
pub fn block_on<F: Future + TokioFeature>(_flavor: Flavor, _future: F) -> F::Output {
    unreachable!("TokioFeature has no implementation without the `tokio` feature")
}
