//! Linearizability checking of client histories.
//!
//! - [`engine`]: the search (Porcupine's algorithm) over any [`Model`],
//!   partitions checked in parallel with a time budget;
//! - [`models`]: cas-register, kv and raftkv;
//! - [`history`] and [`formats`]: the model-independent history and its
//!   readers;
//! - [`explain`]: why a history is not linearizable (longest linearizable
//!   prefix, operations that cannot be placed, a cycle of constraints, a
//!   minimal failing sub-history); [`html`]: the same as a page.
//!
//! [`check_history`] ties them together.

pub mod engine;
pub mod explain;
pub mod formats;
pub mod history;
pub mod html;
pub mod models;

use std::time::{Duration, Instant};

pub use engine::{check, check_partition, Budget, Model, Operation, Options, Partition, Verdict};
pub use explain::Explanation;
pub use formats::{read_history, read_history_from, ClientEvents, Format, FormatError};
pub use history::{Call, History, HistoryOp, Outcome};
pub use models::{ModelKind, UnsupportedOp};

/// What a check of one history found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub verdict: Verdict,
    /// Operations in the history (including those that constrain nothing).
    pub operations: usize,
    pub partitions: usize,
    /// Seconds spent searching (not reading, not explaining).
    pub seconds: f64,
    /// For a history that is not linearizable: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<Explanation>,
    /// With `Request::timelines`: every partition's operations and the
    /// linearization found, for drawing.
    #[serde(skip)]
    pub timelines: Vec<html::Timeline>,
}

/// How to check a history.
#[derive(Debug, Clone)]
pub struct Request {
    pub model: ModelKind,
    /// Split by key (sound for every model here); false checks the whole
    /// history against one map state.
    pub partitioned: bool,
    pub options: Options,
    /// Explain a failure (re-runs the failing partition, and shrinks it
    /// within `explain_budget`).
    pub explain: bool,
    pub explain_budget: Duration,
    /// Also compute every partition's linearization for a drawing.
    pub timelines: bool,
}

impl Request {
    pub fn new(model: ModelKind) -> Self {
        Request {
            model,
            partitioned: true,
            options: Options::default(),
            explain: true,
            explain_budget: Duration::from_secs(5),
            timelines: false,
        }
    }
}

/// Checks `history` as `request` says.
pub fn check_history(history: &History, request: &Request) -> Result<Report, UnsupportedOp> {
    if request.partitioned {
        let parts = models::partition_by_key(request.model, history)?;
        let model = models::ValueModel {
            kind: request.model,
        };
        Ok(run(&model, parts, history, request))
    } else {
        let parts = models::single_partition(request.model, history)?;
        let model = models::MapModel {
            kind: request.model,
        };
        Ok(run(&model, parts, history, request))
    }
}

fn run<M: Model>(
    model: &M,
    parts: Vec<Partition<M>>,
    history: &History,
    request: &Request,
) -> Report
where
    M::State: std::fmt::Debug,
{
    let n = parts.len();
    let start = Instant::now();
    let result = engine::check(model, parts, &request.options);
    let seconds = start.elapsed().as_secs_f64();
    let mut failing = None;
    let mut result = result;
    if request.explain {
        if let Some(i) = result
            .partitions
            .iter()
            .position(|(_, r)| r.verdict == Verdict::NotLinearizable)
        {
            let (part, _) = &mut result.partitions[i];
            failing = Some(explain::explain(
                model,
                part,
                history,
                request.explain_budget,
            ));
        }
    }
    let mut timelines = if request.timelines {
        html::timelines(model, &mut result, history, &request.options)
    } else {
        Vec::new()
    };
    // The key the explanation is about comes first.
    if let Some(f) = &failing {
        if let Some(i) = timelines.iter().position(|t| t.key == f.key) {
            let t = timelines.remove(i);
            timelines.insert(0, t);
        }
    }
    Report {
        verdict: result.verdict,
        operations: history.ops.len(),
        partitions: n,
        seconds,
        failing,
        timelines,
    }
}
