//! Pre-vote (thesis §9.6) and check-quorum with the leader lease (thesis
//! §6.2), each path with the option on and, where it changes anything, off.

use super::*;

fn both(c: &mut Config) {
    c.pre_vote = true;
    c.check_quorum = true;
}

fn pre_vote_only(c: &mut Config) {
    c.pre_vote = true;
}

fn msg(from: NodeId, to: NodeId, term: Term, body: Body) -> Message {
    Message {
        id: 1,
        from,
        to,
        term,
        body,
    }
}

fn pre_vote(from: NodeId, to: NodeId, term: Term, last_index: Index, last_term: Term) -> Message {
    msg(
        from,
        to,
        term,
        Body::PreVote {
            last_index,
            last_term,
        },
    )
}

fn heartbeat(from: NodeId, to: NodeId, term: Term) -> Message {
    msg(
        from,
        to,
        term,
        Body::AppendEntries {
            prev_index: 0,
            prev_term: 0,
            commit: 0,
            entries: vec![],
            read_ctx: 0,
        },
    )
}

/// A node recovered in `term` with a log of one entry per term in `log`.
fn recovered(id: NodeId, term: Term, log: &[Term], f: impl Fn(&mut Config)) -> RaftNode {
    let mut c = cfg(id, 3);
    f(&mut c);
    let entries = log
        .iter()
        .enumerate()
        .map(|(i, &t)| Entry {
            index: i as Index + 1,
            term: t,
            payload: Payload::Noop,
        })
        .collect();
    let rec = Recovered {
        hard_state: HardState {
            term,
            vote: None,
            commit: 0,
        },
        entries,
        ..Recovered::default()
    };
    RaftNode::new(c, rec, None)
}

/// The (granted, term) of every pre-vote reply in `msgs`.
fn pre_vote_replies(msgs: &[Message]) -> Vec<(bool, Term)> {
    msgs.iter()
        .filter_map(|m| match m.body {
            Body::PreVoteReply { granted } => Some((granted, m.term)),
            _ => None,
        })
        .collect()
}

/// Ticks the node alone until its election timer fires (at most twice the
/// election timeout).
fn time_out(n: &mut RaftNode) {
    let role = n.role();
    for _ in 0..40 {
        n.tick();
        if n.role() != role {
            return;
        }
    }
    panic!("no election timeout");
}

/// A cluster of `n` with pre-vote, node 1 a pre-candidate whose pre-vote
/// requests are drained.
fn pre_candidate(n: u64) -> Cluster {
    let mut c = Cluster::new(n, pre_vote_only);
    time_out(c.node(1));
    assert_eq!(c.node(1).role(), Role::PreCandidate);
    drain(c.node(1));
    c
}

#[test]
fn pre_vote_quorum_starts_a_real_election() {
    let mut c = Cluster::new(3, pre_vote_only);
    time_out(c.node(1));
    let n1 = c.node(1);
    assert_eq!(n1.role(), Role::PreCandidate);
    assert_eq!((n1.term(), n1.vote(), n1.leader()), (0, None, None));
    let (msgs, rds) = drain(n1);
    assert!(
        rds.iter().all(|rd| rd.hard_state.is_none()),
        "a pre-candidate persists nothing"
    );
    assert_eq!(msgs.len(), 2);
    assert!(msgs.iter().all(|m| m.term == 1
        && m.body
            == Body::PreVote {
                last_index: 0,
                last_term: 0
            }));
    // The first grant (with its own) is a quorum: a real election in term 1.
    c.node(2).step(msgs[0].clone());
    let (replies, _) = drain(c.node(2));
    assert_eq!(pre_vote_replies(&replies), vec![(true, 1)]);
    c.node(1).step(replies[0].clone());
    let n1 = c.node(1);
    assert_eq!(n1.role(), Role::Candidate);
    assert_eq!((n1.term(), n1.vote()), (1, Some(1)));
    let (msgs, rds) = drain(n1);
    assert_eq!(
        rds[0].hard_state.map(|h| (h.term, h.vote)),
        Some((1, Some(1)))
    );
    assert!(msgs
        .iter()
        .all(|m| m.term == 1 && matches!(m.body, Body::RequestVote { .. })));
    c.queue.extend(msgs);
    c.pump();
    assert!(c.node(1).is_leader());
    assert_eq!(c.node(1).term(), 1);
    assert_eq!(c.node(3).leader(), Some(1));
}

