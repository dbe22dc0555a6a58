//! Membership changes (features membership and config-on-apply), one rule
//! at a time: which configuration a server uses, what counts as a majority,
//! when a leader may propose a change, and the removed leader stepping down.

use raft_model::rules::{elections, handle_message, membership};
use raft_model::server::ghost;
use raft_model::types::{Command, Dest, Entry, Msg, Role};
use raft_model::{Change, Members, Membership, Rules, Server};

mod common;
use common::entry;

/// Four servers, servers 1 to 3 voting, with `feature` on.
fn rules(feature: &str) -> Rules {
    let mut r = Rules {
        initial: voters(&[1, 2, 3]),
        ..Rules::new(4)
    };
    r.with_feature(feature).unwrap();
    r
}

fn set(ids: &[u64]) -> Members {
    ids.iter().fold(Members::default(), |m, &j| m.with(j))
}

fn voters(ids: &[u64]) -> Membership {
    Membership {
        voters: set(ids),
        ..Default::default()
    }
}

/// A follower's acknowledgement, in term 1, of the log up to `index`.
fn ack(index: u64) -> Msg {
    Msg::AppendEntriesReply {
        term: 1,
        success: true,
        index,
    }
}

/// Server 1 as leader of term 1 (votes of 1 and 2), its write of the term
/// committed.
fn leader(rules: &Rules) -> Server {
    let c = elections::timeout(&Server::new(1), rules).state;
    let reply = Msg::RequestVoteReply {
        term: 1,
        granted: true,
        commit: None,
    };
    let mut l = handle_message(&c, rules, 2, &reply).state;
    assert_eq!(l.role, Role::Leader);
    l.log.entries.push(entry(1, 1));
    let ack = Msg::AppendEntriesReply {
        term: 1,
        success: true,
        index: 1,
    };
    let l = handle_message(&l, rules, 2, &ack).state;
    assert_eq!(l.commit, 1);
    l
}

#[test]
fn changes_move_one_server_and_never_empty_the_voters() {
    let m = voters(&[1, 2, 3]);
    assert_eq!(Change::AddVoter(4).apply(m), Some(voters(&[1, 2, 3, 4])));
    assert_eq!(Change::AddVoter(2).apply(m), None);
    assert_eq!(Change::RemoveVoter(3).apply(m), Some(voters(&[1, 2])));
    assert_eq!(Change::RemoveVoter(1).apply(voters(&[1])), None);
    let with_learner = Change::AddLearner(4).apply(m).unwrap();
    assert!(with_learner.learners.contains(4) && !with_learner.voters.contains(4));
    assert_eq!(Change::AddLearner(4).apply(with_learner), None);
    assert_eq!(
        Change::AddVoter(4).apply(with_learner),
        Some(voters(&[1, 2, 3, 4])),
        "promotion moves the learner to the voters"
    );
    let demoted = Change::Demote(3).apply(m).unwrap();
    assert_eq!(demoted.voters, voters(&[1, 2]).voters);
    assert!(demoted.learners.contains(3));
    assert_eq!(Change::Demote(1).apply(voters(&[1])), None);
    assert_eq!(
        Change::RemoveLearner(3).apply(demoted),
        Some(voters(&[1, 2]))
    );
    assert_eq!(Change::RemoveLearner(3).apply(m), None);
    for s in [
        "add:4",
        "remove:1",
        "learner:3",
        "remove-learner:2",
        "demote:5",
    ] {
        assert_eq!(s.parse::<Change>().unwrap().to_string(), s);
    }
    assert!("add:0".parse::<Change>().is_err());
    assert!("join:2".parse::<Change>().is_err());
}

/// A whole configuration (as a trace's configuration entry holds it) is a
/// change of the previous one only when it moves exactly one server.
#[test]
fn between_finds_the_single_server_change_and_nothing_else() {
    let m = voters(&[1, 2, 3]);
    for c in [
        Change::AddVoter(4),
        Change::RemoveVoter(2),
        Change::AddLearner(5),
        Change::Demote(1),
    ] {
        assert_eq!(Change::between(m, c.apply(m).unwrap()), Some(c), "{c}");
    }
    let with_learner = Change::AddLearner(4).apply(m).unwrap();
    assert_eq!(
        Change::between(with_learner, voters(&[1, 2, 3, 4])),
        Some(Change::AddVoter(4))
    );
    assert_eq!(
        Change::between(with_learner, m),
        Some(Change::RemoveLearner(4))
    );
    // Two servers at once, the same configuration, the last voter removed.
    assert_eq!(Change::between(m, voters(&[1, 4, 5])), None);
    assert_eq!(Change::between(m, voters(&[1, 2, 3, 4, 5])), None);
    assert_eq!(Change::between(m, m), None);
    assert_eq!(Change::between(voters(&[1]), voters(&[])), None);
}

