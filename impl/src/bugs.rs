//! Planted implementation bugs, compiled in and off by default. Each switches
//! one rule of the core or the state machine off or wrong, so the simulator
//! and the trace validator can prove that they catch it.

use std::fmt;
use std::str::FromStr;

/// One planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bug {
    /// The leader commits an entry of an earlier term as soon as a quorum
    /// holds it (the Raft paper's Figure 8), instead of only through an entry
    /// of its own term.
    CommitOldTerm,
    /// A follower's vote is not written to stable storage before the reply
    /// granting it is sent, so after a restart it can vote again in the term.
    VolatileVote,
    /// A follower that receives an AppendEntries shorter than its own
    /// matching log cuts the matching entries past the message, as if they
    /// conflicted.
    TruncateOnMatch,
    /// The leader serves a ReadIndex read at its commit index without the
    /// heartbeat round that confirms it still leads.
    StaleRead,
    /// The state machine ignores its session table: a retried command is
    /// applied again.
    NoDedup,
    /// With lease reads, the leader's lease lasts ten election timeouts
    /// instead of less than one, and the leader takes it as proof that it
    /// still leads (check-quorum does not depose it while it holds): it
    /// outlives the followers' promise not to elect another leader, so a
    /// deposed leader serves stale reads.
    LeaseOverrun,
    /// Vote requests and vote replies may leave before the write of the
    /// term and vote they carry, as the leader's appends may (Raft thesis
    /// §10.2.1 allows it for those only): a crash then forgets a vote the
    /// cluster already saw.
    EarlyVote,
    /// The leader counts its own new entries towards a commit as soon as it
    /// appends them, before its write of them is durable (the thesis
    /// §10.2.1 fast path lets its appends leave early, not its own count):
    /// a crash before the write can lose an entry a quorum never held.
    EarlySelfCount,
    /// A follower's acknowledgements of entries leave before its write of
    /// them is durable, as its answers to heartbeats (which acknowledge
    /// durable entries only) may: a crash then loses entries the leader
    /// counted towards a commit.
    EarlyAck,
    /// A follower's answers that acknowledge only durable entries (its
    /// answers to heartbeats) leave at once even when they carry a higher
    /// term it has just adopted and not yet written: a crash then takes it
    /// back to the older term after it answered in the newer one (Figure 2:
    /// currentTerm is on stable storage before a node responds).
    EarlyTerm,
    /// The leader's AppendEntries names the follower's next index as its
    /// previous entry (`prev_index = next` instead of `next - 1`) whenever
    /// it has an entry there: followers refuse every such append, so
    /// nothing new is ever replicated or committed. A liveness bug: every
    /// message is still one Raft allows.
    PrevIndexIsNext,
    /// A node that adopts a higher term keeps the vote it cast in its old
    /// term instead of clearing it: in the new term it refuses every
    /// candidate but the one it voted for before, so elections stall and
    /// far fewer operations are acknowledged. Conformance's replay rejects
    /// the vote its state shows; the progress floor also sees the stall.
    KeepVoteOnNewTerm,
    /// A leader ignores an AppendEntries reply that carries a higher term
    /// instead of adopting the term and stepping down (Figure 2, All
    /// Servers). Nothing unsafe follows, and the new leader's first
    /// AppendEntries deposes it anyway (so no progress check fires), but the
    /// trace shows a node that left a higher term unheeded: conformance's
    /// replay rejects it, unless the trace declares `stale-term-step-down`
    /// (hashicorp/raft's behaviour, which the model allows).
    IgnoreHigherTermReply,
    /// A leader starts a membership change while its previous one is not
    /// yet committed, and before it has committed an entry of its term
    /// (the single-server change bug found after the thesis): two
    /// configurations two servers apart can each elect a leader in one
    /// term.
    OverlappingChanges,
    /// The node's client API answers every read from its own state
    /// machine at once, on any node: no read index, no redirect to the
    /// leader. A node-layer bug (the simulator drives the core, not the
    /// HTTP API): `raftcheck node --bug local-read`, for fault experiments.
    LocalRead,
}

impl Bug {
    pub const ALL: [Bug; 14] = [
        Bug::CommitOldTerm,
        Bug::VolatileVote,
        Bug::TruncateOnMatch,
        Bug::StaleRead,
        Bug::NoDedup,
        Bug::LeaseOverrun,
        Bug::EarlyVote,
        Bug::EarlySelfCount,
        Bug::EarlyAck,
        Bug::EarlyTerm,
        Bug::PrevIndexIsNext,
        Bug::KeepVoteOnNewTerm,
        Bug::IgnoreHigherTermReply,
        Bug::OverlappingChanges,
    ];

    /// Bugs of the node's layers around the core, which only runs of real
    /// node processes (`raftcheck jepsen --node-bug`) can show.
    pub const NODE: [Bug; 1] = [Bug::LocalRead];

    /// Liveness bugs: the simulator catches them by the progress it
    /// demands ("no progress", "too little progress"); conformance's replay
    /// may reject their runs first.
    pub const LIVENESS: [Bug; 2] = [Bug::PrevIndexIsNext, Bug::KeepVoteOnNewTerm];

    /// Whether the simulator shows this bug only with membership changes
    /// (`raftcheck sim --membership`).
    pub fn needs_membership(self) -> bool {
        self == Bug::OverlappingChanges
    }

