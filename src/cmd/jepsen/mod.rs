//! `raftcheck jepsen`: a Jepsen-style experiment on real processes. It
//! starts a raftkv cluster on 127.0.0.1 with every peer link behind a relay
//! it controls, runs concurrent clients that record a history, and a seeded
//! nemesis that kills, pauses and partitions; then heals everything, reads
//! every key, checks the history for linearizability key by key, looks for
//! node crashes and errors, validates the node traces (`--trace`), and
//! writes `report.html`. `--check DIR` checks a stored run again.

mod analysis;
mod cluster;
mod etcd;
mod nemesis;
mod report;
mod workload;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use raft_trace::Op;
use serde::Serialize;

use crate::exit::Outcome;
use crate::output::{self, errln, outln};
use analysis::{Analysis, RunRecord};
use cluster::{Cluster, Spec};
use nemesis::Nemesis;
use workload::{Recorder, Workload};

/// The store under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// raftkv node processes (`raftcheck node`).
    Raftkv,
    /// etcd 3.4 members (Debian's `etcd-server`), through its v3 JSON
    /// gateway; cas is a transaction.
    Etcd,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Raftkv => "raftkv",
            Target::Etcd => "etcd",
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The store to test.
    #[arg(long, value_enum, default_value_t = Target::Raftkv)]
    target: Target,
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: u64,
    /// Seconds of load with faults (healing, final reads and checking come after).
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Concurrent clients (threads; a client whose operation timed out is
    /// replaced by a new one, as in Jepsen).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    clients: u64,
    /// Keys the operations spread over (each checked on its own).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10000))]
    keys: u64,
    /// Faults: comma-separated from kill, kill-leader, pause, partition,
    /// oneway, kill-all (or all, none), and member (raftkv: remove a node
    /// from the configuration, add it back when healed; not in all).
    #[arg(long, default_value = "all")]
    nemesis: String,
    /// Mean seconds between faults, and mean seconds a fault lasts.
    #[arg(long, default_value_t = 4.0)]
    nemesis_interval: f64,
    /// Seeds the nemesis schedule and the clients' choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seconds a client waits for an operation before it counts as `info`.
    #[arg(long, default_value_t = 1.0)]
    op_timeout: f64,
    /// Milliseconds each client pauses between its operations.
    #[arg(long, default_value_t = 10)]
    think_ms: u64,
    /// Milliseconds per Raft tick of the nodes.
    #[arg(long, default_value_t = 20)]
    tick_ms: u64,
    /// The nodes write raft-trace/1 traces, validated at the end.
    #[arg(long)]
    trace: bool,
    /// raftkv nodes snapshot and compact their logs every this many applied
    /// entries (short logs keep the trace replay fast, and exercise
    /// snapshots and their installation on lagging nodes).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    compact_every: u64,
    /// Start the nodes with a planted bug (see `raftcheck node --help`), to
    /// see the experiment catch it.
    #[arg(long, value_name = "NAME")]
    node_bug: Option<raftkv::bugs::Bug>,
    /// Give the linearizability check this many seconds (then inconclusive, exit 3).
    #[arg(long, default_value_t = 120.0)]
    check_timeout: f64,
    /// Directory for the run: history, node logs and data, report.html.
    #[arg(long, required_unless_present = "check")]
    out: Option<PathBuf>,
    /// Check the run stored in DIR again instead of running one.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    check: Option<PathBuf>,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
}

fn secs(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero() || what == "think")
        .with_context(|| format!("--{what}: {s} is not a positive number of seconds"))
}

