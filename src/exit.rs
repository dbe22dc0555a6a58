//! Exit codes shared by every subcommand.

use raft_conformance::validate::Verdict;

/// How a check ended; the process exit code follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Checked, and everything holds (exit 0).
    Holds,
    /// Checked, and a violation was found (exit 1).
    Violated,
    /// Bad usage or bad input (exit 2).
    BadInput,
    /// A time or state budget ran out before a verdict (exit 3).
    Inconclusive,
    /// The cluster is unavailable: no node answered within the time
    /// allowed (`client`, `bench`), or no node of a `cluster` is left
    /// running (exit 4).
    Unavailable,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Holds => 0,
            Outcome::Violated => 1,
            Outcome::BadInput => 2,
            Outcome::Inconclusive => 3,
            Outcome::Unavailable => 4,
        }
    }

    /// The outcome of several checks: a violation outweighs bad input,
    /// which outweighs an unavailable cluster, then no verdict, then a pass.
    pub fn worst(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
        let rank = |o: &Outcome| match o {
            Outcome::Holds => 0,
            Outcome::Inconclusive => 1,
            Outcome::Unavailable => 2,
            Outcome::BadInput => 3,
            Outcome::Violated => 4,
        };
        outcomes
            .into_iter()
            .max_by_key(rank)
            .unwrap_or(Outcome::Holds)
    }
}

/// A run's verdict, as every command that checks runs reports it.
impl From<&Verdict> for Outcome {
    fn from(v: &Verdict) -> Self {
        match v {
            Verdict::Valid => Outcome::Holds,
            Verdict::Invalid { .. } | Verdict::NotLinearizable { .. } => Outcome::Violated,
            Verdict::Inconclusive { .. } => Outcome::Inconclusive,
        }
    }
}
