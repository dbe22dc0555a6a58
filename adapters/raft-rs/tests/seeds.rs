//! raft-rs in the simulator: every run is valid by conformance's check (or,
//! with compaction, rejected only at the one reply the specification does
//! not yet allow), a seed replays byte for byte, and a planted harness bug
//! is caught.

use raft_rs_adapter::{HarnessBugs, RaftRs};
use raft_sim::{Outcome, RunResult, SimConfig};
use raft_trace::{Event, Record, Rpc};

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

/// Whether a run was rejected at the reply raft-rs sends to an
/// InstallSnapshot it ignores because its commit index is already past the
/// snapshot (`Raft::restore`: `meta.index < committed`): raft-rs answers with
/// its commit index (`handle_snapshot`: `to_send.index = committed`), the
/// specification (Figure 13) with the snapshot's last index. See the crate
/// README.
fn stale_snapshot_reply(r: &RunResult) -> bool {
    let Outcome::Invalid { detail, .. } = r.outcome() else {
        return false;
    };
    let Some(line) = detail
        .split(':')
        .nth(1)
        .and_then(|l| l.parse::<usize>().ok())
    else {
        return false;
    };
    // Line 1 of the trace file is the header.
    let Some(Record::Node(ev)) = r.records.get(line - 2) else {
        return false;
    };
    let Event::Send(m) = &ev.event else {
        return false;
    };
    let Rpc::InstallSnapshotReply { last_index } = m.msg.rpc else {
        return false;
    };
    // The InstallSnapshot it answers (the last one from that leader before
    // it), and the commit index the follower had when it arrived (a
    // receive's post is the state before handling it).
    let answered = r.records[..line - 2]
        .iter()
        .rev()
        .find_map(|rec| match rec {
            Record::Node(e) if e.node == ev.node => match &e.event {
                Event::Receive(x) if x.msg.from == m.msg.to => match x.msg.rpc {
                    Rpc::InstallSnapshot { last_index, .. } => {
                        Some((last_index, e.post.as_ref().and_then(|p| p.commit)))
                    }
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        });
    answered.is_some_and(|(snap, commit)| snap < last_index && commit == Some(last_index))
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

#[test]
fn with_compaction_only_the_stale_snapshot_reply_is_rejected() {
    let imp = RaftRs::default();
    let (mut valid, mut gap, mut installs) = (0, 0, 0);
    for seed in 1..=seeds() {
        let r = raft_sim::run(seed, &cfg(), &imp);
        installs += r.stats.installs;
        match r.outcome() {
            Outcome::Valid => valid += 1,
            _ if stale_snapshot_reply(&r) => gap += 1,
            o => panic!("seed {seed}: {o:?}"),
        }
    }
    eprintln!("{valid} valid, {gap} rejected at a stale snapshot's reply, {installs} installs");
    assert!(installs > 0, "no snapshot was installed");
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
