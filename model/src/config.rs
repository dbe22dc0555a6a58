//! The bounds and options of one model configuration.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::bugs::Bug;
use crate::server::{Rules, UnknownFeature};
use crate::types::{Change, ClientId, Index, Members, Membership, Op, Term};

/// Asks a running check to stop: once raised, no state is within the
/// model's boundary and every actor's step is a no-op, so the checker drains
/// its queue without stepping what is left in it, and ends. (stateright
/// 0.31 checks its own timeout only when a thread runs out of work.) Not
/// part of the configuration's identity: equal and hashed alike always.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// Lets the model step again once the checker's threads have ended (the
    /// counterexample paths are then replayed through it).
    pub fn lower(&self) {
        self.0.store(false, Ordering::Relaxed);
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
    /// Whether a leader may send a follower only part of the entries it
    /// lacks (any number from nextIndex), not always all of them: then a
    /// follower's commit is bounded by its last new entry (Figure 2,
    /// AppendEntries receiver rule 5). See [`crate::actor::Timer::Batch`].
    pub partial_batches: bool,
    /// Also check Progress ([`crate::progress`]): from every state with a
    /// term left and room in the network to campaign, a leader can still be
    /// elected. An exhaustive second pass over the state graph.
    pub progress: bool,
    /// The initial configuration's voters are servers `1..=voters`
    /// (`None`: every server); the others may join by membership changes.
    pub voters: Option<u64>,
    /// The membership changes a leader may propose, each whenever it applies
    /// to its configuration (feature membership; [`crate::rules::membership`]).
    pub changes: Vec<Change>,
    /// A planted bug.
    pub bug: Option<Bug>,
    /// The optional behaviours beyond Figure 2 the servers use, by name
    /// (of [`crate::FEATURES`], in that order): see [`Rules`].
    pub features: Vec<&'static str>,
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
            partial_batches: false,
            progress: false,
            voters: None,
            changes: vec![],
            bug: None,
            features: vec![],
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
        if self.partial_batches {
            f.push_str(" --partial-batches");
        }
        if self.progress {
            f.push_str(" --progress");
        }
        if let Some(v) = self.voters {
            f.push_str(&format!(" --voters {v}"));
        }
        for c in &self.changes {
            f.push_str(&format!(" --change {c}"));
        }
        for name in self.rules().features() {
            f.push_str(&format!(" --feature {name}"));
        }
        if let Some(b) = self.bug {
            f.push_str(&format!(" --bug {b}"));
        }
        f
    }

    /// Whether every server plays the same part, so that a permutation of
    /// server ids maps behaviours to behaviours (symmetry reduction). Not
    /// with membership changes: the initial voters and the changes name
    /// particular servers.
    pub fn symmetric(&self) -> bool {
        self.voters.is_none() && self.changes.is_empty() && !self.features.contains(&"membership")
    }

    /// The rules the servers of this configuration follow.
    pub fn rules(&self) -> Rules {
        let mut rules = Rules {
            bug: self.bug,
            initial: Membership {
                voters: Members::first(self.voters.unwrap_or(self.servers)),
                learners: Members::default(),
                outgoing: Members::default(),
            },
            ..Rules::new(self.servers)
        };
        for name in &self.features {
            rules.with_feature(name).expect("a known feature");
        }
        rules
    }

    /// Turns on the optional behaviour called `name` (one of
    /// [`crate::FEATURES`]) for every server.
    pub fn with_feature(&mut self, name: &str) -> Result<(), UnknownFeature> {
        let mut rules = self.rules();
        rules.with_feature(name)?;
        self.features = rules.features();
        Ok(())
    }

    /// This configuration with the optional behaviours `names` on.
    pub fn featuring(mut self, names: &[&str]) -> Config {
        for name in names {
            self.with_feature(name).expect("a known feature");
        }
        self
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
