//! tikv/raft-rs (crates.io `raft` 0.7) behind the simulator's node trait,
//! instrumented from outside the library.
//!
//! raft-rs knows nothing of `raft-trace/1`. The adapter compares the raw
//! node's state (term, vote, role, leader, commit, log, snapshot, read
//! states) before and after every call it makes (`tick`, `step`, `propose`,
//! `read_index`, `advance_append`) and writes the events that explain the
//! change, in the order the format requires (`receive`/`timeout`, `role`,
//! `install`, `truncate`, `append`, `commit`, `read`); `persist`, `send`
//! and `apply` are written where the adapter itself does them (Ready
//! handling). Messages are translated when raft-rs produces them and sent
//! only once the Ready that carries them is durable.
//!
//! Determinism: raft-rs 0.7 draws its randomized election timeout from
//! `rand::thread_rng` in `Raft::reset`, which runs exactly when it calls
//! `become_follower`, `become_candidate` or `become_leader` (and at
//! construction). Each of those changes the term, the role or the known
//! leader, so after every call whose result differs from its start in one
//! of the three (and after `RawNode::new`) the adapter overwrites the timeout
//! with a draw from the node's own seeded RNG
//! (`Raft::set_randomized_election_timeout`). A redraw the three do not
//! show would be a reset the adapter missed: it also overwrites whenever the
//! timeout differs from the one it set last.

mod disk;
pub mod explain;
pub mod host;

use std::sync::Arc;

use raft::eraftpb::{self, Entry, HardState, MessageType};
use raft::{GetEntriesContext, RawNode, ReadOnlyOption, Ready, SnapshotStatus, StateRole};
use raft_sim::node::{self, Addressed, Answer, Envelope, Output, Request, Response, Setup, Status};
use raft_sim::service::{digest, KvService};
use raft_sim::NodeId;
use raft_trace as rt;
use raft_trace::sink::TraceSink;
use raftkv::bugs::Bugs;
use raftkv::core::{Command, Payload};
use raftkv::kv::KvStore;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use disk::{Disk, Write};
use explain::{explain, Call, LogView, Obs, Start};

/// The frontier budget raft-rs runs need: a follower answers an
/// AppendEntries below its commit index either Figure 2's way or raft-rs's
/// (`stale-append-reply`), and only the reply, which leaves with the next
/// durable Ready, tells which; with several such messages in one step the
/// replay keeps one candidate state per combination until the replies show.
pub const FRONTIER_BUDGET: usize = 1 << 13;

/// Mistakes a harness can make, planted to show the checks catch them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HarnessBugs {
    /// The harness writes a Ready's hard state that grants a vote to
    /// another node one Ready late, so the vote leaves before it is durable.
    pub late_hard_state: bool,
}

/// raft-rs with the options the simulator runs it with.
#[derive(Debug, Clone, Copy)]
pub struct RaftRs {
    /// raft-rs `Config::pre_vote`.
    pub pre_vote: bool,
    /// raft-rs `Config::check_quorum`.
    pub check_quorum: bool,
    /// Log compaction every `Setup::snapshot_every` applied entries (and so
    /// snapshots sent to followers that fall behind it).
    pub compaction: bool,
    pub bugs: HarnessBugs,
}

impl Default for RaftRs {
    /// The options `raftcheck sim --impl raft-rs` runs by default:
    /// pre-vote and check-quorum, as for raftkv.
    fn default() -> Self {
        RaftRs {
            pre_vote: true,
            check_quorum: true,
            compaction: true,
            bugs: HarnessBugs::default(),
        }
    }
}

impl RaftRs {
    /// The behaviours beyond Figure 2 this configuration of raft-rs uses,
    /// by their `raft-trace/1` feature names.
    pub fn features(&self) -> Vec<String> {
        let mut f = vec![
            // handle_append_entries: `m.index < committed` -> index = committed
            "stale-append-reply",
            // poll -> VoteResult::Lost -> become_follower(term)
            "lost-election",
            // MsgHeartbeat / MsgHeartbeatResponse
            "heartbeat",
            // commit / commit_term on vote messages, maybe_commit_by_vote
            "commit-any-message",
            // restore: a snapshot the log already matches only commits
            "snapshot-fast-forward",
            // ReadOnlyOption::Safe
            "read-index",
        ];
        if self.pre_vote {
            f.push("pre-vote");
            // step_candidate polls every pre-vote response of its term,
            // an older round's grant too
            f.push("pre-vote-stale-grant");
        }
        if self.check_quorum {
            f.push("check-quorum");
        }
        f.into_iter().map(str::to_string).collect()
    }
}

