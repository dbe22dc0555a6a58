//! raftcheck's own depth-first search against stateright's DFS checker: on
//! one thread the same states in the same order (counts, depth, every
//! property's verdict and path); on two threads the same counts and
//! verdicts; and every planted bug caught by it with a path that replays.

use raft_model::check::{run, Engine, RunOptions, RunResult, Status, Strategy};
use raft_model::suite::{default_suite, suite_for_bug};
use raft_model::{build, Bug, Config, NetworkKind};
use stateright::{Expectation, Model};

fn check(cfg: &Config, engine: Engine, threads: usize, symmetry: bool) -> RunResult {
    let opts = RunOptions {
        strategy: Strategy::Dfs,
        engine,
        threads,
        symmetry,
        ..Default::default()
    };
    run(cfg, &opts)
}

fn suite_config(name: &str) -> Config {
    default_suite()
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no suite configuration {name}"))
        .config
}

/// Configurations that cover symmetry, a duplicating lossy network with
/// crashes, clients and snapshots, all small.
fn small_configs() -> Vec<(&'static str, Config, bool)> {
    let duplicating = Config {
        clients: 0,
        max_term: 1,
        max_in_flight: 3,
        lossy: true,
        network: NetworkKind::Duplicating,
        ..Config::default()
    };
    let elections = Config {
        clients: 0,
        max_term: 1,
        max_crashes: 1,
        ..Config::default()
    };
    vec![
        ("spare-server", suite_config("spare-server"), false),
        ("leader-transfer", suite_config("leader-transfer"), false),
        (
            "refuse-compacted-prev",
            suite_config("refuse-compacted-prev"),
            false,
        ),
        ("elections, symmetry", elections, true),
        ("duplicating, lossy", duplicating, false),
    ]
}

/// Same unique states, verdicts and, where each state is its own class, the
/// same number of states generated. (With symmetry, or a duplicating
/// network whose last delivery is forgotten, the member of a class that is
/// expanded is the first one reached, and members can differ in how many
/// successors they have, so on several threads that count varies.)
fn same_counts(what: &str, a: &RunResult, b: &RunResult, classes: bool) {
    if !classes {
        assert_eq!(a.states, b.states, "{what}: states");
    }
    assert_eq!(a.unique_states, b.unique_states, "{what}: unique states");
    assert_eq!(a.exhaustive, b.exhaustive, "{what}: exhaustive");
    let verdicts = |r: &RunResult| -> Vec<(&str, Status)> {
        r.properties.iter().map(|p| (p.name, p.status)).collect()
    };
    assert_eq!(verdicts(a), verdicts(b), "{what}: verdicts");
}

#[test]
fn on_one_thread_the_search_is_stateright_dfs_exactly() {
    for (what, cfg, symmetry) in small_configs() {
        let ours = check(&cfg, Engine::Search, 1, symmetry);
        let theirs = check(&cfg, Engine::Stateright, 1, symmetry);
        same_counts(what, &ours, &theirs, false);
        assert!(ours.exhaustive, "{what}: not exhausted");
        assert_eq!(ours.max_depth, theirs.max_depth, "{what}: depth");
        for (p, q) in ours.properties.iter().zip(&theirs.properties) {
            assert_eq!(p.path, q.path, "{what}: the path of {}", p.name);
        }
    }
}

#[test]
fn on_two_threads_the_search_counts_what_stateright_counts() {
    for (what, cfg, symmetry) in small_configs() {
        let ours = check(&cfg, Engine::Search, 2, symmetry);
        let theirs = check(&cfg, Engine::Stateright, 1, symmetry);
        let classes = symmetry || cfg.network == NetworkKind::Duplicating;
        same_counts(what, &ours, &theirs, classes);
        // Every path reported replays in the model and shows its verdict.
        let model = build(&cfg);
        for p in &ours.properties {
            let Some(path) = &p.path else { continue };
            let last = path.last_state();
            let property = model
                .properties()
                .into_iter()
                .find(|q| q.name == p.name)
                .unwrap();
            let holds = (property.condition)(&model, last);
            match p.expectation {
                Expectation::Sometimes => assert!(holds, "{what}: {} example", p.name),
                _ => assert!(!holds, "{what}: {} counterexample", p.name),
            }
        }
    }
}

/// A planted bug is caught by the search on two threads, with a
/// counterexample whose last state breaks the expected property, and the
/// run stops there: not exhaustive.
#[test]
fn the_search_catches_planted_bugs() {
    for bug in [Bug::DoubleVote, Bug::CommitOldTerm, Bug::TruncateOnMatch] {
        let cfg = &suite_for_bug(bug)[0].config;
        let r = check(cfg, Engine::Search, 2, false);
        let p = r
            .properties
            .iter()
            .find(|p| p.name == bug.expected_property())
            .unwrap();
        assert_eq!(p.status, Status::Violated, "{bug}");
        assert!(!r.exhaustive, "{bug}: a violated run is not exhaustive");
        let model = build(cfg);
        let path = p.path.as_ref().expect("a counterexample");
        let property = model
            .properties()
            .into_iter()
            .find(|q| q.name == p.name)
            .unwrap();
        assert!(
            !(property.condition)(&model, path.last_state()),
            "{bug}: the counterexample's last state keeps the property"
        );
    }
}