    /// The name used on the command line. Where the model has a planted
    /// bug that is the same mistake, the two share its name.
    pub fn name(self) -> &'static str {
        match self {
            Bug::CommitOldTerm => "commit-old-term",
            Bug::VolatileVote => "volatile-vote",
            Bug::TruncateOnMatch => "truncate-on-match",
            Bug::StaleRead => "stale-read",
            Bug::NoDedup => "no-dedup",
            Bug::LeaseOverrun => "lease-overrun",
            Bug::EarlyVote => "early-vote",
            Bug::EarlySelfCount => "early-self-count",
            Bug::EarlyAck => "early-ack",
            Bug::EarlyTerm => "early-term",
            Bug::PrevIndexIsNext => "prev-index-is-next",
            Bug::KeepVoteOnNewTerm => "keep-vote-on-new-term",
            Bug::IgnoreHigherTermReply => "ignore-higher-term-reply",
            Bug::OverlappingChanges => "overlapping-changes",
            Bug::LocalRead => "local-read",
        }
    }

    /// The name this bug had before the two catalogues shared names; still
    /// accepted on the command line for one release.
    pub fn old_name(self) -> Option<&'static str> {
        match self {
            Bug::CommitOldTerm => Some("old-term-commit"),
            Bug::VolatileVote => Some("vote-not-persisted"),
            Bug::TruncateOnMatch => Some("truncate-matching"),
            Bug::StaleRead => None,
            Bug::NoDedup => Some("double-apply"),
            Bug::LeaseOverrun => None,
            Bug::EarlyVote => None,
            Bug::EarlySelfCount => None,
            Bug::EarlyAck => None,
            Bug::EarlyTerm => None,
            Bug::PrevIndexIsNext => None,
            Bug::KeepVoteOnNewTerm => None,
            Bug::IgnoreHigherTermReply => None,
            Bug::OverlappingChanges => None,
            Bug::LocalRead => None,
        }
    }

    /// One line describing the bug.
    pub fn describe(self) -> &'static str {
        match self {
            Bug::CommitOldTerm => {
                "leader commits an earlier term's entry by counting replicas (Raft Figure 8)"
            }
            Bug::VolatileVote => "vote is not persisted before the reply granting it is sent",
            Bug::TruncateOnMatch => {
                "conflicting-suffix truncation also drops matching entries past the message"
            }
            Bug::StaleRead => {
                "ReadIndex read served without a heartbeat round confirming leadership"
            }
            Bug::NoDedup => "retried command applied twice (session table ignored)",
            Bug::LeaseOverrun => {
                "lease reads: the leader's lease outlasts the followers' election timeout (and check-quorum)"
            }
            Bug::EarlyVote => {
                "vote requests and replies leave before the write of their term and vote (the leader-append fast path applied to votes)"
            }
            Bug::EarlySelfCount => {
                "the leader counts its own entries towards a commit before they are durable"
            }
            Bug::EarlyAck => {
                "a follower's acknowledgements of new entries leave before its write makes them durable"
            }
            Bug::EarlyTerm => {
                "a follower's answers to heartbeats leave before the write of the higher term they carry"
            }
            Bug::PrevIndexIsNext => {
                "the leader's AppendEntries names the next index as its previous entry (prev_index = next, not next - 1): nothing new is replicated"
            }
            Bug::KeepVoteOnNewTerm => {
                "a node adopting a higher term keeps its old term's vote: it refuses other candidates and elections stall"
            }
            Bug::IgnoreHigherTermReply => {
                "a leader ignores an AppendEntries reply of a higher term instead of stepping down"
            }
            Bug::OverlappingChanges => {
                "a leader starts a membership change before the previous one (and an entry of its term) is committed"
            }
            Bug::LocalRead => {
                "any node answers reads from its own state machine (no read index, no redirect)"
            }
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown bug name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bug \"{0}\" (known: commit-old-term, volatile-vote, truncate-on-match, stale-read, no-dedup, lease-overrun, early-vote, early-self-count, early-ack, early-term, prev-index-is-next, keep-vote-on-new-term, ignore-higher-term-reply, overlapping-changes, local-read)")]
pub struct UnknownBug(pub String);

impl FromStr for Bug {
    type Err = UnknownBug;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .into_iter()
            .chain(Bug::NODE)
            .find(|b| b.name() == s || b.old_name() == Some(s))
            .ok_or_else(|| UnknownBug(s.to_string()))
    }
}

/// The set of enabled bugs (normally empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bugs(u16);

impl Bugs {
    pub const NONE: Bugs = Bugs(0);

    pub fn with(mut self, bug: Bug) -> Self {
        self.0 |= 1 << bug as u16;
        self
    }

    #[inline]
    pub fn has(self, bug: Bug) -> bool {
        self.0 & (1 << bug as u16) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Bug::ALL.into_iter().chain(Bug::NODE) {
            assert_eq!(b.name().parse::<Bug>().unwrap(), b);
            assert!(Bugs::NONE.with(b).has(b));
            assert!(!Bugs::NONE.has(b));
            if let Some(old) = b.old_name() {
                assert_eq!(old.parse::<Bug>().unwrap(), b, "old names stay aliases");
            }
        }
        assert!("nope".parse::<Bug>().is_err());
    }
}
