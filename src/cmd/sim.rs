//! `raftcheck sim`: run the raftkv core in the deterministic simulator over
//! many seeds, checking safety invariants after every step and the client
//! history at the end.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use raftkv::bugs::{Bug, Bugs};
use raftkv::sim::{run, Faults, SimConfig};
use serde::Serialize;

use crate::exit::Outcome;
use crate::output::{self, errln, outln};

#[derive(clap::Args)]
pub struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start_seed: u64,
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: u64,
    /// Steps (ticks) of each run with faults and client operations.
    #[arg(long, default_value_t = 1500)]
    steps: u64,
    /// Faults to inject: comma-separated from loss, dup, reorder, partition,
    /// crash (or all, none).
    #[arg(long, default_value = "all")]
    faults: Faults,
    /// Concurrent clients.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    clients: u64,
    /// Enable a planted bug (see --list-bugs).
    #[arg(long)]
    bug: Option<Bug>,
    /// Write each run's trace and client history to DIR/seed-N/.
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
    /// List the planted bugs and exit.
    #[arg(long)]
    list_bugs: bool,
    /// Keep going after a failing seed.
    #[arg(long)]
    keep_going: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Failure {
    seed: u64,
    step: u64,
    invariant: &'static str,
    detail: String,
    reproduce: String,
}

fn reproduce(args: &Args, seed: u64) -> String {
    let mut cmd = format!(
        "raftcheck sim --seeds 1 --start-seed {seed} --nodes {} --steps {} --clients {} --faults {}",
        args.nodes, args.steps, args.clients, args.faults
    );
    if let Some(b) = args.bug {
        cmd.push_str(&format!(" --bug {b}"));
    }
    cmd.push_str(" --trace-dir sim-traces");
    cmd
}

pub fn run_cmd(args: Args) -> Result<Outcome> {
    if args.list_bugs {
        if args.json {
            let bugs: Vec<_> = Bug::ALL
                .iter()
                .map(|b| serde_json::json!({"name": b.name(), "description": b.describe()}))
                .collect();
            output::json(&serde_json::json!({ "bugs": bugs }))?;
        } else {
            for b in Bug::ALL {
                outln!("{:<20} {}", b.name(), b.describe())?;
            }
        }
        return Ok(Outcome::Holds);
    }
    let cfg = SimConfig {
        nodes: args.nodes as usize,
        steps: args.steps,
        faults: args.faults,
        bugs: args.bug.map_or(Bugs::NONE, |b| Bugs::NONE.with(b)),
        clients: args.clients as usize,
        trace: args.trace_dir.is_some(),
        ..SimConfig::default()
    };
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut passed = 0u64;
    let mut inconclusive = 0u64;
    let mut ops_ok = 0u64;
    let mut commits = 0u64;
    let mut totals = std::collections::BTreeMap::<&str, u64>::new();
    for seed in args.start_seed..args.start_seed.saturating_add(args.seeds) {
        let r = run(seed, &cfg);
        if let Some(dir) = &args.trace_dir {
            let d = dir.join(format!("seed-{seed}"));
            r.write_to(&d)
                .with_context(|| format!("writing {}", d.display()))?;
        }
        ops_ok += r.stats.ops_ok;
        for (k, v) in [
            ("elections", r.stats.terms_with_leader as u64),
            ("crashes", r.stats.crashes),
            ("partitions", r.stats.partitions),
            ("snapshots", r.stats.snapshots),
            ("snapshot_installs", r.stats.installs),
            ("messages", r.stats.messages),
            ("dropped", r.stats.dropped),
            ("ops_fail", r.stats.ops_fail),
            ("ops_info", r.stats.ops_info),
        ] {
            *totals.entry(k).or_default() += v;
        }
        commits += r.stats.max_commit;
        inconclusive += u64::from(r.stats.linearizability_inconclusive);
        match r.violation {
            None => passed += 1,
            Some((step, v)) => {
                let f = Failure {
                    seed,
                    step,
                    invariant: v.invariant,
                    detail: v.detail,
                    reproduce: reproduce(&args, seed),
                };
                if !args.json {
                    outln!(
                        "seed {seed}: {} violated at step {step}: {}",
                        f.invariant,
                        f.detail
                    )?;
                    outln!("reproduce: {}", f.reproduce)?;
                }
                failures.push(f);
                if !args.keep_going {
                    break;
                }
            }
        }
        if !args.json && (seed + 1 - args.start_seed).is_multiple_of(100) {
            errln!("{} seeds run", seed + 1 - args.start_seed);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if args.json {
        let out = serde_json::json!({
            "verdict": if !failures.is_empty() {
                "violated"
            } else if inconclusive > 0 {
                "inconclusive"
            } else {
                "holds"
            },
            "seeds_passed": passed,
            "start_seed": args.start_seed,
            "failures": failures,
            "faults": args.faults.to_string(),
            "bug": args.bug.map(|b| b.name()),
            "ops_ok": ops_ok,
            "entries_committed": commits,
            "linearizability_inconclusive": inconclusive,
            "totals": totals,
            "seconds": elapsed,
        });
        output::json(&out)?;
    } else if failures.is_empty() {
        outln!(
            "all {passed} seeds passed ({} faults: {}; {ops_ok} client operations acknowledged, {commits} entries committed; {elapsed:.1}s)",
            if args.faults == Faults::NONE { "no" } else { "with" },
            args.faults,
        )?;
        let t: Vec<String> = totals.iter().map(|(k, v)| format!("{k} {v}")).collect();
        outln!("totals: {}", t.join(", "))?;
        if inconclusive > 0 {
            outln!("note: linearizability search ran out of budget on {inconclusive} seeds")?;
        }
    }
    // A linearizability search that ran out of budget is no verdict.
    Ok(if !failures.is_empty() {
        Outcome::Violated
    } else if inconclusive > 0 {
        Outcome::Inconclusive
    } else {
        Outcome::Holds
    })
}
