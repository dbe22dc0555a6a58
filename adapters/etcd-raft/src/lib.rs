//! etcd's raft package (go.etcd.io/etcd/raft 3.4, Go) behind the
//! simulator's node trait, instrumented from outside the library.
//!
//! Each node incarnation is a Go driver process (`go/src/etcdraftdriver`)
//! hosting one etcd `RawNode` over a `MemoryStorage`. The driver reports,
//! after every call, the node's raw state (term, vote, role, leader, commit,
//! log window, snapshot), the messages and read states the call queued; this
//! crate writes the events that explain the change with the raft-rs
//! adapter's explanation ([`raft_rs_adapter::explain`]) and translation
//! ([`raft_rs_adapter::translate`]): etcd's raftpb and raft-rs's eraftpb
//! share their wire format (field numbers, message type numbers), so the
//! driver's protobuf bytes decode as raft-rs messages and entries.
//!
//! Determinism: see the driver's documentation. The driver sets every
//! election timeout from a seeded RNG; this crate seeds it per node and
//! incarnation.

pub mod driver;

use std::path::PathBuf;

use raft::eraftpb::{self, Entry, HardState, MessageType, Snapshot};
use raft_rs_adapter::explain::{explain, Call, LogView, Obs, Start};
use raft_rs_adapter::host;
use raft_rs_adapter::{ctx_bytes, ctx_number, envelope, translate, Disk, Msg, Write};
use raft_sim::node::{self, Answer, Envelope, Output, Request, Response, Setup, Status};
use raft_sim::service::{digest, KvService};
use raft_sim::NodeId;
use raft_trace as rt;
use raft_trace::sink::TraceSink;
use raftkv::bugs::Bugs;
use raftkv::kv::KvStore;
use serde_json::json;

use driver::{decode, encode, hex, unhex, Driver, GoObs};
pub use driver::{locate, DriverError, BUILD_HINT, DRIVER_ENV};

/// The frontier budget etcd runs need: like raft-rs, etcd answers an
/// AppendEntries below its commit index with its commit index
/// (`stale-append-reply`), and only the reply tells which way it went.
pub const FRONTIER_BUDGET: usize = raft_rs_adapter::FRONTIER_BUDGET;

/// Mistakes a harness can make, planted to show the checks catch them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HarnessBugs {
    /// The harness writes a Ready's hard state that grants a vote to
    /// another node one Ready late, so the vote leaves before it is durable.
    pub late_hard_state: bool,
    /// The harness applies a Ready's newest entry when it is the one just
    /// above the commit index, before it is committed.
    pub apply_before_commit: bool,
}

/// etcd raft with the options the simulator runs it with.
#[derive(Debug, Clone)]
pub struct EtcdRaft {
    /// The driver binary.
    pub driver: PathBuf,
    /// etcd `Config.PreVote`.
    pub pre_vote: bool,
    /// etcd `Config.CheckQuorum`.
    pub check_quorum: bool,
    /// Log compaction every `Setup::snapshot_every` applied entries.
    pub compaction: bool,
    pub bugs: HarnessBugs,
}

impl EtcdRaft {
    /// The default options (pre-vote, check-quorum, compaction) with the
    /// given driver.
    pub fn new(driver: PathBuf) -> Self {
        EtcdRaft {
            driver,
            pre_vote: true,
            check_quorum: true,
            compaction: true,
            bugs: HarnessBugs::default(),
        }
    }

    /// The behaviours beyond Figure 2 this configuration of etcd raft uses,
    /// by their `raft-trace/1` feature names.
    pub fn features(&self) -> Vec<String> {
        let mut f = vec![
            // handleAppendEntries: `m.Index < r.raftLog.committed` -> reply
            // with the commit index
            "stale-append-reply",
            // poll -> quorum.VoteLost -> becomeFollower(r.Term, None)
            "lost-election",
            // MsgHeartbeat / MsgHeartbeatResp
            "heartbeat",
            // restore: a snapshot the log already matches only commits
            "snapshot-fast-forward",
            // ReadOnlySafe
            "read-index",
        ];
        if self.pre_vote {
            f.push("pre-vote");
            // stepCandidate polls every pre-vote response of its term, an
            // older round's grant too
            f.push("pre-vote-stale-grant");
        }
        if self.check_quorum {
            f.push("check-quorum");
        }
        f.into_iter().map(str::to_string).collect()
    }
}

