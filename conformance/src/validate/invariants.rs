//! The cluster as the trace shows it, and the global Raft invariants checked
//! over what is known after every event: Election Safety, at most one vote
//! per term per node, Log Matching, Leader Completeness, State Machine
//! Safety, commit index never decreasing, committed entries never changing,
//! no truncation below the commit index, apply in order, durability of
//! what a node acknowledges, and a leader's commit counting its own copy
//! only once it is durable.
//!
//! These are properties of whole runs, independent of how an implementation
//! takes its steps; whether each step is one the specification allows is the
//! replay's business (see `super::replay`).
//!
//! Bad input never crashes the checks. The terms and indexes they compute
//! with are bounded as in the replay (at most [`MAX_NUMBER`], so that no sum
//! overflows; beyond it the run is inconclusive), as is an append that
//! counts its entries without listing them ([`MAX_ENTRY_COUNT`]); an append
//! at index 0 is invalid. Entries a node holds without the trace showing
//! their terms (a restart that does not list its log, a trace that starts in
//! the middle of a run) are held as a count, not one slot each, and loops
//! over indexes visit only entries whose terms are known.

use std::collections::BTreeMap;

use raft_trace::*;

use super::reads::{Facts, Run, Witness};
use super::replay::{MAX_ENTRY_COUNT, MAX_NUMBER};
use super::Violation;

/// Why the invariant checks stopped a run.
#[derive(Debug)]
pub enum Stop {
    /// A global invariant is broken.
    Violation(Violation),
    /// The trace's numbers are beyond what the checks compute with.
    Inconclusive(String),
}

impl From<Violation> for Stop {
    fn from(v: Violation) -> Self {
        Stop::Violation(v)
    }
}

/// The nodes' views by id. A run has a handful of nodes and each event
/// looks its node up several times: a list searched in order is quicker
/// than a tree for that.
#[derive(Debug, Default)]
struct NodeViews(Vec<(NodeId, NodeView)>);

impl NodeViews {
    /// The views of `nodes`, nothing known of any.
    fn of(nodes: &[NodeId]) -> Self {
        let mut all = NodeViews::default();
        for &node in nodes {
            all.add(node);
        }
        all
    }

    /// Adds `node` with nothing known of it, if it is not there yet.
    fn add(&mut self, node: NodeId) {
        if self.get(&node).is_none() {
            self.0.push((node, NodeView::new()));
        }
    }

    fn get(&self, node: &NodeId) -> Option<&NodeView> {
        self.0.iter().find(|(n, _)| n == node).map(|(_, v)| v)
    }

    fn get_mut(&mut self, node: &NodeId) -> Option<&mut NodeView> {
        self.0.iter_mut().find(|(n, _)| n == node).map(|(_, v)| v)
    }
}

impl std::ops::Index<&NodeId> for NodeViews {
    type Output = NodeView;

    /// The view of a node the step added (as a map's index, it panics on
    /// one that is not there).
    fn index(&self, node: &NodeId) -> &NodeView {
        self.get(node).expect("node registered in step")
    }
}

/// What the trace has shown of one node.
#[derive(Debug, Clone)]
struct NodeView {
    running: bool,
    term: Term,
    role: Role,
    commit: Index,
    applied: Index,
    snapshot: (Index, Term),
    /// The entries after the snapshot up to this index (at least the
    /// snapshot's index) are in the log, with terms the trace never showed:
    /// they are held as this count, not one slot each.
    unknown_to: Index,
    /// Terms of the entries after `unknown_to` (`None`: not observed).
    log: Vec<Option<Term>>,
    /// The last `persist` event, when the emitter writes them.
    durable: Option<Persist>,
    /// A `gap` was declared: order-based checks are off for this node.
    uncertain: bool,
    /// The node restarted and no commit event or post has shown its commit
    /// index since: it may have recovered one from disk (up to what was
    /// committed before), so it may apply what some node committed.
    recovered_commit: bool,
    /// While it leads: the confirmation of its reads (`super::reads`).
    reads: Witness,
    /// While it leads: what its followers acknowledged in its term.
    acks: Acks,
}

/// The entries a leader's followers acknowledged (successful AppendEntries
/// replies it received) in one term: with its own durable log, what a
/// commit of that term may count.
#[derive(Debug, Clone, Default)]
struct Acks {
    term: Term,
    /// Follower -> highest index acknowledged.
    matched: BTreeMap<NodeId, Index>,
    /// A success without its `match_index` was received: what it
    /// acknowledged is unknown, so commits of the term are not counted.
    unknown: bool,
}

impl NodeView {
    fn new() -> Self {
        NodeView {
            running: false,
            term: 0,
            role: Role::Follower,
            commit: 0,
            applied: 0,
            snapshot: (0, 0),
            unknown_to: 0,
            log: Vec::new(),
            durable: None,
            uncertain: false,
            recovered_commit: false,
            reads: Witness::default(),
            acks: Acks::default(),
        }
    }

