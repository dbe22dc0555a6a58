//! A minimal keep-alive HTTP/1.1 connection for the load generator: one
//! request outstanding, the response read by `Content-Length` or chunked
//! transfer coding, the body discarded into a reused buffer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result};

/// One keep-alive connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: String,
    body: Vec<u8>,
}

impl Conn {
    pub fn open(addr: &str) -> Result<Conn> {
        let s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Conn {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// Sends a complete request and returns the status code; the body is
    /// left in [`Conn::body`].
    pub fn call(&mut self, req: &[u8]) -> Result<u16> {
        self.writer.write_all(req)?;
        self.line.clear();
        self.reader.read_line(&mut self.line)?;
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {:?}", self.line))?;
        let mut len = 0usize;
        let mut chunked = false;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                anyhow::bail!("connection closed in the headers");
            }
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse()?;
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        self.body.clear();
        if chunked {
            self.read_chunked()?;
        } else {
            self.body.resize(len, 0);
            self.reader.read_exact(&mut self.body)?;
        }
        Ok(status)
    }

    /// The body of the last response.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    fn read_chunked(&mut self) -> Result<()> {
        loop {
            self.line.clear();
            self.reader.read_line(&mut self.line)?;
            let size = self.line.trim_end().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size.trim(), 16)
                .with_context(|| format!("bad chunk size {:?}", self.line))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    self.line.clear();
                    if self.reader.read_line(&mut self.line)? == 0
                        || self.line.trim_end().is_empty()
                    {
                        return Ok(());
                    }
                }
            }
            let start = self.body.len();
            self.body.resize(start + size, 0);
            self.reader.read_exact(&mut self.body[start..])?;
            let mut crlf = [0u8; 2];
            self.reader.read_exact(&mut crlf)?;
        }
    }
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
    use super::{base64, Conn};
    use std::io::{Read, Write};
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
        assert_eq!(c.call(req).unwrap(), 404);
        assert_eq!(c.body(), b"");
        assert_eq!(c.call(req).unwrap(), 200);
        assert_eq!(c.body(), br#"{"a":1}"#);
        // The connection is still in step after the trailer.
        assert_eq!(c.call(req).unwrap(), 503);
        assert_eq!(c.body(), b"no");
    }

    #[test]
    fn a_garbled_status_line_is_an_error() {
        let addr = serve(vec!["garbage\r\n\r\n"]);
        let mut c = Conn::open(&addr).unwrap();
        assert!(c.call(b"GET / HTTP/1.1\r\n\r\n").is_err());
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
