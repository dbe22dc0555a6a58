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

use raft_model::rules::{self, elections, snapshots, Step};
use raft_model::server::{Log, Persistent, Rules, Server};
use raft_model::state_machine::StateMachine;
use raft_model::types::{CommitInfo, Dest, Index, Msg, NodeId, Role};
use raft_trace as rt;

use super::checkpoint::View;
use super::convert;
use super::effects;
use super::frontier::Cand;
use super::preconditions;

/// What the replay knows of the snapshot an InstallSnapshot carries: its
/// whole state machine, or only the configuration in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Known {
    pub(super) data: bool,
    pub(super) config: bool,
}

impl Known {
    pub(super) const ALL: Known = Known {
        data: true,
        config: true,
    };
    pub(super) const NOTHING: Known = Known {
        data: false,
        config: false,
    };
}
use super::report::ReplayError;
use crate::validate::Violation;

/// Shared context of a run's replay.
#[derive(Clone, Copy)]
pub(super) struct Ctx {
    /// The rules with the features the trace may use.
    pub rules: Rules,
    /// Figure 2's rules when `rules` has features (`None` when it has none,
    /// so the same step is not computed twice): every feature is a freedom
    /// an implementation may or may not take at each step, so Figure 2's
    /// step is always allowed.
    pub figure2: Option<Rules>,
    /// The rules with [`Rules::sticky_leader`].
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
    /// Whether `append` and `snapshot` events are declared: when not, a
    /// leader's send shows the appends and snapshots it did not write.
    pub observes_append: bool,
    pub observes_snapshot: bool,
    /// Whether `install` events are declared: when not, a snapshot the
    /// InstallSnapshot rule installs is the node's applied state at once
    /// (what an `install` event would show).
    pub observes_install: bool,
}

/// The replay of one node.
#[derive(Debug, Default)]
pub(super) struct NodeReplay {
    /// The candidates; empty while the node is not being replayed (before
    /// its first `init`, and after a `gap` until it restarts).
    pub frontier: Vec<Cand>,
    /// The node is down (crashed): `frontier` is what it had before.
    pub(super) down: bool,
    pub(super) view: View,
    /// The rule of the current step, for rejections.
    pub(super) rule: &'static str,
    /// The largest frontier seen.
    pub max_frontier: usize,
    /// Steps replayed through a model rule.
    pub steps: u64,
    /// Why the node is not being replayed, when it is not.
    pub suspended: Option<String>,
    /// The commit the message of the current step carried (feature
    /// commit-any-message), for the checkpoint's explanation.
    pub(super) carried_commit: Option<CommitInfo>,
    /// The current step is an election timeout the trace logged as a
    /// `timeout` event (already replayed, whether or not the header
    /// declares such events): its `role` event does not stand for another.
    pub(super) in_timeout_step: bool,
    /// The lowest index the node truncated its log from since its last
    /// `persist` (none: every truncation is durable). A crash may leave the
    /// older entries there on disk.
    pub(super) truncated_unsaved: Option<Index>,
    /// The events of the current step, oldest first, each with whether
    /// `view` folded it (a step's cause is shown, not folded), for a
    /// rejection at the checkpoint to say where the trace departs.
    pub(super) window: Vec<super::divergence::Seen>,
    /// An empty list whose buffer the next expansion of the frontier
    /// fills (the frontier's old buffer then takes its place).
    pub(super) spare: Vec<Cand>,
    /// The last index an AppendEntries the current step received reaches
    /// (its prev index plus its entries): the rule leaves the entries past
    /// it as they were.
    pub(super) append_end: Option<Index>,
    /// The step had more events than [`MAX_WINDOW`]: `window` holds only
    /// its first.
    pub(super) window_cut: bool,
    /// The last chunk of an InstallSnapshot the current step received, with
    /// its sender and what the replay knows of its data: an emitter may log
    /// the `install` later in the step than the receive (hashicorp/raft's
    /// state machine first applies the entries committed before, then
    /// restores the snapshot), and the candidates that did not install at
    /// the receive take the rule's install there.
    pub(super) step_snapshot: Option<(rt::NodeId, Msg, Known)>,
}

