//! One verdict for a run: the replay and invariants of its node events,
//! then the linearizability of its client events. Every front end (the
//! `validate` command, the simulator) asks here and maps the [`Verdict`] to
//! its own output; none re-reads files or compares strings to decide.

use std::time::Instant;

use raft_trace::{Header, Record};
use serde::Serialize;

use super::{InputError, Options, Rejection, Run, RunReport};
use crate::linearizability::{self as lin, History, ModelKind};

/// What checking one run decided. In JSON it is its [`Verdict::name`];
/// the details are in the run's report and history summary.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Every event is a step the model allows, every invariant holds, and
    /// the client history (if any) is linearizable.
    Valid,
    /// An event broke a rule of the model or a global invariant.
    Invalid { rejection: Box<Rejection> },
    /// The client history is not linearizable.
    NotLinearizable { explanation: String },
    /// No verdict: a budget ran out, or the trace does not say enough.
    Inconclusive { reason: String },
}

impl Verdict {
    /// The name of the broken rule, for an invalid run.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            Verdict::Invalid { rejection } => Some(rejection.rule),
            Verdict::NotLinearizable { .. } => Some("Linearizability"),
            Verdict::Valid | Verdict::Inconclusive { .. } => None,
        }
    }

    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid)
    }

    /// `valid`, `invalid`, `not-linearizable` or `inconclusive`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid { .. } => "invalid",
            Verdict::NotLinearizable { .. } => "not-linearizable",
            Verdict::Inconclusive { .. } => "inconclusive",
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The linearizability check of a run's client events.
#[derive(Debug, Clone, Serialize)]
pub struct HistorySummary {
    pub verdict: lin::Verdict,
    pub operations: usize,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub explanation: String,
}

/// A run checked: the validator's report, the history check, the verdict.
#[derive(Debug, Serialize)]
pub struct Checked {
    pub verdict: Verdict,
    #[serde(flatten)]
    pub report: RunReport,
    /// `None` when the run has no client events or was rejected first.
    pub history: Option<HistorySummary>,
}

/// Checks a run held in files. Each file's client events are a history of
/// their own (a file's lines are in real-time order; files are not).
pub fn check_run(run: &Run, options: &Options) -> Result<Checked, InputError> {
    let (report, histories) = super::validate_files(run, options)?;
    decide(report, &histories, options)
}

/// Checks a run found by [`super::candidate_runs`], adding its result to
/// `out`; when its files turn out not to be one run (a node has events in
/// two of them), each file is checked as a run of its own and each result
/// added. Only a valid verdict shows the grouping right without more
/// reading (the merge saw every event); anything else is kept only once a
/// full read of the files shows no node in two of them.
pub fn check_runs(run: &Run, options: &Options, out: &mut Vec<Checked>) -> Result<(), InputError> {
    if !run.unverified {
        out.push(check_run(run, options)?);
        return Ok(());
    }
    let result = check_run(run, options);
    let shared = match &result {
        Ok(c) if c.verdict.is_valid() => false,
        Err(InputError::SharedNode { .. }) => true,
        _ => super::input::shares_a_node(&run.files)?,
    };
    if !shared {
        out.push(result?);
        return Ok(());
    }
    for file in run.split() {
        out.push(check_run(&file, options)?);
    }
    Ok(())
}

/// Checks a run held in memory, in one global order (what a simulator
/// records): `name` stands for the file the run would be written to.
pub fn check_records(
    name: &str,
    header: &Header,
    records: &[Record],
    options: &Options,
) -> Result<Checked, InputError> {
    let (report, histories) = super::validate_memory(name, header, records, options)?;
    decide(report, &histories, options)
}

/// Checks one run read from `input`, the text of a single trace file (for
/// standard input); `name` stands for the file in messages.
pub fn check_input<R: std::io::Read>(
    name: &str,
    input: R,
    options: &Options,
) -> Result<Checked, InputError> {
    let mut reader = raft_trace::TraceReader::new(std::io::BufReader::new(input), name)?;
    let header = reader.header().clone();
    let mut records = Vec::new();
    loop {
        let record = match reader.next() {
            None => break,
            Some(r) => r?,
        };
        records.push((reader.line(), record));
    }
    let located = records.iter().map(|(line, r)| (*line, r));
    let (report, histories) = super::validate_located(name, &header, located, options)?;
    decide(report, &histories, options)
}

fn decide(
    report: RunReport,
    histories: &[History],
    options: &Options,
) -> Result<Checked, InputError> {
    if let Some(rejection) = &report.rejection {
        return Ok(Checked {
            verdict: Verdict::Invalid {
                rejection: Box::new(rejection.clone()),
            },
            report,
            history: None,
        });
    }
    let history = check_histories(histories, options)?;
    let verdict = match (&report.inconclusive, &history) {
        (_, Some(h)) if h.verdict == lin::Verdict::NotLinearizable => Verdict::NotLinearizable {
            explanation: h.explanation.clone(),
        },
        (Some(why), _) => Verdict::Inconclusive {
            reason: why.clone(),
        },
        (None, Some(h)) if h.verdict == lin::Verdict::Unknown => Verdict::Inconclusive {
            reason: budget_reason(options),
        },
        _ => Verdict::Valid,
    };
    Ok(Checked {
        verdict,
        report,
        history,
    })
}

/// The histories' verdict: the first that is not linearizable (or unknown)
/// decides; operations are counted over all of them.
fn check_histories(
    histories: &[History],
    options: &Options,
) -> Result<Option<HistorySummary>, InputError> {
    // One time budget for all of the run's histories.
    let deadline = options.history_timeout.map(|t| Instant::now() + t);
    let mut summary: Option<HistorySummary> = None;
    for history in histories.iter().filter(|h| !h.ops.is_empty()) {
        let mut request = lin::Request::new(ModelKind::RaftKv);
        request.options.timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        request.options.memo_limit = options.memo_limit;
        // Explaining a failure gets at most the time left (and 5 s).
        if let Some(left) = request.options.timeout {
            request.explain_budget = request.explain_budget.min(left);
        }
        let report = lin::check_history(history, &request)
            .map_err(|e| InputError::Layout(format!("{}: {e}", history.file)))?;
        let operations = summary.as_ref().map_or(0, |s| s.operations) + report.operations;
        let explanation = report.failing.map(|f| f.render()).unwrap_or_default();
        let done = report.verdict != lin::Verdict::Linearizable;
        summary = Some(HistorySummary {
            verdict: report.verdict,
            operations,
            explanation,
        });
        if done {
            break;
        }
    }
    Ok(summary)
}

/// Why a history check without a verdict stopped, naming the budgets.
fn budget_reason(options: &Options) -> String {
    let time = options
        .history_timeout
        .map_or("no time limit".to_string(), |t| {
            format!("{} s of time", t.as_secs_f64())
        });
    let memo = options.memo_limit.map_or("no memo limit".to_string(), |b| {
        format!("{} MiB of memo", b >> 20)
    });
    format!(
        "the linearizability search ran out of its budget ({time}, {memo}; \
         raise --timeout or --memo-limit)"
    )
}
