//! `raftcheck linearize`: check client histories for linearizability.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use raft_conformance::linearizability::{
    check_history, html, read_history, Format, ModelKind, Report, Request, Verdict,
};
use serde::Serialize;

use crate::exit::Outcome;
use crate::output::{self, out};

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModelArg {
    /// One register of read, write and cas (Jepsen's etcd histories).
    CasRegister,
    /// get, put and append per key (Porcupine's kv histories).
    Kv,
    /// Our store: read, write, cas, delete, append per key.
    Raftkv,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    /// raft-trace/1 ndjson (a history, or the client events of a trace).
    RaftTrace,
    /// Jepsen log lines (`INFO jepsen.util - 3 :ok :read 4`).
    Jepsen,
    /// EDN maps, one per line (`{:process 0, :type :invoke, ...}`).
    Edn,
}

#[derive(clap::Args)]
pub struct Args {
    /// The model; by default it follows the format (jepsen: cas-register,
    /// edn: kv, raft-trace: raftkv).
    #[arg(long, value_enum)]
    model: Option<ModelArg>,
    /// The input format; detected from the first line by default.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Give up after this many seconds per file (verdict unknown, exit 3).
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Check the whole history against one state over all keys instead of
    /// key by key (slower; same verdict).
    #[arg(long)]
    unpartitioned: bool,
    /// Seconds to spend shrinking a failing history to a minimal one.
    #[arg(long, default_value_t = 5.0)]
    explain_budget: f64,
    /// Write a self-contained HTML report to this file.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// History files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct FileJson<'a> {
    file: String,
    format: &'static str,
    model: &'static str,
    #[serde(flatten)]
    report: &'a Report,
}

#[derive(Serialize)]
struct Json<'a> {
    verdict: Verdict,
    operations: usize,
    partitions: usize,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    failing: Option<FailingJson<'a>>,
    files: Vec<FileJson<'a>>,
}

#[derive(Serialize)]
struct FailingJson<'a> {
    file: String,
    #[serde(flatten)]
    explanation: &'a raft_conformance::linearizability::Explanation,
}

fn secs(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .with_context(|| format!("--{what}: {s} is not a valid number of seconds"))
}

pub fn run(args: Args) -> Result<Outcome> {
    let timeout = secs(args.timeout, "timeout")?;
    let explain_budget = secs(args.explain_budget, "explain-budget")?;
    let format = args.format.map(|f| match f {
        FormatArg::RaftTrace => Format::RaftTrace,
        FormatArg::Jepsen => Format::Jepsen,
        FormatArg::Edn => Format::Edn,
    });
    // Read everything first: bad input anywhere means exit 2 before any check.
    let mut histories = Vec::new();
    for path in &args.files {
        let (history, format) = read_history(path, format)?;
        let model = match args.model {
            Some(ModelArg::CasRegister) => ModelKind::CasRegister,
            Some(ModelArg::Kv) => ModelKind::Kv,
            Some(ModelArg::Raftkv) => ModelKind::RaftKv,
            None => match format {
                Format::Jepsen => ModelKind::CasRegister,
                Format::Edn => ModelKind::Kv,
                Format::RaftTrace => ModelKind::RaftKv,
            },
        };
        histories.push((history, format, model));
    }
    let mut reports = Vec::new();
    for (history, format, model) in &histories {
        let started = Instant::now();
        let mut req = Request::new(*model);
        req.partitioned = !args.unpartitioned;
        req.options.timeout = Some(timeout);
        req.explain_budget = explain_budget;
        req.timelines = args.html.is_some();
        let report = check_history(history, &req)?;
        tracing::info!(
            file = %history.file,
            verdict = ?report.verdict,
            seconds = started.elapsed().as_secs_f64(),
            "checked"
        );
        reports.push((history.file.clone(), *format, *model, report));
    }
    let verdict = reports
        .iter()
        .map(|r| r.3.verdict)
        .max()
        .unwrap_or(Verdict::Linearizable);
    if let Some(path) = &args.html {
        let files: Vec<(String, &Report)> = reports.iter().map(|r| (r.0.clone(), &r.3)).collect();
        std::fs::write(path, html::page(&files))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        let failing = reports.iter().find_map(|r| {
            r.3.failing.as_ref().map(|e| FailingJson {
                file: r.0.clone(),
                explanation: e,
            })
        });
        let json = Json {
            verdict,
            operations: reports.iter().map(|r| r.3.operations).sum(),
            partitions: reports.iter().map(|r| r.3.partitions).sum(),
            seconds: reports.iter().map(|r| r.3.seconds).sum(),
            failing,
            files: reports
                .iter()
                .map(|r| FileJson {
                    file: r.0.clone(),
                    format: r.1.name(),
                    model: r.2.name(),
                    report: &r.3,
                })
                .collect(),
        };
        output::json(&json)?;
    } else {
        let mut out = String::new();
        for (file, _, model, report) in &reports {
            let word = match report.verdict {
                Verdict::Linearizable => "linearizable",
                Verdict::NotLinearizable => "NOT linearizable",
                Verdict::Unknown => "unknown (time budget ran out)",
            };
            let _ = writeln!(
                out,
                "{file}: {word} ({} operations, {} partitions, model {}, {:.3} s)",
                report.operations,
                report.partitions,
                model.name(),
                report.seconds
            );
            if let Some(e) = &report.failing {
                out.push_str(&e.render());
            }
        }
        out!("{out}")?;
    }
    Ok(match verdict {
        Verdict::Linearizable => Outcome::Holds,
        Verdict::NotLinearizable => Outcome::Violated,
        Verdict::Unknown => Outcome::Inconclusive,
    })
}
