//! A small blocking HTTP/1.1 client: the one used by [`super::client`] (the
//! client API with leader discovery) and by `raftcheck bench` (raftkv and
//! etcd's JSON gateway).
//!
//! - [`Conn`]: one keep-alive connection, one request outstanding; the
//!   response is read by `Content-Length`, by chunked transfer coding (chunk
//!   extensions and trailers are skipped) or, without either, up to the
//!   server's close. The status, headers and body of the last response stay in
//!   reused buffers ([`Conn::call`]) or are returned owned
//!   ([`Conn::request`]). After a response that closes the connection, or an
//!   error that may have left the stream out of step, the next request opens
//!   a new connection.
//! - [`request`]: one request on a connection of its own.
//! - [`parse`]: a complete response from bytes.
//!
//! Every read is bounded: the status line, headers and trailers by
//! [`Options::max_header_bytes`], the body by [`Options::max_body_bytes`];
//! connecting and each read or write by [`Options::connect_timeout`] and
//! [`Options::io_timeout`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Timeouts and size limits of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Time allowed to establish the TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed for each read and each write on the connection.
    pub io_timeout: Duration,
    /// Limit on the status line and headers together (and, separately, on a
    /// chunk-size line and on the trailers).
    pub max_header_bytes: usize,
    /// Limit on a response body (after chunked decoding).
    pub max_body_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

impl Options {
    /// The defaults, with `timeout` both to connect and for each read or write.
    pub fn with_timeout(timeout: Duration) -> Self {
        Options {
            connect_timeout: timeout,
            io_timeout: timeout,
            ..Options::default()
        }
    }
}

/// Errors of an HTTP exchange.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{addr}: no address")]
    NoAddress { addr: String },
    #[error("connect {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("connection closed {0}")]
    Closed(&'static str),
    #[error("bad status line {0:?}")]
    StatusLine(String),
    #[error("bad header line {0:?}")]
    HeaderLine(String),
    #[error("bad Content-Length {0:?}")]
    ContentLength(String),
    #[error("unsupported Transfer-Encoding {0:?}")]
    TransferEncoding(String),
    #[error("bad chunk size line {0:?}")]
    ChunkSize(String),
    #[error("bad chunk end {0:?} (expected CRLF)")]
    ChunkEnd(String),
    #[error("{what} longer than {limit} bytes")]
    TooLarge { what: &'static str, limit: usize },
}

/// A response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A complete request: the request line, `Host`, `Content-Length` (always,
/// so that servers need not guess), `Connection: close` if `close`, then
/// `headers` and the body.
pub fn format_request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    if close {
        req.push_str("Connection: close\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut buf = req.into_bytes();
    buf.extend_from_slice(body);
    buf
}

/// One request on a new connection (`Connection: close`), with `timeout` to
/// connect and for each read or write.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    let mut c = Conn::open_with(addr, Options::with_timeout(timeout))?;
    c.call(&format_request(addr, method, path, headers, body, true))?;
    Ok(c.take_response())
}

/// Parses one complete response (with the default limits).
pub fn parse(raw: &[u8]) -> Result<Response, HttpError> {
    let mut r = Response::default();
    let mut reader = raw;
    read_response(&mut reader, &Options::default(), false, &mut r)?;
    Ok(r)
}

/// One keep-alive connection to `addr`.
pub struct Conn {
    addr: String,
    opts: Options,
    /// `None` once the connection must not be used again.
    stream: Option<BufReader<TcpStream>>,
    /// Responses read on the current connection.
    served: u64,
    /// Whether the last [`Conn::call`] went over a connection that had
    /// already served a response.
    reused: bool,
    last: Response,
}

impl Conn {
    /// Connects to `addr` with the default [`Options`].
    pub fn open(addr: &str) -> Result<Conn, HttpError> {
        Conn::open_with(addr, Options::default())
    }

    /// Connects to `addr`.
    pub fn open_with(addr: &str, opts: Options) -> Result<Conn, HttpError> {
        let mut c = Conn {
            addr: addr.to_string(),
            opts,
            stream: None,
            served: 0,
            reused: false,
            last: Response::default(),
        };
        c.connect()?;
        Ok(c)
    }

    fn connect(&mut self) -> Result<(), HttpError> {
        let connect_err = |source| HttpError::Connect {
            addr: self.addr.clone(),
            source,
        };
        let sa = self
            .addr
            .to_socket_addrs()
            .map_err(connect_err)?
            .next()
            .ok_or_else(|| HttpError::NoAddress {
                addr: self.addr.clone(),
            })?;
        let s = TcpStream::connect_timeout(&sa, self.opts.connect_timeout).map_err(connect_err)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(self.opts.io_timeout))?;
        s.set_write_timeout(Some(self.opts.io_timeout))?;
        self.stream = Some(BufReader::new(s));
        self.served = 0;
        Ok(())
    }

    /// The address this connection goes to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends a complete request (see [`format_request`]) and reads the
    /// response; returns its status, and leaves its headers and body in
    /// [`Conn::header`] and [`Conn::body`]. Opens a new connection first if
    /// the last response closed this one or the last call failed.
    pub fn call(&mut self, req: &[u8]) -> Result<u16, HttpError> {
        self.reused = false;
        if self.stream.is_none() {
            self.connect()?;
        }
        self.reused = self.served > 0;
        let r = self.exchange(req);
        match &r {
            Ok(keep_alive) => {
                self.served += 1;
                if !keep_alive {
                    self.stream = None;
                }
            }
            // Part of a response may be unread: never reuse the stream.
            Err(_) => self.stream = None,
        }
        r.map(|_| self.last.status)
    }

    fn exchange(&mut self, req: &[u8]) -> Result<bool, HttpError> {
        let timeout = self.opts.io_timeout;
        let stream = self.stream.as_mut().expect("connected");
        stream
            .get_mut()
            .write_all(req)
            .map_err(|e| timed_out(e, timeout))?;
        let head = req.starts_with(b"HEAD ");
        read_response(stream, &self.opts, head, &mut self.last).map_err(|e| match e {
            HttpError::Io(e) => timed_out(e, timeout),
            e => e,
        })
    }

    /// Builds a request (see [`format_request`]), sends it and returns the
    /// response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        let req = format_request(&self.addr, method, path, headers, body, false);
        self.call(&req)?;
        Ok(self.take_response())
    }

    fn take_response(&mut self) -> Response {
        std::mem::take(&mut self.last)
    }

    /// Whether the last [`Conn::call`] was sent over a connection that had
    /// served an earlier response (which the server may since have closed).
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Whether the next call will use the current connection.
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// The body of the last response.
    pub fn body(&self) -> &[u8] {
        &self.last.body
    }

    /// A header of the last response (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.last.header(name)
    }
}

