//! The frontier of one node's replay: the model states the node may be in
//! given what the trace has shown ([`Cand`]), how a rule replaces each of
//! them by its successors without duplicates ([`NodeReplay::expand`]), and
//! how what the trace shows prunes them ([`NodeReplay::filter`]).

use std::sync::Arc;

use raft_model::rules::{replication, Step};
use raft_model::server::{Rules, Server};
use raft_model::state_machine::StateMachine;
use raft_model::types::{Dest, Index, Msg, NodeId, Role, Term};

use super::dispatch::{NodeReplay, Outcome};

/// How many unsent messages of earlier steps a candidate remembers (a node
/// whose disk stalls under a storm of duplicated messages may hold back
/// hundreds of replies: 317 in one simulator run). Past it, the oldest are
/// forgotten and a send the replay cannot match makes the run
/// inconclusive ([`Cand::forgot_pending`]), never a violation.
pub(super) const MAX_PENDING: usize = 4096;

/// How many ended leaderships a candidate remembers (hashicorp/raft's
/// replication goroutines of a leadership three terms old were seen sending).
/// A send of an older one makes the run inconclusive
/// ([`Cand::forgot_leadership`]), never a violation.
pub(super) const MAX_PAST_LEADERSHIPS: usize = 8;

/// One model state the node may be in, with what the replay tracks beside
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Cand {
    pub(super) s: Server,
    /// Commit index and state machine before this step's rule ran: the
    /// model commits eagerly; when the trace commits less, the replay lowers
    /// the candidate's commit back from here.
    pub(super) base_commit: Index,
    pub(super) base_sm: StateMachine,
    /// Messages the rules sent that the trace has not shown yet.
    /// The flag marks replies to a request of an older term, whose index
    /// the (newer-term) receiver ignores: only their term is compared.
    pub(super) pending: Vec<(NodeId, Msg, bool)>,
    /// Index of the last entry the trace applied, and the state machine
    /// after it (the model's own, fed with the same entries).
    pub(super) applied: Index,
    pub(super) applied_sm: StateMachine,
    /// False once the state machine came from data the trace does not show.
    pub(super) sm_known: bool,
    /// Whether the configuration in the state machine is known: always when
    /// `sm_known`, and also when a recovered snapshot stated its
    /// configuration although its other data is unknown.
    pub(super) config_known: bool,
    /// The highest commit index the model's rules have reached on this node
    /// (before lowering it to what the node did): those entries are
    /// committed, so the node may commit up to it later (once its own write
    /// is durable, say), or resume from it after a restart when it keeps its
    /// commit index on disk (as etcd's HardState does).
    pub(super) justified: Index,
    /// The states in which the node last was leader (oldest first, one per
    /// term, at most [`MAX_PAST_LEADERSHIPS`]), kept when it stepped down:
    /// replication messages it built then may leave later. Shared, as they
    /// rarely change and every candidate carries them.
    pub(super) past_leaders: Vec<Arc<Server>>,
    /// The highest term of a leadership dropped from `past_leaders` (0:
    /// none).
    pub(super) forgot_leadership: Term,
    /// Feature leader-transfer: the term in which the node last was leader,
    /// and the followers whose match index reached its last index at some
    /// point in that term (as its received replies showed). An emitter may
    /// log a TimeoutNow when it releases it, after the leader's log grew
    /// (etcd-io/raft with asynchronous storage writes).
    pub(super) transfer_ready: (Term, Vec<NodeId>),
    /// Messages of earlier steps were forgotten ([`MAX_PENDING`]).
    pub(super) forgot_pending: bool,
    /// Feature stale-term-step-down: the term in which the node, leading,
    /// left a reply of a higher term unheeded (0: never), which lets it
    /// step down in that term later.
    pub(super) unheeded: Term,
    /// The snapshots the node replaced by newer ones of its own, newest
    /// last, at most [`MAX_OLD_SNAPSHOTS`] (index, term, state machine): a
    /// leader may still send chunks of one it built before compacting
    /// again, and the receiver installs that one's contents.
    pub(super) old_snapshots: Vec<(Index, Term, Arc<StateMachine>)>,
}

/// How many replaced snapshots a candidate remembers
/// ([`Cand::old_snapshots`]); an InstallSnapshot of an older one carries
/// contents the replay does not know.
pub(super) const MAX_OLD_SNAPSHOTS: usize = 4;

