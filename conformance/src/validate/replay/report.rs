//! What a replay reports: why it stopped ([`ReplayError`]) and what it did
//! ([`ReplayStats`]).

use serde::Serialize;

use crate::validate::Violation;

/// Why the replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A step the specification does not allow.
    #[error("{} violated: expected {}, actual {}", .0.rule, .0.expected, .0.actual)]
    Violation(Violation),
    /// The replay cannot decide: the frontier outgrew its budget, or the
    /// trace lacks what a rule needs (see `preconditions`).
    #[error("inconclusive: {0}")]
    Inconclusive(String),
}

impl From<Violation> for ReplayError {
    fn from(v: Violation) -> Self {
        ReplayError::Violation(v)
    }
}

/// What the replay did, for the report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReplayStats {
    /// Whether the run was replayed through the model at all.
    pub enabled: bool,
    /// Why not, or what limited it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Model rules applied (summed over candidates' steps).
    pub steps: u64,
    /// The largest frontier of candidate states any node had.
    pub max_frontier: usize,
    /// Nodes whose replay was suspended at the end, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suspended: Vec<(u64, String)>,
}
