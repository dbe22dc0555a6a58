//! Progress: "a leader can always still be elected", checked as a
//! reachability property over the whole bounded state graph.
//!
//! stateright checks always-, sometimes- and eventually-properties, and an
//! eventually-property does not hold here: timers fire at any moment and
//! messages are lost, so an adversarial scheduler splits every vote until
//! the term bound (Raft's liveness rests on randomized timeouts, which the
//! model does not have). What does hold, and what a liveness bug breaks, is
//! the CTL property AG EF leader, restricted to states with a term left to
//! campaign in:
//!
//! > from every reachable state in which no server has reached `max_term`,
//! > some continuation elects a leader.
//!
//! This is the fairness that randomized timeouts give Raft: the schedule in
//! which one well-placed server times out alone and its requests and the
//! answers are delivered exists, and a correct Raft elects it. A rule that
//! leaves servers unable to vote again (a vote kept across terms) or
//! unable to win (a candidate that ignores grants) makes some state a dead
//! end, which this check reports with the path to it.
//!
//! States whose terms are exhausted are exempt: the bound, not Raft, stops
//! them. The check explores the model's state graph itself (breadth first,
//! through stateright's `Model` interface, same bounds, on a thread of its
//! own next to stateright's checker), keeps its edges,
//! and propagates "a leader is reachable" backwards from the states with a
//! leader: linear in states plus edges, so it suits the suite's small
//! configurations, not the deep ones.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use stateright::{Model, Path};

use crate::check::RaftPath;
use crate::config::{Config, NetworkKind};
use crate::model::{build, RaftState};
use crate::properties::{leaders, servers};

/// The outcome of [`check_progress`].
#[derive(Debug)]
pub struct ProgressReport {
    /// Unique states explored.
    pub states: usize,
    /// States with room to campaign in (a term left, and room in the
    /// network for a candidate's requests).
    pub with_budget: usize,
    /// The first dead end found (breadth first, so a shortest one): the
    /// path from an initial state to a state with room to campaign from
    /// which no leader can be elected any more.
    pub dead_end: Option<RaftPath>,
    /// How many states are dead ends.
    pub dead_ends: usize,
    /// Whether every state within the bounds was explored (false if
    /// a limit or a cancel stopped the search, and then nothing is
    /// claimed).
    pub exhaustive: bool,
    /// Why the search stopped before the end, when a limit stopped it.
    pub stopped: Option<String>,
    pub seconds: f64,
}

/// How far the Progress pass may go. It keeps every state's edges and the
/// breadth-first frontier of whole states, which for a deep configuration
/// (a duplicating network, clients) outgrows the machine long before
/// `max_states`: it stops, not exhaustive, once the process's resident
/// memory passes `max_resident` bytes, instead of being killed by the
/// operating system with the whole check.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_states: usize,
    /// Checked where the operating system tells the process's resident
    /// memory (Linux's `/proc/self/status`); `None`: no memory limit.
    pub max_resident: Option<u64>,
}

impl Limits {
    /// `max_states` states, and half of the machine's memory (where it is
    /// known: Linux's `/proc/meminfo`).
    pub fn new(max_states: usize) -> Limits {
        Limits {
            max_states,
            max_resident: half_the_memory(),
        }
    }
}

