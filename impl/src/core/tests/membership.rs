//! Membership changes, one server at a time (thesis §4.1-4.2).

use super::*;

/// Adds node `id` to the harness as a server that joins a running cluster
/// (no bootstrap configuration).
fn join(c: &mut Cluster, id: NodeId) {
    let mut conf = cfg(id, 0);
    conf.peers = Vec::new();
    conf.membership = true;
    c.nodes
        .insert(id, RaftNode::new(conf, Recovered::default(), None));
}

fn voters(n: &RaftNode) -> Vec<NodeId> {
    n.membership().voters.iter().copied().collect()
}

/// Ticks node `id` (a leader) through three heartbeat intervals,
/// delivering until quiet after each: enough for a follower cut off before
/// to catch up (a stalled pipeline falls back to probing after one).
fn heartbeat(c: &mut Cluster, id: NodeId) {
    for _ in 0..3 * c.node(id).config().heartbeat_ticks {
        c.node(id).tick();
        c.pump();
    }
}

/// A 3-node cluster led by 1, its no-op committed.
fn led_by_1() -> Cluster {
    let mut c = Cluster::new(3, |c| c.membership = true);
    c.elect(1);
    c.pump();
    c
}

#[test]
fn a_voter_is_added_and_every_node_uses_the_new_configuration() {
    let mut c = led_by_1();
    join(&mut c, 4);
    assert!(!c.node(4).is_voter());
    let index = c
        .node(1)
        .propose_change(ConfChange::AddVoter(4), b"ctx".to_vec());
    let index = index.unwrap();
    // The leader uses it as soon as it appends it (thesis §4.1).
    assert_eq!(voters(c.node(1)), [1, 2, 3, 4]);
    c.pump();
    heartbeat(&mut c, 1);
    for id in 1..=4 {
        assert_eq!(voters(c.node(id)), [1, 2, 3, 4], "node {id}");
        assert!(c.node(id).commit_index() >= index, "node {id}");
    }
    match &c.node(4).log().entry(index).unwrap().payload {
        Payload::Config(e) => assert_eq!(e.context, b"ctx"),
        p => panic!("{p:?}"),
    }
    // Four voters: a commit needs three of them.
    c.cut.insert(3);
    c.cut.insert(4);
    let i = c.node(1).propose(cmd(1)).unwrap();
    c.pump();
    assert!(c.node(1).commit_index() < i, "2 of 4 voters do not commit");
    c.cut.remove(&4);
    heartbeat(&mut c, 1);
    c.pump();
    assert!(c.node(1).commit_index() >= i, "3 of 4 do");
}

#[test]
fn one_change_at_a_time_and_only_after_an_entry_of_the_leaders_term() {
    let mut c = Cluster::new(3, |c| c.membership = true);
    c.node(1).campaign();
    // Not leader: redirected.
    assert!(matches!(
        c.node(2).propose_change(ConfChange::AddVoter(4), vec![]),
        Err(ChangeError::NotLeader(_))
    ));
    // Elected, its no-op lost: not committed, so no change yet (Ongaro's
    // 2015 correction).
    c.pump_dropping(|m| matches!(m.body, Body::AppendEntries { .. }));
    assert!(c.node(1).is_leader());
    join(&mut c, 4);
    join(&mut c, 5);
    assert_eq!(
        c.node(1).propose_change(ConfChange::AddLearner(4), vec![]),
        Err(ChangeError::NotReady)
    );
    c.cut.clear();
    heartbeat(&mut c, 1);
    c.pump();
    c.cut.insert(2);
    c.cut.insert(3);
    let first = c
        .node(1)
        .propose_change(ConfChange::AddLearner(4), vec![])
        .unwrap();
    c.pump();
    assert_eq!(
        c.node(1).propose_change(ConfChange::AddVoter(5), vec![]),
        Err(ChangeError::Pending(first))
    );
    c.cut.clear();
    heartbeat(&mut c, 1);
    c.pump();
    assert!(c.node(1).commit_index() >= first);
    c.node(1)
        .propose_change(ConfChange::AddVoter(5), vec![])
        .unwrap();
    // Changes that are not one server away from the current configuration.
    c.pump();
    assert_eq!(
        c.node(1).propose_change(ConfChange::AddVoter(5), vec![]),
        Err(ChangeError::AlreadyVoter(5))
    );
    assert_eq!(
        c.node(1).propose_change(ConfChange::AddLearner(2), vec![]),
        Err(ChangeError::AlreadyMember(2))
    );
    assert_eq!(
        c.node(1).propose_change(ConfChange::Remove(9), vec![]),
        Err(ChangeError::NotMember(9))
    );
}

