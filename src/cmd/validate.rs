//! `raftcheck validate`: check raft-trace/1 files.

use std::path::PathBuf;

use anyhow::Result;
use raft_trace::{EventType, TraceError};
use serde::Serialize;

use raft_conformance::count;
use raft_conformance::validate::{
    candidate_runs, check_input, check_runs, Options, Run, Verdict, DEFAULT_BUDGET, MESSAGE_WINDOW,
};

use crate::cmd::linearize::STDIN;
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
    /// With a rejection, also print the events as the trace logs them (raw
    /// JSON), not only in one line each.
    #[arg(long)]
    raw: bool,
    /// The most candidate model states the replay keeps for one node when
    /// the trace leaves fields unknown; beyond it the run is inconclusive
    /// (exit 3).
    #[arg(long, default_value_t = DEFAULT_BUDGET as u64, value_parser = clap::value_parser!(u64).range(1..))]
    frontier_budget: u64,
    /// Give up the linearizability check of a run's client events after
    /// this many seconds (inconclusive, exit 3).
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Give up the linearizability check when one key's search memo grows
    /// past about this many MiB (inconclusive, exit 3).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    memo_limit: u64,
    /// The replay keeps the model messages of the latest this many sends.
    /// A receive of an older message (lost for long, or delayed) is
    /// replayed from the message as the trace logs it, knowing less of what
    /// it carries (the state machine of an InstallSnapshot whose data the
    /// trace leaves out); the message identity check still holds it to the
    /// message sent. Memory stays bounded however many messages a long run
    /// loses.
    #[arg(long, default_value_t = MESSAGE_WINDOW as u64, value_parser = clap::value_parser!(u64).range(1..))]
    message_window: u64,
    /// Behaviours beyond the Raft paper's Figure 2 that the implementation
    /// uses, comma-separated (stale-append-reply, lost-election, pre-vote,
    /// heartbeat, check-quorum), in addition to those the trace header's
    /// `features` lists. A header without `features` and no flag allows
    /// every one; with the flag, only those named.
    #[arg(long, value_delimiter = ',', value_parser = feature)]
    features: Vec<String>,
    /// Trace or history files (raft-trace/1 ndjson), or directories: a
    /// directory of `*.ndjson` files is one run when no node has events in
    /// two of them (one file per node, plus client histories), else each
    /// file is a run (one per seed); each subdirectory holding them
    /// (`DIR/seed-N/`) likewise. `-` reads one trace file from standard
    /// input.
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
    if is_stdin(path) {
        let reader = raft_trace::TraceReader::new(std::io::stdin().lock(), STDIN);
        return check_reader(STDIN, reader);
    }
    check_reader(&path.display().to_string(), raft_trace::read_file(path))
}

/// `-`: standard input.
fn is_stdin(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

fn check_reader<R: std::io::BufRead>(
    file: &str,
    reader: Result<raft_trace::TraceReader<R>, TraceError>,
) -> FileReport {
    let mut report = FileReport {
        file: file.to_string(),
        valid: false,
        records: 0,
        nodes: vec![],
        events: Default::default(),
        error: None,
    };
    let reader = match reader {
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
        if !is_stdin(path) && path.is_dir() {
            for run in candidate_runs(path).map_err(|e| anyhow::anyhow!("{e}"))? {
                files.extend(run.files);
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// The semantic check, run by run: the replay through the model and the
/// global invariants, then the linearizability of the client events.
fn semantic(args: &Args) -> Result<Outcome> {
    // Runs in files, or the one on standard input (`None`).
    let mut runs: Vec<Option<Run>> = Vec::new();
    for path in &args.files {
        if is_stdin(path) {
            runs.push(None);
        } else {
            runs.extend(
                candidate_runs(path)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .into_iter()
                    .map(Some),
            );
        }
    }
    let options = Options {
        frontier_budget: args.frontier_budget as usize,
        features: args.features.clone(),
        history_timeout: Some(
            std::time::Duration::try_from_secs_f64(args.timeout).map_err(|_| {
                anyhow::anyhow!(
                    "--timeout: {} is not a valid number of seconds",
                    args.timeout
                )
            })?,
        ),
        memo_limit: Some((args.memo_limit as usize).saturating_mul(1 << 20)),
        message_window: usize::try_from(args.message_window).unwrap_or(usize::MAX),
    };
    let mut checked = Vec::new();
    let mut bad_input = None;
    for run in &runs {
        let result = match run {
            Some(run) => check_runs(run, &options, &mut checked),
            None => check_input(STDIN, std::io::stdin().lock(), &options).map(|c| checked.push(c)),
        };
        if let Err(e) = result {
            bad_input = Some(e.to_string());
            break;
        }
    }
    if let Some(msg) = &bad_input {
        if args.json {
            let out = serde_json::json!({"verdict": "bad-input", "error": msg, "runs": checked});
            output::json(&out)?;
        }
        errln!("{msg}");
        return Ok(Outcome::BadInput);
    }
    let outcome = Outcome::worst(checked.iter().map(|c| Outcome::from(&c.verdict)));
    if args.json {
        let out = serde_json::json!({
            "verdict": match outcome {
                Outcome::Holds => "valid",
                Outcome::Inconclusive => "inconclusive",
                _ => "invalid",
            },
            "runs": checked,
        });
        output::json(&out)?;
        return Ok(outcome);
    }
    for (run, c) in runs.iter().zip(&checked) {
        let name = run.as_ref().map_or(STDIN, |r| r.name.as_str());
        let r = &c.report;
        match &c.verdict {
            Verdict::Invalid { rejection } if args.raw => out!("{}: INVALID\n{rejection:#}", name)?,
            Verdict::Invalid { rejection } => out!("{}: INVALID\n{rejection}", name)?,
            Verdict::NotLinearizable { explanation } => out!(
                "{}: INVALID: the client history is not linearizable\n{explanation}\n",
                name
            )?,
            Verdict::Inconclusive { reason } => outln!("{}: INCONCLUSIVE: {reason}", name)?,
            Verdict::Valid => outln!(
                "{}: valid ({}, {}; {} undelivered at the end{})",
                name,
                count(r.events, "event"),
                replay_summary(&r.replay),
                count(r.undelivered as u64, "message"),
                match &c.history {
                    Some(h) => format!(
                        "; {} linearizable",
                        count(h.operations as u64, "client operation")
                    ),
                    // A cluster's node traces hold no client events:
                    // say that nothing was checked, not nothing.
                    None => "; no client events, so linearizability was not checked".into(),
                }
            )?,
        }
    }
    let valid = checked.iter().filter(|c| c.verdict.is_valid()).count();
    outln!("{valid} of {} valid", count(checked.len() as u64, "run"))?;
    Ok(outcome)
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

/// A feature name the specification knows.
fn feature(s: &str) -> Result<String, String> {
    raft_model::Rules::new(3)
        .with_feature(s)
        .map(|()| s.to_string())
        .map_err(|e| e.to_string())
}
