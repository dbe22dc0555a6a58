//! raftcheck's own depth-first search over stateright's [`Model`] trait:
//! what `raftcheck check` runs for `--strategy dfs` (`--engine stateright`
//! runs stateright's DFS checker instead).
//!
//! It explores the graph stateright's DFS checker explores, and on one
//! thread in the same order: a stack of states, the newest popped first,
//! each popped state checked against every property and then expanded, its
//! successors (within the boundary) counted and pushed in action order when
//! their fingerprint (of their class, with `--symmetry` or a duplicating
//! network) is new. It counts states, unique states and depth as stateright does, keeps
//! a property's last discovery as stateright does, and stops after the block
//! in which an always-property fails (stateright's `AnyFailures`). The
//! checker tests pin all of that against stateright's checker.
//!
//! What differs is bookkeeping, which is where stateright 0.31's checker
//! spends its time on this model (model/README, "Checking speed"):
//! - a state's path is one small shared node (its action's index and its
//!   parent's node) instead of a copy of every index from the initial state;
//! - nothing shared is touched per state but the visited set: no lookup in
//!   a shared map per property, no shared counter per generated state
//!   (counts are published once per block of states);
//! - an idle thread is handed the oldest (shallowest) part of a busy
//!   thread's stack, whose subtrees are the largest, and a busy thread looks
//!   at the shared market only when a thread is idle.
//!
//! Eventually-properties are not supported (the Raft model registers none);
//! [`Search::spawn`] refuses a model that has one.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use stateright::{Checker, Expectation, Model, Path, Property};

use crate::visited::Visited;

/// States checked by a thread between two looks at the shared state
/// (counters, failures, idle threads), as in stateright's checker.
const BLOCK: usize = 1500;

/// The hasher of [`fingerprint`]: stateright's own (ahash with its fixed
/// keys).
pub fn hasher() -> ahash::AHasher {
    use std::hash::BuildHasher;
    ahash::RandomState::with_seeds(123_456_789_987_654_321, 98_765_432_123_456_789, 0, 0)
        .build_hasher()
}

/// A state's fingerprint: stateright's own, so both checkers record the
/// same fingerprints.
pub fn fingerprint<T: Hash>(value: &T) -> u64 {
    use std::hash::Hasher;
    let mut h = hasher();
    value.hash(&mut h);
    h.finish()
}

/// The action indices from an initial state to a state, newest first: the
/// root holds the initial state's index.
struct Trail {
    index: usize,
    parent: Option<Arc<Trail>>,
}

impl Trail {
    fn root(index: usize) -> Arc<Trail> {
        Arc::new(Trail {
            index,
            parent: None,
        })
    }

    fn step(parent: &Arc<Trail>, index: usize) -> Arc<Trail> {
        Arc::new(Trail {
            index,
            parent: Some(Arc::clone(parent)),
        })
    }

    /// The indices from the initial state's on.
    fn indices(&self) -> Vec<usize> {
        let mut out = vec![self.index];
        let mut at = self.parent.as_deref();
        while let Some(t) = at {
            out.push(t.index);
            at = t.parent.as_deref();
        }
        out.reverse();
        out
    }
}

impl Drop for Trail {
    /// Frees a long chain in a loop, not by recursion.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(parent) = next {
            next = match Arc::into_inner(parent) {
                Some(mut t) => t.parent.take(),
                None => None,
            };
        }
    }
}

struct Job<S> {
    state: S,
    trail: Arc<Trail>,
    /// 1 for an initial state.
    depth: usize,
}

/// Batches of jobs handed from busy threads to idle ones.
struct Market<S> {
    batches: Vec<VecDeque<Job<S>>>,
    /// Threads waiting for a batch.
    idle: usize,
    /// No more batches will come: every thread was idle at once, or the
    /// search stopped.
    closed: bool,
}

/// The fingerprint of a state's class (symmetry reduction): equal for two
/// states exactly when they are in one class, such as the fingerprint of a
/// representative.
pub type ClassPrint<S> = fn(&S) -> u64;

struct Shared<M: Model> {
    model: M,
    /// The initial states within the boundary at the start, which a
    /// trail's root indexes (the boundary may close later: a stopped run's).
    init: Vec<M::State>,
    properties: Vec<Property<M>>,
    class: Option<ClassPrint<M::State>>,
    threads: usize,
    visited: Visited,
    states: AtomicUsize,
    max_depth: AtomicUsize,
    /// An always-property failed: every thread stops after its block.
    failed: AtomicBool,
    /// [`Search::stop`] was called: every thread stops after its block.
    halted: AtomicBool,
    market: Mutex<Market<M::State>>,
    wake: Condvar,
    /// A copy of the market's `idle` that busy threads read without the lock.
    hungry: AtomicUsize,
    /// Threads still running.
    running: AtomicUsize,
    /// Each property's discovery, merged from the threads as they end.
    found: Mutex<Vec<Option<Arc<Trail>>>>,
}

