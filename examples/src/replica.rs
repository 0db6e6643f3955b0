//! A replicated key-value lookup: a primary and a backup that both answer `GET key` over
//! TCP, and a client that asks the primary first and fails over to the backup when the
//! primary does not answer in time. Every request starts with the primary again, so the
//! client returns to it as soon as it is reachable.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// A replica: serves `GET key` lines with `<name> <value>` (or `<name> -` when the key is
/// unknown), one connection per thread, until the listener is closed.
pub fn serve(listener: TcpListener, name: &str, data: BTreeMap<String, String>) {
    let (name, data) = (Arc::new(name.to_owned()), Arc::new(data));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (name, data) = (name.clone(), data.clone());
        std::thread::spawn(move || {
            let mut writer = stream.try_clone()?;
            for line in BufReader::new(stream).lines() {
                let line = line?;
                let key = line.strip_prefix("GET ").unwrap_or("");
                let value = data.get(key).map_or("-", String::as_str);
                writeln!(writer, "{name} {value}")?;
            }
            io::Result::Ok(())
        });
    }
}

/// Which replica answered, and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The replica's name, as it gave it to [`serve`].
    pub from: String,
    /// The value, `None` when the key is unknown.
    pub value: Option<String>,
}

/// The client: replicas in order of preference, each given `timeout` to connect and to
/// answer.
#[derive(Debug, Clone)]
pub struct Client {
    replicas: Vec<String>,
    timeout: Duration,
}

impl Client {
    /// A client of `replicas` (`host:port`, the first preferred).
    pub fn new(replicas: &[&str], timeout: Duration) -> Client {
        Client {
            replicas: replicas.iter().map(|r| (*r).to_owned()).collect(),
            timeout,
        }
    }

    /// Looks `key` up at the first replica that answers in time.
    ///
    /// # Errors
    ///
    /// The last replica's error when none answered.
    pub fn get(&self, key: &str) -> io::Result<Answer> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no replicas");
        for replica in &self.replicas {
            match self.ask(replica, key) {
                Ok(answer) => return Ok(answer),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn ask(&self, replica: &str, key: &str) -> io::Result<Answer> {
        let addr = replica
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, replica.to_owned()))?;
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        writeln!(stream, "GET {key}")?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        let (from, value) = line
            .trim_end()
            .split_once(' ')
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, line.clone()))?;
        Ok(Answer {
            from: from.to_owned(),
            value: (value != "-").then(|| value.to_owned()),
        })
    }
}
