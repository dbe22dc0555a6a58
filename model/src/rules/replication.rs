//! Log replication (section 5.3) and commitment (5.3, 5.4.2).

use super::elections::heard_from;
use super::{become_follower, membership, observe_term, snapshots, Step};
use crate::bugs::Bug;
use crate::server::{ghost, Rules, Server};
use crate::types::{Dest, Entry, Index, Msg, NodeId, Role, Term};

/// The leader `s` sends follower `to` what it needs next. Figure 2, Leaders:
/// "If last log index >= nextIndex for a follower: send AppendEntries RPC
/// with log entries starting at nextIndex" (at most `max_entries` of them;
/// none makes a heartbeat). When nextIndex falls inside the compacted prefix
/// it sends InstallSnapshot instead (Figure 13). Not a leader: nothing.
/// Sending changes nothing on the leader, so this is the message alone.
pub fn append_entries(s: &Server, to: NodeId, max_entries: usize) -> Option<Msg> {
    if s.role != Role::Leader || to == s.id {
        return None;
    }
    let next = s.next_index[(to - 1) as usize];
    if next <= s.log.snapshot_index {
        return Some(snapshots::install_snapshot_message(s));
    }
    let prev_index = next - 1;
    let prev_term = s
        .log
        .term_at(prev_index)
        .expect("nextIndex - 1 is in the log or its snapshot");
    Some(Msg::AppendEntries {
        term: s.term,
        prev_index,
        prev_term,
        entries: s.log.entries_from(next, max_entries),
        commit: s.commit,
    })
}

/// Figure 2, AppendEntries RPC, receiver implementation.
#[allow(clippy::too_many_arguments)]
pub fn handle_append_entries(
    s: &Server,
    rules: &Rules,
    from: NodeId,
    term: Term,
    prev_index: Index,
    prev_term: Term,
    entries: &[Entry],
    leader_commit: Index,
) -> Step {
    let mut next = s.clone();
    observe_term(&mut next, term, rules);
    // "1. Reply false if term < currentTerm."
    if term < next.term && !rules.bug(Bug::AcceptStaleTerm) {
        let t = next.term;
        return reply(next, from, t, false, prev_index);
    }
    // Candidates: "If AppendEntries RPC received from new leader: convert to
    // follower" (a pre-candidate too).
    if matches!(next.role, Role::Candidate | Role::PreCandidate) {
        become_follower(&mut next);
    }
    if term == next.term {
        super::follow(&mut next, rules, from);
    }
    if rules.stale_append_reply && prev_index < next.commit {
        // Not Figure 2 (which would check prevLogIndex and append): etcd-io/raft
        // `handleAppendEntries`, `if m.Index < r.raftLog.committed`. The
        // entries up to the commit index are committed, so they are the
        // leader's (Leader Completeness, Log Matching): the follower ignores
        // the message and acknowledges its commit index as the match.
        next.ghost |= ghost::STALE_APPEND_ACKED;
        let matched = if rules.bug(Bug::StaleAppendMatch) {
            // Wrong: acknowledges the message's entries, which it ignored (the
            // usual success reply's "index of last new entry").
            prev_index + entries.len() as Index
        } else {
            next.commit
        };
        let t = next.term;
        return reply(next, from, t, true, matched);
    }
    // "2. Reply false if log doesn't contain an entry at prevLogIndex whose
    // term matches prevLogTerm." A prevLogIndex inside the snapshot matches:
    // the compacted prefix is committed, hence the leader's too.
    let snap = next.log.snapshot_index;
    if rules.refuse_compacted_prev && snap > 0 && prev_index <= snap {
        // Feature refuse-compacted-prev (hashicorp/raft `appendEntries`):
        // the entry at prevLogIndex was compacted away (or is the
        // snapshot's last, which it looks up in its log), so the follower
        // does not compare it and refuses; its hint is its last index + 1.
        next.ghost |= ghost::COMPACTED_PREV_REFUSED;
        let (t, hint) = (next.term, next.log.last_index() + 1);
        return reply(next, from, t, false, hint);
    }
    if prev_index >= snap {
        let checked = if rules.bug(Bug::PrevCheckOffByOne) {
            // Wrong: the entry before the one prevLogTerm is the term of.
            prev_index.saturating_sub(1)
        } else {
            prev_index
        };
        match next.log.term_at(checked) {
            Some(t) if t == prev_term => {}
            Some(_) => {
                let t = next.term;
                return reply(next, from, t, false, prev_index);
            }
            None => {
                let (t, hint) = (next.term, next.log.last_index() + 1);
                return reply(next, from, t, false, hint);
            }
        }
    }
    if rules.bug(Bug::TruncateOnMatch) && prev_index >= snap {
        // Wrong: drops everything after prevLogIndex, agreeing entries too.
        next.log.truncate_from(prev_index + 1);
    }
    // "3. If an existing entry conflicts with a new one (same index but
    // different terms), delete the existing entry and all that follow it.
    // 4. Append any new entries not already in the log."
    for (k, entry) in entries.iter().enumerate() {
        let index = prev_index + 1 + k as Index;
        if index <= snap {
            continue;
        }
        match next.log.term_at(index) {
            Some(t) if t == entry.term => continue,
            Some(_) => {
                next.log.truncate_from(index);
                next.ghost |= ghost::TRUNCATED;
            }
            None => {}
        }
        next.log.entries.push(*entry);
    }
    // "5. If leaderCommit > commitIndex, set commitIndex = min(leaderCommit,
    // index of last new entry)." A full batch ends at the leader's last
    // index, so only a partial one (Config::partial_batches) makes the
    // bound bite.
    let last_new = prev_index + entries.len() as Index;
    let target = if rules.bug(Bug::CommitPastLastNew) {
        // Wrong: the leader's commit index, past the entries it sent.
        leader_commit
    } else {
        leader_commit.min(last_new)
    };
    if leader_commit > target && target > next.commit {
        next.ghost |= ghost::COMMIT_BOUNDED_BY_BATCH;
    }
    let mut sends = vec![];
    if target > next.commit {
        sends = commit_to(&mut next, rules, target);
    }
    let t = next.term;
    let mut step = reply(next, from, t, true, last_new.max(snap));
    step.sends.extend(sends);
    step
}

