//! The production-Raft options of `Rules` (behaviours of etcd-io/raft and
//! raft-rs beyond Figure 2): each new branch, the Figure 2 behaviour when the
//! option is off, and the feature-name API.

use raft_model::bugs::Bug;
use raft_model::rules::{elections, handle_message};
use raft_model::server::ghost;
use raft_model::types::{Command, Dest, Msg, Op, Role};
use raft_model::{Rules, Server, UnknownFeature, FEATURES};

mod common;
use common::entry;

fn with(features: &[&str]) -> Rules {
    let mut rules = Rules::new(3);
    for f in features {
        rules.with_feature(f).unwrap();
    }
    rules
}

/// A follower in term 2 holding e1 (term 1) committed and an uncommitted e2
/// of term 1.
fn follower_with_commit_1() -> Server {
    let mut f = Server::new(2);
    f.term = 2;
    f.log.entries = vec![entry(1, 1), entry(1, 2)];
    f.commit = 1;
    f.sm.apply(&entry(1, 1).cmd, true);
    f
}

/// An AppendEntries from S1, leader of term 2, from prevLogIndex 0 carrying
/// e1 and its own e3 (term 2).
fn stale_append() -> Msg {
    Msg::AppendEntries {
        term: 2,
        prev_index: 0,
        prev_term: 0,
        entries: vec![entry(1, 1), entry(2, 3)],
        commit: 1,
    }
}

fn append_reply(step: &raft_model::rules::Step) -> (bool, u64) {
    match step.sends.as_slice() {
        [(Dest::Server(1), Msg::AppendEntriesReply { success, index, .. })] => (*success, *index),
        other => panic!("expected one AppendEntriesReply to S1, got {other:?}"),
    }
}

#[test]
fn a_stale_append_is_ignored_and_acknowledged_at_the_commit_index() {
    let f = follower_with_commit_1();
    let step = handle_message(&f, &with(&["stale-append-reply"]), 1, &stale_append());
    assert_eq!(append_reply(&step), (true, 1));
    assert_eq!(step.state.log, f.log, "the entries are ignored");
    assert_eq!(step.state.commit, 1);
    assert_eq!(step.state.leader, Some(1));
    assert!(step.state.has(ghost::STALE_APPEND_ACKED));
}

#[test]
fn without_the_option_a_stale_append_follows_figure_2() {
    let f = follower_with_commit_1();
    let step = handle_message(&f, &Rules::new(3), 1, &stale_append());
    // Rules 3 and 4: e2 conflicts with e3, which replaces it; the reply
    // acknowledges the last new entry.
    assert_eq!(append_reply(&step), (true, 2));
    assert_eq!(step.state.log.entries, vec![entry(1, 1), entry(2, 3)]);
    assert!(step.state.has(ghost::TRUNCATED));
    assert!(!step.state.has(ghost::STALE_APPEND_ACKED));
}

#[test]
fn an_append_at_the_commit_index_is_not_stale() {
    let f = follower_with_commit_1();
    let at_commit = Msg::AppendEntries {
        term: 2,
        prev_index: 1,
        prev_term: 1,
        entries: vec![entry(2, 3)],
        commit: 1,
    };
    let step = handle_message(&f, &with(&["stale-append-reply"]), 1, &at_commit);
    assert_eq!(append_reply(&step), (true, 2));
    assert_eq!(step.state.log.entries, vec![entry(1, 1), entry(2, 3)]);
    assert!(!step.state.has(ghost::STALE_APPEND_ACKED));
}

#[test]
fn a_stale_append_of_an_older_term_is_still_refused() {
    let mut f = follower_with_commit_1();
    f.term = 3;
    let step = handle_message(&f, &with(&["stale-append-reply"]), 1, &stale_append());
    assert_eq!(append_reply(&step), (false, 0));
    assert!(!step.state.has(ghost::STALE_APPEND_ACKED));
}

#[test]
fn the_planted_bug_acknowledges_the_ignored_entries() {
    let f = follower_with_commit_1();
    let rules = Rules {
        bug: Some(Bug::StaleAppendMatch),
        ..with(&["stale-append-reply"])
    };
    let step = handle_message(&f, &rules, 1, &stale_append());
    // Claims index 2 matches the leader's e3 (term 2), but the follower
    // holds e2 (term 1) there.
    assert_eq!(append_reply(&step), (true, 2));
    assert_eq!(step.state.log, f.log);
}

