//! How large a lossy duplicating network makes the state space: the lower
//! bound model/README.md gives for the deep configuration of the speed
//! benchmarks (`check --clients 2 --max-term 3 --max-log 3 --max-crashes 1
//! --lossy --network duplicating`).
//!
//! The argument: a duplicating network is a set of messages; a message
//! stays in it after delivery, and loss removes it (stateright's `Drop`).
//! Dropping changes nothing but the network and is always within the
//! model's boundary (no in-flight bound applies to a duplicating network).
//! So from a state whose network holds k messages, every one of the 2^k
//! subsets of them is reachable, each with the same servers, clients,
//! timers and history: 2^k distinct states, each its own class for every
//! reduction the checker applies (the last delivery forgotten, server
//! symmetry: at most a factor of 3! = 6).

use raft_model::{build, Config, NetworkKind};
use stateright::actor::ActorModelAction;
use stateright::Model;

fn deep() -> Config {
    Config {
        clients: 2,
        max_term: 3,
        max_log: 3,
        max_crashes: 1,
        network: NetworkKind::Duplicating,
        lossy: true,
        ..Config::default()
    }
}

/// A fixed xorshift generator: the walks are the same on every run.
struct Walker(u64);

impl Walker {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn a_lossy_duplicating_network_makes_every_subset_of_its_messages_a_state() {
    let model = build(&deep());
    let mut walker = Walker(0x9e37_79b9_7f4a_7c15);
    // Random walks that never drop a message, until one holds 40.
    let mut found = None;
    'walks: for _ in 0..2_000 {
        let mut s = model.init_states().remove(0);
        for _ in 0..400 {
            let mut actions = Vec::new();
            model.actions(&s, &mut actions);
            actions.retain(|a| !matches!(a, ActorModelAction::Drop(_)));
            if actions.is_empty() {
                break;
            }
            let a = actions.swap_remove(walker.below(actions.len()));
            match model.next_state(&s, a) {
                Some(n) if Model::within_boundary(&model, &n) => s = n,
                _ => continue,
            }
            if s.network.len() >= 40 {
                found = Some(s);
                break 'walks;
            }
        }
    }
    let s = found.expect("a reachable state with 40 messages in flight");
    // Each message can be dropped, and a drop changes the network alone.
    let mut actions = Vec::new();
    model.actions(&s, &mut actions);
    let drops: Vec<_> = actions
        .into_iter()
        .filter(|a| matches!(a, ActorModelAction::Drop(_)))
        .collect();
    assert_eq!(drops.len(), s.network.len());
    for d in drops {
        let n = model.next_state(&s, d).expect("a drop is a step");
        assert!(Model::within_boundary(&model, &n));
        assert_eq!(n.network.len(), s.network.len() - 1);
        assert!(n.actor_states == s.actor_states);
        assert!(n.actor_storages == s.actor_storages);
        assert!(n.timers_set == s.timers_set);
        assert!(n.crashed == s.crashed);
        assert!(n.history == s.history);
    }
    // So the deep configuration has at least 2^40 (about 1.1e12) states:
    // beyond any exhaustive search, at any rate a checker reaches here.
}
