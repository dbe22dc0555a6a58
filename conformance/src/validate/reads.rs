//! Reads served without the log (features `read-index` and `lease-read`):
//! each `read` event is checked against what its leader had confirmed when
//! it served it, so that a stale read is rejected whether or not the client
//! history happens to show a stale value.
//!
//! A leader may answer a read from its state machine at read index `i`
//! (thesis 6.4) only when:
//! - it leads the term (`role` leader) when it serves the read;
//! - it had committed an entry of its term when it took `i` (its commit
//!   index then): the entry at `i` is of its term. Its commit index then
//!   covers every entry earlier leaders committed (Leader Completeness). A
//!   leader that is a quorum alone is exempt (etcd-io/raft answers at once);
//! - ReadIndex: it sent a round of heartbeats (or AppendEntries) whose
//!   `context` the read names, and a quorum, itself included, answered in
//!   its term that round or a later one (echoing its `context`): it was
//!   still leader when the read arrived;
//! - lease: the header declares `lease-read` and `check-quorum`, a quorum,
//!   itself included, answered its AppendEntries or heartbeats in its term,
//!   and it sent no `timeout_now` in the term (a transfer's election ignores
//!   leases). How long a lease lasts rests on clocks, which a trace does
//!   not show: that part is the model checker's (property "Leader Lease
//!   Holds").
//!
//! A trace does not show when a read arrived (a client request is not a
//! node event, and an emitter may write a step's messages after its later
//! commits), so the read index is not compared with the commit index at
//! arrival; the own-term rule above bounds it from below. A read index
//! above the commit index is not rejected either: the node then waits
//! longer before it answers, and what it applies is checked on its own
//! (`ApplyOnlyCommitted`). What the trace does not show is not held against
//! it: without the log's terms the own-term rule is skipped, without `send`
//! and `receive` the round checks are, and a leader's rounds sent before a
//! gap are unknown.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raft_trace::*;

use super::Violation;

/// How many rounds a leader's witness keeps per term; a read that names an
/// older one is not checked (never rejected for it).
const MAX_ROUNDS: usize = 65_536;

/// What a node, while leading a term, has shown of its reads' confirmation.
#[derive(Debug, Clone, Default)]
pub(super) struct Witness {
    term: Term,
    /// The ReadIndex rounds sent in the term: each context, with its place
    /// in the order of first sending.
    rounds: ahash::AHashMap<u64, u64>,
    /// The contexts in that order (to forget the oldest past a bound).
    order: VecDeque<u64>,
    next_pos: u64,
    /// Rounds of this term may be unknown (dropped past [`MAX_ROUNDS`], or
    /// lost in a gap).
    incomplete: bool,
    /// Per follower, the latest round (by position) it echoed in the term.
    echoed: BTreeMap<NodeId, u64>,
    /// Followers that answered the leader's AppendEntries or heartbeats in
    /// the term.
    answered: BTreeSet<NodeId>,
    sent_timeout_now: bool,
}

/// What holds for the whole run.
pub(super) struct Run<'a> {
    pub servers: usize,
    /// The header's features (`None`: not declared).
    pub features: Option<&'a [String]>,
    /// Whether `send` and `receive` events are declared.
    pub observes_messages: bool,
}

/// What the caller knows of the node when an event happens.
pub(super) struct Facts {
    pub term: Term,
    pub leader: bool,
}

impl Witness {
    /// Facts of an earlier term are dropped when the node moves on.
    fn at_term(&mut self, term: Term) {
        if term != self.term {
            *self = Witness {
                term,
                ..Witness::default()
            };
        }
    }

    /// Events of the node were lost: what it sent or heard may be missing.
    pub(super) fn lost_events(&mut self) {
        self.incomplete = true;
    }