/// The most events of one step kept for a rejection's explanation.
pub(super) const MAX_WINDOW: usize = 4096;

/// The result of checking an event: a rejection when no candidate agrees.
pub(super) type Outcome = Result<(), Violation>;

impl NodeReplay {
    pub fn new() -> Self {
        NodeReplay {
            suspended: Some("no init event seen yet".to_string()),
            rule: "Init",
            ..Default::default()
        }
    }

    pub(super) fn active(&self) -> bool {
        !self.frontier.is_empty() && !self.down
    }

    /// Ends the current step (`checkpoint`) where the next one begins. With
    /// membership changes, a candidate kept whose configuration the replay
    /// does not know (it came with a snapshot whose state machine the trace
    /// does not show) cannot take a step soundly: its quorums are unknown,
    /// so the replay stops without a verdict.
    fn next_step(&mut self, ctx: &Ctx, e: &rt::NodeEvent) -> Result<(), ReplayError> {
        self.checkpoint(ctx)?;
        if !ctx.rules.membership {
            return Ok(());
        }
        match self
            .frontier
            .iter()
            .find_map(|c| super::snapshot_config_unknown(c, &ctx.rules))
        {
            Some(why) => Err(ReplayError::Inconclusive(format!(
                "node {}: at seq {}: {why}",
                e.node, e.seq
            ))),
            None => Ok(()),
        }
    }