    fn last_index(&self) -> Index {
        self.unknown_to + self.log.len() as u64
    }

    /// The term of the entry at `index`, if known (`Some(0)` for index 0).
    fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.0 {
            return Some(self.snapshot.1);
        }
        if index < self.snapshot.0 || index <= self.unknown_to || index > self.last_index() {
            return None;
        }
        self.log[(index - self.unknown_to - 1) as usize]
    }

    /// Keeps the entries up to `last` (and the snapshot).
    fn truncate_to(&mut self, last: Index) {
        if last <= self.unknown_to {
            self.log.clear();
            self.unknown_to = last.max(self.snapshot.0);
        } else {
            self.log.truncate((last - self.unknown_to) as usize);
        }
    }

    /// Drops the entries up to `index`, which a snapshot now covers; the
    /// log then ends at `index` or later.
    fn compact_to(&mut self, index: Index) {
        if index >= self.last_index() {
            self.log.clear();
            self.unknown_to = index;
        } else if index > self.unknown_to {
            self.log.drain(..(index - self.unknown_to) as usize);
            self.unknown_to = index;
        }
    }
}

/// The invariant checker for one run.
pub struct Invariants {
    observes_persist: bool,
    /// Without `apply` events, what is applied is only known to be at most
    /// the commit index.
    observes_apply: bool,
    /// Without `commit` events or a `commit` post field, the commit index
    /// is unknown (not 0).
    observes_commit: bool,
    observes_log: bool,
    /// Event types whose absence the checks below must allow for when the
    /// header does not declare them (SCHEMA's "emit less" table): without
    /// `init` a node's restart is implicit, without `truncate` an append
    /// below the log's end removes what follows, without `install` an
    /// append past the log's end follows entries a snapshot brought, and
    /// without `commit` events the commit index shows only in posts.
    observes_init: bool,
    observes_truncate: bool,
    observes_install: bool,
    observes_commit_events: bool,
    /// Without `append` events a log grows unseen: its length is known only
    /// where a post or a commit shows it.
    observes_append: bool,
    /// The header's features (`None`: not declared, any may be used).
    features: Option<Vec<String>>,
    /// Whether `send` and `receive` are declared (reads' rounds show).
    observes_messages: bool,
    nodes: NodeViews,
    /// The leader of each term.
    leaders: BTreeMap<Term, NodeId>,
    /// The vote each node cast in each term.
    votes: ahash::AHashMap<(NodeId, Term), NodeId>,
    /// Entries known to be committed: index -> term.
    committed: BTreeMap<Index, Term>,
    /// For each committed index, the lowest term in which a node is seen
    /// holding it as committed. The entry was committed in that term or an
    /// earlier one (a node learns commits from leaders of its term or
    /// older), so Leader Completeness requires it of leaders of later terms
    /// only; a leader of an earlier term may lack it even when a merged
    /// trace shows its election after the commit.
    committed_by: BTreeMap<Index, Term>,
    /// Log Matching, inductively: the term of the entry before (index, term).
    predecessor: ahash::AHashMap<(Index, Term), Term>,
    /// The fewest voters of any configuration the run has shown (the
    /// header's initial one, and with feature membership or config-on-apply
    /// every configuration entry appended since): a majority of the
    /// configuration a leader uses is at least a majority of that many.
    fewest_voters: usize,
    /// Feature membership or config-on-apply, declared or given.
    membership: bool,
}

impl Invariants {
    /// The checks of a run with `header`, and `features` given beside the
    /// header's.
    pub fn new(header: &Header, features: &[String]) -> Self {
        let events = &header.observes.events;
        let membership = header
            .features
            .iter()
            .flatten()
            .chain(features)
            .any(|f| f == "membership" || f == "config-on-apply");
        Invariants {
            fewest_voters: header.voters.as_ref().unwrap_or(&header.nodes).len(),
            membership,
            observes_persist: events.contains(&EventType::Persist),
            observes_apply: events.contains(&EventType::Apply),
            observes_commit: events.contains(&EventType::Commit)
                || header.observes.state.contains(&StateField::Commit),
            observes_init: events.contains(&EventType::Init),
            observes_truncate: events.contains(&EventType::Truncate),
            observes_install: events.contains(&EventType::Install),
            observes_commit_events: events.contains(&EventType::Commit),
            observes_append: events.contains(&EventType::Append),
            observes_log: [EventType::Init, EventType::Append, EventType::Truncate]
                .iter()
                .all(|e| events.contains(e)),
            features: header.features.clone(),
            observes_messages: events.contains(&EventType::Send)
                && events.contains(&EventType::Receive),
            nodes: NodeViews::of(&header.nodes),
            leaders: BTreeMap::new(),
            votes: ahash::AHashMap::new(),
            committed: BTreeMap::new(),
            committed_by: BTreeMap::new(),
            predecessor: ahash::AHashMap::new(),
        }
    }

