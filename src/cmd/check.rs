//! `raftcheck check`: model-check the Raft specification (the default suite,
//! or one configuration given by flags).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use raft_conformance::count;
use raft_model::check::{
    expectation_name, run, Engine, RunOptions, RunResult, Shard, SimulationRun, Status, Strategy,
};
use raft_model::explain::{explain, explorer_url};
use raft_model::suite::{default_suite, suite_for_bug, SuiteEntry};
use raft_model::why::why;
use raft_model::{build, Bug, Config, NetworkKind};
use serde_json::{json, Value};

use crate::exit::Outcome;
use crate::output::{self, errln, outln};

/// The flags that select a model configuration (shared with `explore`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ModelArgs {
    /// Number of servers [default: 3].
    #[arg(long)]
    pub servers: Option<u64>,
    /// Number of clients [default: 1].
    #[arg(long)]
    pub clients: Option<u64>,
    /// Operations per client (write, read, cas, ...) [default: 1].
    #[arg(long)]
    pub ops: Option<u64>,
    /// Highest term a server may start an election for [default: 2].
    #[arg(long)]
    pub max_term: Option<u64>,
    /// Longest log explored [default: 2].
    #[arg(long)]
    pub max_log: Option<u64>,
    /// Servers that may be down at once [default: 0].
    #[arg(long)]
    pub max_crashes: Option<usize>,
    /// ordered, unordered or duplicating [default: unordered].
    #[arg(long)]
    pub network: Option<NetworkKind>,
    /// The network may lose messages.
    #[arg(long)]
    pub lossy: bool,
    /// Snapshot once this many applied entries are outside the snapshot
    /// [default: 0 = never].
    #[arg(long)]
    pub snapshot_after: Option<u64>,
    /// Most messages in flight on a non-duplicating network [default: 8].
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Retries per client request after a timeout [default: 2].
    #[arg(long)]
    pub max_retries: Option<u64>,
    /// A leader may send a follower any number of the entries it lacks,
    /// not always all of them (partial batches).
    #[arg(long)]
    pub partial_batches: bool,
    /// Also check Progress: from every state with a term left and room in
    /// the network to campaign, some schedule still elects a leader (a
    /// second, exhaustive pass over the state graph; see model/README.md).
    #[arg(long)]
    pub progress: bool,
    /// Servers 1..=N form the initial configuration; the others start
    /// outside the cluster and may join by --change [default: every server].
    #[arg(long, value_name = "N")]
    pub voters: Option<u64>,
    /// A membership change a leader may propose whenever it applies:
    /// add:ID (a voter, or a learner promoted), remove:ID (a voter),
    /// learner:ID, remove-learner:ID, demote:ID (a voter made learner),
    /// joint:ID,ID,... (enter joint consensus towards these voters) or
    /// leave-joint (repeatable; needs --feature membership or
    /// config-on-apply).
    #[arg(long = "change", value_name = "CHANGE")]
    pub changes: Vec<raft_model::Change>,
    /// Plant a bug (see `raftcheck bugs`).
    #[arg(long)]
    pub bug: Option<Bug>,
    /// Allow a behaviour of production Raft libraries beyond Figure 2
    /// (repeatable).
    #[arg(
        long = "feature",
        value_name = "NAME",
        value_parser = clap::builder::PossibleValuesParser::new(raft_model::FEATURES)
    )]
    pub features: Vec<String>,
}

