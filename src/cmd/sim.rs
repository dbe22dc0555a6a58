//! `raftcheck sim`: run a Raft implementation in the deterministic
//! simulator over many seeds. Each run's trace is checked by conformance
//! (the replay against the model's rules, the invariants, linearizability of
//! the client history): that is the verdict; the simulator's own checks only
//! stop a broken run early.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use etcd_raft_adapter::EtcdRaft;
use raft_model::check::Shard;
use raft_rs_adapter::{HarnessBugs, RaftRs};
use raft_sim::raftkv::RaftKv;
use raft_sim::{run, Faults, Implementation, Outcome as RunOutcome, RunResult, SimConfig};
use raftkv::bugs::{Bug, Bugs};
use serde::Serialize;

use raft_conformance::{count, count_as};

use crate::exit::Outcome;
use crate::output::{self, errln, outln};

/// The implementations the simulator can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Impl {
    /// Our own store's core (impl/).
    Raftkv,
    /// tikv/raft-rs 0.7 (crates.io `raft`), through adapters/raft-rs.
    #[value(name = "raft-rs")]
    RaftRs,
    /// etcd's raft package 3.4 (Go), through adapters/etcd-raft's driver.
    #[value(name = "etcd-raft")]
    EtcdRaft,
}

/// Planted mistakes of the raft-rs or etcd-raft harness (not of the library).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HarnessBug {
    /// A hard state granting a vote is written one Ready late, so the vote
    /// leaves before it is durable.
    LateHardState,
    /// etcd-raft only: the newest entry of a Ready is applied when it is the
    /// next one to commit, before it is committed.
    ApplyBeforeCommit,
}

#[derive(clap::Args)]
pub struct Args {
    /// The implementation to run.
    #[arg(long = "impl", value_enum, default_value = "raftkv")]
    implementation: Impl,
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start_seed: u64,
    /// Run only shard K of N of the seed range (1-based): the seeds whose
    /// offset from --start-seed is K-1 modulo N. The N shards together run
    /// exactly the seeds of the unsharded command, so a CI matrix of N
    /// machines can split one long run.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: u64,
    /// Steps (ticks) of each run with faults and client operations. A
    /// quiet phase of up to 400 more steps follows (faults healed, every
    /// node up, no new operations) for outstanding operations to finish,
    /// so a report may name a step past this number. Within it a leader
    /// must be elected and every pending operation answered, or the run
    /// fails with "no progress"; a run that acknowledged fewer operations
    /// than its calm time allows fails with "too little progress".
    #[arg(long, default_value_t = 1500)]
    steps: u64,
    /// Faults to inject: comma-separated from loss, dup, reorder, partition,
    /// crash (or all, none).
    #[arg(long, default_value = "all")]
    faults: Faults,
    /// Concurrent clients.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    clients: u64,
    /// Enable a planted implementation bug (see `raftcheck bugs`).
    #[arg(long)]
    bug: Option<Bug>,
    /// Pre-vote (Raft thesis 9.6) is on by default, as in the node process
    /// (the trace header lists the feature `pre-vote`); this flag is
    /// accepted for old scripts.
    #[arg(long, conflicts_with = "no_pre_vote", hide = true)]
    pre_vote: bool,
    /// Run the nodes without pre-vote.
    #[arg(long)]
    no_pre_vote: bool,
    /// Check-quorum and the leader lease (Raft thesis 6.2) are on by
    /// default, as in the node process (feature `check-quorum`); this flag
    /// is accepted for old scripts.
    #[arg(long, conflicts_with = "no_check_quorum", hide = true)]
    check_quorum: bool,
    /// Run the nodes without check-quorum.
    #[arg(long)]
    no_check_quorum: bool,
    /// Run the nodes without lost-election: a candidate refused by a
    /// quorum waits for its election timer instead of becoming follower
    /// (feature `lost-election`, on by default).
    #[arg(long)]
    no_lost_election: bool,
    /// Let the nemesis ask leaders to hand their leadership to another node
    /// now and then (leader transfer, Raft thesis 3.10; feature
    /// `leader-transfer`). Off by default.
    #[arg(long)]
    leader_transfer: bool,
    /// Membership changes (Raft thesis 4.1, feature `membership`): the
    /// cluster boots with `--nodes` voters and two more servers that are
    /// not members, and the nemesis asks leaders now and then for a change
    /// one server at a time (a voter or learner added, a learner promoted,
    /// a member removed, the leader included), keeping between `--nodes`
    /// and `--nodes` + 2 voters. raftkv only. Off by default.
    #[arg(long)]
    membership: bool,
    /// Serve reads from the leader's lease (Raft thesis 6.4.1; feature
    /// `lease-read`). Requires check-quorum. Off by default.
    #[arg(long)]
    lease_read: bool,
    /// raft-rs and etcd-raft only: run without log compaction (no snapshots).
    #[arg(long)]
    no_compaction: bool,
    /// etcd-raft only: the Go driver binary (built by adapters/etcd-raft/run.sh).
    #[arg(long, value_name = "PATH", env = "RAFTCHECK_ETCD_RAFT_DRIVER")]
    etcd_raft_driver: Option<PathBuf>,
    /// raft-rs and etcd-raft only: plant a mistake in the harness.
    #[arg(long, value_enum)]
    harness_bug: Option<HarnessBug>,
    /// The most candidate model states conformance's replay keeps per node
    /// before a run is inconclusive (default: 256 for raftkv; for raft-rs,
    /// whose stale-append replies leave late, 8192).
    #[arg(long)]
    frontier_budget: Option<usize>,
    /// Write each run's trace and client history to DIR/seed-N/.
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
    /// List the planted implementation bugs and exit.
    #[arg(long)]
    list_bugs: bool,
    /// Keep going after a failing seed.
    #[arg(long)]
    keep_going: bool,
    /// Seeds run in parallel (default: the machine's cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    threads: Option<u64>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Failure {
    seed: u64,
    #[serde(flatten)]
    outcome: RunOutcome,
    reproduce: String,
}

