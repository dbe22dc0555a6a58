//! Trace emission: the core reports every `raft-trace/1` event to a
//! [`TraceSink`]. The core builds its events in one place, its trace seam
//! (`core/trace.rs`); without a sink nothing is built, so tracing costs one
//! branch.

use raft_trace as rt;

use crate::core::types::NodeId;
use crate::core::Config;

/// Core types in trace form (defined in the core's trace seam).
pub use crate::core::trace::{entry, message};

pub use raft_trace::sink::{SharedTrace, TraceBuffer, TraceSink};

/// The trace header's `features` of a core configured as `cfg`: the
/// `raft-trace/1` names of the behaviours beyond the Raft paper's Figure 2
/// it uses.
pub fn features(cfg: &Config) -> Vec<String> {
    [
        (cfg.lost_election, "lost-election"),
        (cfg.pre_vote, "pre-vote"),
        (cfg.check_quorum, "check-quorum"),
        (cfg.leader_transfer, "leader-transfer"),
        (cfg.lease_read, "lease-read"),
        // Membership changes one server at a time, each configuration used
        // from its append (thesis §4.1).
        (cfg.membership, "membership"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name.to_string())
    .collect()
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
    // With its options off raftkv takes none of the freedoms beyond Figure 2
    // that the format names, and says so: its traces are checked against
    // Figure 2 exactly. A host that turns options on lists them instead
    // (see `features`).
    h.features = Some(Vec::new());
    h
}
