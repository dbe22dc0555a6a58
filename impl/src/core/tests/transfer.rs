//! Leader transfer (thesis §3.10) and lost election.

use super::*;

fn transfer_on(c: &mut Config) {
    c.leader_transfer = true;
}

fn timeouts_now(c: &Cluster, from: NodeId, to: NodeId) -> usize {
    c.delivered
        .iter()
        .filter(|m| m.from == from && m.to == to && m.body == Body::TimeoutNow)
        .count()
}

#[test]
fn happy_path_hands_leadership_to_the_target() {
    let mut c = Cluster::new(3, transfer_on);
    c.elect(1);
    c.node(1).propose(cmd(1)).unwrap();
    c.pump();
    let term = c.node(1).term();
    c.node(1).transfer_leader(2).unwrap();
    c.pump();
    assert_eq!(timeouts_now(&c, 1, 2), 1);
    assert!(c.node(2).is_leader());
    assert_eq!(c.node(2).term(), term + 1);
    assert_eq!(c.node(1).role(), Role::Follower);
    assert_eq!(c.node(1).leader(), Some(2));
    // The target's vote requests say that a transfer started them.
    assert!(c
        .delivered
        .iter()
        .any(|m| m.from == 2 && matches!(m.body, Body::RequestVote { transfer: true, .. })));
    // The new leader takes writes.
    c.node(2).propose(cmd(2)).unwrap();
    c.pump();
    assert_eq!(c.node(2).commit_index(), c.node(2).last_index());
    assert_eq!(c.node(1).last_index(), c.node(2).last_index());
}

#[test]
fn lagging_target_is_caught_up_before_timeout_now() {
    let mut c = Cluster::new(3, transfer_on);
    c.elect(1);
    c.cut.insert(3);
    for req in 1..=4 {
        c.node(1).propose(cmd(req)).unwrap();
        c.pump();
    }
    let last = c.node(1).last_index();
    assert!(c.node(3).last_index() < last);
    c.node(1).transfer_leader(3).unwrap();
    c.pump();
    assert_eq!(timeouts_now(&c, 1, 3), 0, "not while node 3 lags");
    c.cut.clear();
    // The next heartbeat finds node 3 behind; replication catches it up,
    // and only then does TimeoutNow leave.
    for _ in 0..4 {
        c.tick_all();
    }
    let first = c
        .delivered
        .iter()
        .position(|m| m.body == Body::TimeoutNow)
        .expect("TimeoutNow sent");
    let caught_up = c.delivered[..first].iter().any(|m| {
        m.from == 3
            && matches!(m.body, Body::AppendEntriesReply { success: true, index, .. } if index == last)
    });
    assert!(
        caught_up,
        "TimeoutNow only after node 3 acknowledged {last}"
    );
    assert!(c.node(3).is_leader());
    assert_eq!(c.node(3).last_index(), last + 1);
}

#[test]
fn proposals_are_refused_during_a_transfer() {
    let mut c = Cluster::new(3, transfer_on);
    c.elect(1);
    c.cut.insert(2);
    c.node(1).transfer_leader(2).unwrap();
    assert_eq!(c.node(1).transferring(), Some(2));
    assert_eq!(c.node(1).propose(cmd(1)), Err(NotLeader { leader: None }));
    assert_eq!(
        c.node(1).transfer_leader(3),
        Err(TransferError::InProgress(2))
    );
    // Reads by ReadIndex still work.
    c.node(1).read_index(9).unwrap();
}

#[test]
fn a_transfer_is_abandoned_after_an_election_timeout() {
    let mut c = Cluster::new(3, transfer_on);
    c.elect(1);
    c.cut.insert(2);
    c.node(1).transfer_leader(2).unwrap();
    let ticks = c.node(1).config().election_ticks;
    for _ in 0..ticks - 1 {
        c.node(1).tick();
        assert_eq!(c.node(1).transferring(), Some(2));
    }
    c.node(1).tick();
    assert_eq!(c.node(1).transferring(), None);
    assert!(c.node(1).is_leader());
    assert!(c.node(1).propose(cmd(1)).is_ok(), "proposals taken again");
}