#[test]
fn without_pre_vote_a_timeout_campaigns_at_once() {
    let mut c = Cluster::new(3, |_| {});
    time_out(c.node(1));
    assert_eq!(c.node(1).role(), Role::Candidate);
    assert_eq!(c.node(1).term(), 1);
    let (msgs, _) = drain(c.node(1));
    assert!(msgs
        .iter()
        .all(|m| matches!(m.body, Body::RequestVote { .. })));
}

#[test]
fn single_node_pre_vote_elects_itself() {
    let mut c = Cluster::new(1, both);
    time_out(c.node(1));
    assert!(c.node(1).is_leader());
    assert_eq!(c.node(1).term(), 1);
}

#[test]
fn granting_a_pre_vote_changes_nothing_on_the_voter() {
    let mut n = recovered(3, 2, &[1, 2], pre_vote_only);
    n.tick();
    let elapsed = n.election_elapsed;
    n.step(pre_vote(1, 3, 5, 2, 2));
    assert_eq!((n.term(), n.vote(), n.role()), (2, None, Role::Follower));
    assert_eq!(n.election_elapsed, elapsed, "the election timer runs on");
    let (msgs, rds) = drain(&mut n);
    assert!(rds.iter().all(|rd| !rd.must_persist()), "nothing persisted");
    assert_eq!(pre_vote_replies(&msgs), vec![(true, 5)]);
    // The same holds with the options of the node process, and a real vote
    // in that term is still free.
    let mut n = recovered(3, 2, &[1, 2], both);
    n.step(pre_vote(1, 3, 3, 2, 2));
    n.step(pre_vote(2, 3, 3, 2, 2));
    let (msgs, _) = drain(&mut n);
    assert_eq!(pre_vote_replies(&msgs), vec![(true, 3), (true, 3)]);
    assert_eq!((n.term(), n.vote()), (2, None));
    n.step(msg(
        2,
        3,
        3,
        Body::RequestVote {
            last_index: 2,
            last_term: 2,
            transfer: false,
        },
    ));
    assert_eq!((n.term(), n.vote()), (3, Some(2)));
}

#[test]
fn pre_vote_refused_by_a_more_up_to_date_voter() {
    // The voter's last entry has a higher term, then it is longer.
    for (log, candidate) in [(&[1, 3][..], (5, 2)), (&[1, 2, 2][..], (2, 2))] {
        let mut n = recovered(3, 3, log, pre_vote_only);
        n.step(pre_vote(1, 3, 4, candidate.0, candidate.1));
        let (msgs, _) = drain(&mut n);
        assert_eq!(
            pre_vote_replies(&msgs),
            vec![(false, 3)],
            "refused with the voter's own term"
        );
        assert_eq!((n.term(), n.vote()), (3, None));
    }
}

#[test]
fn same_term_pre_vote_needs_a_free_vote() {
    // A voter already in the asked-for term grants only if its vote is free.
    let mut n = recovered(3, 4, &[1], pre_vote_only);
    n.step(msg(
        2,
        3,
        4,
        Body::RequestVote {
            last_index: 1,
            last_term: 1,
            transfer: false,
        },
    ));
    n.step(pre_vote(1, 3, 4, 1, 1));
    n.step(pre_vote(2, 3, 4, 1, 1));
    let (msgs, _) = drain(&mut n);
    assert_eq!(pre_vote_replies(&msgs), vec![(false, 4), (true, 4)]);
}

#[test]
fn stale_pre_vote_is_refused_with_the_voters_term() {
    let mut n = recovered(3, 5, &[], pre_vote_only);
    n.step(pre_vote(1, 3, 3, 0, 0));
    let (msgs, _) = drain(&mut n);
    assert_eq!(pre_vote_replies(&msgs), vec![(false, 5)]);
    assert_eq!(n.term(), 5);
}

#[test]
fn lost_pre_vote_returns_to_follower_in_the_same_term() {
    let mut c = pre_candidate(3);
    let refuse = |from| msg(from, 1, 0, Body::PreVoteReply { granted: false });
    c.node(1).step(refuse(2));
    assert_eq!(
        c.node(1).role(),
        Role::PreCandidate,
        "one refusal is no quorum"
    );
    c.node(1).step(refuse(3));
    let n1 = c.node(1);
    assert_eq!(n1.role(), Role::Follower);
    assert_eq!((n1.term(), n1.vote(), n1.leader()), (0, None, None));
    // A late grant of the lost round counts for nothing.
    n1.step(msg(2, 1, 1, Body::PreVoteReply { granted: true }));
    assert_eq!(n1.role(), Role::Follower);
    assert_eq!(n1.term(), 0);
    // Of four nodes (quorum three), two refusals already leave no way to win.
    let mut c = Cluster::new(4, pre_vote_only);
    time_out(c.node(1));
    drain(c.node(1));
    c.node(1).step(refuse(2));
    assert_eq!(c.node(1).role(), Role::PreCandidate);
    c.node(1).step(refuse(3));
    assert_eq!((c.node(1).role(), c.node(1).term()), (Role::Follower, 0));
}