/// A running (or finished) search; drive it through [`Checker`].
pub struct Search<M: Model> {
    shared: Arc<Shared<M>>,
    handles: Vec<JoinHandle<()>>,
}

impl<M> Search<M>
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + Hash + Send + Sync + 'static,
{
    /// Starts searching `model` on `threads` threads. With `class`, a state
    /// counts as visited when its class's fingerprint was recorded; without,
    /// when its own [`fingerprint`] was.
    ///
    /// # Panics
    /// If the model has an eventually-property.
    pub fn spawn(model: M, threads: usize, class: Option<ClassPrint<M::State>>) -> Search<M> {
        let properties = model.properties();
        assert!(
            properties
                .iter()
                .all(|p| p.expectation != Expectation::Eventually),
            "the search does not check eventually-properties"
        );
        let threads = threads.max(1);
        let init: Vec<M::State> = model
            .init_states()
            .into_iter()
            .filter(|s| model.within_boundary(s))
            .collect();
        let visited = Visited::default();
        for s in &init {
            let print = match class {
                Some(class) => class(s),
                None => fingerprint(s),
            };
            visited.insert(print);
        }
        let jobs: VecDeque<Job<M::State>> = init
            .iter()
            .enumerate()
            .map(|(i, state)| Job {
                state: state.clone(),
                trail: Trail::root(i),
                depth: 1,
            })
            .collect();
        let shared = Arc::new(Shared {
            states: AtomicUsize::new(jobs.len()),
            found: Mutex::new(vec![None; properties.len()]),
            model,
            init,
            properties,
            class,
            threads,
            visited,
            max_depth: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            halted: AtomicBool::new(false),
            market: Mutex::new(Market {
                batches: vec![jobs],
                idle: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            hungry: AtomicUsize::new(0),
            running: AtomicUsize::new(threads),
        });
        let handles = (0..threads)
            .map(|t| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("search-{t}"))
                    .spawn(move || shared.work())
                    .expect("spawning a search thread")
            })
            .collect();
        Search { shared, handles }
    }

    /// Asks every thread to stop after its current block of states (a
    /// time budget). The search then ends without exploring everything.
    pub fn stop(&self) {
        self.shared.halted.store(true, Ordering::Relaxed);
        self.shared.close();
    }
}

impl<M: Model> Shared<M> {
    /// No more batches: idle threads end, busy ones end after their block
    /// (when they see why).
    fn close(&self) {
        let mut market = self.market.lock().unwrap_or_else(|e| e.into_inner());
        market.closed = true;
        market.batches.clear();
        self.wake.notify_all();
    }
}

