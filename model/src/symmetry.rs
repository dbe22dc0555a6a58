//! Symmetry reduction over server ids, for the DFS checker.
//!
//! Servers run the same rules and differ only by id, so permuting ids maps
//! behaviours to behaviours. Clients break this (a client picks servers in
//! id order), so with clients present the representative is the state
//! itself: sound, just no reduction. So do membership changes, which name
//! particular servers: [`crate::check::run`] applies no symmetry to a
//! configuration with them ([`crate::Config::symmetric`]).
//!
//! (A client that retries at any other server, not the next one, makes
//! the clients symmetric too; measured, it grows the state space more than
//! the reduction then saves, because the clients' first targets still tell
//! the servers apart: 131,550 unique states before, 268,712 without
//! symmetry and 178,446 with it, for 2 clients of one operation.)

use stateright::actor::{Envelope, Id, Network};

use std::sync::Arc;

use crate::actor::{NodeState, Stored, Timer, Wire};
use crate::hashed::Hashed;
use crate::model::RaftState;
use crate::server::{Persistent, Server};
use crate::types::NodeId;

/// Whether the state has only servers (symmetry applies).
fn servers_only(state: &RaftState) -> bool {
    state.actor_states.iter().all(|a| a.server().is_some())
}

/// A server with every id blanked, to order servers independently of ids.
fn blank(s: &Server) -> Server {
    let mut b = s.clone();
    b.id = 0;
    b.voted_for = b.voted_for.map(|_| 0);
    b.leader = b.leader.map(|_| 0);
    b.votes = vec![0; b.votes.len()];
    b.rejections = vec![0; b.rejections.len()];
    b.heard = vec![0; b.heard.len()];
    b.lease_acks = vec![0; b.lease_acks.len()];
    if let Some(t) = &mut b.transfer {
        t.to = 0;
    }
    for r in &mut b.reads {
        r.acks = vec![0; r.acks.len()];
    }
    b.next_index.sort_unstable();
    b.match_index.sort_unstable();
    b.last_sent.clear();
    b
}

struct Perm(Vec<usize>);

impl Perm {
    fn node(&self, id: NodeId) -> NodeId {
        self.0[(id - 1) as usize] as NodeId + 1
    }
    fn actor(&self, id: Id) -> Id {
        Id::from(self.0[usize::from(id)])
    }
    fn reindex<T: Clone>(&self, v: &[T]) -> Vec<T> {
        let mut out = v.to_vec();
        for (old, x) in v.iter().enumerate() {
            out[self.0[old]] = x.clone();
        }
        out
    }
    fn server(&self, s: &Server) -> Server {
        let mut votes: Vec<NodeId> = s.votes.iter().map(|&v| self.node(v)).collect();
        votes.sort_unstable();
        let mut rejections: Vec<NodeId> = s.rejections.iter().map(|&v| self.node(v)).collect();
        rejections.sort_unstable();
        let mut heard: Vec<NodeId> = s.heard.iter().map(|&v| self.node(v)).collect();
        heard.sort_unstable();
        let mut lease_acks: Vec<NodeId> = s.lease_acks.iter().map(|&v| self.node(v)).collect();
        lease_acks.sort_unstable();
        let reads = s
            .reads
            .iter()
            .map(|r| {
                let mut acks: Vec<NodeId> = r.acks.iter().map(|&v| self.node(v)).collect();
                acks.sort_unstable();
                crate::types::PendingRead { acks, ..r.clone() }
            })
            .collect();
        Server {
            heard,
            lease_acks,
            reads,
            transfer: s.transfer.map(|t| crate::types::Transfer {
                to: self.node(t.to),
                ..t
            }),
            id: self.node(s.id),
            voted_for: s.voted_for.map(|v| self.node(v)),
            leader: s.leader.map(|v| self.node(v)),
            votes,
            rejections,
            next_index: if s.next_index.is_empty() {
                vec![]
            } else {
                self.reindex(&s.next_index)
            },
            match_index: if s.match_index.is_empty() {
                vec![]
            } else {
                self.reindex(&s.match_index)
            },
            last_sent: if s.last_sent.is_empty() {
                vec![]
            } else {
                self.reindex(&s.last_sent)
            },
            ..s.clone()
        }
    }
    fn envelope(&self, e: Envelope<&Wire>) -> Envelope<Wire> {
        Envelope {
            src: self.actor(e.src),
            dst: self.actor(e.dst),
            msg: e.msg.clone(),
        }
    }
}

