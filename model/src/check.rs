//! Running the checker on a configuration and collecting a verdict per
//! property, with counterexample paths.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stateright::actor::ActorModelAction;
use stateright::{Checker, Chooser, Expectation, HasDiscoveries, Model, Path, Property};

use crate::actor::Timer;
use crate::config::Config;
use crate::model::{build, RaftModel, RaftState};

/// An action of the model.
pub type Action = ActorModelAction<crate::actor::Wire, Timer, ()>;

/// The message an action delivers, if it delivers one.
pub fn delivered(action: &Action) -> Option<&crate::types::Msg> {
    match action {
        ActorModelAction::Deliver { msg, .. } => Some(crate::actor::unwire(msg)),
        _ => None,
    }
}
/// A path from an initial state.
pub type RaftPath = Path<RaftState, Action>;

/// How to explore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    Bfs,
    #[default]
    Dfs,
    /// Random walks (not exhaustive: the verdict is at best inconclusive
    /// when nothing is violated).
    Simulation,
}

impl Strategy {
    /// The name `--strategy` takes.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Bfs => "bfs",
            Strategy::Dfs => "dfs",
            Strategy::Simulation => "simulation",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Strategy::Bfs, Strategy::Dfs, Strategy::Simulation]
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown strategy {s:?}; expected bfs, dfs or simulation"))
    }
}

/// Which depth-first checker runs `Strategy::Dfs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Engine {
    /// raftcheck's own ([`crate::search`]).
    #[default]
    Search,
    /// stateright's DFS checker, for comparison: the same states, counts
    /// and (on one thread) discoveries; level with the search or slower on
    /// this model (model/README.md).
    Stateright,
}

impl Engine {
    /// The name `--engine` takes.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Search => "raftcheck",
            Engine::Stateright => "stateright",
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Engine::Search, Engine::Stateright]
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown engine {s:?}; expected raftcheck or stateright"))
    }
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub strategy: Strategy,
    /// The DFS checker (ignored by the other strategies).
    pub engine: Engine,
    pub threads: usize,
    pub timeout: Option<Duration>,
    /// Symmetry reduction over server ids (DFS only; see [`crate::symmetry`]).
    pub symmetry: bool,
    /// Print progress to stderr every second, prefixed with this label.
    pub progress: Option<String>,
    /// Simulation only: the seed of the random walks.
    pub seed: u64,
    /// Simulation only: which part of the walks to run ([`Shard`]).
    pub shard: Shard,
    /// Stop (not exhaustive, [`Stop::Memory`]) once the process's resident
    /// memory passes this many bytes, rather than be killed by the
    /// operating system: a breadth-first search keeps its whole frontier.
    /// Default: half of this machine's memory; `None` (or a system without
    /// `/proc`): no limit.
    pub max_memory: Option<u64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            strategy: Strategy::Dfs,
            engine: Engine::Search,
            threads: 1,
            timeout: None,
            symmetry: false,
            progress: None,
            seed: 0,
            shard: Shard::WHOLE,
            max_memory: crate::progress::half_the_memory(),
        }
    }
}

/// Shard `index` of `count` (1-based) of a numbered sequence of runs: the
/// random walks of a model simulation, or the seeds of `raftcheck sim`.
///
/// The walks of a seed S are numbered 0, 1, 2, ...; walk j is driven by
/// stream j of a ChaCha8 generator keyed by S, and depends on nothing else.
/// Walk `i` (0, 1, 2, ...) of shard K/N is walk `(K-1) + N*i`. So the shards
/// 1/N, ..., N/N of one seed run disjoint sets of walks, and if each runs m
/// walks, together they run exactly walks 0 .. N*m-1: the first N*m walks of
/// the unsharded run (shard 1/1) with the same seed. Different seeds give
/// unrelated walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The whole seed space: one unsharded run.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// The number of walk `i` of this shard in the unsharded run.
    pub fn walk(self, i: u64) -> u64 {
        (self.index - 1).wrapping_add(self.count.wrapping_mul(i))
    }

    /// Whether run `n` (0, 1, 2, ...) of the unsharded sequence is this
    /// shard's: the shards of one count split the sequence without overlap.
    pub fn holds(self, n: u64) -> bool {
        n % self.count == self.index - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected K/N with 1 <= K <= N (e.g. 2/4), found {s:?}");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// What a simulation ran, so that it can be repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimulationRun {
    pub seed: u64,
    pub shard: Shard,
    /// Walks started (walks `shard.walk(0..walks)` of the seed).
    pub walks: u64,
}

