//! Safety invariants checked over the whole cluster after every step.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::core::{Body, Entry, Index, Message, NodeId, RaftNode, Role, Term};
use crate::kv::Applied;
use crate::sim::disk::Disk;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's name (e.g. `election-safety`).
    pub invariant: &'static str,
    pub detail: String,
}

fn fail<T>(invariant: &'static str, detail: String) -> Result<T, Violation> {
    Err(Violation { invariant, detail })
}

#[derive(Clone, Copy)]
struct Seen {
    term: Term,
    role: Role,
    commit: Index,
}

/// What the checker remembers across steps (and across node crashes).
#[derive(Default)]
pub struct Invariants {
    leaders: BTreeMap<Term, NodeId>,
    votes: BTreeMap<(NodeId, Term), NodeId>,
    applied: HashMap<Index, (Term, u64)>,
    executed: HashMap<(u64, u64), Index>,
    last: BTreeMap<NodeId, Seen>,
}

fn digest(e: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    e.payload.hash(&mut h);
    h.finish()
}

impl Invariants {
    /// Checks the cluster after a step. `nodes[i]` is `None` while node
    /// `i + 1` is down; `disks[i]` is its stable storage.
    pub fn check(&mut self, nodes: &[Option<&RaftNode>], disks: &[&Disk]) -> Result<(), Violation> {
        let quorum = nodes.len() / 2 + 1;
        for n in nodes.iter().flatten() {
            let id = n.id();
            // Leader completeness, seen from a follower: no leader sends
            // entries that conflict with a committed one.
            if let Some(i) = n.committed_conflict() {
                return fail(
                    "committed-entry-overwritten",
                    format!(
                        "a leader sent node {id} entries conflicting with its committed index {i}"
                    ),
                );
            }
            // Election safety: at most one leader per term.
            if n.role() == Role::Leader {
                let l = *self.leaders.entry(n.term()).or_insert(id);
                if l != id {
                    return fail(
                        "election-safety",
                        format!("nodes {l} and {id} are both leaders of term {}", n.term()),
                    );
                }
            }
            // Commit rule: a leader advances its commit index only to an
            // entry of its own term.
            let now = Seen {
                term: n.term(),
                role: n.role(),
                commit: n.commit_index(),
            };
            if let Some(before) = self.last.get(&id) {
                if before.role == Role::Leader
                    && now.role == Role::Leader
                    && before.term == now.term
                    && now.commit > before.commit
                {
                    let t = n.log().term(now.commit);
                    if t.is_some_and(|t| t != now.term) {
                        return fail(
                            "leader-commits-current-term",
                            format!(
                                "leader {id} of term {} committed index {} of term {}",
                                now.term,
                                now.commit,
                                t.unwrap_or(0)
                            ),
                        );
                    }
                }
            }
            self.last.insert(id, now);
            // A committed entry is durable on a quorum.
            let c = n.commit_index();
            if let Some(t) = n.log().term(c) {
                if c > 0 {
                    let holders = disks.iter().filter(|d| d.holds(c, t)).count();
                    if holders < quorum {
                        return fail(
                            "committed-entry-on-quorum",
                            format!(
                                "node {id} has committed index {c} (term {t}) but only {holders} disks hold it"
                            ),
                        );
                    }
                }
            }
        }
        // Each node votes at most once per term, across restarts: a vote
        // counts once it is durable or sent (see `on_send`).
        for (i, d) in disks.iter().enumerate() {
            if let Some(v) = d.hard_state.vote {
                self.vote(i as u64 + 1, d.hard_state.term, v)?;
            }
        }
        // Log matching: if two logs hold an entry with the same index and
        // term, they are identical up to it.
        let up: Vec<&RaftNode> = nodes.iter().flatten().copied().collect();
        for (i, a) in up.iter().enumerate() {
            for b in &up[i + 1..] {
                log_matching(a, b)?;
            }
        }
        Ok(())
    }

    /// Checks an entry a node applied.
    pub fn on_apply(&mut self, node: NodeId, e: &Entry, a: &Applied) -> Result<(), Violation> {
        let d = digest(e);
        let prev = *self.applied.entry(e.index).or_insert((e.term, d));
        if prev != (e.term, d) {
            return fail(
                "state-machine-safety",
                format!(
                    "node {node} applied a different entry at index {} (term {}, first applied term {})",
                    e.index, e.term, prev.0
                ),
            );
        }
        if let (true, Some(id)) = (a.executed, a.command) {
            let first = *self.executed.entry(id).or_insert(e.index);
            if first != e.index {
                return fail(
                    "exactly-once",
                    format!(
                        "node {node} executed client {} request {} at index {} and again at index {}",
                        id.0, id.1, first, e.index
                    ),
                );
            }
        }
        Ok(())
    }

    fn vote(&mut self, node: NodeId, term: Term, v: NodeId) -> Result<(), Violation> {
        let prev = *self.votes.entry((node, term)).or_insert(v);
        if prev != v {
            return fail(
                "one-vote-per-term",
                format!("node {node} voted for {prev} and then for {v} in term {term}"),
            );
        }
        Ok(())
    }

    /// Checks a message a node is about to send against its disk: the term
    /// it carries, a vote it grants and entries it acknowledges must be
    /// durable before it leaves.
    pub fn on_send(&mut self, disk: &Disk, m: &Message) -> Result<(), Violation> {
        let hs = disk.hard_state;
        if let Body::RequestVoteReply { granted: true } = m.body {
            self.vote(m.from, m.term, m.to)?;
        }
        if hs.term < m.term {
            return fail(
                "persist-before-send",
                format!(
                    "node {} sent a message of term {} with term {} on disk",
                    m.from, m.term, hs.term
                ),
            );
        }
        match m.body {
            Body::RequestVoteReply { granted: true }
                if hs.term == m.term && hs.vote != Some(m.to) =>
            {
                return fail(
                    "persist-before-send",
                    format!(
                        "node {} granted its vote to {} in term {} but its disk records vote {:?}",
                        m.from, m.to, m.term, hs.vote
                    ),
                );
            }
            Body::AppendEntriesReply {
                success: true,
                index,
                ..
            } if disk.last_index() < index => {
                return fail(
                    "persist-before-send",
                    format!(
                        "node {} acknowledged entries up to {index} with only {} on disk",
                        m.from,
                        disk.last_index()
                    ),
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the command (client, req) was executed, and where.
    pub fn executed_at(&self, client: u64, req: u64) -> Option<Index> {
        self.executed.get(&(client, req)).copied()
    }

    pub fn terms_with_leader(&self) -> usize {
        self.leaders.len()
    }
}

fn log_matching(a: &RaftNode, b: &RaftNode) -> Result<(), Violation> {
    let (la, lb) = (a.log(), b.log());
    let lo = la.first_index().max(lb.first_index());
    let hi = la.last_index().min(lb.last_index());
    let mut matched = false;
    let mut i = hi;
    while i >= lo && i > 0 {
        let (ea, eb) = (la.entry(i), lb.entry(i));
        if let (Some(ea), Some(eb)) = (ea, eb) {
            if matched && ea != eb {
                return fail(
                    "log-matching",
                    format!(
                        "nodes {} and {} agree on a later entry but differ at index {i}",
                        a.id(),
                        b.id()
                    ),
                );
            }
            if ea.term == eb.term {
                if ea.payload != eb.payload {
                    return fail(
                        "log-matching",
                        format!(
                            "nodes {} and {} hold different entries of term {} at index {i}",
                            a.id(),
                            b.id(),
                            ea.term
                        ),
                    );
                }
                matched = true;
            }
        }
        i -= 1;
    }
    Ok(())
}