/// A message between raft-rs nodes, with its `raft-trace/1` form (fixed when
/// the sender produced it, so the receive carries exactly the send's `msg`).
#[derive(Debug, Clone)]
pub struct Msg {
    pub raw: eraftpb::Message,
    pub trace: rt::Message,
}

impl Addressed for Msg {
    fn from(&self) -> NodeId {
        self.raw.from
    }
    fn to(&self) -> NodeId {
        self.raw.to
    }
}

impl node::Implementation for RaftRs {
    type Node = RaftRsNode;

    fn header(
        &self,
        nodes: Vec<NodeId>,
        network: rt::Network,
        params: serde_json::Value,
    ) -> rt::Header {
        host::header(
            concat!(
                "raft-rs 0.7 (crates.io raft) via raft-rs-adapter ",
                env!("CARGO_PKG_VERSION")
            ),
            nodes,
            network,
            params,
            self.features(),
        )
    }

    fn start(&self, setup: &Setup, disk: &mut Disk, trace: Box<dyn TraceSink>) -> RaftRsNode {
        RaftRsNode::start(*self, setup, disk, trace)
    }
}

/// Gives raft-rs messages their `raft-trace/1` form, numbering them from
/// `next_msg`. `handling` is the message the sender was handling when it
/// produced them.
pub fn translate(
    next_msg: &mut u64,
    msgs: Vec<eraftpb::Message>,
    handling: Option<(MessageType, bool)>,
) -> Vec<Msg> {
    msgs.into_iter()
        .map(|raw| {
            *next_msg += 1;
            let mut trace = rt::Message::new(
                *next_msg,
                raw.from,
                raw.to,
                raw.term,
                rpc_of(&raw, handling),
            );
            let vote_type = matches!(
                raw.get_msg_type(),
                MessageType::MsgRequestVote
                    | MessageType::MsgRequestVoteResponse
                    | MessageType::MsgRequestPreVote
                    | MessageType::MsgRequestPreVoteResponse
            );
            if vote_type && (raw.commit != 0 || raw.commit_term != 0) {
                trace.commit = Some(raw.commit);
                trace.commit_term = Some(raw.commit_term);
            }
            Msg { raw, trace }
        })
        .collect()
}

/// What a message means to the simulator's checks.
pub fn envelope(m: &Msg) -> Envelope {
    Envelope {
        term: m.trace.term,
        prospective: matches!(
            m.trace.rpc,
            rt::Rpc::PreVote { .. } | rt::Rpc::PreVoteReply { granted: true }
        ),
        grants_vote: matches!(m.trace.rpc, rt::Rpc::RequestVoteReply { granted: true }),
        acknowledges: match m.trace.rpc {
            rt::Rpc::AppendEntriesReply {
                success: true,
                match_index,
                ..
            } => match_index,
            _ => None,
        },
    }
}

/// A raft-rs node's log, as the explanation of a call reads it.
struct RawLog<'a>(&'a RawNode<Disk>);

impl LogView for RawLog<'_> {
    fn term_at(&self, index: u64) -> u64 {
        self.0.raft.raft_log.term(index).unwrap_or(0)
    }

    fn entries(&self, from: u64, to: u64) -> Vec<Entry> {
        self.0
            .raft
            .raft_log
            .slice(from, to + 1, None, GetEntriesContext::empty(false))
            .expect("entries the log holds")
    }
}

/// One raft-rs node in the simulated cluster.
pub struct RaftRsNode {
    id: NodeId,
    opts: RaftRs,
    raw: RawNode<Disk>,
    service: KvService,
    sink: Box<dyn TraceSink>,
    rng: ChaCha8Rng,
    election_ticks: usize,
    snapshot_every: u64,
    voters: Vec<u64>,
    next_msg: u64,
    next_ctx: u64,
    /// Translated messages waiting for their Ready to be durable.
    outbox: Vec<Msg>,
    /// How many of `raft.msgs` are translated already.
    seen: usize,
    /// The Ready whose writes the simulator is making durable, and them.
    handed: Option<(Ready, Write)>,
    /// Read states of the handed Ready, served once applied.
    read_states: Vec<raft::ReadState>,
    /// Planted bug `late_hard_state`: the hard state not yet written.
    deferred_hs: Option<HardState>,
    /// Snapshots taken, written with the next Ready.
    compactions: Vec<Write>,
    /// The election timeout the adapter set last.
    timeout_set: usize,
}