fn reply(state: Server, to: NodeId, term: Term, success: bool, index: Index) -> Step {
    let mut step = Step {
        state,
        sends: vec![],
    };
    step.send(
        to,
        Msg::AppendEntriesReply {
            term,
            success,
            index,
        },
    );
    step
}

/// The leader handles a follower's answer. Figure 2, Leaders: "If
/// successful: update nextIndex and matchIndex for follower. If
/// AppendEntries fails because of log inconsistency: decrement nextIndex and
/// retry" (here: lower it to the follower's hint), then commit what a
/// quorum holds.
pub fn handle_append_entries_reply(
    s: &Server,
    rules: &Rules,
    from: NodeId,
    term: Term,
    success: bool,
    index: Index,
) -> Step {
    if let Some(step) = stale_term_step_down(s, rules, term) {
        return step;
    }
    let mut next = s.clone();
    observe_term(&mut next, term, rules);
    let mut step_sends = vec![];
    if next.role == Role::Leader && term == next.term {
        heard_from(&mut next, rules, from);
        let j = (from - 1) as usize;
        if success {
            // Feature lease-read: a success in its term shows the follower
            // accepted this leader's AppendEntries, so it is in its lease.
            if rules.lease_read {
                if let Err(i) = next.lease_acks.binary_search(&from) {
                    next.lease_acks.insert(i, from);
                }
            }
            next.match_index[j] = next.match_index[j].max(index);
            next.next_index[j] = next.next_index[j].max(index + 1);
            step_sends = advance_commit(&mut next, rules);
            if next.transfer.is_some_and(|t| t.to == from) {
                let mut step = Step {
                    state: next,
                    sends: step_sends,
                };
                super::elections::transfer_ready(&mut step);
                return step;
            }
        } else {
            let floor = next.match_index[j] + 1;
            next.next_index[j] = next.next_index[j].min(index.max(floor));
        }
    }
    Step {
        state: next,
        sends: step_sends,
    }
}

/// Feature stale-term-step-down (hashicorp/raft `handleStaleTerm`): a
/// leader that sees a higher term in a reply becomes follower in its own
/// term instead of adopting the reply's (Figure 2, All Servers: "If RPC
/// request or response contains term T > currentTerm: set currentTerm = T,
/// convert to follower"). `None`: the rule does not apply.
pub fn stale_term_step_down(s: &Server, rules: &Rules, term: Term) -> Option<Step> {
    if !rules.stale_term_step_down || s.role != Role::Leader || term <= s.term {
        return None;
    }
    let mut next = s.clone();
    super::become_follower(&mut next);
    next.ghost |= ghost::STALE_TERM_STEP_DOWN;
    Some(Step {
        state: next,
        sends: vec![],
    })
}

/// Feature heartbeat (etcd-io/raft `sendHeartbeat`): the leader `s` tells
/// follower `to` it is alive, with the commit index capped at what `to` is
/// known to hold, `min(matchIndex, commitIndex)`: the follower cannot check
/// a heartbeat against its log, so it must never be told to commit an entry
/// it may not share with the leader. Not a leader: nothing.
pub fn heartbeat(s: &Server, to: NodeId) -> Option<Msg> {
    if s.role != Role::Leader || to == s.id {
        return None;
    }
    Some(Msg::Heartbeat {
        term: s.term,
        commit: s.match_index[(to - 1) as usize].min(s.commit),
        ctx: None,
    })
}

