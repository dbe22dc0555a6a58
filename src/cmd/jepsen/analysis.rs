//! What a run shows: the history checked for linearizability key by key,
//! the operations' outcomes and latencies, how long each fault kept writes
//! from succeeding, and any node that crashed or logged an error.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use raft_conformance::linearizability::{
    check_history, html, read_history, Format, ModelKind, Report, Request, Verdict,
};
use raft_trace::Record;
use raft_trace::{ClientEvent, Op, Status};
use serde::{Deserialize, Serialize};

use super::nemesis::FaultRecord;

/// What the run itself recorded besides the history (`run.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub target: String,
    pub nodes: u64,
    pub seed: u64,
    pub duration_s: f64,
    pub clients: usize,
    pub keys: u64,
    pub nemesis: Vec<String>,
    pub node_bug: Option<String>,
    pub faults: Vec<FaultRecord>,
    /// Node exits the nemesis did not cause.
    pub crashes: Vec<String>,
    /// Seconds from healing everything to a leader (None: none came).
    pub leader_after_heal_s: Option<f64>,
    /// Whether the nodes wrote traces to `traces/`.
    pub traced: bool,
}

/// One completed or abandoned operation.
#[derive(Debug, Clone, Serialize)]
pub struct OpPoint {
    pub f: &'static str,
    pub invoke_ms: f64,
    /// `None`: no completion recorded.
    pub latency_ms: Option<f64>,
    pub status: Status,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

/// A fault and how long writes took to succeed again.
#[derive(Debug, Clone, Serialize)]
pub struct FaultOutcome {
    #[serde(flatten)]
    pub record: FaultRecord,
    /// Milliseconds from the fault's start to the completion of the first
    /// successful write invoked after it (None: none before the next fault
    /// or the end).
    pub first_write_ms: Option<f64>,
}

#[derive(Serialize)]
pub struct Analysis {
    pub verdict: &'static str,
    pub anomalies: Vec<String>,
    pub linearizability: Verdict,
    pub operations: usize,
    pub by_function: BTreeMap<&'static str, Counts>,
    pub faults: Vec<FaultOutcome>,
    pub crashes: Vec<String>,
    pub log_alarms: Vec<String>,
    pub leader_after_heal_s: Option<f64>,
    pub check_seconds: f64,
    #[serde(skip)]
    pub report: Report,
    #[serde(skip)]
    pub points: Vec<OpPoint>,
    #[serde(skip)]
    pub end_ms: f64,
}

fn f_name(op: &Op) -> &'static str {
    match op {
        Op::Read { .. } => "read",
        Op::Write { .. } => "write",
        Op::Cas { .. } => "cas",
        Op::Delete { .. } => "delete",
        Op::Append { .. } => "append",
    }
}

/// The operations of the history file with their times.
fn points(path: &Path) -> Result<Vec<OpPoint>> {
    let reader = raft_trace::read_file(path)?;
    let mut open: BTreeMap<(u64, u64), (&'static str, u64)> = BTreeMap::new();
    let mut out = Vec::new();
    for rec in reader {
        let Record::Client(ev) = rec? else { continue };
        match *ev {
            ClientEvent::Invoke(i) => {
                open.insert((i.client, i.req), (f_name(&i.op), i.time.unwrap_or(0)));
            }
            ClientEvent::Return(r) => {
                if let Some((f, t0)) = open.remove(&(r.client, r.req)) {
                    let t1 = r.time.unwrap_or(t0);
                    out.push(OpPoint {
                        f,
                        invoke_ms: t0 as f64 / 1e6,
                        latency_ms: Some(t1.saturating_sub(t0) as f64 / 1e6),
                        status: r.status,
                    });
                }
            }
        }
    }
    for (f, t0) in open.into_values() {
        out.push(OpPoint {
            f,
            invoke_ms: t0 as f64 / 1e6,
            latency_ms: None,
            status: Status::Info,
        });
    }
    out.sort_by(|a, b| a.invoke_ms.total_cmp(&b.invoke_ms));
    Ok(out)
}

/// Checks the run stored in `dir`.
pub fn analyse(dir: &Path, timeout: Duration) -> Result<(RunRecord, Analysis)> {
    let run: RunRecord = serde_json::from_slice(
        &std::fs::read(dir.join("run.json"))
            .with_context(|| format!("cannot read {}", dir.join("run.json").display()))?,
    )
    .with_context(|| format!("{}: not a run record", dir.join("run.json").display()))?;
    let history_path = dir.join("history.ndjson");
    let (history, _) = read_history(&history_path, Some(Format::RaftTrace))?;
    let mut req = Request::new(ModelKind::RaftKv);
    req.partitioned = true;
    req.options.timeout = Some(timeout);
    req.explain_budget = Duration::from_secs(5);
    req.timelines = true;
    let report = check_history(&history, &req)?;
    std::fs::write(
        dir.join("linearizability.html"),
        html::page(&[(history_path.display().to_string(), &report)]),
    )
    .with_context(|| {
        format!(
            "cannot write {}",
            dir.join("linearizability.html").display()
        )
    })?;

    let points = points(&history_path)?;
    let mut by_function: BTreeMap<&'static str, Counts> = BTreeMap::new();
    for p in &points {
        let c = by_function.entry(p.f).or_default();
        match p.status {
            Status::Ok => c.ok += 1,
            Status::Fail => c.fail += 1,
            Status::Info => c.info += 1,
        }
    }
    let end_ms = points
        .iter()
        .map(|p| p.invoke_ms + p.latency_ms.unwrap_or(0.0))
        .fold(run.duration_s * 1e3, f64::max);
    let faults = run
        .faults
        .iter()
        .map(|r| {
            let start = r.start_ns as f64 / 1e6;
            let first_write_ms = points
                .iter()
                .filter(|p| p.f == "write" && p.status == Status::Ok && p.invoke_ms >= start)
                .map(|p| p.invoke_ms + p.latency_ms.unwrap_or(0.0) - start)
                .reduce(f64::min);
            FaultOutcome {
                record: r.clone(),
                first_write_ms,
            }
        })
        .collect();
    let mut log_alarms = Vec::new();
    for id in 1..=run.nodes {
        let target = if run.target == "etcd" {
            super::Target::Etcd
        } else {
            super::Target::Raftkv
        };
        for line in super::cluster::log_alarms(&dir.join(format!("node-{id}.log")), target) {
            log_alarms.push(format!("node {id}: {line}"));
        }
    }
    let mut anomalies = Vec::new();
    if report.verdict == Verdict::NotLinearizable {
        anomalies.push("the history is not linearizable".to_string());
    }
    for c in &run.crashes {
        anomalies.push(format!("a node exited on its own: {c}"));
    }
    if !log_alarms.is_empty() {
        anomalies.push(format!(
            "{} panic or error lines in the node logs",
            log_alarms.len()
        ));
    }
    if run.leader_after_heal_s.is_none() {
        anomalies.push("no leader within 15 s of healing every fault".to_string());
    }
    let verdict = if !anomalies.is_empty() {
        "anomaly"
    } else if report.verdict == Verdict::Unknown {
        "inconclusive"
    } else {
        "valid"
    };
    Ok((
        run.clone(),
        Analysis {
            verdict,
            anomalies,
            linearizability: report.verdict,
            operations: points.len(),
            by_function,
            faults,
            crashes: run.crashes.clone(),
            log_alarms,
            leader_after_heal_s: run.leader_after_heal_s,
            check_seconds: report.seconds,
            report,
            points,
            end_ms,
        },
    ))
}