fn refusal() -> Msg {
    Msg::RequestVoteReply {
        term: 1,
        granted: false,
        commit: None,
    }
}

#[test]
fn a_candidate_refused_by_a_quorum_becomes_follower_in_the_same_term() {
    let rules = with(&["lost-election"]);
    let c = elections::timeout(&Server::new(1), &rules).state;
    // One refusal: with S3's vote it could still win.
    let one = handle_message(&c, &rules, 2, &refusal()).state;
    assert_eq!(one.role, Role::Candidate);
    assert_eq!(one.rejections, vec![2]);
    // The same refusal delivered again counts once.
    let again = handle_message(&one, &rules, 2, &refusal()).state;
    assert_eq!(again.role, Role::Candidate);
    let lost = handle_message(&one, &rules, 3, &refusal()).state;
    assert_eq!(lost.role, Role::Follower);
    assert_eq!(lost.term, 1);
    assert_eq!(lost.voted_for, Some(1), "it keeps its own vote");
    assert_eq!(lost.leader, None);
    assert!(lost.votes.is_empty() && lost.rejections.is_empty());
    assert!(lost.has(ghost::LOST_ELECTION));
    // As a follower of term 1 it grants no other vote in term 1.
    let rv = Msg::RequestVote {
        term: 1,
        last_index: 5,
        last_term: 1,
        transfer: false,
        commit: None,
    };
    let voted = handle_message(&lost, &rules, 2, &rv);
    assert_eq!(
        voted.sends,
        vec![(
            Dest::Server(2),
            Msg::RequestVoteReply {
                term: 1,
                granted: false,
                commit: None,
            }
        )]
    );
}

#[test]
fn a_vote_after_a_refusal_still_wins() {
    let rules = with(&["lost-election"]);
    let c = elections::timeout(&Server::new(1), &rules).state;
    let one = handle_message(&c, &rules, 2, &refusal()).state;
    let grant = Msg::RequestVoteReply {
        term: 1,
        granted: true,
        commit: None,
    };
    let won = handle_message(&one, &rules, 3, &grant).state;
    assert_eq!(won.role, Role::Leader);
    assert!(!won.has(ghost::LOST_ELECTION));
}

#[test]
fn in_five_servers_a_candidate_loses_at_the_third_refusal() {
    let mut rules = Rules::new(5);
    rules.with_feature("lost-election").unwrap();
    let mut c = elections::timeout(&Server::new(1), &rules).state;
    for from in [2, 3] {
        c = handle_message(&c, &rules, from, &refusal()).state;
        assert_eq!(c.role, Role::Candidate, "after the refusal of S{from}");
    }
    c = handle_message(&c, &rules, 4, &refusal()).state;
    assert_eq!(c.role, Role::Follower);
    assert_eq!(c.term, 1);
}

#[test]
fn without_the_option_a_refused_candidate_waits_for_its_timeout() {
    let rules = Rules::new(3);
    let mut c = elections::timeout(&Server::new(1), &rules).state;
    for from in [2, 3] {
        c = handle_message(&c, &rules, from, &refusal()).state;
    }
    assert_eq!(c.role, Role::Candidate);
    assert!(c.rejections.is_empty(), "Figure 2 does not count refusals");
    assert!(!c.has(ghost::LOST_ELECTION));
}

#[test]
fn features_are_switched_on_by_name() {
    let figure2 = Rules::new(3);
    assert!(!figure2.stale_append_reply && !figure2.lost_election);
    assert!(figure2.features().is_empty());
    let mut rules = Rules::new(3);
    rules.with_feature("stale-append-reply").unwrap();
    assert!(rules.stale_append_reply && !rules.lost_election);
    rules.with_feature("lost-election").unwrap();
    assert!(rules.lost_election);
    assert_eq!(
        rules.features(),
        vec!["stale-append-reply", "lost-election"]
    );
    for name in [
        "pre-vote",
        "pre-vote-stale-grant",
        "heartbeat",
        "check-quorum",
        "read-index",
        "snapshot-fast-forward",
        "leader-transfer",
        "commit-any-message",
        "lease-read",
        "forward-proposals",
        "stale-term-step-down",
        "refuse-compacted-prev",
        "late-self-vote",
    ] {
        rules.with_feature(name).unwrap();
    }
    assert!(rules.stale_term_step_down && rules.refuse_compacted_prev && rules.late_self_vote);
    assert_eq!(
        rules,
        Rules::all_features(3),
        "all but the membership semantics"
    );
    rules.with_feature("config-on-apply").unwrap();
    assert!(
        rules.membership && rules.config_on_apply,
        "config-on-apply implies membership"
    );
    rules.with_feature("removed-leader-stays").unwrap();
    assert!(rules.removed_leader_stays);
    assert!(rules.pre_vote && rules.heartbeat && rules.check_quorum && rules.read_index);
    assert!(rules.pre_vote_stale_grant);
    assert!(rules.snapshot_fast_forward && rules.leader_transfer && rules.lease_read);
    assert_eq!(rules.features(), FEATURES.to_vec());
    let err = rules.with_feature("prevote").unwrap_err();
    assert_eq!(err, UnknownFeature("prevote".into()));
    let msg = err.to_string();
    assert!(
        msg.contains("prevote") && msg.contains("pre-vote") && msg.contains("lost-election"),
        "{msg}"
    );
}

