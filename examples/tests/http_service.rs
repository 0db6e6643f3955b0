//! The status service on port 80, queried by a real HTTP client. Every test binds the same
//! port at the same time: each has its own network namespace, so none of them collide,
//! and none needs root.

use std::time::Duration;

use nstest::ns_test;
use nstest_examples::status::StatusService;

fn get(path: &str) -> (u16, String) {
    let mut response = ureq::get(&format!("http://127.0.0.1{path}"))
        .config()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .call()
        .expect("request to the status service");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

#[ns_test(net)]
fn health_answers_ok_on_port_80() {
    let service = StatusService::start("127.0.0.1:80").expect("bind :80");
    assert_eq!(service.port(), 80);
    assert_eq!(get("/health"), (200, "ok".into()));
}

#[ns_test(net)]
fn unknown_paths_are_404() {
    let _service = StatusService::start("127.0.0.1:80").expect("bind :80");
    assert_eq!(get("/nope"), (404, "not found".into()));
}

#[ns_test(net)]
fn a_second_service_on_the_same_port_is_refused() {
    let _first = StatusService::start("127.0.0.1:80").expect("bind :80");
    // In a shared network namespace this is what parallel tests would run into.
    assert!(StatusService::start("127.0.0.1:80").is_err());
}

#[ns_test(net, hostname = "status-7")]
fn whoami_reports_the_hostname() {
    let _service = StatusService::start("127.0.0.1:80").expect("bind :80");
    assert_eq!(get("/whoami"), (200, "status-7".into()));
}

#[ns_test(net, boottime = "+10d")]
fn uptime_reports_clock_boottime() {
    let _service = StatusService::start("127.0.0.1:80").expect("bind :80");
    let (status, body) = get("/uptime");
    assert_eq!(status, 200);
    let secs: u64 = body.parse().unwrap();
    assert!(
        secs >= 10 * 86_400,
        "uptime {secs}s, expected at least 10 days"
    );
}

#[ns_test(net)]
fn ten_concurrent_clients_are_served() {
    let _service = StatusService::start("127.0.0.1:80").expect("bind :80");
    let clients: Vec<_> = (0..10)
        .map(|_| std::thread::spawn(|| get("/health")))
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap(), (200, "ok".into()));
    }
}

nstest::main!();
