//! `raftcheck validate`: check raft-trace/1 files.

use std::path::PathBuf;

use anyhow::Result;
use raft_trace::{EventType, TraceError};
use serde::Serialize;

use raft_conformance::validate::{runs_in, validate_run_with, Options, DEFAULT_BUDGET};

use crate::exit::Outcome;
use crate::output::{self, errln, out, outln};

#[derive(clap::Args)]
pub struct Args {
    /// Only parse and schema-check the files; skip the semantic check.
    #[arg(long)]
    format_only: bool,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// The most candidate model states the replay keeps for one node when
    /// the trace leaves fields unknown; beyond it the run is inconclusive
    /// (exit 3).
    #[arg(long, default_value_t = DEFAULT_BUDGET as u64, value_parser = clap::value_parser!(u64).range(1..))]
    frontier_budget: u64,
    /// Trace or history files (raft-trace/1 ndjson), or directories: a
    /// directory of `*.ndjson` files is one run (one file per node is fine),
    /// and each subdirectory holding them (`DIR/seed-N/`) is a run.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    records: u64,
    nodes: Vec<u64>,
    events: std::collections::BTreeMap<&'static str, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorReport>,
}

#[derive(Serialize)]
struct ErrorReport {
    message: String,
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl From<&TraceError> for ErrorReport {
    fn from(e: &TraceError) -> Self {
        ErrorReport {
            message: e.to_string(),
            line: e.line,
            field: e.field.clone(),
        }
    }
}

fn check_file(path: &std::path::Path) -> FileReport {
    let mut report = FileReport {
        file: path.display().to_string(),
        valid: false,
        records: 0,
        nodes: vec![],
        events: Default::default(),
        error: None,
    };
    let reader = match raft_trace::read_file(path) {
        Ok(r) => r,
        Err(e) => {
            report.error = Some((&e).into());
            return report;
        }
    };
    report.nodes = reader.header().nodes.clone();
    for record in reader {
        match record {
            Ok(r) => {
                report.records += 1;
                *report.events.entry(r.event_type().as_str()).or_default() += 1;
            }
            Err(e) => {
                report.error = Some((&e).into());
                return report;
            }
        }
    }
    report.valid = true;
    report
}

pub fn run(args: Args) -> Result<Outcome> {
    if !args.format_only {
        return semantic(&args);
    }
    let files = expand(&args.files)?;
    let reports: Vec<FileReport> = files.iter().map(|f| check_file(f)).collect();
    let all_valid = reports.iter().all(|r| r.valid);
    if args.json {
        let out = serde_json::json!({
            "verdict": if all_valid { "valid" } else { "invalid-format" },
            "check": "format",
            "files": reports,
        });
        output::json(&out)?;
    } else {
        for r in &reports {
            match &r.error {
                None => {
                    let summary: Vec<String> = EventType::ALL
                        .iter()
                        .filter_map(|t| {
                            r.events
                                .get(t.as_str())
                                .map(|n| format!("{} {n}", t.as_str()))
                        })
                        .collect();
                    outln!(
                        "{}: ok, {} records from nodes {:?} ({})",
                        r.file,
                        r.records,
                        r.nodes,
                        summary.join(", ")
                    )?;
                }
                Some(e) => errln!("{}", e.message),
            }
        }
    }
    // Bad input is exit 2: a format check failing is bad input, not a Raft violation.
    Ok(if all_valid {
        Outcome::Holds
    } else {
        Outcome::BadInput
    })
}

/// Files named on the command line, with directories expanded to the
/// `*.ndjson` files of their runs.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            for run in runs_in(path).map_err(|e| anyhow::anyhow!("{e}"))? {
                files.extend(run.files);
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// The semantic check: message identity and the global invariants, run by run.
fn semantic(args: &Args) -> Result<Outcome> {
    let mut runs = Vec::new();
    for path in &args.files {
        runs.extend(runs_in(path).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let mut reports = Vec::new();
    let mut bad_input = None;
    let options = Options {
        frontier_budget: args.frontier_budget as usize,
    };
    for run in &runs {
        match validate_run_with(run, &options) {
            Ok(r) => reports.push(r),
            Err(e) => {
                bad_input = Some(e.to_string());
                break;
            }
        }
    }
    if let Some(msg) = &bad_input {
        if args.json {
            let out = serde_json::json!({"verdict": "bad-input", "error": msg, "runs": reports});
            output::json(&out)?;
        }
        errln!("{msg}");
        return Ok(Outcome::BadInput);
    }
    // The clients' view: the client events of each valid run must be
    // linearizable (our store's model: read, write, cas, delete, append).
    let mut histories: Vec<Option<HistoryVerdict>> = Vec::new();
    for (run, r) in runs.iter().zip(&reports) {
        histories.push(match r.rejection {
            Some(_) => None,
            None => check_histories(run)?,
        });
    }
    let failed_histories = histories
        .iter()
        .filter(|h| h.as_ref().is_some_and(|h| h.verdict == "not-linearizable"))
        .count();
    let unknown = histories
        .iter()
        .zip(&reports)
        .filter(|(h, r)| {
            r.inconclusive.is_some() || h.as_ref().is_some_and(|h| h.verdict == "unknown")
        })
        .count();
    let invalid = reports.iter().filter(|r| r.rejection.is_some()).count() + failed_histories;
    if args.json {
        let runs_json: Vec<serde_json::Value> = reports
            .iter()
            .zip(&histories)
            .map(|(r, h)| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["history"] = serde_json::to_value(h).unwrap_or_default();
                v
            })
            .collect();
        let out = serde_json::json!({
            "verdict": match (invalid, unknown) {
                (0, 0) => "valid",
                (0, _) => "inconclusive",
                _ => "invalid",
            },
            "runs": runs_json,
        });
        output::json(&out)?;
    } else {
        for ((run, r), h) in runs.iter().zip(&reports).zip(&histories) {
            match (&r.rejection, h) {
                (Some(rej), _) => out!("{}: INVALID\n{rej}", run.name)?,
                (None, _) if r.inconclusive.is_some() => outln!(
                    "{}: INCONCLUSIVE: {}",
                    run.name,
                    r.inconclusive.as_deref().unwrap_or_default()
                )?,
                (None, Some(h)) if h.verdict == "not-linearizable" => out!(
                    "{}: INVALID: the client history is not linearizable\n{}\n",
                    run.name,
                    h.explanation
                )?,
                (None, h) => outln!(
                    "{}: valid ({} events, {}; {} messages undelivered at the end{})",
                    run.name,
                    r.events,
                    replay_summary(&r.replay),
                    r.undelivered,
                    match h {
                        Some(h) => format!("; {} client operations {}", h.operations, h.verdict),
                        None => String::new(),
                    }
                )?,
            }
        }
        outln!(
            "{} of {} runs valid",
            reports.len() - invalid,
            reports.len()
        )?;
    }
    Ok(match (invalid, unknown) {
        (0, 0) => Outcome::Holds,
        (0, _) => Outcome::Inconclusive,
        _ => Outcome::Violated,
    })
}

fn replay_summary(r: &raft_conformance::validate::ReplayStats) -> String {
    if !r.enabled {
        return format!(
            "not replayed through the model: {}",
            r.note.as_deref().unwrap_or("?")
        );
    }
    let mut s = format!(
        "{} model steps replayed, frontier at most {}",
        r.steps, r.max_frontier
    );
    for (node, why) in &r.suspended {
        s.push_str(&format!(", node {node} not replayed at the end: {why}"));
    }
    s
}

/// The linearizability check of a run's client events.
#[derive(Serialize)]
struct HistoryVerdict {
    verdict: &'static str,
    operations: usize,
    #[serde(skip_serializing_if = "String::is_empty")]
    explanation: String,
}

/// Checks the client events of each file of `run` (each file's client lines
/// are in real-time order on their own); None when the run has none.
fn check_histories(run: &raft_conformance::validate::Run) -> Result<Option<HistoryVerdict>> {
    use raft_conformance::linearizability::{self as lin, ModelKind, Request, Verdict};
    let mut result: Option<HistoryVerdict> = None;
    for file in &run.files {
        let history = lin::formats::read_raft_trace(file).map_err(|e| anyhow::anyhow!("{e}"))?;
        if history.ops.is_empty() {
            continue;
        }
        let report = lin::check_history(&history, &Request::new(ModelKind::RaftKv))
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let verdict = match report.verdict {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not-linearizable",
            Verdict::Unknown => "unknown",
        };
        let operations = result.as_ref().map_or(0, |r| r.operations) + report.operations;
        let explanation = report.failing.map(|f| f.render()).unwrap_or_default();
        if verdict != "linearizable" {
            return Ok(Some(HistoryVerdict {
                verdict,
                operations,
                explanation,
            }));
        }
        result = Some(HistoryVerdict {
            verdict,
            operations,
            explanation,
        });
    }
    Ok(result)
}