#[test]
fn a_majority_counts_voters_only() {
    let r = rules("membership");
    let m = Membership {
        voters: Members::first(3),
        learners: Members::default().with(4),
        ..Default::default()
    };
    assert!(membership::is_quorum(&m, &r, |j| j == 1 || j == 2));
    assert!(
        !membership::is_quorum(&m, &r, |j| j == 1 || j == 4),
        "a learner's acknowledgement does not count"
    );
    let buggy = Rules {
        bug: Some(raft_model::Bug::LearnerCounts),
        ..r
    };
    assert!(membership::is_quorum(&m, &buggy, |j| j == 1 || j == 4));
}

#[test]
fn without_the_feature_the_log_is_never_read_for_a_configuration() {
    let r = Rules::new(3);
    let mut s = Server::new(1);
    s.log.entries.push(Entry {
        term: 1,
        cmd: Command::config(voters(&[1])),
    });
    assert_eq!(membership::config(&s, &r), voters(&[1, 2, 3]));
}

#[test]
fn the_latest_configuration_is_used_when_appended_or_when_applied() {
    let mut s = Server::new(2);
    s.log.entries.push(entry(1, 1));
    s.log.entries.push(Entry {
        term: 1,
        cmd: Command::config(voters(&[1, 2, 3, 4])),
    });
    let appended = rules("membership");
    let applied = rules("config-on-apply");
    assert_eq!(membership::config(&s, &appended), voters(&[1, 2, 3, 4]));
    assert_eq!(membership::config(&s, &applied), voters(&[1, 2, 3]));
    let commit = Msg::AppendEntries {
        term: 1,
        prev_index: 2,
        prev_term: 1,
        entries: vec![],
        commit: 2,
    };
    let s = handle_message(&s, &applied, 1, &commit).state;
    assert_eq!(s.commit, 2);
    assert_eq!(membership::config(&s, &applied), voters(&[1, 2, 3, 4]));
    assert!(s.has(ghost::VOTER_ADDED));
}

#[test]
fn a_server_outside_the_voters_does_not_campaign() {
    let r = rules("membership");
    let spare = Server::new(4);
    let step = elections::timeout(&spare, &r);
    assert_eq!(step.state, spare);
    assert!(step.sends.is_empty());
    let candidate = elections::timeout(&Server::new(1), &r);
    let asked: Vec<_> = candidate.sends.iter().map(|(d, _)| *d).collect();
    assert_eq!(
        asked,
        vec![Dest::Server(2), Dest::Server(3)],
        "only voters are asked"
    );
}

#[test]
fn one_change_at_a_time_and_only_after_a_commit_of_the_term() {
    let r = rules("membership");
    let l = leader(&r);
    // Not before the leader has committed an entry of its term.
    let mut fresh = l.clone();
    fresh.commit = 0;
    fresh.log.entries.clear();
    assert_eq!(
        membership::propose_change(&fresh, &r, Change::AddVoter(4)).state,
        fresh
    );
    let first = membership::propose_change(&l, &r, Change::AddVoter(4)).state;
    assert_eq!(first.log.last_index(), 2);
    assert_eq!(membership::config(&first, &r), voters(&[1, 2, 3, 4]));
    // A second change waits for the first to commit.
    let second = membership::propose_change(&first, &r, Change::RemoveVoter(3)).state;
    assert_eq!(second, first);
    let buggy = Rules {
        bug: Some(raft_model::Bug::OverlappingChanges),
        ..r
    };
    let both = membership::propose_change(&first, &buggy, Change::RemoveVoter(3)).state;
    assert_eq!(both.log.last_index(), 3);
    // A change that changes nothing is not proposed; a follower proposes nothing.
    assert_eq!(
        membership::propose_change(&l, &r, Change::AddVoter(2)).state,
        l
    );
    let follower = Server::new(2);
    assert_eq!(
        membership::propose_change(&follower, &r, Change::AddVoter(4)).state,
        follower
    );
}

