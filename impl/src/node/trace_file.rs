//! `--trace FILE`: a [`TraceSink`] that hands events to a writer thread
//! through a [`TraceBuffer`] (serialisation and file I/O off the node's task).
//!
//! Before the node writes its WAL, and again before it releases a Ready's
//! messages to the network, it awaits [`TraceHandle::barrier`], which
//! resolves once the writer has written every earlier event to the file (one
//! write(2) of all pending lines, into the OS page cache; no fsync). A node
//! killed with SIGKILL therefore never recovers state (entries, term, vote,
//! commit index, snapshot) that its trace does not show, and never leaves a
//! receive in another node's trace whose send is missing from its own. (A
//! power loss may still cut the trace before the WAL.) Across restarts the file is appended to and events
//! keep their per-node numbering; a restart begins with a `crash` event
//! (which replaces a `crash` left with nothing after it: see [`open`]).

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::Path;
use std::sync::Arc;

use raft_trace as rt;

use super::trace_buffer::TraceBuffer;
use crate::core::NodeId;
use crate::trace::TraceSink;

/// The sink given to the core.
pub struct FileSink {
    buffer: Arc<TraceBuffer<rt::NodeEvent>>,
    seq: u64,
    start: std::time::Instant,
}

/// The node's handle for barriers and shutdown.
pub struct TraceHandle {
    buffer: Arc<TraceBuffer<rt::NodeEvent>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl TraceHandle {
    /// Resolves when every event recorded so far is written.
    pub async fn barrier(&self) {
        self.buffer.barrier().await
    }

    /// Shutdown: refuses further events, lets the writer write every event
    /// recorded so far and waits for it to exit.
    pub async fn finish(mut self) {
        self.buffer.close();
        if let Some(w) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
    }
}

impl Drop for TraceHandle {
    fn drop(&mut self) {
        // Without `finish` the writer still drains the buffer and exits.
        self.buffer.close();
    }
}

impl TraceSink for FileSink {
    fn record(&mut self, node: NodeId, event: rt::Event, post: rt::PostState) {
        self.seq += 1;
        self.buffer.push(rt::NodeEvent {
            node,
            seq: self.seq,
            time: Some(self.start.elapsed().as_micros() as u64),
            event,
            post: Some(post),
        });
    }
}

/// Opens (or continues) the trace file of node `id` in a cluster of `nodes`
/// (every node the run will have) whose bootstrap voters are `voters`
/// (`None`: every one of `nodes`), whose core uses `features` (see
/// [`crate::trace::features`]). These go in the header of a new file only.
pub fn open(
    path: &Path,
    id: NodeId,
    nodes: Vec<NodeId>,
    voters: Option<Vec<NodeId>>,
    features: Vec<String>,
) -> std::io::Result<(FileSink, TraceHandle)> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)?;
    // Keep complete lines only (a killed writer may have left half a line).
    // A `crash` line with nothing after it goes too: that incarnation was
    // killed before its `init` reached the file, hence before any WAL write
    // (each is preceded by writing the trace), so it changed nothing the
    // trace must show; the new `crash` line takes its place.
    let mut good = 0u64;
    let mut last_seq = 0u64;
    let mut lines = 0u64;
    // Where the trailing crash line starts, and the numbering before it.
    let mut trailing_crash: Option<(u64, u64)> = None;
    {
        let mut r = BufReader::new(&file);
        let mut line = String::new();
        loop {
            line.clear();
            let n = r.read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            let start = good;
            let seq_before = last_seq;
            good += n as u64;
            lines += 1;
            trailing_crash = None;
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if let Some(s) = v.get("seq").and_then(|s| s.as_u64()) {
                    last_seq = last_seq.max(s);
                }
                if v.get("type").and_then(|t| t.as_str()) == Some("crash") {
                    trailing_crash = Some((start, seq_before));
                }
            }
        }
    }
    if let Some((start, seq_before)) = trailing_crash {
        good = start;
        last_seq = seq_before;
        lines -= 1;
    }
    file.set_len(good)?;
    file.seek(std::io::SeekFrom::End(0))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    let mut seq = last_seq;
    if lines == 0 {
        let network = rt::Network {
            loss: true,
            duplication: false,
            reorder: true,
        };
        let mut header = crate::trace::header(nodes, network, serde_json::json!({"node": id}));
        header.features = Some(features);
        header.voters = voters;
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
    } else {
        seq += 1;
        let crash = rt::NodeEvent {
            node: id,
            seq,
            time: None,
            event: rt::Event::Crash(rt::Crash {}),
            post: None,
        };
        serde_json::to_writer(&mut out, &crash)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    let buffer = TraceBuffer::new();
    let b = buffer.clone();
    let writer = std::thread::Builder::new()
        .name("raftkv-trace".into())
        .spawn(move || writer(out, b))?;
    Ok((
        FileSink {
            buffer: buffer.clone(),
            seq,
            start: std::time::Instant::now(),
        },
        TraceHandle {
            buffer,
            writer: Some(writer),
        },
    ))
}

