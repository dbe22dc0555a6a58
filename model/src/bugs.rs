//! Planted bugs: each switches one rule of the specification off or wrong, so
//! that the checker can show it finds real mistakes. `raftcheck bugs` lists them.

use std::fmt;
use std::str::FromStr;

/// One planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// A leader commits an entry of an earlier term by counting replicas
    /// (the Raft paper's Figure 8).
    CommitOldTerm,
    /// A voter grants its vote without checking the candidate's log is at
    /// least as up-to-date as its own.
    NoElectionRestriction,
    /// currentTerm and votedFor are not persisted: a restarted server forgets
    /// its vote.
    VolatileVote,
    /// A voter grants a second vote in the same term.
    DoubleVote,
    /// A follower accepts AppendEntries from an older term.
    AcceptStaleTerm,
    /// A follower drops the entries after prevLogIndex even when they agree
    /// with the leader's.
    TruncateOnMatch,
    /// The state machine executes a retried command again.
    NoDedup,
    /// A leader answers reads from its local state without confirming it is
    /// still leader (not through the log).
    StaleRead,
    /// The quorum is N/2 instead of N/2+1.
    MinorityQuorum,
    /// A follower installs a snapshot older than what it has committed.
    SnapshotRegress,
    /// A follower that ignores a stale AppendEntries (prevLogIndex below its
    /// commit index, [`crate::Rules::stale_append_reply`]) acknowledges the
    /// message's entries as matched (prevLogIndex + their number, the usual
    /// success reply) instead of its commit index, though it appended none:
    /// the leader counts it for an entry it does not hold.
    StaleAppendMatch,
    /// A server that receives a pre-vote request of a higher term adopts
    /// that term, as it would for a vote request ([`crate::Rules::pre_vote`]):
    /// a server that cannot win still disrupts the cluster.
    PreVoteRaisesTerm,
    /// A leader serves a ReadIndex read before it has committed an entry of
    /// its own term ([`crate::Rules::read_index`]): its commit index may be
    /// older than a write already acknowledged, so the read is stale.
    ReadIndexOldCommit,
    /// A leader transferring leadership sends TimeoutNow as soon as the
    /// transfer starts, without waiting for the target's log to match its
    /// own ([`crate::Rules::leader_transfer`]): the target campaigns with a
    /// log that lacks the leader's entries.
    TransferStaleTarget,
    /// A server that learns the commit from a vote message
    /// ([`crate::Rules::commit_any_message`]) commits up to its index
    /// whenever its log reaches that index, without checking that its entry
    /// there has the carried term: it commits an entry that is not the
    /// committed one.
    LearnCommitAnyTerm,
    /// A leader serves reads by its lease ([`crate::Rules::lease_read`]) but
    /// its followers do not honour the lease, as without check-quorum: they
    /// vote for a new leader that commits writes the old one cannot see.
    LeaseReadWithoutCheckQuorum,
    /// A follower sets its commit index to leaderCommit instead of
    /// min(leaderCommit, index of last new entry) (Figure 2, AppendEntries
    /// receiver rule 5): after a partial batch
    /// ([`crate::Config::partial_batches`]) it commits entries past the
    /// batch, which it does not hold, and cannot apply them.
    CommitPastLastNew,
    /// A follower's consistency check compares prevLogTerm with its entry at
    /// prevLogIndex - 1 instead of prevLogIndex (Figure 2, AppendEntries
    /// receiver rule 2): it accepts entries after a gap or a different entry,
    /// and acknowledges entries it does not hold.
    PrevCheckOffByOne,
    /// A leader commits an entry of its term once one follower holds it (the
    /// largest matchIndex) instead of a majority (Figure 2, Leaders: "a
    /// majority of matchIndex[i] >= N"). With 3 servers that is the same
    /// thing; with 5 the entry is committed on 2 of them.
    CommitMaxMatch,
    /// A server that adopts a higher term keeps its vote of the earlier
    /// term instead of clearing votedFor (Figure 2, All Servers: "set
    /// currentTerm = T", with votedFor null in the new term). Nothing
    /// unsafe happens, but servers that voted once can never vote again:
    /// elections stall for good.
    KeepVoteOnNewTerm,
    /// A leader proposes a membership change while an earlier one is still
    /// uncommitted ([`crate::Rules::membership`]): two single-server changes
    /// in a row are a two-server change, whose majorities need not overlap.
    OverlappingChanges,
    /// A learner's acknowledgements count towards a majority, as a voter's
    /// would ([`crate::Rules::membership`]).
    LearnerCounts,
    /// A candidate asks every server for its vote and counts every vote,
    /// not only the voters' of its configuration (a removed server's, a
    /// learner's, a server's not yet added).
    RemovedVoteCounts,
    /// In joint consensus (thesis 4.3) a majority of the new voters is
    /// taken for agreement, without the separate majority of the old ones.
    JointNewMajorityOnly,
}

