//! The simulator over many seeds, with conformance's verdict: the correct
//! core passes with all faults, every planted bug is rejected by the rule
//! that names its mistake, and a seed replays exactly.

use raft_sim::raftkv::RaftKv;
use raft_sim::{run, Faults, Outcome, SimConfig};
use raftkv::bugs::{Bug, Bugs};

fn correct() -> RaftKv {
    RaftKv::default()
}

/// The first seed whose outcome is not valid, with its outcome.
fn first_failure(
    cfg: &SimConfig,
    imp: &RaftKv,
    seeds: std::ops::Range<u64>,
) -> Option<(u64, Outcome)> {
    seeds.into_iter().find_map(|seed| {
        let o = run(seed, cfg, imp).outcome();
        (o != Outcome::Valid).then_some((seed, o))
    })
}

#[test]
fn fault_free_runs_make_progress() {
    let cfg = SimConfig {
        faults: Faults::NONE,
        ..SimConfig::default()
    };
    for seed in 0..5 {
        let r = run(seed, &cfg, &correct());
        assert_eq!(r.outcome(), Outcome::Valid, "seed {seed}");
        assert!(r.early.is_none(), "seed {seed}: {:?}", r.early);
        assert!(r.stats.ops_ok > 100, "seed {seed}: {:?}", r.stats);
        assert_eq!(r.stats.ops_info, 0, "seed {seed}: {:?}", r.stats);
        let checked = r.checked.as_ref().unwrap();
        assert!(checked.report.replay.enabled && checked.report.replay.steps > 0);
        assert!(checked.history.as_ref().is_some_and(|h| h.operations > 100));
    }
}

#[test]
fn seeds_replay_exactly() {
    let cfg = SimConfig::default();
    let a = run(42, &cfg, &correct());
    let b = run(42, &cfg, &correct());
    assert_eq!(a.history, b.history);
    assert_eq!(a.records, b.records);
}

/// Each planted bug is caught within 200 seeds, and the verdict comes from
/// conformance with the rule that names the mistake.
fn caught(bug: Bug, rules: &[&str]) {
    let imp = RaftKv {
        bugs: Bugs::NONE.with(bug),
        ..RaftKv::default()
    };
    let found = first_failure(&SimConfig::default(), &imp, 0..200);
    let Some((seed, outcome)) = found else {
        panic!("planted bug {bug} not caught in 200 seeds");
    };
    match &outcome {
        Outcome::Invalid { rule, .. } => assert!(
            rules.contains(&rule.as_str()),
            "{bug}, seed {seed}: rejected by {rule}, expected one of {rules:?}: {outcome:?}"
        ),
        other => panic!("{bug}, seed {seed}: not a conformance rejection: {other:?}"),
    }
}

#[test]
fn catches_commit_old_term() {
    caught(Bug::CommitOldTerm, &["CommitRule"]);
}

#[test]
fn catches_volatile_vote() {
    caught(Bug::VolatileVote, &["VotePersistedBeforeReply"]);
}

#[test]
fn catches_truncate_on_match() {
    caught(Bug::TruncateOnMatch, &["AppendEntriesRule"]);
}

/// A read served without confirming leadership is named by the replay's
/// read check on every seed, not only when the client history happens to
/// show a stale value (before the `read` event: 1 seed in 40).
#[test]
fn catches_stale_read_on_every_seed() {
    caught(Bug::StaleRead, &["ReadIndexRule"]);
    let imp = RaftKv {
        bugs: Bugs::NONE.with(Bug::StaleRead),
        ..RaftKv::default()
    };
    for seed in 0..20 {
        match run(seed, &SimConfig::default(), &imp).outcome() {
            Outcome::Invalid { rule, .. } if rule == "ReadIndexRule" => {}
            other => panic!("seed {seed}: {other:?}"),
        }
    }
}

#[test]
fn catches_no_dedup() {
    caught(Bug::NoDedup, &["AtMostOnce"]);
}

/// A leader that leaves an AppendEntries reply's higher term unheeded
/// endangers nothing (the new leader's appends depose it) and no progress
/// check fires, but the replay rejects the step: the trace declares no
/// `stale-term-step-down`. It needs a leader to hear from a higher term,
/// which pre-vote and check-quorum make rare (first at seed 103 with them),
/// so the search runs without them.
#[test]
fn catches_ignore_higher_term_reply() {
    let imp = RaftKv {
        bugs: Bugs::NONE.with(Bug::IgnoreHigherTermReply),
        pre_vote: false,
        check_quorum: false,
        ..RaftKv::default()
    };
    match first_failure(&SimConfig::default(), &imp, 0..50) {
        Some((_, Outcome::Invalid { rule, .. })) => assert_eq!(rule, "AppendEntriesReplyRule"),
        other => panic!("not rejected by the replay: {other:?}"),
    }
}