/// A `kB` field of a `/proc` file (`field` with its colon, as in
/// `"VmRSS:"`), in bytes; `None` where the file or field is missing.
pub fn proc_kb(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// This machine's memory in bytes (Linux's `/proc/meminfo`).
pub fn total_memory() -> Option<u64> {
    proc_kb("/proc/meminfo", "MemTotal:")
}

/// The default memory limit of a check and of this pass: half of the
/// machine's memory, where it is known.
pub fn half_the_memory() -> Option<u64> {
    total_memory().map(|m| m / 2)
}

/// This process's resident memory in bytes (Linux's `/proc/self/status`).
pub fn resident_memory() -> Option<u64> {
    proc_kb("/proc/self/status", "VmRSS:")
}

/// How many states the pass expands between two looks at its memory.
const MEMORY_CHECK_EVERY: usize = 4096;

impl ProgressReport {
    pub fn holds(&self) -> bool {
        self.exhaustive && self.dead_ends == 0
    }
}

/// A state's 64-bit hash: states are told apart by it, as stateright's
/// own checkers tell them apart by their fingerprint (the same hash
/// function, aHash with fixed keys).
fn fingerprint(state: &RaftState) -> u64 {
    ahash::RandomState::with_seeds(0, 0, 0, 0).hash_one(state)
}

/// Whether some server of `state` is leader.
fn has_leader(state: &RaftState) -> bool {
    leaders(state).next().is_some()
}

/// Whether the bounds leave room for one more election: every server is
/// below `max_term`, and the network can take a candidate's requests to
/// every other server (`max_in_flight`; each delivered request is replaced
/// by its answer, so that is room for the whole round).
fn room_to_campaign(cfg: &Config, state: &RaftState) -> bool {
    let room = cfg.network == NetworkKind::Duplicating
        || state.network.len() + cfg.servers as usize - 1 <= cfg.max_in_flight;
    room && servers(state).all(|s| s.term < cfg.max_term)
}

/// Checks AG (term left => EF leader) over `cfg`'s bounded state graph,
/// within `limits`. Raising `cancel` stops the exploration (the report is
/// then not exhaustive).
pub fn check_progress(cfg: &Config, limits: Limits, cancel: &AtomicBool) -> ProgressReport {
    let start = Instant::now();
    let model = build(cfg);
    let mut index: HashMap<u64, u32> = HashMap::new();
    // Per state (by id): whether a server leads, whether it has room to
    // campaign, and how it was first reached (its parent and the action).
    // The states themselves are kept only until expanded, and the initial
    // ones for the dead end's path.
    let mut leader: Vec<bool> = Vec::new();
    let mut budget: Vec<bool> = Vec::new();
    let mut parent: Vec<u32> = Vec::new();
    let mut via = Vec::new();
    let mut succ: Vec<Vec<u32>> = Vec::new();
    let mut roots: HashMap<u32, RaftState> = HashMap::new();
    let mut frontier: VecDeque<RaftState> = VecDeque::new();
    for s in model.init_states() {
        let f = fingerprint(&s);
        if Model::within_boundary(&model, &s) && !index.contains_key(&f) {
            let id = leader.len() as u32;
            index.insert(f, id);
            leader.push(has_leader(&s));
            budget.push(room_to_campaign(cfg, &s));
            parent.push(u32::MAX);
            via.push(None);
            roots.insert(id, s.clone());
            frontier.push_back(s);
        }
    }
    let mut exhaustive = true;
    let mut stopped = None;
    let mut actions = Vec::new();
    // Breadth first: ids are given in the order states are expanded.
    while let Some(state) = frontier.pop_front() {
        if cancel.load(Ordering::Relaxed) {
            exhaustive = false;
            break;
        }
        if leader.len() > limits.max_states {
            exhaustive = false;
            stopped = Some(format!(
                "the Progress pass stopped at its limit of {} states",
                limits.max_states
            ));
            break;
        }
        if succ.len().is_multiple_of(MEMORY_CHECK_EVERY) {
            if let (Some(max), Some(used)) = (limits.max_resident, resident_memory()) {
                if used > max {
                    exhaustive = false;
                    stopped = Some(format!(
                        "the Progress pass stopped after {} states ({} waiting to be \
                         expanded): the process's memory reached {} MB, past its limit of \
                         {} MB (half the machine's)",
                        leader.len(),
                        frontier.len() + 1,
                        used >> 20,
                        max >> 20
                    ));
                    break;
                }
            }
        }
        let here = succ.len() as u32;
        actions.clear();
        model.actions(&state, &mut actions);
        let mut out = Vec::new();
        for a in actions.drain(..) {
            let Some(s) = model.next_state(&state, a.clone()) else {
                continue;
            };
            if !Model::within_boundary(&model, &s) {
                continue;
            }
            let f = fingerprint(&s);
            let id = match index.get(&f) {
                Some(&id) => id,
                None => {
                    let id = leader.len() as u32;
                    index.insert(f, id);
                    leader.push(has_leader(&s));
                    budget.push(room_to_campaign(cfg, &s));
                    parent.push(here);
                    via.push(Some(a));
                    frontier.push_back(s);
                    id
                }
            };
            out.push(id);
        }
        succ.push(out);
    }
    drop(frontier);
    drop(index);
    let n = leader.len();
    // Backwards from the states with a leader.
    let mut pred: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (from, tos) in succ.iter().enumerate() {
        for &to in tos {
            pred[to as usize].push(from as u32);
        }
    }
    let mut good = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    for (i, &l) in leader.iter().enumerate() {
        if l {
            good[i] = true;
            stack.push(i as u32);
        }
    }
    while let Some(i) = stack.pop() {
        for &p in &pred[i as usize] {
            if !good[p as usize] {
                good[p as usize] = true;
                stack.push(p);
            }
        }
    }
    let mut with_budget = 0;
    let mut dead_ends = 0;
    let mut first = None;
    if exhaustive {
        for (i, &b) in budget.iter().enumerate() {
            if b {
                with_budget += 1;
                if !good[i] {
                    dead_ends += 1;
                    first.get_or_insert(i);
                }
            }
        }
    }
    let dead_end = first.and_then(|mut i| {
        let mut actions = Vec::new();
        while parent[i] != u32::MAX {
            actions.extend(via[i].clone());
            i = parent[i] as usize;
        }
        actions.reverse();
        Path::from_actions(&model, roots.remove(&(i as u32))?, &actions)
    });
    ProgressReport {
        states: n,
        with_budget,
        dead_end,
        dead_ends,
        exhaustive,
        stopped,
        seconds: start.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limits: Limits) -> ProgressReport {
        let cfg = Config {
            clients: 0,
            max_term: 1,
            max_log: 1,
            ..Config::default()
        };
        check_progress(&cfg, limits, &AtomicBool::new(false))
    }

    /// One election's configuration (437 states) is explored to the end;
    /// each limit stops the pass, not exhaustive, and says which.
    #[test]
    fn the_pass_stops_at_its_limits_and_says_why() {
        let whole = run(Limits {
            max_states: usize::MAX,
            max_resident: None,
        });
        assert!(whole.exhaustive && whole.holds(), "{whole:?}");
        assert!(whole.stopped.is_none());

        let few = run(Limits {
            max_states: 100,
            max_resident: None,
        });
        assert!(!few.exhaustive && !few.holds());
        assert!(few.states < whole.states);
        let why = few.stopped.expect("a reason");
        assert!(why.contains("limit of 100 states"), "{why}");

        if resident_memory().is_some() {
            let small = run(Limits {
                max_states: usize::MAX,
                max_resident: Some(1),
            });
            assert!(!small.exhaustive);
            let why = small.stopped.expect("a reason");
            assert!(why.contains("memory reached"), "{why}");
        }
    }
}
