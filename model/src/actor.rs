//! The stateright actors: a thin wrapper that feeds messages and timeouts to
//! the pure rules in [`crate::rules`], persists what they change, arms timers
//! and enforces the model's bounds. Clients are actors too.

use std::borrow::Cow;
use std::sync::Arc;

use stateright::actor::{model_timeout, Actor, Id, Out};

use crate::config::Config;
use crate::hashed::Hashed;
use crate::rules::{self, Step};
use crate::server::{ghost, Persistent, Rules, Server};
use crate::types::{ClientId, Dest, Msg, NodeId, Role, Seq};

/// Which actor: a server or a client. Servers are the first actors (actor
/// index = id - 1); clients follow (actor index = servers + id - 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Who {
    Server(NodeId),
    Client(ClientId),
}

/// An actor of the model.
#[derive(Clone, Debug)]
pub struct RaftActor {
    pub who: Who,
    pub cfg: Arc<Config>,
    /// `cfg.rules()`, built once: every step needs them.
    pub rules: Rules,
}

/// A client: which operation it is on, and the server it talks to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientState {
    pub id: ClientId,
    /// The current request number (1-based); `ops + 1` when done.
    pub seq: Seq,
    /// The server it sends requests to.
    pub target: NodeId,
    /// Timeouts (retries at the next server) for the current request.
    pub retries: u64,
}

/// The state of an actor. A server is boxed: a step moves its state through
/// several functions, and a pointer moves cheaper than the whole server.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeState {
    Server(Box<Server>),
    Client(ClientState),
}

/// An actor's state as stateright keeps it: with its hash (see
/// [`crate::hashed`]).
pub type Node = Hashed<NodeState>;

/// A message as stateright's network holds it: with its hash, and shared
/// (stateright copies and hashes every message in flight for every state it
/// generates). It reads as the [`Msg`] it holds.
pub type Wire = Hashed<Arc<Msg>>;

/// A message made ready for the network.
pub fn wire(msg: Msg) -> Wire {
    Hashed::new(Arc::new(msg))
}

/// The message a [`Wire`] carries.
pub fn unwire(w: &Wire) -> &Msg {
    w
}

/// A server's storage as stateright keeps it: with its hash, and shared
/// (stateright copies every actor's storage into every state it generates).
pub type Stored = Hashed<Arc<Persistent>>;

impl NodeState {
    pub fn server(&self) -> Option<&Server> {
        match self {
            NodeState::Server(s) => Some(s),
            NodeState::Client(_) => None,
        }
    }
    pub fn client(&self) -> Option<&ClientState> {
        match self {
            NodeState::Client(c) => Some(c),
            NodeState::Server(_) => None,
        }
    }
}

/// Timers. Timers have no duration in the model: an armed timer may fire at
/// any moment, which covers every timing an implementation could have.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// A follower's or candidate's election timeout.
    Election,
    /// A leader sends AppendEntries (or InstallSnapshot) to every follower;
    /// with feature heartbeat, a Heartbeat to a follower it has no entries for.
    Heartbeat,
    /// With `partial_batches`: as `Heartbeat`, but each AppendEntries carries
    /// at most this many entries (1 to `max_log - 1`; `Heartbeat` sends all).
    Batch(u64),
    /// With feature check-quorum: a leader checks it heard from a quorum.
    CheckQuorum,
    /// With feature leader-transfer: a leader starts transferring leadership
    /// to this server, or gives up a transfer to it in progress.
    Transfer(NodeId),
    /// With feature membership: a leader proposes this change of membership
    /// ([`crate::Config::changes`]).
    Change(crate::types::Change),
    /// With feature lease-read: a follower's lease ends (its minimum
    /// election timeout passed since it last heard from the leader).
    Lease,
    /// A client gives up waiting and retries at the next server.
    Retry,
}

/// The actor id of server `id`.
pub fn server_actor(id: NodeId) -> Id {
    Id::from((id - 1) as usize)
}

/// The actor id of client `id` in a model of `servers` servers.
pub fn client_actor(servers: u64, id: ClientId) -> Id {
    Id::from((servers + id - 1) as usize)
}

/// Which actor an actor id is.
pub fn who(servers: u64, id: Id) -> Who {
    let i = usize::from(id) as u64;
    if i < servers {
        Who::Server(i + 1)
    } else {
        Who::Client(i - servers + 1)
    }
}

impl RaftActor {
    fn rules(&self) -> Rules {
        self.rules
    }

