//! The trace seam: the one place where the core meets `raft-trace/1`.
//!
//! The rest of the core reports what happened through narrowly named hooks
//! on [`RaftNode::trace`] (`self.trace().sent(&msgs)`,
//! `self.trace().became_leader()`, ...). This module alone maps core types
//! (roles, messages, entries, hard state) to trace types, builds the events
//! and the post state that follows each of them, and hands them to the
//! node's [`TraceSink`]. Without a sink a hook returns at once and builds
//! nothing, so tracing costs one branch.

use raft_trace as rt;

use super::log::Appended;
use super::{
    Body, Entry, Index, Membership, Message, Payload, RaftNode, Recovered, Role, SnapshotMeta, Term,
};

/// The hooks of one node, borrowed for one report.
pub(crate) struct Trace<'a> {
    node: &'a mut RaftNode,
}

impl RaftNode {
    /// The trace seam of this node.
    #[inline]
    pub(crate) fn trace(&mut self) -> Trace<'_> {
        Trace { node: self }
    }
}

impl Trace<'_> {
    // ----- life cycle ------------------------------------------------------

    /// The node started from `rec` (a boot for incarnation 0, otherwise a
    /// restart).
    pub(crate) fn started(mut self, rec: &Recovered) {
        if !self.on() {
            return;
        }
        let n = &*self.node;
        let reason = if n.incarnation == 0 {
            rt::InitReason::Boot
        } else {
            rt::InitReason::Restart
        };
        let ev = rt::Event::Init(rt::Init {
            reason,
            term: rec.hard_state.term,
            vote: rec.hard_state.vote,
            snapshot: rec.snapshot.as_ref().map(|s| rt::SnapshotMeta {
                config: Some(configuration(&s.config)),
                ..snapshot_meta(s.meta)
            }),
            commit: None,
            last_index: n.log.last_index(),
            last_term: n.log.last_term(),
            entries: Some(rec.entries.iter().map(entry).collect()),
        });
        self.record(ev);
    }

    // ----- timers and roles ------------------------------------------------

    /// The election timer fired.
    pub(crate) fn election_timed_out(mut self) {
        self.timed_out(rt::TimerKind::Election);
    }

    /// The heartbeat timer fired.
    pub(crate) fn heartbeat_timed_out(mut self) {
        self.timed_out(rt::TimerKind::Heartbeat);
    }

    /// The node became follower; it was in term `term_before` until now.
    /// A higher term is the reason when the term rose, otherwise the node
    /// discovered the leader of its current term.
    pub(crate) fn became_follower(mut self, term_before: Term) {
        let reason = if self.node.term > term_before {
            rt::RoleReason::HigherTerm
        } else {
            rt::RoleReason::LeaderDiscovered
        };
        self.role_changed(reason);
    }

    /// A follower told by its leader to campaign (a `timeout_now`) became
    /// candidate in the next term.
    pub(crate) fn transfer_campaign(mut self) {
        self.role_changed(rt::RoleReason::Transfer);
    }

    /// A (pre-)candidate that can no longer win (too many refusals) became
    /// follower in its term.
    pub(crate) fn lost_election(mut self) {
        self.role_changed(rt::RoleReason::LostElection);
    }

    /// A leader heard from no quorum within an election timeout and became
    /// follower in its term (check-quorum).
    pub(crate) fn lost_quorum(mut self) {
        self.role_changed(rt::RoleReason::CheckQuorum);
    }

    /// A leader whose removal was committed became follower in its term.
    pub(crate) fn removed(mut self) {
        self.role_changed(rt::RoleReason::Other);
    }

    /// The node became pre-candidate (its election timer fired).
    pub(crate) fn became_pre_candidate(mut self) {
        self.role_changed(rt::RoleReason::ElectionTimeout);
    }

    /// The node became candidate (its election timer fired).
    pub(crate) fn became_candidate(mut self) {
        self.role_changed(rt::RoleReason::ElectionTimeout);
    }

    /// The pre-candidate got pre-votes from a quorum and became candidate.
    pub(crate) fn won_pre_vote(mut self) {
        self.role_changed(rt::RoleReason::PreVoteWon);
    }

    /// The node became leader (it won the election).
    pub(crate) fn became_leader(mut self) {
        self.role_changed(rt::RoleReason::WonElection);
    }

    // ----- messages --------------------------------------------------------

    /// `m` arrived and is about to be handled.
    pub(crate) fn received(mut self, m: &Message) {
        if self.on() {
            self.record(rt::Event::Receive(rt::MessageEvent { msg: message(m) }));
        }
    }

    /// `msgs` were released to the host for sending, in this order.
    pub(crate) fn sent(mut self, msgs: &[Message]) {
        if !self.on() {
            return;
        }
        for m in msgs {
            self.record(rt::Event::Send(rt::MessageEvent { msg: message(m) }));
        }
    }

    // ----- log -------------------------------------------------------------

    /// The leader appended entries from `first` to the end of its log.
    pub(crate) fn appended(mut self, first: Index) {
        if !self.on() {
            return;
        }
        let ev = self.append_event(first);
        self.record(ev);
    }

    /// A follower took the leader's entries as `a` describes; its commit
    /// index was `commit_before` and may since have moved. Reports the
    /// truncation and the append (each with the state right after it, so
    /// with the old commit index) before any commit.
    pub(crate) fn accepted(mut self, a: &Appended, commit_before: Index) {
        if !self.on() {
            return;
        }
        if let Some(from) = a.truncated_from {
            let last_term = self.node.log.term(from - 1).unwrap_or(0);
            self.record_with(rt::Event::Truncate(rt::Truncate { from }), |p| {
                p.last_index = Some(from - 1);
                p.last_term = Some(last_term);
                p.commit = Some(commit_before);
            });
        }
        if let Some(first) = a.appended_from {
            let ev = self.append_event(first);
            self.record_with(ev, |p| p.commit = Some(commit_before));
        }
    }

    /// The commit index advanced.
    pub(crate) fn committed(mut self) {
        if self.on() {
            let index = self.node.log.committed;
            self.record(rt::Event::Commit(rt::Commit { index }));
        }
    }

    /// The host made a Ready durable (the durable hard state and the stable
    /// log end are what it now holds).
    pub(crate) fn persisted(mut self) {
        if !self.on() {
            return;
        }
        let n = &*self.node;
        let ev = rt::Event::Persist(rt::Persist {
            term: n.durable_hs.term,
            vote: n.durable_hs.vote,
            last_index: n.log.stable,
        });
        self.record(ev);
    }

    /// The host applied the committed entry at `index`; `duplicate` when its
    /// state machine did not execute a retried command.
    pub(crate) fn applied(mut self, index: Index, duplicate: bool) {
        if !self.on() {
            return;
        }
        let log = &self.node.log;
        let (term, client, req) = match log.entry(index) {
            Some(e) => match &e.payload {
                Payload::Command(c) => (e.term, Some(c.client), Some(c.req)),
                Payload::Noop | Payload::Config(_) => (e.term, None, None),
            },
            None => (log.term(index).unwrap_or(0), None, None),
        };
        self.record(rt::Event::Apply(rt::Apply {
            index,
            term,
            client,
            req,
            duplicate,
        }));
    }

    // ----- reads -------------------------------------------------------------

    /// The leader hands out read index `index` for a read confirmed by its
    /// heartbeat round `round` (ReadIndex), or without a round: by its
    /// lease (`lease`), or as a cluster of one.
    pub(crate) fn read_served(mut self, index: Index, round: Option<u64>, lease: bool) {
        if self.on() {
            self.record(rt::Event::Read(rt::Read {
                index,
                via: if lease {
                    rt::ReadVia::Lease
                } else {
                    rt::ReadVia::ReadIndex
                },
                context: round,
                client: None,
                req: None,
            }));
        }
    }

    // ----- snapshots -------------------------------------------------------

    /// The host took a snapshot at `meta`; the log prefix is discarded.
    pub(crate) fn snapshot_taken(mut self, meta: SnapshotMeta) {
        if self.on() {
            self.record(rt::Event::Snapshot(snapshot_event(meta)));
        }
    }

    /// A follower installed the leader's snapshot at `meta`.
    pub(crate) fn snapshot_installed(mut self, meta: SnapshotMeta) {
        if self.on() {
            self.record(rt::Event::Install(snapshot_event(meta)));
        }
    }

    // ----- building and recording ------------------------------------------

    #[inline]
    fn on(&self) -> bool {
        self.node.sink.is_some()
    }

    fn timed_out(&mut self, timer: rt::TimerKind) {
        if self.on() {
            self.record(rt::Event::Timeout(rt::Timeout { timer }));
        }
    }

    fn role_changed(&mut self, reason: rt::RoleReason) {
        if self.on() {
            let (role, term) = (role(self.node.role), self.node.term);
            self.record(rt::Event::Role(rt::RoleChange { role, term, reason }));
        }
    }

    /// An append of the log's entries from `first` to its end.
    fn append_event(&self, first: Index) -> rt::Event {
        let log = &self.node.log;
        let entries = (first..=log.last_index())
            .map(|i| entry(log.entry(i).expect("appended entry in the log")))
            .collect();
        rt::Event::Append(rt::Append {
            index: first,
            entries: Some(entries),
            entry_count: None,
        })
    }

    fn record(&mut self, ev: rt::Event) {
        self.record_with(ev, |_| {});
    }

    /// Records an event whose post state differs from the current one (an
    /// intermediate step of a compound update).
    fn record_with(&mut self, ev: rt::Event, patch: impl FnOnce(&mut rt::PostState)) {
        let mut post = post_state(self.node);
        patch(&mut post);
        let id = self.node.id();
        if let Some(s) = self.node.sink.as_mut() {
            s.record(id, ev, post);
        }
    }
}

