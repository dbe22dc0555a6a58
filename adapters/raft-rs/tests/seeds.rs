//! raft-rs in the simulator: every run is valid by conformance's check, with
//! and without compaction, a seed replays byte for byte, and a planted
//! harness bug is caught.

use raft_rs_adapter::{HarnessBugs, RaftRs};
use raft_sim::{Outcome, RunResult, SimConfig};

/// Seeds per test (`RAFT_RS_SEEDS` to run more).
fn seeds() -> u64 {
    std::env::var("RAFT_RS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

fn cfg() -> SimConfig {
    SimConfig {
        frontier_budget: raft_rs_adapter::FRONTIER_BUDGET,
        ..SimConfig::default()
    }
}

#[test]
fn every_seed_is_valid_without_compaction() {
    let imp = RaftRs {
        compaction: false,
        ..RaftRs::default()
    };
    let mut events = 0;
    for seed in 1..=seeds() {
        let r = raft_sim::run(seed, &cfg(), &imp);
        events += r.records.len();
        assert_eq!(r.outcome(), Outcome::Valid, "seed {seed}");
        assert!(r.stats.ops_ok > 50, "seed {seed}: {:?}", r.stats);
    }
    eprintln!("{} seeds valid, {events} records", seeds());
}

/// With compaction on, snapshots are installed and every run is valid: raft-rs answers a
/// snapshot below its commit index with its commit index, which the specification allows
/// with feature stale-append-reply.
#[test]
fn every_seed_is_valid_with_snapshots() {
    let imp = RaftRs::default();
    let mut installs = 0;
    for seed in 1..=seeds() {
        let r = raft_sim::run(seed, &cfg(), &imp);
        installs += r.stats.installs;
        assert_eq!(r.outcome(), Outcome::Valid, "seed {seed}");
    }
    eprintln!("{} seeds valid, {installs} snapshot installs", seeds());
    assert!(installs > 0, "no snapshot was installed");
}

/// Seeds 576 and 987 (with snapshots): a pre-candidate first gets a voter's
/// stale refusal of its own term, then that voter's grant for the round;
/// raft-rs counts only each voter's first answer (`RecordVote`) and stays a
/// pre-candidate. The replay once required the grant to be counted
/// (PreVoteCountingRule): a false alarm on correct code.
#[test]
fn a_voters_second_answer_may_go_uncounted() {
    let imp = RaftRs::default();
    for seed in [576, 987] {
        let r = raft_sim::run(seed, &cfg(), &imp);
        assert_eq!(r.outcome(), Outcome::Valid, "seed {seed}");
    }
}

#[test]
fn a_seed_replays_byte_for_byte() {
    let imp = RaftRs::default();
    let a = raft_sim::run(3, &cfg(), &imp);
    let b = raft_sim::run(3, &cfg(), &imp);
    let text = |r: &RunResult| serde_json::to_string(&r.records).expect("serializable");
    assert!(a.records.len() > 1000);
    assert_eq!(text(&a), text(&b));
}

#[test]
fn late_hard_state_is_caught_as_an_unpersisted_vote() {
    let imp = RaftRs {
        bugs: HarnessBugs {
            late_hard_state: true,
        },
        ..RaftRs::default()
    };
    let caught = (1..=20).find_map(|seed| match raft_sim::run(seed, &cfg(), &imp).outcome() {
        Outcome::Invalid { rule, .. } => Some((seed, rule)),
        _ => None,
    });
    let (seed, rule) = caught.expect("the planted bug is caught within 20 seeds");
    assert_eq!(rule, "VotePersistedBeforeReply", "seed {seed}");
}
