//! What a host of a Ready-style Raft library does the same way whatever the
//! library (raft-rs here, etcd's raft through the Go driver in
//! `etcd-raft-adapter`): the trace header, booting a node from its simulated
//! disk, the `init` event, applying committed entries with their `apply`
//! events, and the snapshot a compaction writes.

use raft::eraftpb::{ConfState, Entry, Snapshot};
use raft_sim::node::{Output, Setup};
use raft_sim::service::{digest, KvService, SESSION_CAPACITY};
use raft_sim::NodeId;
use raft_trace as rt;
use raftkv::bugs::Bugs;
use raftkv::kv::KvStore;

use crate::disk::Disk;
use crate::{core_entry, Msg};

/// The trace header of an adapter: it observes every event type but `gap`,
/// the whole post state and full entries.
pub fn header(
    implementation: &str,
    nodes: Vec<NodeId>,
    network: rt::Network,
    params: serde_json::Value,
    features: Vec<String>,
) -> rt::Header {
    let observes = rt::Observes {
        events: rt::EventType::ALL
            .into_iter()
            .filter(|t| *t != rt::EventType::Gap)
            .collect(),
        state: vec![
            rt::StateField::Term,
            rt::StateField::Vote,
            rt::StateField::Role,
            rt::StateField::Commit,
            rt::StateField::LastIndex,
            rt::StateField::LastTerm,
            rt::StateField::SnapshotIndex,
            rt::StateField::SnapshotTerm,
        ],
        entries: rt::EntryDetail::Full,
    };
    let mut h = rt::Header::new(implementation, nodes, observes);
    h.network = network;
    h.params = Some(params);
    h.features = Some(features);
    h
}

/// A node (re)starting from its simulated disk.
pub struct Boot {
    /// Whether this is the node's first start.
    pub first: bool,
    /// Which start this is (0 for the first), for seeds and message ids.
    pub incarnation: u64,
    /// The state machine, restored from the disk's snapshot.
    pub kv: KvStore,
    /// The `init` event that opens the incarnation's trace.
    pub init: rt::Init,
}

/// Counts the start on `disk`, gives a fresh disk the cluster's voters, and
/// restores the state machine from the disk's snapshot.
pub fn boot(setup: &Setup, disk: &mut Disk) -> Boot {
    let first = disk.incarnation == 0;
    let incarnation = disk.incarnation;
    disk.incarnation += 1;
    if disk.conf_state.voters.is_empty() {
        disk.conf_state = ConfState {
            voters: setup.peers.clone(),
            ..Default::default()
        };
    }
    let (si, st) = disk.snap();
    let kv = if si > 0 {
        KvStore::restore(&disk.snapshot.data, Bugs::NONE).expect("own snapshot decodes")
    } else {
        KvStore::new(SESSION_CAPACITY, Bugs::NONE)
    };
    let hs = &disk.hard_state;
    let init = rt::Init {
        reason: if first {
            rt::InitReason::Boot
        } else {
            rt::InitReason::Restart
        },
        term: hs.term,
        vote: (hs.vote != 0).then_some(hs.vote),
        snapshot: (si > 0).then_some(rt::SnapshotMeta {
            index: si,
            term: st,
            config: None,
        }),
        commit: (hs.commit > 0).then_some(hs.commit),
        last_index: disk.last(),
        last_term: disk.term_of(disk.last()).unwrap_or(0),
        entries: None,
    };
    Boot {
        first,
        incarnation,
        kv,
        init,
    }
}

/// Applies the committed entries not applied yet to the state machine
/// (answers go to `out`) and returns their `apply` events.
pub fn apply(service: &mut KvService, entries: &[Entry], out: &mut Output<Msg>) -> Vec<rt::Event> {
    let mut events = Vec::new();
    for e in entries {
        if e.index <= service.kv().applied() {
            continue;
        }
        let a = service.apply(&core_entry(e), digest(&e.data), out);
        let (client, req) = match a.command {
            Some((c, r)) => (Some(c), Some(r)),
            None => (None, None),
        };
        events.push(rt::Event::Apply(rt::Apply {
            index: e.index,
            term: e.term,
            client,
            req,
            duplicate: a.duplicate,
        }));
    }
    events
}

/// The snapshot a compaction at `index` (of `term`) writes: the state
/// machine's `data` and the fixed configuration of `voters`.
pub fn snapshot(index: u64, term: u64, data: Vec<u8>, voters: &[NodeId]) -> Snapshot {
    let mut s = Snapshot {
        data: data.into(),
        ..Default::default()
    };
    let meta = s.mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.set_conf_state(ConfState {
        voters: voters.to_vec(),
        ..Default::default()
    });
    s
}
