//! The default suite: small bounded configurations, each explored
//! exhaustively, that together reach every sometimes-property and catch
//! every planted bug.

use crate::bugs::Bug;
use crate::config::Config;

/// A named configuration of the suite.
#[derive(Clone, Debug)]
pub struct SuiteEntry {
    pub name: &'static str,
    pub purpose: &'static str,
    pub config: Config,
}

/// The default suite.
pub fn default_suite() -> Vec<SuiteEntry> {
    let base = Config::default();
    vec![
        SuiteEntry {
            name: "elections",
            purpose: "elections with a crash: split votes, step-downs, persistent votes",
            config: Config {
                clients: 0,
                ops: 0,
                max_term: 2,
                max_log: 0,
                max_crashes: 1,
                ..base.clone()
            },
        },
        SuiteEntry {
            name: "replication",
            purpose: "one write across two terms: commit, retry, dedup, truncation",
            config: Config {
                clients: 1,
                ops: 1,
                max_term: 2,
                max_log: 2,
                ..base.clone()
            },
        },
        SuiteEntry {
            name: "reads",
            purpose: "a write then a read through the log",
            config: Config {
                clients: 1,
                ops: 2,
                max_term: 2,
                max_log: 2,
                ..base.clone()
            },
        },
        SuiteEntry {
            name: "figure8",
            purpose: "one command re-proposed over four terms (the paper's Figure 8)",
            config: Config {
                clients: 1,
                ops: 1,
                max_term: 4,
                max_log: 1,
                ..base.clone()
            },
        },
        SuiteEntry {
            name: "snapshots",
            purpose: "two commands with a snapshot after each: InstallSnapshot",
            config: Config {
                clients: 1,
                ops: 2,
                max_term: 1,
                max_log: 2,
                snapshot_after: 1,
                ..base
            },
        },
    ]
}

/// The part of the suite relevant to `bug`, with the bug planted.
pub fn suite_for_bug(bug: Bug) -> Vec<SuiteEntry> {
    let name = match bug {
        Bug::CommitOldTerm => "figure8",
        Bug::NoElectionRestriction => "replication",
        Bug::VolatileVote | Bug::DoubleVote | Bug::MinorityQuorum => "elections",
        Bug::AcceptStaleTerm | Bug::TruncateOnMatch | Bug::NoDedup => "replication",
        Bug::StaleRead => "reads",
        Bug::SnapshotRegress => "snapshots",
    };
    default_suite()
        .into_iter()
        .filter(|e| e.name == name)
        .map(|mut e| {
            e.config.bug = Some(bug);
            e
        })
        .collect()
}