#[test]
fn a_config_passes_its_features_to_the_rules_and_to_its_flags() {
    let mut cfg = raft_model::Config::default();
    assert_eq!(cfg.rules(), Rules::new(3));
    cfg.with_feature("lost-election").unwrap();
    assert!(cfg.features == ["lost-election"] && cfg.rules().lost_election);
    assert!(!cfg.rules().stale_append_reply);
    assert!(cfg.to_flags().ends_with("--feature lost-election"));
    assert!(cfg.with_feature("nope").is_err());
}

fn pre_vote_rules() -> Rules {
    with(&["pre-vote"])
}

#[test]
fn a_pre_vote_keeps_the_candidates_term_and_vote() {
    let rules = pre_vote_rules();
    let mut s = Server::new(1);
    s.term = 3;
    s.voted_for = Some(2);
    let step = elections::timeout(&s, &rules);
    assert_eq!(step.state.role, Role::PreCandidate);
    assert_eq!((step.state.term, step.state.voted_for), (3, Some(2)));
    for (to, (dest, msg)) in [2, 3].into_iter().zip(&step.sends) {
        assert_eq!(*dest, Dest::Server(to));
        assert_eq!(
            *msg,
            Msg::PreVote {
                term: 4,
                last_index: 0,
                last_term: 0,
                commit: None,
            }
        );
    }
}

#[test]
fn a_granted_pre_vote_changes_nothing_on_the_voter() {
    let rules = pre_vote_rules();
    let mut voter = Server::new(2);
    voter.term = 3;
    voter.voted_for = Some(3);
    voter.leader = Some(3);
    let ask = |li, lt| Msg::PreVote {
        term: 4,
        last_index: li,
        last_term: lt,
        commit: None,
    };
    let step = handle_message(&voter, &rules, 1, &ask(0, 0));
    assert_eq!(step.state, voter, "a pre-vote records nothing");
    assert_eq!(
        step.sends,
        vec![(
            Dest::Server(1),
            Msg::PreVoteReply {
                term: 4,
                granted: true,
                commit: None,
            }
        )]
    );
    // A candidate whose log is behind is refused, with the voter's term.
    voter.log.entries = vec![entry(3, 1)];
    let step = handle_message(&voter, &rules, 1, &ask(0, 0));
    assert_eq!(step.state, voter);
    assert_eq!(
        step.sends,
        vec![(
            Dest::Server(1),
            Msg::PreVoteReply {
                term: 3,
                granted: false,
                commit: None,
            }
        )]
    );
    // With the planted bug the voter adopts the pre-vote's term.
    let buggy = Rules {
        bug: Some(Bug::PreVoteRaisesTerm),
        ..rules
    };
    let step = handle_message(&voter, &buggy, 1, &ask(1, 3));
    assert_eq!(step.state.term, 4);
}