#[test]
fn the_planted_bug_lets_changes_overlap() {
    let mut c = Cluster::new(3, |c| {
        c.membership = true;
        c.bugs = Bugs::NONE.with(Bug::OverlappingChanges);
    });
    c.elect(1);
    c.cut.insert(2);
    c.cut.insert(3);
    c.node(1)
        .propose_change(ConfChange::AddVoter(4), vec![])
        .unwrap();
    c.node(1)
        .propose_change(ConfChange::AddVoter(5), vec![])
        .unwrap();
    assert_eq!(voters(c.node(1)), [1, 2, 3, 4, 5]);
}

#[test]
fn a_learner_receives_the_log_but_never_counts() {
    let mut c = led_by_1();
    join(&mut c, 4);
    c.node(1)
        .propose_change(ConfChange::AddLearner(4), vec![])
        .unwrap();
    c.pump();
    assert!(!c.node(4).is_voter());
    assert!(c.node(4).membership().learners.contains(&4));
    c.cut.insert(2);
    c.cut.insert(3);
    let i = c.node(1).propose(cmd(1)).unwrap();
    c.pump();
    assert_eq!(c.node(4).last_index(), i, "the learner holds the entry");
    assert!(
        c.node(1).commit_index() < i,
        "a learner's copy does not count"
    );
    // A learner never campaigns, however long it hears nothing.
    c.cut.insert(1);
    for _ in 0..100 {
        c.node(4).tick();
    }
    assert_eq!(c.node(4).role(), Role::Follower);
    // Promoted, it votes and counts.
    c.cut.clear();
    heartbeat(&mut c, 1);
    c.pump();
    c.node(1)
        .propose_change(ConfChange::AddVoter(4), vec![])
        .unwrap();
    c.pump();
    assert_eq!(voters(c.node(4)), [1, 2, 3, 4]);
    assert!(c.node(4).membership().learners.is_empty());
}

#[test]
fn a_removed_leader_steps_down_once_its_removal_is_committed_and_never_campaigns() {
    let mut c = led_by_1();
    let i = c
        .node(1)
        .propose_change(ConfChange::Remove(1), vec![])
        .unwrap();
    // Until then it leads, without counting itself.
    assert!(c.node(1).is_leader());
    c.cut.insert(2);
    c.pump();
    assert!(c.node(1).is_leader());
    assert!(
        c.node(1).commit_index() < i,
        "itself and 3 are not 2 of {{2,3}}"
    );
    c.cut.clear();
    heartbeat(&mut c, 1);
    c.pump();
    assert_eq!(c.node(1).role(), Role::Follower);
    assert_eq!(c.node(1).leader(), None);
    let term = c.node(1).term();
    for _ in 0..100 {
        c.node(1).tick();
        c.pump();
    }
    assert_eq!(c.node(1).term(), term, "a removed server never campaigns");
    // The remaining two elect a leader.
    for _ in 0..60 {
        c.tick_all();
    }
    let leaders: Vec<NodeId> = [2, 3]
        .into_iter()
        .filter(|id| c.node(*id).is_leader())
        .collect();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
}

#[test]
fn a_removed_voter_no_longer_counts() {
    let mut c = led_by_1();
    c.node(1)
        .propose_change(ConfChange::Remove(3), vec![])
        .unwrap();
    c.pump();
    assert_eq!(voters(c.node(1)), [1, 2]);
    assert!(!c.node(1).progress.contains_key(&3));
    c.cut.insert(2);
    let i = c.node(1).propose(cmd(1)).unwrap();
    c.pump();
    assert!(c.node(1).commit_index() < i, "1 of {{1,2}} is no majority");
}

#[test]
fn a_snapshot_carries_its_configuration_and_a_restart_recovers_it() {
    let mut c = led_by_1();
    join(&mut c, 4);
    c.node(1)
        .propose_change(ConfChange::AddVoter(4), vec![])
        .unwrap();
    c.pump();
    for r in 1..=3 {
        c.node(1).propose(cmd(r)).unwrap();
        c.pump();
    }
    let applied = c.node(1).log().applied;
    c.node(1).compact(applied, Arc::new(b"state".to_vec()));
    assert_eq!(
        c.node(1).snapshot().unwrap().config,
        Membership::of_voters([1, 2, 3, 4])
    );
    // A learner that joins now gets the snapshot, and with it the
    // configuration.
    join(&mut c, 5);
    c.node(1)
        .propose_change(ConfChange::AddLearner(5), vec![])
        .unwrap();
    c.pump();
    heartbeat(&mut c, 1);
    c.pump();
    assert_eq!(c.node(5).log().snapshot_meta().index, applied);
    assert_eq!(voters(c.node(5)), [1, 2, 3, 4]);
    assert!(c.node(5).membership().learners.contains(&5));
    // A restart from the snapshot alone uses the snapshot's configuration.
    let snap = c.node(1).snapshot().unwrap().clone();
    let mut conf = cfg(4, 0);
    conf.peers = Vec::new();
    let n = RaftNode::new(
        conf,
        Recovered {
            snapshot: Some(snap),
            ..Recovered::default()
        },
        None,
    );
    assert!(n.is_voter());
    assert_eq!(voters(&n), [1, 2, 3, 4]);
}