impl<M> Shared<M>
where
    M: Model,
    M::State: Hash,
{
    fn work(&self) {
        // However this thread ends, even by a panic, it stops being counted
        // as running; a panic closes the market so that the other threads
        // end too, and `join` reports it.
        struct Leaving<'a, M: Model>(&'a Shared<M>);
        impl<M: Model> Drop for Leaving<'_, M> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.halted.store(true, Ordering::Relaxed);
                    self.0.close();
                }
                self.0.running.fetch_sub(1, Ordering::Release);
            }
        }
        let _leaving = Leaving(self);
        let mut found: Vec<Option<Arc<Trail>>> = vec![None; self.properties.len()];
        let mut pending = VecDeque::new();
        let mut actions = Vec::new();
        let mut deepest = 0;
        loop {
            if pending.is_empty() {
                match self.take() {
                    Some(batch) => pending = batch,
                    None => break,
                }
            }
            let (generated, stop) =
                self.block(&mut pending, &mut found, &mut actions, &mut deepest);
            self.states.fetch_add(generated, Ordering::Relaxed);
            if stop || self.failed.load(Ordering::Relaxed) || self.halted.load(Ordering::Relaxed) {
                self.close();
                break;
            }
            if pending.len() > 1 && self.hungry.load(Ordering::Relaxed) > 0 {
                self.share(&mut pending);
            }
        }
        let mut all = self.found.lock().unwrap_or_else(|e| e.into_inner());
        for (slot, mine) in all.iter_mut().zip(found) {
            if mine.is_some() {
                *slot = mine;
            }
        }
    }

    /// Checks and expands up to [`BLOCK`] states from the top of `pending`.
    /// Returns the states generated, and whether the search must stop
    /// because the last state checked failed every property it could
    /// (stateright's checker stops there too).
    fn block(
        &self,
        pending: &mut VecDeque<Job<M::State>>,
        found: &mut [Option<Arc<Trail>>],
        actions: &mut Vec<M::Action>,
        deepest: &mut usize,
    ) -> (usize, bool) {
        let model = &self.model;
        let mut generated = 0;
        for _ in 0..BLOCK {
            let Some(Job {
                state,
                trail,
                depth,
            }) = pending.pop_back()
            else {
                break;
            };
            if depth > *deepest {
                *deepest = depth;
                self.max_depth.fetch_max(depth, Ordering::Relaxed);
            }
            let mut awaiting = false;
            for (i, p) in self.properties.iter().enumerate() {
                let holds = (p.condition)(model, &state);
                match p.expectation {
                    Expectation::Always if !holds => {
                        found[i] = Some(Arc::clone(&trail));
                        self.failed.store(true, Ordering::Relaxed);
                    }
                    Expectation::Sometimes if holds => found[i] = Some(Arc::clone(&trail)),
                    _ => awaiting = true,
                }
            }
            if !awaiting {
                return (generated, true);
            }
            model.actions(&state, actions);
            for (index, action) in actions.drain(..).enumerate() {
                let Some(next) = model.next_state(&state, action) else {
                    continue;
                };
                if !model.within_boundary(&next) {
                    continue;
                }
                generated += 1;
                let print = match self.class {
                    Some(class) => class(&next),
                    None => fingerprint(&next),
                };
                if self.visited.insert(print) {
                    pending.push_back(Job {
                        state: next,
                        trail: Trail::step(&trail, index),
                        depth: depth + 1,
                    });
                }
            }
        }
        (generated, false)
    }

    /// A batch from the market, waiting for one while another thread may
    /// still share; `None` once no more will come.
    fn take(&self) -> Option<VecDeque<Job<M::State>>> {
        let mut market = self.market.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if market.closed {
                return None;
            }
            if let Some(batch) = market.batches.pop() {
                return Some(batch);
            }
            market.idle += 1;
            if market.idle == self.threads {
                // Every thread is idle and no batch is left: done.
                market.closed = true;
                self.wake.notify_all();
                return None;
            }
            self.hungry.store(market.idle, Ordering::Relaxed);
            market = self.wake.wait(market).unwrap_or_else(|e| e.into_inner());
            market.idle -= 1;
            self.hungry.store(market.idle, Ordering::Relaxed);
        }
    }

    /// Hands the oldest part of `pending` to each idle thread not yet
    /// served.
    fn share(&self, pending: &mut VecDeque<Job<M::State>>) {
        let mut market = self.market.lock().unwrap_or_else(|e| e.into_inner());
        if market.closed {
            return;
        }
        let wanted = market.idle.saturating_sub(market.batches.len());
        let pieces = 1 + wanted.min(pending.len() - 1);
        let size = pending.len() / pieces;
        for _ in 1..pieces {
            let rest = pending.split_off(size);
            market.batches.push(std::mem::replace(pending, rest));
            self.wake.notify_one();
        }
    }

    /// The path a trail names, replayed from its initial state.
    fn path(&self, trail: &Trail) -> Path<M::State, M::Action>
    where
        M::State: Clone + PartialEq,
        M::Action: Clone + PartialEq,
    {
        let model = &self.model;
        let indices = trail.indices();
        let first = self.init[indices[0]].clone();
        let mut state = first.clone();
        let mut taken = Vec::with_capacity(indices.len() - 1);
        let mut actions = Vec::new();
        for &i in &indices[1..] {
            model.actions(&state, &mut actions);
            let action = actions.swap_remove(i);
            actions.clear();
            state = model
                .next_state(&state, action.clone())
                .expect("a searched step replays");
            taken.push(action);
        }
        Path::from_actions(model, first, &taken).expect("a searched path replays")
    }
}

