//! A buffered writer of `raft-trace/1` files.

use std::io::{self, BufWriter, Write};

use crate::event::{Header, NodeEvent, Record};
use crate::history::ClientEvent;

/// Writes a header, then one record per line, through a buffer. Call
/// [`TraceWriter::flush`] (or drop it) to push the buffer out.
pub struct TraceWriter<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> TraceWriter<W> {
    /// Starts a trace on `out` with `header` as its first line.
    pub fn new(out: W, header: &Header) -> io::Result<Self> {
        let mut w = TraceWriter {
            out: BufWriter::with_capacity(1 << 16, out),
        };
        w.line(header)?;
        Ok(w)
    }

    fn line<T: serde::Serialize>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")
    }

    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        self.line(record)
    }

    pub fn write_node(&mut self, event: &NodeEvent) -> io::Result<()> {
        self.line(event)
    }

    pub fn write_client(&mut self, event: &ClientEvent) -> io::Result<()> {
        self.line(event)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}
