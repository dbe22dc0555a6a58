//! Where a step rejected at its checkpoint left the model: the step's
//! events are compared one by one with each candidate the checkpoint
//! rejected, and an event is named only when what it shows already rules
//! that candidate out, whatever the rest of the step does.

use raft_model::server::{Rules, Server};
use raft_model::types::{Index, Role};
use raft_trace as rt;

use super::dispatch::Ctx;
use super::frontier::Cand;
use crate::validate::Divergence;

/// The divergence of a step none of `rejected` explains; `window` is the
/// step's events (with whether the checkpoint folded them), `append_end`
/// the last index the AppendEntries the step received reaches.
pub(super) fn find(
    rejected: &[Cand],
    window: &[(rt::NodeEvent, bool)],
    append_end: Option<Index>,
    ctx: &Ctx,
) -> Option<Divergence> {
    if window.is_empty() {
        return None;
    }
    // Each candidate's first event it cannot follow: the trace has left
    // every candidate by the latest of them.
    let mut culprit: Option<(usize, String)> = None;
    for c in rejected {
        match first_departure(c, window, append_end, ctx) {
            Some((k, why)) => {
                if culprit.as_ref().is_none_or(|(j, _)| k > *j) {
                    culprit = Some((k, why));
                }
            }
            None => {
                culprit = None;
                break;
            }
        }
    }
    Some(Divergence {
        events: window.iter().map(|(e, _)| e.seq).collect(),
        culprit: culprit.map(|(k, why)| (window[k].0.seq, why)),
    })
}

/// The earliest event of the step that rules out candidate `c`: a commit
/// past what the rule allows it (a commit index never decreases), or a
/// truncation of an entry the rule keeps that no later append of the step
/// writes again.
fn first_departure(
    c: &Cand,
    window: &[(rt::NodeEvent, bool)],
    append_end: Option<Index>,
    ctx: &Ctx,
) -> Option<(usize, String)> {
    let allowed = allowed_commit(c);
    // The node's last index as the step's events showed it so far.
    let mut last_index: Option<Index> = None;
    for (k, (e, folded)) in window.iter().enumerate() {
        // A step's cause is not the step's doing (its post shows the state
        // the step starts from).
        if *folded && ctx.observes_commit {
            if let Some(commit) = shown_commit(e).filter(|&x| x > allowed) {
                let mut why = format!(
                    "commit index {commit}, where the step's rule allows at most {allowed}"
                );
                if let Some(more) = old_term(&c.s, &ctx.rules, commit, true) {
                    why += &format!(": {more}");
                }
                return Some((k, why));
            }
        }
        if let (true, rt::Event::Truncate(t), Some(end), Some(before)) =
            (*folded, &e.event, append_end, last_index)
        {
            // The rule leaves the entries past the message's last as they
            // were: one the node held and the candidate still has is kept.
            let g = t.from.max(end + 1);
            let kept = g <= before && g <= c.s.log.last_index() && g > c.s.log.snapshot_index;
            let rewritten = window[k + 1..]
                .iter()
                .any(|(later, _)| appends_at(later, g));
            if kept && !rewritten {
                let term = c.s.log.term_at(g).unwrap_or(0);
                let why = if t.from > end {
                    format!(
                        "truncates the entry at index {g} (term {term}), past the last entry \
                         the AppendEntries carries (index {end}); the rule keeps it (Figure 2: \
                         delete an existing entry only when it conflicts with a new one)"
                    )
                } else {
                    format!(
                        "truncates from index {} through the entry at index {g} (term {term}), \
                         past the last entry the AppendEntries carries (index {end}), and no \
                         later append of the step writes index {g} again; the rule keeps it \
                         (Figure 2: delete an existing entry only when it conflicts with a \
                         new one)",
                        t.from
                    )
                };
                return Some((k, why));
            }
        }
        // What the node's log is known to hold after this event.
        match &e.event {
            rt::Event::Truncate(t) => last_index = Some(t.from.saturating_sub(1)),
            rt::Event::Append(a) => {
                if let Some(n) = a
                    .entries
                    .as_ref()
                    .map(|es| es.len() as u64)
                    .or(a.entry_count)
                {
                    if n > 0 {
                        last_index = Some(a.index + n - 1);
                    }
                }
            }
            _ => {}
        }
        if let Some(li) = e.post.as_ref().and_then(|p| p.last_index) {
            last_index = Some(li);
        }
    }
    None
}

/// The highest commit index the candidate may show at the end of the
/// step: its own, or what its rules reached earlier ([`Cand::commit_late`]).
fn allowed_commit(c: &Cand) -> Index {
    let late = if c.s.commit >= c.s.log.snapshot_index {
        c.justified.min(c.s.log.last_index())
    } else {
        0
    };
    c.s.commit.max(late)
}

/// The commit index an event shows, as the checkpoint reads it.
fn shown_commit(e: &rt::NodeEvent) -> Option<Index> {
    if let rt::Event::Commit(c) = &e.event {
        return Some(c.index);
    }
    // A term bump's or an election win's post describes the step's start
    // (see `View::fold`).
    if let rt::Event::Role(r) = &e.event {
        if matches!(
            r.reason,
            rt::RoleReason::HigherTerm | rt::RoleReason::WonElection
        ) {
            return None;
        }
    }
    e.post.as_ref().and_then(|p| p.commit)
}

/// Whether an event writes index `g` of the log (an append of unknown
/// length may).
fn appends_at(e: &rt::NodeEvent, g: Index) -> bool {
    match &e.event {
        rt::Event::Append(a) => {
            match a
                .entries
                .as_ref()
                .map(|es| es.len() as u64)
                .or(a.entry_count)
            {
                Some(n) => a.index <= g && g < a.index + n,
                None => a.index <= g,
            }
        }
        rt::Event::Install(_) | rt::Event::Snapshot(_) | rt::Event::Init(_) => true,
        _ => false,
    }
}

/// Why a leader may not commit up to `commit` by counting replicas when the
/// entry there is of an earlier term (Figure 8): `None` when the
/// candidate is no leader or the entry is of its own term.
/// `full` adds how many servers hold it and the rule.
pub(super) fn old_term(s: &Server, rules: &Rules, commit: Index, full: bool) -> Option<String> {
    if s.role != Role::Leader || commit <= s.commit {
        return None;
    }
    let t = s.log.term_at(commit).filter(|&t| t < s.term)?;
    let replicas = 1 + rules
        .peers(s.id)
        .filter(|&j| {
            s.match_index
                .get((j - 1) as usize)
                .is_some_and(|&m| m >= commit)
        })
        .count();
    if !full {
        return Some(format!(
            "the entry at index {commit} is from term {t} while the leader is in term {}",
            s.term
        ));
    }
    Some(format!(
        "the entry at index {commit} is from term {t} while the leader is in term {}; \
         the leader's match indexes put it on {replicas} of {} servers, but a leader commits \
         by counting replicas only entries of its own term (Figure 2; section 5.4.2, \
         Figure 8), and an earlier term's entries only with a later entry of its own",
        s.term, rules.servers
    ))
}