impl Bug {
    /// Every planted bug.
    pub const ALL: [Bug; 24] = [
        Bug::CommitOldTerm,
        Bug::NoElectionRestriction,
        Bug::VolatileVote,
        Bug::DoubleVote,
        Bug::AcceptStaleTerm,
        Bug::TruncateOnMatch,
        Bug::NoDedup,
        Bug::StaleRead,
        Bug::MinorityQuorum,
        Bug::SnapshotRegress,
        Bug::StaleAppendMatch,
        Bug::PreVoteRaisesTerm,
        Bug::ReadIndexOldCommit,
        Bug::TransferStaleTarget,
        Bug::LearnCommitAnyTerm,
        Bug::LeaseReadWithoutCheckQuorum,
        Bug::CommitPastLastNew,
        Bug::PrevCheckOffByOne,
        Bug::CommitMaxMatch,
        Bug::KeepVoteOnNewTerm,
        Bug::OverlappingChanges,
        Bug::LearnerCounts,
        Bug::RemovedVoteCounts,
        Bug::JointNewMajorityOnly,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Bug::CommitOldTerm => "commit-old-term",
            Bug::NoElectionRestriction => "no-election-restriction",
            Bug::VolatileVote => "volatile-vote",
            Bug::DoubleVote => "double-vote",
            Bug::AcceptStaleTerm => "accept-stale-term",
            Bug::TruncateOnMatch => "truncate-on-match",
            Bug::NoDedup => "no-dedup",
            Bug::StaleRead => "stale-read",
            Bug::MinorityQuorum => "minority-quorum",
            Bug::SnapshotRegress => "snapshot-regress",
            Bug::StaleAppendMatch => "stale-append-match",
            Bug::PreVoteRaisesTerm => "pre-vote-raises-term",
            Bug::ReadIndexOldCommit => "read-index-old-commit",
            Bug::TransferStaleTarget => "transfer-stale-target",
            Bug::LearnCommitAnyTerm => "learn-commit-any-term",
            Bug::LeaseReadWithoutCheckQuorum => "lease-read-without-check-quorum",
            Bug::CommitPastLastNew => "commit-past-last-new",
            Bug::PrevCheckOffByOne => "prev-check-off-by-one",
            Bug::CommitMaxMatch => "commit-max-match",
            Bug::KeepVoteOnNewTerm => "keep-vote-on-new-term",
            Bug::OverlappingChanges => "overlapping-changes",
            Bug::LearnerCounts => "learner-counts",
            Bug::RemovedVoteCounts => "removed-vote-counts",
            Bug::JointNewMajorityOnly => "joint-new-majority-only",
        }
    }

    /// One line on what the bug does.
    pub fn description(self) -> &'static str {
        match self {
            Bug::CommitOldTerm => {
                "a leader commits an earlier term's entry by counting replicas (Figure 8)"
            }
            Bug::NoElectionRestriction => {
                "votes are granted without checking the candidate's log is up to date"
            }
            Bug::VolatileVote => "currentTerm and votedFor are not persisted across a crash",
            Bug::DoubleVote => "a server votes for two candidates in the same term",
            Bug::AcceptStaleTerm => "a follower accepts AppendEntries of an older term",
            Bug::TruncateOnMatch => {
                "a follower drops entries after prevLogIndex even when they agree"
            }
            Bug::NoDedup => "a retried command is applied twice (no client sessions)",
            Bug::StaleRead => "a leader answers reads locally without confirming leadership",
            Bug::MinorityQuorum => "the quorum is N/2 instead of N/2+1",
            Bug::SnapshotRegress => {
                "a follower installs an older snapshot over newer committed state"
            }
            Bug::StaleAppendMatch => {
                "a follower ignoring a stale AppendEntries acknowledges entries it does not hold"
            }
            Bug::PreVoteRaisesTerm => {
                "a pre-vote request raises the voter's term, as a vote request would"
            }
            Bug::ReadIndexOldCommit => {
                "a ReadIndex read is served before the leader commits an entry of its term"
            }
            Bug::TransferStaleTarget => {
                "a leader sends TimeoutNow before the transfer target's log matches its own"
            }
            Bug::LearnCommitAnyTerm => {
                "a commit learned from a vote message ignores the term of the entry at that index"
            }
            Bug::LeaseReadWithoutCheckQuorum => {
                "a leader serves lease reads while followers do not honour its lease (no check-quorum)"
            }
            Bug::CommitPastLastNew => {
                "a follower commits up to the leader's commit index, past the entries it was sent"
            }
            Bug::PrevCheckOffByOne => {
                "a follower checks prevLogTerm against its entry at prevLogIndex - 1"
            }
            Bug::CommitMaxMatch => {
                "a leader commits what one follower holds (the largest matchIndex), not a majority"
            }
            Bug::KeepVoteOnNewTerm => {
                "a server keeps its vote when it adopts a higher term, so elections stall"
            }
            Bug::OverlappingChanges => {
                "a leader proposes a membership change before the previous one is committed"
            }
            Bug::LearnerCounts => "a learner's acknowledgement counts towards a majority",
            Bug::RemovedVoteCounts => {
                "a candidate counts votes of servers outside its configuration"
            }
            Bug::JointNewMajorityOnly => {
                "in joint consensus a majority of the new voters suffices, without one of the old"
            }
        }
    }

    /// The property that is expected to catch the bug in the default suite.
    pub fn expected_property(self) -> &'static str {
        use crate::properties::names::*;
        match self {
            Bug::CommitOldTerm => LEADER_COMPLETENESS,
            Bug::NoElectionRestriction => LEADER_COMPLETENESS,
            Bug::VolatileVote => ELECTION_SAFETY,
            Bug::DoubleVote => ELECTION_SAFETY,
            Bug::AcceptStaleTerm => LEADER_APPEND_ONLY,
            Bug::TruncateOnMatch => COMMITTED_DURABLE,
            Bug::NoDedup => NO_DOUBLE_APPLY,
            Bug::StaleRead => LINEARIZABLE,
            Bug::MinorityQuorum => ELECTION_SAFETY,
            Bug::SnapshotRegress => COMMITTED_DURABLE,
            Bug::StaleAppendMatch => COMMITTED_DURABLE,
            Bug::PreVoteRaisesTerm => PRE_VOTE_KEEPS_TERMS,
            Bug::ReadIndexOldCommit => LINEARIZABLE,
            Bug::TransferStaleTarget => TRANSFER_TARGET_UP_TO_DATE,
            Bug::LearnCommitAnyTerm => STATE_MACHINE_SAFETY,
            Bug::LeaseReadWithoutCheckQuorum => LEASE_HOLDS,
            Bug::CommitPastLastNew => STEPS_DEFINED,
            Bug::PrevCheckOffByOne => COMMITTED_DURABLE,
            Bug::CommitMaxMatch => COMMITTED_DURABLE,
            Bug::KeepVoteOnNewTerm => PROGRESS,
            Bug::OverlappingChanges => LEADER_COMPLETENESS,
            Bug::LearnerCounts => COMMITTED_DURABLE,
            Bug::RemovedVoteCounts => ELECTION_SAFETY,
            Bug::JointNewMajorityOnly => COMMITTED_DURABLE,
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
            format!("unknown bug {s:?}; known bugs: {}", names.join(", "))
        })
    }
}