#[test]
fn a_transfer_ends_when_the_leader_steps_down() {
    let mut c = Cluster::new(3, transfer_on);
    c.elect(1);
    c.cut.insert(2);
    c.node(1).transfer_leader(2).unwrap();
    c.cut.clear();
    c.elect(3);
    assert!(!c.node(1).is_leader());
    assert_eq!(c.node(1).transferring(), None);
}

#[test]
fn bad_transfers_are_refused() {
    let mut c = Cluster::new(3, transfer_on);
    c.elect(1);
    assert_eq!(c.node(1).transfer_leader(1), Err(TransferError::ToSelf(1)));
    assert_eq!(
        c.node(1).transfer_leader(9),
        Err(TransferError::UnknownNode(9))
    );
    assert_eq!(
        c.node(2).transfer_leader(3),
        Err(TransferError::NotLeader { leader: Some(1) })
    );
    let mut off = Cluster::new(3, |_| {});
    off.elect(1);
    assert_eq!(off.node(1).transfer_leader(2), Err(TransferError::Disabled));
}

#[test]
fn timeout_now_only_from_the_leader_of_our_term() {
    let mut c = Cluster::new(3, transfer_on);
    c.elect(1);
    let term = c.node(2).term();
    // From a node that is not our leader: ignored.
    c.node(2).step(Message {
        id: 99,
        from: 3,
        to: 2,
        term,
        body: Body::TimeoutNow,
    });
    assert_eq!(c.node(2).role(), Role::Follower);
    assert_eq!(c.node(2).term(), term);
    // From our leader: campaign at once, skipping pre-vote.
    c.node(2).step(Message {
        id: 100,
        from: 1,
        to: 2,
        term,
        body: Body::TimeoutNow,
    });
    assert_eq!(c.node(2).role(), Role::Candidate);
    assert_eq!(c.node(2).term(), term + 1);
}

/// Voters inside check-quorum's lease ignore an ordinary vote request of a
/// higher term, but not one a transfer started.
#[test]
fn a_transfer_vote_overrides_the_lease() {
    let mut c = Cluster::new(3, |c| {
        c.leader_transfer = true;
        c.check_quorum = true;
        c.pre_vote = true;
    });
    c.elect(1);
    let term = c.node(1).term();
    let last = (c.node(2).last_index(), c.node(2).log().last_term());
    let vote = |transfer| Message {
        id: 7,
        from: 2,
        to: 3,
        term: term + 1,
        body: Body::RequestVote {
            last_index: last.0,
            last_term: last.1,
            transfer,
        },
    };
    c.node(3).step(vote(false));
    assert_eq!(c.node(3).term(), term, "inside the lease: ignored");
    assert!(!c.node(3).has_ready() || drain(c.node(3)).0.is_empty());
    c.node(3).step(vote(true));
    assert_eq!(c.node(3).term(), term + 1);
    let (msgs, _) = drain(c.node(3));
    assert!(msgs
        .iter()
        .any(|m| m.to == 2 && m.body == Body::RequestVoteReply { granted: true }));
    // And the whole transfer goes through with check-quorum and pre-vote on.
    let mut c = Cluster::new(3, |c| {
        c.leader_transfer = true;
        c.check_quorum = true;
        c.pre_vote = true;
    });
    c.elect(1);
    c.node(1).transfer_leader(3).unwrap();
    c.pump();
    assert!(c.node(3).is_leader());
}

