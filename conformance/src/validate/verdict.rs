//! One verdict for a run: the replay and invariants of its node events,
//! then the linearizability of its client events. Every front end (the
//! `validate` command, the simulator) asks here and maps the [`Verdict`] to
//! its own output; none re-reads files or compares strings to decide.

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
    decide(report, &histories)
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
    decide(report, &histories)
}

fn decide(report: RunReport, histories: &[History]) -> Result<Checked, InputError> {
    if let Some(rejection) = &report.rejection {
        return Ok(Checked {
            verdict: Verdict::Invalid {
                rejection: Box::new(rejection.clone()),
            },
            report,
            history: None,
        });
    }
    let history = check_histories(histories)?;
    let verdict = match (&report.inconclusive, &history) {
        (_, Some(h)) if h.verdict == lin::Verdict::NotLinearizable => Verdict::NotLinearizable {
            explanation: h.explanation.clone(),
        },
        (Some(why), _) => Verdict::Inconclusive {
            reason: why.clone(),
        },
        (None, Some(h)) if h.verdict == lin::Verdict::Unknown => Verdict::Inconclusive {
            reason: "the linearizability search ran out of budget".to_string(),
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
fn check_histories(histories: &[History]) -> Result<Option<HistorySummary>, InputError> {
    let mut summary: Option<HistorySummary> = None;
    for history in histories.iter().filter(|h| !h.ops.is_empty()) {
        let report = lin::check_history(history, &lin::Request::new(ModelKind::RaftKv))
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