impl node::Implementation for EtcdRaft {
    type Node = EtcdNode;

    fn header(
        &self,
        nodes: Vec<NodeId>,
        network: rt::Network,
        params: serde_json::Value,
    ) -> rt::Header {
        host::header(
            concat!(
                "etcd raft 3.4 (go.etcd.io/etcd/raft, Debian golang-etcd-server-dev) via etcd-raft-adapter ",
                env!("CARGO_PKG_VERSION")
            ),
            nodes,
            network,
            params,
            self.features(),
        )
    }

    fn start(&self, setup: &Setup, disk: &mut Disk, trace: Box<dyn TraceSink>) -> EtcdNode {
        EtcdNode::start(self, setup, disk, trace)
    }
}

fn obs_of(o: &GoObs) -> Obs {
    Obs {
        term: o.term,
        vote: (o.vote != 0).then_some(o.vote),
        role: match o.role {
            0 => rt::Role::Follower,
            1 => rt::Role::Candidate,
            2 => rt::Role::Leader,
            3 => rt::Role::PreCandidate,
            r => panic!("etcd raft state {r}"),
        },
        leader: o.lead,
        commit: o.commit,
        last_index: o.last,
        last_term: o.last_term,
        snap_index: o.snap,
        snap_term: o.snap_term,
        unstable_snap: o.unstable,
    }
}

/// The log after a call, from the driver's answer.
struct Window {
    /// The index of `terms[0]`.
    from: u64,
    terms: Vec<u64>,
    /// The index of `entries[0]`.
    first_new: u64,
    entries: Vec<Entry>,
}

impl LogView for Window {
    fn term_at(&self, index: u64) -> u64 {
        index
            .checked_sub(self.from)
            .and_then(|i| self.terms.get(i as usize))
            .copied()
            .unwrap_or(0)
    }

    fn entries(&self, from: u64, to: u64) -> Vec<Entry> {
        assert!(from >= self.first_new, "entries the driver reported");
        let a = (from - self.first_new) as usize;
        self.entries[a..=(to - self.first_new) as usize].to_vec()
    }
}

/// A read state: the read index and the request's context.
type ReadState = (u64, Vec<u8>);

/// A Ready handed to the simulator: its write (with its new entries), its
/// committed entries and its read states.
type Handed = (Write, Vec<Entry>, Vec<ReadState>);

/// One etcd raft node in the simulated cluster.
pub struct EtcdNode {
    id: NodeId,
    bugs: HarnessBugs,
    drv: Driver,
    service: KvService,
    sink: Box<dyn TraceSink>,
    snapshot_every: u64,
    voters: Vec<u64>,
    next_msg: u64,
    next_ctx: u64,
    /// The state after the last call.
    obs: Obs,
    /// The log the node holds (in memory): the entries after `base`, with
    /// their terms and content digests.
    base: u64,
    log: Vec<(u64, u64)>,
    /// What the node has persisted (a copy of its disk).
    store: Disk,
    /// Translated messages waiting for their Ready to be durable.
    outbox: Vec<Msg>,
    /// Read states reported by calls, not yet taken by a Ready.
    reads: Vec<ReadState>,
    /// The Ready handed to the simulator.
    handed: Option<Handed>,
    /// Planted bug `late_hard_state`: the hard state not yet written.
    deferred_hs: Option<HardState>,
    /// Snapshots taken, written with the next Ready.
    compactions: Vec<Write>,
}