/// The state a node reports after each event.
fn post_state(n: &RaftNode) -> rt::PostState {
    let snap = n.log.snapshot_meta();
    rt::PostState {
        term: Some(n.term),
        vote: Some(n.vote),
        role: Some(role(n.role)),
        leader: Some(n.leader),
        commit: Some(n.log.committed),
        applied: Some(n.applied_reported),
        last_index: Some(n.log.last_index()),
        last_term: Some(n.log.last_term()),
        snapshot_index: Some(snap.index),
        snapshot_term: Some(snap.term),
    }
}

// ----- core types in trace form ------------------------------------------

fn role(r: Role) -> rt::Role {
    match r {
        Role::Follower => rt::Role::Follower,
        Role::PreCandidate => rt::Role::PreCandidate,
        Role::Candidate => rt::Role::Candidate,
        Role::Leader => rt::Role::Leader,
    }
}

fn snapshot_meta(m: SnapshotMeta) -> rt::SnapshotMeta {
    rt::SnapshotMeta {
        index: m.index,
        term: m.term,
        config: None,
    }
}

fn snapshot_event(m: SnapshotMeta) -> rt::SnapshotEvent {
    rt::SnapshotEvent {
        index: m.index,
        term: m.term,
    }
}

/// A log entry in trace form.
pub fn entry(e: &Entry) -> rt::Entry {
    rt::Entry {
        term: e.term,
        data: Some(match &e.payload {
            Payload::Noop => rt::EntryData::Noop,
            Payload::Command(c) => rt::EntryData::Command {
                client: c.client,
                req: c.req,
                op: c.op.clone(),
            },
            Payload::Config(c) => {
                let c = configuration(&c.membership);
                rt::EntryData::Config {
                    voters: Some(c.voters),
                    learners: c.learners,
                    outgoing_voters: None,
                    data: None,
                }
            }
        }),
    }
}