fn role_of(r: StateRole) -> rt::Role {
    match r {
        StateRole::Follower => rt::Role::Follower,
        StateRole::PreCandidate => rt::Role::PreCandidate,
        StateRole::Candidate => rt::Role::Candidate,
        StateRole::Leader => rt::Role::Leader,
    }
}

/// A read's context as raft-rs carries it (bytes) and as the trace does.
pub fn ctx_bytes(ctx: u64) -> Vec<u8> {
    ctx.to_be_bytes().to_vec()
}

pub fn ctx_number(b: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(b).ok().map(u64::from_be_bytes)
}

/// An entry's contents: raft-rs's empty entry is the new leader's no-op;
/// a client command is its `raft-trace/1` data, as JSON.
pub fn entry_data(e: &Entry) -> rt::EntryData {
    if e.data.is_empty() {
        rt::EntryData::Noop
    } else {
        serde_json::from_slice(&e.data).expect("the adapter's own encoding")
    }
}

pub fn trace_entries(es: &[Entry]) -> Vec<rt::Entry> {
    es.iter()
        .map(|e| rt::Entry {
            term: e.term,
            data: Some(entry_data(e)),
        })
        .collect()
}

/// The entry as raftkv's state machine applies it.
pub fn core_entry(e: &Entry) -> raftkv::core::Entry {
    let payload = match entry_data(e) {
        rt::EntryData::Command { client, req, op } => {
            Payload::Command(Arc::new(Command { client, req, op }))
        }
        _ => Payload::Noop,
    };
    raftkv::core::Entry {
        index: e.index,
        term: e.term,
        payload,
    }
}

/// The `raft-trace/1` body of a raft-rs message. `handling` is the message
/// the sender was handling when raft-rs produced it (its type, and whether
/// its term was below the sender's), which tells what a
/// `MsgAppendResponse` answers.
pub fn rpc_of(m: &eraftpb::Message, handling: Option<(MessageType, bool)>) -> rt::Rpc {
    use MessageType as T;
    match m.get_msg_type() {
        T::MsgAppend => rt::Rpc::AppendEntries {
            prev_index: m.index,
            prev_term: m.log_term,
            commit: m.commit,
            entries: Some(trace_entries(&m.entries)),
            entry_count: None,
            context: None,
        },
        T::MsgAppendResponse => match handling {
            // raft-rs answers a heartbeat of an older term with an append
            // response carrying only its term.
            Some((T::MsgHeartbeat, true)) => rt::Rpc::HeartbeatReply { context: None },
            Some((_, true)) => rt::Rpc::AppendEntriesReply {
                success: false,
                match_index: None,
                hint_index: None,
                hint_term: None,
                context: None,
            },
            // handle_snapshot answers with the index it now holds.
            Some((T::MsgSnapshot, false)) => rt::Rpc::InstallSnapshotReply {
                last_index: m.index,
            },
            _ if m.reject => rt::Rpc::AppendEntriesReply {
                success: false,
                match_index: None,
                hint_index: Some(m.reject_hint),
                hint_term: Some(m.log_term),
                context: None,
            },
            _ => rt::Rpc::AppendEntriesReply {
                success: true,
                match_index: Some(m.index),
                hint_index: None,
                hint_term: None,
                context: None,
            },
        },
        T::MsgRequestVote => rt::Rpc::RequestVote {
            last_index: m.index,
            last_term: m.log_term,
            transfer: false,
        },
        T::MsgRequestVoteResponse => rt::Rpc::RequestVoteReply { granted: !m.reject },
        T::MsgRequestPreVote => rt::Rpc::PreVote {
            last_index: m.index,
            last_term: m.log_term,
        },
        T::MsgRequestPreVoteResponse => rt::Rpc::PreVoteReply { granted: !m.reject },
        T::MsgHeartbeat => rt::Rpc::Heartbeat {
            commit: m.commit,
            context: ctx_number(&m.context),
        },
        T::MsgHeartbeatResponse => rt::Rpc::HeartbeatReply {
            context: ctx_number(&m.context),
        },
        T::MsgSnapshot => {
            let meta = m.get_snapshot().get_metadata();
            rt::Rpc::InstallSnapshot {
                last_index: meta.index,
                last_term: meta.term,
                offset: 0,
                done: true,
                data: None,
            }
        }
        T::MsgTimeoutNow => rt::Rpc::TimeoutNow {},
        other => panic!("raft-rs sent {other:?}, which the adapter does not map"),
    }
}

