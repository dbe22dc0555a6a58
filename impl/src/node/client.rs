//! A small blocking HTTP/1.1 client of the client API, with leader discovery
//! (follows 307 to the leader, rotates endpoints on 503 or connection errors)
//! and retries that keep the request's client id and sequence number, so a
//! retried write is applied at most once.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad HTTP response: {0}")]
    Protocol(String),
    #[error("gave up after {attempts} attempts over {elapsed:?}: {last}")]
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
}

/// One request with `Connection: close`.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, ClientError> {
    let sa = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| ClientError::Protocol(format!("{addr}: no address")))?;
    let mut s = TcpStream::connect_timeout(&sa, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut buf = req.into_bytes();
    buf.extend_from_slice(body);
    s.write_all(&buf)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> Result<Response, ClientError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ClientError::Protocol("no end of headers".into()))?;
    let head = std::str::from_utf8(&raw[..end])
        .map_err(|_| ClientError::Protocol("headers are not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| ClientError::Protocol(format!("status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if let Some(n) = len {
        body.truncate(n);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// What a key-value operation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200 with a value (reads).
    Value(String),
    /// 404.
    NotFound,
    /// 204.
    Done,
    /// 412: the cas precondition failed; the current value.
    CasFailed(Option<String>),
    /// 409: a stale request seq.
    Stale,
}

/// A client of a cluster.
pub struct Client {
    endpoints: Vec<String>,
    current: usize,
    /// The session id; every write gets the next `seq`.
    pub client_id: u64,
    seq: u64,
    /// Total time allowed per operation, retries included.
    pub deadline: Duration,
    pub request_timeout: Duration,
}

impl Client {
    pub fn new(endpoints: Vec<String>) -> Self {
        Client {
            endpoints,
            current: 0,
            client_id: rand::random::<u64>() >> 1,
            seq: 0,
            deadline: Duration::from_secs(15),
            request_timeout: Duration::from_secs(6),
        }
    }

    /// The endpoint requests currently go to (the leader, once found).
    pub fn endpoint(&self) -> &str {
        &self.endpoints[self.current]
    }

    fn enc(key: &str) -> String {
        let mut s = String::new();
        for b in key.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                s.push(b as char);
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
        s
    }

    pub fn get(&mut self, key: &str) -> Result<Outcome, ClientError> {
        self.call("GET", &format!("/v1/kv/{}", Self::enc(key)), b"", false)
    }

    pub fn put(&mut self, key: &str, value: &str) -> Result<Outcome, ClientError> {
        self.call(
            "PUT",
            &format!("/v1/kv/{}", Self::enc(key)),
            value.as_bytes(),
            true,
        )
    }

    pub fn delete(&mut self, key: &str) -> Result<Outcome, ClientError> {
        self.call("DELETE", &format!("/v1/kv/{}", Self::enc(key)), b"", true)
    }

    pub fn cas(&mut self, key: &str, from: Option<&str>, to: &str) -> Result<Outcome, ClientError> {
        let body = serde_json::json!({ "from": from, "to": to }).to_string();
        self.call(
            "POST",
            &format!("/v1/kv/{}/cas", Self::enc(key)),
            body.as_bytes(),
            true,
        )
    }

    fn rotate(&mut self) {
        self.current = (self.current + 1) % self.endpoints.len();
    }

    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        write: bool,
    ) -> Result<Outcome, ClientError> {
        let mut headers = Vec::new();
        if write {
            self.seq += 1;
            headers.push(("X-Client-Id", self.client_id.to_string()));
            headers.push(("X-Request-Seq", self.seq.to_string()));
        }
        let start = Instant::now();
        let mut attempts = 0;
        let mut last;
        loop {
            attempts += 1;
            let addr = self.endpoints[self.current].clone();
            match request(&addr, method, path, &headers, body, self.request_timeout) {
                Ok(r) => match r.status {
                    200 => return Ok(Outcome::Value(String::from_utf8_lossy(&r.body).into())),
                    204 => return Ok(Outcome::Done),
                    404 => return Ok(Outcome::NotFound),
                    409 => return Ok(Outcome::Stale),
                    412 => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&r.body).unwrap_or_default();
                        let cur = v.get("current").and_then(|c| c.as_str()).map(String::from);
                        return Ok(Outcome::CasFailed(cur));
                    }
                    307 => {
                        let loc = r.header("location").unwrap_or_default();
                        let host = loc
                            .strip_prefix("http://")
                            .and_then(|l| l.split('/').next())
                            .unwrap_or_default()
                            .to_string();
                        last = format!("{addr}: redirect to {loc}");
                        match self.endpoints.iter().position(|e| *e == host) {
                            Some(i) => self.current = i,
                            None if !host.is_empty() => {
                                self.endpoints.push(host);
                                self.current = self.endpoints.len() - 1;
                            }
                            None => self.rotate(),
                        }
                        if attempts % 4 != 0 {
                            continue;
                        }
                    }
                    s => {
                        last = format!(
                            "{addr}: HTTP {s}: {}",
                            String::from_utf8_lossy(&r.body).trim()
                        );
                        if s == 400 {
                            return Err(ClientError::Protocol(last));
                        }
                        self.rotate();
                    }
                },
                Err(e) => {
                    last = format!("{addr}: {e}");
                    self.rotate();
                }
            }
            if start.elapsed() > self.deadline {
                return Err(ClientError::GaveUp {
                    attempts,
                    elapsed: start.elapsed(),
                    last,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response() {
        let r = parse(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://a:1/v1/kv/x\r\ncontent-length: 2\r\n\r\nokxx").unwrap();
        assert_eq!(r.status, 307);
        assert_eq!(r.header("location"), Some("http://a:1/v1/kv/x"));
        assert_eq!(r.body, b"ok");
        assert!(parse(b"garbage").is_err());
        assert_eq!(Client::enc("a b/c"), "a%20b%2Fc");
    }
}