#[test]
fn a_leader_that_commits_its_own_removal_steps_down() {
    let r = rules("membership");
    let l = leader(&r);
    let proposed = membership::propose_change(&l, &r, Change::RemoveVoter(1)).state;
    assert_eq!(
        proposed.role,
        Role::Leader,
        "it leads until the change commits"
    );
    assert_eq!(membership::config(&proposed, &r), voters(&[2, 3]));
    // The leader does not count itself: one of the two voters is not enough.
    let one = handle_message(&proposed, &r, 2, &ack(2)).state;
    assert_eq!(one.commit, 1);
    assert_eq!(one.role, Role::Leader);
    let both = handle_message(&one, &r, 3, &ack(2)).state;
    assert_eq!(both.commit, 2);
    assert_eq!(both.role, Role::Follower);
    assert!(both.has(ghost::LEADER_REMOVED) && both.has(ghost::VOTER_REMOVED));
    assert!(
        !both.has(ghost::JOINT_ENTERED) && !both.has(ghost::JOINT_LEFT),
        "a simple change neither enters nor leaves joint consensus"
    );
}

#[test]
fn with_removed_leader_stays_the_removed_leader_goes_on_leading_without_counting_itself() {
    let mut r = rules("config-on-apply");
    r.with_feature("removed-leader-stays").unwrap();
    let l = leader(&r);
    let proposed = membership::propose_change(&l, &r, Change::RemoveVoter(1)).state;
    // Config-on-apply: the old configuration commits the change (the
    // leader and server 2), and the model applies it at commit.
    let removed = handle_message(&proposed, &r, 2, &ack(2)).state;
    assert_eq!(removed.commit, 2);
    assert_eq!(membership::config(&removed, &r), voters(&[2, 3]));
    assert_eq!(removed.role, Role::Leader, "etcd-io/raft's default");
    assert!(!removed.has(ghost::LEADER_REMOVED));
    // It goes on leading, counting only the voters: server 2 alone is not
    // a majority of {2, 3}.
    let mut next = removed;
    next.log.entries.push(entry(1, 2));
    let one = handle_message(&next, &r, 2, &ack(3)).state;
    assert_eq!(one.commit, 2, "the leader does not count itself");
    let both = handle_message(&one, &r, 3, &ack(3)).state;
    assert_eq!((both.commit, both.role), (3, Role::Leader));
}

/// A removed leader that goes on leading is safe: the model check of a
/// leader's removal under config-on-apply holds every property.
#[test]
fn a_removed_leader_that_stays_keeps_every_safety_property() {
    use raft_model::check::{run, RunOptions, Status, Strategy};
    let mut cfg = raft_model::Config {
        servers: 3,
        clients: 1,
        ops: 1,
        max_term: 2,
        max_log: 3,
        max_in_flight: 4,
        max_retries: 1,
        changes: vec![Change::RemoveVoter(1)],
        ..raft_model::Config::default()
    };
    cfg.with_feature("config-on-apply").unwrap();
    cfg.with_feature("removed-leader-stays").unwrap();
    let r = run(
        &cfg,
        &RunOptions {
            strategy: Strategy::Dfs,
            threads: 2,
            ..Default::default()
        },
    );
    for p in &r.properties {
        assert_ne!(p.status, Status::Violated, "{} violated", p.name);
    }
    assert!(r.exhaustive);
    let removed = r
        .properties
        .iter()
        .find(|p| p.name == raft_model::properties::names::VOTER_REMOVED);
    assert_eq!(removed.map(|p| p.status), Some(Status::Reached));
}

fn joint(new: &[u64], old: &[u64]) -> Membership {
    Membership {
        voters: set(new),
        outgoing: set(old),
        ..Default::default()
    }
}

#[test]
fn joint_consensus_is_entered_from_a_simple_configuration_and_only_left() {
    let old = voters(&[1, 2, 3]);
    let c_old_new = joint(&[2, 3, 4], &[1, 2, 3]);
    assert_eq!(Change::Joint(set(&[2, 3, 4])).apply(old), Some(c_old_new));
    assert_eq!(
        Change::LeaveJoint.apply(c_old_new),
        Some(voters(&[2, 3, 4]))
    );
    assert_eq!(Change::LeaveJoint.apply(old), None, "not joint");
    assert_eq!(Change::Joint(set(&[1, 2, 3])).apply(old), None, "no change");
    assert_eq!(
        Change::Joint(Members::default()).apply(old),
        None,
        "no voter"
    );
    assert_eq!(
        Change::Joint(set(&[1, 4])).apply(c_old_new),
        None,
        "no joint configuration from a joint one"
    );
    for c in [
        Change::AddVoter(5),
        Change::RemoveVoter(2),
        Change::AddLearner(5),
        Change::Demote(3),
    ] {
        assert_eq!(c.apply(c_old_new), None, "{c} in a joint configuration");
    }
    // A learner that becomes a voter stops being a learner.
    let with_learner = Membership {
        learners: set(&[4]),
        ..old
    };
    let next = Change::Joint(set(&[2, 3, 4])).apply(with_learner).unwrap();
    assert_eq!(next.learners, Members::default());
    assert_eq!(next.outgoing, set(&[1, 2, 3]));
    // between: a two-server change is only possible through C_old,new.
    assert_eq!(
        Change::between(old, c_old_new),
        Some(Change::Joint(set(&[2, 3, 4])))
    );
    assert_eq!(
        Change::between(c_old_new, voters(&[2, 3, 4])),
        Some(Change::LeaveJoint)
    );
    assert_eq!(Change::between(old, voters(&[2, 3, 4])), None);
    assert_eq!(
        Change::between(c_old_new, voters(&[1, 2, 3])),
        None,
        "leaving goes to C_new, never back to C_old"
    );
    assert_eq!(
        Change::between(old, joint(&[2, 3, 4], &[1, 2])),
        None,
        "the outgoing voters are the old ones"
    );
}

