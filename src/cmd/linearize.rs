//! `raftcheck linearize`: check client histories for linearizability.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use raft_conformance::count;
use raft_conformance::linearizability::{
    check_history, html, read_history, read_history_from, Format, ModelKind, Report, Request,
    Verdict,
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
    /// Give up when one key's search memo grows past about this many MiB
    /// (verdict unknown, exit 3).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    memo_limit: u64,
    /// Check the whole history against one state over all keys instead of
    /// key by key (slower; same verdict).
    #[arg(long)]
    unpartitioned: bool,
    /// Seconds to spend shrinking a failing history to a minimal one.
    #[arg(long, default_value_t = 5.0)]
    explain_budget: f64,
    /// Write a self-contained HTML report to this file: every key's
    /// operations on a timeline, failing keys first.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// History files; `-` reads one from standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// How standard input (`-`) is named in results and messages.
pub const STDIN: &str = "stdin";

#[derive(Serialize)]
struct FileJson<'a> {
    file: String,
    format: &'static str,
    model: &'static str,
    #[serde(flatten)]
    report: &'a Report,
}

/// A file that could not be checked (bad input), with the reason.
#[derive(Serialize)]
struct BadFileJson<'a> {
    file: String,
    error: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum FileEntryJson<'a> {
    Checked(FileJson<'a>),
    Bad(BadFileJson<'a>),
}

#[derive(Serialize)]
struct Json<'a> {
    /// The verdict over the files that could be checked.
    verdict: Verdict,
    /// How many files were bad input (not checked).
    bad_files: usize,
    operations: usize,
    partitions: usize,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    failing: Option<FailingJson<'a>>,
    files: Vec<FileEntryJson<'a>>,
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
    // Every file gets its own result: a bad file is reported (exit 2 at
    // worst) and the others are still checked.
    let mut reports = Vec::new();
    let mut bad: Vec<(usize, String, String)> = Vec::new();
    for (n, path) in args.files.iter().enumerate() {
        match check_file(&args, path, format, timeout, explain_budget) {
            Ok(r) => reports.push((n, r)),
            Err(e) => {
                let message = format!("{e:#}");
                eprintln!("raftcheck: {message}");
                bad.push((n, path.display().to_string(), message));
            }
        }
    }
    let verdict = reports
        .iter()
        .map(|(_, c)| c.report.verdict)
        .max()
        .unwrap_or(Verdict::Linearizable);
    if let Some(path) = &args.html {
        let files: Vec<(String, &Report)> = reports
            .iter()
            .map(|(_, c)| (c.file.clone(), &c.report))
            .collect();
        std::fs::write(path, html::page(&files))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        let failing = reports.iter().find_map(|(_, c)| {
            c.report.failing.as_ref().map(|e| FailingJson {
                file: c.file.clone(),
                explanation: e,
            })
        });
        // Files in the order given, checked or not.
        let mut files: Vec<(usize, FileEntryJson)> = reports
            .iter()
            .map(|(n, c)| {
                let entry = FileEntryJson::Checked(FileJson {
                    file: c.file.clone(),
                    format: c.format.name(),
                    model: c.model.name(),
                    report: &c.report,
                });
                (*n, entry)
            })
            .collect();
        files.extend(bad.iter().map(|(n, file, error)| {
            let entry = FileEntryJson::Bad(BadFileJson {
                file: file.clone(),
                error,
            });
            (*n, entry)
        }));
        files.sort_by_key(|(n, _)| *n);
        let json = Json {
            verdict,
            bad_files: bad.len(),
            operations: reports.iter().map(|(_, c)| c.report.operations).sum(),
            partitions: reports.iter().map(|(_, c)| c.report.partitions).sum(),
            seconds: reports.iter().map(|(_, c)| c.report.seconds).sum(),
            failing,
            files: files.into_iter().map(|(_, f)| f).collect(),
        };
        output::json(&json)?;
    } else {
        let mut lines: Vec<(usize, String)> = Vec::new();
        for (n, c) in &reports {
            let word = match c.report.verdict {
                Verdict::Linearizable => "linearizable",
                Verdict::NotLinearizable => "NOT linearizable",
                Verdict::Unknown => "unknown (time budget ran out)",
            };
            let mut text = format!(
                "{}: {word} ({}, {}, model {}, {:.3} s)\n",
                c.file,
                count(c.report.operations as u64, "operation"),
                count(c.report.partitions as u64, "partition"),
                c.model.name(),
                c.report.seconds
            );
            if let Some(e) = &c.report.failing {
                text.push_str(&e.render());
            }
            lines.push((*n, text));
        }
        for (n, file, error) in &bad {
            lines.push((*n, format!("{file}: bad input, not checked: {error}\n")));
        }
        lines.sort_by_key(|(n, _)| *n);
        let out: String = lines.into_iter().map(|(_, t)| t).collect();
        out!("{out}")?;
    }
    let checked = match verdict {
        Verdict::Linearizable => Outcome::Holds,
        Verdict::NotLinearizable => Outcome::Violated,
        Verdict::Unknown => Outcome::Inconclusive,
    };
    let read = if bad.is_empty() {
        Outcome::Holds
    } else {
        Outcome::BadInput
    };
    Ok(Outcome::worst([checked, read]))
}

/// One history, read and checked.
struct Checked {
    file: String,
    format: Format,
    model: ModelKind,
    report: Report,
}

fn check_file(
    args: &Args,
    path: &std::path::Path,
    format: Option<Format>,
    timeout: Duration,
    explain_budget: Duration,
) -> Result<Checked> {
    let started = Instant::now();
    let (history, format) = if path.as_os_str() == "-" {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut text)
            .context("cannot read standard input")?;
        read_history_from(STDIN, &text, format)?
    } else {
        read_history(path, format)?
    };
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
    let mut req = Request::new(model);
    req.partitioned = !args.unpartitioned;
    req.options.timeout = Some(timeout);
    req.options.memo_limit = Some((args.memo_limit as usize).saturating_mul(1 << 20));
    req.explain_budget = explain_budget;
    req.timelines = args.html.is_some();
    let report = check_history(&history, &req)?;
    tracing::info!(
        file = %history.file,
        verdict = ?report.verdict,
        seconds = started.elapsed().as_secs_f64(),
        "checked"
    );
    Ok(Checked {
        file: history.file.clone(),
        format,
        model,
        report,
    })
}