impl EtcdNode {
    fn start(opts: &EtcdRaft, setup: &Setup, disk: &mut Disk, sink: Box<dyn TraceSink>) -> Self {
        let host::Boot {
            incarnation,
            kv,
            init,
            ..
        } = host::boot(setup, disk);
        let mut drv = Driver::spawn(&opts.driver);
        let hs = &disk.hard_state;
        let req = json!({
            "op": "start",
            "node": setup.id,
            "peers": setup.peers,
            "seed": setup.seed ^ setup.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (incarnation << 48),
            "pre_vote": opts.pre_vote,
            "check_quorum": opts.check_quorum,
            // etcd bounds a message by bytes and always sends one entry:
            // one byte means one entry per MsgApp.
            "max_size": if setup.max_batch <= 1 { 1 } else { setup.max_batch as u64 * 64 },
            "max_inflight": setup.max_inflight,
            "election": setup.election_ticks,
            "heartbeat": setup.heartbeat_ticks,
            "applied": kv.applied(),
            "hard_state": encode(hs),
            "snapshot": if disk.snap().0 > 0 { encode(&disk.snapshot) } else { String::new() },
            "entries": disk.entries.iter().map(encode).collect::<Vec<_>>(),
        });
        let a = drv.call(&req);
        let obs = obs_of(&a.obs.expect("start reports the state"));
        let (si, _) = disk.snap();
        let log = disk
            .entries
            .iter()
            .map(|e| (e.term, digest(&e.data)))
            .collect();
        let mut n = EtcdNode {
            id: setup.id,
            bugs: opts.bugs,
            drv,
            service: KvService::new(setup.id, kv),
            sink,
            snapshot_every: if opts.compaction {
                setup.snapshot_every
            } else {
                u64::MAX
            },
            voters: setup.peers.clone(),
            next_msg: incarnation << 40,
            next_ctx: incarnation << 40,
            obs,
            base: si,
            log,
            store: disk.clone(),
            outbox: Vec::new(),
            reads: Vec::new(),
            handed: None,
            deferred_hs: None,
            compactions: Vec::new(),
        };
        assert_eq!(
            (n.base + n.log.len() as u64, si),
            (obs.last_index, obs.snap_index),
            "etcd holds what the disk holds"
        );
        let post = n.obs.post();
        n.record(rt::Event::Init(init), post);
        n
    }

    fn record(&mut self, ev: rt::Event, post: rt::PostState) {
        self.sink.record(self.id, ev, post);
    }

    /// Runs one driver call (`req`) and writes the events that explain what
    /// it changed; its messages wait in the outbox. Returns whether etcd
    /// refused it (a dropped proposal).
    fn call(&mut self, start: Start, req: serde_json::Value) -> bool {
        let a = self.drv.call(&req);
        let before = self.obs;
        let after = obs_of(&a.obs.expect("a call reports the state"));
        let new_msgs: Vec<eraftpb::Message> = a.msgs.iter().map(|m| decode(m)).collect();
        let entries: Vec<Entry> = a.new.iter().map(|e| decode(e)).collect();
        let first_new = after.last_index + 1 - entries.len() as u64;
        let reads: Vec<(u64, Vec<u8>)> = a.reads.iter().map(|r| (r.index, unhex(&r.ctx))).collect();
        let window = Window {
            from: a.lo - 1,
            terms: a.after,
            first_new,
            entries,
        };
        let c = Call {
            start,
            before,
            lo: a.lo,
            old_terms: &a.before,
            after,
            new_msgs: &new_msgs,
            reads: &reads,
        };
        let (id, sink) = (self.id, &mut self.sink);
        explain(&c, &window, &mut |ev, post| sink.record(id, ev, post));
        self.obs = after;
        self.sync_log(&window);
        self.reads.extend(reads);
        let msgs = translate(&mut self.next_msg, new_msgs, start.handling());
        self.outbox.extend(msgs);
        a.failed
    }

    /// Brings the log mirror up to date with a call's window.
    fn sync_log(&mut self, w: &Window) {
        let snap = self.obs.snap_index;
        if snap > self.base {
            let drop = ((snap - self.base) as usize).min(self.log.len());
            self.log.drain(..drop);
            self.base = snap;
        }
        let keep = w.first_new.saturating_sub(1).saturating_sub(self.base) as usize;
        self.log.truncate(keep);
        self.log
            .extend(w.entries.iter().map(|e| (e.term, digest(&e.data))));
        assert_eq!(
            self.base + self.log.len() as u64,
            self.obs.last_index,
            "node {}: the log mirror follows etcd's log",
            self.id
        );
    }