/// Which configurations `check` runs, as `check --help` says it.
pub const SELECTION_HELP: &str = "\
Which configurations run:
  no model flag         the default suite: small configurations of 3 servers (one of 5,
                        four of 4 that change membership),
                        each explored exhaustively (one of them loses messages)
  --bug NAME alone      the one suite configuration that catches NAME, with NAME planted
  any other model flag  exactly one configuration, \"custom\", instead of the suite: the
                        flags given, and the defaults in brackets above for the rest (not
                        the suite's bounds); e.g. --lossy alone checks one lossy
                        configuration, it does not add loss to the suite
  --servers N, --network K
                        with the value every configuration that would run already has
                        (--network unordered; --servers 3 with --bug NAME when NAME's
                        configuration has 3 servers): alone (or with --bug) they keep
                        the suite
The output says when the flags selected a custom configuration.";

impl ModelArgs {
    /// Whether the flags select one custom configuration instead of the
    /// suite: any model flag but `--bug`, except `--servers` and `--network`
    /// with the value every configuration that would run (the suite, or the
    /// bug's configuration) already has.
    pub fn any_model_flag(&self) -> bool {
        let suite = match self.bug {
            Some(bug) => suite_for_bug(bug),
            None => default_suite(),
        };
        let in_every = |f: &dyn Fn(&Config) -> bool| suite.iter().all(|e| f(&e.config));
        self.servers
            .is_some_and(|n| !in_every(&|c: &Config| c.servers == n))
            || self
                .network
                .is_some_and(|k| !in_every(&|c: &Config| c.network == k))
            || self.clients.is_some()
            || self.ops.is_some()
            || self.max_term.is_some()
            || self.max_log.is_some()
            || self.max_crashes.is_some()
            || self.lossy
            || self.snapshot_after.is_some()
            || self.max_in_flight.is_some()
            || self.max_retries.is_some()
            || self.partial_batches
            || self.progress
            || self.voters.is_some()
            || !self.changes.is_empty()
            || !self.features.is_empty()
    }

    /// The configuration the flags select (defaults for the rest).
    pub fn config(&self) -> Result<Config> {
        let d = Config::default();
        let mut cfg = Config {
            servers: self.servers.unwrap_or(d.servers),
            clients: self.clients.unwrap_or(d.clients),
            ops: self.ops.unwrap_or(d.ops),
            max_term: self.max_term.unwrap_or(d.max_term),
            max_log: self.max_log.unwrap_or(d.max_log),
            max_crashes: self.max_crashes.unwrap_or(d.max_crashes),
            network: self.network.unwrap_or(d.network),
            lossy: self.lossy,
            snapshot_after: self.snapshot_after.unwrap_or(d.snapshot_after),
            max_in_flight: self.max_in_flight.unwrap_or(d.max_in_flight),
            max_retries: self.max_retries.unwrap_or(d.max_retries),
            partial_batches: self.partial_batches,
            progress: self.progress,
            voters: self.voters,
            changes: self.changes.clone(),
            bug: self.bug,
            ..Config::default()
        };
        for name in &self.features {
            cfg.with_feature(name)?;
        }
        anyhow::ensure!(
            (1..=9).contains(&cfg.servers),
            "--servers must be between 1 and 9"
        );
        anyhow::ensure!(cfg.clients <= 9, "--clients must be at most 9");
        if let Some(v) = cfg.voters {
            anyhow::ensure!(
                (1..=cfg.servers).contains(&v),
                "--voters must be between 1 and --servers ({})",
                cfg.servers
            );
        }
        for c in &cfg.changes {
            if let Some(id) = c.servers().iter().find(|&id| id > cfg.servers) {
                anyhow::bail!(
                    "--change {c}: there is no server {id} (--servers {})",
                    cfg.servers
                );
            }
        }
        anyhow::ensure!(
            cfg.changes.is_empty() || cfg.rules().membership,
            "--change needs --feature membership or --feature config-on-apply"
        );
        anyhow::ensure!(
            cfg.max_crashes <= cfg.servers as usize,
            "--max-crashes cannot exceed --servers"
        );
        Ok(cfg)
    }

    /// The configurations to check: the suite (or its part for `--bug`)
    /// without model flags, else exactly the one the flags give.
    pub fn entries(&self) -> Result<Vec<SuiteEntry>> {
        if self.any_model_flag() {
            Ok(vec![SuiteEntry {
                name: "custom",
                purpose: "one configuration from the model flags, instead of the default suite",
                config: self.config()?,
            }])
        } else if let Some(bug) = self.bug {
            Ok(suite_for_bug(bug))
        } else {
            Ok(default_suite())
        }
    }
}

#[derive(clap::Args)]
#[command(after_help = SELECTION_HELP)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// bfs, dfs or simulation [default: bfs with --bug (shortest
    /// counterexamples), else dfs].
    #[arg(long)]
    strategy: Option<Strategy>,
    /// The DFS checker: raftcheck (its own search) or stateright (the
    /// crate's DFS checker, for comparison: the same states and counts)
    /// [default: raftcheck].
    #[arg(long, value_name = "ENGINE")]
    engine: Option<Engine>,
    /// Checker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Symmetry reduction over server ids (DFS only).
    #[arg(long)]
    symmetry: bool,
    /// Seed of the random walks (simulation only) [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Run shard K of N (1-based) of the random walks (simulation only):
    /// the N shards of one --seed run disjoint walks.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Stop each configuration after this many seconds (inconclusive).
    #[arg(long)]
    timeout: Option<f64>,
    /// Stop each configuration (inconclusive) once the process's resident
    /// memory passes this many megabytes, instead of being killed by the
    /// operating system [default: half of this machine's memory].
    #[arg(long, value_name = "MB")]
    max_memory: Option<u64>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Write each counterexample as a raft-trace/1 file into this directory,
    /// and, named `CONFIG-example-PROPERTY.ndjson`, a path that reaches each
    /// sometimes-property (a behaviour the trace validator must accept).
    /// Each file written is named on stderr with what it is.
    #[arg(long)]
    trace_out: Option<PathBuf>,
    /// Address used in explorer URLs (where `raftcheck explore` listens).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
}

