//! What a call changed, as `raft-trace/1` events: shared by every adapter
//! that observes an etcd-style raw node (raft-rs in process, etcd's raft
//! through its Go driver) by comparing its state before and after a call.

use raft::eraftpb::{self, Entry, MessageType};
use raft_trace as rt;

use crate::{ctx_number, trace_entries};

/// What the adapter compares before and after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obs {
    pub term: u64,
    pub vote: Option<u64>,
    pub role: rt::Role,
    pub leader: u64,
    pub commit: u64,
    pub last_index: u64,
    pub last_term: u64,
    pub snap_index: u64,
    pub snap_term: u64,
    /// A leader's snapshot restored in memory, not yet handed out.
    pub unstable_snap: Option<(u64, u64)>,
}

impl Obs {
    pub fn post(&self) -> rt::PostState {
        rt::PostState {
            term: Some(self.term),
            vote: Some(self.vote),
            role: Some(self.role),
            leader: None,
            commit: Some(self.commit),
            applied: None,
            last_index: Some(self.last_index),
            last_term: Some(self.last_term),
            snapshot_index: Some(self.snap_index),
            snapshot_term: Some(self.snap_term),
        }
    }
}

/// What a call to the raw node started with.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    Tick,
    /// A message from a peer (its type, and whether its term was below the
    /// node's).
    Receive(MessageType, bool),
    /// A client proposal, a read, or Ready handling: no event of its own.
    Internal,
}

impl Start {
    /// The message being handled, which tells what a reply answers.
    pub fn handling(self) -> Option<(MessageType, bool)> {
        match self {
            Start::Receive(t, stale) => Some((t, stale)),
            _ => None,
        }
    }
}

/// The node's log after the call, as far as the explanation reads it.
pub trait LogView {
    /// The term of the entry at `index` (0 if the log holds none).
    fn term_at(&self, index: u64) -> u64;
    /// The entries `from..=to`, which the log holds.
    fn entries(&self, from: u64, to: u64) -> Vec<Entry>;
}

/// One call: the state before and after it, and what it produced.
pub struct Call<'a> {
    pub start: Start,
    pub before: Obs,
    /// The first index above the commit index (or snapshot) before the
    /// call, and the terms of the entries from it to the last one, before.
    pub lo: u64,
    pub old_terms: &'a [u64],
    pub after: Obs,
    /// Messages the call queued.
    pub new_msgs: &'a [eraftpb::Message],
    /// Read states the call produced: (index, request context).
    pub reads: &'a [(u64, Vec<u8>)],
}

/// Writes the events that explain what `c` changed, in the order the
/// format requires (`timeout`, `role`, `install`, `truncate`, `append`,
/// `commit`, `read`), each with its post state.
pub fn explain(c: &Call, log: &dyn LogView, record: &mut dyn FnMut(rt::Event, rt::PostState)) {
    let (before, after, start, lo) = (c.before, c.after, c.start, c.lo);
    let old_terms = c.old_terms;
    let mut post = before;
    // The election timer fired: a (pre-)campaign started.
    let campaign = c.new_msgs.iter().any(|m| {
        matches!(
            m.get_msg_type(),
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
        )
    });
    let mut election_timeout = false;
    if let Start::Tick = start {
        if before.role != rt::Role::Leader
            && (after.role != before.role || after.term != before.term || campaign)
        {
            election_timeout = true;
            record(
                rt::Event::Timeout(rt::Timeout {
                    timer: rt::TimerKind::Election,
                }),
                before.post(),
            );
        }
    }
    if after.role != before.role || election_timeout {
        use rt::Role as R;
        let reason = if after.term > before.term && after.role == R::Follower {
            rt::RoleReason::HigherTerm
        } else {
            match (before.role, after.role) {
                (R::PreCandidate, R::Candidate) if !election_timeout => rt::RoleReason::PreVoteWon,
                (_, R::Candidate | R::PreCandidate) => rt::RoleReason::ElectionTimeout,
                (R::Candidate, R::Leader) => rt::RoleReason::WonElection,
                (R::Leader, R::Follower) => rt::RoleReason::CheckQuorum,
                (R::Candidate | R::PreCandidate, R::Follower) => match start {
                    Start::Receive(
                        MessageType::MsgAppend
                        | MessageType::MsgHeartbeat
                        | MessageType::MsgSnapshot,
                        _,
                    ) => rt::RoleReason::LeaderDiscovered,
                    _ => rt::RoleReason::LostElection,
                },
                _ => rt::RoleReason::Other,
            }
        };
        post.term = after.term;
        post.role = after.role;
        post.leader = after.leader;
        // Stepping down to a higher term forgets the vote; a vote granted
        // in the same step shows in the events that follow.
        post.vote = if reason == rt::RoleReason::HigherTerm {
            None
        } else {
            after.vote
        };
        let role = rt::RoleChange {
            role: after.role,
            term: after.term,
            reason,
        };
        record(rt::Event::Role(role), post.post());
    }
    post.term = after.term;
    post.role = after.role;
    post.vote = after.vote;
    post.leader = after.leader;

    if let Some((index, term)) = after
        .unstable_snap
        .filter(|_| after.unstable_snap != before.unstable_snap)
    {
        post = after;
        record(
            rt::Event::Install(rt::SnapshotEvent { index, term }),
            post.post(),
        );
    } else {
        // Where the log stopped agreeing with what it held.
        let diverged = (lo..=before.last_index)
            .find(|&i| i > after.last_index || log.term_at(i) != old_terms[(i - lo) as usize]);
        if let Some(from) = diverged {
            post.last_index = from - 1;
            post.last_term = if from > lo {
                old_terms[(from - 1 - lo) as usize]
            } else {
                log.term_at(from - 1)
            };
            record(rt::Event::Truncate(rt::Truncate { from }), post.post());
        }
        let first_new = diverged.unwrap_or(before.last_index + 1);
        if after.last_index >= first_new {
            let es = log.entries(first_new, after.last_index);
            post.last_index = after.last_index;
            post.last_term = after.last_term;
            record(
                rt::Event::Append(rt::Append {
                    index: first_new,
                    entries: Some(trace_entries(&es)),
                    entry_count: None,
                }),
                post.post(),
            );
        }
        if after.commit > before.commit {
            post = after;
            record(
                rt::Event::Commit(rt::Commit {
                    index: after.commit,
                }),
                post.post(),
            );
        }
    }
    debug_assert_eq!(
        (post.last_index, post.commit),
        (after.last_index, after.commit),
        "events explain the change"
    );
    for (index, ctx) in c.reads {
        record(
            rt::Event::Read(rt::Read {
                index: *index,
                via: rt::ReadVia::ReadIndex,
                context: ctx_number(ctx),
                client: None,
                req: None,
            }),
            after.post(),
        );
    }
}