pub fn run(args: Args) -> Result<Outcome> {
    if let Some(dir) = &args.check {
        return finish(dir, &args, None);
    }
    let dir = args
        .out
        .clone()
        .expect("clap requires --out without --check");
    let duration = secs(args.duration, "duration")?;
    let interval = secs(args.nemesis_interval, "nemesis-interval")?;
    let op_timeout = secs(args.op_timeout, "op-timeout")?;
    secs(args.check_timeout, "check-timeout")?;
    let faults = nemesis::parse_list(&args.nemesis)?;
    if args.target == Target::Etcd && faults.contains(&nemesis::Fault::Member) {
        bail!("--nemesis member is for --target raftkv (etcd's members are not changed here)");
    }
    if args.target == Target::Etcd {
        etcd::binary()?;
    }
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "--out {}: the directory is not empty; give a new one (a run never overwrites another)",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    if args.target == Target::Etcd && (args.trace || args.node_bug.is_some()) {
        bail!("--trace and --node-bug are for --target raftkv (etcd writes no raft-trace/1)");
    }
    let spec = Spec {
        target: args.target,
        nodes: args.nodes,
        dir: dir.clone(),
        tick_ms: args.tick_ms,
        trace: args.trace,
        compact_every: args.compact_every,
        node_bug: args.node_bug.map(|b| b.name().to_string()),
    };
    let mut cluster = Cluster::start(&spec)?;
    let origin = Instant::now();
    let rec = Arc::new(Recorder::create(
        &dir.join("history.ndjson"),
        origin,
        &format!(
            "raftcheck jepsen {} against {}",
            env!("CARGO_PKG_VERSION"),
            args.target.name()
        ),
    )?);
    if cluster.wait_for_leader(Duration::from_secs(15)).is_none() {
        errln!(
            "raftcheck: no leader 15 s after the cluster started; see {}/node-N.log",
            dir.display()
        );
    }
    let work = Workload {
        target: args.target,
        endpoints: cluster.endpoints(),
        keys: args.keys,
        op_timeout,
        think: Duration::from_millis(args.think_ms),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..args.clients as usize {
        let (work, rec, stop) = (work.clone(), rec.clone(), stop.clone());
        let seed = args.seed;
        workers.push(std::thread::spawn(move || {
            work.worker(&rec, w, seed, &stop)
        }));
    }

    // The nemesis runs on this thread: quiet, fault, heal, until the end.
    let mut nemesis = Nemesis::new(args.seed, faults.clone(), interval);
    let mut records = Vec::new();
    let mut crashes = Vec::new();
    // The load lasts --duration from here, once the cluster is up.
    let end = Instant::now() + duration;
    let mut last_progress = Instant::now();
    let mut active = None;
    let mut next = Instant::now() + nemesis.next_pause();
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
        cluster.reap(origin.elapsed())?;
        let now = Instant::now();
        if now >= next && !nemesis.is_idle() {
            match active.take() {
                None => {
                    if let Some(r) = nemesis.strike(&mut cluster, rec.now_ns()) {
                        tracing::info!(fault = r.fault.name(), detail = %r.detail, "fault");
                        active = Some(r);
                    }
                }
                Some(mut r) => {
                    cluster.heal_all()?;
                    r.end_ns = Some(rec.now_ns());
                    records.push(r);
                }
            }
            next = now + nemesis.next_pause();
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            let c = |i: usize| rec.counts[i].load(Ordering::Relaxed);
            errln!(
                "jepsen: {:.0} s of {:.0}, ops ok {} fail {} info {}, faults {}{}",
                (duration.as_secs_f64() - end.saturating_duration_since(now).as_secs_f64()),
                duration.as_secs_f64(),
                c(0),
                c(1),
                c(2),
                records.len() + usize::from(active.is_some()),
                active
                    .as_ref()
                    .map(|r| format!(" (now: {})", r.detail))
                    .unwrap_or_default()
            );
        }
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().expect("client thread")?;
    }
    // Heal everything, wait for a leader, then read every key.
    cluster.heal_all()?;
    if let Some(mut r) = active.take() {
        r.end_ns = Some(rec.now_ns());
        records.push(r);
    }
    let healed = Instant::now();
    let leader = cluster.wait_for_leader(Duration::from_secs(15));
    let leader_after_heal_s = leader.map(|_| healed.elapsed().as_secs_f64());
    if leader.is_some() {
        for k in 0..args.keys {
            // Final reads, retried until one answers (each try is in the history).
            for attempt in 0..10 {
                let w = (k as usize + attempt) % args.nodes as usize;
                let done = work.invoke_once(
                    &rec,
                    w,
                    Op::Read {
                        key: format!("k{k}"),
                    },
                )?;
                if done {
                    break;
                }
            }
        }
    }
    rec.flush()?;
    cluster.reap(origin.elapsed())?;
    for n in &cluster.nodes {
        crashes.extend(
            n.unexpected_exits
                .iter()
                .map(|e| format!("node {} {e}", n.id)),
        );
    }
    cluster.stop();
    let run = RunRecord {
        target: args.target.name().into(),
        nodes: args.nodes,
        seed: args.seed,
        duration_s: args.duration,
        clients: args.clients as usize,
        keys: args.keys,
        nemesis: faults.iter().map(|f| f.name().to_string()).collect(),
        node_bug: args.node_bug.map(|b| b.name().to_string()),
        faults: records,
        crashes,
        leader_after_heal_s,
        traced: args.trace,
    };
    std::fs::write(dir.join("run.json"), serde_json::to_vec_pretty(&run)?)?;
    drop(cluster);
    finish(&dir, &args, Some(origin.elapsed()))
}