pub fn run_cmd(args: Args) -> Result<Outcome> {
    let entries = args.model.entries()?;
    let strategy = args.strategy.unwrap_or(if args.model.bug.is_some() {
        Strategy::Bfs
    } else {
        Strategy::Dfs
    });
    if let Some(t) = args.timeout {
        anyhow::ensure!(t > 0.0 && t.is_finite(), "--timeout must be positive");
    }
    anyhow::ensure!(
        args.max_memory != Some(0),
        "--max-memory must be at least 1 (megabytes)"
    );
    anyhow::ensure!(
        !args.symmetry || strategy == Strategy::Dfs,
        "--symmetry needs --strategy dfs (stateright applies symmetry only there)"
    );
    if args.symmetry && entries.iter().any(|e| e.config.clients > 0) && !args.json {
        errln!("note: clients pick servers by id, so --symmetry reduces nothing while clients are modelled");
    }
    if args.symmetry && entries.iter().any(|e| !e.config.symmetric()) && !args.json {
        errln!("note: membership changes name particular servers, so --symmetry reduces nothing in a configuration with them");
    }
    if !args.json
        && entries
            .iter()
            .any(|e| e.config.lossy && e.config.network == NetworkKind::Duplicating)
    {
        errln!(
            "note: on a lossy duplicating network every subset of the messages in flight is a \
             state of its own (2^k states for k messages), so only small bounds can be \
             explored exhaustively (model/README.md, \"How large a state space can be\")"
        );
    }
    anyhow::ensure!(args.threads >= 1, "--threads must be at least 1");
    anyhow::ensure!(
        args.engine.is_none() || strategy == Strategy::Dfs,
        "--engine needs --strategy dfs (it chooses the depth-first checker)"
    );
    if strategy != Strategy::Simulation {
        anyhow::ensure!(
            args.shard.is_none(),
            "--shard needs --strategy simulation (bfs and dfs explore every state: there is no seed space to split)"
        );
        anyhow::ensure!(
            args.seed.is_none(),
            "--seed needs --strategy simulation (bfs and dfs are not random)"
        );
    }
    let selection = selection(&args.model);
    if !args.json {
        match selection {
            "custom" => outln!(
                "custom: the model flags select one configuration instead of the default \
                 suite; flags not given take their defaults (raftcheck check --help)"
            )?,
            _ if args.model.servers.is_some() || args.model.network.is_some() => outln!(
                "suite: --servers and --network with the value every configuration that \
                 runs already has keep the suite"
            )?,
            _ => {}
        }
    }
    let mut results = vec![];
    for e in &entries {
        let opts = RunOptions {
            strategy,
            engine: args.engine.unwrap_or_default(),
            threads: args.threads,
            timeout: args.timeout.map(Duration::from_secs_f64),
            symmetry: args.symmetry,
            progress: Some(format!("[{}]", e.name)),
            seed: args.seed.unwrap_or(0),
            shard: args.shard.unwrap_or(Shard::WHOLE),
            max_memory: match args.max_memory {
                Some(mb) => Some(mb.saturating_mul(1 << 20)),
                None => raft_model::progress::half_the_memory(),
            },
        };
        if !args.json {
            errln!("[{}] {} ({})", e.name, e.config.to_flags(), e.purpose);
        }
        let r = run(&e.config, &opts);
        if !args.json {
            print_run(e, &r, &args.addr)?;
        }
        if let Some(dir) = &args.trace_out {
            let written = raft_model::trace::write_counterexamples(dir, e.name, &r)
                .with_context(|| format!("writing traces to {}", dir.display()))?;
            for w in written {
                errln!("wrote {w}");
            }
        }
        results.push((e.clone(), r));
    }
    let summary = summarize(&results);
    if args.json {
        let mut report = json_report(&results, &summary, &args.addr);
        report["selection"] = json!(selection);
        // Which checker ran: the engine only where --strategy dfs chose one.
        report["checker"] = json!({
            "strategy": strategy.name(),
            "engine": (strategy == Strategy::Dfs).then(|| args.engine.unwrap_or_default().name()),
            "threads": args.threads,
        });
        output::json(&report)?;
    } else {
        print_summary(&summary)?;
    }
    Ok(summary.outcome)
}