/// A server receives a heartbeat (etcd-io/raft `handleHeartbeat`). An older
/// term's is answered with the receiver's term, so that a stale leader
/// learns of it (Figure 2's "reply false if term < currentTerm"). Otherwise
/// the sender is the term's leader (a candidate or pre-candidate steps down,
/// as for AppendEntries), and the follower commits up to the heartbeat's
/// commit index, which the leader capped at this follower's matchIndex:
/// those entries are the leader's (Log Matching).
pub fn handle_heartbeat(
    s: &Server,
    rules: &Rules,
    from: NodeId,
    term: Term,
    commit: Index,
    ctx: Option<u64>,
) -> Step {
    let mut next = s.clone();
    observe_term(&mut next, term, rules);
    let mut sends = vec![];
    if term == next.term {
        if matches!(next.role, Role::Candidate | Role::PreCandidate) {
            become_follower(&mut next);
        }
        super::follow(&mut next, rules, from);
        let target = commit.min(next.log.last_index());
        if target > next.commit {
            next.ghost |= ghost::HEARTBEAT_COMMIT;
            sends = commit_to(&mut next, rules, target);
        }
    }
    let t = next.term;
    let mut step = Step {
        state: next,
        sends: vec![],
    };
    step.send(from, Msg::HeartbeatReply { term: t, ctx });
    step.sends.extend(sends);
    step
}

/// The leader hears a heartbeat's answer: the follower is alive (for
/// check-quorum), and it acknowledges the read named by `ctx`, if any
/// (feature read-index, [`super::clients::confirm_read`]). A newer term
/// makes it a follower (All Servers rule). The leader may send the follower
/// what it lacks at any time ([`append_entries`]), so nothing else is
/// needed here.
pub fn handle_heartbeat_reply(
    s: &Server,
    rules: &Rules,
    from: NodeId,
    term: Term,
    ctx: Option<u64>,
) -> Step {
    let mut next = s.clone();
    observe_term(&mut next, term, rules);
    let mut sends = vec![];
    if next.role == Role::Leader && term == next.term {
        heard_from(&mut next, rules, from);
        if let Some(ctx) = ctx {
            sends = super::clients::confirm_read(&mut next, rules, from, ctx);
        }
    }
    Step { state: next, sends }
}

/// Figure 2, Leaders: "If there exists an N such that N > commitIndex, a
/// majority of matchIndex[i] >= N, and log[N].term == currentTerm: set
/// commitIndex = N." Returns the replies to clients.
pub fn advance_commit(s: &mut Server, rules: &Rules) -> Vec<(Dest, Msg)> {
    let mut new_commit = s.commit;
    // The majority is of the voters of the leader's configuration (feature
    // membership; thesis 4.1: a leader that is not one does not count itself).
    let counted = membership::counted(s, rules);
    for n in (s.commit + 1)..=s.log.last_index() {
        let holds = |j: NodeId| j == s.id || s.match_index[(j - 1) as usize] >= n;
        let current_term = s.log.term_at(n) == Some(s.term);
        let replicated = if rules.bug(Bug::CommitMaxMatch) {
            // Wrong: the leader and one follower.
            let replicas = (1..=rules.servers).filter(|&j| holds(j)).count();
            replicas >= 2.min(membership::majority_of(rules.servers as usize, rules))
        } else {
            membership::quorum_in(counted.as_ref(), rules, holds)
        };
        if replicated && (current_term || rules.bug(Bug::CommitOldTerm)) {
            new_commit = n;
        }
    }
    if new_commit > s.commit {
        commit_to(s, rules, new_commit)
    } else {
        vec![]
    }
}

/// Commits up to `index` and applies the newly committed entries in order
/// (Figure 2, All Servers: "If commitIndex > lastApplied: increment
/// lastApplied, apply log[lastApplied] to state machine"). A leader answers
/// each applied command's client; the replies are returned.
pub fn commit_to(s: &mut Server, rules: &Rules, index: Index) -> Vec<(Dest, Msg)> {
    let mut replies = vec![];
    for i in (s.commit + 1)..=index {
        let entry = *s.log.entry(i).expect("committed entries are in the log");
        let before = s.sm.config;
        let applied = s.sm.apply(&entry.cmd, !rules.bug(Bug::NoDedup));
        if let Some(m) = entry.cmd.membership() {
            // A configuration entry: no client to answer.
            membership::applied(s, rules, before, m);
            continue;
        }
        if applied.duplicate {
            s.ghost |= ghost::DEDUPLICATED;
        }
        if s.role == Role::Leader {
            replies.push((
                Dest::Client(entry.cmd.client),
                Msg::Reply {
                    seq: entry.cmd.seq,
                    result: applied.result,
                },
            ));
        }
    }
    s.commit = index;
    membership::step_down_if_removed(s, rules);
    replies
}
