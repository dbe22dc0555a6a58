//! The default suite: small bounded configurations, each explored
//! exhaustively, that together reach every sometimes-property and catch
//! every planted bug. All but `five-servers` use 3 servers; all use an
//! unordered, non-duplicating network with a bound on messages in flight;
//! in `elections` it also loses messages (loss with clients grows past 2
//! million states in a minute).
//! Leaders send each follower all the entries it lacks, except in
//! `partial-batches`, where they may send any number of them: only there
//! does a follower's commit stop short of the leader's. `partial-batches`
//! and `three-entries` have logs of three entries, the others at most two.
//! Progress ([`crate::progress`]) is checked in the configurations with a
//! second term to campaign in and few enough states for its second pass:
//! `clients`, `figure8`, `pre-vote`, `read-index`, `leader-transfer` and
//! `stale-term-step-down`.

use crate::bugs::Bug;
use crate::config::Config;
use crate::types::{Change, Members};

/// A named configuration of the suite.
#[derive(Clone, Debug)]
pub struct SuiteEntry {
    pub name: &'static str,
    pub purpose: &'static str,
    pub config: Config,
}

/// The default suite.
pub fn default_suite() -> Vec<SuiteEntry> {
    let base = Config {
        servers: 3,
        max_retries: 1,
        ..Config::default()
    };
    // Four servers, three of them voting, one client write to commit in
    // the leader's term before it may change the configuration.
    let membership = Config {
        servers: 4,
        voters: Some(3),
        clients: 1,
        ops: 1,
        max_term: 2,
        max_log: 3,
        max_in_flight: 4,
        ..base.clone()
    };
    vec![
        SuiteEntry {
            name: "elections",
            purpose:
                "one term, no clients, one crash, messages lost: votes, split votes, persistence",
            config: Config {
                clients: 0,
                ops: 0,
                max_term: 1,
                max_log: 0,
                max_crashes: 1,
                max_in_flight: 6,
                lossy: true,
                ..base.clone()
            },
        },
        SuiteEntry {
            name: "clients",
            purpose:
                "a write then a read over two terms: commit, retries, sessions, truncation, reads",
            config: Config {
                clients: 1,
                ops: 2,
                max_term: 2,
                max_log: 2,
                max_in_flight: 4,
                progress: true,
                ..base.clone()
            },
        },
        SuiteEntry {
            name: "figure8",
            purpose: "one command re-proposed over four terms (the Raft paper's Figure 8)",
            config: Config {
                clients: 1,
                ops: 1,
                max_term: 4,
                max_log: 1,
                max_in_flight: 4,
                progress: true,
                ..base.clone()
            },
        },
        SuiteEntry {
            name: "snapshots",
            purpose: "two commands, a snapshot after each: InstallSnapshot to a lagging follower",
            config: Config {
                clients: 1,
                ops: 2,
                max_term: 1,
                max_log: 2,
                snapshot_after: 1,
                max_in_flight: 5,
                ..base.clone()
            },
        },
        SuiteEntry {
            name: "production",
            purpose:
                "etcd/raft-rs behaviours beyond Figure 2: stale append replies, lost elections",
            config: Config {
                clients: 1,
                ops: 2,
                max_term: 1,
                max_log: 2,
                max_in_flight: 5,
                ..base.clone()
            }
            .featuring(&["stale-append-reply", "lost-election"]),
        },
        SuiteEntry {
            name: "pre-vote",
            purpose: "pre-vote over two terms: pre-vote quorums won and lost, no term disturbed, \
                      stale grants of the current term counted",
            config: Config {
                clients: 1,
                ops: 1,
                max_term: 2,
                max_log: 1,
                max_in_flight: 5,
                progress: true,
                ..base.clone()
            }
            .featuring(&["pre-vote", "pre-vote-stale-grant"]),
        },
        SuiteEntry {
            name: "check-quorum",
            purpose:
                "heartbeats carrying min(match, commit), and leaders stepping down by check-quorum",
            config: Config {
                clients: 1,
                ops: 1,
                max_term: 1,
                max_log: 1,
                max_in_flight: 5,
                ..base.clone()
            }
            .featuring(&["heartbeat", "check-quorum"]),
        },
        SuiteEntry {
            name: "read-index",
            purpose: "a write then a read served by ReadIndex over two terms, proposals forwarded",
            config: Config {
                clients: 1,
                ops: 2,
                max_term: 2,
                max_log: 2,
                max_in_flight: 4,
                progress: true,
                ..base.clone()
            }
            .featuring(&["read-index", "forward-proposals"]),
        },
        SuiteEntry {
            name: "snapshot-fast-forward",
            purpose: "snapshots to followers that already hold their entries: commit only; \
                      stale snapshots answered with the commit index",
            config: Config {
                clients: 1,
                ops: 2,
                max_term: 1,
                max_log: 2,
                snapshot_after: 1,
                max_in_flight: 5,
                ..base.clone()
            }
            .featuring(&["snapshot-fast-forward", "stale-append-reply"]),
        },
        SuiteEntry {
            name: "leader-transfer",
            purpose: "a leader hands over to an up-to-date follower, past check-quorum's lease",
            config: Config {
                clients: 1,
                ops: 1,
                max_term: 2,
                max_log: 1,
                max_in_flight: 3,
                progress: true,
                ..base.clone()
            }
            .featuring(&["check-quorum", "leader-transfer"]),
        },
        SuiteEntry {
            name: "lease-read",
            purpose: "a write then a read by the leader's lease (check-quorum), transfers past it",
            config: Config {
                clients: 1,
                ops: 2,
                max_term: 2,
                max_log: 2,
                max_in_flight: 3,
                ..base.clone()
            }
            .featuring(&["check-quorum", "leader-transfer", "lease-read"]),
        },
        SuiteEntry {
            name: "stale-term-step-down",
            purpose: "leaders stepping down in their own term on a reply's higher term \
                      (hashicorp/raft), with check-quorum",
            config: Config {
                clients: 0,
                ops: 0,
                max_term: 2,
                max_log: 1,
                max_in_flight: 4,
                progress: true,
                ..base.clone()
            }
            .featuring(&["check-quorum", "stale-term-step-down"]),
        },
        SuiteEntry {
            name: "refuse-compacted-prev",
            purpose: "appends refused below a follower's snapshot (hashicorp/raft)",
            config: Config {
                clients: 1,
                ops: 2,
                max_term: 1,
                max_log: 2,
                snapshot_after: 1,
                max_in_flight: 4,
                ..base.clone()
            }
            .featuring(&["refuse-compacted-prev"]),
        },
        SuiteEntry {
            name: "late-self-vote",
            purpose: "a candidate that crashes before its own vote is durable, then votes in \
                      that term (hashicorp/raft)",
            config: Config {
                clients: 0,
                ops: 0,
                max_term: 1,
                max_log: 0,
                max_crashes: 1,
                max_in_flight: 6,
                ..base.clone()
            }
            .featuring(&["late-self-vote"]),
        },
        SuiteEntry {
            name: "commit-any-message",
            purpose: "a command re-proposed over two terms, commits learned from vote messages",
            config: Config {
                clients: 1,
                ops: 1,
                max_term: 2,
                max_log: 1,
                max_in_flight: 5,
                ..base.clone()
            }
            .featuring(&["commit-any-message"]),
        },
        SuiteEntry {
            name: "partial-batches",
            purpose: "three commands in one term, AppendEntries of any size: a follower's \
                      commit bounded by its last new entry",
            config: Config {
                clients: 1,
                ops: 3,
                max_term: 1,
                max_log: 3,
                max_in_flight: 5,
                max_retries: 0,
                partial_batches: true,
                ..base.clone()
            },
        },
        SuiteEntry {
            name: "three-entries",
            purpose: "three commands over two terms: a leader elected with two entries, a \
                      follower holding one",
            config: Config {
                clients: 1,
                ops: 3,
                max_term: 2,
                max_log: 3,
                max_in_flight: 5,
                max_retries: 0,
                ..base.clone()
            },
        },
        SuiteEntry {
            name: "five-servers",
            purpose: "five servers, one command in one term: a commit needs two followers \
                      (quorum 3 of 5), not the largest matchIndex",
            config: Config {
                servers: 5,
                clients: 1,
                ops: 1,
                max_term: 1,
                max_log: 1,
                max_in_flight: 6,
                max_retries: 0,
                ..base.clone()
            },
        },
        SuiteEntry {
            name: "membership",
            purpose: "a fourth server added, then a voter removed (the leader, sometimes), \
                      configurations used as soon as they are in the log (thesis, hashicorp/raft)",
            config: Config {
                changes: vec![Change::AddVoter(4), Change::RemoveVoter(1)],
                ..membership.clone()
            }
            .featuring(&["membership"]),
        },
        SuiteEntry {
            name: "membership-on-apply",
            purpose: "a learner added, then promoted, configurations used once applied \
                      (etcd-io/raft, raft-rs)",
            config: Config {
                changes: vec![Change::AddLearner(4), Change::AddVoter(4)],
                ..membership.clone()
            }
            .featuring(&["config-on-apply"]),
        },
        SuiteEntry {
            name: "joint",
            purpose: "voter 1 replaced by a fourth server through joint consensus (C_old,new \
                      needs both majorities), then joint consensus left, configurations used \
                      once applied (etcd-io/raft ConfChangeV2)",
            config: Config {
                changes: vec![
                    Change::Joint(Members::first(4).without(1)),
                    Change::LeaveJoint,
                ],
                // A second retry reaches the leader of a later term, whose
                // joint configuration the planted bug miscounts.
                max_retries: 2,
                ..membership
            }
            .featuring(&["config-on-apply"]),
        },
        SuiteEntry {
            name: "spare-server",
            purpose: "one term with a fourth server outside the configuration: it never \
                      campaigns and no vote of it counts",
            config: Config {
                servers: 4,
                voters: Some(3),
                clients: 0,
                ops: 0,
                max_term: 1,
                max_log: 0,
                max_in_flight: 6,
                ..base
            }
            .featuring(&["membership"]),
        },
    ]
}