/// A server that joins with an empty bootstrap configuration and receives
/// the log from its start cannot know the configuration in use before the
/// first configuration entry it holds (the cluster's bootstrap one is in no
/// entry): it takes no snapshot there, which would record an empty
/// configuration that a restart would then recover (simulator seed 118 of
/// `--membership --leader-transfer --lease-read` without duplication,
/// RestartRule). It compacts once its log holds the change that added it.
#[test]
fn a_joined_server_takes_no_snapshot_before_it_knows_the_configuration() {
    let mut c = led_by_1();
    for r in 1..=3 {
        c.node(1).propose(cmd(r)).unwrap();
        c.pump();
    }
    let mut conf = cfg(4, 0);
    conf.peers = Vec::new();
    conf.membership = true;
    conf.compact_every = 1;
    c.nodes
        .insert(4, RaftNode::new(conf, Recovered::default(), None));
    let added = c
        .node(1)
        .propose_change(ConfChange::AddLearner(4), Vec::new())
        .unwrap();
    c.pump();
    heartbeat(&mut c, 1);
    let n4 = c.node(4);
    assert_eq!(n4.log().applied, added);
    // Before the change the configuration is unknown to it: no snapshot.
    let before = added - 1;
    assert!(!n4.snapshot_due(before));
    n4.compact(before, Arc::new(b"kv".to_vec()));
    assert_eq!(n4.log().snapshot_meta().index, 0);
    // At the change it is known, and the snapshot holds it.
    assert!(n4.snapshot_due(added));
    n4.compact(added, Arc::new(b"kv".to_vec()));
    assert_eq!(n4.log().snapshot_meta().index, added);
    let snap = n4.snapshot().unwrap();
    assert_eq!(
        snap.config.voters.iter().copied().collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(snap.config.learners.contains(&4));
}

#[test]
fn a_truncated_configuration_entry_is_no_longer_used() {
    let mut c = led_by_1();
    // Node 1 appends a change that only it holds, then loses leadership.
    c.cut.insert(1);
    c.node(1)
        .propose_change(ConfChange::Remove(3), vec![])
        .unwrap();
    assert_eq!(voters(c.node(1)), [1, 2]);
    c.pump();
    c.elect(2);
    c.node(2).propose(cmd(1)).unwrap();
    c.pump();
    c.cut.clear();
    heartbeat(&mut c, 2);
    c.pump();
    assert_eq!(c.node(1).role(), Role::Follower);
    assert_eq!(voters(c.node(1)), [1, 2, 3], "the change was truncated");
}

#[test]
fn changes_are_refused_unless_enabled() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.pump();
    assert_eq!(
        c.node(1).propose_change(ConfChange::AddVoter(4), vec![]),
        Err(ChangeError::Disabled)
    );
}

#[test]
fn majorities_count_voters_only() {
    let m = Membership {
        voters: [1, 2, 3, 4].into(),
        learners: [5].into(),
    };
    assert!(!m.has_quorum([1, 2, 5]));
    assert!(m.has_quorum([1, 2, 3]));
    assert_eq!(
        m.quorum_index(|id| [0, 9, 8, 7, 1, 100][id as usize]),
        7,
        "three of four voters hold 7"
    );
    assert!(!Membership::default().has_quorum([1]));
    assert!(m.can_still_win(1, [1, 2]), "1 yes + 2 unanswered of 4");
    assert!(!m.can_still_win(1, [1, 2, 3]));
    assert_eq!(
        Membership::of_voters([1]).apply(ConfChange::Remove(1)),
        Err(ChangeError::LastVoter(1))
    );
    assert_eq!(
        m.apply(ConfChange::AddVoter(5)).unwrap(),
        Membership::of_voters([1, 2, 3, 4, 5]),
        "a learner is promoted"
    );
}
