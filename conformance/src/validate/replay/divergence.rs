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

/// What explaining a rejected step needs of one of its events. One is kept
/// for every event of a step, so it is small: no entries, no message.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    seq: u64,
    /// Whether the checkpoint folded the event (a step's cause is not).
    folded: bool,
    /// The commit index it shows ([`shown_commit`]).
    commit: Option<Index>,
    /// A truncation's first removed index.
    truncate_from: Option<Index>,
    /// The log indexes it writes.
    writes: Writes,
    /// The last index its post shows.
    last_index: Option<Index>,
}

#[derive(Debug, Clone, Copy)]
enum Writes {
    Nothing,
    /// `count` entries from `index` on (`None`: an unknown number).
    Append {
        index: Index,
        count: Option<u64>,
    },
    /// Any index (an install, a snapshot, a restart).
    Any,
}

impl Seen {
    pub(super) fn of(e: &rt::NodeEvent, folded: bool) -> Seen {
        Seen {
            seq: e.seq,
            folded,
            commit: shown_commit(e),
            truncate_from: match &e.event {
                rt::Event::Truncate(t) => Some(t.from),
                _ => None,
            },
            writes: match &e.event {
                rt::Event::Append(a) => Writes::Append {
                    index: a.index,
                    count: a
                        .entries
                        .as_ref()
                        .map(|es| es.len() as u64)
                        .or(a.entry_count),
                },
                rt::Event::Install(_) | rt::Event::Snapshot(_) | rt::Event::Init(_) => Writes::Any,
                _ => Writes::Nothing,
            },
            last_index: e.post.as_ref().and_then(|p| p.last_index),
        }
    }

    /// Whether the event writes index `g` of the log (an append of unknown
    /// length may).
    fn writes(&self, g: Index) -> bool {
        match self.writes {
            Writes::Append {
                index,
                count: Some(n),
            } => index <= g && g < index + n,
            Writes::Append { index, count: None } => index <= g,
            Writes::Any => true,
            Writes::Nothing => false,
        }
    }
}

/// The divergence of a step none of `rejected` explains; `window` is the
/// step's events, `append_end` the last index the AppendEntries the step
/// received reaches.
pub(super) fn find(
    rejected: &[Cand],
    window: &[Seen],
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
        events: window.iter().map(|e| e.seq).collect(),
        culprit: culprit.map(|(k, why)| (window[k].seq, why)),
    })
}

/// The earliest event of the step that rules out candidate `c`: a commit
/// past what the rule allows it (a commit index never decreases), or a
/// truncation of an entry the rule keeps that no later append of the step
/// writes again.
fn first_departure(
    c: &Cand,
    window: &[Seen],
    append_end: Option<Index>,
    ctx: &Ctx,
) -> Option<(usize, String)> {
    let allowed = allowed_commit(c);
    // The node's last index as the step's events showed it so far.
    let mut last_index: Option<Index> = None;
    for (k, e) in window.iter().enumerate() {
        // A step's cause is not the step's doing (its post shows the state
        // the step starts from).
        if e.folded && ctx.observes_commit {
            if let Some(commit) = e.commit.filter(|&x| x > allowed) {
                let mut why = format!(
                    "commit index {commit}, where the step's rule allows at most {allowed}"
                );
                if let Some(more) = old_term(&c.s, &ctx.rules, commit, true) {
                    why += &format!(": {more}");
                }
                return Some((k, why));
            }
        }
        if let (true, Some(from), Some(end), Some(before)) =
            (e.folded, e.truncate_from, append_end, last_index)
        {
            // The rule leaves the entries past the message's last as they
            // were: one the node held and the candidate still has is kept.
            let g = from.max(end + 1);
            let kept = g <= before && g <= c.s.log.last_index() && g > c.s.log.snapshot_index;
            let rewritten = window[k + 1..].iter().any(|later| later.writes(g));
            if kept && !rewritten {
                let term = c.s.log.term_at(g).unwrap_or(0);
                let why = if from > end {
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
                        from
                    )
                };
                return Some((k, why));
            }
        }
        // What the node's log is known to hold after this event.
        if let Some(from) = e.truncate_from {
            last_index = Some(from.saturating_sub(1));
        }
        if let Writes::Append {
            index,
            count: Some(n @ 1..),
        } = e.writes
        {
            last_index = Some(index + n - 1);
        }
        if let Some(li) = e.last_index {
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