fn reproduce(args: &Args, seed: u64) -> String {
    let mut cmd = format!(
        "raftcheck sim --seeds 1 --start-seed {seed} --nodes {} --steps {} --clients {} --faults {}",
        args.nodes, args.steps, args.clients, args.faults
    );
    match args.implementation {
        Impl::RaftRs => cmd.push_str(" --impl raft-rs"),
        Impl::EtcdRaft => cmd.push_str(" --impl etcd-raft"),
        Impl::Raftkv => {}
    }
    match args.harness_bug {
        Some(HarnessBug::LateHardState) => cmd.push_str(" --harness-bug late-hard-state"),
        Some(HarnessBug::ApplyBeforeCommit) => cmd.push_str(" --harness-bug apply-before-commit"),
        None => {}
    }
    if let Some(d) = &args.etcd_raft_driver {
        cmd.push_str(&format!(" --etcd-raft-driver {}", d.display()));
    }
    if let Some(b) = args.frontier_budget {
        cmd.push_str(&format!(" --frontier-budget {b}"));
    }
    if let Some(b) = args.bug {
        cmd.push_str(&format!(" --bug {}", b.name()));
    }
    for (on, flag) in [
        (args.no_pre_vote, " --no-pre-vote"),
        (args.no_check_quorum, " --no-check-quorum"),
        (args.no_lost_election, " --no-lost-election"),
        (args.leader_transfer, " --leader-transfer"),
        (args.membership, " --membership"),
        (args.lease_read, " --lease-read"),
        (args.no_compaction, " --no-compaction"),
    ] {
        if on {
            cmd.push_str(flag);
        }
    }
    let dir = args
        .trace_dir
        .as_ref()
        .map_or_else(|| "sim-traces".to_string(), |d| d.display().to_string());
    cmd.push_str(&format!(" --trace-dir {dir}"));
    cmd
}