#[derive(Serialize)]
struct Json<'a> {
    dir: String,
    #[serde(flatten)]
    analysis: &'a Analysis,
    traces: Option<&'a TraceCheck>,
    report: String,
}

#[derive(Serialize)]
struct TraceCheck {
    exit_code: i32,
    summary: String,
}

/// Validates the node traces of a run with `raftcheck validate`.
fn validate_traces(dir: &Path) -> Result<TraceCheck> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .arg("validate")
        .arg(dir.join("traces"))
        .output()
        .context("cannot run raftcheck validate")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    std::fs::write(dir.join("validation.txt"), &text)?;
    Ok(TraceCheck {
        exit_code: out.status.code().unwrap_or(2),
        summary: text.lines().take(12).collect::<Vec<_>>().join("\n"),
    })
}

fn finish(dir: &Path, args: &Args, ran: Option<Duration>) -> Result<Outcome> {
    let (run, mut a) = analysis::analyse(dir, secs(args.check_timeout, "check-timeout")?)
        .with_context(|| format!("cannot check the run in {}", dir.display()))?;
    let traces = if run.traced {
        let t = validate_traces(dir)?;
        match t.exit_code {
            0 => {}
            1 => a.anomalies.push("the node traces are not valid".into()),
            _ => a.anomalies.push(format!(
                "the node traces could not be checked (validate exit {})",
                t.exit_code
            )),
        }
        Some(t)
    } else {
        None
    };
    if !a.anomalies.is_empty() {
        a.verdict = "anomaly";
    }
    let report_path = dir.join("report.html");
    std::fs::write(&report_path, report::page(&run, &a))
        .with_context(|| format!("cannot write {}", report_path.display()))?;
    if args.json {
        output::json(&Json {
            dir: dir.display().to_string(),
            analysis: &a,
            traces: traces.as_ref(),
            report: report_path.display().to_string(),
        })?;
    } else {
        outln!("verdict: {}", a.verdict)?;
        for x in &a.anomalies {
            outln!("  anomaly: {x}")?;
        }
        outln!(
            "linearizability: {:?} ({}, {:.2} s)",
            a.linearizability,
            raft_conformance::count(a.operations as u64, "operation"),
            a.check_seconds
        )?;
        for (f, c) in &a.by_function {
            outln!("  {f}: ok {} fail {} info {}", c.ok, c.fail, c.info)?;
        }
        outln!("faults: {}", a.faults.len())?;
        for f in &a.faults {
            let r = &f.record;
            outln!(
                "  {:>6.1} s {}: {}; {}",
                r.start_ns as f64 / 1e9,
                r.fault.name(),
                r.detail,
                f.first_write_ms
                    .map(|m| format!("first successful write after {m:.0} ms"))
                    .unwrap_or_else(|| "no successful write after it before the load ended".into())
            )?;
        }
        match a.leader_after_heal_s {
            Some(s) => outln!("leader after healing: {s:.2} s")?,
            None => outln!("leader after healing: none within 15 s")?,
        }
        if let Some(t) = &traces {
            outln!("node traces: validate exit {}", t.exit_code)?;
            for l in t.summary.lines().take(6) {
                outln!("  {l}")?;
            }
        }
        if let Some(e) = &a.report.failing {
            outln!("{}", e.render())?;
        }
        if let Some(d) = ran {
            outln!("run took {:.1} s", d.as_secs_f64())?;
        }
        outln!("report: {}", report_path.display())?;
    }
    Ok(match a.verdict {
        "valid" => Outcome::Holds,
        "inconclusive" => Outcome::Inconclusive,
        _ => Outcome::Violated,
    })
}