impl Cand {
    pub(super) fn new(s: Server) -> Cand {
        Cand {
            base_commit: s.commit,
            base_sm: s.sm.clone(),
            applied: s.commit,
            applied_sm: s.sm.clone(),
            s,
            pending: Vec::new(),
            sm_known: true,
            config_known: true,
            justified: 0,
            past_leaders: Vec::new(),
            forgot_leadership: 0,
            transfer_ready: (0, Vec::new()),
            forgot_pending: false,
            unheeded: 0,
            old_snapshots: Vec::new(),
        }
    }

    /// The contents of the snapshot at (`index`, `term`) that this node
    /// holds or held, if the replay knows them.
    pub(super) fn snapshot_data(&self, index: Index, term: Term) -> Option<&StateMachine> {
        let log = &self.s.log;
        if log.snapshot_index == index && log.snapshot_term == term {
            return self.sm_known.then_some(&log.snapshot_data);
        }
        self.old_snapshots
            .iter()
            .rev()
            .find(|(i, t, _)| *i == index && *t == term)
            .map(|(_, _, d)| &**d)
    }

    /// The candidate a rule's `step` makes of this one, as the state of a
    /// new step (`free`: its messages answer a request of an older term).
    /// Built field by field, so that the server the step replaces is not
    /// copied, and a new field must be considered here.
    pub(super) fn successor(&self, step: Step, free: bool) -> Cand {
        let Cand {
            s: old,
            base_commit: _,
            base_sm: _,
            pending,
            applied,
            applied_sm,
            sm_known,
            config_known,
            justified,
            past_leaders,
            forgot_leadership,
            transfer_ready,
            forgot_pending,
            unheeded,
            old_snapshots,
        } = self;
        let mut n = Cand {
            s: step.state,
            base_commit: old.commit,
            base_sm: old.sm.clone(),
            pending: pending.clone(),
            applied: *applied,
            applied_sm: applied_sm.clone(),
            sm_known: *sm_known,
            config_known: *config_known,
            justified: *justified,
            past_leaders: past_leaders.clone(),
            forgot_leadership: *forgot_leadership,
            transfer_ready: transfer_ready.clone(),
            forgot_pending: *forgot_pending,
            unheeded: *unheeded,
            old_snapshots: old_snapshots.clone(),
        };
        n.adopt(old, step.sends, free);
        n
    }

    /// The rest of [`Cand::successor`]: `self.s` is the step's state, `old`
    /// the one it replaces.
    fn adopt(&mut self, old: &Server, sends: Vec<(Dest, Msg)>, free: bool) {
        // What only the model checker tracks (lease timing, history bits)
        // the trace cannot show: two candidates that differ only there are
        // one (a feature's rule and Figure 2's would otherwise double the
        // frontier at every step).
        self.s.lease = false;
        self.s.lease_acks.clear();
        // Whom a leader heard from matters only to check-quorum, whose
        // step-down the replay takes from the trace's role event.
        self.s.heard.clear();
        self.s.ghost = 0;
        self.justified = self.justified.max(self.s.commit);
        // A reply that raised a follower's match to the leader's last index
        // (not the initial match of a new leader's empty log).
        if self.s.role == Role::Leader && old.role == Role::Leader && old.term == self.s.term {
            let s = &self.s;
            let (term, ready) = &mut self.transfer_ready;
            if *term != s.term {
                *term = s.term;
                ready.clear();
            }
            for (k, (&m, &before)) in s.match_index.iter().zip(&old.match_index).enumerate() {
                let j = k as NodeId + 1;
                if m > before && m == s.log.last_index() && !ready.contains(&j) {
                    ready.push(j);
                }
            }
        }
        if old.role == Role::Leader && self.s.role != Role::Leader {
            if self.past_leaders.len() == MAX_PAST_LEADERSHIPS {
                let gone = self.past_leaders.remove(0);
                self.forgot_leadership = self.forgot_leadership.max(gone.term);
            }
            self.past_leaders.push(Arc::new(old.clone()));
        }
        // An implementation may hold a step's messages back (until its state
        // is durable, say) and send them after later steps: to the model
        // that is network delay. The oldest are forgotten past a bound.
        self.pending
            .extend(sends.into_iter().filter_map(|(to, m)| match to {
                Dest::Server(j) => Some((j, m, free)),
                Dest::Client(_) => None,
            }));
        if self.pending.len() > MAX_PENDING {
            let excess = self.pending.len() - MAX_PENDING;
            self.pending.drain(..excess);
            self.forgot_pending = true;
        }
    }