/// The writer thread: writes batches, flushes each to the file, then
/// releases the barriers they satisfy. After a write error tracing stops
/// (events are discarded, barriers still released).
fn writer(mut out: std::io::BufWriter<std::fs::File>, buffer: Arc<TraceBuffer<rt::NodeEvent>>) {
    let _gone = buffer.writer_guard();
    let mut failed = false;
    let mut batch = Vec::new();
    while let Some(upto) = buffer.next_batch(&mut batch) {
        if !failed {
            let r = batch.iter().try_for_each(|ev| {
                serde_json::to_writer(&mut out, ev)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
            });
            if let Err(e) = r.and_then(|()| out.flush()) {
                tracing::error!(error = %e, "trace write failed; tracing stops");
                failed = true;
            }
        }
        batch.clear();
        buffer.written(upto);
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(i: u64) -> rt::Event {
        rt::Event::Commit(rt::Commit { index: i })
    }

    #[test]
    fn continues_numbering_across_restarts_and_drops_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n1.ndjson");
        let rt_ = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (mut sink, h) = open(&path, 1, vec![1, 2, 3], None, vec![]).unwrap();
        sink.record(1, commit(1), rt::PostState::default());
        sink.record(1, commit(2), rt::PostState::default());
        rt_.block_on(h.barrier());
        // A killed writer leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"node\":1,\"seq\":3,\"ty").unwrap();
        drop(f);
        let (mut sink, h) = open(&path, 1, vec![1, 2, 3], None, vec![]).unwrap();
        sink.record(1, commit(3), rt::PostState::default());
        rt_.block_on(h.barrier());
        assert_eq!(
            events_in(&path),
            vec![
                (1, rt::EventType::Commit),
                (2, rt::EventType::Commit),
                (3, rt::EventType::Crash),
                (4, rt::EventType::Commit),
            ]
        );
    }

    /// The (seq, type) of every node event in the trace file at `path`.
    fn events_in(path: &Path) -> Vec<(u64, rt::EventType)> {
        raft_trace::read_file(path)
            .unwrap()
            .map(|r| match r.unwrap() {
                rt::Record::Node(e) => (e.seq, e.event.event_type()),
                rt::Record::Client(_) => panic!("no client events"),
            })
            .collect()
    }

    #[test]
    fn a_crash_line_without_the_events_after_it_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n1.ndjson");
        let rt_ = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (mut sink, h) = open(&path, 1, vec![1, 2, 3], None, vec![]).unwrap();
        sink.record(1, commit(1), rt::PostState::default());
        rt_.block_on(h.barrier());
        // Killed before its first event (its init) reached the file.
        let (_sink, h) = open(&path, 1, vec![1, 2, 3], None, vec![]).unwrap();
        drop(h);
        let (mut sink, h) = open(&path, 1, vec![1, 2, 3], None, vec![]).unwrap();
        sink.record(1, commit(2), rt::PostState::default());
        rt_.block_on(h.barrier());
        assert_eq!(
            events_in(&path),
            vec![
                (1, rt::EventType::Commit),
                (2, rt::EventType::Crash),
                (3, rt::EventType::Commit),
            ]
        );
    }
}