/// A failure's report names the run's trace as `seed-N/trace.ndjson`; with
/// `--trace-dir`, where it was written.
fn in_trace_dir(outcome: RunOutcome, args: &Args, seed: u64) -> RunOutcome {
    let Some(dir) = &args.trace_dir else {
        return outcome;
    };
    let name = format!("seed-{seed}/{}", raft_sim::TRACE_FILE);
    let path = dir
        .join(format!("seed-{seed}"))
        .join(raft_sim::TRACE_FILE)
        .display()
        .to_string();
    match outcome {
        RunOutcome::Invalid { rule, detail } => RunOutcome::Invalid {
            rule,
            detail: detail.replace(&name, &path),
        },
        RunOutcome::Disagreement { invariant, detail } => RunOutcome::Disagreement {
            invariant,
            detail: detail.replace(&name, &path),
        },
        other => other,
    }
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
        clients: args.clients as usize,
        leader_transfer: args.leader_transfer,
        membership: args.membership,
        ..SimConfig::default()
    };
    if args.implementation != Impl::Raftkv {
        let name = if args.implementation == Impl::RaftRs {
            "raft-rs"
        } else {
            "etcd-raft"
        };
        for (on, flag) in [
            (args.bug.is_some(), "--bug (use --harness-bug)"),
            (args.no_lost_election, "--no-lost-election"),
            (args.leader_transfer, "--leader-transfer"),
            (args.membership, "--membership"),
            (args.lease_read, "--lease-read"),
        ] {
            if on {
                anyhow::bail!("{flag} is not supported with --impl {name}");
            }
        }
        let late_hard_state = args.harness_bug == Some(HarnessBug::LateHardState);
        if args.implementation == Impl::EtcdRaft {
            let driver = etcd_raft_adapter::locate(args.etcd_raft_driver.as_deref())?;
            let imp = EtcdRaft {
                driver,
                pre_vote: !args.no_pre_vote,
                check_quorum: !args.no_check_quorum,
                compaction: !args.no_compaction,
                bugs: etcd_raft_adapter::HarnessBugs {
                    late_hard_state,
                    apply_before_commit: args.harness_bug == Some(HarnessBug::ApplyBeforeCommit),
                },
            };
            let cfg = SimConfig {
                frontier_budget: args
                    .frontier_budget
                    .unwrap_or(etcd_raft_adapter::FRONTIER_BUDGET),
                ..cfg
            };
            return drive(&args, &cfg, &imp, name, imp.features());
        }
        if args.harness_bug == Some(HarnessBug::ApplyBeforeCommit) {
            anyhow::bail!("--harness-bug apply-before-commit needs --impl etcd-raft");
        }
        let imp = RaftRs {
            pre_vote: !args.no_pre_vote,
            check_quorum: !args.no_check_quorum,
            compaction: !args.no_compaction,
            bugs: HarnessBugs { late_hard_state },
        };
        let cfg = SimConfig {
            frontier_budget: args
                .frontier_budget
                .unwrap_or(raft_rs_adapter::FRONTIER_BUDGET),
            ..cfg
        };
        return drive(&args, &cfg, &imp, "raft-rs", imp.features());
    }
    if args.no_compaction || args.harness_bug.is_some() {
        anyhow::bail!("--no-compaction and --harness-bug need --impl raft-rs or etcd-raft");
    }
    if let Some(b) = args.bug.filter(|b| Bug::NODE.contains(b)) {
        anyhow::bail!(
            "--bug {b}: a bug of the node's client API, which the simulator does not run; \
             try it on node processes: raftcheck jepsen --node-bug {b}"
        );
    }
    if let Some(b) = args
        .bug
        .filter(|b| b.needs_membership() && !args.membership)
    {
        anyhow::bail!(
            "--bug {b} plants a mistake in membership changes, which a run makes only with \
             --membership: raftcheck sim --membership --bug {b}"
        );
    }
    let cfg = SimConfig {
        frontier_budget: args.frontier_budget.unwrap_or(cfg.frontier_budget),
        ..cfg
    };
    let imp = RaftKv {
        bugs: args.bug.map_or(Bugs::NONE, |b| Bugs::NONE.with(b)),
        pre_vote: !args.no_pre_vote,
        check_quorum: !args.no_check_quorum,
        lost_election: !args.no_lost_election,
        leader_transfer: args.leader_transfer,
        lease_read: args.lease_read,
        membership: args.membership,
    };
    if let Err(e) = imp.validate() {
        anyhow::bail!("--lease-read with --no-check-quorum: {e}");
    }
    drive(&args, &cfg, &imp, "raftkv", imp.features())
}