/// The suite configuration that catches `bug`.
pub fn config_for_bug(bug: Bug) -> &'static str {
    match bug {
        Bug::CommitOldTerm | Bug::KeepVoteOnNewTerm => "figure8",
        Bug::VolatileVote | Bug::DoubleVote | Bug::MinorityQuorum => "elections",
        Bug::NoElectionRestriction
        | Bug::AcceptStaleTerm
        | Bug::TruncateOnMatch
        | Bug::NoDedup
        | Bug::StaleRead => "clients",
        Bug::SnapshotRegress => "snapshots",
        Bug::StaleAppendMatch => "production",
        Bug::PreVoteRaisesTerm => "pre-vote",
        Bug::ReadIndexOldCommit => "read-index",
        Bug::TransferStaleTarget => "leader-transfer",
        Bug::LearnCommitAnyTerm => "commit-any-message",
        Bug::LeaseReadWithoutCheckQuorum => "lease-read",
        Bug::CommitPastLastNew => "partial-batches",
        Bug::PrevCheckOffByOne => "three-entries",
        Bug::CommitMaxMatch => "five-servers",
        Bug::OverlappingChanges => "membership",
        Bug::LearnerCounts => "membership-on-apply",
        Bug::RemovedVoteCounts => "spare-server",
        Bug::JointNewMajorityOnly => "joint",
    }
}

/// The part of the suite relevant to `bug`, with the bug planted.
pub fn suite_for_bug(bug: Bug) -> Vec<SuiteEntry> {
    default_suite()
        .into_iter()
        .filter(|e| e.name == config_for_bug(bug))
        .map(|mut e| {
            e.config.bug = Some(bug);
            e
        })
        .collect()
}