#[test]
fn pre_vote_replies_of_a_higher_term() {
    // A refusal of a higher term: the pre-candidate adopts that term.
    let mut n = recovered(1, 2, &[], pre_vote_only);
    time_out(&mut n);
    assert_eq!(n.role(), Role::PreCandidate);
    n.step(msg(2, 1, 7, Body::PreVoteReply { granted: false }));
    assert_eq!((n.role(), n.term(), n.vote()), (Role::Follower, 7, None));
    // A grant carries the term asked for, which nobody holds yet: no change
    // but the count.
    let mut n = recovered(1, 2, &[], pre_vote_only);
    time_out(&mut n);
    drain(&mut n);
    n.step(msg(2, 1, 3, Body::PreVoteReply { granted: true }));
    assert_eq!((n.role(), n.term()), (Role::Candidate, 3), "term 2 + 1");
    // A pre-vote request of a higher term changes nobody's term either.
    let mut n = recovered(1, 2, &[], pre_vote_only);
    n.step(pre_vote(2, 1, 9, 0, 0));
    assert_eq!(n.term(), 2);
}

#[test]
fn pre_candidate_follows_a_leader_of_its_term() {
    let mut n = recovered(1, 2, &[], pre_vote_only);
    time_out(&mut n);
    assert_eq!(n.role(), Role::PreCandidate);
    n.step(heartbeat(2, 1, 2));
    assert_eq!(
        (n.role(), n.term(), n.leader()),
        (Role::Follower, 2, Some(2))
    );
    // A lower term's heartbeat does not: the old leader is told our term.
    let mut n = recovered(1, 2, &[], pre_vote_only);
    time_out(&mut n);
    drain(&mut n);
    n.step(heartbeat(2, 1, 1));
    assert_eq!(n.role(), Role::PreCandidate);
    let (msgs, _) = drain(&mut n);
    assert!(msgs.iter().any(|m| m.to == 2
        && m.term == 2
        && matches!(m.body, Body::AppendEntriesReply { success: false, .. })));
}

#[test]
fn timed_out_candidate_asks_for_pre_votes_again() {
    let mut n = recovered(1, 2, &[], pre_vote_only);
    time_out(&mut n);
    n.step(msg(2, 1, 3, Body::PreVoteReply { granted: true }));
    assert_eq!((n.role(), n.term()), (Role::Candidate, 3));
    time_out(&mut n);
    assert_eq!(
        (n.role(), n.term(), n.vote()),
        (Role::PreCandidate, 3, Some(1))
    );
}

/// Runs a cluster where node 3 is partitioned away for 300 ticks while
/// `writes` commands commit without it, then heals it; its election timer
/// fires first (its campaign reaches the others before the leader's next
/// heartbeat reaches it), then 100 ticks pass.
fn partition_and_rejoin(f: impl Fn(&mut Config), writes: u64) -> Cluster {
    let mut c = Cluster::new(3, f);
    c.elect(1);
    c.cut.insert(3);
    for r in 0..writes {
        c.node(1).propose(cmd(r + 1)).unwrap();
    }
    for _ in 0..300 {
        c.tick_all();
    }
    c.cut.clear();
    c.node(3).hup();
    c.pump();
    for _ in 0..100 {
        c.tick_all();
    }
    c
}

#[test]
fn rejoining_node_does_not_raise_the_cluster_term() {
    // Pre-vote: the partitioned node times out again and again without
    // raising its term; back, it follows the leader.
    let mut c = partition_and_rejoin(pre_vote_only, 3);
    assert!(c.node(1).is_leader());
    for id in 1..=3 {
        assert_eq!(c.node(id).term(), 1, "node {id}");
    }
    assert_eq!(c.node(3).leader(), Some(1));
    assert_eq!(c.node(3).commit_index(), 4);
    assert!(!c
        .delivered
        .iter()
        .any(|m| m.term > 1 && !matches!(m.body, Body::PreVote { .. })));
    // Even with a log as up to date as the cluster's, the lease of check-quorum
    // makes the others ignore its pre-votes.
    let mut c = partition_and_rejoin(both, 0);
    assert!(c.node(1).is_leader());
    for id in 1..=3 {
        assert_eq!(c.node(id).term(), 1, "node {id}");
    }
    assert_eq!(c.node(3).leader(), Some(1));
}