    pub(super) fn sent(&mut self, msg: &Message, f: &Facts) {
        if msg.term != f.term || !f.leader {
            return;
        }
        self.at_term(f.term);
        let context = match &msg.rpc {
            Rpc::Heartbeat { context, .. } | Rpc::AppendEntries { context, .. } => *context,
            Rpc::TimeoutNow {} => {
                self.sent_timeout_now = true;
                None
            }
            _ => None,
        };
        let Some(context) = context else { return };
        if self.rounds.contains_key(&context) {
            return;
        }
        if self.order.len() == MAX_ROUNDS {
            if let Some(old) = self.order.pop_front() {
                self.rounds.remove(&old);
            }
            self.incomplete = true;
        }
        self.rounds.insert(context, self.next_pos);
        self.order.push_back(context);
        self.next_pos += 1;
    }

    pub(super) fn received(&mut self, msg: &Message, f: &Facts) {
        if msg.term != f.term || !f.leader {
            return;
        }
        self.at_term(f.term);
        let context = match &msg.rpc {
            Rpc::HeartbeatReply { context } | Rpc::AppendEntriesReply { context, .. } => {
                self.answered.insert(msg.from);
                *context
            }
            _ => None,
        };
        let Some(&pos) = context.and_then(|c| self.rounds.get(&c)) else {
            return;
        };
        let e = self.echoed.entry(msg.from).or_insert(pos);
        *e = (*e).max(pos);
    }