    /// Checks one event and folds it into what is known.
    pub fn step(&mut self, e: &NodeEvent) -> Result<(), Stop> {
        in_range(e).map_err(|why| {
            Stop::Inconclusive(format!("node {}: {why} at seq {}", e.node, e.seq))
        })?;
        let node = e.node;
        self.nodes.add(node);
        let view = &self.nodes[&node];
        if !view.running && !matches!(e.event, Event::Init(_) | Event::Gap(_)) {
            // A trace may start in the middle of a run: the first event of a
            // node that was never initialised makes it running, unknown state.
            // Without `init` events a restart is not written: the node's
            // next event says it is up again, its volatile state unknown.
            if (view.durable.is_none() && view.log.is_empty() && view.term == 0)
                || !self.observes_init
            {
                let v = self.node(node);
                v.running = true;
                v.uncertain = true;
                // A restart recovers only the durable term: one the node
                // held in memory when it crashed may be gone.
                v.term = v.durable.as_ref().map_or(0, |d| d.term);
                v.role = Role::Follower;
            } else {
                return Err(Violation::new(
                    "EventWhileCrashed",
                    format!("node {node} to restart (init) before it takes steps"),
                    format!("a {} event after a crash", e.event.event_type().as_str()),
                )
                .into());
            }
        }
        match &e.event {
            Event::Init(init) => self.init(node, init)?,
            Event::Crash(_) => self.node(node).running = false,
            Event::Role(r) => self.role(node, r.role, r.term)?,
            Event::Timeout(_) => {}
            Event::Send(m) => {
                self.send(node, &m.msg)?;
                let f = self.facts(node);
                self.node(node).reads.sent(&m.msg, &f);
            }
            Event::Receive(m) => {
                let f = self.facts(node);
                self.node(node).reads.received(&m.msg, &f);
                self.received(node, &m.msg);
            }
            Event::Read(r) => {
                let f = self.facts(node);
                let run = Run {
                    servers: self.fewest_voters,
                    features: self.features.as_deref(),
                    observes_messages: self.observes_messages,
                };
                let v = self.nodes.get_mut(&node).expect("node registered in step");
                let index_term = v.term_at(r.index);
                v.reads.read(node, r, &f, index_term, &run)?;
            }
            Event::Append(a) => {
                if self.membership {
                    let voters = a.entries.iter().flatten().filter_map(|e| match &e.data {
                        Some(raft_trace::EntryData::Config {
                            voters: Some(v), ..
                        }) => Some(v.len()),
                        _ => None,
                    });
                    self.fewest_voters = voters.fold(self.fewest_voters, usize::min);
                }
                self.append(node, a)?
            }
            Event::Truncate(t) => self.truncate(node, t.from)?,
            Event::Persist(p) => self.persist(node, p)?,
            Event::Commit(c) => self.commit(node, c.index)?,
            Event::Apply(a) => self.apply(node, a, e.post.as_ref().and_then(|p| p.commit))?,
            Event::Snapshot(s) => self.snapshot(
                node,
                s.index,
                s.term,
                e.post.as_ref().and_then(|p| p.commit),
            )?,
            Event::Install(s) => self.install(node, s.index, s.term)?,
            Event::Gap(_) => {
                let v = self.node(node);
                v.uncertain = true;
                v.reads.lost_events();
            }
        }
        if let Some(post) = &e.post {
            self.post(node, post)?;
        }
        Ok(())
    }

    /// What the read checks need to know of `node` now.
    fn facts(&self, node: NodeId) -> Facts {
        let v = &self.nodes[&node];
        Facts {
            term: v.term,
            leader: v.role == Role::Leader,
        }
    }

    fn node(&mut self, node: NodeId) -> &mut NodeView {
        self.nodes.get_mut(&node).expect("node registered in step")
    }

    fn init(&mut self, node: NodeId, init: &Init) -> Result<(), Violation> {
        let observes_persist = self.observes_persist;
        let v = self.node(node);
        if let (true, InitReason::Restart, Some(d)) = (observes_persist, init.reason, &v.durable) {
            let lost_vote = init.term == d.term && init.vote != d.vote;
            if init.term < d.term || lost_vote {
                return Err(Violation::new(
                    "PersistedStateLost",
                    format!(
                        "term {} and vote {:?} (persisted before the crash)",
                        d.term, d.vote
                    ),
                    format!(
                        "restart recovered term {} and vote {:?}",
                        init.term, init.vote
                    ),
                ));
            }
        }
        let snapshot = init.snapshot.as_ref().map_or((0, 0), |s| (s.index, s.term));
        // Entries the init does not list: their terms are unknown but the
        // last one's.
        let (unknown_to, mut log): (Index, Vec<Option<Term>>) = match &init.entries {
            Some(entries) => (snapshot.0, entries.iter().map(|e| Some(e.term)).collect()),
            None if init.last_index > snapshot.0 => (init.last_index - 1, vec![None]),
            None => (snapshot.0, Vec::new()),
        };
        if let Some(last) = log.last_mut() {
            *last = Some(init.last_term);
        }
        let durable = Persist {
            term: init.term,
            vote: init.vote,
            last_index: init.last_index,
        };
        *v = NodeView {
            running: true,
            term: init.term,
            role: Role::Follower,
            commit: snapshot.0,
            applied: snapshot.0,
            snapshot,
            unknown_to,
            log,
            durable: Some(durable),
            uncertain: v.uncertain,
            recovered_commit: init.reason == InitReason::Restart,
            reads: Witness::default(),
            acks: Acks::default(),
        };
        if let Some(vote) = init.vote {
            self.vote(node, init.term, vote)?;
        }
        Ok(())
    }