    /// Installs the result of a rule: snapshot policy, ghost check, timers,
    /// persistence, sends.
    /// Returns the server's next state (whether it changed is decided where
    /// its hash is computed, in `guarded`).
    fn finish(&self, old: &Server, step: Step, o: &mut Out<Self>) -> NodeState {
        let Step {
            state: mut next,
            sends,
        } = step;
        if self.cfg.snapshot_after > 0
            && next.commit >= next.log.snapshot_index + self.cfg.snapshot_after
        {
            next = rules::snapshots::take_snapshot(&next).state;
        }
        // Leader Append-Only, checked on the transition itself.
        if old.role == Role::Leader && next.role == Role::Leader && old.term == next.term {
            let kept = next.log.last_index() >= old.log.last_index()
                && (next.log.snapshot_index + 1..=old.log.last_index()).all(|i| {
                    old.log.term_at(i).is_none() || next.log.term_at(i) == old.log.term_at(i)
                });
            if !kept {
                next.ghost |= ghost::LEADER_OVERWROTE;
            }
        }
        let rules = self.rules();
        if old.role != Role::Leader && next.role == Role::Leader {
            o.cancel_timer(Timer::Election);
            o.set_timer(Timer::Heartbeat, model_timeout());
            if self.cfg.partial_batches {
                for n in 1..self.cfg.max_log {
                    o.set_timer(Timer::Batch(n), model_timeout());
                }
            }
            if rules.check_quorum {
                o.set_timer(Timer::CheckQuorum, model_timeout());
            }
            if rules.leader_transfer {
                for j in rules.peers(next.id) {
                    o.set_timer(Timer::Transfer(j), model_timeout());
                }
            }
            for &c in &self.cfg.changes {
                o.set_timer(Timer::Change(c), model_timeout());
            }
        } else if old.role == Role::Leader && next.role != Role::Leader {
            o.cancel_timer(Timer::Heartbeat);
            if self.cfg.partial_batches {
                for n in 1..self.cfg.max_log {
                    o.cancel_timer(Timer::Batch(n));
                }
            }
            o.cancel_timer(Timer::CheckQuorum);
            for j in rules.peers(next.id) {
                o.cancel_timer(Timer::Transfer(j));
            }
            for &c in &self.cfg.changes {
                o.cancel_timer(Timer::Change(c));
            }
            o.set_timer(Timer::Election, model_timeout());
        }
        if next.lease && !old.lease {
            o.set_timer(Timer::Lease, model_timeout());
        } else if old.lease && !next.lease {
            o.cancel_timer(Timer::Lease);
        }
        if next.persistent_changed(old) {
            o.save(Hashed::new(Arc::new(self.storage(&next))));
        }
        for (dest, msg) in sends {
            let to = match dest {
                Dest::Server(j) => server_actor(j),
                Dest::Client(c) => client_actor(self.cfg.servers, c),
            };
            o.send(to, wire(msg));
        }
        NodeState::Server(Box::new(next))
    }

    fn storage(&self, s: &Server) -> Persistent {
        let mut p = s.persistent();
        if self.cfg.bug == Some(crate::bugs::Bug::VolatileVote) {
            // Wrong: currentTerm and votedFor are not written to disk.
            p.term = 0;
            p.voted_for = None;
        }
        if self.rules.late_self_vote && s.role == Role::Candidate && s.voted_for == Some(s.id) {
            // Feature late-self-vote: its vote for itself is not on disk
            // yet; a crash forgets it (its term is).
            p.voted_for = None;
        }
        p
    }

    /// A leader's round of replication: AppendEntries with at most
    /// `max_entries` of the entries each follower lacks (Figure 2 fixes no
    /// batch size), or InstallSnapshot.
    fn replicate(&self, s: &Server, max_entries: usize) -> Step {
        let mut next = s.clone();
        let mut sends = vec![];
        let rules = self.rules();
        let replicates_to = rules::membership::replicates_to(s, &rules);
        for j in (1..=rules.servers).filter(|&j| replicates_to(j)) {
            // With feature heartbeat (etcd-io/raft): entries when
            // the follower lacks some, and a heartbeat to everyone.
            let lagging = s.next_index[(j - 1) as usize] <= s.log.last_index();
            if !rules.heartbeat || lagging {
                if let Some(msg) = rules::replication::append_entries(s, j, max_entries) {
                    // Resending the very same message is left to the network.
                    let last = &mut next.last_sent[(j - 1) as usize];
                    if last.as_ref() != Some(&msg) {
                        *last = Some(msg.clone());
                        sends.push((Dest::Server(j), msg));
                    }
                }
            }
            if rules.heartbeat {
                sends.extend(rules::replication::heartbeat(s, j).map(|m| (Dest::Server(j), m)));
            }
        }
        Step { state: next, sends }
    }

