//! The reader never holds more than its line limit of one line in memory:
//! an endless line (a generator that never yields a newline) ends in an
//! error instead of exhausting memory.

use std::io::{BufReader, Read};

use raft_trace::{ErrorKind, TraceReader};

struct Endless {
    header_left: &'static [u8],
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.header_left.is_empty() {
            let n = self.header_left.len().min(buf.len());
            buf[..n].copy_from_slice(&self.header_left[..n]);
            self.header_left = &self.header_left[n..];
            return Ok(n);
        }
        buf.fill(b'x');
        Ok(buf.len())
    }
}

#[test]
fn an_endless_line_is_an_error_not_an_allocation() {
    let header = b"{\"type\":\"header\",\"format\":\"raft-trace/1\",\"implementation\":\"t\",\"nodes\":[1],\"observes\":{\"events\":[]}}\n";
    let input = BufReader::new(Endless {
        header_left: header,
    });
    let mut reader = TraceReader::with_max_line(input, "endless", 1 << 20).unwrap();
    let err = reader.next().unwrap().unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooLong);
    assert_eq!(err.line, 2);
    assert!(reader.next().is_none(), "the reader stops after an error");
}

#[test]
fn an_endless_header_is_an_error_too() {
    let input = BufReader::new(Endless { header_left: b"" });
    let err = TraceReader::with_max_line(input, "endless", 1 << 16)
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::TooLong);
    assert_eq!(err.line, 1);
}