    /// A vote that binds `node` for good: durable (`persist`, `init`) or
    /// sent (a granted reply, or a candidate's request, which carries its
    /// vote for itself). A vote held only in memory binds nothing until
    /// then: a crash forgets it, and the node may vote again in that term
    /// (see [`Invariants::volatile_vote`]).
    fn vote(&mut self, node: NodeId, term: Term, candidate: NodeId) -> Result<(), Violation> {
        self.volatile_vote(node, term, candidate)?;
        self.votes.insert((node, term), candidate);
        Ok(())
    }

    /// A vote in `node`'s memory (a `post` state) must not contradict a
    /// vote of that term that already binds it.
    fn volatile_vote(&self, node: NodeId, term: Term, candidate: NodeId) -> Result<(), Violation> {
        match self.votes.get(&(node, term)) {
            Some(&prev) if prev != candidate => Err(Violation::new(
                "OneVotePerTerm",
                format!("node {node} votes once in term {term} (it voted for {prev})"),
                format!("a vote for {candidate} in term {term}"),
            )),
            _ => Ok(()),
        }
    }

    fn term(&mut self, node: NodeId, term: Term) -> Result<(), Violation> {
        let v = self.node(node);
        if term < v.term {
            return Err(Violation::new(
                "TermNeverDecreases",
                format!("term >= {}", v.term),
                format!("term {term}"),
            ));
        }
        v.term = term;
        Ok(())
    }

    fn role(&mut self, node: NodeId, role: Role, term: Term) -> Result<(), Violation> {
        self.term(node, term)?;
        self.node(node).role = role;
        if role == Role::Leader {
            self.leader(node, term)?;
        }
        Ok(())
    }

