//! Where an emitter's events go while it runs: a [`TraceSink`] takes the
//! events of one node in the order they happen; [`SharedTrace`] collects a
//! whole cluster's events (nodes and clients) in one global order, as a
//! deterministic simulator records them.

use std::sync::{Arc, Mutex};

use crate::{ClientEvent, Crash, Event, NodeEvent, NodeId, PostState, Record};

/// Receives the events of one node, in the order they happen. The sink
/// numbers them (`seq`), so numbering survives the node's restarts when the
/// sink does.
pub trait TraceSink: Send {
    fn record(&mut self, node: NodeId, event: Event, post: PostState);
}

/// A shared, in-memory trace of a whole cluster (nodes and clients) in one
/// global order, as the simulator writes it.
#[derive(Debug, Default)]
pub struct TraceBuffer {
    pub records: Vec<Record>,
    seqs: std::collections::BTreeMap<NodeId, u64>,
    /// Logical time, informative (set by the driver).
    pub now: u64,
}

impl TraceBuffer {
    pub fn client(&mut self, ev: ClientEvent) {
        self.records.push(Record::Client(Box::new(ev)));
    }

    /// A node crashed (written by the driver: the node itself is gone).
    pub fn crash(&mut self, node: NodeId) {
        let seq = self.seqs.entry(node).or_insert(0);
        *seq += 1;
        let seq = *seq;
        self.records.push(Record::Node(Box::new(NodeEvent {
            node,
            seq,
            time: Some(self.now),
            event: Event::Crash(Crash {}),
            post: None,
        })));
    }
}

/// A [`TraceSink`] appending to a shared [`TraceBuffer`].
#[derive(Debug, Clone, Default)]
pub struct SharedTrace(pub Arc<Mutex<TraceBuffer>>);

impl TraceSink for SharedTrace {
    fn record(&mut self, node: NodeId, event: Event, post: PostState) {
        let mut buf = self.0.lock().expect("trace lock");
        let seq = buf.seqs.entry(node).or_insert(0);
        *seq += 1;
        let seq = *seq;
        let time = Some(buf.now);
        buf.records.push(Record::Node(Box::new(NodeEvent {
            node,
            seq,
            time,
            event,
            post: Some(post),
        })));
    }
}