#[test]
fn without_pre_vote_a_rejoining_node_deposes_the_leader() {
    let mut c = partition_and_rejoin(|_| {}, 3);
    assert!(c.node(3).term() > 2, "the partitioned node raised its term");
    assert!(c.node(1).term() > 1, "and made the cluster follow");
}

#[test]
fn cut_off_leader_steps_down_after_an_election_timeout() {
    let mut c = Cluster::new(3, |c| c.check_quorum = true);
    c.elect(1);
    c.cut.insert(1);
    // The followers answered the first round, so the first check passes;
    // the second finds no one.
    for _ in 0..10 {
        c.node(1).tick();
        c.pump();
    }
    assert!(c.node(1).is_leader());
    for _ in 0..10 {
        c.node(1).tick();
        c.pump();
    }
    let n1 = c.node(1);
    assert_eq!(
        (n1.role(), n1.term(), n1.leader()),
        (Role::Follower, 1, None)
    );
    assert_eq!(n1.vote(), Some(1), "the vote of its term stays");
    assert_eq!(
        n1.propose(cmd(1)),
        Err(NotLeader { leader: None }),
        "it stops taking proposals"
    );
}

#[test]
fn without_check_quorum_a_cut_off_leader_keeps_leading() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.cut.insert(1);
    for _ in 0..200 {
        c.node(1).tick();
        c.pump();
    }
    assert!(c.node(1).is_leader());
}

#[test]
fn leader_with_a_quorum_keeps_leading_under_check_quorum() {
    let mut c = Cluster::new(5, both);
    c.elect(1);
    // Two of four followers are gone: with itself, three of five answer.
    c.cut.extend([4, 5]);
    for _ in 0..200 {
        c.tick_all();
        for id in [4, 5] {
            drain(c.node(id));
        }
    }
    assert!(c.node(1).is_leader());
    assert_eq!(c.node(1).term(), 1);
    // A third one gone: it steps down.
    c.cut.insert(3);
    for _ in 0..20 {
        c.node(1).tick();
        c.pump();
    }
    assert!(!c.node(1).is_leader());
}

#[test]
fn follower_in_lease_ignores_higher_term_vote_requests() {
    let rv = |term| {
        msg(
            3,
            2,
            term,
            Body::RequestVote {
                last_index: 5,
                last_term: 5,
                transfer: false,
            },
        )
    };
    let mut c = Cluster::new(3, both);
    c.elect(1);
    c.tick_all();
    let n2 = c.node(2);
    drain(n2);
    n2.step(rv(5));
    n2.step(pre_vote(3, 2, 5, 5, 5));
    assert_eq!((n2.term(), n2.vote(), n2.leader()), (1, Some(1), Some(1)));
    let (msgs, rds) = drain(n2);
    assert!(msgs.is_empty(), "no reply: {msgs:?}");
    assert!(rds.iter().all(|rd| !rd.must_persist()));
    // The leader itself is inside its lease too.
    c.node(1).step(msg(3, 1, 5, rv(5).body));
    assert!(c.node(1).is_leader());
    assert_eq!(c.node(1).term(), 1);
    // Once nothing was heard from the leader for an election timeout, the
    // lease is over.
    let n2 = c.node(2);
    for _ in 0..10 {
        n2.tick();
    }
    n2.step(rv(5));
    assert_eq!((n2.term(), n2.vote()), (5, Some(3)));
}

#[test]
fn without_check_quorum_a_follower_votes_in_a_higher_term() {
    let mut c = Cluster::new(3, pre_vote_only);
    c.elect(1);
    c.tick_all();
    let n2 = c.node(2);
    n2.step(pre_vote(3, 2, 5, 5, 5));
    let (msgs, _) = drain(n2);
    assert_eq!(pre_vote_replies(&msgs), vec![(true, 5)]);
    n2.step(msg(
        3,
        2,
        5,
        Body::RequestVote {
            last_index: 5,
            last_term: 5,
            transfer: false,
        },
    ));
    assert_eq!((n2.term(), n2.vote()), (5, Some(3)));
}