impl RaftRsNode {
    fn start(opts: RaftRs, setup: &Setup, disk: &mut Disk, sink: Box<dyn TraceSink>) -> Self {
        let host::Boot {
            incarnation,
            kv,
            init,
            ..
        } = host::boot(setup, disk);
        let cfg = raft::Config {
            id: setup.id,
            election_tick: setup.election_ticks as usize,
            heartbeat_tick: setup.heartbeat_ticks as usize,
            applied: kv.applied(),
            // raft-rs bounds a message by bytes and always sends one entry:
            // one byte means one entry per AppendEntries.
            max_size_per_msg: if setup.max_batch <= 1 {
                1
            } else {
                setup.max_batch as u64 * 64
            },
            max_inflight_msgs: setup.max_inflight,
            check_quorum: opts.check_quorum,
            pre_vote: opts.pre_vote,
            read_only_option: ReadOnlyOption::Safe,
            ..Default::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&cfg, disk.clone(), &logger).expect("valid raft-rs config");
        let rng = ChaCha8Rng::seed_from_u64(
            setup.seed ^ setup.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (incarnation << 48),
        );
        let mut n = RaftRsNode {
            id: setup.id,
            opts,
            raw,
            service: KvService::new(setup.id, kv),
            sink,
            rng,
            election_ticks: setup.election_ticks as usize,
            snapshot_every: if opts.compaction {
                setup.snapshot_every
            } else {
                u64::MAX
            },
            voters: setup.peers.clone(),
            next_msg: incarnation << 40,
            next_ctx: incarnation << 40,
            outbox: Vec::new(),
            seen: 0,
            handed: None,
            read_states: Vec::new(),
            deferred_hs: None,
            compactions: Vec::new(),
            timeout_set: 0,
        };
        n.redraw_timeout();
        let post = n.obs().post();
        n.record(rt::Event::Init(init), post);
        n
    }

    fn record(&mut self, ev: rt::Event, post: rt::PostState) {
        self.sink.record(self.id, ev, post);
    }

    /// A new election timeout from the node's seeded RNG (in raft-rs's
    /// range: [election_tick, 2 * election_tick)).
    fn redraw_timeout(&mut self) {
        let t = self
            .rng
            .random_range(self.election_ticks..2 * self.election_ticks);
        self.raw.raft.set_randomized_election_timeout(t);
        self.timeout_set = t;
    }

    fn obs(&self) -> Obs {
        let r = &self.raw.raft;
        let log = &r.raft_log;
        let snap_index = log.first_index() - 1;
        Obs {
            term: r.term,
            vote: (r.vote != 0).then_some(r.vote),
            role: role_of(r.state),
            leader: r.leader_id,
            commit: log.committed,
            last_index: log.last_index(),
            last_term: log.last_term(),
            snap_index,
            snap_term: log.term(snap_index).unwrap_or(0),
            unstable_snap: log
                .unstable_snapshot()
                .as_ref()
                .map(|s| (s.get_metadata().index, s.get_metadata().term)),
        }
    }

    fn term_at(&self, index: u64) -> u64 {
        RawLog(&self.raw).term_at(index)
    }

    fn log_entries(&self, from: u64, to: u64) -> Vec<Entry> {
        RawLog(&self.raw).entries(from, to)
    }

