//! Log compaction (section 7, Figure 13).

use super::{become_follower, observe_term, Step};
use crate::bugs::Bug;
use crate::server::{ghost, Rules, Server};
use crate::types::{Index, Msg, NodeId, Role, Term};

/// Server `s` compacts its applied prefix (up to its commit index, which is
/// also its last applied index) into a snapshot of its state machine. When
/// to do so is the implementation's choice. Nothing changes if everything
/// applied is already in the snapshot.
pub fn take_snapshot(s: &Server) -> Step {
    let mut step = Step::unchanged(s);
    let index = s.commit;
    if index <= s.log.snapshot_index {
        return step;
    }
    let Some(term) = s.log.term_at(index) else {
        return step; // only reachable with a planted bug that lost entries
    };
    let next = &mut step.state;
    let compacted = (index - next.log.snapshot_index) as usize;
    next.log.entries.drain(..compacted);
    next.log.snapshot_index = index;
    next.log.snapshot_term = term;
    next.log.snapshot_data = next.sm.clone();
    step
}

/// The InstallSnapshot a leader sends when a follower needs entries it has
/// compacted (the whole snapshot in one chunk).
pub fn install_snapshot_message(s: &Server) -> Msg {
    Msg::InstallSnapshot {
        term: s.term,
        last_index: s.log.snapshot_index,
        last_term: s.log.snapshot_term,
        data: s.log.snapshot_data.clone(),
    }
}

/// Figure 13, InstallSnapshot RPC, receiver implementation.
#[allow(clippy::too_many_arguments)]
pub fn handle_install_snapshot(
    s: &Server,
    rules: &Rules,
    from: NodeId,
    term: Term,
    last_index: Index,
    last_term: Term,
    data: &crate::state_machine::StateMachine,
) -> Step {
    let mut next = s.clone();
    observe_term(&mut next, term, rules);
    let reply = |state: Server| {
        let t = state.term;
        let mut step = Step {
            state,
            sends: vec![],
        };
        step.send(
            from,
            Msg::InstallSnapshotReply {
                term: t,
                last_index,
            },
        );
        step
    };
    // "1. Reply immediately if term < currentTerm."
    if term < next.term {
        return reply(next);
    }
    if matches!(next.role, Role::Candidate | Role::PreCandidate) {
        become_follower(&mut next);
    }
    super::follow(&mut next, rules, from);
    // A snapshot that covers no more than what is already committed here
    // holds nothing new: ignore it (the follower already has these entries).
    if last_index <= next.commit && !rules.bug(Bug::SnapshotRegress) {
        if rules.stale_append_reply {
            // Feature stale-append-reply, as for a stale AppendEntries
            // (raft-rs and etcd-io/raft `handleSnapshot`: a snapshot that
            // cannot be restored is answered with the follower's commit
            // index). Entries up to the commit index are committed, hence
            // the leader's: the commit index is a true match.
            next.ghost |= ghost::STALE_APPEND_ACKED;
            let (t, commit) = (next.term, next.commit);
            let mut step = Step {
                state: next,
                sends: vec![],
            };
            step.send(
                from,
                Msg::InstallSnapshotReply {
                    term: t,
                    last_index: commit,
                },
            );
            return step;
        }
        return reply(next);
    }
    if rules.snapshot_fast_forward
        && next.log.term_at(last_index) == Some(last_term)
        && last_index > next.log.snapshot_index
    {
        // Not Figure 13 (which would install the snapshot and keep the
        // entries after it): etcd-io/raft `restore` and raft-rs: a follower
        // whose log already holds the snapshot's last entry only commits up
        // to it. By Log Matching its entries up to there are the leader's,
        // which are committed.
        next.ghost |= ghost::SNAPSHOT_FAST_FORWARD;
        let sends = super::replication::commit_to(&mut next, rules, last_index);
        let mut step = reply(next);
        step.sends.extend(sends);
        return step;
    }
    // "6. If existing log entry has same index and term as snapshot's last
    // included entry, retain log entries following it and reply.
    // 7. Discard the entire log. 8. Reset state machine using snapshot
    // contents."
    let keep: Vec<_> = if next.log.term_at(last_index) == Some(last_term) {
        next.log.entries_from(last_index + 1, usize::MAX)
    } else {
        vec![]
    };
    next.log.entries = keep;
    next.log.snapshot_index = last_index;
    next.log.snapshot_term = last_term;
    next.log.snapshot_data = data.clone();
    next.sm = data.clone();
    next.commit = last_index;
    next.ghost |= ghost::INSTALLED_SNAPSHOT;
    reply(next)
}

/// Figure 13, InstallSnapshot RPC, receiver implementation, for a chunk the
/// receiver cannot install yet: "2. Create new snapshot file if first chunk
/// ... 3. Write data into snapshot file at given offset ... 5. Save snapshot
/// file ... if done is false, wait for more data chunks". The term rules of
/// All Servers apply and a candidate recognises the sender as leader; the
/// log and state machine are untouched. (The model's leader sends a snapshot
/// as one chunk; an implementation that splits it takes this step for every
/// chunk but the one that completes the snapshot, and may not acknowledge
/// them: an unacknowledged chunk is indistinguishable from a lost reply.)
pub fn handle_install_snapshot_chunk(s: &Server, rules: &Rules, from: NodeId, term: Term) -> Step {
    let mut next = s.clone();
    observe_term(&mut next, term, rules);
    if term == next.term {
        if matches!(next.role, Role::Candidate | Role::PreCandidate) {
            become_follower(&mut next);
        }
        super::follow(&mut next, rules, from);
    }
    Step {
        state: next,
        sends: vec![],
    }
}

/// The leader learns that follower `from` holds everything up to the
/// snapshot's last index.
pub fn handle_install_snapshot_reply(
    s: &Server,
    rules: &Rules,
    from: NodeId,
    term: Term,
    last_index: Index,
) -> Step {
    if let Some(step) = super::replication::stale_term_step_down(s, rules, term) {
        return step;
    }
    let mut next = s.clone();
    observe_term(&mut next, term, rules);
    if next.role == Role::Leader && term == next.term {
        super::elections::heard_from(&mut next, rules, from);
        let j = (from - 1) as usize;
        next.match_index[j] = next.match_index[j].max(last_index);
        next.next_index[j] = next.next_index[j].max(last_index + 1);
    }
    let mut step = Step {
        state: next,
        sends: vec![],
    };
    if step.state.transfer.is_some_and(|t| t.to == from) {
        super::elections::transfer_ready(&mut step);
    }
    step
}