#[test]
fn leader_that_hears_nothing_is_replaced_without_term_inflation() {
    let mut c = Cluster::new(3, both);
    c.elect(1);
    // Node 1 still sends but receives nothing.
    c.cut_in.insert(1);
    let mut ticks = 0;
    let new = loop {
        c.tick_all();
        ticks += 1;
        if let Some(l) = [2, 3].into_iter().find(|&id| c.node(id).is_leader()) {
            break l;
        }
        assert!(ticks < 100, "no new leader");
    };
    assert!(!c.node(1).is_leader(), "the old leader stepped down");
    assert_eq!(c.node(new).term(), 2);
    let idx = c.node(new).propose(cmd(1)).unwrap();
    c.pump();
    c.tick_all();
    assert!(c.node(new).commit_index() >= idx);
    // Still cut: node 1 keeps asking for pre-votes; nobody's term moves.
    for _ in 0..100 {
        c.tick_all();
    }
    assert!(c.node(new).is_leader());
    assert_eq!(c.node(1).term(), 1);
    assert_eq!(c.node(new).term(), 2);
    // Healed: it follows the new leader and catches up.
    c.cut_in.clear();
    for _ in 0..20 {
        c.tick_all();
    }
    assert!(c.node(new).is_leader());
    let n1 = c.node(1);
    assert_eq!((n1.term(), n1.leader()), (2, Some(new)));
    assert_eq!(n1.commit_index(), c.node(new).commit_index());
}

#[test]
fn without_check_quorum_a_leader_that_hears_nothing_blocks_the_cluster() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.cut_in.insert(1);
    let idx = c.node(1).propose(cmd(1)).unwrap();
    for _ in 0..200 {
        c.tick_all();
    }
    assert!(c.node(1).is_leader());
    assert_eq!(c.node(2).term(), 1, "its heartbeats keep the others quiet");
    assert!(c.node(1).commit_index() < idx, "nothing commits");
}

#[test]
fn trace_names_pre_vote_messages_and_the_new_role_reasons() {
    use crate::trace::SharedTrace;
    use raft_trace as rt;
    let t = SharedTrace::default();
    let mut c = cfg(1, 3);
    both(&mut c);
    let mut n = RaftNode::new(c, Recovered::default(), Some(Box::new(t.clone())));
    time_out(&mut n);
    drain(&mut n);
    // Refused by both: lost; again, then won; then leading, it hears no one.
    let reply = |from, term, granted| msg(from, 1, term, Body::PreVoteReply { granted });
    n.step(reply(2, 0, false));
    n.step(reply(3, 0, false));
    time_out(&mut n);
    n.step(reply(2, 1, true));
    n.step(msg(2, 1, 1, Body::RequestVoteReply { granted: true }));
    assert!(n.is_leader());
    for _ in 0..20 {
        n.tick();
    }
    assert_eq!(n.role(), Role::Follower);
    drain(&mut n);
    let records = t.0.lock().unwrap().records.clone();
    let roles: Vec<(rt::Role, Term, rt::RoleReason)> = records
        .iter()
        .filter_map(|r| match r {
            rt::Record::Node(e) => match &e.event {
                rt::Event::Role(rc) => Some((rc.role, rc.term, rc.reason)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    use rt::{Role as R, RoleReason as W};
    assert_eq!(
        roles,
        vec![
            (R::PreCandidate, 0, W::ElectionTimeout),
            (R::Follower, 0, W::LostElection),
            (R::PreCandidate, 0, W::ElectionTimeout),
            (R::Candidate, 1, W::PreVoteWon),
            (R::Leader, 1, W::WonElection),
            (R::Follower, 1, W::CheckQuorum),
        ]
    );
    let pre_vote_sends: Vec<(Term, rt::Rpc)> = records
        .iter()
        .filter_map(|r| match r {
            rt::Record::Node(e) => match &e.event {
                rt::Event::Send(m) if matches!(m.msg.rpc, rt::Rpc::PreVote { .. }) => {
                    Some((m.msg.term, m.msg.rpc.clone()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    let pv = rt::Rpc::PreVote {
        last_index: 0,
        last_term: 0,
    };
    // Two rounds to two peers, each for term 1 while the node is in term 0.
    assert_eq!(pre_vote_sends, vec![(1, pv); 4]);
}

/// A voter's first answer counts, as in etcd-io/raft (`RecordVote`): a
/// refusal carries the voter's own term, so one answering an older round
/// looks current, and it used to take back that voter's grant of this
/// round (membership simulator seed 36: a pre-candidate of a 4-voter
/// configuration with grants from two voters stayed put).
#[test]
fn a_later_refusal_does_not_take_back_a_grant() {
    let mut c = pre_candidate(5);
    for (from, term, granted) in [(2, 1, true), (2, 0, false), (3, 1, true)] {
        c.node(1)
            .step(msg(from, 1, term, Body::PreVoteReply { granted }));
    }
    let n1 = c.node(1);
    assert_eq!((n1.role(), n1.term()), (Role::Candidate, 1));
    drain(n1);
    // The same for real votes, in term 1.
    for (from, granted) in [(2, true), (2, false), (3, true)] {
        c.node(1)
            .step(msg(from, 1, 1, Body::RequestVoteReply { granted }));
    }
    assert!(c.node(1).is_leader());
}