#[test]
fn other_cluster_sizes_pass() {
    for (nodes, clients) in [(1, 2), (2, 2), (5, 5)] {
        let cfg = SimConfig {
            nodes,
            clients,
            ..SimConfig::default()
        };
        if let Some((seed, what)) = first_failure(&cfg, &correct(), 0..60) {
            panic!("{nodes} nodes, seed {seed}: {what:?}");
        }
    }
}

/// With pre-vote and check-quorum (alone and together) every run passes
/// conformance with the header's features; over the seeds, pre-votes are
/// asked for and won, pre-candidates lose, and partitioned leaders step
/// down by check-quorum.
#[test]
fn pre_vote_and_check_quorum_pass() {
    use raft_trace::{Event, Record, Role, RoleReason, Rpc};
    for (pre_vote, check_quorum, seeds) in [
        (true, true, 0..20),
        (true, false, 0..10),
        (false, true, 0..10),
    ] {
        let imp = RaftKv {
            pre_vote,
            check_quorum,
            ..RaftKv::default()
        };
        let (mut pre_votes, mut won, mut lost, mut stepped_down) = (0, 0, 0, 0);
        for seed in seeds {
            let r = run(seed, &SimConfig::default(), &imp);
            assert_eq!(
                r.outcome(),
                Outcome::Valid,
                "pre-vote {pre_vote}, check-quorum {check_quorum}, seed {seed}"
            );
            assert_eq!(r.header.features, Some(imp.features()));
            for rec in &r.records {
                let Record::Node(e) = rec else { continue };
                match &e.event {
                    Event::Send(m) if matches!(m.msg.rpc, Rpc::PreVote { .. }) => pre_votes += 1,
                    Event::Role(rc) => match rc.reason {
                        RoleReason::PreVoteWon => {
                            assert_eq!(rc.role, Role::Candidate);
                            won += 1;
                        }
                        RoleReason::LostElection => {
                            assert_eq!(rc.role, Role::Follower);
                            lost += 1;
                        }
                        RoleReason::CheckQuorum => {
                            assert_eq!(rc.role, Role::Follower);
                            stepped_down += 1;
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        let what = format!(
            "pre-vote {pre_vote}, check-quorum {check_quorum}: {pre_votes} pre-votes, \
             {won} won, {lost} lost, {stepped_down} check-quorum step-downs"
        );
        assert_eq!(pre_votes > 0, pre_vote, "{what}");
        assert_eq!(won > 0, pre_vote, "{what}");
        assert!(lost == 0 || pre_vote, "{what}");
        if pre_vote && check_quorum {
            assert!(lost > 0, "{what}");
        }
        assert_eq!(stepped_down > 0, check_quorum, "{what}");
    }
}

/// Lease reads (with check-quorum and pre-vote, as the node runs them) pass
/// conformance, linearizability of the reads included.
#[test]
fn lease_reads_pass() {
    let imp = RaftKv {
        lease_read: true,
        ..RaftKv::production()
    };
    if let Some((seed, o)) = first_failure(&SimConfig::default(), &imp, 0..10) {
        panic!("lease reads, seed {seed}: {o:?}");
    }
}

/// Seed 467 with lease reads: a follower whose disk stalls holds back 317
/// append replies and sends them after one persist. The replay used to
/// forget all but 256 held-back messages and rejected a correct reply
/// (AppendEntriesRule, match 74) as unexplained. Seed 19: the replay's
/// candidates differed only in the model checker's lease bookkeeping, and
/// the frontier outgrew its budget (inconclusive).
#[test]
fn lease_read_seeds_that_once_failed_validate() {
    let imp = RaftKv {
        lease_read: true,
        ..RaftKv::production()
    };
    for seed in [19, 467] {
        let o = run(seed, &SimConfig::default(), &imp).outcome();
        assert_eq!(o, Outcome::Valid, "seed {seed}");
    }
}

fn membership() -> SimConfig {
    SimConfig {
        membership: true,
        ..SimConfig::default()
    }
}

/// Membership changes on a network that loses, reorders and partitions
/// but never duplicates (the replay then forgets received messages).
fn membership_without_duplication() -> SimConfig {
    SimConfig {
        faults: Faults {
            dup: false,
            ..Faults::ALL
        },
        ..membership()
    }
}

/// The node's options, with membership changes.
fn with_changes() -> RaftKv {
    RaftKv {
        membership: true,
        ..RaftKv::production()
    }
}

/// With membership changes (two spare servers, the nemesis asking leaders
/// for one change at a time) every run of 500 seeds validates, and over the
/// seeds the changes all happen: voters and learners added, learners
/// promoted, members removed, and removed leaders stepping down.
#[test]
fn membership_changes_happen_and_pass() {
    use raft_trace::{EntryData, Event, Record, Role};
    let imp = with_changes();
    let (mut changes, mut promoted, mut learners, mut removed, mut leader_removed) =
        (0, 0, 0, 0, 0);
    for seed in 0..500 {
        let r = run(seed, &membership(), &imp);
        let o = r.outcome();
        assert_eq!(o, Outcome::Valid, "seed {seed}");
        assert_eq!(r.header.voters, Some(vec![1, 2, 3]), "seed {seed}");
        assert_eq!(r.header.nodes, vec![1, 2, 3, 4, 5], "seed {seed}");
        changes += r.stats.changes;
        // The configurations leaders appended, in order, per leader.
        let mut last: std::collections::BTreeMap<u64, (Vec<u64>, Vec<u64>)> = Default::default();
        for rec in &r.records {
            let Record::Node(e) = rec else { continue };
            match &e.event {
                Event::Append(a)
                    if e.post
                        .as_ref()
                        .is_some_and(|p| p.role == Some(Role::Leader)) =>
                {
                    for en in a.entries.iter().flatten() {
                        if let Some(EntryData::Config {
                            voters: Some(v),
                            learners: l,
                            ..
                        }) = &en.data
                        {
                            let l = l.clone().unwrap_or_default();
                            let (pv, pl) = last
                                .insert(e.node, (v.clone(), l.clone()))
                                .unwrap_or((vec![1, 2, 3], vec![]));
                            promoted += v.iter().filter(|x| pl.contains(x)).count();
                            learners += l.iter().filter(|x| !pl.contains(x)).count();
                            removed += pv
                                .iter()
                                .filter(|x| !v.contains(x) && !l.contains(x))
                                .count();
                        }
                    }
                }
                Event::Role(rc)
                    if rc.role == Role::Follower && rc.reason == raft_trace::RoleReason::Other =>
                {
                    leader_removed += 1;
                }
                _ => {}
            }
        }
    }
    let what = format!(
        "{changes} changes: {promoted} learners promoted, {learners} learners added, \
         {removed} members removed, {leader_removed} removed leaders stepped down"
    );
    eprintln!("{what}");
    assert!(
        changes > 500 && promoted > 0 && learners > 0 && removed > 0 && leader_removed > 0,
        "{what}"
    );
}

/// Membership seeds that were inconclusive. Seeds 5 and 38: a node
/// received the last chunk of a leader's snapshot without the first, so it
/// installed nothing and applied from its log; the replay's candidate that
/// had installed the snapshot applied an entry the snapshot covered, its
/// configuration became unknown and the run was inconclusive. Such a
/// candidate is now dropped (ApplyRule). Seed 97: a joining server, stuck
/// on a snapshot, ignored vote requests inside its leader's lease; one
/// replay candidate per combination of answered and ignored requests
/// outgrew the frontier budget. Candidates that differ only in messages not
/// yet sent are now one. Seed 355 was rejected (RestartRule): a leader sent
/// chunks of a snapshot it had already replaced by a newer one, and the
/// replay gave the receiver an empty stand-in for its contents, taken as
/// known, so the configuration the receiver later stated at its restart
/// looked wrong. The replay now remembers a leader's replaced snapshots.
#[test]
fn membership_seeds_that_were_inconclusive_or_rejected_validate() {
    for seed in [5, 38, 97, 355] {
        let o = run(seed, &membership(), &with_changes()).outcome();
        assert_eq!(o, Outcome::Valid, "seed {seed}");
    }
}

/// Overlapping membership changes (a second one before the first is
/// committed, the single-server change bug) are rejected by the replay's
/// rule for changes.
#[test]
fn catches_overlapping_changes() {
    let imp = RaftKv {
        bugs: Bugs::NONE.with(Bug::OverlappingChanges),
        ..with_changes()
    };
    match first_failure(&membership(), &imp, 0..50) {
        Some((_, Outcome::Invalid { rule, .. })) => assert_eq!(rule, "MembershipChangeRule"),
        other => panic!("not rejected by the replay: {other:?}"),
    }
}

/// With the transfer nemesis, leaders hand over (the target campaigns with
/// reason `transfer`) and no run is rejected.
#[test]
fn leader_transfers_happen_and_pass() {
    use raft_trace::{Event, Record, RoleReason};
    let imp = RaftKv {
        leader_transfer: true,
        ..RaftKv::production()
    };
    let cfg = SimConfig {
        leader_transfer: true,
        ..SimConfig::default()
    };
    let (mut transfers, mut campaigns) = (0, 0);
    for seed in 0..10 {
        let r = run(seed, &cfg, &imp);
        let o = r.outcome();
        assert!(matches!(o, Outcome::Valid), "seed {seed}: {o:?}");
        transfers += r.stats.transfers;
        campaigns += r
            .records
            .iter()
            .filter(|rec| {
                matches!(rec, Record::Node(e)
                    if matches!(&e.event, Event::Role(rc) if rc.reason == RoleReason::Transfer))
            })
            .count();
    }
    assert!(
        transfers > 0 && campaigns > 0,
        "{transfers} transfers, {campaigns} campaigns"
    );
}

/// Membership changes on a network that does not duplicate, seed 2: leader
/// 4 committed index 78 under the configuration it had appended at index
/// 80 (voters 2, 3 and 4: a quorum of two), which the next leader's log
/// then truncated. The simulator's quorum check counted only the
/// configurations still in some log, found none that a majority holding
/// index 78 made up, and stopped the run with a violation conformance did
/// not find (the checkers disagreed). It now counts every configuration
/// seen in use since the entry was appended.
#[test]
fn a_commit_under_a_configuration_later_rolled_back_is_on_a_quorum() {
    let cfg = membership_without_duplication();
    let o = run(2, &cfg, &with_changes()).outcome();
    assert_eq!(o, Outcome::Valid);
}

/// Seed 297 of membership changes on a network that reorders but does not
/// duplicate: node 4 joins the voters with an empty log, and leader 2 has
/// compacted, so it sends node 4 its snapshot in four chunks, all of them
/// again after each retry. The network reordered them every time; raftkv
/// kept only a chunk that continued its buffer, so node 4 never installed,
/// the leader never reached a quorum of the new configuration, and the run
/// ended without progress. raftkv now keeps chunks by offset across resends.
#[test]
fn reordered_snapshot_chunks_are_installed_after_a_resend() {
    let cfg = membership_without_duplication();
    let o = run(297, &cfg, &with_changes()).outcome();
    assert_eq!(o, Outcome::Valid);
}

/// Seed 340 with leader transfers and membership changes: a follower
/// stepped the new leader's AppendEntries (term 13) while its write of an
/// entry of term 12 was in flight, and that append truncated the entry.
/// When the write was done, raftkv still sent the acknowledgement of the
/// term-12 entry queued with it, for an entry it never held durably
/// (EntriesPersistedBeforeAck). The core now drops it.
#[test]
fn an_acknowledgement_of_a_truncated_entry_is_not_sent() {
    let cfg = SimConfig {
        leader_transfer: true,
        ..membership()
    };
    let imp = RaftKv {
        leader_transfer: true,
        ..with_changes()
    };
    assert_eq!(run(340, &cfg, &imp).outcome(), Outcome::Valid);
}

/// Seed 118 with leader transfers, lease reads and membership changes on a
/// network without duplication: spare server 5, which joined with no
/// bootstrap configuration and received the log from its start, took a
/// snapshot at index 8, before any configuration entry it held, recording
/// an empty configuration; a restart recovered it (RestartRule). A joined
/// server now takes no snapshot where it does not know the configuration.
#[test]
fn a_joined_server_snapshots_only_where_it_knows_the_configuration() {
    let cfg = SimConfig {
        leader_transfer: true,
        ..membership_without_duplication()
    };
    let imp = RaftKv {
        leader_transfer: true,
        lease_read: true,
        ..with_changes()
    };
    assert_eq!(run(118, &cfg, &imp).outcome(), Outcome::Valid);
}

/// Seed 131 of membership changes with six clients: leader 3 of term 14
/// committed its no-op (index 64) once its own write was durable, later in
/// the step than the acknowledgement that made it a majority, and then, in
/// the same step, appended a configuration change. The replay checked the
/// change against the commit index the rules had left before the step (62,
/// of term 9) and rejected it (MembershipChangeRule); it now takes the
/// commit the step has shown so far, where the rules had reached it.
#[test]
fn a_change_after_a_commit_shown_in_the_same_step_is_valid() {
    let cfg = SimConfig {
        clients: 6,
        ..membership()
    };
    assert_eq!(run(131, &cfg, &with_changes()).outcome(), Outcome::Valid);
}
