//! Symmetry reduction explores fewer states and reaches the same verdicts.

use raft_model::check::{run, RunOptions, Status, Strategy};
use raft_model::{Bug, Config};

fn elections(bug: Option<Bug>) -> Config {
    Config {
        clients: 0,
        ops: 0,
        max_term: 1,
        max_log: 0,
        max_crashes: 1,
        max_in_flight: 6,
        bug,
        ..Config::default()
    }
}

type Statuses = Vec<(&'static str, Status)>;

/// Unique states, whether the run was exhaustive, and each property's status.
fn check(cfg: &Config, opts: &RunOptions) -> (usize, bool, Statuses) {
    let r = run(cfg, opts);
    let s = r.properties.iter().map(|p| (p.name, p.status)).collect();
    (r.unique_states, r.exhaustive, s)
}

fn statuses(cfg: &Config, symmetry: bool) -> (usize, Statuses) {
    let opts = RunOptions {
        symmetry,
        ..Default::default()
    };
    let (unique, _, s) = check(cfg, &opts);
    (unique, s)
}

#[test]
fn symmetry_reduces_states_and_keeps_verdicts() {
    let cfg = elections(None);
    let (plain, a) = statuses(&cfg, false);
    let (reduced, b) = statuses(&cfg, true);
    assert_eq!(a, b);
    assert!(b
        .iter()
        .all(|(_, s)| matches!(s, Status::Holds | Status::Reached)));
    assert!(reduced * 2 < plain, "{reduced} vs {plain}");
}

#[test]
fn symmetry_still_catches_election_bugs() {
    for bug in [Bug::DoubleVote, Bug::VolatileVote, Bug::MinorityQuorum] {
        let (_, s) = statuses(&elections(Some(bug)), true);
        assert!(
            s.contains(&("Election Safety", Status::Violated)),
            "{bug}: {s:?}"
        );
    }
}

/// The DFS checker forgets the duplicating network's last delivered message
/// (`symmetry::forget_last_delivery`); BFS keeps it (stateright applies the
/// representative in DFS only), so BFS is the unreduced reference.
fn duplicating(bug: Option<Bug>) -> Config {
    Config {
        network: raft_model::NetworkKind::Duplicating,
        ..elections(bug)
    }
}

fn statuses_by(cfg: &Config, strategy: Strategy) -> (usize, bool, Statuses) {
    let opts = RunOptions {
        strategy,
        threads: 2,
        ..Default::default()
    };
    check(cfg, &opts)
}

#[test]
fn forgetting_the_last_delivery_reduces_states_and_keeps_verdicts() {
    let cfg = duplicating(None);
    let (plain, plain_done, a) = statuses_by(&cfg, Strategy::Bfs);
    let (reduced, reduced_done, b) = statuses_by(&cfg, Strategy::Dfs);
    assert!(plain_done && reduced_done);
    assert_eq!(a, b);
    assert!(b
        .iter()
        .all(|(_, s)| matches!(s, Status::Holds | Status::Reached)));
    assert!(reduced * 2 < plain, "{reduced} vs {plain}");
}

#[test]
fn forgetting_the_last_delivery_still_catches_election_bugs() {
    for bug in [Bug::DoubleVote, Bug::VolatileVote, Bug::MinorityQuorum] {
        let (_, _, s) = statuses_by(&duplicating(Some(bug)), Strategy::Dfs);
        assert!(
            s.contains(&("Election Safety", Status::Violated)),
            "{bug}: {s:?}"
        );
    }
}

/// Membership changes name particular servers (the initial voters, the
/// server a change adds or removes), so permuting ids does not map their
/// behaviours to behaviours: the checker applies no symmetry to them, and
/// `--symmetry` gives the same states and verdicts as without it.
#[test]
fn a_configuration_with_membership_changes_is_not_reduced() {
    let entries = raft_model::suite::suite_for_bug(Bug::RemovedVoteCounts);
    let cfg = &entries[0].config;
    assert!(cfg.clients == 0 && !cfg.symmetric(), "{cfg:?}");
    let (plain, a) = statuses(cfg, false);
    let (reduced, b) = statuses(cfg, true);
    assert_eq!((plain, &a), (reduced, &b));
    assert!(b.contains(&("Election Safety", Status::Violated)), "{b:?}");
}