impl<M> Checker<M> for Search<M>
where
    M: Model,
    M::State: Hash,
{
    fn model(&self) -> &M {
        &self.shared.model
    }

    fn state_count(&self) -> usize {
        self.shared.states.load(Ordering::Relaxed)
    }

    fn unique_state_count(&self) -> usize {
        self.shared.visited.len()
    }

    fn max_depth(&self) -> usize {
        self.shared.max_depth.load(Ordering::Relaxed)
    }

    /// Complete once the threads have ended ([`Checker::join`]).
    fn discoveries(&self) -> HashMap<&'static str, Path<M::State, M::Action>>
    where
        M::State: Clone + PartialEq,
        M::Action: Clone + PartialEq,
    {
        let found = self.shared.found.lock().unwrap_or_else(|e| e.into_inner());
        self.shared
            .properties
            .iter()
            .zip(found.iter())
            .filter_map(|(p, t)| Some((p.name, self.shared.path(t.as_deref()?))))
            .collect()
    }

    fn handles(&mut self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut self.handles)
    }

    fn is_done(&self) -> bool {
        self.shared.running.load(Ordering::Acquire) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two counters, each raised by one up to `n`: `(n+1)^2` states, and
    /// `2n(n+1)` steps between them.
    struct Grid {
        n: u32,
        /// An always-property fails at this state, if any.
        bad: Option<(u32, u32)>,
        eventually: bool,
        /// A step from this state panics, if any.
        panics: Option<(u32, u32)>,
    }

    impl Model for Grid {
        type State = (u32, u32);
        type Action = bool;

        fn init_states(&self) -> Vec<(u32, u32)> {
            vec![(0, 0)]
        }

        fn actions(&self, s: &(u32, u32), actions: &mut Vec<bool>) {
            if s.0 < self.n {
                actions.push(false);
            }
            if s.1 < self.n {
                actions.push(true);
            }
        }

        fn next_state(&self, s: &(u32, u32), second: bool) -> Option<(u32, u32)> {
            assert!(self.panics != Some(*s), "a planted panic");
            Some(if second {
                (s.0, s.1 + 1)
            } else {
                (s.0 + 1, s.1)
            })
        }

        fn properties(&self) -> Vec<Property<Self>> {
            let mut ps = vec![
                Property::<Self>::always("not bad", |m, s| m.bad != Some(*s)),
                Property::<Self>::sometimes("corner", |m, s| *s == (m.n, m.n)),
            ];
            if self.eventually {
                ps.push(Property::<Self>::eventually("never", |_, _| false));
            }
            ps
        }
    }

    fn grid(n: u32, bad: Option<(u32, u32)>) -> Grid {
        Grid {
            n,
            bad,
            eventually: false,
            panics: None,
        }
    }

    #[test]
    fn the_search_counts_every_state_and_step_once() {
        for threads in [1, 2, 3] {
            let n = 60;
            let s = Search::spawn(grid(n, None), threads, None).join();
            assert!(s.is_done());
            let unique = ((n + 1) * (n + 1)) as usize;
            assert_eq!(s.unique_state_count(), unique, "{threads} threads");
            // The initial state, and one per step.
            assert_eq!(s.state_count(), 1 + (2 * n * (n + 1)) as usize);
            // Depth-first: the deepest state is the far corner.
            assert_eq!(s.max_depth(), 1 + 2 * n as usize);
            let found = s.discoveries();
            assert!(!found.contains_key("not bad"));
            let corner = &found["corner"];
            assert_eq!(*corner.last_state(), (n, n));
            assert_eq!(corner.clone().into_vec().len(), 1 + 2 * n as usize);
        }
    }

    #[test]
    fn a_failed_always_property_stops_the_search_with_its_path() {
        for threads in [1, 2] {
            let s = Search::spawn(grid(2000, Some((3, 1))), threads, None).join();
            let path = &s.discoveries()["not bad"];
            assert_eq!(*path.last_state(), (3, 1));
            assert_eq!(path.clone().into_vec().len(), 5);
            assert!(
                s.unique_state_count() < 2001 * 2001,
                "stopped before the end"
            );
        }
    }

    #[test]
    fn symmetry_counts_classes() {
        // (x, y) and (y, x) are one class.
        let s = Search::spawn(
            grid(30, None),
            2,
            Some(|s: &(u32, u32)| fingerprint(&(s.0.min(s.1), s.0.max(s.1)))),
        )
        .join();
        assert_eq!(s.unique_state_count(), 31 * 32 / 2);
    }

    #[test]
    #[should_panic(expected = "eventually")]
    fn eventually_properties_are_refused() {
        let _ = Search::spawn(
            Grid {
                eventually: true,
                ..grid(1, None)
            },
            1,
            None,
        );
    }

    /// A thread that panics ends the search (the other threads stop too)
    /// and `join` reports it, instead of the search waiting for it forever.
    #[test]
    #[should_panic(expected = "Failed to join")]
    fn a_panicking_step_ends_the_search_and_is_reported() {
        let s = Search::spawn(
            Grid {
                panics: Some((5, 5)),
                ..grid(400, None)
            },
            2,
            None,
        );
        let start = std::time::Instant::now();
        while !s.is_done() {
            assert!(start.elapsed().as_secs() < 60, "the search never ended");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = s.join();
    }

    #[test]
    fn a_long_trail_is_freed_without_recursion() {
        let mut t = Trail::root(0);
        for i in 0..1_000_000 {
            t = Trail::step(&t, i % 7);
        }
        assert_eq!(t.indices().len(), 1_000_001);
        drop(t);
    }
}