    fn node_req(&self, op: &str) -> serde_json::Value {
        json!({"op": op, "node": self.id})
    }

    /// Sends a translated message: its `send` event, and to the network.
    fn send(&mut self, m: Msg, out: &mut Output<Msg>) {
        let post = self.obs.post();
        self.record(
            rt::Event::Send(rt::MessageEvent {
                msg: m.trace.clone(),
            }),
            post,
        );
        if m.raw.get_msg_type() == MessageType::MsgSnapshot {
            // The transport delivered (or lost) the whole snapshot: the
            // leader probes the follower again either way.
            let req = json!({"op": "report_snapshot", "node": self.id, "to": m.raw.to});
            self.call(Start::Internal, req);
        }
        out.messages.push(m);
    }

    /// Applies committed entries to the state machine.
    fn apply(&mut self, entries: &[Entry], out: &mut Output<Msg>) {
        for ev in host::apply(&mut self.service, entries, out) {
            let post = self.obs.post();
            self.record(ev, post);
        }
    }

    /// Log compaction: a snapshot every `snapshot_every` applied entries,
    /// taken at once in memory and written to disk with the next Ready.
    fn maybe_snapshot(&mut self) -> u64 {
        // (The commit index bounds it only under the planted bug
        // apply_before_commit.)
        let applied = self.service.kv().applied().min(self.obs.commit);
        let (si, _) = self.store.snap();
        if applied < si.saturating_add(self.snapshot_every) || applied > self.store.last() {
            return 0;
        }
        let term = self
            .store
            .term_of(applied)
            .expect("applied entries are stored");
        let data = self.service.kv().snapshot();
        let s = host::snapshot(applied, term, data.clone(), &self.voters);
        let a = self.drv.call(&json!({
            "op": "compact", "node": self.id, "index": applied, "data": hex(&data),
        }));
        self.obs = obs_of(&a.obs.expect("compact reports the state"));
        let empty = Window {
            from: 0,
            terms: Vec::new(),
            first_new: self.obs.last_index + 1,
            entries: Vec::new(),
        };
        self.sync_log(&empty);
        node::Disk::write(&mut self.store, Write::Compact(s.clone()));
        self.compactions.push(Write::Compact(s));
        let post = self.obs.post();
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

impl node::Node for EtcdNode {
    type Message = Msg;
    type Disk = Disk;

    fn envelope(m: &Msg) -> Envelope {
        envelope(m)
    }

    fn tick(&mut self) {
        let req = self.node_req("tick");
        self.call(Start::Tick, req);
    }

    fn step(&mut self, m: Msg) {
        let post = self.obs.post();
        self.record(
            rt::Event::Receive(rt::MessageEvent {
                msg: m.trace.clone(),
            }),
            post,
        );
        let stale = m.raw.term < self.obs.term;
        let t = m.raw.get_msg_type();
        let req = json!({"op": "step", "node": self.id, "msg": encode(&m.raw)});
        self.call(Start::Receive(t, stale), req);
    }

    fn request(&mut self, r: Request, out: &mut Output<Msg>) {
        let not_leader = |leader: u64| Response {
            client: r.client,
            req: r.req,
            from: r.to,
            answer: Answer::NotLeader((leader != 0).then_some(leader)),
        };
        // Only the leader takes requests: a follower would forward them
        // (MsgProp, MsgReadIndex), which raft-trace/1 has no read
        // forwarding for.
        if self.obs.role != rt::Role::Leader {
            out.responses.push(not_leader(self.obs.leader));
            return;
        }
        if let rt::Op::Read { key } = &r.op {
            self.next_ctx += 1;
            let ctx = self.next_ctx;
            self.service.await_read(ctx, r.client, r.req, key.clone());
            // etcd 3.4.23 holds a read until the leader has committed an
            // entry of its term (pendingReadIndexMessages).
            let req = json!({"op": "read_index", "node": self.id, "data": hex(&ctx_bytes(ctx))});
            self.call(Start::Internal, req);
            return;
        }
        let data = serde_json::to_vec(&rt::EntryData::Command {
            client: r.client,
            req: r.req,
            op: r.op.clone(),
        })
        .expect("serializable");
        let req = json!({"op": "propose", "node": self.id, "data": hex(&data)});
        if self.call(Start::Internal, req) {
            out.responses.push(not_leader(0));
        } else {
            self.service.await_command(r.client, r.req);
        }
    }

    fn ready(&mut self) -> Option<Vec<Write>> {
        let mut writes = std::mem::take(&mut self.compactions);
        let req = self.node_req("ready");
        if let Some(rd) = self.drv.call(&req).ready {
            let snapshot: Option<Snapshot> = rd.snapshot.as_deref().map(decode);
            let entries: Vec<Entry> = rd.entries.iter().map(|e| decode(e)).collect();
            let committed: Vec<Entry> = rd.committed.iter().map(|e| decode(e)).collect();
            let mut hard_state: Option<HardState> = rd.hard_state.as_deref().map(decode);
            if self.bugs.late_hard_state {
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
                entries,
                hard_state,
            };
            writes.push(w.clone());
            // The Ready took every read state reported so far.
            let reads = std::mem::take(&mut self.reads);
            self.handed = Some((w, committed, reads));
        }
        (!writes.is_empty()).then_some(writes)
    }

    fn persisted(&mut self, out: &mut Output<Msg>) {
        let Some((w, committed, reads)) = self.handed.take() else {
            return;
        };
        // The simulator wrote `w` to the disk; etcd's MemoryStorage and the
        // node's copy of the disk take it too.
        let req = self.node_req("persist");
        self.drv.call(&req);
        let installed = match &w {
            Write::Persist { snapshot, .. } => snapshot.clone(),
            Write::Compact(_) => None,
        };
        let new_entries = match &w {
            Write::Persist { entries, .. } => entries.clone(),
            Write::Compact(_) => Vec::new(),
        };
        node::Disk::write(&mut self.store, w);
        let persist = rt::Persist {
            term: self.store.hard_state.term,
            vote: (self.store.hard_state.vote != 0).then_some(self.store.hard_state.vote),
            last_index: self.store.last(),
        };
        let post = self.obs.post();
        self.record(rt::Event::Persist(persist), post);
        if let Some(s) = installed {
            // The leader's snapshot (the install event was written when etcd
            // restored it): the state machine takes its data.
            self.service
                .restore(KvStore::restore(&s.data, Bugs::NONE).expect("leader snapshot decodes"));
            out.installs += 1;
        }
        for m in std::mem::take(&mut self.outbox) {
            self.send(m, out);
        }
        self.apply(&committed, out);
        if self.bugs.apply_before_commit {
            // BUG (planted, harness): the newest entry of the Ready is
            // applied when it is the next one to commit, before it is.
            if let Some(e) = new_entries.last() {
                if e.index == self.obs.commit + 1 {
                    let e = e.clone();
                    self.apply(&[e], out);
                }
            }
        }
        let req = self.node_req("advance");
        self.call(Start::Internal, req);
        for m in std::mem::take(&mut self.outbox) {
            self.send(m, out);
        }
        for (index, ctx) in reads {
            if let Some(ctx) = ctx_number(&ctx) {
                self.service.read_ready(index, ctx);
            }
        }
        self.service.serve_reads(out);
        out.snapshots += self.maybe_snapshot();
    }

    fn status(&self) -> Status {
        let o = self.obs;
        Status {
            term: o.term,
            role: o.role,
            commit: o.commit,
            first_index: o.snap_index + 1,
            last_index: o.last_index,
        }
    }

    fn entry(&self, index: u64) -> Option<(u64, u64)> {
        if index <= self.base {
            return None;
        }
        self.log.get((index - self.base - 1) as usize).copied()
    }
}
