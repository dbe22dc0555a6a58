//! Every planted bug is caught by the default suite, by the expected
//! property, with a counterexample that replays in the model.

use raft_model::check::{run, RunOptions, Status, Strategy};
use raft_model::explain::explain;
use raft_model::suite::suite_for_bug;
use raft_model::why::why;
use raft_model::{build, Bug};

fn caught(bug: Bug) {
    let entries = suite_for_bug(bug);
    assert_eq!(entries.len(), 1);
    let cfg = &entries[0].config;
    let opts = RunOptions {
        strategy: Strategy::Bfs,
        ..Default::default()
    };
    let r = run(cfg, &opts);
    let violated: Vec<&str> = r
        .properties
        .iter()
        .filter(|p| p.status == Status::Violated)
        .map(|p| p.name)
        .collect();
    assert!(
        violated.contains(&bug.expected_property()),
        "{bug}: expected {} violated, got {violated:?}",
        bug.expected_property()
    );
    let p = r
        .properties
        .iter()
        .find(|p| p.name == bug.expected_property())
        .unwrap();
    let path = p.path.as_ref().expect("a counterexample");
    let model = build(cfg);
    let steps = explain(&model, path);
    assert!(!steps.is_empty());
    assert!(steps.iter().all(|s| !s.action.is_empty()));
    // The one line on why the last state breaks the property.
    let reason = why(&model, p.name, path);
    assert!(
        reason
            .as_ref()
            .is_some_and(|r| r.contains('S') || r.contains('C')),
        "{bug}: no reason for {}: {reason:?}",
        p.name
    );
}

#[test]
fn commit_old_term() {
    caught(Bug::CommitOldTerm);
}
#[test]
fn no_election_restriction() {
    caught(Bug::NoElectionRestriction);
}
#[test]
fn volatile_vote() {
    caught(Bug::VolatileVote);
}
#[test]
fn double_vote() {
    caught(Bug::DoubleVote);
}
#[test]
fn accept_stale_term() {
    caught(Bug::AcceptStaleTerm);
}
#[test]
fn truncate_on_match() {
    caught(Bug::TruncateOnMatch);
}
#[test]
fn no_dedup() {
    caught(Bug::NoDedup);
}
#[test]
fn stale_read() {
    caught(Bug::StaleRead);
}
#[test]
fn minority_quorum() {
    caught(Bug::MinorityQuorum);
}
#[test]
fn snapshot_regress() {
    caught(Bug::SnapshotRegress);
}
#[test]
fn stale_append_match() {
    caught(Bug::StaleAppendMatch);
}
#[test]
fn pre_vote_raises_term() {
    caught(Bug::PreVoteRaisesTerm);
}

/// Every bug of the catalogue has exactly one suite configuration to catch it.
#[test]
fn every_bug_has_its_configuration() {
    for bug in Bug::ALL {
        assert_eq!(suite_for_bug(bug).len(), 1, "{bug}");
    }
}
#[test]
fn read_index_old_commit() {
    caught(Bug::ReadIndexOldCommit);
}
#[test]
fn transfer_stale_target() {
    caught(Bug::TransferStaleTarget);
}

#[test]
fn learn_commit_any_term() {
    caught(Bug::LearnCommitAnyTerm);
}

#[test]
fn lease_read_without_check_quorum() {
    caught(Bug::LeaseReadWithoutCheckQuorum);
}

#[test]
fn commit_past_last_new() {
    caught(Bug::CommitPastLastNew);
}

#[test]
fn prev_check_off_by_one() {
    caught(Bug::PrevCheckOffByOne);
}

#[test]
fn commit_max_match() {
    caught(Bug::CommitMaxMatch);
}

/// Caught by Progress (a second pass over the state graph), not by a
/// stateright property: nothing unsafe happens, elections just stall.
#[test]
fn keep_vote_on_new_term() {
    caught(Bug::KeepVoteOnNewTerm);
}

/// Progress is only checked where the configuration asks for it: without,
/// the same run of keep-vote-on-new-term finds nothing.
#[test]
fn keep_vote_on_new_term_needs_the_progress_check() {
    let mut cfg = suite_for_bug(Bug::KeepVoteOnNewTerm)[0].config.clone();
    cfg.progress = false;
    let r = run(&cfg, &RunOptions::default());
    assert!(r.exhaustive);
    assert!(!r.violated());
    assert!(r.properties.iter().all(|p| p.name != "Progress"));
}

/// A full batch ends at the leader's last index, which is at least its
/// commit index, so the follower's commit rule needs partial batches to
/// matter: with its configuration's bounds but whole batches,
/// commit-past-last-new changes no state.
#[test]
fn commit_past_last_new_needs_partial_batches() {
    let mut cfg = suite_for_bug(Bug::CommitPastLastNew)[0].config.clone();
    cfg.partial_batches = false;
    let opts = RunOptions::default();
    let correct = run(&cfg, &opts);
    cfg.bug = Some(Bug::CommitPastLastNew);
    let planted = run(&cfg, &opts);
    assert!(planted.exhaustive);
    assert!(planted
        .properties
        .iter()
        .all(|p| p.status != Status::Violated));
    assert_eq!(planted.unique_states, correct.unique_states);
}

#[test]
fn overlapping_changes() {
    caught(Bug::OverlappingChanges);
}

#[test]
fn learner_counts() {
    caught(Bug::LearnerCounts);
}

#[test]
fn removed_vote_counts() {
    caught(Bug::RemovedVoteCounts);
}

#[test]
fn joint_new_majority_only() {
    caught(Bug::JointNewMajorityOnly);
}