    /// Election Safety and Leader Completeness, when `node` leads `term`.
    fn leader(&mut self, node: NodeId, term: Term) -> Result<(), Violation> {
        if let Some(&other) = self.leaders.get(&term) {
            if other != node {
                return Err(Violation::new(
                    "ElectionSafety",
                    format!("at most one leader in term {term} (node {other} was elected)"),
                    format!("node {node} became leader in term {term} too"),
                ));
            }
            return Ok(());
        }
        self.leaders.insert(term, node);
        let v = &self.nodes[&node];
        if v.uncertain {
            return Ok(());
        }
        for (&index, &t) in self.committed.range(v.snapshot.0 + 1..) {
            if self.committed_by.get(&index).is_some_and(|&by| by >= term) {
                continue;
            }
            let has = if index > v.last_index() {
                Some(None)
            } else {
                v.term_at(index).map(Some)
            };
            if let Some(found) = has {
                if found != Some(t) {
                    return Err(Violation::new(
                        "LeaderCompleteness",
                        format!(
                            "the leader of term {term} holds committed entry {index} (term {t})"
                        ),
                        match found {
                            Some(x) => format!("node {node} has term {x} at index {index}"),
                            None => format!("node {node}'s log ends at {}", v.last_index()),
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    fn send(&mut self, node: NodeId, msg: &Message) -> Result<(), Violation> {
        // A vote that has left binds the node, durable or not.
        // Feature late-self-vote: a candidate's request may leave before its
        // own vote is durable; that vote binds it only once it is persisted.
        let late_self_vote = self
            .features
            .as_ref()
            .is_none_or(|f| f.iter().any(|x| x == "late-self-vote"));
        match &msg.rpc {
            Rpc::RequestVoteReply { granted: true } => self.vote(node, msg.term, msg.to)?,
            Rpc::RequestVote { .. } if !late_self_vote => self.vote(node, msg.term, node)?,
            _ => {}
        }
        let v = &self.nodes[&node];
        let Some(d) = v.durable.as_ref().filter(|_| self.observes_persist) else {
            return Ok(());
        };
        match &msg.rpc {
            // A durable higher term also protects the vote: the node can never
            // vote again in the vote's term, even after a crash.
            Rpc::RequestVoteReply { granted: true }
                if d.term < msg.term || (d.term == msg.term && d.vote != Some(msg.to)) =>
            {
                Err(Violation::new(
                    "VotePersistedBeforeReply",
                    format!(
                        "term {} and vote for {} (or a higher term) durable before the vote is sent",
                        msg.term, msg.to
                    ),
                    format!("durable state: term {}, vote {:?}", d.term, d.vote),
                ))
            }
            // A candidate's request carries its vote for itself (Raft
            // Figure 2: currentTerm and votedFor reach stable storage before
            // the node answers or sends RPCs): lost in a crash, it would let
            // the node vote again in the term it asked for.
            // (Feature late-self-vote: the term must be durable, the vote
            // may follow.)
            Rpc::RequestVote { .. }
                if d.term < msg.term
                    || (!late_self_vote && d.term == msg.term && d.vote != Some(node)) =>
            {
                Err(Violation::new(
                    "VotePersistedBeforeReply",
                    format!(
                        "term {} and the candidate's vote for itself durable before it asks for votes",
                        msg.term
                    ),
                    format!("durable state: term {}, vote {:?}", d.term, d.vote),
                ))
            }
            Rpc::AppendEntriesReply {
                success: true,
                match_index: Some(m),
                ..
            } if *m > d.last_index && !v.uncertain => Err(Violation::new(
                "EntriesPersistedBeforeAck",
                format!("entries up to {m} durable before they are acknowledged"),
                format!("durable log ends at {}", d.last_index),
            )),
            // Pre-votes carry the term the node would campaign in, not its
            // own; a forwarded proposal is no Raft RPC.
            Rpc::PreVote { .. } | Rpc::PreVoteReply { .. } | Rpc::Propose { .. } => Ok(()),
            // Figure 2: currentTerm reaches stable storage before the node
            // responds to RPCs (and a leader's term did before it asked for
            // votes). A node that crashed now would come back in an older
            // term, in which a stale leader's AppendEntries could remove
            // entries it acknowledged in this one. (A `gap` may hide the
            // persist.)
            _ if d.term < msg.term && !v.uncertain => Err(Violation::new(
                "TermPersistedBeforeSend",
                format!("term {} durable before a message of that term is sent", msg.term),
                format!("durable term {}", d.term),
            )),
            _ => Ok(()),
        }
    }

    /// Notes an acknowledgement a leader receives in its term.
    fn received(&mut self, node: NodeId, msg: &Message) {
        let Rpc::AppendEntriesReply {
            success: true,
            match_index,
            ..
        } = &msg.rpc
        else {
            return;
        };
        let v = self.node(node);
        if v.role != Role::Leader || msg.term != v.term || msg.to != node {
            return;
        }
        if v.acks.term != v.term {
            v.acks = Acks {
                term: v.term,
                ..Acks::default()
            };
        }
        match match_index {
            Some(m) => {
                let a = v.acks.matched.entry(msg.from).or_insert(0);
                *a = (*a).max(*m);
            }
            None => v.acks.unknown = true,
        }
    }

    /// Figure 2 with Raft thesis §10.2.1: a leader commits an entry stored
    /// on a majority, and its own copy counts only once it is durable (its
    /// appends may leave before its own write, but a crash before that
    /// write loses the entry). Checked where the trace shows all of it: the
    /// leader's writes, the replies it received and their match indexes. An
    /// entry some node already holds as committed is not recounted (a
    /// leader may learn a commit from a message, `commit-any-message`).
    fn leader_commit_counted(&self, node: NodeId, index: Index) -> Result<(), Violation> {
        let v = &self.nodes[&node];
        let Some(d) = v.durable.as_ref() else {
            return Ok(());
        };
        if !self.observes_persist
            || !self.observes_messages
            || v.role != Role::Leader
            || v.uncertain
            || index <= v.commit
            || (v.acks.term == v.term && v.acks.unknown)
        {
            return Ok(());
        }
        let term = v.term_at(index);
        if term.is_none() || self.committed.get(&index).copied() == term {
            return Ok(());
        }
        let followers: Vec<NodeId> = if v.acks.term == v.term {
            v.acks
                .matched
                .iter()
                .filter(|&(_, &m)| m >= index)
                .map(|(&f, _)| f)
                .collect()
        } else {
            vec![]
        };
        let own = d.last_index >= index;
        let quorum = self.fewest_voters / 2 + 1;
        if followers.len() + usize::from(own) >= quorum {
            return Ok(());
        }
        let of = if self.membership {
            format!(
                "of the {} voters of the smallest configuration the run has shown",
                self.fewest_voters
            )
        } else {
            format!("of {}", self.fewest_voters)
        };
        Err(Violation::new(
            "CommitRule",
            format!(
                "a leader commits index {index} once a majority ({quorum} {of}) stores it, \
                 its own copy counting only once durable (Raft thesis 10.2.1)",
            ),
            format!(
                "leader {node} of term {} commits index {index} with acknowledgements from \
                 {followers:?} and its durable log ending at {}",
                v.term, d.last_index
            ),
        ))
    }

    fn append(&mut self, node: NodeId, a: &Append) -> Result<(), Violation> {
        if a.index == 0 {
            return Err(Violation::new(
                "AppendAtLogEnd",
                "entries appended at index 1 or above (log indexes start at 1)",
                "append at index 0",
            ));
        }
        let v = &self.nodes[&node];
        let last = v.last_index();
        if a.index <= last && !self.observes_truncate && !v.uncertain {
            // The truncation this append implies was not written.
            self.truncate(node, a.index)?;
        } else if a.index > last + 1 && !self.observes_install && !v.uncertain {
            // Entries up to the append came with a snapshot not written.
            let v = self.node(node);
            v.log.clear();
            v.unknown_to = a.index - 1;
        }
        let v = &self.nodes[&node];
        let uncertain = v.uncertain;
        if a.index != v.last_index() + 1 && !uncertain {
            return Err(Violation::new(
                "AppendAtLogEnd",
                format!(
                    "entries appended at index {} (after the last entry)",
                    v.last_index() + 1
                ),
                format!("append at index {}", a.index),
            ));
        }
        let count = a
            .entries
            .as_ref()
            .map(|e| e.len() as u64)
            .or(a.entry_count)
            .unwrap_or(0);
        let terms: Vec<Option<Term>> = match &a.entries {
            Some(entries) => entries.iter().map(|e| Some(e.term)).collect(),
            None => vec![None; count as usize],
        };
        let mut prev = if uncertain {
            None
        } else {
            v.term_at(a.index - 1)
        };
        for (k, term) in terms.iter().enumerate() {
            let index = a.index + k as u64;
            if let (Some(p), Some(t)) = (prev, term) {
                match self.predecessor.insert((index, *t), p) {
                    Some(q) if q != p => {
                        return Err(Violation::new(
                            "LogMatching",
                            format!("entry {index} of term {t} follows an entry of term {q}, as in other logs"),
                            format!("on node {node} it follows an entry of term {p}"),
                        ))
                    }
                    _ => {}
                }
            }
            prev = *term;
        }
        let v = self.node(node);
        if uncertain {
            v.truncate_to(a.index.saturating_sub(1).max(v.snapshot.0));
            // Entries the trace did not show lie before the append: a few
            // are held one slot each; a long stretch (or one after nothing
            // known) makes the whole log before the append unknown.
            let missing = (a.index - 1).saturating_sub(v.last_index());
            if missing > 0 {
                if v.log.is_empty() || missing > MAX_ENTRY_COUNT {
                    v.log.clear();
                    v.unknown_to = a.index - 1;
                } else {
                    v.log.extend(std::iter::repeat_n(None, missing as usize));
                }
            }
        }
        v.log.extend(terms);
        Ok(())
    }

    fn truncate(&mut self, node: NodeId, from: Index) -> Result<(), Violation> {
        let v = self.node(node);
        if v.role == Role::Leader {
            return Err(Violation::new(
                "LeaderAppendOnly",
                format!("the leader of term {} never removes entries", v.term),
                format!("node {node} truncated its log from {from}"),
            ));
        }
        if from <= v.commit && !v.uncertain {
            return Err(Violation::new(
                "NoTruncationOfCommitted",
                format!("entries up to the commit index {} kept", v.commit),
                format!("truncation from {from}"),
            ));
        }
        v.truncate_to(from.saturating_sub(1));
        if let Some(d) = v.durable.as_mut() {
            d.last_index = d.last_index.min(from.saturating_sub(1));
        }
        Ok(())
    }

    fn persist(&mut self, node: NodeId, p: &Persist) -> Result<(), Violation> {
        // A write may complete after the node moved on to a newer term: the
        // durable term only has to keep up with the previous durable one.
        if let Some(d) = &self.nodes[&node].durable {
            if p.term < d.term {
                return Err(Violation::new(
                    "TermNeverDecreases",
                    format!("a durable term >= {}", d.term),
                    format!("durable term {}", p.term),
                ));
            }
        }
        if let Some(vote) = p.vote {
            self.vote(node, p.term, vote)?;
        }
        self.node(node).durable = Some(p.clone());
        Ok(())
    }

    /// Notes that `node`, in its current term, holds `index` as committed.
    fn committed_in(&mut self, node: NodeId, index: Index) {
        let term = self.nodes[&node].term;
        let by = self.committed_by.entry(index).or_insert(term);
        *by = (*by).min(term);
    }

    /// Records that `node` holds entry `index` as committed.
    fn committed(&mut self, node: NodeId, index: Index) -> Result<(), Violation> {
        let Some(term) = self.nodes[&node].term_at(index) else {
            return Ok(());
        };
        if index == 0 {
            return Ok(());
        }
        self.committed_in(node, index);
        match self.committed.insert(index, term) {
            Some(t) if t != term => Err(Violation::new(
                "StateMachineSafety",
                format!("the committed entry at index {index} is of term {t} on every node"),
                format!("node {node} commits an entry of term {term} at index {index}"),
            )),
            _ => Ok(()),
        }
    }

    fn commit(&mut self, node: NodeId, index: Index) -> Result<(), Violation> {
        self.leader_commit_counted(node, index)?;
        self.node(node).recovered_commit = false;
        let v = &self.nodes[&node];
        if index < v.commit && !v.uncertain {
            return Err(Violation::new(
                "CommitNeverDecreases",
                format!("commit index >= {}", v.commit),
                format!("commit index {index}"),
            ));
        }
        if index > v.last_index() && !v.uncertain && !self.observes_append {
            // Entries appended without an event: terms unknown.
            let missing = (index - v.last_index()) as usize;
            self.node(node)
                .log
                .extend(std::iter::repeat_n(None, missing));
        }
        let v = &self.nodes[&node];
        if index > v.last_index() && !v.uncertain {
            return Err(Violation::new(
                "CommitWithinLog",
                format!("commit index <= the last log index {}", v.last_index()),
                format!("commit index {index}"),
            ));
        }
        // Only entries whose terms are known can be recorded as committed.
        let from = v.commit.max(v.unknown_to) + 1;
        for i in from..=index.min(v.last_index()) {
            self.committed(node, i)?;
        }
        self.node(node).commit = index;
        Ok(())
    }

    fn apply(
        &mut self,
        node: NodeId,
        a: &Apply,
        post_commit: Option<Index>,
    ) -> Result<(), Violation> {
        // Without commit events, the commit index is known only where a
        // post shows it: the apply's own post, not an earlier one (the
        // commit may have moved in between without an event).
        let v = &self.nodes[&node];
        let (observes_commit, commit) = if self.observes_commit_events {
            (self.observes_commit, v.commit)
        } else {
            (
                post_commit.is_some(),
                v.commit.max(post_commit.unwrap_or(0)),
            )
        };
        if !v.uncertain {
            if a.index != v.applied + 1 {
                return Err(Violation::new(
                    "ApplyInOrder",
                    format!("the next entry applied is {}", v.applied + 1),
                    format!("entry {} applied", a.index),
                ));
            }
            // After a restart whose commit index the trace has not shown,
            // an entry some node committed (with this term: checked below
            // as State Machine Safety) may be applied.
            let recovered = v.recovered_commit && self.committed.contains_key(&a.index);
            if a.index > commit && observes_commit && !recovered {
                return Err(Violation::new(
                    "ApplyOnlyCommitted",
                    format!("applied entries are committed (commit index {commit})"),
                    format!("entry {} applied", a.index),
                ));
            }
        }
        if let Some(t) = v.term_at(a.index) {
            if t != a.term {
                return Err(Violation::new(
                    "ApplyWhatIsLogged",
                    format!("the entry at {} has term {t} in node {node}'s log", a.index),
                    format!("an entry of term {} applied", a.term),
                ));
            }
        }
        self.committed_in(node, a.index);
        match self.committed.insert(a.index, a.term) {
            Some(t) if t != a.term => {
                return Err(Violation::new(
                    "StateMachineSafety",
                    format!(
                        "every node applies the entry of term {t} at index {}",
                        a.index
                    ),
                    format!("node {node} applies an entry of term {} there", a.term),
                ))
            }
            _ => {}
        }
        self.node(node).applied = a.index;
        Ok(())
    }

    fn snapshot(
        &mut self,
        node: NodeId,
        index: Index,
        term: Term,
        post_commit: Option<Index>,
    ) -> Result<(), Violation> {
        let (observes_apply, observes_commit_events) =
            (self.observes_apply, self.observes_commit_events);
        let v = self.node(node);
        // What the node has applied: its apply events; without them, at
        // most its commit index, which without commit events is known only
        // where a post shows it (the snapshot's own post, as for an apply).
        let applied = if observes_apply {
            Some(v.applied)
        } else if observes_commit_events {
            Some(v.commit)
        } else {
            post_commit.map(|c| c.max(v.commit))
        };
        if let Some(applied) = applied.filter(|&a| index > a && !v.uncertain) {
            return Err(Violation::new(
                "SnapshotOfApplied",
                format!("a snapshot covers only applied entries (applied {applied})"),
                format!("snapshot up to {index}"),
            ));
        }
        if let Some(t) = v.term_at(index) {
            if t != term && index != 0 {
                return Err(Violation::new(
                    "SnapshotMatchesLog",
                    format!("the entry at {index} has term {t}"),
                    format!("snapshot of term {term}"),
                ));
            }
        }
        v.compact_to(index);
        v.snapshot = (index, term);
        Ok(())
    }

    fn install(&mut self, node: NodeId, index: Index, term: Term) -> Result<(), Violation> {
        let v = &self.nodes[&node];
        if index < v.applied && !v.uncertain {
            return Err(Violation::new(
                "SnapshotNeverRegresses",
                format!(
                    "an installed snapshot covers at least the applied entries (applied {})",
                    v.applied
                ),
                format!("snapshot up to {index} installed"),
            ));
        }
        self.committed_in(node, index);
        match self.committed.insert(index, term) {
            Some(t) if t != term && index > 0 => {
                return Err(Violation::new(
                    "StateMachineSafety",
                    format!("the committed entry at {index} is of term {t}"),
                    format!("node {node} installed a snapshot ending in term {term}"),
                ))
            }
            _ => {}
        }
        let v = self.node(node);
        // Figure 13: "If existing log entry has same index and term as
        // snapshot's last included entry, retain log entries following it"
        // (the same snapshot installed again keeps the log as it is).
        if v.term_at(index) == Some(term) {
            if index > v.snapshot.0 {
                v.compact_to(index);
            }
        } else {
            v.log.clear();
            v.unknown_to = index;
        }
        v.snapshot = (index, term);
        v.commit = v.commit.max(index);
        v.applied = v.applied.max(index);
        Ok(())
    }

    fn post(&mut self, node: NodeId, post: &PostState) -> Result<(), Violation> {
        if let Some(term) = post.term {
            self.term(node, term)?;
        }
        if let (Some(Some(vote)), Some(term)) = (post.vote, post.term) {
            self.volatile_vote(node, term, vote)?;
        }
        if let (Some(Role::Leader), Some(term)) = (post.role, post.term) {
            self.leader(node, term)?;
        }
        if let Some(role) = post.role {
            self.node(node).role = role;
        }
        // Without install events, a post whose snapshot covers more than the
        // node applied shows a snapshot installed from a leader (a node
        // compacts only what it applied): it is checked and taken as the
        // install the trace did not show.
        if let (false, Some(index), Some(term)) = (
            self.observes_install,
            post.snapshot_index,
            post.snapshot_term,
        ) {
            let v = &self.nodes[&node];
            if index > v.snapshot.0 && index > v.applied && !v.uncertain {
                self.install(node, index, term)?;
            }
        }
        let observes_log = self.observes_log;
        let v = &self.nodes[&node];
        if let (Some(last), false, false) = (post.last_index, self.observes_append, v.uncertain) {
            // Entries appended without an event: terms unknown but the last.
            if last > v.last_index() {
                let missing = (last - v.last_index()) as usize;
                let v = self.node(node);
                v.log.extend(std::iter::repeat_n(None, missing));
                if let (Some(t), Some(slot)) = (post.last_term, v.log.last_mut()) {
                    *slot = Some(t);
                }
            }
        }
        let v = &self.nodes[&node];
        if let (Some(last), true, false) = (post.last_index, observes_log, v.uncertain) {
            if last != v.last_index() {
                return Err(Violation::new(
                    "PostStateMatchesEvents",
                    format!(
                        "last_index {} (from the init, append and truncate events)",
                        v.last_index()
                    ),
                    format!("post.last_index {last}"),
                ));
            }
        }
        if let Some(commit) = post.commit {
            self.node(node).recovered_commit = false;
            let v = &self.nodes[&node];
            if commit != v.commit {
                // A commit the emitter does not write as an event, or one that
                // went backwards: the same checks as a commit event.
                self.commit(node, commit)?;
            }
        }
        Ok(())
    }
}

/// Checks that the event's numbers are ones the checks can compute with:
/// the terms and indexes they add to are at most [`MAX_NUMBER`], an append
/// counts at most [`MAX_ENTRY_COUNT`] entries it does not list. Returns
/// what is wrong otherwise.
fn in_range(e: &NodeEvent) -> Result<(), String> {
    let post_commit = ("post.commit", e.post.as_ref().and_then(|p| p.commit));
    let numbers = match &e.event {
        Event::Init(i) => [
            ("init.last_index", Some(i.last_index)),
            ("init.snapshot.index", i.snapshot.as_ref().map(|s| s.index)),
            post_commit,
        ],
        Event::Append(a) => [("append.index", Some(a.index)), post_commit, ("", None)],
        Event::Truncate(t) => [("truncate.from", Some(t.from)), post_commit, ("", None)],
        Event::Commit(c) => [("commit.index", Some(c.index)), post_commit, ("", None)],
        Event::Apply(a) => [("apply.index", Some(a.index)), post_commit, ("", None)],
        Event::Snapshot(s) => [("snapshot.index", Some(s.index)), post_commit, ("", None)],
        Event::Install(s) => [("install.index", Some(s.index)), post_commit, ("", None)],
        _ => [post_commit, ("", None), ("", None)],
    };
    for (field, value) in numbers {
        if let Some(value) = value.filter(|&v| v > MAX_NUMBER) {
            return Err(format!(
                "{field} {value} is beyond the terms and indexes the checks compute with \
                 (at most 2^62)"
            ));
        }
    }
    if let Event::Append(Append {
        entries: None,
        entry_count: Some(n),
        ..
    }) = &e.event
    {
        if *n > MAX_ENTRY_COUNT {
            return Err(format!(
                "an append of {n} entries without their data is more than the checks hold \
                 in one event (at most {MAX_ENTRY_COUNT})"
            ));
        }
    }
    Ok(())
}
