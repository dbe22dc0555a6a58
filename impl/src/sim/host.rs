//! A simulated server: one Raft core, its key-value state machine, its disk,
//! and the glue a real server has (client requests, the Ready loop,
//! snapshots every N entries).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::bugs::Bugs;
use crate::core::{Command, Config, Index, Message, NodeId, Op, RaftNode};
use crate::kv::{KvStore, Reply};
use crate::sim::client::{Answer, Request, Response};
use crate::sim::disk::Disk;
use crate::sim::invariants::{Invariants, Violation};
use crate::trace::TraceSink;

/// A read waiting for its read index, then for the state machine.
struct PendingRead {
    client: u64,
    req: u64,
    key: String,
}

/// One server of the simulated cluster.
pub struct Host {
    pub id: NodeId,
    pub cfg: Config,
    pub node: Option<RaftNode>,
    pub kv: KvStore,
    pub disk: Disk,
    bugs: Bugs,
    session_capacity: usize,
    /// Clients waiting for a command to be applied.
    waiting: HashMap<(u64, u64), ()>,
    reads: HashMap<u64, PendingRead>,
    /// Read index -> reads to serve once applied.
    ready_reads: BTreeMap<Index, Vec<u64>>,
    next_ctx: u64,
    pub crashes: u64,
    pub snapshots: u64,
    pub installs: u64,
}

/// What handling a Ready produced.
#[derive(Default)]
pub struct Output {
    pub messages: Vec<Message>,
    pub responses: Vec<Response>,
}

impl Host {
    pub fn new(cfg: Config, session_capacity: usize, sink: Option<Box<dyn TraceSink>>) -> Self {
        let bugs = cfg.bugs;
        let mut disk = Disk::default();
        let node = RaftNode::new(cfg.clone(), disk.recover(), sink);
        Host {
            id: cfg.id,
            cfg,
            node: Some(node),
            kv: KvStore::new(session_capacity, bugs),
            disk,
            bugs,
            session_capacity,
            waiting: HashMap::new(),
            reads: HashMap::new(),
            ready_reads: BTreeMap::new(),
            next_ctx: 0,
            crashes: 0,
            snapshots: 0,
            installs: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }

    /// The process dies: memory is gone, the disk stays.
    pub fn crash(&mut self) {
        if self.node.take().is_some() {
            self.crashes += 1;
        }
        self.kv = KvStore::new(self.session_capacity, self.bugs);
        self.waiting.clear();
        self.reads.clear();
        self.ready_reads.clear();
    }

    /// The process starts again from its disk.
    pub fn restart(&mut self, sink: Option<Box<dyn TraceSink>>) {
        let rec = self.disk.recover();
        self.kv = match &rec.snapshot {
            Some(s) => KvStore::restore(&s.data, self.bugs).expect("own snapshot decodes"),
            None => KvStore::new(self.session_capacity, self.bugs),
        };
        let mut node = RaftNode::new(self.cfg.clone(), rec, sink);
        node.applied_snapshot(self.kv.applied());
        self.node = Some(node);
    }

    /// A client request arrives.
    pub fn on_request(&mut self, r: Request, out: &mut Output) {
        let Some(node) = self.node.as_mut() else {
            return;
        };
        let answer = |answer| Response {
            client: r.client,
            req: r.req,
            from: r.to,
            answer,
        };
        if let Op::Read { key } = &r.op {
            self.next_ctx += 1;
            let ctx = self.next_ctx;
            match node.read_index(ctx) {
                Ok(()) => {
                    self.reads.insert(
                        ctx,
                        PendingRead {
                            client: r.client,
                            req: r.req,
                            key: key.clone(),
                        },
                    );
                }
                Err(e) => out.responses.push(answer(Answer::NotLeader(e.leader))),
            }
            return;
        }
        let cmd = Command {
            client: r.client,
            req: r.req,
            op: r.op.clone(),
        };
        match node.propose(cmd) {
            Ok(_) => {
                self.waiting.insert((r.client, r.req), ());
            }
            Err(e) => out.responses.push(answer(Answer::NotLeader(e.leader))),
        }
    }

    /// Runs the Ready loop until the core has nothing more: persist, then
    /// send, then apply.
    pub fn process(&mut self, inv: &mut Invariants, out: &mut Output) -> Result<(), Violation> {
        loop {
            let Some(node) = self.node.as_mut() else {
                return Ok(());
            };
            if !node.has_ready() {
                return Ok(());
            }
            let mut rd = node.ready();
            self.disk.write(&rd);
            let msgs = node.persisted(&mut rd);
            for m in &msgs {
                inv.on_send(&self.disk, m)?;
            }
            out.messages.extend(msgs);
            if let Some(snap) = &rd.snapshot {
                self.kv = KvStore::restore(&snap.data, self.bugs).expect("leader snapshot decodes");
                node.applied_snapshot(snap.meta.index);
                self.installs += 1;
            }
            for e in &rd.committed_entries {
                if e.index <= self.kv.applied() {
                    continue;
                }
                let a = self.kv.apply(e);
                node.applied(e.index, a.duplicate);
                inv.on_apply(self.id, e, &a)?;
                if let (Some((client, req)), Some(reply)) = (a.command, a.reply) {
                    if self.waiting.remove(&(client, req)).is_some() {
                        let answer = match reply {
                            Reply::Done => Answer::Ok(None),
                            Reply::Value(v) => Answer::Ok(v),
                            Reply::CasFailed(_) => Answer::CasFailed,
                            Reply::Stale => Answer::Stale,
                        };
                        out.responses.push(Response {
                            client,
                            req,
                            from: self.id,
                            answer,
                        });
                    }
                }
            }
            for rs in rd.read_states {
                self.ready_reads.entry(rs.index).or_default().push(rs.ctx);
            }
            self.serve_reads(out);
            self.maybe_snapshot();
        }
    }

    fn serve_reads(&mut self, out: &mut Output) {
        let applied = self.kv.applied();
        while let Some(entry) = self.ready_reads.first_entry() {
            if *entry.key() > applied {
                break;
            }
            for ctx in entry.remove() {
                if let Some(p) = self.reads.remove(&ctx) {
                    out.responses.push(Response {
                        client: p.client,
                        req: p.req,
                        from: self.id,
                        answer: Answer::Ok(self.kv.get(&p.key).cloned()),
                    });
                }
            }
        }
    }

    /// Log compaction: a snapshot every `compact_every` applied entries.
    fn maybe_snapshot(&mut self) {
        let Some(node) = self.node.as_mut() else {
            return;
        };
        let applied = self.kv.applied();
        if !node.snapshot_due(applied) {
            return;
        }
        let Some(term) = node.log().term(applied) else {
            return;
        };
        let data = Arc::new(self.kv.snapshot());
        node.compact(applied, data.clone());
        if node.log().snapshot_meta().index == applied {
            self.disk.compact(applied, term, data);
            self.snapshots += 1;
        }
    }
}
