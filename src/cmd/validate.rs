//! `raftcheck validate`: check raft-trace/1 files.

use std::path::PathBuf;

use anyhow::Result;
use raft_trace::{EventType, TraceError};
use serde::Serialize;

use crate::exit::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// Only parse and schema-check the files (the semantic check against the
    /// model is not part of this build).
    #[arg(long, required = true)]
    format_only: bool,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// Trace or history files (raft-trace/1 ndjson).
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
    debug_assert!(args.format_only);
    let reports: Vec<FileReport> = args.files.iter().map(|f| check_file(f)).collect();
    let all_valid = reports.iter().all(|r| r.valid);
    if args.json {
        let out = serde_json::json!({
            "verdict": if all_valid { "valid" } else { "invalid-format" },
            "check": "format",
            "files": reports,
        });
        println!("{}", serde_json::to_string(&out)?);
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
                    println!(
                        "{}: ok, {} records from nodes {:?} ({})",
                        r.file,
                        r.records,
                        r.nodes,
                        summary.join(", ")
                    );
                }
                Some(e) => eprintln!("{}", e.message),
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