/// How close the runs came to the progress checks: the longest quiet
/// phase a healed cluster needed, and the run with the fewest acknowledged
/// operations per client per calm tick.
#[derive(Debug, Default, Serialize)]
struct Progress {
    /// The most steps of the quiet phase a run needed to elect a leader
    /// and answer every pending operation (the bound: `quiet_steps`).
    max_heal_steps: u64,
    max_heal_seed: Option<u64>,
    quiet_steps: u64,
    /// The run with the lowest rate of acknowledged operations per client
    /// per calm tick, of those with calm ticks.
    lowest_ack_rate: Option<AckRate>,
}

#[derive(Debug, Serialize)]
struct AckRate {
    seed: u64,
    ops_ok: u64,
    calm_steps: u64,
    clients: usize,
    floor: u64,
    per_client_per_calm_tick: f64,
}

impl Progress {
    fn add(&mut self, r: &RunResult) {
        self.quiet_steps = raft_sim::QUIET_STEPS;
        if r.stats.heal_steps >= self.max_heal_steps {
            self.max_heal_steps = r.stats.heal_steps;
            self.max_heal_seed = Some(r.seed);
        }
        let calm = r.stats.calm_steps;
        if calm == 0 || r.clients == 0 {
            return;
        }
        let rate = r.stats.ops_ok as f64 / (calm as f64 * r.clients as f64);
        if self
            .lowest_ack_rate
            .as_ref()
            .is_none_or(|l| rate < l.per_client_per_calm_tick)
        {
            self.lowest_ack_rate = Some(AckRate {
                seed: r.seed,
                ops_ok: r.stats.ops_ok,
                calm_steps: calm,
                clients: r.clients,
                floor: raft_sim::ack_floor(&r.stats, r.clients),
                per_client_per_calm_tick: rate,
            });
        }
    }
}

