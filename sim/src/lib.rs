//! raft-sim: a deterministic simulator for any Raft implementation.
//!
//! N nodes of one [`Implementation`] (behind the sans-IO [`node::Node`]
//! trait) run over a simulated network that loses, duplicates, delays and
//! reorders messages and partitions nodes; they crash and restart with what
//! their simulated disk holds; clients retry. One seed determines
//! everything, so a seed replays exactly.
//!
//! The verdict of a run is conformance's: its trace goes through the same
//! replay against the model's rules, invariants and linearizability check
//! as a third-party trace ([`raft_conformance::validate::check_records`]).
//! The simulator's own fast checks ([`invariants`]) run after every step
//! only to stop a broken run early; if one fires on a run conformance
//! accepts, the run fails with the two checkers' disagreement.
//!
//! [`raftkv::RaftKv`] puts our own core behind the trait.

pub mod client;
pub mod invariants;
pub mod network;
pub mod node;
pub mod raftkv;
pub mod service;
mod world;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use raft_conformance::validate::{Checked, Verdict};
use raft_trace as rt;

pub use invariants::Violation;
pub use node::Implementation;
pub use world::{
    run, ELECTION_TICKS, HEAL_ELECTION_TIMEOUTS, QUIET_STEPS, SETTLE_TICKS, SPARE_NODES,
};

/// A node's identity (1..=N).
pub type NodeId = u64;

/// The file a run's trace is written to under its `seed-N/` directory.
pub const TRACE_FILE: &str = "trace.ndjson";

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
    pub clients: usize,
    pub keys: usize,
    /// The nemesis asks the leader now and then to hand its leadership to
    /// a random other node (leader transfer).
    pub leader_transfer: bool,
    /// Membership changes: the cluster boots with `nodes` voters and
    /// [`SPARE_NODES`] more servers that are not members yet, and the
    /// nemesis asks leaders for changes one server at a time (a voter or
    /// learner added, a learner promoted, a member removed, the leader
    /// included), keeping between `nodes` and `nodes + 2` voters.
    pub membership: bool,
    /// The most candidate model states conformance's replay keeps per node
    /// (`raft_conformance::validate::Options::frontier_budget`); past it a
    /// run is inconclusive. An implementation whose replies leave late and
    /// that takes freedoms only its replies reveal needs more.
    pub frontier_budget: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 3,
            steps: 1500,
            faults: Faults::ALL,
            clients: 3,
            keys: 3,
            leader_transfer: false,
            membership: false,
            frontier_budget: raft_conformance::validate::DEFAULT_BUDGET,
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
    /// Leader transfers the nemesis started.
    pub transfers: u64,
    /// Membership changes the nemesis had a leader append.
    pub changes: u64,
    pub messages: u64,
    pub dropped: u64,
    pub ops_ok: u64,
    pub ops_fail: u64,
    pub ops_info: u64,
    /// Steps of the faulty phase in which a quorum of nodes was up and
    /// connected: the steps the fault schedule left for progress.
    pub quorum_steps: u64,
    /// Of those, the steps at least [`SETTLE_TICKS`] after the last crash,
    /// restart, partition or end of a partition: the calm time of the
    /// schedule, in which a correct cluster serves clients at its
    /// fault-free pace (less loss, duplication and reordering).
    pub calm_steps: u64,
    /// Steps of the quiet phase until a leader led the healed cluster and
    /// every pending operation was answered.
    pub heal_steps: u64,
}

/// The result of one seed.
#[derive(Debug)]
pub struct RunResult {
    pub seed: u64,
    /// The simulator's own check that stopped the run early, and the step.
    pub early: Option<(u64, Violation)>,
    /// The steps with faults and client operations ([`SimConfig::steps`]);
    /// a quiet phase of up to [`QUIET_STEPS`] more follows.
    pub faulty_steps: u64,
    /// Concurrent clients of the run.
    pub clients: usize,
    /// Conformance's check of the run's trace (an error: the trace itself
    /// is malformed).
    pub checked: Result<Checked, String>,
    pub stats: Stats,
    /// The trace: header, then node and client events in one global order.
    pub header: rt::Header,
    pub records: Vec<rt::Record>,
    /// The client history in raft-trace/1 client-event form.
    pub history: Vec<rt::ClientEvent>,
    pub nodes: Vec<u64>,
    /// What the healed cluster failed to do within the quiet phase's bound
    /// (no leader, operations still pending); `None` when it made progress
    /// or the run stopped early.
    pub no_progress: Option<String>,
}

/// The acknowledged-operation floor: one operation per client per this
/// many calm ticks (see [`ack_floor`]).
pub const ACK_FLOOR_TICKS: u64 = 400;