    fn send_request(&self, c: &ClientState, o: &mut Out<Self>) {
        let cmd = crate::types::Command {
            client: c.id,
            seq: c.seq,
            op: self.cfg.op(c.id, c.seq - 1),
        };
        o.send(server_actor(c.target), wire(Msg::Request(cmd)));
    }
}

impl Actor for RaftActor {
    type Msg = Wire;
    type Timer = Timer;
    type State = Node;
    type Storage = Stored;
    type Random = ();

    fn on_start(&self, _id: Id, storage: &Option<Stored>, o: &mut Out<Self>) -> Node {
        Hashed::new(match self.who {
            Who::Server(id) => {
                o.set_timer(Timer::Election, model_timeout());
                NodeState::Server(Box::new(match storage {
                    Some(p) => {
                        let mut s = Server::recover(id, p);
                        if self.rules.lease_read {
                            // A restart loses the lease (see model::leases_hold).
                            s.ghost |= ghost::LEASE_EXPIRED;
                        }
                        s
                    }
                    None => Server::new(id),
                }))
            }
            Who::Client(id) => {
                let c = ClientState {
                    id,
                    seq: 1,
                    target: (id - 1) % self.cfg.servers + 1,
                    retries: 0,
                };
                if self.cfg.ops > 0 {
                    self.send_request(&c, o);
                    o.set_timer(Timer::Retry, model_timeout());
                }
                NodeState::Client(c)
            }
        })
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<Node>, src: Id, msg: Wire, o: &mut Out<Self>) {
        self.guarded(state, o, |state, o| self.receive(state, src, &msg, o));
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<Node>, timer: &Timer, o: &mut Out<Self>) {
        if self.cfg.stop.is_raised() {
            // As in `guarded`: a timer that fires and is armed again, with
            // nothing else changed, is no successor.
            o.set_timer(timer.clone(), model_timeout());
            return;
        }
        self.guarded(state, o, |state, o| self.time_out(state, timer, o));
    }

    fn name(&self) -> String {
        match self.who {
            Who::Server(id) => format!("S{id}"),
            Who::Client(id) => format!("C{id}"),
        }
    }
}