#[test]
fn a_pre_vote_quorum_starts_the_real_election_and_refusals_end_it() {
    let rules = pre_vote_rules();
    let mut s = Server::new(1);
    s.term = 3;
    let pre = elections::timeout(&s, &rules).state;
    let won = handle_message(
        &pre,
        &rules,
        2,
        &Msg::PreVoteReply {
            term: 4,
            granted: true,
            commit: None,
        },
    );
    assert_eq!(won.state.role, Role::Candidate);
    assert_eq!((won.state.term, won.state.voted_for), (4, Some(1)));
    assert!(won.state.has(ghost::PRE_VOTE_WON));
    assert_eq!(won.sends.len(), 2, "RequestVote to both peers");

    let refusal = Msg::PreVoteReply {
        term: 3,
        granted: false,
        commit: None,
    };
    let mut lost = pre.clone();
    for from in [2, 3] {
        lost = handle_message(&lost, &rules, from, &refusal).state;
    }
    assert_eq!((lost.role, lost.term), (Role::Follower, 3));
    assert!(lost.has(ghost::PRE_VOTE_LOST));
    // A grant of an older round, and a refusal carrying a newer term.
    let stale = handle_message(
        &pre,
        &rules,
        2,
        &Msg::PreVoteReply {
            term: 3,
            granted: true,
            commit: None,
        },
    );
    assert_eq!(stale.state, pre);
    let newer = handle_message(
        &pre,
        &rules,
        2,
        &Msg::PreVoteReply {
            term: 7,
            granted: false,
            commit: None,
        },
    );
    assert_eq!((newer.state.role, newer.state.term), (Role::Follower, 7));
}

fn leader_of_term_2_with_commit_2() -> Server {
    let rules = with(&["heartbeat", "check-quorum"]);
    let mut s = Server::new(1);
    s.term = 1;
    let mut s = elections::campaign(&s, &rules).state;
    elections::become_leader(&mut s, &rules);
    s.log.entries = vec![entry(2, 1), entry(2, 2)];
    s.commit = 2;
    s.match_index = vec![0, 1, 2];
    s
}

/// A heartbeat never tells a follower to commit past what it is known to
/// hold: etcd's `min(match, committed)`.
#[test]
fn a_heartbeat_carries_min_of_match_and_commit() {
    let s = leader_of_term_2_with_commit_2();
    for (to, commit) in [(2, 1), (3, 2)] {
        assert_eq!(
            raft_model::rules::replication::heartbeat(&s, to),
            Some(Msg::Heartbeat {
                term: 2,
                commit,
                ctx: None
            })
        );
    }
    // The follower commits up to it, within its log.
    let rules = with(&["heartbeat"]);
    let mut f = Server::new(2);
    f.term = 2;
    f.log.entries = vec![entry(2, 1)];
    let step = handle_message(
        &f,
        &rules,
        1,
        &Msg::Heartbeat {
            term: 2,
            commit: 2,
            ctx: None,
        },
    );
    assert_eq!(step.state.commit, 1);
    assert_eq!(step.state.leader, Some(1));
    assert!(step.state.has(ghost::HEARTBEAT_COMMIT));
    assert_eq!(
        step.sends[0],
        (Dest::Server(1), Msg::HeartbeatReply { term: 2, ctx: None })
    );
}

#[test]
fn check_quorum_steps_a_leader_down_unless_a_quorum_was_heard() {
    let rules = with(&["heartbeat", "check-quorum"]);
    let s = leader_of_term_2_with_commit_2();
    let down = elections::check_quorum(&s, &rules).state;
    assert_eq!(
        (down.role, down.term, down.leader),
        (Role::Follower, 2, None)
    );
    assert!(down.has(ghost::CHECK_QUORUM_STEP_DOWN));
    let heard = handle_message(&s, &rules, 3, &Msg::HeartbeatReply { term: 2, ctx: None }).state;
    assert_eq!(heard.heard, vec![3]);
    let kept = elections::check_quorum(&heard, &rules).state;
    assert_eq!(kept.role, Role::Leader);
    assert!(kept.heard.is_empty(), "each check starts afresh");
    // The lease: a follower that knows a leader may ignore a newer vote request.
    let mut f = Server::new(2);
    f.term = 2;
    f.leader = Some(1);
    assert!(elections::may_ignore_in_lease(&f, &rules, 3, false));
    assert!(!elections::may_ignore_in_lease(
        &f,
        &with(&["pre-vote"]),
        3,
        false
    ));
    // Never a transfer's vote request (thesis 3.10).
    assert!(!elections::may_ignore_in_lease(&f, &rules, 3, true));
    f.leader = None;
    assert!(!elections::may_ignore_in_lease(&f, &rules, 3, false));
}