    /// Folds one event of this node into the replay.
    pub fn event(
        &mut self,
        e: &rt::NodeEvent,
        ctx: &Ctx,
        sent: &mut dyn FnMut(&rt::Message, Msg, Known),
        recorded: &dyn Fn(&rt::Message) -> Option<(Msg, Known)>,
    ) -> Result<(), ReplayError> {
        use rt::Event as E;
        // What the model's rules assume of the event, before any sees it.
        if self.active() || matches!(e.event, E::Init(_)) {
            preconditions::event(e, ctx.rules.servers, self.rule)?;
        }
        // A receive or a timeout changes nothing by itself (its effects are
        // the events that follow), so its post state is the state the
        // previous step left: it belongs to that step's checkpoint.
        let pre_state = matches!(e.event, E::Receive(_) | E::Timeout(_));
        if pre_state || matches!(e.event, E::Init(_) | E::Crash(_) | E::Gap(_)) {
            self.in_timeout_step = false;
        }
        if pre_state && self.active() {
            if let Some(p) = &e.post {
                self.view.fold_post(p);
                self.record(e, true);
            }
        }
        // Without `append` events, a leader's post may show entries it
        // appended for clients (before this event: a step-down or a receive
        // does not append on a leader).
        let starts_with_role = matches!(&e.event, E::Role(r)
            if r.reason == rt::RoleReason::CheckQuorum
                || r.reason == rt::RoleReason::ElectionTimeout);
        if let (false, true, Some(li)) = (
            ctx.observes_append,
            self.active() && !matches!(e.event, E::Init(_)) && !starts_with_role,
            e.post.as_ref().and_then(|p| p.last_index),
        ) {
            let rules = &ctx.rules;
            self.filter(|c| effects::implied_client_entries(c, li, rules))?;
        }
        // Without `snapshot` events, a post showing a snapshot past the
        // candidate's shows one the node took before this event (an
        // install or a restart brings its own): it is taken first, as a
        // `snapshot` would have been.
        if let (false, true, Some(p)) = (ctx.observes_snapshot, self.active(), &e.post) {
            if let (Some(index), Some(term), false) = (
                p.snapshot_index,
                p.snapshot_term,
                pre_state || matches!(e.event, E::Install(_) | E::Init(_)),
            ) {
                let observes_apply = ctx.observes_apply;
                let rules = &ctx.rules;
                self.filter(|c| {
                    if index <= c.s.log.snapshot_index {
                        return Ok(());
                    }
                    if !observes_apply {
                        effects::applied_up_to(c, index, rules);
                    }
                    effects::take_snapshot(c, &rt::SnapshotEvent { index, term }, rules)
                })?;
            }
        }
        match &e.event {
            E::Truncate(t) => {
                let from = self.truncated_unsaved.map_or(t.from, |f| f.min(t.from));
                self.truncated_unsaved = Some(from);
            }
            E::Persist(_) => self.truncated_unsaved = None,
            _ => {}
        }
        match &e.event {
            E::Init(init) => {
                self.next_step(ctx, e)?;
                let truncated = self.truncated_unsaved.take();
                if let (Some(from), None, rt::InitReason::Restart) =
                    (truncated, &init.entries, init.reason)
                {
                    if from <= init.last_index {
                        // The disk may hold the entries the truncation
                        // replaced, which the trace never showed.
                        self.frontier.clear();
                        self.suspended = Some(format!(
                            "restarted without listing its recovered entries, after truncating \
                             its log from {from} without a persist since (the disk may hold the \
                             entries it replaced)"
                        ));
                        return Ok(());
                    }
                }
                // The commit index the node says it recovered, if it says.
                let stated = init.commit.or(e.post.as_ref().and_then(|p| p.commit));
                self.init(e.node, init, stated, &ctx.rules)?;
            }
            E::Crash(_) => {
                // The step in progress was cut short: its posts may show a
                // state the node never finished reporting. What it sent was
                // checked; what it kept is the persistence checks' business.
                self.view = View::default();
                self.window.clear();
                self.window_cut = false;
                self.down = true;
            }
            E::Gap(g) => {
                // Events were lost: the node's state is unknown until it
                // restarts. Its messages are still checked by the network
                // and invariant checks.
                self.view = View::default();
                self.window.clear();
                self.window_cut = false;
                self.frontier.clear();
                self.suspended = Some(match &g.reason {
                    Some(why) => {
                        format!("a gap was declared: {why} (replayed again from its next init)")
                    }
                    None => "a gap was declared (replayed again from its next init)".to_string(),
                });
            }
            E::Timeout(t) => {
                self.next_step(ctx, e)?;
                if t.timer == rt::TimerKind::Election && self.active() {
                    self.in_timeout_step = true;
                    self.expand("ElectionTimeoutRule", |c| election_timeout(c, ctx));
                } else {
                    self.rule = "HeartbeatTimeout";
                }
            }
            E::Role(r)
                if !ctx.observes_timeouts
                    && !self.in_timeout_step
                    && matches!(r.role, rt::Role::Candidate | rt::Role::PreCandidate)
                    && r.reason == rt::RoleReason::ElectionTimeout =>
            {
                // The timeout itself is not logged: this event stands for it.
                self.next_step(ctx, e)?;
                if self.active() {
                    self.expand("ElectionTimeoutRule", |c| election_timeout(c, ctx));
                }
            }
            E::Role(r)
                if r.reason == rt::RoleReason::HigherTerm
                    && r.role == rt::Role::Follower
                    && ctx.rules.stale_term_step_down
                    && self.frontier.iter().any(|c| {
                        c.s.role == Role::Leader && c.s.term == r.term && c.unheeded == r.term
                    }) =>
            {
                // Feature stale-term-step-down: a leader that left a reply's
                // higher term unheeded steps down later, in its own term: a
                // step of its own, like check-quorum's.
                self.next_step(ctx, e)?;
                if self.active() {
                    let term = r.term;
                    self.expand("AppendEntriesReplyRule", |c| {
                        if c.unheeded == term {
                            vec![elections::step_down(&c.s)]
                        } else {
                            vec![Step::unchanged(&c.s)]
                        }
                    });
                }
            }
            E::Role(r) if r.reason == rt::RoleReason::CheckQuorum && ctx.rules.check_quorum => {
                // Check-quorum's step-down is a step of its own: which
                // servers the leader heard from since its last check is not
                // logged, and stepping down is always safe.
                self.next_step(ctx, e)?;
                if self.active() {
                    // Entries the leader appended before without an event.
                    if let (false, Some(li)) = (
                        ctx.observes_append,
                        e.post.as_ref().and_then(|p| p.last_index),
                    ) {
                        let rules = &ctx.rules;
                        self.filter(|c| effects::implied_client_entries(c, li, rules))?;
                    }
                    self.expand("CheckQuorumRule", |c| vec![elections::step_down(&c.s)]);
                }
            }
            E::Receive(m) => {
                self.next_step(ctx, e)?;
                if self.active() {
                    let (msg, known, data_known) = match recorded(&m.msg) {
                        Some((msg, data_known)) => (msg, true, data_known),
                        None => (convert::message(&m.msg), false, Known::NOTHING),
                    };
                    self.receive(e, &m.msg, &msg, data_known, ctx)?;
                    self.carried_commit = convert::commit_info(&m.msg);
                    // How many entries it carries: as the trace logs them,
                    // or as the model's sender built them.
                    if let (
                        Msg::AppendEntries {
                            prev_index,
                            entries,
                            ..
                        },
                        rt::Rpc::AppendEntries {
                            entries: logged,
                            entry_count,
                            ..
                        },
                    ) = (&msg, &m.msg.rpc)
                    {
                        let logged = logged.as_ref().map(|es| es.len() as Index).or(*entry_count);
                        let n = match (logged, known) {
                            (Some(n), _) => Some(n.max(entries.len() as Index)),
                            (None, true) => Some(entries.len() as Index),
                            (None, false) => None,
                        };
                        self.append_end = n.map(|n| prev_index + n);
                    }
                }
            }
            E::Send(m) if self.active() => {
                let mut out = None;
                let rule = self.rule;
                let rules = &ctx.rules;
                if !ctx.observes_append {
                    self.filter(|c| effects::implied_append(c, &m.msg, rules))?;
                }
                if !ctx.observes_snapshot {
                    let observes_apply = ctx.observes_apply;
                    self.filter(|c| effects::implied_snapshot(c, &m.msg, rules, observes_apply))?;
                }
                // The state machine an InstallSnapshot carries is the
                // sender's snapshot: known only where every candidate that
                // sent it knows its state machine and they agree on it (a
                // node that restarted from a snapshot the replay did not
                // see holds an empty stand-in for it). Its configuration
                // alone may be known: a node that restarted from a snapshot
                // whose `init` stated its configuration.
                let mut data_known = Known::ALL;
                self.filter(|c| {
                    let as_sent = effects::send(c, &m.msg, rule, rules)?;
                    if let Msg::InstallSnapshot {
                        data,
                        last_index,
                        last_term,
                        ..
                    } = &as_sent
                    {
                        let (agrees, config_agrees) = match &out {
                            Some(Msg::InstallSnapshot { data: first, .. }) => {
                                (first == data, first.config == data.config)
                            }
                            _ => (true, true),
                        };
                        // Known: the sender's current snapshot, or one it
                        // replaced that the replay remembers.
                        let known = c.snapshot_data(*last_index, *last_term).is_some();
                        let current = c.s.log.snapshot_index == *last_index
                            && c.s.log.snapshot_term == *last_term;
                        data_known.data &= known && agrees;
                        data_known.config &= (known || current && c.config_known) && config_agrees;
                    }
                    out.get_or_insert(as_sent);
                    Ok(())
                })?;
                if let Some(msg) = out {
                    sent(&m.msg, msg, data_known);
                }
            }
            E::Append(a) if self.active() => {
                let rules = &ctx.rules;
                // A commit this step showed before the append, which the
                // rules reached earlier (a leader commits once its own write
                // is durable): the append's rule sees it, as the checkpoint
                // would at the step's end. (A configuration change needs an
                // entry of the leader's term committed.)
                let shown = self.view.commit().filter(|_| ctx.observes_commit);
                self.filter(|c| {
                    if let Some(k) = shown {
                        c.commit_late(rules, k);
                    }
                    effects::leader_append(c, a, rules)
                })?;
            }
            E::Apply(a) if self.active() => {
                let rules = &ctx.rules;
                self.filter(|c| effects::apply(c, a, rules))?;
            }
            E::Snapshot(s) if self.active() => {
                let observes_apply = ctx.observes_apply;
                let rules = &ctx.rules;
                self.filter(|c| {
                    if !observes_apply {
                        // A snapshot covers applied, hence committed,
                        // entries: a commit the node kept across a restart
                        // (justified) and did not trace again comes first.
                        c.commit_late(rules, s.index);
                        effects::applied_up_to(c, s.index, rules);
                    }
                    effects::take_snapshot(c, s, rules)
                })?;
            }
            E::Install(s) if self.active() => {
                if let Some((from, msg, known)) = self.step_snapshot.take() {
                    if msg_last_index(&msg) == s.index {
                        self.late_install(from, &msg, known, ctx);
                    }
                }
                self.filter(|c| effects::install(c, s))?;
            }
            _ => {}
        }
        if self.active() && pre_state {
            // The cause of the step that begins here.
            self.record(e, false);
        }
        if self.active() && !pre_state {
            self.view.fold(e);
            self.record(e, true);
            if !ctx.observes_append && matches!(e.event, E::Truncate(_)) {
                // The appends that follow a truncation are not written: the
                // log's end is known again only where a post shows it.
                self.view.forget_last_index();
            }
        }
        Ok(())
    }