/// What the flags selected: `suite` (the default suite), `bug` (the suite
/// configuration that catches `--bug`) or `custom` (one configuration from
/// the model flags).
fn selection(model: &ModelArgs) -> &'static str {
    if model.any_model_flag() {
        "custom"
    } else if model.bug.is_some() {
        "bug"
    } else {
        "suite"
    }
}

/// A property's verdict across all configurations.
struct Merged {
    name: &'static str,
    expectation: &'static str,
    status: Status,
    /// Index of the run that decided it (violation or first reach).
    run: Option<usize>,
}

struct Summary {
    merged: Vec<Merged>,
    outcome: Outcome,
    verdict: &'static str,
    vacuous: Vec<&'static str>,
    /// Every run explored its whole state space.
    exhaustive: bool,
}

/// How a property's status reads to a person: a property that holds in a
/// search that was cut short holds only "so far".
fn status_word(status: Status, exhaustive: bool) -> &'static str {
    match status {
        Status::Holds if !exhaustive => "ok so far",
        Status::Holds => "holds",
        s => s.name(),
    }
}

fn summarize(results: &[(SuiteEntry, RunResult)]) -> Summary {
    let mut merged: Vec<Merged> = vec![];
    for (i, (_, r)) in results.iter().enumerate() {
        for p in &r.properties {
            let m = match merged.iter_mut().find(|m| m.name == p.name) {
                Some(m) => m,
                None => {
                    merged.push(Merged {
                        name: p.name,
                        expectation: expectation_name(&p.expectation),
                        status: p.status,
                        run: None,
                    });
                    merged.last_mut().expect("just pushed")
                }
            };
            let better = match (m.status, p.status) {
                (Status::Violated, _) => false,
                (_, Status::Violated) => true,
                (Status::Unreached, Status::Reached) => true,
                _ => false,
            };
            if better || (m.run.is_none() && matches!(p.status, Status::Violated | Status::Reached))
            {
                m.status = p.status;
                m.run = Some(i);
            }
        }
    }
    let violated = merged.iter().any(|m| m.status == Status::Violated);
    let exhaustive = results.iter().all(|(_, r)| r.exhaustive);
    // Only an exhaustive search shows that the bounds make a property
    // unreachable; a simulation or a stopped search may just not have got there.
    let vacuous: Vec<&'static str> = merged
        .iter()
        .filter(|m| exhaustive && m.status == Status::Unreached)
        .map(|m| m.name)
        .collect();
    let (verdict, outcome) = if violated {
        ("violated", Outcome::Violated)
    } else if !exhaustive {
        ("inconclusive", Outcome::Inconclusive)
    } else if !vacuous.is_empty() {
        ("violated", Outcome::Violated)
    } else {
        ("holds", Outcome::Holds)
    };
    Summary {
        merged,
        outcome,
        verdict,
        vacuous,
        exhaustive,
    }
}

fn print_run(e: &SuiteEntry, r: &RunResult, addr: &str) -> Result<()> {
    let how = if r.exhaustive {
        "exhaustive".to_string()
    } else if r.violated() {
        "stopped at the first violation".to_string()
    } else if let Some(stop) = r.stopped {
        format!("NOT exhaustive ({stop})")
    } else {
        "NOT exhaustive (simulation)".to_string()
    };
    outln!(
        "[{}] {}, {} unique, depth {}, {:.2}s, {how}",
        e.name,
        count(r.states as u64, "state"),
        r.unique_states,
        r.max_depth,
        r.seconds
    )?;
    if let Some(sim) = &r.simulation {
        outln!("  {}", walks_line(sim))?;
    }
    for p in &r.properties {
        let mark = match p.status {
            Status::Holds if !r.exhaustive => "ok so far",
            Status::Holds => "ok",
            Status::Reached => "reached",
            Status::Violated => "VIOLATED",
            Status::Unreached => "unreached",
        };
        outln!(
            "  {mark:<9} {:<9} {}",
            expectation_name(&p.expectation),
            p.name
        )?;
    }
    let model = build(&r.config);
    for p in r.properties.iter().filter(|p| p.status == Status::Violated) {
        let Some(path) = &p.path else { continue };
        let steps = explain(&model, path);
        outln!(
            "\nCounterexample for {} in [{}] ({}):",
            p.name,
            e.name,
            count(steps.len() as u64, "step")
        )?;
        for s in &steps {
            outln!("  {:>3}. {} {}", s.step, s.actor, s.action)?;
            for c in &s.changes {
                outln!("         {c}")?;
            }
        }
        if let Some(reason) = why(&model, p.name, path) {
            outln!("  Why: {reason}")?;
        }
        outln!(
            "  Explore it: raftcheck explore {} --addr {addr}\n  then open {}",
            r.config.to_flags(),
            explorer_url(&model, path, addr)
        )?;
    }
    outln!()?;
    Ok(())
}