/// The outcome for one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Holds,
    Violated,
    Reached,
    Unreached,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::Violated => "violated",
            Status::Reached => "reached",
            Status::Unreached => "unreached",
        }
    }
}

/// A property's verdict, with the path that shows it (a counterexample for
/// a violation, an example for a reached sometimes-property).
#[derive(Clone, Debug)]
pub struct PropertyResult {
    pub name: &'static str,
    pub expectation: Expectation,
    pub status: Status,
    pub path: Option<RaftPath>,
}

/// The result of checking one configuration.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub config: Config,
    pub states: usize,
    pub unique_states: usize,
    pub max_depth: usize,
    pub seconds: f64,
    /// The whole bounded state space was explored (no timeout, not a
    /// simulation, not stopped at a violation).
    pub exhaustive: bool,
    pub properties: Vec<PropertyResult>,
    /// For a simulation: its seed, shard and number of walks.
    pub simulation: Option<SimulationRun>,
    /// What stopped the run before its strategy ended, if anything did.
    pub stopped: Option<Stop>,
}

/// What stopped a run early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Its `--timeout` passed.
    Timeout,
    /// The process's resident memory passed `limit` bytes
    /// ([`RunOptions::max_memory`]).
    Memory { limit: u64 },
}

impl Stop {
    /// The name `--json` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Stop::Timeout => "timeout",
            Stop::Memory { .. } => "memory",
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Timeout => write!(f, "stopped at its --timeout"),
            Stop::Memory { limit } => write!(
                f,
                "stopped when its memory passed {} MB (--max-memory)",
                limit / (1 << 20)
            ),
        }
    }
}

impl RunResult {
    /// Whether an always- or eventually-property was violated.
    pub fn violated(&self) -> bool {
        self.properties.iter().any(|p| p.status == Status::Violated)
    }
}

/// The name of an expectation as printed.
pub fn expectation_name(e: &Expectation) -> &'static str {
    match e {
        Expectation::Always => "always",
        Expectation::Sometimes => "sometimes",
        Expectation::Eventually => "eventually",
    }
}

/// A rule whose precondition fails panics inside a step that the actor
/// catches (property "Every Step Is Defined" reports it); print each panic's
/// place once, not once for every state that reaches it.
fn print_each_panic_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        std::panic::set_hook(Box::new(move |info| {
            let place = info.location().map(|l| l.to_string());
            let first = seen.lock().map(|mut s| s.insert(place)).unwrap_or(true);
            if first {
                previous(info);
            }
        }));
    });
}

