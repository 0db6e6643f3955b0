//! An async axum service tested with `async fn` tests: nstest builds a tokio runtime
//! inside each sandbox (the `tokio` feature), so the service binds port 80 in its own
//! network namespace and a real client (reqwest) queries it, with no runtime boilerplate.

use nstest::ns_test;
use nstest_examples::hits;

/// Serves the hit counter on 127.0.0.1:80 in the background.
async fn serve_on_port_80() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:80")
        .await
        .expect("bind :80");
    tokio::spawn(async move { axum::serve(listener, hits::router()).await });
}

#[ns_test(net)]
async fn counts_hits_on_port_80() {
    serve_on_port_80().await;
    let client = reqwest::Client::new();
    for expected in 1..=3 {
        let body = client.post("http://127.0.0.1/hits").send().await.unwrap();
        assert_eq!(body.text().await.unwrap(), expected.to_string());
    }
    let count = client.get("http://127.0.0.1/hits").send().await.unwrap();
    assert_eq!(count.text().await.unwrap(), "3");
}

#[ns_test(net, flavor = "multi_thread", worker_threads = 2)]
async fn serves_concurrent_clients_on_a_multi_thread_runtime() {
    serve_on_port_80().await;
    let client = reqwest::Client::new();
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.post("http://127.0.0.1/hits").send().await })
        })
        .collect();
    for request in requests {
        assert!(request.await.unwrap().unwrap().status().is_success());
    }
    let count = client.get("http://127.0.0.1/hits").send().await.unwrap();
    assert_eq!(count.text().await.unwrap(), "20");
}

#[ns_test(net)]
async fn may_return_a_result() -> Result<(), reqwest::Error> {
    serve_on_port_80().await;
    let response = reqwest::get("http://127.0.0.1/nowhere").await?;
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    Ok(())
}

nstest::main!();
