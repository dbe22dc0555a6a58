//! Exit codes shared by every subcommand.

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
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Holds => 0,
            Outcome::Violated => 1,
            Outcome::BadInput => 2,
            Outcome::Inconclusive => 3,
        }
    }
}

/// Every error that reaches `main` is reported on stderr; all exit 2 (usage
/// and input errors, and I/O failures on the user's files). A closed stdout
/// is not one of them: `main` exits with `output::CLOSED_EXIT_CODE`.
pub fn code_for_error(_e: &anyhow::Error) -> u8 {
    Outcome::BadInput.code()
}