/// A configuration in trace form.
fn configuration(m: &Membership) -> rt::Configuration {
    rt::Configuration {
        voters: m.voters.iter().copied().collect(),
        learners: (!m.learners.is_empty()).then(|| m.learners.iter().copied().collect()),
        outgoing_voters: None,
    }
}

/// A message in trace form; the sender's send and the receiver's receive
/// both use this, so their fields are identical.
pub fn message(m: &Message) -> rt::Message {
    let rpc = match &m.body {
        Body::RequestVote {
            last_index,
            last_term,
            transfer,
        } => rt::Rpc::RequestVote {
            last_index: *last_index,
            last_term: *last_term,
            transfer: *transfer,
        },
        Body::TimeoutNow => rt::Rpc::TimeoutNow {},
        Body::RequestVoteReply { granted } => rt::Rpc::RequestVoteReply { granted: *granted },
        Body::PreVote {
            last_index,
            last_term,
        } => rt::Rpc::PreVote {
            last_index: *last_index,
            last_term: *last_term,
        },
        Body::PreVoteReply { granted } => rt::Rpc::PreVoteReply { granted: *granted },
        Body::AppendEntries {
            prev_index,
            prev_term,
            commit,
            entries,
            read_ctx,
        } => rt::Rpc::AppendEntries {
            prev_index: *prev_index,
            prev_term: *prev_term,
            commit: *commit,
            entries: Some(entries.iter().map(entry).collect()),
            entry_count: None,
            // A ReadIndex round (0: none).
            context: (*read_ctx > 0).then_some(*read_ctx),
        },
        Body::AppendEntriesReply {
            success,
            index,
            hint_term,
            read_ctx,
            ..
        } => {
            let context = (*read_ctx > 0).then_some(*read_ctx);
            if *success {
                rt::Rpc::AppendEntriesReply {
                    success: true,
                    match_index: Some(*index),
                    hint_index: None,
                    hint_term: None,
                    context,
                }
            } else {
                rt::Rpc::AppendEntriesReply {
                    success: false,
                    match_index: None,
                    hint_index: Some(*index),
                    // 0: the follower's log ends before the leader's prev.
                    hint_term: (*hint_term > 0).then_some(*hint_term),
                    context,
                }
            }
        }
        Body::InstallSnapshot {
            meta, offset, done, ..
        } => rt::Rpc::InstallSnapshot {
            last_index: meta.index,
            last_term: meta.term,
            offset: *offset,
            done: *done,
            data: None,
        },
        Body::InstallSnapshotReply { last_index } => rt::Rpc::InstallSnapshotReply {
            last_index: *last_index,
        },
    };
    rt::Message::new(m.id, m.from, m.to, m.term, rpc)
}