/// ReadIndex (thesis 6.4): a leader with a commit of its term serves a read
/// after a heartbeat round acknowledged by a quorum, without the log; one
/// without such a commit sends the read through the log.
#[test]
fn a_read_index_read_waits_for_a_quorum_and_needs_a_commit_of_the_term() {
    let rules = with(&["read-index"]);
    let mut s = leader_of_term_2_with_commit_2();
    s.sm.value = 7;
    let read = Msg::Request(Command {
        client: 4,
        seq: 9,
        op: Op::Read,
    });
    let ctx = raft_model::types::read_context(4, 9);
    let asked = handle_message(&s, &rules, 0, &read);
    assert_eq!(asked.state.log, s.log, "nothing appended");
    assert_eq!(asked.state.reads.len(), 1);
    assert_eq!(asked.state.reads[0].index, 2);
    assert_eq!(
        asked.sends,
        vec![
            (
                Dest::Server(2),
                Msg::Heartbeat {
                    term: 2,
                    commit: 1,
                    ctx: Some(ctx)
                }
            ),
            (
                Dest::Server(3),
                Msg::Heartbeat {
                    term: 2,
                    commit: 2,
                    ctx: Some(ctx)
                }
            ),
        ]
    );
    let ack = Msg::HeartbeatReply {
        term: 2,
        ctx: Some(ctx),
    };
    let served = handle_message(&asked.state, &rules, 3, &ack);
    assert!(served.state.reads.is_empty());
    assert!(served.state.has(ghost::READ_INDEX_SERVED));
    assert_eq!(
        served.sends,
        vec![(
            Dest::Client(4),
            Msg::Reply {
                seq: 9,
                result: raft_model::types::OpResult::Read(7)
            }
        )]
    );
    // An ack of an older term confirms nothing.
    let old = handle_message(
        &asked.state,
        &rules,
        3,
        &Msg::HeartbeatReply {
            term: 1,
            ctx: Some(ctx),
        },
    );
    assert_eq!(old.state.reads.len(), 1);
    assert!(old.sends.is_empty());
    // No commit of its own term yet: the read goes through the log.
    s.log.entries[1].term = 1;
    s.log.entries[0].term = 1;
    let logged = handle_message(&s, &rules, 0, &read);
    assert_eq!(logged.state.log.last_index(), 3);
    assert!(logged.state.reads.is_empty());
    // ... unless the planted bug serves it from the old commit index.
    let buggy = Rules {
        bug: Some(Bug::ReadIndexOldCommit),
        ..rules
    };
    assert_eq!(handle_message(&s, &buggy, 0, &read).state.reads.len(), 1);
}

/// Snapshot fast-forward (etcd-io/raft `restore`): a follower holding the
/// snapshot's last entry commits up to it and installs nothing; without the
/// feature it installs the snapshot (Figure 13, keeping the entries after).
#[test]
fn a_snapshot_the_follower_holds_only_advances_its_commit() {
    let mut f = Server::new(2);
    f.term = 2;
    f.log.entries = vec![entry(2, 1), entry(2, 2)];
    let leader_sm = {
        let mut sm = raft_model::state_machine::StateMachine::default();
        sm.apply(&entry(2, 1).cmd, true);
        sm
    };
    let snap = Msg::InstallSnapshot {
        term: 2,
        last_index: 1,
        last_term: 2,
        data: leader_sm,
    };
    let ff = handle_message(&f, &with(&["snapshot-fast-forward"]), 1, &snap).state;
    assert_eq!(ff.commit, 1);
    assert_eq!(ff.log.snapshot_index, 0, "nothing installed");
    assert_eq!(ff.log.entries.len(), 2);
    assert!(ff.has(ghost::SNAPSHOT_FAST_FORWARD));
    let installed = handle_message(&f, &Rules::new(3), 1, &snap).state;
    assert_eq!(installed.log.snapshot_index, 1);
    assert_eq!(installed.log.entries, vec![entry(2, 2)]);
    assert_eq!(installed.commit, 1);
    // A snapshot whose last entry the follower does not hold is installed.
    let mut other = f.clone();
    other.log.entries = vec![entry(1, 1)];
    let replaced = handle_message(&other, &with(&["snapshot-fast-forward"]), 1, &snap).state;
    assert_eq!(replaced.log.snapshot_index, 1);
    assert!(!replaced.has(ghost::SNAPSHOT_FAST_FORWARD));
}