    /// Calls raft-rs (`f`) and writes the events that explain what the call
    /// changed. Returns what `f` returned.
    fn call<R>(&mut self, start: Start, f: impl FnOnce(&mut RawNode<Disk>) -> R) -> R {
        let before = self.obs();
        // Entries above the commit index may be replaced; remember their
        // terms to find where a truncation starts.
        let lo = before.commit.max(before.snap_index) + 1;
        let old_terms: Vec<u64> = (lo..=before.last_index).map(|i| self.term_at(i)).collect();
        let reads_before = self.raw.raft.read_states.len();
        let result = f(&mut self.raw);
        let after = self.obs();
        let new_msgs: Vec<eraftpb::Message> = self.raw.raft.msgs[self.seen..].to_vec();
        self.seen = self.raw.raft.msgs.len();

        let reads: Vec<(u64, Vec<u8>)> = self.raw.raft.read_states[reads_before..]
            .iter()
            .map(|rs| (rs.index, rs.request_ctx.clone()))
            .collect();
        let c = Call {
            start,
            before,
            lo,
            old_terms: &old_terms,
            after,
            new_msgs: &new_msgs,
            reads: &reads,
        };
        let (id, sink) = (self.id, &mut self.sink);
        explain(&c, &RawLog(&self.raw), &mut |ev, post| {
            sink.record(id, ev, post)
        });
        let handling = start.handling();
        let msgs = translate(&mut self.next_msg, new_msgs, handling);
        self.outbox.extend(msgs);
        // raft-rs redrew its election timeout from thread_rng (see the crate
        // documentation): replace it with a seeded draw.
        if (after.term, after.role, after.leader) != (before.term, before.role, before.leader)
            || self.raw.raft.randomized_election_timeout() != self.timeout_set
        {
            self.redraw_timeout();
        }
        result
    }

    /// Sends a translated message: its `send` event, and to the network.
    fn send(&mut self, m: Msg, out: &mut Output<Msg>) {
        let post = self.obs().post();
        self.record(
            rt::Event::Send(rt::MessageEvent {
                msg: m.trace.clone(),
            }),
            post,
        );
        if m.raw.get_msg_type() == MessageType::MsgSnapshot {
            // The transport delivered (or lost) the whole snapshot: the
            // leader probes the follower again either way.
            let to = m.raw.to;
            self.call(Start::Internal, |raw| {
                raw.report_snapshot(to, SnapshotStatus::Finish)
            });
        }
        out.messages.push(m);
    }

    /// Applies committed entries to the state machine.
    fn apply(&mut self, entries: &[Entry], out: &mut Output<Msg>) {
        for ev in host::apply(&mut self.service, entries, out) {
            let post = self.obs().post();
            self.record(ev, post);
        }
    }

    /// Log compaction: a snapshot every `snapshot_every` applied entries,
    /// taken at once in memory and written to disk with the next Ready.
    fn maybe_snapshot(&mut self) -> u64 {
        let applied = self.service.kv().applied();
        let store = self.raw.store();
        if applied < store.snap().0.saturating_add(self.snapshot_every) || applied > store.last() {
            return 0;
        }
        let term = store.term_of(applied).expect("applied entries are stored");
        let s = host::snapshot(applied, term, self.service.kv().snapshot(), &self.voters);
        node::Disk::write(self.raw.mut_store(), Write::Compact(s.clone()));
        self.compactions.push(Write::Compact(s));
        let post = self.obs().post();
        self.record(
            rt::Event::Snapshot(rt::SnapshotEvent {
                index: applied,
                term,
            }),
            post,
        );
        1
    }
}

impl node::Node for RaftRsNode {
    type Message = Msg;
    type Disk = Disk;

    fn envelope(m: &Msg) -> Envelope {
        envelope(m)
    }

    fn tick(&mut self) {
        self.call(Start::Tick, |raw| {
            raw.tick();
        });
    }

    fn step(&mut self, m: Msg) {
        let post = self.obs().post();
        self.record(
            rt::Event::Receive(rt::MessageEvent {
                msg: m.trace.clone(),
            }),
            post,
        );
        let stale = m.raw.term < self.raw.raft.term;
        let t = m.raw.get_msg_type();
        self.call(Start::Receive(t, stale), |raw| {
            // An error is a message raft-rs refuses (e.g. from an unknown
            // peer): nothing happened.
            let _ = raw.step(m.raw);
        });
    }

