//! An async HTTP service on axum: `POST /hits` counts a hit, `GET /hits` returns the count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;

/// The service's routes, with a fresh counter.
pub fn router() -> Router {
    let hits = Arc::new(AtomicU64::new(0));
    Router::new()
        .route("/hits", get(count).post(hit))
        .with_state(hits)
}

async fn hit(State(hits): State<Arc<AtomicU64>>) -> String {
    (hits.fetch_add(1, Ordering::SeqCst) + 1).to_string()
}

async fn count(State(hits): State<Arc<AtomicU64>>) -> String {
    hits.load(Ordering::SeqCst).to_string()
}
