//! A small blocking HTTP/1.1 client of the client API, with leader discovery
//! (follows 307 to the leader, rotates endpoints on 503 or connection errors)
//! and retries that keep the request's client id and sequence number, so a
//! retried write is applied at most once.
//!
//! Requests go over one keep-alive connection (see [`super::http_client`]),
//! kept while the endpoint stays the same. A request that fails on a reused
//! connection (the server may have closed it while idle) is sent again at
//! once on a new connection to the same endpoint before the endpoint counts
//! as failed; that is safe because reads are idempotent and a write keeps its
//! client id and seq.

use std::time::{Duration, Instant};

use super::http_client::{Conn, HttpError, Options};

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("bad HTTP response: {0}")]
    Protocol(String),
    #[error("gave up after {attempts} attempts over {elapsed:?}: {last}")]
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
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
    /// 202: an admin request was accepted; the response body.
    Accepted(String),
    /// 409 (or 404 for a membership change naming a non-member) with a
    /// JSON `{"error"}`: an admin request was refused; the error.
    Refused(String),
}

/// What an operation has tried so far while no node answers it (passed to
/// [`Client::on_retry`]).
pub struct Retrying<'a> {
    /// The endpoints the client rotates over.
    pub endpoints: &'a [String],
    /// Requests sent so far for this operation.
    pub attempts: u32,
    pub elapsed: Duration,
    /// When the client gives up ([`Client::deadline`]).
    pub deadline: Duration,
    /// The last failure: the endpoint and what went wrong.
    pub last: &'a str,
}

/// A hook told of an operation that keeps failing ([`Client::on_retry`]).
pub type OnRetry = Box<dyn FnMut(&Retrying) + Send>;