    /// Checks a `read` event of `node`;
    /// `index_term` is the term of the node's entry at the read index, when
    /// the trace shows it.
    pub(super) fn read(
        &mut self,
        node: NodeId,
        r: &Read,
        f: &Facts,
        index_term: Option<Term>,
        run: &Run<'_>,
    ) -> Result<(), Violation> {
        let (servers, features) = (run.servers, run.features);
        // Without `send` and `receive` events the rounds are not shown.
        self.incomplete |= !run.observes_messages;
        let rule = match r.via {
            ReadVia::ReadIndex => "ReadIndexRule",
            ReadVia::Lease => "LeaseReadRule",
        };
        let quorum = servers / 2 + 1;
        if !f.leader {
            return Err(Violation::new(
                rule,
                format!("node {node} leads term {} when it serves a read", f.term),
                format!("{} by a node that is not leader", describe(r)),
            ));
        }
        self.at_term(f.term);
        // A leader that is a quorum alone needs no entry of its term first.
        let index_term = index_term.filter(|_| quorum > 1);
        match r.via {
            ReadVia::Lease => {
                let declared = |name: &str| features.is_none_or(|fs| fs.iter().any(|x| x == name));
                if !declared("lease-read") || !declared("check-quorum") {
                    return Err(Violation::new(
                        rule,
                        "a lease read only with features lease-read and check-quorum \
                         (without check-quorum followers do not honour the lease)",
                        format!(
                            "{}; the header's features: {}",
                            describe(r),
                            features.map_or(String::new(), |fs| fs.join(", "))
                        ),
                    ));
                }
                own_term_committed(rule, node, f.term, index_term, r)?;
                if self.sent_timeout_now {
                    return Err(Violation::new(
                        rule,
                        format!(
                            "no lease read after node {node} sent timeout_now in term {} \
                             (the transfer's election ignores leases)",
                            f.term
                        ),
                        describe(r),
                    ));
                }
                if self.answered.len() + 1 < quorum && !self.incomplete {
                    return Err(Violation::new(
                        rule,
                        format!(
                            "a lease: a quorum of {quorum} (the leader included) answered \
                             node {node}'s AppendEntries or heartbeats in term {}",
                            f.term
                        ),
                        format!("{}; answered: {}", describe(r), names(&self.answered, node)),
                    ));
                }
                Ok(())
            }
            ReadVia::ReadIndex => {
                let Some(context) = r.context else {
                    if quorum > 1 {
                        return Err(Violation::new(
                            rule,
                            format!(
                                "a ReadIndex read names the heartbeat round (context) that \
                                 confirmed it: node {node} is no quorum alone"
                            ),
                            describe(r),
                        ));
                    }
                    own_term_committed(rule, node, f.term, index_term, r)?;
                    return Ok(());
                };
                let Some(&round) = self.rounds.get(&context) else {
                    if self.incomplete {
                        return Ok(());
                    }
                    return Err(Violation::new(
                        rule,
                        format!(
                            "node {node} sent a round of heartbeats with context {context} \
                             as leader of term {} before the read",
                            f.term
                        ),
                        format!("{}; no such round in term {}", describe(r), f.term),
                    ));
                };
                own_term_committed(rule, node, f.term, index_term, r)?;
                let confirmed: BTreeSet<NodeId> = self
                    .echoed
                    .iter()
                    .filter(|(_, &pos)| pos >= round)
                    .map(|(&n, _)| n)
                    .collect();
                if confirmed.len() + 1 < quorum && !self.incomplete {
                    return Err(Violation::new(
                        rule,
                        format!(
                            "a quorum of {quorum} (the leader included) answered round \
                             {context} (or a later one) in term {}",
                            f.term
                        ),
                        format!("{}; answered: {}", describe(r), names(&confirmed, node)),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// The entry at the read index is of the leader's term: the leader had
/// committed an entry of its term when it took the index.
fn own_term_committed(
    rule: &'static str,
    node: NodeId,
    term: Term,
    index_term: Option<Term>,
    r: &Read,
) -> Result<(), Violation> {
    match index_term {
        Some(t) if t != term => Err(Violation::new(
            rule,
            format!(
                "a read index at an entry of node {node}'s term {term}: a leader takes one \
                 only once it has committed an entry of its term (else its commit index \
                 may miss entries earlier leaders committed)"
            ),
            format!("{}, an entry of term {t}", describe(r)),
        )),
        _ => Ok(()),
    }
}

fn describe(r: &Read) -> String {
    let via = match r.via {
        ReadVia::ReadIndex => "read_index",
        ReadVia::Lease => "lease",
    };
    let mut s = format!("a read at index {} via {via}", r.index);
    if let Some(c) = r.context {
        s += &format!(" (context {c})");
    }
    if let (Some(c), Some(q)) = (r.client, r.req) {
        s += &format!(" for client {c} request {q}");
    }
    s
}

fn names(set: &BTreeSet<NodeId>, leader: NodeId) -> String {
    let mut all: Vec<String> = vec![format!("{leader} (itself)")];
    all.extend(set.iter().map(|n| n.to_string()));
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEADER: Facts = Facts {
        term: 2,
        leader: true,
    };

    fn run(features: Option<&[String]>) -> Run<'_> {
        Run {
            servers: 3,
            features,
            observes_messages: true,
        }
    }

    fn heartbeat(to: NodeId, context: u64) -> Message {
        Message::new(
            context * 10 + to,
            1,
            to,
            2,
            Rpc::Heartbeat {
                commit: 0,
                context: Some(context),
            },
        )
    }

    fn echo(from: NodeId, term: Term, context: u64) -> Message {
        Message::new(
            context * 10 + from,
            from,
            1,
            term,
            Rpc::HeartbeatReply {
                context: Some(context),
            },
        )
    }

    fn read(index: Index, via: ReadVia, context: Option<u64>) -> Read {
        Read {
            index,
            via,
            context,
            client: None,
            req: None,
        }
    }

    /// The leader sent rounds 7 and then 8 to nodes 2 and 3.
    fn two_rounds() -> Witness {
        let mut w = Witness::default();
        for c in [7, 8] {
            for to in [2, 3] {
                w.sent(&heartbeat(to, c), &LEADER);
            }
        }
        w
    }

    fn check(w: &mut Witness, r: &Read, index_term: Option<Term>) -> Result<(), Violation> {
        w.read(1, r, &LEADER, index_term, &run(None))
    }

    #[test]
    fn an_echo_of_a_later_round_confirms_an_earlier_read() {
        let mut w = two_rounds();
        w.received(&echo(3, 2, 8), &LEADER);
        check(&mut w, &read(5, ReadVia::ReadIndex, Some(7)), Some(2)).unwrap();
        check(&mut w, &read(5, ReadVia::ReadIndex, Some(8)), Some(2)).unwrap();
    }

    #[test]
    fn an_echo_of_an_earlier_round_does_not_confirm_a_later_read() {
        let mut w = two_rounds();
        w.received(&echo(3, 2, 7), &LEADER);
        check(&mut w, &read(5, ReadVia::ReadIndex, Some(7)), Some(2)).unwrap();
        let v = check(&mut w, &read(5, ReadVia::ReadIndex, Some(8)), Some(2)).unwrap_err();
        assert_eq!(v.rule, "ReadIndexRule");
        assert!(v.expected.contains("a quorum of 2"), "{v:?}");
    }

    #[test]
    fn echoes_of_another_term_and_rounds_never_sent_confirm_nothing() {
        let mut w = two_rounds();
        w.received(&echo(3, 1, 8), &LEADER);
        assert!(check(&mut w, &read(5, ReadVia::ReadIndex, Some(8)), Some(2)).is_err());
        let v = check(&mut w, &read(5, ReadVia::ReadIndex, Some(9)), Some(2)).unwrap_err();
        assert!(v.actual.contains("no such round"), "{v:?}");
        // Without a round at all, a leader of three is no quorum alone.
        assert!(check(&mut w, &read(5, ReadVia::ReadIndex, None), Some(2)).is_err());
        // A follower serves nothing.
        let follower = Facts {
            term: 2,
            leader: false,
        };
        let r = read(5, ReadVia::ReadIndex, Some(8));
        assert!(w.read(3, &r, &follower, Some(2), &run(None)).is_err());
    }

    #[test]
    fn a_read_index_before_an_entry_of_the_term_is_rejected_unless_alone() {
        let mut w = two_rounds();
        w.received(&echo(2, 2, 8), &LEADER);
        let r = read(4, ReadVia::ReadIndex, Some(8));
        let v = check(&mut w, &r, Some(1)).unwrap_err();
        assert!(v.actual.contains("an entry of term 1"), "{v:?}");
        check(&mut w, &r, None).unwrap();
        let alone = Run {
            servers: 1,
            features: None,
            observes_messages: true,
        };
        w.read(
            1,
            &read(4, ReadVia::ReadIndex, None),
            &LEADER,
            Some(1),
            &alone,
        )
        .unwrap();
    }

    #[test]
    fn a_lease_read_needs_the_features_answers_and_no_transfer() {
        let declared: Vec<String> = vec!["check-quorum".into(), "lease-read".into()];
        let undeclared: Vec<String> = vec!["check-quorum".into()];
        let r = read(5, ReadVia::Lease, None);
        let mut w = Witness::default();
        // No follower answered in the term yet.
        let v = w
            .read(1, &r, &LEADER, Some(2), &run(Some(&declared)))
            .unwrap_err();
        assert_eq!(v.rule, "LeaseReadRule");
        let reply = Message::new(
            1,
            2,
            1,
            2,
            Rpc::AppendEntriesReply {
                success: true,
                match_index: Some(5),
                hint_index: None,
                hint_term: None,
                context: None,
            },
        );
        w.received(&reply, &LEADER);
        w.read(1, &r, &LEADER, Some(2), &run(Some(&declared)))
            .unwrap();
        assert!(w
            .read(1, &r, &LEADER, Some(2), &run(Some(&undeclared)))
            .is_err());
        w.sent(&Message::new(9, 1, 2, 2, Rpc::TimeoutNow {}), &LEADER);
        let v = w
            .read(1, &r, &LEADER, Some(2), &run(Some(&declared)))
            .unwrap_err();
        assert!(v.expected.contains("timeout_now"), "{v:?}");
    }

    #[test]
    fn a_new_term_forgets_the_old_rounds() {
        let mut w = two_rounds();
        w.received(&echo(3, 2, 8), &LEADER);
        let next = Facts {
            term: 3,
            leader: true,
        };
        let r = read(5, ReadVia::ReadIndex, Some(8));
        assert!(w.read(1, &r, &next, Some(3), &run(None)).is_err());
    }
}