#[test]
fn transfer_is_traced() {
    let sink = crate::trace::SharedTrace::default();
    let mut c = Cluster::new(3, transfer_on);
    c.nodes.insert(
        2,
        RaftNode::new(
            {
                let mut k = cfg(2, 3);
                k.leader_transfer = true;
                k
            },
            Recovered::default(),
            Some(Box::new(sink.clone())),
        ),
    );
    c.elect(1);
    c.node(1).transfer_leader(2).unwrap();
    c.pump();
    use raft_trace as rt;
    let events: Vec<rt::Event> = sink
        .0
        .lock()
        .unwrap()
        .records
        .iter()
        .filter_map(|r| match r {
            rt::Record::Node(e) => Some(e.event.clone()),
            _ => None,
        })
        .collect();
    let has = |f: &dyn Fn(&rt::Event) -> bool| events.iter().any(f);
    assert!(has(
        &|e| matches!(e, rt::Event::Receive(m) if m.msg.rpc == rt::Rpc::TimeoutNow {})
    ));
    assert!(has(
        &|e| matches!(e, rt::Event::Role(r) if r.reason == rt::RoleReason::Transfer)
    ));
    assert!(has(
        &|e| matches!(e, rt::Event::Send(m) if matches!(m.msg.rpc, rt::Rpc::RequestVote { transfer: true, .. }))
    ));
}

/// A candidate refused by a quorum becomes follower in its term, leader
/// unknown (etcd-io/raft's `VoteLost`); without the option it waits.
#[test]
fn a_candidate_refused_by_a_quorum_gives_up() {
    for lost_election in [true, false] {
        let mut n = RaftNode::new(
            {
                let mut k = cfg(1, 3);
                k.lost_election = lost_election;
                k
            },
            Recovered::default(),
            None,
        );
        n.campaign();
        let term = n.term();
        drain(&mut n);
        let refuse = |from| Message {
            id: from,
            from,
            to: 1,
            term,
            body: Body::RequestVoteReply { granted: false },
        };
        n.step(refuse(2));
        assert_eq!(n.role(), Role::Candidate, "one refusal is not a quorum");
        n.step(refuse(3));
        if lost_election {
            assert_eq!(n.role(), Role::Follower);
            assert_eq!(n.term(), term);
            assert_eq!(n.leader(), None);
            assert_eq!(n.vote(), Some(1), "the vote in this term stays");
        } else {
            assert_eq!(n.role(), Role::Candidate);
        }
    }
}

#[test]
fn a_timeout_now_held_back_past_the_transfer_does_not_leave() {
    // The host releases messages only after persisting (the Ready
    // contract), so a TimeoutNow can wait in the node while other steps
    // happen. Here the transfer is abandoned and a proposal appended before
    // the host takes the messages: the target now lacks an entry, and the
    // leader no longer transfers, so the TimeoutNow must not leave.
    let mut c = Cluster::new(3, transfer_on);
    c.elect(1);
    c.pump();
    let last = c.node(1).last_index();
    assert_eq!(c.node(2).last_index(), last);
    c.node(1).transfer_leader(2).unwrap();
    let ticks = c.node(1).config().election_ticks;
    for _ in 0..ticks {
        c.node(1).tick();
    }
    assert_eq!(c.node(1).transferring(), None);
    assert_eq!(c.node(1).propose(cmd(1)), Ok(last + 1));
    let (msgs, _) = drain(c.node(1));
    assert!(
        !msgs.iter().any(|m| m.body == Body::TimeoutNow),
        "a TimeoutNow left with the leader's last index {} past node 2's match {last}",
        last + 1
    );
}

#[test]
fn a_timeout_now_held_back_while_the_target_is_up_to_date_leaves() {
    let mut c = Cluster::new(3, transfer_on);
    c.elect(1);
    c.pump();
    c.node(1).transfer_leader(2).unwrap();
    c.node(1).tick();
    let (msgs, _) = drain(c.node(1));
    assert_eq!(
        msgs.iter()
            .filter(|m| m.to == 2 && m.body == Body::TimeoutNow)
            .count(),
        1
    );
}
