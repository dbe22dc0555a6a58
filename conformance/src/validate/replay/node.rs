//! One node's replay: a frontier of candidate model states, each advanced by
//! the model's rule functions, and pruned by what the trace shows.
//!
//! Events are grouped into steps. A step starts with a *cause* (an `init`, a
//! `timeout`, a `receive`; and for a leader each `append`, which stands for
//! a client request) and runs until the next cause of the same node. The
//! cause selects the model rule; the events that follow are its *effects*
//! (role, truncate, append, commit, persist, send, install), reported one at
//! a time in whatever order the implementation performs them. Sends are
//! matched against the rule's sends as they happen; the state the effects
//! leave is compared with the rule's resulting state at the end of the step
//! (the *checkpoint*), field by field, for every field the trace shows.
//! Applies and snapshots may lag behind commits, so they are checked on
//! their own against the model's log and state machine.

use raft_model::rules::{self, clients, elections, replication, snapshots, Step};
use raft_model::server::{Log, Persistent, Rules, Server};
use raft_model::state_machine::StateMachine;
use raft_model::types::{Dest, Index, Msg, NodeId, Role, Term};
use raft_trace as rt;

use super::convert;
use crate::validate::Violation;

/// How many unsent messages of earlier steps a candidate remembers.
const MAX_PENDING: usize = 256;

/// One model state the node may be in, with what the replay tracks beside
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Cand {
    pub s: Server,
    /// Commit index and state machine before this step's rule ran: the
    /// model commits eagerly; when the trace commits less, the replay lowers
    /// the candidate's commit back from here.
    base_commit: Index,
    base_sm: StateMachine,
    /// Messages the rules sent that the trace has not shown yet.
    /// The flag marks replies to a request of an older term, whose index
    /// the (newer-term) receiver ignores: only their term is compared.
    pending: Vec<(NodeId, Msg, bool)>,
    /// Index of the last entry the trace applied, and the state machine
    /// after it (the model's own, fed with the same entries).
    applied: Index,
    applied_sm: StateMachine,
    /// False once the state machine came from data the trace does not show.
    sm_known: bool,
    /// The highest commit index the model's rules have reached on this node
    /// (before lowering it to what the node did): those entries are
    /// committed, so the node may commit up to it later (once its own write
    /// is durable, say), or resume from it after a restart when it keeps its
    /// commit index on disk (as etcd's HardState does).
    justified: Index,
    /// The state in which the node last was leader, kept when it stepped
    /// down: replication messages it built then may leave later.
    last_leader: Option<Box<Server>>,
}

impl Cand {
    fn new(s: Server) -> Cand {
        Cand {
            base_commit: s.commit,
            base_sm: s.sm.clone(),
            applied: s.commit,
            applied_sm: s.sm.clone(),
            s,
            pending: Vec::new(),
            sm_known: true,
            justified: 0,
            last_leader: None,
        }
    }

    /// Adopts a rule's result as the state of a new step.
    fn take(&mut self, step: Step, free: bool) {
        self.base_commit = self.s.commit;
        self.base_sm = self.s.sm.clone();
        let old = std::mem::replace(&mut self.s, step.state);
        self.justified = self.justified.max(self.s.commit);
        if old.role == Role::Leader && self.s.role != Role::Leader {
            self.last_leader = Some(Box::new(old));
        }
        // An implementation may hold a step's messages back (until its state
        // is durable, say) and send them after later steps: to the model
        // that is network delay. The oldest are forgotten past a bound.
        self.pending
            .extend(step.sends.into_iter().filter_map(|(to, m)| match to {
                Dest::Server(j) => Some((j, m, free)),
                Dest::Client(_) => None,
            }));
        if self.pending.len() > MAX_PENDING {
            let excess = self.pending.len() - MAX_PENDING;
            self.pending.drain(..excess);
        }
    }
}

/// What the trace has said about the node since the step began.
#[derive(Debug, Default)]
struct View {
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
    fn fold(&mut self, e: &rt::NodeEvent) {
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
        if let Some(p) = &e.post {
            self.fold_post(p);
        }
    }