impl RaftActor {
    /// Runs one step of a server. A rule whose precondition fails (an
    /// `expect` on model state, an index outside the log) panics: that is a
    /// state the specification does not handle, a hole in the spec rather
    /// than a crash of the checker. The step is then replaced by one that
    /// only marks the server ([`ghost::RULE_FAILED`]), sends nothing and
    /// changes no timer, and the property "Every Step Is Defined" reports it
    /// with a counterexample. (The panic message still reaches stderr.)
    fn guarded(
        &self,
        state: &mut Cow<Node>,
        o: &mut Out<Self>,
        step: impl FnOnce(&NodeState, &mut Out<Self>) -> Option<NodeState>,
    ) {
        if self.cfg.stop.is_raised() {
            // The check was asked to stop (see `StopFlag`): a step that
            // changes nothing is no successor, so a breadth-first checker
            // empties a queue of millions of states at once instead of
            // stepping each one's successors only to drop them.
            return;
        }
        let mut out = Out::new();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(state, &mut out)));
        match (run, &***state) {
            (Ok(next), _) => {
                if let Some(next) = next.map(Hashed::new) {
                    // Unchanged when its hash is: the checker tells states
                    // apart by these hashes only, so a step to a different
                    // state of equal hash would lead to a state it has seen.
                    if next.hash_value() != state.hash_value() {
                        *state = Cow::Owned(next);
                    }
                }
                if o.is_empty() {
                    // (stateright hands each step an empty `Out`: take the
                    // commands over instead of copying them into it.)
                    std::mem::swap(o, &mut out);
                } else {
                    o.append(&mut out);
                }
            }
            (Err(_), NodeState::Server(s)) => {
                let mut failed = s.clone();
                failed.ghost |= ghost::RULE_FAILED;
                *state = Cow::Owned(Hashed::new(NodeState::Server(failed)));
            }
            (Err(panic), NodeState::Client(_)) => std::panic::resume_unwind(panic),
        }
    }

    /// A message arrives; returns the actor's next state (None: unchanged).
    fn receive(
        &self,
        state: &NodeState,
        src: Id,
        msg: &Msg,
        o: &mut Out<Self>,
    ) -> Option<NodeState> {
        match state {
            NodeState::Server(s) => {
                let from = match who(self.cfg.servers, src) {
                    Who::Server(j) => j,
                    Who::Client(_) => 0,
                };
                let rules = self.rules();
                if let Msg::RequestVote { term, transfer, .. } = *msg {
                    if rules::elections::ignores_in_lease(s, &rules, term, transfer) {
                        return None;
                    }
                }
                let mut step = rules::handle_message(s, &rules, from, msg);
                if matches!(msg, Msg::PreVote { .. })
                    && (step.state.term != s.term || step.state.voted_for != s.voted_for)
                {
                    step.state.ghost |= ghost::PRE_VOTE_DISTURBED;
                }
                Some(self.finish(s, step, o))
            }
            NodeState::Client(c) => {
                if c.seq > self.cfg.ops {
                    return None;
                }
                let Who::Server(from) = who(self.cfg.servers, src) else {
                    return None;
                };
                match *msg {
                    Msg::Reply { seq, .. } if seq == c.seq => {
                        let next = ClientState {
                            id: c.id,
                            seq: c.seq + 1,
                            target: from,
                            retries: 0,
                        };
                        if next.seq <= self.cfg.ops {
                            self.send_request(&next, o);
                            o.set_timer(Timer::Retry, model_timeout());
                        } else {
                            o.cancel_timer(Timer::Retry);
                        }
                        Some(NodeState::Client(next))
                    }
                    Msg::NotLeader { seq, hint: Some(h) } if seq == c.seq && h != c.target => {
                        let next = ClientState {
                            target: h,
                            ..c.clone()
                        };
                        self.send_request(&next, o);
                        Some(NodeState::Client(next))
                    }
                    _ => None,
                }
            }
        }
    }

    /// A timer fires; returns the actor's next state (None: unchanged).
    fn time_out(&self, state: &NodeState, timer: &Timer, o: &mut Out<Self>) -> Option<NodeState> {
        match (state, timer) {
            (NodeState::Server(s), Timer::Election) => {
                // With feature lease-read the lease ends first (etcd-io/raft:
                // the lease is the minimum election timeout), see Timer::Lease.
                if s.role == Role::Leader || s.lease || s.term >= self.cfg.max_term {
                    // Bound of the model: no election beyond max_term.
                    o.set_timer(Timer::Election, model_timeout());
                    return None;
                }
                let step = rules::elections::timeout(s, &self.rules());
                if step.state.role != Role::Leader {
                    o.set_timer(Timer::Election, model_timeout());
                }
                Some(self.finish(s, step, o))
            }
            (NodeState::Server(s), Timer::Heartbeat) => {
                o.set_timer(Timer::Heartbeat, model_timeout());
                let step = self.replicate(s, usize::MAX);
                Some(self.finish(s, step, o))
            }
            (NodeState::Server(s), Timer::Batch(n)) => {
                o.set_timer(Timer::Batch(*n), model_timeout());
                let step = self.replicate(s, *n as usize);
                Some(self.finish(s, step, o))
            }
            (NodeState::Server(s), Timer::CheckQuorum) => {
                let step = rules::elections::check_quorum(s, &self.rules());
                if step.state.role == Role::Leader {
                    o.set_timer(Timer::CheckQuorum, model_timeout());
                }
                Some(self.finish(s, step, o))
            }
            (NodeState::Server(s), Timer::Transfer(j)) => {
                o.set_timer(Timer::Transfer(*j), model_timeout());
                let rules = self.rules();
                let step = match s.transfer {
                    // etcd-io/raft aborts a transfer after an election
                    // timeout; the model's timers have no duration.
                    Some(t) if t.to == *j => rules::elections::abort_transfer(s),
                    Some(_) => return None,
                    // Bound of the model: the target's election would pass max_term.
                    None if s.term >= self.cfg.max_term => return None,
                    None => rules::elections::start_transfer(s, &rules, *j),
                };
                Some(self.finish(s, step, o))
            }
            (NodeState::Server(s), Timer::Change(c)) => {
                o.set_timer(Timer::Change(*c), model_timeout());
                let step = rules::membership::propose_change(s, &self.rules(), *c);
                Some(self.finish(s, step, o))
            }
            (NodeState::Server(s), Timer::Lease) => {
                let mut step = Step::unchanged(s);
                step.state.lease = false;
                step.state.ghost |= ghost::LEASE_EXPIRED;
                Some(self.finish(s, step, o))
            }
            (NodeState::Client(c), Timer::Retry) => {
                if c.seq > self.cfg.ops || c.retries >= self.cfg.max_retries {
                    // Bound of the model: a limited number of retries per request.
                    o.set_timer(Timer::Retry, model_timeout());
                    return None;
                }
                let next = ClientState {
                    target: c.target % self.cfg.servers + 1,
                    retries: c.retries + 1,
                    ..c.clone()
                };
                self.send_request(&next, o);
                o.set_timer(Timer::Retry, model_timeout());
                Some(NodeState::Client(next))
            }
            _ => None,
        }
    }
}