/// Leader transfer (thesis 3.10): the leader stops taking client requests,
/// sends TimeoutNow only once the target's log matches its own, and the
/// target campaigns at once with RequestVotes marked `transfer`.
#[test]
fn a_transfer_waits_for_the_target_and_the_target_campaigns_at_once() {
    let rules = with(&["leader-transfer"]);
    let s = leader_of_term_2_with_commit_2();
    // S2's match is 1 of 2: no TimeoutNow yet.
    let started = elections::start_transfer(&s, &rules, 2);
    assert!(started.sends.is_empty());
    let t = started.state.transfer.expect("a transfer in progress");
    assert_eq!((t.to, t.sent), (2, false));
    assert!(elections::timeout_now(&s, 2).sends.is_empty());
    // A client request is dropped while transferring.
    let cmd = Command {
        client: 1,
        seq: 9,
        op: Op::Write(9),
    };
    let req = handle_message(&started.state, &rules, 0, &Msg::Request(cmd));
    assert_eq!(req, raft_model::rules::Step::unchanged(&started.state));
    // S2 acknowledges index 2: TimeoutNow, once.
    let ack = Msg::AppendEntriesReply {
        term: 2,
        success: true,
        index: 2,
    };
    let ready = handle_message(&started.state, &rules, 2, &ack);
    assert_eq!(
        ready.sends,
        vec![(Dest::Server(2), Msg::TimeoutNow { term: 2 })]
    );
    assert!(ready.state.transfer.unwrap().sent);
    assert!(handle_message(&ready.state, &rules, 2, &ack)
        .sends
        .is_empty());
    // Aborting takes client requests again.
    let aborted = elections::abort_transfer(&ready.state);
    assert_eq!(aborted.state.transfer, None);
    // S3 is up to date already: TimeoutNow at once.
    let at_once = elections::start_transfer(&s, &rules, 3);
    assert_eq!(
        at_once.sends,
        vec![(Dest::Server(3), Msg::TimeoutNow { term: 2 })]
    );
    // Without the feature there is no transfer.
    assert_eq!(
        elections::start_transfer(&s, &Rules::new(3), 3),
        raft_model::rules::Step::unchanged(&s)
    );
    // The planted bug sends TimeoutNow to the lagging S2 at once.
    let bug = Rules {
        bug: Some(Bug::TransferStaleTarget),
        ..rules
    };
    assert_eq!(elections::start_transfer(&s, &bug, 2).sends.len(), 1);

    // The target, a follower of term 2, campaigns in term 3 at once, even
    // with pre-vote on, and says it is a transfer.
    let mut f = Server::new(2);
    f.term = 2;
    f.leader = Some(1);
    f.log.entries = vec![entry(2, 1), entry(2, 2)];
    let rules = with(&["leader-transfer", "pre-vote"]);
    let c = handle_message(&f, &rules, 1, &Msg::TimeoutNow { term: 2 });
    assert_eq!((c.state.role, c.state.term), (Role::Candidate, 3));
    assert!(c.state.transfer_campaign);
    assert!(c.sends.iter().all(|(_, m)| matches!(
        m,
        Msg::RequestVote {
            term: 3,
            last_index: 2,
            last_term: 2,
            transfer: true,
            ..
        }
    )));
    assert_eq!(c.sends.len(), 2);
    let won = handle_message(
        &c.state,
        &rules,
        3,
        &Msg::RequestVoteReply {
            term: 3,
            granted: true,
            commit: None,
        },
    );
    assert_eq!(won.state.role, Role::Leader);
    assert!(won.state.has(ghost::TRANSFER_COMPLETED));
    // A stale TimeoutNow, or one without the feature, changes nothing.
    let stale = handle_message(&f, &rules, 1, &Msg::TimeoutNow { term: 1 });
    assert_eq!(stale.state, f);
    let off = handle_message(&f, &with(&["pre-vote"]), 1, &Msg::TimeoutNow { term: 2 });
    assert_eq!(off.state, f);
}

/// Feature commit-any-message: vote messages carry the sender's commit and
/// the term of its entry there; without the feature they carry nothing.
#[test]
fn vote_messages_carry_the_commit_with_commit_any_message() {
    use raft_model::types::CommitInfo;
    let f = follower_with_commit_1();
    let info = Some(CommitInfo { index: 1, term: 1 });
    for (features, want) in [(vec![], None), (vec!["commit-any-message"], info)] {
        let rules = with(&features);
        let campaign = elections::campaign(&f, &rules);
        assert!(campaign.sends.iter().all(|(_, m)| m.commit_info() == want));
        let rules_pv = with(&[features.as_slice(), &["pre-vote"]].concat());
        let pre = elections::timeout(&f, &rules_pv);
        assert!(matches!(pre.sends[0].1, Msg::PreVote { .. }));
        assert!(pre.sends.iter().all(|(_, m)| m.commit_info() == want));
        let ask = Msg::RequestVote {
            term: 3,
            last_index: 0,
            last_term: 0,
            transfer: false,
            commit: None,
        };
        let reply = handle_message(&f, &rules, 1, &ask);
        assert_eq!(reply.sends[0].1.commit_info(), want);
        let pre_ask = Msg::PreVote {
            term: 3,
            last_index: 0,
            last_term: 0,
            commit: None,
        };
        let reply = handle_message(&f, &rules_pv, 1, &pre_ask);
        assert_eq!(reply.sends[0].1.commit_info(), want);
    }
}