/// How often [`Client::on_retry`] hears of an operation still retrying.
pub const RETRY_REPORT_EVERY: Duration = Duration::from_secs(3);

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
    /// The keep-alive connection, to some endpoint.
    conn: Option<Conn>,
    /// Called when an attempt of an operation failed and the client will
    /// retry: after the first failure, then every [`RETRY_REPORT_EVERY`].
    pub on_retry: Option<OnRetry>,
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
            conn: None,
            on_retry: None,
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

    /// Asks the cluster to hand leadership to node `to` (leader transfer).
    pub fn transfer(&mut self, to: u64) -> Result<Outcome, ClientError> {
        self.call("POST", &format!("/v1/admin/transfer?to={to}"), b"", false)
    }

    /// The configuration, as the leader has it: [`Outcome::Value`] with
    /// the JSON of `GET /v1/admin/members`.
    pub fn members(&mut self) -> Result<Outcome, ClientError> {
        self.call("GET", "/v1/admin/members", b"", false)
    }

    /// Adds node `id` (a voter, or a learner), reached at `peer_addr`
    /// (Raft) and `client_addr` (client API): [`Outcome::Value`] with the
    /// new configuration once the change is applied on the leader, or
    /// [`Outcome::Refused`]. A leader not ready yet is asked again until
    /// [`Client::deadline`].
    pub fn add_member(
        &mut self,
        id: u64,
        peer_addr: &str,
        client_addr: &str,
        learner: bool,
    ) -> Result<Outcome, ClientError> {
        let body = serde_json::json!({
            "id": id,
            "peer_addr": peer_addr,
            "client_addr": client_addr,
            "learner": learner,
        })
        .to_string();
        self.admin("POST", "/v1/admin/members", body.as_bytes())
    }

    /// Promotes learner `id` to voter (see [`Client::add_member`]).
    pub fn promote_member(&mut self, id: u64) -> Result<Outcome, ClientError> {
        self.admin("POST", &format!("/v1/admin/members/{id}/promote"), b"")
    }

    /// Removes member `id` (see [`Client::add_member`]).
    pub fn remove_member(&mut self, id: u64) -> Result<Outcome, ClientError> {
        self.admin("DELETE", &format!("/v1/admin/members/{id}"), b"")
    }

    /// A membership change: retried while the leader answers that it is
    /// not ready for one (409 `not_ready` or `transferring`).
    fn admin(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Outcome, ClientError> {
        self.call_with(method, path, body, false, &["not_ready", "transferring"])
    }
    fn rotate(&mut self) {
        self.current = (self.current + 1) % self.endpoints.len();
    }

    /// One request to `addr` over the kept connection (a new one if it goes
    /// elsewhere or was closed); also whether it was sent on a connection
    /// that had served an earlier response.
    fn send(
        &mut self,
        addr: &str,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (Result<super::http_client::Response, HttpError>, bool) {
        let conn = match self.conn.take() {
            Some(c) if c.addr() == addr => c,
            _ => match Conn::open_with(addr, Options::with_timeout(self.request_timeout)) {
                Ok(c) => c,
                Err(e) => return (Err(e), false),
            },
        };
        let conn = self.conn.insert(conn);
        let r = conn.request(method, path, headers, body);
        (r, conn.reused())
    }

    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        write: bool,
    ) -> Result<Outcome, ClientError> {
        self.call_with(method, path, body, write, &[])
    }

    /// [`Client::call`], retrying a refusal (409 or 404 with a JSON
    /// `{"error", "code"}`) whose code is in `retry`.
    fn call_with(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        write: bool,
        retry: &[&str],
    ) -> Result<Outcome, ClientError> {
        let mut headers = Vec::new();
        if write {
            self.seq += 1;
            headers.push(("X-Client-Id", self.client_id.to_string()));
            headers.push(("X-Request-Seq", self.seq.to_string()));
        }
        let start = Instant::now();
        let mut attempts = 0;
        let mut stale_retried = false;
        let mut next_report = Duration::ZERO;
        let mut last;
        loop {
            attempts += 1;
            let addr = self.endpoints[self.current].clone();
            let (result, reused) = self.send(&addr, method, path, &headers, body);
            match result {
                Ok(r) => match r.status {
                    200 => return Ok(Outcome::Value(String::from_utf8_lossy(&r.body).into())),
                    204 => return Ok(Outcome::Done),
                    202 => return Ok(Outcome::Accepted(String::from_utf8_lossy(&r.body).into())),
                    404 | 409 => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&r.body).unwrap_or_default();
                        let code = v.get("code").and_then(|c| c.as_str()).unwrap_or_default();
                        match v.get("error").and_then(|e| e.as_str()) {
                            Some(e) if retry.contains(&code) => {
                                last = format!("{addr}: HTTP {}: {e}", r.status);
                            }
                            Some(e) => return Ok(Outcome::Refused(e.to_string())),
                            None if r.status == 404 => return Ok(Outcome::NotFound),
                            None => return Ok(Outcome::Stale),
                        }
                    }
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
                    last = match &e {
                        HttpError::Connect { .. } => e.to_string(),
                        e => format!("{addr}: {e}"),
                    };
                    // A kept connection the server closed: once more on a new one.
                    if reused && !stale_retried && !matches!(e, HttpError::Timeout(_)) {
                        stale_retried = true;
                        continue;
                    }
                    self.rotate();
                }
            }
            let elapsed = start.elapsed();
            if elapsed > self.deadline {
                return Err(ClientError::GaveUp {
                    attempts,
                    elapsed,
                    last,
                });
            }
            if let Some(report) = self.on_retry.as_mut().filter(|_| elapsed >= next_report) {
                report(&Retrying {
                    endpoints: &self.endpoints,
                    attempts,
                    elapsed,
                    deadline: self.deadline,
                    last: &last,
                });
                next_report = elapsed + RETRY_REPORT_EVERY;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A server that answers each request (method and path) with
    /// `respond`'s raw response; `close_after` requests per connection, then
    /// it closes the connection without saying so. Returns its address and
    /// the number of connections it accepted.
    fn server(
        close_after: usize,
        respond: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> (String, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (n, respond) = (accepted.clone(), Arc::new(respond));
        std::thread::spawn(move || {
            for s in l.incoming() {
                n.fetch_add(1, Ordering::SeqCst);
                let respond = respond.clone();
                std::thread::spawn(move || serve_conn(s.unwrap(), close_after, &*respond));
            }
        });
        (addr, accepted)
    }

    fn serve_conn(s: TcpStream, close_after: usize, respond: &dyn Fn(&str) -> String) {
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        for _ in 0..close_after {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let req = line
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            let mut len = 0;
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l.strip_prefix("Content-Length: ") {
                    len = v.parse().unwrap();
                }
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).unwrap();
            w.write_all(respond(&req).as_bytes()).unwrap();
        }
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    const DONE: &str = "HTTP/1.1 204 No Content\r\n\r\n";

    #[test]
    fn encodes_keys() {
        assert_eq!(Client::enc("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn requests_share_one_keep_alive_connection() {
        let (addr, accepted) = server(usize::MAX, |req| match req {
            "GET /v1/kv/k" => ok("v"),
            _ => DONE.to_string(),
        });
        let mut c = Client::new(vec![addr]);
        assert_eq!(c.put("k", "v").unwrap(), Outcome::Done);
        assert_eq!(c.get("k").unwrap(), Outcome::Value("v".into()));
        assert_eq!(c.delete("k").unwrap(), Outcome::Done);
        assert_eq!(c.get("k").unwrap(), Outcome::Value("v".into()));
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_connection_closed_while_idle_is_reopened_on_the_same_endpoint() {
        // The first endpoint closes each connection after one response; the
        // second would answer 503, so a rotation would show.
        let (a, accepted) = server(1, |_| ok("a"));
        let (b, _) = server(usize::MAX, |_| {
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".into()
        });
        let mut c = Client::new(vec![a.clone(), b]);
        for _ in 0..3 {
            assert_eq!(c.get("k").unwrap(), Outcome::Value("a".into()));
            assert_eq!(c.endpoint(), a);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_dead_endpoint_after_a_kept_connection_ends_in_giving_up() {
        // One connection, one response, then the server is gone.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            drop(l);
            serve_conn(s, 1, &|_| ok("v"));
        });
        let mut c = Client::new(vec![addr.clone()]);
        c.deadline = Duration::from_millis(300);
        assert_eq!(c.get("k").unwrap(), Outcome::Value("v".into()));
        t.join().unwrap();
        let start = Instant::now();
        let e = c.get("k").unwrap_err().to_string();
        assert!(start.elapsed() < Duration::from_secs(5), "{e}");
        assert!(e.contains(&format!("connect {addr}: ")), "{e}");
    }

    #[test]
    fn follows_a_redirect_to_the_leader_and_stays_there() {
        let (leader, on_leader) = server(usize::MAX, |_| ok("x"));
        let location = format!("http://{leader}/v1/kv/k");
        let (follower, on_follower) = server(usize::MAX, move |_| {
            format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
        });
        let mut c = Client::new(vec![follower]);
        for _ in 0..3 {
            assert_eq!(c.get("k").unwrap(), Outcome::Value("x".into()));
        }
        assert_eq!(c.endpoint(), leader);
        assert_eq!(on_follower.load(Ordering::SeqCst), 1);
        assert_eq!(on_leader.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn gives_up_naming_the_last_error() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let mut c = Client::new(vec![addr.clone()]);
        c.deadline = Duration::from_millis(100);
        let e = c.get("k").unwrap_err().to_string();
        assert!(e.starts_with("gave up after "), "{e}");
        assert!(e.contains(&format!("connect {addr}: ")), "{e}");
    }
}