fn timed_out(e: io::Error, after: Duration) -> HttpError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout(after),
        _ => HttpError::Io(e),
    }
}

/// Reads one line (up to and including LF) into `line`, at most `*budget`
/// bytes, which it lowers. `Ok(false)` at the end of the stream.
fn read_line<R: BufRead>(
    r: &mut R,
    line: &mut Vec<u8>,
    budget: &mut usize,
    what: &'static str,
    limit: usize,
) -> Result<bool, HttpError> {
    line.clear();
    if *budget == 0 {
        return Err(HttpError::TooLarge { what, limit });
    }
    let n = r.by_ref().take(*budget as u64).read_until(b'\n', line)?;
    *budget -= n;
    if n == 0 {
        return Ok(false);
    }
    if line.last() != Some(&b'\n') {
        if *budget == 0 {
            return Err(HttpError::TooLarge { what, limit });
        }
        return Err(HttpError::Closed("in the middle of a line"));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(true)
}

fn lossy(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// The status code of a status line `HTTP/1.x NNN reason`, and whether the
/// version is 1.0.
fn status_line(line: &[u8]) -> Result<(u16, bool), HttpError> {
    let bad = || HttpError::StatusLine(lossy(line));
    let text = std::str::from_utf8(line).map_err(|_| bad())?;
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let status = code.parse::<u16>().map_err(|_| bad())?;
    if status < 100 {
        return Err(bad());
    }
    Ok((status, version == "HTTP/1.0"))
}

/// Header lines up to the empty line, within `budget` bytes.
fn read_headers<R: BufRead>(
    r: &mut R,
    line: &mut Vec<u8>,
    budget: &mut usize,
    limit: usize,
    what: &'static str,
    headers: &mut Vec<(String, String)>,
) -> Result<(), HttpError> {
    loop {
        if !read_line(r, line, budget, what, limit)? {
            return Err(HttpError::Closed("in the headers"));
        }
        if line.is_empty() {
            return Ok(());
        }
        let text = std::str::from_utf8(line).map_err(|_| HttpError::HeaderLine(lossy(line)))?;
        let (k, v) = text
            .split_once(':')
            .ok_or_else(|| HttpError::HeaderLine(text.to_string()))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
}

/// Reads one response into `out`; returns whether the connection may carry
/// another request.
/// `head`: the request was a HEAD (the response has no body whatever its
/// headers say).
fn read_response<R: BufRead>(
    r: &mut R,
    opts: &Options,
    head: bool,
    out: &mut Response,
) -> Result<bool, HttpError> {
    let limit = opts.max_header_bytes;
    let mut line = Vec::new();
    let (status, http10) = loop {
        let mut budget = limit;
        out.headers.clear();
        if !read_line(r, &mut line, &mut budget, "status line and headers", limit)? {
            return Err(HttpError::Closed("before the status line"));
        }
        let (status, http10) = status_line(&line)?;
        read_headers(
            r,
            &mut line,
            &mut budget,
            limit,
            "status line and headers",
            &mut out.headers,
        )?;
        // Interim responses (100 Continue, ...) precede the real one.
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        break (status, http10);
    };
    out.status = status;
    out.body.clear();
    let connection = find_header(&out.headers, "connection").unwrap_or_default();
    let has_token = |t: &str| {
        connection
            .split(',')
            .any(|c| c.trim().eq_ignore_ascii_case(t))
    };
    let mut keep_alive = if http10 {
        has_token("keep-alive")
    } else {
        !has_token("close")
    };
    let max = opts.max_body_bytes;
    let too_large = || HttpError::TooLarge {
        what: "response body",
        limit: max,
    };
    if status == 101 {
        // Switching protocols: not HTTP any more.
        keep_alive = false;
    } else if head || matches!(status, 204 | 304) {
        // No body.
    } else if let Some(te) = find_header(&out.headers, "transfer-encoding") {
        if !te
            .rsplit(',')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("chunked")
        {
            return Err(HttpError::TransferEncoding(te.to_string()));
        }
        read_chunked(r, opts, &mut line, &mut out.body)?;
    } else if let Some(v) = find_header(&out.headers, "content-length") {
        let len: usize = v
            .parse()
            .map_err(|_| HttpError::ContentLength(v.to_string()))?;
        if len > max {
            return Err(too_large());
        }
        out.body.resize(len, 0);
        read_exact(r, &mut out.body)?;
    } else {
        // Delimited by the server closing the connection.
        r.by_ref().take(max as u64 + 1).read_to_end(&mut out.body)?;
        if out.body.len() > max {
            return Err(too_large());
        }
        keep_alive = false;
    }
    Ok(keep_alive)
}

/// A chunked body: `SIZE[;ext]` CRLF, data, CRLF ... `0` CRLF, trailers,
/// CRLF.
fn read_chunked<R: BufRead>(
    r: &mut R,
    opts: &Options,
    line: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> Result<(), HttpError> {
    let limit = opts.max_header_bytes;
    loop {
        let mut budget = limit;
        if !read_line(r, line, &mut budget, "chunk size line", limit)? {
            return Err(HttpError::Closed("in the body"));
        }
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| HttpError::ChunkSize(lossy(line)))?;
        if size == 0 {
            let mut budget = limit;
            let mut trailers = Vec::new();
            return read_headers(r, line, &mut budget, limit, "trailers", &mut trailers);
        }
        if size > opts.max_body_bytes - body.len() {
            return Err(HttpError::TooLarge {
                what: "response body",
                limit: opts.max_body_bytes,
            });
        }
        let start = body.len();
        body.resize(start + size, 0);
        read_exact(r, &mut body[start..])?;
        let mut crlf = [0u8; 2];
        read_exact(r, &mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(HttpError::ChunkEnd(lossy(&crlf)));
        }
    }
}

fn read_exact<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), HttpError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => HttpError::Closed("in the body"),
        _ => HttpError::Io(e),
    })
}