/// A receiver commits up to the carried commit only when its own entry there
/// has the carried term (Log Matching), whatever message carries it; never
/// without the feature; and with planted bug learn-commit-any-term, on any
/// entry at that index.
#[test]
fn a_commit_is_learned_only_on_a_matching_entry() {
    use raft_model::types::CommitInfo;
    let f = follower_with_commit_1();
    let reply = |commit| Msg::RequestVoteReply {
        term: 2,
        granted: false,
        commit: Some(commit),
    };
    let on = with(&["commit-any-message"]);
    let learned = handle_message(&f, &on, 1, &reply(CommitInfo { index: 2, term: 1 })).state;
    assert_eq!(learned.commit, 2);
    assert!(learned.has(ghost::COMMIT_LEARNED));
    assert_eq!(learned.sm.session(1).map(|s| s.seq), Some(2));
    // Another term at index 2: another entry, not committed here.
    let other = handle_message(&f, &on, 1, &reply(CommitInfo { index: 2, term: 2 })).state;
    assert_eq!(other.commit, 1);
    // Past the receiver's log, or not above its commit: nothing.
    let past = handle_message(&f, &on, 1, &reply(CommitInfo { index: 3, term: 1 })).state;
    assert_eq!(past.commit, 1);
    let lower = handle_message(&f, &on, 1, &reply(CommitInfo { index: 1, term: 1 })).state;
    assert_eq!(
        lower,
        handle_message(
            &f,
            &Rules::new(3),
            1,
            &reply(CommitInfo { index: 1, term: 1 })
        )
        .state
    );
    // Figure 2 ignores it.
    let off = handle_message(
        &f,
        &Rules::new(3),
        1,
        &reply(CommitInfo { index: 2, term: 1 }),
    )
    .state;
    assert_eq!(off.commit, 1);
    // The planted bug commits the other term's index too.
    let bug = Rules {
        bug: Some(Bug::LearnCommitAnyTerm),
        ..on
    };
    let wrong = handle_message(&f, &bug, 1, &reply(CommitInfo { index: 2, term: 2 })).state;
    assert_eq!(wrong.commit, 2);
}

/// Feature lease-read: the lease is a quorum of successful AppendEntries
/// replies in the term since the last check-quorum; with it and a commit of
/// its term, the leader answers a read at once; a TimeoutNow ends it.
#[test]
fn a_lease_read_needs_a_lease_quorum_a_commit_of_the_term_and_no_timeout_now() {
    let rules = with(&["check-quorum", "lease-read", "leader-transfer"]);
    let mut s = leader_of_term_2_with_commit_2();
    s.sm.value = 7;
    let read = Msg::Request(Command {
        client: 4,
        seq: 9,
        op: Op::Read,
    });
    // No lease yet: the read goes through the log.
    let logged = handle_message(&s, &rules, 0, &read);
    assert_eq!(logged.state.log.last_index(), 3);
    assert!(logged.sends.is_empty());
    // A refusal does not renew the lease; a success does.
    let refused = Msg::AppendEntriesReply {
        term: 2,
        success: false,
        index: 0,
    };
    let refused = handle_message(&s, &rules, 2, &refused);
    assert!(refused.state.lease_acks.is_empty());
    let ok = Msg::AppendEntriesReply {
        term: 2,
        success: true,
        index: 2,
    };
    let leased = handle_message(&s, &rules, 3, &ok).state;
    assert_eq!(leased.lease_acks, vec![3]);
    let served = handle_message(&leased, &rules, 0, &read);
    assert_eq!(served.state.log, leased.log, "nothing appended");
    assert!(served.state.has(ghost::LEASE_READ_SERVED));
    assert_eq!(
        served.sends,
        vec![(
            Dest::Client(4),
            Msg::Reply {
                seq: 9,
                result: raft_model::types::OpResult::Read(7)
            }
        )]
    );
    // Without the feature, or with the commit index at an older term's
    // entry, the lease is not used.
    let figure2 = handle_message(&leased, &with(&["check-quorum"]), 0, &read);
    assert_eq!(figure2.state.log.last_index(), 3);
    let mut old_commit = leased.clone();
    old_commit.log.entries[1].term = 1;
    old_commit.commit = 2;
    let waits = handle_message(&old_commit, &rules, 0, &read);
    assert!(!waits.state.has(ghost::LEASE_READ_SERVED));
    // A check-quorum starts a new lease period.
    let checked = elections::check_quorum(
        &Server {
            heard: vec![3],
            ..leased.clone()
        },
        &rules,
    );
    assert!(checked.state.lease_acks.is_empty());
    // A TimeoutNow ends the lease for the rest of the term.
    let transferred = elections::timeout_now(&leased, 3);
    assert!(transferred.state.sent_timeout_now);
    let after = handle_message(&transferred.state, &rules, 0, &read);
    assert!(!after.state.has(ghost::LEASE_READ_SERVED));
}

