//! The simulator's own fast checks, run after every step so that a run
//! stops at the step that broke something. They are an early stop only: the
//! run's verdict is conformance's, and a check here that fires on a run
//! that conformance accepts is reported as the two checkers disagreeing.
//! They read the cluster through the node trait alone.

use std::collections::{BTreeMap, HashMap};

use raft_trace::Role;

use crate::node::{Addressed, Applied, Disk, Envelope, Node, Status};
use crate::NodeId;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The invariant's name (e.g. `election-safety`).
    pub invariant: &'static str,
    pub detail: String,
}

fn fail<T>(invariant: &'static str, detail: String) -> Result<T, Violation> {
    Err(Violation { invariant, detail })
}

/// What the checker remembers across steps (and across node crashes).
#[derive(Default)]
pub struct Invariants {
    /// The voters the cluster boots with (with membership changes a
    /// joining node does not know them until a configuration reaches it).
    pub initial_voters: Vec<NodeId>,
    leaders: BTreeMap<u64, NodeId>,
    votes: BTreeMap<(NodeId, u64), NodeId>,
    applied: HashMap<u64, (u64, u64)>,
    executed: HashMap<(u64, u64), u64>,
    last: BTreeMap<NodeId, Status>,
    /// With membership changes: for each commit index checked, the voters
    /// of every configuration seen in use since its entry was appended,
    /// also those a later truncation took out of every log (a leader
    /// commits under the last configuration of its log, committed or not;
    /// once that one is rolled back, a majority of it still overlaps every
    /// majority of the one before, which differs by one server).
    seen_voters: BTreeMap<u64, Vec<Vec<NodeId>>>,
}

impl Invariants {
    /// Checks the cluster after a step. `nodes[i]` is `None` while node
    /// `i + 1` is down; `disks[i]` is its stable storage.
    pub fn check<N: Node>(
        &mut self,
        nodes: &[Option<&N>],
        disks: &[&N::Disk],
    ) -> Result<(), Violation> {
        let quorum = nodes.len() / 2 + 1;
        for (i, n) in nodes.iter().enumerate() {
            let Some(n) = n else { continue };
            let id = i as NodeId + 1;
            let now = n.status();
            // Election safety: at most one leader per term.
            if now.role == Role::Leader {
                let l = *self.leaders.entry(now.term).or_insert(id);
                if l != id {
                    return fail(
                        "election-safety",
                        format!("nodes {l} and {id} are both leaders of term {}", now.term),
                    );
                }
            }
            // Commit rule: a leader advances its commit index only to an
            // entry of its own term.
            if let Some(before) = self.last.get(&id) {
                if before.role == Role::Leader
                    && now.role == Role::Leader
                    && before.term == now.term
                    && now.commit > before.commit
                {
                    let t = n.entry(now.commit).map(|(t, _)| t);
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
            // A committed entry is durable on a quorum: of every node, or
            // with membership changes of the voters of a configuration in
            // use since the entry was appended. The one that committed it
            // is among those of the leader's log, which a follower's log may
            // not hold yet: any up node's count.
            let c = now.commit;
            if let Some((t, _)) = n.entry(c) {
                if c > 0 {
                    let holds = |id: &NodeId| {
                        disks
                            .get((*id as usize).wrapping_sub(1))
                            .is_some_and(|d| d.holds(c, t))
                    };
                    let holders = disks.iter().filter(|d| d.holds(c, t)).count();
                    let majority =
                        |vs: &[NodeId]| 2 * vs.iter().filter(|id| holds(id)).count() > vs.len();
                    let on_quorum = match n.membership() {
                        Some(_) => {
                            let seen = self.seen_voters.entry(c).or_default();
                            for sets in nodes.iter().flatten().filter_map(|m| m.voters_since(c)) {
                                for vs in sets {
                                    if !seen.contains(&vs) {
                                        seen.push(vs);
                                    }
                                }
                            }
                            majority(&self.initial_voters) || seen.iter().any(|vs| majority(vs))
                        }
                        None => holders >= quorum,
                    };
                    if !on_quorum {
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
            if let (term, Some(v)) = d.hard_state() {
                self.vote(i as u64 + 1, term, v)?;
            }
        }
        // Log matching: if two logs hold an entry with the same index and
        // term, they are identical up to it.
        let up: Vec<(NodeId, &N)> = nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i as NodeId + 1, n)))
            .collect();
        for (i, a) in up.iter().enumerate() {
            for b in &up[i + 1..] {
                log_matching(*a, *b)?;
            }
        }
        Ok(())
    }

    /// Checks an entry a node applied.
    pub fn on_apply(&mut self, node: NodeId, a: &Applied) -> Result<(), Violation> {
        let prev = *self.applied.entry(a.index).or_insert((a.term, a.digest));
        if prev != (a.term, a.digest) {
            return fail(
                "state-machine-safety",
                format!(
                    "node {node} applied a different entry at index {} (term {}, first applied term {})",
                    a.index, a.term, prev.0
                ),
            );
        }
        if let Some(id) = a.executed {
            let first = *self.executed.entry(id).or_insert(a.index);
            if first != a.index {
                return fail(
                    "exactly-once",
                    format!(
                        "node {node} executed client {} request {} at index {} and again at index {}",
                        id.0, id.1, first, a.index
                    ),
                );
            }
        }
        Ok(())
    }

    fn vote(&mut self, node: NodeId, term: u64, v: NodeId) -> Result<(), Violation> {
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
    pub fn on_send<M: Addressed>(
        &mut self,
        disk: &impl Disk,
        m: &M,
        env: Envelope,
    ) -> Result<(), Violation> {
        let (term, vote) = disk.hard_state();
        let (from, to) = (m.from(), m.to());
        if env.grants_vote {
            self.vote(from, env.term, to)?;
        }
        if term < env.term && !env.prospective {
            return fail(
                "persist-before-send",
                format!(
                    "node {from} sent a message of term {} with term {term} on disk",
                    env.term
                ),
            );
        }
        if env.grants_vote && term == env.term && vote != Some(to) {
            return fail(
                "persist-before-send",
                format!(
                    "node {from} granted its vote to {to} in term {} but its disk records vote {vote:?}",
                    env.term
                ),
            );
        }
        if let Some(index) = env.acknowledges {
            if disk.last_index() < index {
                return fail(
                    "persist-before-send",
                    format!(
                        "node {from} acknowledged entries up to {index} with only {} on disk",
                        disk.last_index()
                    ),
                );
            }
        }
        Ok(())
    }

    /// Whether the command (client, req) was executed, and where.
    pub fn executed_at(&self, client: u64, req: u64) -> Option<u64> {
        self.executed.get(&(client, req)).copied()
    }

    pub fn terms_with_leader(&self) -> usize {
        self.leaders.len()
    }
}

fn log_matching<N: Node>((ia, a): (NodeId, &N), (ib, b): (NodeId, &N)) -> Result<(), Violation> {
    let (sa, sb) = (a.status(), b.status());
    let lo = sa.first_index.max(sb.first_index);
    let hi = sa.last_index.min(sb.last_index);
    let mut matched = false;
    let mut i = hi;
    while i >= lo && i > 0 {
        if let (Some(ea), Some(eb)) = (a.entry(i), b.entry(i)) {
            if matched && ea != eb {
                return fail(
                    "log-matching",
                    format!("nodes {ia} and {ib} agree on a later entry but differ at index {i}"),
                );
            }
            if ea.0 == eb.0 {
                if ea.1 != eb.1 {
                    return fail(
                        "log-matching",
                        format!(
                            "nodes {ia} and {ib} hold different entries of term {} at index {i}",
                            ea.0
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