/// Runs the seeds of `args` on `imp` and reports.
fn drive<I: Implementation + Sync>(
    args: &Args,
    cfg: &SimConfig,
    imp: &I,
    name: &str,
    features: Vec<String>,
) -> Result<Outcome> {
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    let seeds: Vec<u64> = (0..args.seeds)
        .filter(|o| args.shard.is_none_or(|s| s.holds(*o)))
        .map(|o| args.start_seed.saturating_add(o))
        .collect();
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut passed = 0u64;
    let mut inconclusive = 0u64;
    let mut ops_ok = 0u64;
    let mut commits = 0u64;
    let mut events = 0u64;
    let mut totals = std::collections::BTreeMap::<&str, u64>::new();
    let mut done = 0usize;
    let mut progress = Progress::default();
    'batches: for batch in seeds.chunks(threads.max(1)) {
        // Seeds of a batch run in parallel; their results are taken in seed
        // order, so the output does not depend on the thread count.
        let results: Vec<RunResult> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|&seed| s.spawn(move || run(seed, cfg, imp)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a simulator thread panicked"))
                .collect()
        });
        for r in results {
            let seed = r.seed;
            if let Some(dir) = &args.trace_dir {
                let d = dir.join(format!("seed-{seed}"));
                r.write_to(&d)
                    .with_context(|| format!("writing {}", d.display()))?;
            }
            ops_ok += r.stats.ops_ok;
            events += r.records.len() as u64;
            for (k, v) in [
                ("elections", r.stats.terms_with_leader as u64),
                ("crashes", r.stats.crashes),
                ("partitions", r.stats.partitions),
                ("transfers", r.stats.transfers),
                ("membership_changes", r.stats.changes),
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
            if r.early.is_none() {
                progress.add(&r);
            }
            done += 1;
            match r.outcome() {
                RunOutcome::Valid => passed += 1,
                RunOutcome::Inconclusive { reason } => {
                    inconclusive += 1;
                    if !args.json {
                        outln!("seed {seed}: inconclusive: {reason}")?;
                    }
                }
                outcome => {
                    let f = Failure {
                        seed,
                        reproduce: reproduce(args, seed),
                        outcome: in_trace_dir(outcome, args, seed),
                    };
                    if !args.json {
                        match &f.outcome {
                            RunOutcome::Invalid { rule, detail } => {
                                outln!("seed {seed}: {rule} violated (conformance)\n{detail}")?
                            }
                            RunOutcome::Disagreement { invariant, detail } => outln!(
                                "seed {seed}: the checkers disagree on {invariant}: {detail}"
                            )?,
                            RunOutcome::NoProgress { detail } => {
                                outln!("seed {seed}: no progress: {detail}")?
                            }
                            RunOutcome::TooLittleProgress { detail } => {
                                outln!("seed {seed}: too little progress: {detail}")?
                            }
                            RunOutcome::Valid | RunOutcome::Inconclusive { .. } => {}
                        }
                        outln!("reproduce: {}", f.reproduce)?;
                    }
                    failures.push(f);
                    if !args.keep_going {
                        break 'batches;
                    }
                }
            }
            if !args.json && done.is_multiple_of(100) {
                errln!("{done} seeds run");
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let outcome = if !failures.is_empty() {
        Outcome::Violated
    } else if inconclusive > 0 {
        Outcome::Inconclusive
    } else {
        Outcome::Holds
    };
    if args.json {
        let out = serde_json::json!({
            "verdict": match outcome {
                Outcome::Violated => "violated",
                Outcome::Inconclusive => "inconclusive",
                _ => "holds",
            },
            "implementation": name,
            "seeds_run": done,
            "seeds_passed": passed,
            "start_seed": args.start_seed,
            "shard": args.shard.map(|s| s.to_string()),
            "failures": failures,
            "faults": args.faults.to_string(),
            "bug": args.bug.map(|b| b.name()),
            "features": features,
            "ops_ok": ops_ok,
            "entries_committed": commits,
            "events_validated": events,
            "inconclusive": inconclusive,
            "totals": totals,
            "progress": progress,
            "seconds": elapsed,
        });
        output::json(&out)?;
        return Ok(outcome);
    }
    if failures.is_empty() {
        let shard = args
            .shard
            .map_or(String::new(), |s| format!(" of shard {s}"));
        outln!(
            "{}{}{shard} passed ({} faults: {}; {} acknowledged, {} committed; {} validated by conformance; {elapsed:.1}s)",
            if passed == 1 { "" } else { "all " },
            count(passed, "seed"),
            if args.faults == Faults::NONE { "no" } else { "with" },
            args.faults,
            count(ops_ok, "client operation"),
            count_as(commits, "entry", "entries"),
            count(events, "trace event"),
        )?;
        let t: Vec<String> = totals.iter().map(|(k, v)| format!("{k} {v}")).collect();
        outln!("totals: {}", t.join(", "))?;
        if !features.is_empty() {
            outln!("features: {}", features.join(", "))?;
        }
        if inconclusive > 0 {
            outln!(
                "note: {} no verdict (a check ran out of budget)",
                count_as(inconclusive, "seed had", "seeds had")
            )?;
        }
    } else if args.keep_going {
        outln!(
            "{} of {} failed, {passed} passed, {inconclusive} inconclusive ({elapsed:.1}s)",
            failures.len(),
            count(done as u64, "seed")
        )?;
    }
    Ok(outcome)
}
