//! The checkpoint at the end of a step: what the trace showed of the
//! node's state during the step ([`View`]) must be the state the step's rule
//! produced, field by field, for every field the trace shows.

use raft_model::rules::replication;
use raft_model::types::{CommitInfo, Index, NodeId, Role, Term};
use raft_trace as rt;

use super::dispatch::{Ctx, NodeReplay, Outcome};
use super::frontier::Cand;
use super::{convert, divergence, effects};
use crate::validate::Violation;

/// What the trace has said about the node since the step began.
#[derive(Debug, Default)]
pub(super) struct View {
    term: Option<Term>,
    vote: Option<Option<NodeId>>,
    role: Option<rt::Role>,
    commit: Option<Index>,
    last_index: Option<Index>,
    last_term: Option<Term>,
    snapshot: Option<(Index, Term)>,
    /// Entries appended in this step, with their indexes.
    appended: Vec<(Index, rt::Entry)>,
}

impl View {
    /// The commit index the step's `commit` events reached so far.
    pub(super) fn commit(&self) -> Option<Index> {
        self.commit
    }

    pub(super) fn fold(&mut self, e: &rt::NodeEvent) {
        match &e.event {
            rt::Event::Role(r) => {
                self.role = Some(r.role);
                self.term = Some(r.term);
            }
            rt::Event::Commit(c) => self.commit = Some(c.index),
            rt::Event::Append(a) => {
                if let Some(es) = &a.entries {
                    self.appended.retain(|(i, _)| *i < a.index);
                    for (k, en) in es.iter().enumerate() {
                        self.appended.push((a.index + k as u64, en.clone()));
                    }
                    if let Some(last) = es.last() {
                        self.last_term = Some(last.term);
                    }
                }
                let n = a
                    .entries
                    .as_ref()
                    .map(|es| es.len() as u64)
                    .or(a.entry_count);
                match n {
                    Some(n) if n > 0 => self.last_index = Some(a.index + n - 1),
                    _ => {}
                }
            }
            rt::Event::Truncate(t) => {
                self.appended.retain(|(i, _)| *i < t.from);
                self.last_index = Some(t.from - 1);
                self.last_term = None;
            }
            rt::Event::Install(s) | rt::Event::Snapshot(s) => {
                self.snapshot = Some((s.index, s.term));
            }
            _ => {}
        }
        match (&e.event, &e.post) {
            // A term bump is the first thing a step does on a message of a
            // higher term: what the rest of the step changes (a vote cast,
            // entries appended, a commit) comes after this post, so only its
            // term and role describe the step's end. Likewise a new leader's
            // post comes before the entry it appends on taking office.
            (rt::Event::Role(r), Some(p))
                if matches!(
                    r.reason,
                    rt::RoleReason::HigherTerm | rt::RoleReason::WonElection
                ) =>
            {
                if p.term.is_some() {
                    self.term = p.term;
                }
                if p.role.is_some() {
                    self.role = p.role;
                }
            }
            (_, Some(p)) => self.fold_post(p),
            (_, None) => {}
        }
    }

    pub(super) fn fold_post(&mut self, p: &rt::PostState) {
        {
            if p.term.is_some() {
                self.term = p.term;
            }
            if p.vote.is_some() {
                self.vote = p.vote;
            }
            if p.role.is_some() {
                self.role = p.role;
            }
            if p.commit.is_some() {
                self.commit = p.commit;
            }
            if p.last_index.is_some() {
                self.last_index = p.last_index;
            }
            if p.last_term.is_some() {
                self.last_term = p.last_term;
            }
            if let (Some(i), Some(t)) = (p.snapshot_index, p.snapshot_term) {
                self.snapshot = Some((i, t));
            }
        }
    }
}

impl View {
    /// The log's end is unknown (the appends after a truncation are not
    /// written).
    pub(super) fn forget_last_index(&mut self) {
        self.last_index = None;
        self.last_term = None;
    }
}

impl NodeReplay {
    /// Ends the current step: the state the trace shows must be the state
    /// the rule produced.
    pub(super) fn checkpoint(&mut self, ctx: &Ctx) -> Outcome {
        // The window is emptied for the next step, its buffer kept.
        let mut window = std::mem::take(&mut self.window);
        let outcome = self.check_step(ctx, &window);
        window.clear();
        self.window = window;
        outcome
    }

    /// [`Self::checkpoint`] with the step's events seen so far.
    fn check_step(&mut self, ctx: &Ctx, window: &[divergence::Seen]) -> Outcome {
        let view = std::mem::take(&mut self.view);
        let cut = std::mem::take(&mut self.window_cut);
        let append_end = self.append_end.take();
        self.step_snapshot = None;
        if !self.active() {
            return Ok(());
        }
        let rule = self.rule;
        let carried = self.carried_commit.take();
        // As `filter`, keeping the rejected candidates until it is known
        // whether any agrees: when none does, they say where the trace left
        // the model.
        let mut first = None;
        let rejected: Vec<Cand> = self
            .frontier
            .extract_if(.., |c| match agree(c, &view, ctx, rule, carried) {
                Ok(()) => false,
                Err(v) => {
                    first.get_or_insert(v);
                    true
                }
            })
            .collect();
        match first {
            Some(mut v) if self.frontier.is_empty() => {
                if !cut {
                    v.divergence =
                        divergence::find(&rejected, window, append_end, ctx).map(Box::new);
                }
                Err(v)
            }
            _ => Ok(()),
        }
    }