/// The representative of `state`'s class: servers ordered by their state
/// (ids blanked), every id rewritten accordingly.
pub fn representative(state: &RaftState) -> RaftState {
    if !servers_only(state) {
        return state.clone();
    }
    let servers: Vec<&Server> = state
        .actor_states
        .iter()
        .filter_map(|a| a.server())
        .collect();
    let mut order: Vec<usize> = (0..servers.len()).collect();
    order.sort_by_cached_key(|&i| (blank(servers[i]), state.crashed[i]));
    let mut new_of_old = vec![0; servers.len()];
    for (new, &old) in order.iter().enumerate() {
        new_of_old[old] = new;
    }
    let p = Perm(new_of_old);
    let network = match &state.network {
        Network::Ordered(_) => {
            Network::new_ordered(state.network.iter_all().map(|e| p.envelope(e)))
        }
        Network::UnorderedNonDuplicating(_) => {
            Network::new_unordered_nonduplicating(state.network.iter_all().map(|e| p.envelope(e)))
        }
        Network::UnorderedDuplicating(_, last) => Network::new_unordered_duplicating_with_last_msg(
            state.network.iter_all().map(|e| p.envelope(e)),
            last.as_ref().map(|e| {
                p.envelope(Envelope {
                    src: e.src,
                    dst: e.dst,
                    msg: &e.msg,
                })
            }),
        ),
    };
    let actor_states = p
        .reindex(&state.actor_states)
        .into_iter()
        .map(|a| match &**a {
            NodeState::Server(s) => Arc::new(Hashed::new(NodeState::Server(Box::new(p.server(s))))),
            NodeState::Client(_) => a,
        });
    let storages: Vec<Option<Stored>> = p
        .reindex(&state.actor_storages)
        .into_iter()
        .map(|s| {
            s.map(|s| {
                Hashed::new(Arc::new(Persistent {
                    voted_for: s.voted_for.map(|v| p.node(v)),
                    ..Arc::unwrap_or_clone(s.into_inner())
                }))
            })
        })
        .collect();
    RaftState {
        actor_states: actor_states.collect(),
        network,
        timers_set: p
            .reindex(&state.timers_set)
            .into_iter()
            .map(|ts| {
                let mut out = stateright::actor::Timers::new();
                for t in ts.iter() {
                    out.set(match t {
                        Timer::Transfer(j) => Timer::Transfer(p.node(*j)),
                        t => t.clone(),
                    });
                }
                out
            })
            .collect(),
        random_choices: p.reindex(&state.random_choices),
        crashed: p.reindex(&state.crashed),
        history: state.history.clone(),
        actor_storages: storages,
    }
}

/// `state` without the last message its duplicating network delivered.
///
/// stateright keeps that message in the state (`UnorderedDuplicating`'s
/// second field) only so that a delivery changing nothing else still makes
/// a new state. No action, rule or property reads it: two states that
/// differ only there have the same successors and the same verdicts, so the
/// DFS checker may count them as one. Without this, each state is
/// explored once for every message that may have been delivered last.
pub fn forget_last_delivery(state: &RaftState) -> RaftState {
    let mut s = state.clone();
    if let Network::UnorderedDuplicating(_, last) = &mut s.network {
        *last = None;
    }
    s
}

/// The fingerprint of [`forget_last_delivery`]'s state, hashed in place
/// instead of from a copy: every field of the state but the duplicating
/// network's last delivery. (The depth-first search fingerprints the class
/// of each state it generates; copying the state for that was a large part
/// of a duplicating configuration's time.) Equal for two states exactly
/// when their [`forget_last_delivery`] states are equal, up to 64-bit
/// collisions, so it counts the same classes.
pub fn fingerprint_forgetting_last_delivery(state: &RaftState) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = crate::search::hasher();
    let RaftState {
        actor_states,
        network,
        timers_set,
        random_choices,
        crashed,
        history,
        actor_storages,
    } = state;
    actor_states.hash(&mut h);
    history.hash(&mut h);
    timers_set.hash(&mut h);
    random_choices.hash(&mut h);
    match network {
        Network::UnorderedDuplicating(in_flight, _last) => in_flight.hash(&mut h),
        other => other.hash(&mut h),
    }
    crashed.hash(&mut h);
    actor_storages.hash(&mut h);
    h.finish()
}