/// Feature lease-read with check-quorum: a follower in its lease ignores a
/// vote request of a higher term unless a transfer started the election;
/// without check-quorum, or with the planted bug, it does not.
#[test]
fn a_follower_in_its_lease_ignores_higher_term_votes() {
    let rules = with(&["check-quorum", "lease-read"]);
    let mut f = Server::new(2);
    f.term = 2;
    let heard = handle_message(
        &f,
        &rules,
        1,
        &Msg::AppendEntries {
            term: 2,
            prev_index: 0,
            prev_term: 0,
            entries: vec![],
            commit: 0,
        },
    )
    .state;
    assert!(heard.lease && heard.leader == Some(1));
    assert!(elections::ignores_in_lease(&heard, &rules, 3, false));
    assert!(!elections::ignores_in_lease(&heard, &rules, 3, true));
    assert!(!elections::ignores_in_lease(&heard, &rules, 2, false));
    assert!(!elections::ignores_in_lease(&f, &rules, 3, false));
    let no_cq = with(&["lease-read"]);
    assert!(!elections::ignores_in_lease(&heard, &no_cq, 3, false));
    let bug = Rules {
        bug: Some(Bug::LeaseReadWithoutCheckQuorum),
        ..rules
    };
    assert!(!elections::ignores_in_lease(&heard, &bug, 3, false));
    // A newer term ends the lease.
    let newer = handle_message(
        &heard,
        &rules,
        3,
        &Msg::RequestVote {
            term: 3,
            last_index: 0,
            last_term: 0,
            transfer: true,
            commit: None,
        },
    );
    assert!(!newer.state.lease);
    // Without lease-read there is no lease to keep.
    let plain = handle_message(
        &f,
        &with(&["check-quorum"]),
        1,
        &Msg::AppendEntries {
            term: 2,
            prev_index: 0,
            prev_term: 0,
            entries: vec![],
            commit: 0,
        },
    );
    assert!(!plain.state.lease);
}

/// Feature forward-proposals: a follower that knows the leader hands it the
/// client's command; the leader appends it and answers the client; a
/// forwarded command that reaches a non-leader is dropped.
#[test]
fn a_follower_forwards_a_proposal_to_the_leader_it_knows() {
    let rules = with(&["forward-proposals"]);
    let cmd = Command {
        client: 4,
        seq: 1,
        op: Op::Write(5),
    };
    let mut f = Server::new(2);
    f.term = 2;
    f.leader = Some(1);
    let forwarded = handle_message(&f, &rules, 0, &Msg::Request(cmd));
    assert_eq!(forwarded.sends, vec![(Dest::Server(1), Msg::Request(cmd))]);
    assert_eq!(forwarded.state, f);
    // Without the feature, the client is redirected.
    let redirected = handle_message(&f, &Rules::new(3), 0, &Msg::Request(cmd));
    assert_eq!(
        redirected.sends,
        vec![(
            Dest::Client(4),
            Msg::NotLeader {
                seq: 1,
                hint: Some(1)
            }
        )]
    );
    // Not forwarded twice, nor answered.
    let again = handle_message(&f, &rules, 3, &Msg::Request(cmd));
    assert!(again.sends.is_empty());
    // The leader appends it as its own proposal.
    let l = leader_of_term_2_with_commit_2();
    let appended = handle_message(&l, &rules, 2, &Msg::Request(cmd));
    assert_eq!(appended.state.log.last_index(), 3);
    assert_eq!(appended.state.log.entries[2].term, 2);
    assert!(appended.state.has(ghost::PROPOSAL_FORWARDED));
}