/// Checks `cfg`. Stops at the first violated safety property.
pub fn run(cfg: &Config, opts: &RunOptions) -> RunResult {
    print_each_panic_once();
    let cfg = &Config {
        stop: Default::default(),
        ..cfg.clone()
    };
    let model = build(cfg);
    let timeout = match (opts.strategy, opts.timeout) {
        (_, Some(t)) => Some(t),
        (Strategy::Simulation, None) => Some(Duration::from_secs(10)),
        _ => None,
    };
    // The DFS checker counts states by a representative of their class:
    // server ids permuted (--symmetry), and the duplicating network's last
    // delivered message forgotten (always: it changes nothing ahead).
    // stateright's checker takes the representative; the search takes the
    // class's fingerprint, taken in place, without a copy of the state, where
    // the representative is the state less its last delivery.
    let duplicating = cfg.network == crate::NetworkKind::Duplicating;
    let symmetric = opts.symmetry && cfg.symmetric();
    use crate::search::{fingerprint, ClassPrint};
    use crate::symmetry::{
        fingerprint_forgetting_last_delivery as forgetting, forget_last_delivery, representative,
        representative_forgetting_last_delivery,
    };
    type Representative = fn(&RaftState) -> RaftState;
    let (symmetry, class): (Option<Representative>, Option<ClassPrint<RaftState>>) =
        match (symmetric, duplicating) {
            (true, true) => (
                Some(representative_forgetting_last_delivery),
                Some(|s| forgetting(&representative(s))),
            ),
            (true, false) => (
                Some(representative),
                Some(|s| fingerprint(&representative(s))),
            ),
            (false, true) => (Some(forget_last_delivery), Some(forgetting)),
            (false, false) => (None, None),
        };
    // stateright's checkers, for every strategy but the search.
    let stateright = |model: RaftModel| {
        let mut builder = model
            .checker()
            .threads(opts.threads.max(1))
            .finish_when(HasDiscoveries::AnyFailures);
        if let Some(f) = symmetry {
            builder = builder.symmetry_fn(f);
        }
        if let (Strategy::Simulation, Some(t)) = (opts.strategy, timeout) {
            builder = builder.timeout(t);
        }
        builder
    };
    let start = Instant::now();
    // The Progress pass explores the same graph on its own, so it runs on
    // a thread of its own next to the checker, and its verdict is used
    // only if the check ends exhaustive with nothing violated.
    let progress = (cfg.progress && opts.strategy != Strategy::Simulation).then(|| {
        let cancel = Arc::new(AtomicBool::new(false));
        let pass_cfg = Config {
            stop: Default::default(),
            ..cfg.clone()
        };
        let pass_cancel = Arc::clone(&cancel);
        let pass = std::thread::spawn(move || {
            let limits = crate::progress::Limits::new(PROGRESS_MAX_STATES);
            crate::progress::check_progress(&pass_cfg, limits, &pass_cancel)
        });
        (cancel, pass)
    });
    let label = opts.progress.clone();
    let mut r = match opts.strategy {
        Strategy::Bfs => drive(
            cfg,
            stateright(model).spawn_bfs(),
            start,
            label,
            timeout,
            opts.max_memory,
            true,
        ),
        Strategy::Dfs => match opts.engine {
            Engine::Search => {
                let search = crate::search::Search::spawn(model, opts.threads, class);
                drive(cfg, search, start, label, timeout, opts.max_memory, true)
            }
            Engine::Stateright => drive(
                cfg,
                stateright(model).spawn_dfs(),
                start,
                label,
                timeout,
                opts.max_memory,
                true,
            ),
        },
        Strategy::Simulation => {
            let walks = Walks::new(cfg, opts.seed, opts.shard);
            let started = Arc::clone(&walks.started);
            // stateright's own seed argument is unused: `Walks` seeds each walk.
            let checker = stateright(model).spawn_simulation(opts.seed, walks);
            let mut r = drive(cfg, checker, start, label, timeout, opts.max_memory, false);
            r.simulation = Some(SimulationRun {
                seed: opts.seed,
                shard: opts.shard,
                walks: started.load(Ordering::Relaxed),
            });
            r
        }
    };
    if let Some((cancel, pass)) = progress {
        let wanted = r.exhaustive && !r.violated();
        if !wanted {
            cancel.store(true, Ordering::Relaxed);
        }
        match pass.join() {
            Ok(p) if wanted => add_progress(p, &mut r),
            Ok(_) => {}
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    r.seconds = start.elapsed().as_secs_f64();
    r
}

/// The most states the Progress pass keeps (all of them, with their edges).
const PROGRESS_MAX_STATES: usize = 20_000_000;

/// Adds the Progress verdict ([`crate::progress`]) to an exhaustive run
/// that found no violation. If the pass stopped at its state limit, the run
/// is no longer exhaustive.
fn add_progress(p: crate::progress::ProgressReport, r: &mut RunResult) {
    if !p.exhaustive {
        if let Some(why) = &p.stopped {
            tracing::warn!(
                "{why}; the run is not exhaustive (without --progress the safety \
                 properties are checked alone)"
            );
        }
        r.exhaustive = false;
        return;
    }
    r.properties.push(PropertyResult {
        name: crate::properties::names::PROGRESS,
        expectation: Expectation::Always,
        status: if p.dead_ends == 0 {
            Status::Holds
        } else {
            Status::Violated
        },
        path: p.dead_end,
    });
}

/// The random walks of [`Strategy::Simulation`], used instead of
/// stateright's `UniformChooser` for two reasons.
///
/// 1. It chooses only actions that change the state. stateright 0.31's
///    simulation checker records a walk as indices into each state's action
///    list. When the chosen action has no next state (`ActorModel` returns
///    none for a delivery or timeout that changes nothing), the checker
///    `swap_remove`s it, records its index anyway and chooses again from the
///    shortened list, so later indices point into a list that
///    `Path::from_action_indices` never rebuilds: it replays every index
///    against the full list (and keeps a step for the ignored action). The
///    replayed path then takes other actions than the walk did, and panics
///    with "Unable to reconstruct a `Path` based on action indices" once an
///    index is out of range. Our model is deterministic; the checker's
///    bookkeeping is not. When the first choice at every state changes it,
///    every recorded index is into the full list and replays exactly. (The
///    one exception, a state where no action changes anything, ends the walk
///    after the checker has tried them all; those indices would only be used
///    for eventually-properties, and the model registers none.) The price is
///    computing the chosen next state twice.
/// 2. It drives walk `i` of the shard with stream [`Shard::walk`] of a
///    ChaCha8 generator keyed by the seed (whose output is fixed across
///    platforms and rand versions), so a seed and a shard name the walks
///    run, independently of threads and timing.
#[derive(Clone)]
struct Walks {
    model: Arc<RaftModel>,
    seed: u64,
    shard: Shard,
    /// Walks started so far, over all checker threads.
    started: Arc<AtomicU64>,
}

impl Walks {
    fn new(cfg: &Config, seed: u64, shard: Shard) -> Walks {
        let model = build(cfg);
        assert!(
            model
                .properties()
                .iter()
                .all(|p| p.expectation != Expectation::Eventually),
            "simulation paths of eventually-properties may not replay (see Walks)"
        );
        Walks {
            model: Arc::new(model),
            seed,
            shard,
            started: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Chooser<RaftModel> for Walks {
    type State = ChaCha8Rng;

    fn new_state(&self, _checker_seed: u64) -> ChaCha8Rng {
        let i = self.started.fetch_add(1, Ordering::Relaxed);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(self.shard.walk(i));
        rng
    }

    fn choose_initial_state(&self, rng: &mut ChaCha8Rng, initial: &[RaftState]) -> usize {
        rng.random_range(0..initial.len())
    }

    /// Uniform among the actions that change the state.
    fn choose_action(&self, rng: &mut ChaCha8Rng, state: &RaftState, actions: &[Action]) -> usize {
        let mut left: Vec<usize> = (0..actions.len()).collect();
        while !left.is_empty() {
            let i = left.swap_remove(rng.random_range(0..left.len()));
            if self.model.next_state(state, actions[i].clone()).is_some() {
                return i;
            }
        }
        // Nothing changes the state: the checker tries every action in turn
        // and ends the walk.
        0
    }
}

fn drive<C: Checker<RaftModel>>(
    cfg: &Config,
    checker: C,
    start: Instant,
    label: Option<String>,
    timeout: Option<Duration>,
    max_memory: Option<u64>,
    exhaustive_strategy: bool,
) -> RunResult {
    let mut last = Instant::now();
    let mut last_states = 0;
    let mut stopped = None;
    let mut memory_looked = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if stopped.is_none() && timeout.is_some_and(|t| start.elapsed() >= t) {
            stopped = Some(Stop::Timeout);
            // A simulation stops at its own timeout, checked between walks;
            // raising the flag would only cut walks short.
            if exhaustive_strategy {
                cfg.stop.raise();
            }
        }
        if stopped.is_none() && memory_looked.elapsed() >= Duration::from_millis(200) {
            memory_looked = Instant::now();
            if let (Some(limit), Some(used)) = (max_memory, crate::progress::resident_memory()) {
                if used > limit {
                    let stop = Stop::Memory { limit };
                    let _ = writeln!(
                        std::io::stderr(),
                        "warning: the check {stop}: the run is not exhaustive (a \
                         breadth-first search keeps its whole frontier; --strategy dfs \
                         needs little memory)"
                    );
                    stopped = Some(stop);
                    cfg.stop.raise();
                }
            }
        }
        if let Some(label) = &label {
            if last.elapsed() >= Duration::from_secs(1) {
                let states = checker.state_count();
                let rate = (states - last_states) as f64 / last.elapsed().as_secs_f64();
                // Progress is lost on a closed stderr; eprintln! would panic.
                let _ = writeln!(
                    std::io::stderr(),
                    "{label}: {:.0}s states={} unique={} depth={} states/s={:.0}",
                    start.elapsed().as_secs_f64(),
                    states,
                    checker.unique_state_count(),
                    checker.max_depth(),
                    rate
                );
                last = Instant::now();
                last_states = states;
            }
        }
    }
    let checker = checker.join();
    // Its threads have ended: the paths of its discoveries are replayed
    // through the model, which must step again.
    cfg.stop.lower();
    let seconds = start.elapsed().as_secs_f64();
    let mut discoveries = checker.discoveries();
    let model = checker.model();
    let properties: Vec<PropertyResult> = model
        .properties()
        .into_iter()
        .map(|p| {
            let path = discoveries
                .remove(p.name)
                .map(|path| match exhaustive_strategy {
                    true => path,
                    false => first_discovery(model, &p, path),
                });
            let status = match (&p.expectation, path.is_some()) {
                (Expectation::Sometimes, true) => Status::Reached,
                (Expectation::Sometimes, false) => Status::Unreached,
                (_, true) => Status::Violated,
                (_, false) => Status::Holds,
            };
            PropertyResult {
                name: p.name,
                expectation: p.expectation,
                status,
                path,
            }
        })
        .collect();
    let violated = properties.iter().any(|p| p.status == Status::Violated);
    RunResult {
        config: cfg.clone(),
        states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        seconds,
        exhaustive: exhaustive_strategy && stopped.is_none() && !violated,
        properties,
        simulation: None,
        stopped,
    }
}

/// The prefix of `path` up to its first state that violates (always) or
/// satisfies (sometimes) property `p`. stateright's simulation keeps
/// checking a walk after a discovery and records the walk up to the last
/// such state. (BFS and DFS also overwrite a sometimes-property's example
/// with later ones, but a BFS counterexample is already shortest; they are
/// left as they are.)
fn first_discovery(model: &RaftModel, p: &Property<RaftModel>, path: RaftPath) -> RaftPath {
    let steps = path.clone().into_vec();
    let found = |s: &RaftState| match p.expectation {
        Expectation::Always => !(p.condition)(model, s),
        Expectation::Sometimes => (p.condition)(model, s),
        Expectation::Eventually => false,
    };
    let Some(k) = steps.iter().position(|(s, _)| found(s)) else {
        return path;
    };
    let actions: Vec<Action> = steps[..k].iter().filter_map(|(_, a)| a.clone()).collect();
    Path::from_actions(model, steps[0].0.clone(), &actions).unwrap_or(path)
}
