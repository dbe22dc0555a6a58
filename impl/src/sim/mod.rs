//! A deterministic simulator: N Raft cores over a simulated network that
//! loses, duplicates, delays and reorders messages and partitions nodes;
//! crashes and restarts with a simulated disk; clients that retry. One seed
//! determines everything, so a seed replays exactly.
//!
//! After every step the cluster is checked for election safety, one vote
//! per term, log matching, the leader commit rule, committed entries being
//! durable on a quorum, state machine safety and exactly-once execution. At
//! the end every acknowledged write must have been executed and the client
//! history must be linearizable.

pub mod client;
pub mod disk;
pub mod host;
pub mod invariants;
pub mod linearize;
pub mod network;
mod runner;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use raft_trace as rt;

use crate::bugs::Bugs;
pub use invariants::Violation;
pub use runner::run;

/// Which faults a run injects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    pub loss: bool,
    pub dup: bool,
    pub reorder: bool,
    pub partition: bool,
    pub crash: bool,
}

impl Faults {
    pub const ALL: Faults = Faults {
        loss: true,
        dup: true,
        reorder: true,
        partition: true,
        crash: true,
    };
    pub const NONE: Faults = Faults {
        loss: false,
        dup: false,
        reorder: false,
        partition: false,
        crash: false,
    };
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.loss, "loss"),
            (self.dup, "dup"),
            (self.reorder, "reorder"),
            (self.partition, "partition"),
            (self.crash, "crash"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n)
        .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// An unknown fault name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault \"{0}\" (known: loss, dup, reorder, partition, crash, all, none)")]
pub struct UnknownFault(pub String);

impl FromStr for Faults {
    type Err = UnknownFault;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut f = Faults::NONE;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "loss" => f.loss = true,
                "dup" => f.dup = true,
                "reorder" => f.reorder = true,
                "partition" => f.partition = true,
                "crash" => f.crash = true,
                "all" => f = Faults::ALL,
                "none" => {}
                other => return Err(UnknownFault(other.to_string())),
            }
        }
        Ok(f)
    }
}

/// What one run simulates.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nodes: usize,
    /// Steps (ticks) with clients issuing operations and faults injected; a
    /// quiet phase follows to let outstanding operations finish.
    pub steps: u64,
    pub faults: Faults,
    pub bugs: Bugs,
    pub clients: usize,
    pub keys: usize,
    /// Record the raft-trace/1 trace.
    pub trace: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 3,
            steps: 1500,
            faults: Faults::ALL,
            bugs: Bugs::NONE,
            clients: 3,
            keys: 3,
            trace: false,
        }
    }
}

/// Counters of one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub steps: u64,
    pub terms_with_leader: usize,
    pub max_commit: u64,
    pub crashes: u64,
    pub snapshots: u64,
    pub installs: u64,
    pub partitions: u64,
    pub messages: u64,
    pub dropped: u64,
    pub ops_ok: u64,
    pub ops_fail: u64,
    pub ops_info: u64,
    /// The linearizability search ran out of budget (not a failure).
    pub linearizability_inconclusive: bool,
}

/// The result of one seed.
#[derive(Debug)]
pub struct RunResult {
    pub seed: u64,
    /// The first broken invariant and the step it broke at.
    pub violation: Option<(u64, Violation)>,
    pub stats: Stats,
    /// The trace (header + node and client events), when recorded.
    pub trace: Option<(rt::Header, Vec<rt::Record>)>,
    /// The client history in raft-trace/1 client-event form.
    pub history: Vec<rt::ClientEvent>,
    pub nodes: Vec<u64>,
}

impl RunResult {
    /// Writes `dir/trace.ndjson` (when recorded) and `dir/history.ndjson`.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        if let Some((header, records)) = &self.trace {
            let f = std::fs::File::create(dir.join("trace.ndjson"))?;
            let mut w = rt::TraceWriter::new(f, header)?;
            for r in records {
                w.write(r)?;
            }
            w.flush()?;
        }
        let mut header = rt::Header::new(
            concat!("raftkv ", env!("CARGO_PKG_VERSION"), " simulator clients"),
            self.nodes.clone(),
            rt::Observes {
                events: vec![rt::EventType::Invoke, rt::EventType::Return],
                state: vec![],
                entries: rt::EntryDetail::Full,
            },
        );
        header.params = Some(serde_json::json!({ "seed": self.seed }));
        let f = std::fs::File::create(dir.join("history.ndjson"))?;
        let mut w = rt::TraceWriter::new(f, &header)?;
        for e in &self.history {
            w.write_client(e)?;
        }
        w.flush()
    }
}