/// The fewest client operations a run must acknowledge: one per client per
/// [`ACK_FLOOR_TICKS`] calm ticks of the faulty phase ([`Stats::calm_steps`]:
/// a quorum up and connected, and [`SETTLE_TICKS`] since the last crash,
/// restart, partition or heal). A correct implementation acknowledges
/// several times more (sim/README.md gives the measured numbers); a run
/// below it fails with "too little progress".
pub fn ack_floor(stats: &Stats, clients: usize) -> u64 {
    stats.calm_steps * clients as u64 / ACK_FLOOR_TICKS
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Where step `step` of a run with `faulty` steps of faults and operations
/// is: past `faulty`, the quiet phase, which `--steps` does not count.
pub fn at_step(step: u64, faulty: u64) -> String {
    if step <= faulty {
        format!("at step {step} of {faulty}")
    } else {
        format!(
            "at step {step}, {} into the quiet phase after the {faulty} steps of faults and \
             operations (up to {QUIET_STEPS} more steps, no faults, no new operations, so that \
             outstanding operations finish)",
            step - faulty
        )
    }
}

/// What a run comes to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Outcome {
    /// Conformance accepts the run, and the simulator's checks agree.
    Valid,
    /// Conformance rejects the run: the rule broken and why.
    Invalid { rule: String, detail: String },
    /// The simulator's own check fired on a run that conformance accepts:
    /// one of the two checkers is wrong.
    Disagreement { invariant: String, detail: String },
    /// Conformance accepts the run, but after the faults ended the healed
    /// cluster elected no leader or left client operations unanswered
    /// within [`QUIET_STEPS`] ticks.
    NoProgress { detail: String },
    /// Conformance accepts the run, but it acknowledged far fewer client
    /// operations than the fault schedule allows ([`ack_floor`]).
    TooLittleProgress { detail: String },
    /// No verdict: a budget ran out.
    Inconclusive { reason: String },
}

impl RunResult {
    /// The run's outcome: conformance's verdict, checked against the
    /// simulator's early stop.
    pub fn outcome(&self) -> Outcome {
        let checked = match &self.checked {
            Ok(c) => c,
            Err(e) => {
                return Outcome::Invalid {
                    rule: "WellFormedTrace".to_string(),
                    detail: e.clone(),
                }
            }
        };
        match (&checked.verdict, &self.early) {
            (Verdict::Invalid { rejection }, _) => Outcome::Invalid {
                rule: rejection.rule.to_string(),
                detail: rejection.to_string().trim_end().to_string(),
            },
            (Verdict::NotLinearizable { explanation }, _) => Outcome::Invalid {
                rule: "Linearizability".to_string(),
                detail: format!(
                    "the client history is not linearizable\n{}",
                    explanation.trim_end()
                ),
            },
            (_, Some((step, v))) => Outcome::Disagreement {
                invariant: v.invariant.to_string(),
                detail: format!(
                    "the simulator's check {} fired {} ({}), but conformance found the trace {}",
                    v.invariant,
                    at_step(*step, self.faulty_steps),
                    v.detail,
                    checked.verdict.name()
                ),
            },
            _ if self.no_progress.is_some() => Outcome::NoProgress {
                detail: self.no_progress.clone().unwrap_or_default(),
            },
            _ if self.stats.ops_ok < ack_floor(&self.stats, self.clients) => {
                Outcome::TooLittleProgress {
                    detail: format!(
                        "{} acknowledged, fewer than the floor of {} for {} over {} calm steps \
                         of the {} faulty ones (a quorum up and connected, {SETTLE_TICKS} ticks \
                         after the last crash, restart, partition or heal; the floor is one \
                         operation per client per {ACK_FLOOR_TICKS} calm ticks)",
                        plural(self.stats.ops_ok, "client operation"),
                        ack_floor(&self.stats, self.clients),
                        plural(self.clients as u64, "client"),
                        self.stats.calm_steps,
                        self.faulty_steps
                    ),
                }
            }
            (Verdict::Inconclusive { reason }, None) => Outcome::Inconclusive {
                reason: reason.clone(),
            },
            (Verdict::Valid, None) => Outcome::Valid,
        }
    }

    /// Writes `dir/trace.ndjson` and `dir/history.ndjson`.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let f = std::fs::File::create(dir.join(TRACE_FILE))?;
        let mut w = rt::TraceWriter::new(f, &self.header)?;
        for r in &self.records {
            w.write(r)?;
        }
        w.flush()?;
        let mut header = rt::Header::new(
            concat!("raft-sim ", env!("CARGO_PKG_VERSION"), " clients"),
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_step_past_steps_is_said_to_be_in_the_quiet_phase() {
        assert_eq!(super::at_step(7, 1500), "at step 7 of 1500");
        let quiet = super::at_step(1552, 1500);
        assert!(
            quiet.starts_with("at step 1552, 52 into the quiet phase after the 1500 steps"),
            "{quiet}"
        );
    }
}
