//! Liveness where it is true: after the faults end the healed cluster must
//! elect a leader and answer every pending operation within the quiet
//! phase's bound ("no progress"), and a run must acknowledge at least the
//! floor of operations its calm time allows ("too little progress"). The
//! correct core meets both; the planted liveness bugs do not.

use raft_sim::raftkv::RaftKv;
use raft_sim::{ack_floor, run, Faults, Outcome, SimConfig, QUIET_STEPS};
use raftkv::bugs::{Bug, Bugs};

fn with_bug(bug: Bug) -> RaftKv {
    RaftKv {
        bugs: Bugs::NONE.with(bug),
        ..RaftKv::default()
    }
}

#[test]
fn the_correct_core_heals_and_clears_the_floor() {
    for (faults, seeds) in [(Faults::ALL, 0..4), (Faults::NONE, 0..2)] {
        let cfg = SimConfig {
            faults,
            ..SimConfig::default()
        };
        for seed in seeds {
            let r = run(seed, &cfg, &RaftKv::default());
            assert_eq!(r.outcome(), Outcome::Valid, "seed {seed}: {:?}", r.stats);
            assert_eq!(r.no_progress, None, "seed {seed}");
            assert!(
                r.stats.heal_steps >= 1 && r.stats.heal_steps <= QUIET_STEPS,
                "seed {seed}: {:?}",
                r.stats
            );
            let floor = ack_floor(&r.stats, cfg.clients);
            assert!(
                r.stats.ops_ok >= floor,
                "seed {seed}: floor {floor}: {:?}",
                r.stats
            );
            if faults == Faults::NONE {
                // Calm from the first settle period on: a floor that bites.
                assert!(floor >= 10, "seed {seed}: floor {floor}: {:?}", r.stats);
            }
        }
    }
}

/// Mutant (a): `prev_index = next`. Followers refuse every append, nothing
/// commits, and every run ends with its operations unanswered.
#[test]
fn prev_index_is_next_makes_no_progress() {
    let cfg = SimConfig::default();
    for seed in 0..3 {
        let r = run(seed, &cfg, &with_bug(Bug::PrevIndexIsNext));
        match r.outcome() {
            Outcome::NoProgress { detail } => {
                assert!(
                    detail.contains("still pending") && detail.contains("after healing"),
                    "seed {seed}: {detail}"
                );
                assert!(
                    detail.contains("client 1 request "),
                    "seed {seed}: {detail}"
                );
            }
            other => panic!("seed {seed}: expected no progress, got {other:?}"),
        }
        assert_eq!(r.stats.ops_ok, 0, "seed {seed}: {:?}", r.stats);
    }
}

/// Mutant (b): a node keeps its vote when it adopts a higher term.
/// Conformance's replay rejects the vote its state shows on every run;
/// apart from that, elections stall, and some runs fall below even the
/// conservative acknowledged-operation floor.
#[test]
fn keep_vote_on_new_term_falls_below_the_floor() {
    let cfg = SimConfig::default();
    let imp = with_bug(Bug::KeepVoteOnNewTerm);
    let mut below = 0;
    for seed in 0..20 {
        let r = run(seed, &cfg, &imp);
        assert_ne!(r.outcome(), Outcome::Valid, "seed {seed}");
        if r.stats.ops_ok < ack_floor(&r.stats, cfg.clients) {
            below += 1;
        }
    }
    assert!(below >= 2, "only {below} of 20 runs below the floor");
}

/// A run conformance accepts fails with "too little progress" when it
/// acknowledged fewer operations than its calm time allows.
#[test]
fn a_valid_run_below_the_floor_is_too_little_progress() {
    let cfg = SimConfig::default();
    // A valid run with calm time enough for a floor above 2 (the first of
    // the seeds; which one depends on the schedules).
    let mut r = (0..200)
        .map(|seed| run(seed, &cfg, &RaftKv::default()))
        .find(|r| r.outcome() == Outcome::Valid && ack_floor(&r.stats, cfg.clients) > 2)
        .expect("no valid run of 200 with a floor above 2");
    let floor = ack_floor(&r.stats, cfg.clients);
    r.stats.ops_ok = floor - 1;
    match r.outcome() {
        Outcome::TooLittleProgress { detail } => {
            assert!(
                detail.starts_with(&format!(
                    "{} client operations acknowledged, fewer than the floor of {floor}",
                    floor - 1
                )),
                "{detail}"
            );
        }
        other => panic!("expected too little progress, got {other:?}"),
    }
    r.stats.ops_ok = floor;
    assert_eq!(r.outcome(), Outcome::Valid);
}