    /// Keeps an event of the current step for a rejection's explanation.
    fn record(&mut self, e: &rt::NodeEvent, folded: bool) {
        if self.window.len() < MAX_WINDOW {
            self.window.push(super::divergence::Seen::of(e, folded));
        } else {
            self.window_cut = true;
        }
    }

    /// A node starts: from scratch, or from what it recovered.
    fn init(
        &mut self,
        id: NodeId,
        init: &rt::Init,
        stated_commit: Option<Index>,
        rules: &Rules,
    ) -> Outcome {
        self.down = false;
        self.rule = "RestartRule";
        self.steps += 1;
        let mut fresh = init.reason == rt::InitReason::Boot || self.frontier.is_empty();
        // The state machine of the snapshot recovered, where the replay knows
        // it from every state the node held before the crash: a snapshot at
        // the same index (State Machine Safety: the same applied prefix).
        let snap = init.snapshot.as_ref().map_or(0, |s| s.index);
        let held = |cs: &[Cand]| -> Option<StateMachine> {
            let first = cs.first()?;
            cs.iter()
                .all(|c| {
                    c.sm_known
                        && c.s.log.snapshot_index == snap
                        && c.s.log.snapshot_data == first.s.log.snapshot_data
                })
                .then(|| first.s.log.snapshot_data.clone())
        };
        let mut cut_data = None;
        // A node may recover more than its trace showed before the crash: an
        // emitter that writes its trace after its own disk (or loses the
        // trace's tail in a power loss) leaves the last steps out. A log
        // recovered longer than every state the replay holds is taken as
        // such a cut: the node is replayed afresh from what it recovered,
        // as after a gap (the invariants still check the recovered log
        // against every other node's), keeping the state machine of the
        // snapshot it recovered where every state held agrees on it.
        if !fresh
            && self
                .frontier
                .iter()
                .all(|c| init.last_index > c.s.log.last_index())
        {
            fresh = true;
            cut_data = held(&self.frontier);
            self.frontier.clear();
        }
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
        let (snap_index, snap_term) = init.snapshot.as_ref().map_or((0, 0), |s| (s.index, s.term));
        // The configuration the recovered snapshot states, if it states one
        // the model can hold.
        let snap_config = init
            .snapshot
            .as_ref()
            .and_then(|s| s.config.as_ref())
            .and_then(|c| {
                convert::membership(
                    &c.voters,
                    c.learners.as_deref().unwrap_or_default(),
                    c.outgoing_voters.as_deref().unwrap_or_default(),
                )
            });
        let mut next = Vec::new();
        let mut first_err = None;
        if fresh && init.entries.is_none() && init.last_index > snap_index {
            self.frontier.clear();
            self.suspended = Some("restarted without listing its recovered entries".to_string());
            return Ok(());
        }
        // A node may recover an older snapshot than the one it held (a newer one it had
        // installed was not yet durable): the entries after the older snapshot are then gone
        // from every state the replay holds, and the init does not list them.
        if !fresh
            && init.entries.is_none()
            && init.last_index > snap_index
            && before.iter().all(|c| c.s.log.snapshot_index > snap_index)
        {
            self.frontier.clear();
            self.suspended = Some(
                "restarted from an older snapshot than it held, without listing its recovered \
                 entries"
                    .to_string(),
            );
            return Ok(());
        }
        let sources: Vec<Option<&Cand>> = if fresh {
            vec![None]
        } else {
            before.iter().map(Some).collect()
        };
        for old in sources {
            let old_log = old.map(|c| &c.s.log);
            let (mut data, known) = match (old_log, &cut_data) {
                (Some(l), _) if l.snapshot_index == snap_index => (l.snapshot_data.clone(), true),
                _ if snap_index == 0 => (StateMachine::default(), true),
                (None, Some(d)) => (d.clone(), true),
                _ => (StateMachine::default(), false),
            };
            // The configuration the recovered snapshot states: it must be
            // the one the replay knows the snapshot holds; where the replay
            // does not know the snapshot, it is taken as the node's.
            if let (Some(stated), true, true) = (snap_config, snap_index > 0, rules.membership) {
                let held = data.config.unwrap_or(rules.initial);
                if !known {
                    data.config = Some(stated);
                } else if held != stated {
                    first_err.get_or_insert(Violation::new(
                        "RestartRule",
                        format!(
                            "a recovered snapshot at index {snap_index} holding {} (the \
                             configuration the replay knows that snapshot to hold)",
                            held
                        ),
                        format!("snapshot configuration {}", stated),
                    ));
                    continue;
                }
            }
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
            c.config_known = c.sm_known
                || snap_config.is_some() && rules.membership
                || known && old.is_none_or(|o| o.config_known);
            // A node may recover a commit index it persisted: up to what it
            // had committed before the crash, or, when that is unknown (the
            // replay resumes after a gap or a cut trace), up to its recovered
            // log. A commit index persisted but not yet traced (the trace cut
            // just before the crash) is one step ahead of what the trace
            // showed: also up to the recovered log. Which entries are
            // committed is still checked against every other node by the
            // invariants. Where the node states the commit index it
            // recovered, that is all it knows: a later commit past it needs
            // the rules (a restarted node that became leader committed an
            // older term's entry by counting replicas, the Figure 8 bug,
            // and was let through as a commit it had kept).
            let last = c.s.log.last_index();
            c.justified = stated_commit.map_or(last, |k| k.min(last).max(c.s.commit));
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

    /// A snapshot whose state machine the replay does not know (its send
    /// was not replayed, or its sender's state machine is unknown):
    /// installed, it leaves the node's unknown, and its configuration too
    /// unless the sender's was known.
    fn snapshot_data_known(&mut self, msg: &Msg, data_known: Known) {
        if !data_known.data {
            for c in &mut self.frontier {
                if c.s.log.snapshot_index == msg_last_index(msg) {
                    c.sm_known = false;
                    c.config_known = data_known.config;
                }
            }
        }
    }

    /// The `install` of the snapshot the step received, logged after other
    /// events of the step ([`NodeReplay::step_snapshot`]): Figure 13's rule
    /// for the last chunk, taken now by the candidates that took only the
    /// chunk's at the receive; as if the message had arrived here, which a
    /// network delay allows. Candidates that installed it already stay.
    fn late_install(&mut self, from: rt::NodeId, msg: &Msg, known: Known, ctx: &Ctx) {
        let index = msg_last_index(msg);
        self.expand_with("InstallSnapshotRule", msg.term(), &mut |c| {
            if c.s.log.snapshot_index == index {
                return vec![Step::unchanged(&c.s)];
            }
            let mut steps = Vec::new();
            install_rules(&mut steps, c, ctx, from, msg);
            steps
        });
        self.snapshot_data_known(msg, known);
    }

    fn receive(
        &mut self,
        e: &rt::NodeEvent,
        wire: &rt::Message,
        msg: &Msg,
        data_known: Known,
        ctx: &Ctx,
    ) -> Result<(), ReplayError> {
        let rules = &ctx.rules;
        let from = wire.from;
        match msg {
            Msg::InstallSnapshot { term, .. } => {
                // The rule for a whole snapshot, or for a chunk the node
                // cannot install yet: which one the node took shows in what
                // follows (an install, a reply).
                let whole = matches!(&wire.rpc, rt::Rpc::InstallSnapshot { done: true, .. });
                if whole && ctx.observes_install {
                    self.step_snapshot = Some((from, msg.clone(), data_known));
                }
                self.expand_with("InstallSnapshotRule", Some(*term), &mut |c| {
                    let mut steps = vec![snapshots::handle_install_snapshot_chunk(
                        &c.s, rules, from, *term,
                    )];
                    if whole || c.s.commit >= msg_last_index(msg) || *term < c.s.term {
                        install_rules(&mut steps, c, ctx, from, msg);
                    }
                    learned(steps, wire, rules)
                });
                self.snapshot_data_known(msg, data_known);
                if !ctx.observes_install {
                    // The install the trace does not show (effects::install).
                    for c in &mut self.frontier {
                        if c.s.log.snapshot_index > c.applied {
                            c.applied = c.s.log.snapshot_index;
                            c.applied_sm = c.s.log.snapshot_data.clone();
                        }
                    }
                }
            }
            Msg::Request(_) => {
                // Feature forward-proposals: a proposal arriving changes
                // nothing by itself (no term is learned from it); what the
                // leader appends for it shows in its `append` events.
                let forward = rules.forward_proposals;
                self.expand_with("ProposeRule", None, &mut |c| {
                    if forward {
                        learned(vec![Step::unchanged(&c.s)], wire, rules)
                    } else {
                        vec![]
                    }
                });
            }
            _ => {
                let rule = match msg {
                    Msg::RequestVote { .. } => "RequestVoteRule",
                    Msg::RequestVoteReply { .. } => "VoteCountingRule",
                    Msg::AppendEntries { .. } => "AppendEntriesRule",
                    Msg::AppendEntriesReply { .. } => "AppendEntriesReplyRule",
                    Msg::PreVote { .. } => "PreVoteRule",
                    Msg::PreVoteReply { .. } => "PreVoteCountingRule",
                    Msg::Heartbeat { .. } => "HeartbeatRule",
                    Msg::HeartbeatReply { .. } => "HeartbeatReplyRule",
                    Msg::TimeoutNow { .. } => "TimeoutNowRule",
                    _ => "InstallSnapshotReplyRule",
                };
                preconditions::receive(&self.frontier, msg, rule, e)?;
                let term = msg.term();
                self.expand_with(rule, term, &mut |c| {
                    let mut steps = vec![rules::handle_message(&c.s, rules, from, msg)];
                    let mut alternative = |step: Step| {
                        if !steps.contains(&step) {
                            steps.push(step);
                        }
                    };
                    // Figure 2's own rule: each feature is a freedom.
                    if let Some(figure2) = &ctx.figure2 {
                        alternative(rules::handle_message(&c.s, figure2, from, msg));
                    }
                    // Feature stale-term-step-down: a node may also leave a
                    // reply's higher term unheeded (hashicorp/raft's
                    // heartbeat ignores it; its replication only tells the
                    // main loop, which steps a leader down later, in its own
                    // term, and nobody once that leadership is over; the
                    // late answers to a finished campaign arrive on a
                    // channel it abandoned). Like a lost reply.
                    if let Msg::AppendEntriesReply { term, .. }
                    | Msg::InstallSnapshotReply { term, .. }
                    | Msg::RequestVoteReply { term, .. } = msg
                    {
                        if rules.stale_term_step_down && *term > c.s.term {
                            alternative(Step::unchanged(&c.s));
                        }
                    }
                    // etcd-io/raft and raft-rs count only a voter's first
                    // answer in a campaign (`RecordVote`): a later answer
                    // of a voter already tallied may go uncounted, as a
                    // grant after a stale refusal of the same term does.
                    // Counting fewer votes only delays an election.
                    if let Msg::RequestVoteReply {
                        term,
                        granted,
                        commit: None,
                    }
                    | Msg::PreVoteReply {
                        term,
                        granted,
                        commit: None,
                    } = msg
                    {
                        let answered = c.s.votes.contains(&from) || c.s.rejections.contains(&from);
                        if answered && (*granted || *term <= c.s.term) {
                            alternative(Step::unchanged(&c.s));
                        }
                    }
                    if let Msg::RequestVote { term, .. } | Msg::PreVote { term, .. } = msg {
                        // Either vote rule: the node may refuse to vote in a
                        // term whose leader it knows.
                        alternative(rules::handle_message(&c.s, &ctx.sticky, from, msg));
                        // Check-quorum's leader lease: it may ignore the
                        // request altogether, unless a transfer asked for it.
                        let transfer = matches!(msg, Msg::RequestVote { transfer: true, .. });
                        if elections::may_ignore_in_lease(&c.s, rules, *term, transfer) {
                            alternative(Step::unchanged(&c.s));
                            // Or it answers with a refusal in its own, lower
                            // term, which the candidate discards as stale:
                            // no different from ignoring it (hashicorp/raft
                            // `requestVote`: "rejecting vote request since
                            // we have a leader").
                            if let Msg::RequestVote { .. } = msg {
                                let mut refused = Step::unchanged(&c.s);
                                refused.sends.push((
                                    Dest::Server(from),
                                    Msg::RequestVoteReply {
                                        term: c.s.term,
                                        granted: false,
                                        commit: None,
                                    },
                                ));
                                alternative(refused);
                            }
                        }
                    }
                    learned(steps, wire, rules)
                });
                // A leader still leading in a lower term than the reply's
                // left it unheeded (feature stale-term-step-down).
                if let (
                    true,
                    Msg::AppendEntriesReply { term, .. }
                    | Msg::InstallSnapshotReply { term, .. }
                    | Msg::RequestVoteReply { term, .. },
                ) = (rules.stale_term_step_down, msg)
                {
                    for c in &mut self.frontier {
                        if c.s.role == Role::Leader && c.s.term < *term {
                            c.unheeded = c.s.term;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Feature commit-any-message: after any rule, the receiver of a message
/// carrying its sender's commit may learn it ([`rules::learn_commit`]), or
/// not (a feature is a freedom). Without the feature, the steps as they are.
fn learned(mut steps: Vec<Step>, wire: &rt::Message, rules: &Rules) -> Vec<Step> {
    let Some(info) = convert::commit_info(wire).filter(|_| rules.commit_any_message) else {
        return steps;
    };
    for k in 0..steps.len() {
        let mut step = steps[k].clone();
        let replies = rules::learn_commit(&mut step.state, rules, info);
        step.sends.extend(replies);
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
    steps
}

/// The rules an election timeout may take: the features' (a pre-vote with
/// pre-vote on) and Figure 2's.
fn election_timeout(c: &Cand, ctx: &Ctx) -> Vec<Step> {
    let mut steps = vec![elections::timeout(&c.s, &ctx.rules)];
    if let Some(figure2) = &ctx.figure2 {
        let other = elections::timeout(&c.s, figure2);
        if other != steps[0] {
            steps.push(other);
        }
    }
    steps
}

/// Adds to `steps` Figure 13's rule for the last chunk of an
/// InstallSnapshot, under the header's features and, where it differs,
/// without them (a feature is a freedom).
fn install_rules(steps: &mut Vec<Step>, c: &Cand, ctx: &Ctx, from: rt::NodeId, msg: &Msg) {
    steps.push(rules::handle_message(&c.s, &ctx.rules, from, msg));
    if let Some(figure2) = &ctx.figure2 {
        let other = rules::handle_message(&c.s, figure2, from, msg);
        if !steps.contains(&other) {
            steps.push(other);
        }
    }
}

fn msg_last_index(m: &Msg) -> Index {
    match m {
        Msg::InstallSnapshot { last_index, .. } => *last_index,
        _ => 0,
    }
}
