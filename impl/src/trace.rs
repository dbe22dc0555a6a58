//! Trace emission: the core reports every `raft-trace/1` event to a
//! [`TraceSink`]. The core builds its events in one place, its trace seam
//! (`core/trace.rs`); without a sink nothing is built, so tracing costs one
//! branch.

use std::sync::{Arc, Mutex};

use raft_trace as rt;

use crate::core::types::NodeId;

/// Core types in trace form (defined in the core's trace seam).
pub use crate::core::trace::{entry, message};

/// Receives the events of one node, in the order they happen. The sink
/// numbers them (`seq`), so numbering survives the node's restarts when the
/// sink does.
pub trait TraceSink: Send {
    fn record(&mut self, node: NodeId, event: rt::Event, post: rt::PostState);
}

/// A shared, in-memory trace of a whole cluster (nodes and clients) in one
/// global order, as the simulator writes it.
#[derive(Debug, Default)]
pub struct TraceBuffer {
    pub records: Vec<rt::Record>,
    seqs: std::collections::BTreeMap<NodeId, u64>,
    /// Logical time, informative (set by the driver).
    pub now: u64,
}

impl TraceBuffer {
    pub fn client(&mut self, ev: rt::ClientEvent) {
        self.records.push(rt::Record::Client(ev));
    }

    /// A node crashed (written by the driver: the node itself is gone).
    pub fn crash(&mut self, node: NodeId) {
        let seq = self.seqs.entry(node).or_insert(0);
        *seq += 1;
        let seq = *seq;
        self.records.push(rt::Record::Node(rt::NodeEvent {
            node,
            seq,
            time: Some(self.now),
            event: rt::Event::Crash(rt::Crash {}),
            post: None,
        }));
    }
}

/// A [`TraceSink`] appending to a shared [`TraceBuffer`].
#[derive(Debug, Clone, Default)]
pub struct SharedTrace(pub Arc<Mutex<TraceBuffer>>);

impl TraceSink for SharedTrace {
    fn record(&mut self, node: NodeId, event: rt::Event, post: rt::PostState) {
        let mut buf = self.0.lock().expect("trace lock");
        let seq = buf.seqs.entry(node).or_insert(0);
        *seq += 1;
        let seq = *seq;
        let time = Some(buf.now);
        buf.records.push(rt::Record::Node(rt::NodeEvent {
            node,
            seq,
            time,
            event,
            post: Some(post),
        }));
    }
}

/// The header the simulator writes for a cluster of `nodes`.
pub fn header(nodes: Vec<NodeId>, network: rt::Network, params: serde_json::Value) -> rt::Header {
    let observes = rt::Observes {
        events: rt::EventType::ALL
            .into_iter()
            .filter(|t| *t != rt::EventType::Gap)
            .collect(),
        state: rt::StateField::ALL.to_vec(),
        entries: rt::EntryDetail::Full,
    };
    let mut h = rt::Header::new(
        concat!("raftkv ", env!("CARGO_PKG_VERSION")),
        nodes,
        observes,
    );
    h.network = network;
    h.params = Some(params);
    h
}