    /// The node commits late what the model's rules committed earlier on
    /// it: raises the candidate's commit index to `index` (applying the
    /// entries in between to the model's state machine) when the rules
    /// reached it ([`Cand::justified`]) and those entries are still in the
    /// log. Returns whether it did; a commit the rules never reached is
    /// left for the commit rule to reject.
    pub(super) fn commit_late(&mut self, rules: &Rules, index: Index) -> bool {
        if index <= self.s.commit
            || index > self.justified.min(self.s.log.last_index())
            || self.s.commit < self.s.log.snapshot_index
        {
            return false;
        }
        replication::commit_to(&mut self.s, rules, index);
        self.base_commit = index;
        self.base_sm = self.s.sm.clone();
        true
    }
}

impl Cand {
    /// Whether `self` and `o` are the same state apart from the messages
    /// their rules sent that the trace has not shown yet.
    fn same_but_pending(&self, o: &Cand) -> bool {
        // Destructured in full, so that a new field must be considered here.
        let Cand {
            s,
            base_commit,
            base_sm,
            pending: _,
            applied,
            applied_sm,
            sm_known,
            config_known,
            justified,
            past_leaders,
            forgot_leadership,
            transfer_ready,
            forgot_pending,
            unheeded,
            old_snapshots,
        } = self;
        *s == o.s
            && *base_commit == o.base_commit
            && *applied == o.applied
            && *sm_known == o.sm_known
            && *config_known == o.config_known
            && *justified == o.justified
            && *forgot_leadership == o.forgot_leadership
            && *forgot_pending == o.forgot_pending
            && *unheeded == o.unheeded
            && *transfer_ready == o.transfer_ready
            && *base_sm == o.base_sm
            && *applied_sm == o.applied_sm
            && *past_leaders == o.past_leaders
            && *old_snapshots == o.old_snapshots
    }
}

/// Merges candidates that differ only in their pending messages into one
/// whose pending messages are the union of theirs (as multisets). A pending
/// message never has to be sent (to the model, a reply the node does not
/// send is one the network lost), so the merged candidate accepts exactly
/// the sends that one of the merged ones accepts, or a combination of
/// them, which is another candidate's: a node that answers some requests
/// and ignores others (a vote request inside a leader lease, say) makes
/// one candidate per combination, 2^k of them for k such requests, all
/// merged here into one.
pub(super) fn merge_pending(frontier: &mut Vec<Cand>) {
    if frontier.len() < 2 {
        return;
    }
    let mut out: Vec<Cand> = Vec::with_capacity(frontier.len());
    for c in frontier.drain(..) {
        match out.iter_mut().find(|o| o.same_but_pending(&c)) {
            Some(o) => {
                for (k, p) in c.pending.iter().enumerate() {
                    let want = c.pending[..=k].iter().filter(|q| *q == p).count();
                    let have = o.pending.iter().filter(|q| *q == p).count();
                    if want > have {
                        o.pending.push(p.clone());
                    }
                }
                o.forgot_pending |= o.pending.len() > MAX_PENDING;
                if o.pending.len() > MAX_PENDING {
                    let excess = o.pending.len() - MAX_PENDING;
                    o.pending.drain(..excess);
                }
            }
            None => out.push(c),
        }
    }
    *frontier = out;
}

impl NodeReplay {
    /// Keeps the candidates `f` accepts; when none does, the first
    /// rejection is the answer.
    pub(super) fn filter(&mut self, mut f: impl FnMut(&mut Cand) -> Outcome) -> Outcome {
        let mut first = None;
        self.frontier.retain_mut(|c| match f(c) {
            Ok(()) => true,
            Err(v) => {
                first.get_or_insert(v);
                false
            }
        });
        match first {
            Some(v) if self.frontier.is_empty() => Err(v),
            _ => Ok(()),
        }
    }

    /// Replaces every candidate by its successors under a rule.
    pub(super) fn expand(&mut self, rule: &'static str, mut f: impl FnMut(&Cand) -> Vec<Step>) {
        self.expand_with(rule, None, &mut f)
    }

    /// [`Self::expand`] for the receive of a message of term `term`.
    pub(super) fn expand_with(
        &mut self,
        rule: &'static str,
        term: Option<Term>,
        f: &mut dyn FnMut(&Cand) -> Vec<Step>,
    ) {
        self.rule = rule;
        self.steps += 1;
        let mut next = std::mem::take(&mut self.spare);
        for c in &self.frontier {
            for step in f(c) {
                let n = c.successor(step, term.is_some_and(|t| t < c.s.term));
                if !next.contains(&n) {
                    next.push(n);
                }
            }
        }
        self.spare = std::mem::replace(&mut self.frontier, next);
        self.spare.clear();
        self.max_frontier = self.max_frontier.max(self.frontier.len());
    }
}
