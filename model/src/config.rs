//! The bounds and options of one model configuration.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::bugs::Bug;
use crate::server::{Rules, UnknownFeature};
use crate::types::{ClientId, Index, Op, Term};

/// Asks a running check to stop: once raised, no state is within the
/// model's boundary, so the checker drains its queue and ends. (stateright
/// 0.31 checks its own timeout only when a thread runs out of work.) Not
/// part of the configuration's identity: equal and hashed alike always.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl PartialEq for StopFlag {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for StopFlag {}
impl std::hash::Hash for StopFlag {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// How the network treats messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum NetworkKind {
    /// FIFO per pair of actors, no duplication.
    Ordered,
    /// Any order, each message delivered at most once.
    #[default]
    Unordered,
    /// Any order, and a message may be delivered again and again.
    Duplicating,
}

impl NetworkKind {
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::Ordered => "ordered",
            NetworkKind::Unordered => "unordered",
            NetworkKind::Duplicating => "duplicating",
        }
    }
}

impl std::str::FromStr for NetworkKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ordered" => Ok(NetworkKind::Ordered),
            "unordered" => Ok(NetworkKind::Unordered),
            "duplicating" => Ok(NetworkKind::Duplicating),
            _ => Err(format!(
                "unknown network {s:?}; expected ordered, unordered or duplicating"
            )),
        }
    }
}

/// One bounded configuration of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// Number of servers (ids 1..=servers).
    pub servers: u64,
    /// Number of clients (ids 1..=clients).
    pub clients: u64,
    /// Operations each client performs, one after the other ([`client_op`]).
    pub ops: u64,
    /// No server starts an election beyond this term.
    pub max_term: Term,
    /// States where a log is longer than this are not explored.
    pub max_log: Index,
    /// How many servers may be down at the same time (crash then recover).
    pub max_crashes: usize,
    pub network: NetworkKind,
    /// Whether the network may lose messages.
    pub lossy: bool,
    /// A server snapshots once this many applied entries are not yet in its
    /// snapshot (0: never).
    pub snapshot_after: u64,
    /// For non-duplicating networks: states with more messages in flight
    /// are not explored (otherwise repeated heartbeats are unbounded).
    pub max_in_flight: usize,
    /// How many times a client retries one request after a timeout.
    pub max_retries: u64,
    /// A planted bug.
    pub bug: Option<Bug>,
    /// [`Rules::stale_append_reply`] (feature `stale-append-reply`).
    pub stale_append_reply: bool,
    /// [`Rules::lost_election`] (feature `lost-election`).
    pub lost_election: bool,
    /// [`Rules::pre_vote`] (feature `pre-vote`).
    pub pre_vote: bool,
    /// [`Rules::heartbeat`] (feature `heartbeat`).
    pub heartbeat: bool,
    /// [`Rules::check_quorum`] (feature `check-quorum`).
    pub check_quorum: bool,
    /// [`Rules::read_index`] (feature `read-index`).
    pub read_index: bool,
    /// [`Rules::snapshot_fast_forward`] (feature `snapshot-fast-forward`).
    pub snapshot_fast_forward: bool,
    /// [`Rules::leader_transfer`] (feature `leader-transfer`).
    pub leader_transfer: bool,
    /// [`Rules::commit_any_message`] (feature `commit-any-message`).
    pub commit_any_message: bool,
    /// Raised to stop a running check early.
    pub stop: StopFlag,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            servers: 3,
            clients: 1,
            ops: 1,
            max_term: 2,
            max_log: 2,
            max_crashes: 0,
            network: NetworkKind::Unordered,
            lossy: false,
            snapshot_after: 0,
            max_in_flight: 8,
            max_retries: 2,
            bug: None,
            stale_append_reply: false,
            lost_election: false,
            pre_vote: false,
            heartbeat: false,
            check_quorum: false,
            read_index: false,
            snapshot_fast_forward: false,
            leader_transfer: false,
            commit_any_message: false,
            stop: StopFlag::default(),
        }
    }
}

impl Config {
    /// The flags of `raftcheck check` / `explore` that select exactly this
    /// configuration.
    pub fn to_flags(&self) -> String {
        let mut f = format!(
            "--servers {} --clients {} --ops {} --max-term {} --max-log {} --max-crashes {} --network {}",
            self.servers,
            self.clients,
            self.ops,
            self.max_term,
            self.max_log,
            self.max_crashes,
            self.network.name()
        );
        if self.lossy {
            f.push_str(" --lossy");
        }
        if self.snapshot_after > 0 {
            f.push_str(&format!(" --snapshot-after {}", self.snapshot_after));
        }
        if self.network != NetworkKind::Duplicating {
            f.push_str(&format!(" --max-in-flight {}", self.max_in_flight));
        }
        f.push_str(&format!(" --max-retries {}", self.max_retries));
        for name in self.rules().features() {
            f.push_str(&format!(" --feature {name}"));
        }
        if let Some(b) = self.bug {
            f.push_str(&format!(" --bug {b}"));
        }
        f
    }

    /// The rules the servers of this configuration follow.
    pub fn rules(&self) -> Rules {
        Rules {
            bug: self.bug,
            stale_append_reply: self.stale_append_reply,
            lost_election: self.lost_election,
            pre_vote: self.pre_vote,
            heartbeat: self.heartbeat,
            check_quorum: self.check_quorum,
            read_index: self.read_index,
            snapshot_fast_forward: self.snapshot_fast_forward,
            leader_transfer: self.leader_transfer,
            commit_any_message: self.commit_any_message,
            ..Rules::new(self.servers)
        }
    }

    /// Turns on the optional behaviour called `name` (one of
    /// [`crate::FEATURES`]) for every server.
    pub fn with_feature(&mut self, name: &str) -> Result<(), UnknownFeature> {
        let mut rules = self.rules();
        rules.with_feature(name)?;
        self.stale_append_reply = rules.stale_append_reply;
        self.lost_election = rules.lost_election;
        self.pre_vote = rules.pre_vote;
        self.heartbeat = rules.heartbeat;
        self.check_quorum = rules.check_quorum;
        self.read_index = rules.read_index;
        self.snapshot_fast_forward = rules.snapshot_fast_forward;
        self.leader_transfer = rules.leader_transfer;
        self.commit_any_message = rules.commit_any_message;
        Ok(())
    }

    /// The operation number `i` (0-based) of `client`.
    pub fn op(&self, client: ClientId, i: u64) -> Op {
        client_op(client, i)
    }
}

/// The operations clients perform: client `c` writes `c`, reads, then
/// compare-and-sets `c` to `c + 10`, and repeats with larger values.
pub fn client_op(client: ClientId, i: u64) -> Op {
    let round = i / 3;
    let v = client + 20 * round;
    match i % 3 {
        0 => Op::Write(v),
        1 => Op::Read,
        _ => Op::Cas {
            from: v,
            to: v + 10,
        },
    }
}
