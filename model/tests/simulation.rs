//! The simulation strategy: its paths replay in the model, a seed repeats a
//! run, and shards split the walks of a seed.

use std::collections::BTreeSet;
use std::time::Duration;

use raft_model::check::{run, RunOptions, RunResult, Shard, Status, Strategy};
use raft_model::suite::{default_suite, suite_for_bug};
use raft_model::{build, Bug, Config};
use stateright::{Model, Path};

fn simulate(cfg: &Config, seed: u64, shard: Shard, secs: f64) -> RunResult {
    run(
        cfg,
        &RunOptions {
            strategy: Strategy::Simulation,
            timeout: Some(Duration::from_secs_f64(secs)),
            seed,
            shard,
            ..Default::default()
        },
    )
}

/// Every step of every path found is a transition of the model: replaying
/// its actions from its first state gives the same states.
fn assert_paths_replay(r: &RunResult) {
    let model = build(&r.config);
    for p in &r.properties {
        let Some(path) = &p.path else { continue };
        let steps = path.clone().into_vec();
        let init = steps[0].0.clone();
        let actions: Vec<_> = steps.iter().filter_map(|(_, a)| a.clone()).collect();
        let replayed = Path::from_actions(&model, init, &actions)
            .unwrap_or_else(|| panic!("{}: the path takes an action that is not enabled", p.name));
        assert!(
            replayed.into_states() == path.clone().into_states(),
            "{}: replay reaches other states",
            p.name
        );
        // The path ends at the first state that violates (always) or
        // satisfies (sometimes) the property.
        let prop = model.properties().into_iter().find(|q| q.name == p.name);
        let cond = prop.unwrap().condition;
        let states = path.clone().into_states();
        let (last, before) = states.split_last().unwrap();
        let found = |s| (p.status == Status::Violated) != cond(&model, s);
        assert!(found(last), "{}: not found at the last state", p.name);
        assert!(
            !before.iter().any(found),
            "{}: found before the last state",
            p.name
        );
    }
}

#[test]
fn simulation_of_the_suite_finds_paths_that_replay() {
    for e in default_suite() {
        let r = simulate(&e.config, 0, Shard::WHOLE, 1.0);
        assert!(!r.exhaustive, "{}", e.name);
        let sim = r.simulation.expect("simulation details");
        assert!(sim.walks > 0, "{}", e.name);
        assert!(
            r.properties.iter().any(|p| p.path.is_some()),
            "{}: nothing reached in 1 s",
            e.name
        );
        assert_paths_replay(&r);
    }
}

#[test]
fn simulation_finds_a_planted_bug_with_a_counterexample_that_replays() {
    let bug = Bug::DoubleVote;
    let cfg = &suite_for_bug(bug)[0].config;
    let r = simulate(cfg, 0, Shard::WHOLE, 20.0);
    let p = r
        .properties
        .iter()
        .find(|p| p.name == bug.expected_property())
        .unwrap();
    assert_eq!(p.status, Status::Violated);
    assert_paths_replay(&r);
}

#[test]
fn one_seed_repeats_a_run() {
    let cfg = &suite_for_bug(Bug::VolatileVote)[0].config;
    let a = simulate(cfg, 7, Shard::WHOLE, 20.0);
    let b = simulate(cfg, 7, Shard::WHOLE, 20.0);
    let model = build(cfg);
    let path = |r: &RunResult| {
        let p = r.properties.iter().find(|p| p.name == "Election Safety");
        p.and_then(|p| p.path.as_ref()).map(|p| p.encode(&model))
    };
    assert!(path(&a).is_some(), "found within 20 s");
    assert_eq!(path(&a), path(&b));
    assert_eq!(a.simulation.unwrap().walks, b.simulation.unwrap().walks);
}

#[test]
fn shard_parsing() {
    assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
    assert_eq!("1/1".parse::<Shard>(), Ok(Shard::WHOLE));
    for bad in ["0/4", "5/4", "a/b", "3", "1/0", "/", "-1/4", "1/4/2", ""] {
        assert!(bad.parse::<Shard>().is_err(), "{bad:?}");
    }
}

#[test]
fn shards_split_the_walks_of_one_run() {
    let (n, m) = (4, 25);
    let whole: BTreeSet<u64> = (0..n * m).map(|i| Shard::WHOLE.walk(i)).collect();
    let mut union = BTreeSet::new();
    for k in 1..=n {
        let shard = Shard { index: k, count: n };
        for i in 0..m {
            assert!(union.insert(shard.walk(i)), "shards overlap");
        }
    }
    assert_eq!(union, whole);
}

#[test]
fn exactly_one_shard_holds_each_run() {
    for n in 1..=5u64 {
        for run in 0..40u64 {
            let owners: Vec<u64> = (1..=n)
                .filter(|k| {
                    Shard {
                        index: *k,
                        count: n,
                    }
                    .holds(run)
                })
                .collect();
            assert_eq!(owners.len(), 1, "run {run} with {n} shards: {owners:?}");
            // The shard that holds a run is the one whose walks include it.
            let k = owners[0];
            assert!((0..40).any(|i| Shard { index: k, count: n }.walk(i) == run));
        }
    }
}