/// [`representative`] and [`forget_last_delivery`] together.
pub fn representative_forgetting_last_delivery(state: &RaftState) -> RaftState {
    forget_last_delivery(&representative(state))
}

#[cfg(test)]
mod tests {
    use stateright::Model;

    use super::*;
    use crate::types::Role;

    /// Every server id in a server's state follows the permutation: here the
    /// leader's lease, which names the follower that acknowledged it.
    #[test]
    fn a_permutation_rewrites_every_server_id_a_server_holds() {
        let cfg = crate::Config {
            clients: 0,
            ops: 0,
            ..Default::default()
        };
        let mut state = crate::build(&cfg).init_states().remove(0);
        // S1 leads term 2 with S3's acknowledgement and S3's vote; S2 is
        // still in term 1. Ordered by state, S2 comes first, then S3, then
        // the leader: S1 becomes S3 and S3 becomes S2.
        let mut s1 = Server::new(1);
        s1.term = 2;
        s1.role = Role::Leader;
        s1.voted_for = Some(1);
        s1.votes = vec![1, 3];
        s1.heard = vec![3];
        s1.lease_acks = vec![3];
        let mut s2 = Server::new(2);
        s2.term = 1;
        let mut s3 = Server::new(3);
        s3.term = 2;
        s3.voted_for = Some(1);
        s3.leader = Some(1);
        state.actor_states = [s1, s2, s3]
            .into_iter()
            .map(|s| Arc::new(Hashed::new(NodeState::Server(Box::new(s)))))
            .collect();
        let rep = representative(&state);
        let servers: Vec<&Server> = rep.actor_states.iter().filter_map(|a| a.server()).collect();
        assert_eq!(
            servers.iter().map(|s| s.term).collect::<Vec<_>>(),
            [1, 2, 2]
        );
        let (follower, leader) = (servers[1], servers[2]);
        assert_eq!((follower.id, leader.id), (2, 3));
        assert_eq!(follower.voted_for, Some(3));
        assert_eq!(follower.leader, Some(3));
        assert_eq!(leader.votes, [2, 3]);
        assert_eq!(leader.heard, [2]);
        assert_eq!(leader.lease_acks, [2]);
    }

    /// The in-place fingerprint of a duplicating network's state ignores
    /// exactly the last delivery: equal for a state and its copy without
    /// it, different for states that differ elsewhere.
    #[test]
    fn the_fingerprint_forgetting_the_last_delivery_ignores_only_it() {
        let cfg = crate::Config {
            clients: 0,
            ops: 0,
            network: crate::NetworkKind::Duplicating,
            ..Default::default()
        };
        let model = crate::build(&cfg);
        let last = |s: &RaftState| match &s.network {
            Network::UnorderedDuplicating(_, last) => last.is_some(),
            _ => unreachable!("a duplicating network"),
        };
        // Breadth-first from the initial state to a state after a delivery.
        let mut frontier = model.init_states();
        let delivered = loop {
            let next: Vec<RaftState> = frontier
                .iter()
                .flat_map(|s| model.next_steps(s).into_iter().map(|(_, n)| n))
                .collect();
            if let Some(s) = next.iter().find(|s| last(s)) {
                break s.clone();
            }
            frontier = next;
        };
        let forgot = forget_last_delivery(&delivered);
        assert!(!last(&forgot));
        let print = fingerprint_forgetting_last_delivery;
        assert_eq!(print(&delivered), print(&forgot));
        assert_ne!(
            crate::search::fingerprint(&delivered),
            crate::search::fingerprint(&forgot),
            "the two states differ, but only in what the fingerprint ignores"
        );
        let init = &model.init_states()[0];
        assert_ne!(print(&delivered), print(init));
        // Another state reached in one step, with messages in flight.
        for (_, other) in model.next_steps(init) {
            if forget_last_delivery(&other) != forgot {
                assert_ne!(print(&other), print(&delivered));
            }
        }
    }
}
