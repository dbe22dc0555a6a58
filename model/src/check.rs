//! Running the checker on a configuration and collecting a verdict per
//! property, with counterexample paths.

use std::io::Write as _;
use std::time::{Duration, Instant};

use stateright::actor::ActorModelAction;
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path, UniformChooser};

use crate::actor::Timer;
use crate::config::Config;
use crate::model::{build, RaftModel, RaftState};
use crate::types::Msg;

/// An action of the model.
pub type Action = ActorModelAction<Msg, Timer, ()>;
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

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bfs" => Ok(Strategy::Bfs),
            "dfs" => Ok(Strategy::Dfs),
            "simulation" => Ok(Strategy::Simulation),
            _ => Err(format!(
                "unknown strategy {s:?}; expected bfs, dfs or simulation"
            )),
        }
    }
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub strategy: Strategy,
    pub threads: usize,
    pub timeout: Option<Duration>,
    /// Symmetry reduction over server ids (DFS only; see [`crate::symmetry`]).
    pub symmetry: bool,
    /// Print progress to stderr every second, prefixed with this label.
    pub progress: Option<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            strategy: Strategy::Dfs,
            threads: 1,
            timeout: None,
            symmetry: false,
            progress: None,
        }
    }
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

/// Checks `cfg`. Stops at the first violated safety property.
pub fn run(cfg: &Config, opts: &RunOptions) -> RunResult {
    let cfg = &Config {
        stop: Default::default(),
        ..cfg.clone()
    };
    let model = build(cfg);
    let mut builder = model
        .checker()
        .threads(opts.threads.max(1))
        .finish_when(HasDiscoveries::AnyFailures);
    let timeout = match (opts.strategy, opts.timeout) {
        (_, Some(t)) => Some(t),
        (Strategy::Simulation, None) => Some(Duration::from_secs(10)),
        _ => None,
    };
    if opts.symmetry {
        builder = builder.symmetry_fn(crate::symmetry::representative);
    }
    if let (Strategy::Simulation, Some(t)) = (opts.strategy, timeout) {
        builder = builder.timeout(t);
    }
    let start = Instant::now();
    let label = opts.progress.clone();
    match opts.strategy {
        Strategy::Bfs => drive(cfg, builder.spawn_bfs(), start, label, timeout, true),
        Strategy::Dfs => drive(cfg, builder.spawn_dfs(), start, label, timeout, true),
        Strategy::Simulation => drive(
            cfg,
            builder.spawn_simulation(0, UniformChooser),
            start,
            label,
            timeout,
            false,
        ),
    }
}

fn drive<C: Checker<RaftModel>>(
    cfg: &Config,
    checker: C,
    start: Instant,
    label: Option<String>,
    timeout: Option<Duration>,
    exhaustive_strategy: bool,
) -> RunResult {
    let mut last = Instant::now();
    let mut last_states = 0;
    let mut timed_out = false;
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if timeout.is_some_and(|t| start.elapsed() >= t) && !timed_out {
            timed_out = true;
            cfg.stop.raise();
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
    let seconds = start.elapsed().as_secs_f64();
    let mut discoveries = checker.discoveries();
    let model = checker.model();
    let properties: Vec<PropertyResult> = model
        .properties()
        .into_iter()
        .map(|p| {
            let path = discoveries.remove(p.name);
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
        exhaustive: exhaustive_strategy && !timed_out && !violated,
        properties,
    }
}