    fn request(&mut self, r: Request, out: &mut Output<Msg>) {
        let not_leader = |leader: u64| Response {
            client: r.client,
            req: r.req,
            from: r.to,
            answer: Answer::NotLeader((leader != 0).then_some(leader)),
        };
        // Only the leader takes requests: a follower would forward them
        // (MsgPropose, MsgReadIndex), which raft-trace/1 has no read
        // forwarding for.
        if self.raw.raft.state != StateRole::Leader {
            out.responses.push(not_leader(self.raw.raft.leader_id));
            return;
        }
        if let rt::Op::Read { key } = &r.op {
            self.next_ctx += 1;
            let ctx = self.next_ctx;
            self.service.await_read(ctx, r.client, r.req, key.clone());
            // raft-rs drops the read silently until the leader has committed
            // an entry of its term; the client retries.
            self.call(Start::Internal, |raw| raw.read_index(ctx_bytes(ctx)));
            return;
        }
        let data = serde_json::to_vec(&rt::EntryData::Command {
            client: r.client,
            req: r.req,
            op: r.op.clone(),
        })
        .expect("serializable");
        match self.call(Start::Internal, |raw| raw.propose(Vec::new(), data)) {
            Ok(()) => self.service.await_command(r.client, r.req),
            Err(_) => out.responses.push(not_leader(0)),
        }
    }

    fn ready(&mut self) -> Option<Vec<Write>> {
        let mut writes = std::mem::take(&mut self.compactions);
        if self.raw.has_ready() {
            let mut rd = self.raw.ready();
            // ready() took every message raft-rs had queued.
            self.seen = 0;
            self.read_states.extend(rd.take_read_states());
            let snapshot = (!rd.snapshot().is_empty()).then(|| rd.snapshot().clone());
            let mut hard_state = rd.hs().cloned();
            if self.opts.bugs.late_hard_state {
                // BUG (planted, harness): a hard state holding a vote for
                // another node is written one Ready late (the reply granting
                // it leaves with this one).
                match &hard_state {
                    Some(hs) if hs.vote != 0 && hs.vote != self.id => {
                        hard_state = self.deferred_hs.replace(hs.clone());
                    }
                    Some(_) => self.deferred_hs = None,
                    None => hard_state = self.deferred_hs.take(),
                }
            }
            let w = Write::Persist {
                snapshot,
                entries: rd.entries().clone(),
                hard_state,
            };
            writes.push(w.clone());
            self.handed = Some((rd, w));
        }
        (!writes.is_empty()).then_some(writes)
    }

    fn persisted(&mut self, out: &mut Output<Msg>) {
        let Some((mut rd, w)) = self.handed.take() else {
            return;
        };
        // The simulator wrote `w` to the disk; the storage raft-rs reads
        // mirrors it.
        let installed = match &w {
            Write::Persist { snapshot, .. } => snapshot.clone(),
            Write::Compact(_) => None,
        };
        node::Disk::write(self.raw.mut_store(), w);
        let store = self.raw.store();
        let persist = rt::Persist {
            term: store.hard_state.term,
            vote: (store.hard_state.vote != 0).then_some(store.hard_state.vote),
            last_index: store.last(),
        };
        let post = self.obs().post();
        self.record(rt::Event::Persist(persist), post);
        if let Some(s) = installed {
            // The leader's snapshot (the install event was written when
            // raft-rs restored it): the state machine takes its data.
            self.service
                .restore(KvStore::restore(&s.data, Bugs::NONE).expect("leader snapshot decodes"));
            out.installs += 1;
        }
        for m in std::mem::take(&mut self.outbox) {
            self.send(m, out);
        }
        let committed = rd.take_committed_entries();
        self.apply(&committed, out);
        let mut light = self.call(Start::Internal, |raw| raw.advance_append(rd));
        let msgs = translate(&mut self.next_msg, light.take_messages(), None);
        for m in msgs {
            self.send(m, out);
        }
        self.apply(&light.take_committed_entries(), out);
        let applied = self.service.kv().applied();
        self.raw.advance_apply_to(applied);
        for rs in std::mem::take(&mut self.read_states) {
            if let Some(ctx) = ctx_number(&rs.request_ctx) {
                self.service.read_ready(rs.index, ctx);
            }
        }
        self.service.serve_reads(out);
        out.snapshots += self.maybe_snapshot();
    }

    fn status(&self) -> Status {
        let o = self.obs();
        Status {
            term: o.term,
            role: o.role,
            commit: o.commit,
            first_index: o.snap_index + 1,
            last_index: o.last_index,
        }
    }

    fn entry(&self, index: u64) -> Option<(u64, u64)> {
        let o = self.obs();
        if index <= o.snap_index || index > o.last_index {
            return None;
        }
        let e = self.log_entries(index, index).into_iter().next()?;
        Some((e.term, digest(&e.data)))
    }
}
