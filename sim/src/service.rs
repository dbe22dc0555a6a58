//! The client-facing side every implementation's server shares: the
//! raftkv key-value state machine with client sessions (exactly-once), the
//! clients waiting for their commands, reads waiting for their read index
//! and then for the state machine, and what the simulator's checks learn of
//! each applied entry.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use raftkv::core::{Entry, Index};
use raftkv::kv::{self, KvStore, Reply};

use crate::node::{Answer, Applied, Output, Response};
use crate::NodeId;

/// Client sessions each replica keeps (least recently used evicted).
pub const SESSION_CAPACITY: usize = 1024;

/// A digest of an entry's contents (equal contents, equal digests).
pub fn digest<T: Hash>(t: &T) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

/// A read waiting for its read index, then for the state machine.
struct PendingRead {
    client: u64,
    req: u64,
    key: String,
}

/// One server's state machine and the clients it owes an answer.
pub struct KvService {
    id: NodeId,
    kv: KvStore,
    /// Clients waiting for a command to be applied.
    waiting: HashSet<(u64, u64)>,
    /// Reads by context, waiting for their read index.
    reads: HashMap<u64, PendingRead>,
    /// Read index -> contexts of reads to serve once applied.
    ready_reads: BTreeMap<Index, Vec<u64>>,
}

impl KvService {
    pub fn new(id: NodeId, kv: KvStore) -> Self {
        KvService {
            id,
            kv,
            waiting: HashSet::new(),
            reads: HashMap::new(),
            ready_reads: BTreeMap::new(),
        }
    }

    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    /// Replaces the state machine with a snapshot's.
    pub fn restore(&mut self, kv: KvStore) {
        self.kv = kv;
    }

    /// A client waits for its command (proposed) to be applied.
    pub fn await_command(&mut self, client: u64, req: u64) {
        self.waiting.insert((client, req));
    }

    /// A read of `key` asked for read index `ctx`.
    pub fn await_read(&mut self, ctx: u64, client: u64, req: u64, key: String) {
        self.reads.insert(ctx, PendingRead { client, req, key });
    }

    /// The read `ctx` may be served once `index` is applied.
    pub fn read_ready(&mut self, index: Index, ctx: u64) {
        self.ready_reads.entry(index).or_default().push(ctx);
    }

    /// Applies a committed entry, records it for the simulator's checks
    /// (`digest` identifies its contents) and answers the client waiting
    /// for it here.
    pub fn apply<M>(&mut self, e: &Entry, digest: u64, out: &mut Output<M>) -> kv::Applied {
        let a = self.kv.apply(e);
        out.applied.push(Applied {
            index: e.index,
            term: e.term,
            digest,
            executed: a.command.filter(|_| a.executed),
        });
        if let (Some((client, req)), Some(reply)) = (a.command, a.reply.clone()) {
            if self.waiting.remove(&(client, req)) {
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
        a
    }

    /// Answers the reads whose read index the state machine has reached.
    pub fn serve_reads<M>(&mut self, out: &mut Output<M>) {
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
}