/// Standard base64 with padding (RFC 4648), for etcd's JSON gateway.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-connection server answering each request with the next canned
    /// response.
    fn serve(responses: Vec<&'static str>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            for r in responses {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).unwrap();
                s.write_all(r.as_bytes()).unwrap();
            }
        });
        addr
    }

    #[test]
    fn keep_alive_reads_content_length_and_chunked_bodies() {
        let addr = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n",
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno",
        ]);
        let mut c = Conn::open(&addr).unwrap();
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(c.call(req).unwrap(), 200);
        assert_eq!(c.body(), b"hello");
        assert!(!c.reused());
        assert_eq!(c.call(req).unwrap(), 404);
        assert_eq!(c.body(), b"");
        assert!(c.reused());
        assert_eq!(c.call(req).unwrap(), 200);
        assert_eq!(c.body(), br#"{"a":1}"#);
        // The connection is still in step after the trailer.
        assert_eq!(c.call(req).unwrap(), 503);
        assert_eq!(c.body(), b"no");
        assert!(c.is_open());
    }

    #[test]
    fn a_garbled_status_line_is_an_error() {
        let addr = serve(vec!["garbage\r\n\r\n"]);
        let mut c = Conn::open(&addr).unwrap();
        let e = c.call(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
        assert!(matches!(e, HttpError::StatusLine(_)), "{e:?}");
        assert_eq!(e.to_string(), r#"bad status line "garbage""#);
        // The stream is out of step: it is not used again.
        assert!(!c.is_open());
        for bad in [
            "HTTP/1.1 20 OK",
            "HTTP/1.1 abc OK",
            "HTTP/2 200 OK",
            "ICY 200 OK",
            "",
        ] {
            let e = parse(format!("{bad}\r\n\r\n").as_bytes()).unwrap_err();
            assert_eq!(e.to_string(), format!("bad status line {bad:?}"));
        }
    }

    #[test]
    fn parses_a_response() {
        let r = parse(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://a:1/v1/kv/x\r\ncontent-length: 2\r\n\r\nokxx").unwrap();
        assert_eq!(r.status, 307);
        assert_eq!(r.header("location"), Some("http://a:1/v1/kv/x"));
        assert_eq!(r.body, b"ok");
        assert!(parse(b"garbage").is_err());
        // Interim responses are skipped; a body without a length runs to the end.
        let r = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nX: y\r\n\r\nall of it")
            .unwrap();
        assert_eq!((r.status, r.header("x")), (200, Some("y")));
        assert_eq!(r.body, b"all of it");
        // No body on 204, whatever the headers say.
        let r = parse(b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.len()), (204, 0));
    }

    #[test]
    fn truncated_and_malformed_responses_are_errors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "connection closed before the status line"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
                "connection closed in the headers",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                "connection closed in the body",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                r#"bad Content-Length "x""#,
            ),
            (
                b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
                r#"bad header line "no colon""#,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                r#"bad chunk size line "zz""#,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",
                r#"bad chunk end "XY" (expected CRLF)"#,
            ),
        ];
        for (raw, msg) in cases {
            let e = parse(raw).unwrap_err();
            assert_eq!(e.to_string(), msg, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn header_and_body_sizes_are_bounded() {
        let opts = Options {
            max_header_bytes: 64,
            max_body_bytes: 8,
            ..Options::default()
        };
        let read = |raw: &[u8]| {
            let mut r = Response::default();
            read_response(&mut &raw[..], &opts, false, &mut r).map(|_| r)
        };
        let long_header = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(100));
        assert_eq!(
            read(long_header.as_bytes()).unwrap_err().to_string(),
            "status line and headers longer than 64 bytes"
        );
        let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", "X: 0123456789\r\n".repeat(5));
        assert_eq!(
            read(many.as_bytes()).unwrap_err().to_string(),
            "status line and headers longer than 64 bytes"
        );
        let body_err = "response body longer than 8 bytes";
        let e = read(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789").unwrap_err();
        assert_eq!(e.to_string(), body_err);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n4\r\n6789\r\n0\r\n\r\n";
        assert_eq!(read(chunked).unwrap_err().to_string(), body_err);
        let e = read(b"HTTP/1.1 200 OK\r\n\r\n123456789").unwrap_err();
        assert_eq!(e.to_string(), body_err);
        // Exactly at the limits is fine.
        let r = read(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n0\r\n\r\n",
        );
        assert_eq!(r.unwrap().body, b"12345678");
    }

    #[test]
    fn connection_close_and_http10_make_the_next_call_reconnect() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for r in [
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
                "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb",
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc",
            ] {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).unwrap();
                s.write_all(r.as_bytes()).unwrap();
            }
        });
        let mut c = Conn::open(&addr).unwrap();
        for want in ["a", "b", "c"] {
            let r = c.request("GET", "/", &[], b"").unwrap();
            assert_eq!(r.body, want.as_bytes());
            assert!(!c.reused());
        }
        assert!(c.is_open());
    }

    #[test]
    fn a_silent_server_is_a_timeout() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(500));
            drop(s);
        });
        let e = request(&addr, "GET", "/", &[], b"", Duration::from_millis(100)).unwrap_err();
        assert_eq!(e.to_string(), "no response within 100ms");
        t.join().unwrap();
    }

    #[test]
    fn requests_carry_host_length_and_headers() {
        let req = format_request("h:1", "PUT", "/k", &[("X-A", "1".into())], b"v", true);
        assert_eq!(
            req,
            b"PUT /k HTTP/1.1\r\nHost: h:1\r\nConnection: close\r\nContent-Length: 1\r\nX-A: 1\r\n\r\nv"
        );
        let req = format_request("h:1", "GET", "/", &[], b"", false);
        assert_eq!(
            req,
            b"GET / HTTP/1.1\r\nHost: h:1\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn a_refused_connection_names_the_address() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let e = Conn::open(&addr).err().unwrap();
        assert!(
            e.to_string().starts_with(&format!("connect {addr}: ")),
            "{e}"
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc, "{plain:?}");
        }
    }
}