/// The seed, shard and walks of a simulation, with the flags that repeat it
/// (one thread repeats the walks in the same order, so the same
/// counterexample; more threads run the same walks in another order).
fn walks_line(sim: &SimulationRun) -> String {
    let SimulationRun { seed, shard, walks } = *sim;
    let first: Vec<String> = (0..3).map(|i| shard.walk(i).to_string()).collect();
    format!(
        "simulation: seed {seed}, shard {shard}: {} (numbers {}, ...); \
         repeat: --strategy simulation --seed {seed} --shard {shard} --threads 1",
        count(walks, "walk"),
        first.join(", ")
    )
}

fn print_summary(s: &Summary) -> Result<()> {
    outln!("Summary:")?;
    for m in &s.merged {
        outln!(
            "  {:<9} {:<9} {}",
            status_word(m.status, s.exhaustive),
            m.expectation,
            m.name
        )?;
    }
    if !s.exhaustive && s.merged.iter().any(|m| m.status == Status::Holds) {
        outln!(
            "ok so far: no violation in the states explored, but the search did not \
             exhaust the state space (it stopped at a violation, a --timeout, --max-memory or a budget, \
             or ran --strategy simulation): not a proof"
        )?;
    }
    let unreached = s.merged.iter().any(|m| m.status == Status::Unreached);
    if unreached && s.vacuous.is_empty() {
        outln!(
            "unreached: no state explored satisfied this \"sometimes\" property; the \
             search did not exhaust the state space, so the bounds may still reach it"
        )?;
    }
    if !s.vacuous.is_empty() {
        outln!(
            "vacuous: never reached: {} (the bounds are too tight)",
            s.vacuous.join("; ")
        )?;
    }
    outln!("verdict: {}", s.verdict)?;
    Ok(())
}

fn steps_json(r: &RunResult, name: &str) -> Value {
    let model = build(&r.config);
    r.properties
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| p.path.as_ref())
        .map(|path| serde_json::to_value(explain(&model, path)).unwrap_or(Value::Null))
        .unwrap_or_else(|| json!([]))
}

fn json_report(results: &[(SuiteEntry, RunResult)], s: &Summary, addr: &str) -> Value {
    let props: Vec<Value> = s
        .merged
        .iter()
        .map(|m| {
            let mut v = json!({
                "name": m.name,
                "expectation": m.expectation,
                "status": m.status.name(),
                "counterexample": null,
            });
            if m.status == Status::Violated {
                let (e, r) = &results[m.run.expect("violations have a run")];
                v["counterexample"] = steps_json(r, m.name);
                v["config"] = json!(e.name);
                let model = build(&r.config);
                if let Some(path) = r
                    .properties
                    .iter()
                    .find(|p| p.name == m.name)
                    .and_then(|p| p.path.as_ref())
                {
                    v["why"] = json!(why(&model, m.name, path));
                    v["explorer_url"] = json!(explorer_url(&model, path, addr));
                    v["explore_flags"] = json!(r.config.to_flags());
                }
            }
            v
        })
        .collect();
    let configs: Vec<Value> = results
        .iter()
        .map(|(e, r)| {
            json!({
                "name": e.name,
                "flags": r.config.to_flags(),
                "states": r.states,
                "unique_states": r.unique_states,
                "max_depth": r.max_depth,
                "seconds": r.seconds,
                "exhaustive": r.exhaustive,
                "stopped": r.stopped.map(|s| s.name()),
                "simulation": r.simulation.map(|s| json!({
                    "seed": s.seed,
                    "shard": s.shard.to_string(),
                    "walks": s.walks,
                    "first_walk": s.shard.walk(0),
                })),
                "properties": r.properties.iter().map(|p| json!({
                    "name": p.name,
                    "expectation": expectation_name(&p.expectation),
                    "status": p.status.name(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "verdict": s.verdict,
        "states": results.iter().map(|(_, r)| r.states).sum::<usize>(),
        "unique_states": results.iter().map(|(_, r)| r.unique_states).sum::<usize>(),
        "max_depth": results.iter().map(|(_, r)| r.max_depth).max().unwrap_or(0),
        "seconds": results.iter().map(|(_, r)| r.seconds).sum::<f64>(),
        "properties": props,
        "configs": configs,
    })
}
