//! The simulator over many seeds: the correct core passes with all faults,
//! every planted bug is caught, and a seed replays exactly.

use raftkv::bugs::{Bug, Bugs};
use raftkv::sim::{run, Faults, SimConfig};

fn first_failure(cfg: &SimConfig, seeds: std::ops::Range<u64>) -> Option<(u64, String)> {
    for seed in seeds {
        let r = run(seed, cfg);
        if let Some((step, v)) = r.violation {
            return Some((
                seed,
                format!("{} at step {step}: {}", v.invariant, v.detail),
            ));
        }
    }
    None
}

#[test]
fn fault_free_runs_make_progress() {
    let cfg = SimConfig {
        faults: Faults::NONE,
        ..SimConfig::default()
    };
    for seed in 0..5 {
        let r = run(seed, &cfg);
        assert!(r.violation.is_none(), "seed {seed}: {:?}", r.violation);
        assert!(r.stats.ops_ok > 100, "seed {seed}: {:?}", r.stats);
        assert_eq!(r.stats.ops_info, 0, "seed {seed}: {:?}", r.stats);
    }
}

#[test]
fn five_hundred_seeds_with_all_faults() {
    let cfg = SimConfig::default();
    if let Some((seed, what)) = first_failure(&cfg, 0..500) {
        panic!("seed {seed}: {what}");
    }
}

#[test]
fn seeds_replay_exactly() {
    let cfg = SimConfig {
        trace: true,
        ..SimConfig::default()
    };
    let a = run(42, &cfg);
    let b = run(42, &cfg);
    assert_eq!(a.history, b.history);
    assert_eq!(a.trace.unwrap().1, b.trace.unwrap().1);
}

fn caught(bug: Bug) {
    let cfg = SimConfig {
        bugs: Bugs::NONE.with(bug),
        ..SimConfig::default()
    };
    let found = first_failure(&cfg, 0..200);
    assert!(found.is_some(), "planted bug {bug} not caught in 200 seeds");
    eprintln!("{bug}: {}", found.unwrap().1);
}

#[test]
fn catches_old_term_commit() {
    caught(Bug::OldTermCommit);
}

#[test]
fn catches_vote_not_persisted() {
    caught(Bug::VoteNotPersisted);
}

#[test]
fn catches_truncate_matching() {
    caught(Bug::TruncateMatching);
}

#[test]
fn catches_stale_read() {
    caught(Bug::StaleRead);
}

#[test]
fn catches_double_apply() {
    caught(Bug::DoubleApply);
}

#[test]
fn other_cluster_sizes_pass() {
    for (nodes, clients) in [(1, 2), (2, 2), (5, 5)] {
        let cfg = SimConfig {
            nodes,
            clients,
            ..SimConfig::default()
        };
        if let Some((seed, what)) = first_failure(&cfg, 0..60) {
            panic!("{nodes} nodes, seed {seed}: {what}");
        }
    }
}
