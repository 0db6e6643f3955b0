//! An HTTP status service: `GET /health`, `GET /whoami` (the hostname) and `GET /uptime`
//! (seconds since boot). Real deployments put it on port 80, which is what its tests bind.

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Response, Server};

use crate::clock;

/// A running status service.
pub struct StatusService {
    server: Arc<Server>,
    worker: Option<JoinHandle<()>>,
}

impl StatusService {
    /// Binds `addr` and serves requests on a background thread until dropped.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound (in use, or a port below 1024 without privilege).
    pub fn start(addr: impl ToSocketAddrs) -> std::io::Result<StatusService> {
        let server = Arc::new(Server::http(addr).map_err(std::io::Error::other)?);
        let serving = Arc::clone(&server);
        let worker = std::thread::spawn(move || {
            for request in serving.incoming_requests() {
                let (code, body) = route(request.url());
                let _ = request.respond(Response::from_string(body).with_status_code(code));
            }
        });
        Ok(StatusService {
            server,
            worker: Some(worker),
        })
    }

    /// The address the service listens on.
    pub fn port(&self) -> u16 {
        self.server
            .server_addr()
            .to_ip()
            .map_or(0, |addr| addr.port())
    }
}

impl Drop for StatusService {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn route(path: &str) -> (u16, String) {
    match path {
        "/health" => (200, "ok".into()),
        "/whoami" => match nix::unistd::gethostname() {
            Ok(name) => (200, name.to_string_lossy().into_owned()),
            Err(e) => (500, e.to_string()),
        },
        "/uptime" => (200, clock::uptime().as_secs().to_string()),
        _ => (404, "not found".into()),
    }
}