#[test]
fn joint_changes_read_and_print_as_flags() {
    for text in ["joint:2,3,4", "leave-joint", "add:4"] {
        let c: Change = text.parse().unwrap();
        assert_eq!(c.to_string(), text);
    }
    assert_eq!(
        "joint:4,2,3".parse::<Change>().unwrap(),
        Change::Joint(set(&[2, 3, 4]))
    );
    for bad in [
        "joint:",
        "joint:1,,2",
        "joint:0",
        "joint:65",
        "leave-joint:1",
    ] {
        let e = bad.parse::<Change>().unwrap_err();
        assert!(e.contains("bad membership change"), "{bad}: {e}");
    }
}

#[test]
fn a_joint_quorum_is_a_majority_of_the_new_voters_and_one_of_the_old() {
    let r = rules("membership");
    let m = joint(&[2, 3, 4], &[1, 2, 3]);
    let of = |ids: &'static [u64]| move |j| ids.contains(&j);
    assert!(membership::is_quorum(&m, &r, of(&[2, 3])));
    assert!(membership::is_quorum(&m, &r, of(&[1, 3, 4])));
    assert!(
        !membership::is_quorum(&m, &r, of(&[2, 4])),
        "a majority of the new voters alone"
    );
    assert!(
        !membership::is_quorum(&m, &r, of(&[1, 2])),
        "a majority of the old voters alone"
    );
    let buggy = Rules {
        bug: Some(raft_model::Bug::JointNewMajorityOnly),
        ..r
    };
    assert!(membership::is_quorum(&m, &buggy, of(&[2, 4])));
}

#[test]
fn while_joint_the_voters_of_both_configurations_campaign_and_are_asked() {
    let r = rules("membership");
    let l = leader(&r);
    let proposed = membership::propose_change(&l, &r, Change::Joint(set(&[2, 3, 4]))).state;
    assert_eq!(
        membership::config(&proposed, &r),
        joint(&[2, 3, 4], &[1, 2, 3])
    );
    assert_eq!(membership::asked_for_votes(&proposed, &r), vec![2, 3, 4]);
    assert!(
        membership::is_voter(&proposed, &r),
        "1 is an outgoing voter"
    );
    assert_eq!(
        membership::propose_change(&proposed, &r, Change::LeaveJoint)
            .state
            .log
            .last_index(),
        proposed.log.last_index(),
        "no second change while C_old,new is uncommitted"
    );
    // Server 2 with the leader is a majority of C_old, not of C_new.
    let one = handle_message(&proposed, &r, 2, &ack(2)).state;
    assert_eq!(one.commit, 1);
    let two = handle_message(&one, &r, 4, &ack(2)).state;
    assert_eq!(two.commit, 2);
    assert!(two.has(ghost::JOINT_ENTERED));
    assert_eq!(
        two.role,
        Role::Leader,
        "an outgoing voter leads while joint"
    );
    // Leaving: the leader, not in C_new, steps down once C_new commits.
    let left = membership::propose_change(&two, &r, Change::LeaveJoint).state;
    assert_eq!(membership::config(&left, &r), voters(&[2, 3, 4]));
    let three = handle_message(&left, &r, 2, &ack(3)).state;
    assert_eq!(three.role, Role::Leader, "it does not count itself");
    let done = handle_message(&three, &r, 4, &ack(3)).state;
    assert_eq!(done.commit, 3);
    assert!(done.has(ghost::JOINT_LEFT) && done.has(ghost::LEADER_REMOVED));
    assert_eq!(done.role, Role::Follower);
}