    /// Checks the node's last step at the end of the trace.
    pub fn finish(&mut self, ctx: &Ctx) -> Outcome {
        self.checkpoint(ctx)
    }
}

/// The checkpoint comparison of one candidate with what the trace showed.
fn agree(
    c: &mut Cand,
    v: &View,
    ctx: &Ctx,
    rule: &'static str,
    carried: Option<CommitInfo>,
) -> Outcome {
    // Without `snapshot` events, a post showing a snapshot past the
    // candidate's shows one the node took without an event: it is taken
    // here, as a `snapshot` would have (and checked the same way).
    if let (Some((index, term)), false) = (v.snapshot, ctx.observes_snapshot) {
        if index > c.s.log.snapshot_index {
            if !ctx.observes_apply {
                effects::applied_up_to(c, index, &ctx.rules);
            }
            effects::take_snapshot(c, &rt::SnapshotEvent { index, term }, &ctx.rules)?;
        }
    }
    let s = &c.s;
    let mismatch = |what: &str, want: String, got: String| {
        Err(Violation::new(
            rule,
            format!("{what} {want} after the step"),
            format!("{what} {got}"),
        ))
    };
    if let Some(t) = v.term {
        if t != s.term {
            return mismatch("term", s.term.to_string(), t.to_string());
        }
    }
    if let Some(vote) = v.vote {
        if vote != s.voted_for {
            return mismatch("vote", show(s.voted_for), show(vote));
        }
    }
    if let Some(r) = v.role {
        if role(r) != s.role {
            return mismatch("role", format!("{:?}", s.role), format!("{:?}", role(r)));
        }
    }
    if let Some((i, t)) = v.snapshot {
        if (i, t) != (s.log.snapshot_index, s.log.snapshot_term) {
            return mismatch(
                "snapshot",
                format!("{}/{}", s.log.snapshot_index, s.log.snapshot_term),
                format!("{i}/{t}"),
            );
        }
    }
    if let (Some(li), false) = (v.last_index, ctx.observes_append) {
        effects::implied_client_entries(c, li, &ctx.rules)?;
    }
    let s = &c.s;
    if let Some(li) = v.last_index {
        if li != s.log.last_index() {
            return mismatch(
                "last log index",
                s.log.last_index().to_string(),
                li.to_string(),
            );
        }
    }
    if let Some(lt) = v.last_term {
        if lt != s.log.last_term() {
            return mismatch(
                "last log term",
                s.log.last_term().to_string(),
                lt.to_string(),
            );
        }
    }
    for (i, e) in &v.appended {
        if *i <= s.log.snapshot_index {
            continue;
        }
        match s.log.entry(*i) {
            Some(m) if convert::entry_agrees(m, e) => {}
            Some(m) => {
                return mismatch(
                    &format!("entry at index {i}"),
                    format!("{} of term {}", convert::describe(&m.cmd), m.term),
                    convert::describe_trace(e),
                )
            }
            None => {
                return mismatch(
                    &format!("entry at index {i}"),
                    "absent".into(),
                    format!("of term {}", e.term),
                )
            }
        }
    }
    if let (Some(commit), true) = (v.commit, ctx.observes_commit) {
        c.commit_late(&ctx.rules, commit);
        let s = &c.s;
        if commit > s.commit {
            return Err(Violation::new(
                "CommitRule",
                format!(
                    "commit index at most {} (Figure 2: a leader commits an entry of its \
                     current term stored on a majority{}, and a follower up to \
                     min(leaderCommit, index of last new entry){})",
                    s.commit,
                    raft_model::rules::membership::counted(s, &ctx.rules).map_or(
                        String::new(),
                        |m| format!(" of the configuration in use, {}", m)
                    ),
                    carried.map_or(String::new(), |info| learned(s, ctx, info))
                ),
                format!(
                    "commit index {commit}{}",
                    divergence::old_term(s, &ctx.rules, commit, false)
                        .map_or(String::new(), |why| format!("; {why}"))
                ),
            ));
        }
        if commit < c.s.commit && commit >= c.base_commit && c.base_commit >= c.s.log.snapshot_index
        {
            // The node committed less than it may: lower the model's commit
            // (and its state machine) to what the node did.
            c.s.commit = c.base_commit;
            c.s.sm = c.base_sm.clone();
            if commit > c.s.commit {
                replication::commit_to(&mut c.s, &ctx.rules, commit);
            }
        }
    }
    Ok(())
}

/// Why the commit a received message carried (feature commit-any-message)
/// did not allow more.
fn learned(s: &raft_model::server::Server, ctx: &Ctx, info: CommitInfo) -> String {
    if !ctx.rules.commit_any_message {
        return format!(
            "; the message's commit {} is not a rule: feature commit-any-message is \
             not among the run's features",
            info.index
        );
    }
    format!(
        "; commit-any-message commits up to the message's commit {} only when the \
         receiver's entry there has commit_term {} (Log Matching), and its entry there \
         has term {}",
        info.index,
        info.term,
        s.log
            .term_at(info.index)
            .map_or("none".to_string(), |t| t.to_string())
    )
}

fn show(v: Option<NodeId>) -> String {
    v.map_or("none".into(), |n| n.to_string())
}

fn role(r: rt::Role) -> Role {
    match r {
        rt::Role::Follower => Role::Follower,
        rt::Role::PreCandidate => Role::PreCandidate,
        rt::Role::Candidate => Role::Candidate,
        rt::Role::Leader => Role::Leader,
    }
}
