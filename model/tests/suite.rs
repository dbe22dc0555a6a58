//! The default suite, configuration by configuration: each holds, is
//! explored exhaustively, and has exactly its pinned number of unique
//! states; together they reach every sometimes-property. The pins make a
//! rule change that removes (or adds) behaviours fail loudly. Update a pin
//! only on purpose, with the reason in the commit message.
//!
//! This is also the test that `ci/mutants.sh model` runs against each mutant
//! of `model/src/rules/`, so it stops at the first configuration that
//! differs, trying the smallest first.

use std::collections::BTreeMap;

use raft_model::check::{run, RunOptions, Status, Strategy};
use raft_model::suite::default_suite;

/// The exact number of unique states of each default-suite configuration,
/// exhaustively explored (the count does not depend on the thread count).
const UNIQUE_STATES: [(&str, usize); 22] = [
    ("elections", 80_668),
    ("clients", 54_462),
    ("figure8", 524_498),
    ("snapshots", 69_692),
    ("production", 416_792),
    ("pre-vote", 119_237),
    ("check-quorum", 192_311),
    ("read-index", 44_993),
    ("snapshot-fast-forward", 95_000),
    ("leader-transfer", 15_170),
    ("lease-read", 120_618),
    ("stale-term-step-down", 43_774),
    ("refuse-compacted-prev", 7_552),
    ("late-self-vote", 63_712),
    ("commit-any-message", 230_902),
    ("partial-batches", 131_618),
    ("three-entries", 600_694),
    ("five-servers", 24_890),
    ("membership", 303_299),
    ("membership-on-apply", 110_794),
    ("joint", 109_154),
    ("spare-server", 437),
];

#[test]
fn each_suite_configuration_holds_with_its_pinned_state_count() {
    let suite = default_suite();
    let names: Vec<&str> = suite.iter().map(|e| e.name).collect();
    let pinned: Vec<&str> = UNIQUE_STATES.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, pinned, "the suite's configurations");
    let opts = RunOptions {
        strategy: Strategy::Dfs,
        threads: 2,
        ..Default::default()
    };
    // Each sometimes-property: whether some configuration reached it.
    let mut reached: BTreeMap<&str, bool> = BTreeMap::new();
    // Smallest first, so that a rule change fails as early as it can.
    let mut order: Vec<(&raft_model::suite::SuiteEntry, usize)> =
        suite.iter().zip(UNIQUE_STATES.map(|(_, n)| n)).collect();
    order.sort_by_key(|(_, n)| *n);
    for (entry, want) in order {
        let r = run(&entry.config, &opts);
        for p in &r.properties {
            assert_ne!(
                p.status,
                Status::Violated,
                "{}: {} violated",
                entry.name,
                p.name
            );
            if matches!(p.expectation, stateright::Expectation::Sometimes) {
                let hit = reached.entry(p.name).or_default();
                *hit |= p.status == Status::Reached;
            }
        }
        assert!(r.exhaustive, "{}: not exhausted", entry.name);
        assert_eq!(r.unique_states, want, "{}: unique states", entry.name);
    }
    let unreached: Vec<&str> = reached
        .iter()
        .filter(|(_, hit)| !**hit)
        .map(|(name, _)| *name)
        .collect();
    assert!(unreached.is_empty(), "never reached: {unreached:?}");
}