    fn fold_post(&mut self, p: &rt::PostState) {
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

/// Shared context of a run's replay.
#[derive(Clone, Copy)]
pub(super) struct Ctx {
    pub rules: Rules,
    /// The same rules with [`Rules::sticky_leader`].
    pub sticky: Rules,
    /// Whether the header declares `timeout` events: when not, a `role`
    /// event to candidate stands for the election timeout.
    pub observes_timeouts: bool,
    /// Whether `apply` events are observed: when not, a node is taken to
    /// apply what it commits at once (as the model does).
    pub observes_apply: bool,
    /// Whether `commit` is observed (as events or post state): when not, the
    /// model's own commit index stands.
    pub observes_commit: bool,
}

/// The replay of one node.
#[derive(Debug, Default)]
pub(super) struct NodeReplay {
    /// The candidates; empty while the node is not being replayed (before
    /// its first `init`, and after a `gap` until it restarts).
    pub frontier: Vec<Cand>,
    /// The node is down (crashed): `frontier` is what it had before.
    down: bool,
    view: View,
    /// The rule of the current step, for rejections.
    rule: &'static str,
    /// The largest frontier seen.
    pub max_frontier: usize,
    /// Steps replayed through a model rule.
    pub steps: u64,
    /// Why the node is not being replayed, when it is not.
    pub suspended: Option<&'static str>,
}

type Outcome = Result<(), Violation>;

impl NodeReplay {
    pub fn new() -> Self {
        NodeReplay {
            suspended: Some("no init event seen yet"),
            rule: "Init",
            ..Default::default()
        }
    }

    fn active(&self) -> bool {
        !self.frontier.is_empty() && !self.down
    }

    /// Keeps the candidates `f` accepts; when none does, the first
    /// rejection is the answer.
    fn filter(&mut self, mut f: impl FnMut(&mut Cand) -> Outcome) -> Outcome {
        let mut first = None;
        self.frontier.retain_mut(|c| match f(c) {
            Ok(()) => true,
            Err(v) => {
                first.get_or_insert(v);
                false
            }
        });
        match first {
            Some(v) if self.frontier.is_empty() => Err(v),
            _ => Ok(()),
        }
    }

    /// Replaces every candidate by its successors under a rule.
    fn expand(&mut self, rule: &'static str, mut f: impl FnMut(&Cand) -> Vec<Step>) {
        self.expand_with(rule, None, &mut f)
    }

    /// [`Self::expand`] for the receive of a message of term `term`.
    fn expand_with(
        &mut self,
        rule: &'static str,
        term: Option<Term>,
        f: &mut dyn FnMut(&Cand) -> Vec<Step>,
    ) {
        self.rule = rule;
        self.steps += 1;
        let mut next: Vec<Cand> = Vec::with_capacity(self.frontier.len());
        for c in &self.frontier {
            for step in f(c) {
                let mut n = c.clone();
                n.take(step, term.is_some_and(|t| t < c.s.term));
                if !next.contains(&n) {
                    next.push(n);
                }
            }
        }
        self.frontier = next;
        self.max_frontier = self.max_frontier.max(self.frontier.len());
    }

    /// Ends the current step: the state the trace shows must be the state
    /// the rule produced.
    fn checkpoint(&mut self, ctx: &Ctx) -> Outcome {
        let view = std::mem::take(&mut self.view);
        if !self.active() {
            return Ok(());
        }
        let rule = self.rule;
        self.filter(|c| agree(c, &view, ctx, rule))
    }

    /// Checks the node's last step at the end of the trace.
    pub fn finish(&mut self, ctx: &Ctx) -> Outcome {
        self.checkpoint(ctx)
    }

    /// Folds one event of this node into the replay.
    pub fn event(
        &mut self,
        e: &rt::NodeEvent,
        ctx: &Ctx,
        sent: &mut dyn FnMut(&rt::Message, Msg),
        recorded: &dyn Fn(&rt::Message) -> Option<Msg>,
    ) -> Outcome {
        use rt::Event as E;
        // A receive or a timeout changes nothing by itself (its effects are
        // the events that follow), so its post state is the state the
        // previous step left: it belongs to that step's checkpoint.
        let pre_state = matches!(e.event, E::Receive(_) | E::Timeout(_));
        if pre_state && self.active() {
            if let Some(p) = &e.post {
                self.view.fold_post(p);
            }
        }
        match &e.event {
            E::Init(init) => {
                self.checkpoint(ctx)?;
                self.init(e.node, init)?;
            }
            E::Crash(_) => {
                // The step in progress was cut short: its posts may show a
                // state the node never finished reporting. What it sent was
                // checked; what it kept is the persistence checks' business.
                self.view = View::default();
                self.down = true;
            }
            E::Gap(_) => {
                // Events were lost: the node's state is unknown until it
                // restarts. Its messages are still checked by the network
                // and invariant checks.
                self.view = View::default();
                self.frontier.clear();
                self.suspended = Some("a gap was declared (replayed again from its next init)");
            }
            E::Timeout(t) => {
                self.checkpoint(ctx)?;
                if t.timer == rt::TimerKind::Election && self.active() {
                    let rules = &ctx.rules;
                    self.expand("ElectionTimeoutRule", |c| {
                        vec![elections::timeout(&c.s, rules)]
                    });
                } else {
                    self.rule = "HeartbeatTimeout";
                }
            }
            E::Role(r)
                if !ctx.observes_timeouts
                    && r.role == rt::Role::Candidate
                    && r.reason == rt::RoleReason::ElectionTimeout =>
            {
                // The timeout itself is not logged: this event stands for it.
                self.checkpoint(ctx)?;
                if self.active() {
                    let rules = &ctx.rules;
                    self.expand("ElectionTimeoutRule", |c| {
                        vec![elections::timeout(&c.s, rules)]
                    });
                }
            }
            E::Receive(m) => {
                self.checkpoint(ctx)?;
                if self.active() {
                    let (msg, known) = match recorded(&m.msg) {
                        Some(msg) => (msg, true),
                        None => (convert::message(&m.msg), false),
                    };
                    self.receive(&m.msg, &msg, known, ctx);
                }
            }
            E::Send(m) if self.active() => {
                let mut out = None;
                let rule = self.rule;
                self.filter(|c| {
                    let as_sent = send(c, &m.msg, rule)?;
                    out.get_or_insert(as_sent);
                    Ok(())
                })?;
                if let Some(msg) = out {
                    sent(&m.msg, msg);
                }
            }
            E::Append(a) if self.active() => {
                let rules = &ctx.rules;
                self.filter(|c| leader_append(c, a, rules))?;
            }
            E::Apply(a) if self.active() => {
                let rules = &ctx.rules;
                self.filter(|c| apply(c, a, rules))?;
            }
            E::Snapshot(s) if self.active() => {
                let observes_apply = ctx.observes_apply;
                self.filter(|c| {
                    if !observes_apply {
                        c.applied = c.s.commit;
                        c.applied_sm = c.s.sm.clone();
                    }
                    take_snapshot(c, s)
                })?;
            }
            E::Install(s) if self.active() => {
                self.filter(|c| {
                    if c.s.log.snapshot_index != s.index || c.s.log.snapshot_term != s.term {
                        return Err(Violation::new(
                            "InstallSnapshotRule",
                            format!(
                                "no snapshot installed by this step (the node's snapshot is \
                                 index {} term {}; Figure 13: a snapshot covering no more \
                                 than the commit index is ignored)",
                                c.s.log.snapshot_index, c.s.log.snapshot_term
                            ),
                            format!("installed snapshot index {} term {}", s.index, s.term),
                        ));
                    }
                    c.applied = s.index;
                    c.applied_sm = c.s.log.snapshot_data.clone();
                    Ok(())
                })?;
            }
            _ => {}
        }
        if self.active() && !pre_state {
            self.view.fold(e);
        }
        Ok(())
    }

    /// A node starts: from scratch, or from what it recovered.
    fn init(&mut self, id: NodeId, init: &rt::Init) -> Outcome {
        self.down = false;
        self.rule = "RestartRule";
        self.steps += 1;
        let fresh = init.reason == rt::InitReason::Boot || self.frontier.is_empty();
        if init.reason == rt::InitReason::Boot {
            self.frontier = vec![Cand::new(Server::new(id))];
            self.suspended = None;
            return Ok(());
        }
        // A restart: the model's recovery from the persistent state the
        // node reports. What it reports having kept is the persistence
        // checks' business; here the log's contents come from the entries
        // the init lists, or else from the model's log before the crash.
        let before = std::mem::take(&mut self.frontier);
        let (snap_index, snap_term) = init.snapshot.map_or((0, 0), |s| (s.index, s.term));
        let mut next = Vec::new();
        let mut first_err = None;
        if fresh && init.entries.is_none() && init.last_index > snap_index {
            self.frontier.clear();
            self.suspended = Some("restarted without listing its recovered entries");
            return Ok(());
        }
        let sources: Vec<Option<&Cand>> = if fresh {
            vec![None]
        } else {
            before.iter().map(Some).collect()
        };
        for old in sources {
            let old_log = old.map(|c| &c.s.log);
            let (data, known) = match old_log {
                Some(l) if l.snapshot_index == snap_index => (l.snapshot_data.clone(), true),
                _ if snap_index == 0 => (StateMachine::default(), true),
                _ => (StateMachine::default(), false),
            };
            let mut log = Log {
                snapshot_index: snap_index,
                snapshot_term: snap_term,
                snapshot_data: data,
                entries: Vec::new(),
            };
            if let Some(es) = &init.entries {
                log.entries = es.iter().map(convert::entry).collect();
            } else if let Some(ol) = old_log {
                for i in snap_index + 1..=init.last_index {
                    match ol.entry(i) {
                        Some(en) => log.entries.push(*en),
                        None => break,
                    }
                }
            }
            if log.last_index() != init.last_index || log.last_term() != init.last_term {
                first_err.get_or_insert(Violation::new(
                    "RestartRule",
                    format!(
                        "a recovered log ending at index {} term {} (what the node held \
                         before it crashed, up to the reported last index)",
                        log.last_index(),
                        log.last_term()
                    ),
                    format!(
                        "last_index {} last_term {}",
                        init.last_index, init.last_term
                    ),
                ));
                continue;
            }
            let p = Persistent {
                term: init.term,
                voted_for: init.vote,
                log,
            };
            let mut c = Cand::new(Server::recover(id, &p));
            c.sm_known = known && old.is_none_or(|o| o.sm_known);
            c.justified = old
                .map_or(0, |o| o.s.commit.max(o.justified))
                .min(c.s.log.last_index());
            if !next.contains(&c) {
                next.push(c);
            }
        }
        if next.is_empty() {
            if let Some(v) = first_err {
                return Err(v);
            }
        }
        self.frontier = next;
        self.suspended = None;
        Ok(())
    }

    fn receive(&mut self, wire: &rt::Message, msg: &Msg, known: bool, ctx: &Ctx) {
        let rules = &ctx.rules;
        let from = wire.from;
        match msg {
            Msg::InstallSnapshot { term, .. } => {
                // The rule for a whole snapshot, or for a chunk the node
                // cannot install yet: which one the node took shows in what
                // follows (an install, a reply).
                let whole = matches!(&wire.rpc, rt::Rpc::InstallSnapshot { done: true, .. });
                self.expand_with("InstallSnapshotRule", Some(*term), &mut |c| {
                    let mut steps =
                        vec![snapshots::handle_install_snapshot_chunk(&c.s, from, *term)];
                    if whole || c.s.commit >= msg_last_index(msg) || *term < c.s.term {
                        steps.push(rules::handle_message(&c.s, rules, from, msg));
                    }
                    steps
                });
                if !known {
                    for c in &mut self.frontier {
                        if c.s.log.snapshot_index == msg_last_index(msg) {
                            c.sm_known = false;
                        }
                    }
                }
            }
            _ => {
                let rule = match msg {
                    Msg::RequestVote { .. } => "RequestVoteRule",
                    Msg::RequestVoteReply { .. } => "VoteCountingRule",
                    Msg::AppendEntries { .. } => "AppendEntriesRule",
                    Msg::AppendEntriesReply { .. } => "AppendEntriesReplyRule",
                    _ => "InstallSnapshotReplyRule",
                };
                let term = msg.term();
                let sticky = &ctx.sticky;
                self.expand_with(rule, term, &mut |c| {
                    let mut steps = vec![rules::handle_message(&c.s, rules, from, msg)];
                    if matches!(msg, Msg::RequestVote { .. }) {
                        // Either vote rule: the node may refuse to vote in a
                        // term whose leader it knows.
                        let other = rules::handle_message(&c.s, sticky, from, msg);
                        if other != steps[0] {
                            steps.push(other);
                        }
                    }
                    steps
                });
            }
        }
    }
}

fn msg_last_index(m: &Msg) -> Index {
    match m {
        Msg::InstallSnapshot { last_index, .. } => *last_index,
        _ => 0,
    }
}

/// The checkpoint comparison of one candidate with what the trace showed.
fn agree(c: &mut Cand, v: &View, ctx: &Ctx, rule: &'static str) -> Outcome {
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
                    format!("of term {} {:?}", m.term, m.cmd),
                    format!("of term {} {:?}", e.term, e.data),
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
        if commit > c.s.commit
            && commit <= c.justified.min(c.s.log.last_index())
            && c.s.commit >= c.s.log.snapshot_index
        {
            replication::commit_to(&mut c.s, &ctx.rules, commit);
            c.base_commit = commit;
            c.base_sm = c.s.sm.clone();
        }
        let s = &c.s;
        if commit > s.commit {
            return Err(Violation::new(
                "CommitRule",
                format!(
                    "commit index at most {} (Figure 2: a leader commits an entry of its \
                     current term stored on a majority, and a follower up to \
                     min(leaderCommit, index of last new entry))",
                    s.commit
                ),
                format!("commit index {commit}"),
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

fn show(v: Option<NodeId>) -> String {
    v.map_or("none".into(), |n| n.to_string())
}

fn role(r: rt::Role) -> Role {
    match r {
        rt::Role::Follower => Role::Follower,
        rt::Role::Candidate => Role::Candidate,
        rt::Role::Leader => Role::Leader,
    }
}

/// A send: one the step's rule made, a leader's replication message, or a
/// candidate's retried RequestVote. Returns the message as sent, in model
/// form.
fn send(c: &mut Cand, m: &rt::Message, rule: &'static str) -> Result<Msg, Violation> {
    // The rule's own sends first.
    let mut why = None;
    for k in 0..c.pending.len() {
        let (to, ref want, free) = c.pending[k];
        if to != m.to || !convert::same_kind(want, &m.rpc) {
            continue;
        }
        match convert::sent_as(want, m, free) {
            Ok(as_sent) => {
                c.pending.remove(k);
                return Ok(as_sent);
            }
            Err(e) => {
                why.get_or_insert((raft_model::explain::message(want), e));
            }
        }
    }
    // A replication message of an earlier leadership that the node sends
    // only now is checked against the state it had as leader then (its log
    // only grew and its commit index only rose during that term).
    let justified = c.justified;
    let s = match &mut c.last_leader {
        Some(l) if c.s.role != Role::Leader || c.s.term != m.term => {
            if l.term == m.term {
                &mut **l
            } else {
                &mut c.s
            }
        }
        _ => &mut c.s,
    };
    // A heartbeat or append built before the leader compacted its log, sent
    // after: its entries are committed ones, which the global invariants
    // check; here only what the leader's state still shows.
    if let (
        rt::Rpc::AppendEntries {
            prev_index, commit, ..
        },
        Role::Leader,
    ) = (&m.rpc, s.role)
    {
        let n = m.rpc.entry_count().unwrap_or(0);
        if *prev_index < s.log.snapshot_index
            && m.term == s.term
            && *commit <= s.commit
            && prev_index + n <= s.log.last_index()
        {
            return Ok(convert::message(m));
        }
    }
    // Likewise a snapshot older than the leader's current one.
    if let (rt::Rpc::InstallSnapshot { last_index, .. }, Role::Leader) = (&m.rpc, s.role) {
        if *last_index < s.log.snapshot_index && m.term == s.term {
            return Ok(convert::message(m));
        }
    }
    let spontaneous = match (&m.rpc, s.role) {
        // Figure 2, Leaders: "send AppendEntries RPC with log entries
        // starting at nextIndex" (nextIndex is the leader's choice between
        // its snapshot and its last index + 1; heartbeats carry none);
        // Figure 13: InstallSnapshot when it is below the snapshot.
        (rt::Rpc::AppendEntries { prev_index, .. }, Role::Leader)
            if *prev_index >= s.log.snapshot_index && *prev_index <= s.log.last_index() =>
        {
            let n = m.rpc.entry_count().unwrap_or(0) as usize;
            s.next_index[(m.to - 1) as usize] = prev_index + 1;
            Some(("ReplicationRule", replication::append_entries(s, m.to, n)))
        }
        (rt::Rpc::InstallSnapshot { .. }, Role::Leader) if s.log.snapshot_index > 0 => {
            s.next_index[(m.to - 1) as usize] = s.log.snapshot_index;
            Some(("ReplicationRule", replication::append_entries(s, m.to, 0)))
        }
        // Section 5.1: servers retry RPCs that get no timely response; a
        // candidate's retry is the RequestVote of its election.
        (rt::Rpc::RequestVote { .. }, Role::Candidate) => Some((
            "ElectionTimeoutRule",
            Step {
                state: s.clone(),
                sends: vec![(
                    Dest::Server(m.to),
                    Msg::RequestVote {
                        term: s.term,
                        last_index: s.log.last_index(),
                        last_term: s.log.last_term(),
                    },
                )],
            },
        )),
        _ => None,
    };
    if let Some((srule, step)) = spontaneous {
        if let Some((_, want)) = step.sends.first() {
            // The leader may tell what it knows to be committed even when
            // the trace does not show it committing (commits unobserved, or
            // a commit index kept across a restart).
            let mut want = want.clone();
            if let Msg::AppendEntries { commit, .. } = &mut want {
                *commit = (*commit).max(justified.min(s.log.last_index()));
            }
            match convert::sent_as(&want, m, false) {
                Ok(as_sent) => return Ok(as_sent),
                Err(e) => {
                    // A leader telling followers a commit index it may not
                    // have is the commit rule's business.
                    let srule = if e.starts_with("commit") {
                        "CommitRule"
                    } else {
                        srule
                    };
                    return Err(Violation::new(
                        srule,
                        format!("{} ({e} differs)", raft_model::explain::message(&want)),
                        sent_text(m),
                    ));
                }
            }
        }
    }
    match why {
        Some((want, e)) => Err(Violation::new(
            rule,
            format!("{want} ({e} differs)"),
            sent_text(m),
        )),
        None => Err(Violation::new(
            rule,
            format!(
                "no {} from a {:?} in term {} at this point (the step's rule sends: {})",
                m.rpc.name(),
                s.role,
                s.term,
                if c.pending.is_empty() {
                    "nothing more".to_string()
                } else {
                    c.pending
                        .iter()
                        .map(|(to, m, _)| format!("{} to {to}", raft_model::explain::message(m)))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            ),
            sent_text(m),
        )),
    }
}

fn sent_text(m: &rt::Message) -> String {
    serde_json::to_string(m).unwrap_or_default()
}

/// An `append` on a leader is a client request (or the leader's no-op):
/// Figure 2, Leaders: "If command received from client: append entry to
/// local log". On other nodes it is an effect of an AppendEntries, compared
/// at the checkpoint.
fn leader_append(c: &mut Cand, a: &rt::Append, rules: &Rules) -> Outcome {
    if c.s.role != Role::Leader {
        return Ok(());
    }
    let entries: Vec<rt::Entry> = match (&a.entries, a.entry_count) {
        (Some(es), _) => es.clone(),
        (None, Some(n)) => (0..n)
            .map(|_| rt::Entry {
                term: c.s.term,
                data: None,
            })
            .collect(),
        (None, None) => vec![],
    };
    if a.index != c.s.log.last_index() + 1 {
        return Err(Violation::new(
            "ClientRequestRule",
            format!(
                "a leader appends at the end of its log (index {})",
                c.s.log.last_index() + 1
            ),
            format!("append at index {}", a.index),
        ));
    }
    for e in &entries {
        if e.term != c.s.term {
            return Err(Violation::new(
                "ClientRequestRule",
                format!("a leader's new entries carry its term {}", c.s.term),
                format!("an entry of term {}", e.term),
            ));
        }
        let cmd = convert::command(e.data.as_ref());
        let step = clients::handle_request(&c.s, rules, &cmd);
        c.s = step.state;
    }
    // A leader whose own log is a quorum commits what it appends; it may
    // announce that commit later (after its own write).
    c.justified = c.justified.max(c.s.commit);
    Ok(())
}

/// Figure 2, All Servers: "If commitIndex > lastApplied: increment
/// lastApplied, apply log[lastApplied] to state machine", through the
/// model's state machine, whose sessions decide whether a retried command is
/// a duplicate.
fn apply(c: &mut Cand, a: &rt::Apply, rules: &Rules) -> Outcome {
    if a.index != c.applied + 1 {
        // Out of order: the invariants name it. Nothing to replay.
        return Ok(());
    }
    let Some(entry) = c.s.log.entry(a.index).copied() else {
        c.applied = a.index;
        c.sm_known = false;
        return Ok(());
    };
    if entry.term != a.term {
        return Err(Violation::new(
            "ApplyRule",
            format!(
                "apply of the entry at index {} of term {}",
                a.index, entry.term
            ),
            format!("apply of term {}", a.term),
        ));
    }
    let dedup = !rules.bug(raft_model::Bug::NoDedup);
    let applied = c.applied_sm.apply(&entry.cmd, dedup);
    c.applied = a.index;
    if c.sm_known && convert::is_client_command(&entry.cmd) && a.client.is_some() {
        if (a.client, a.req) != (Some(entry.cmd.client), Some(entry.cmd.seq)) {
            return Err(Violation::new(
                "ApplyRule",
                format!(
                    "apply of client {} request {}",
                    entry.cmd.client, entry.cmd.seq
                ),
                format!("client {:?} request {:?}", a.client, a.req),
            ));
        }
        if applied.duplicate != a.duplicate {
            let session = c.applied_sm.session(entry.cmd.client).map(|s| s.seq);
            return Err(Violation::new(
                "AtMostOnce",
                if applied.duplicate {
                    format!(
                        "a duplicate: client {}'s session already covers request {} \
                         (section 8: a retried command is executed at most once)",
                        entry.cmd.client, entry.cmd.seq
                    )
                } else {
                    format!(
                        "a first execution of client {} request {} (its session was at {:?})",
                        entry.cmd.client, entry.cmd.seq, session
                    )
                },
                format!("duplicate {}", a.duplicate),
            ));
        }
    }
    Ok(())
}

/// A node compacts what it has applied (section 7): the model's snapshot
/// rule on the node's state at its applied index.
fn take_snapshot(c: &mut Cand, s: &rt::SnapshotEvent) -> Outcome {
    if s.index != c.applied {
        return Err(Violation::new(
            "SnapshotRule",
            format!(
                "a snapshot of the applied prefix (index {}; section 7: servers compact \
                 the entries their state machine has applied)",
                c.applied
            ),
            format!("snapshot at index {}", s.index),
        ));
    }
    if s.index <= c.s.log.snapshot_index {
        return Ok(());
    }
    let mut at = c.s.clone();
    at.commit = s.index;
    at.sm = c.applied_sm.clone();
    let step = snapshots::take_snapshot(&at);
    if step.state.log.snapshot_term != s.term {
        return Err(Violation::new(
            "SnapshotRule",
            format!(
                "a snapshot ending at term {} (the term of entry {})",
                step.state.log.snapshot_term, s.index
            ),
            format!("snapshot term {}", s.term),
        ));
    }
    c.s.log = step.state.log;
    Ok(())
}
