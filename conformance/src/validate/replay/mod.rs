//! Replay of every node's events through the model's own rule functions
//! (`raft_model::rules`, the code the stateright actors run): each step an
//! implementation took must be one the specification allows.
//!
//! Per node the replay keeps a *frontier*: the model states the node may be
//! in given what the trace shows. With every event and state field observed
//! the frontier holds one state. A trace that logs less leaves fields unknown;
//! they are simply not compared, and where the trace cannot tell which rule
//! a node took (a snapshot chunk the node may or may not have been able to
//! install), the frontier holds each possibility until later events rule it
//! out. A frontier larger than the budget makes the run inconclusive.
//!
//! Messages link the nodes: the replay of a send records the model message
//! it stands for (with the sender's model entries and snapshot), and the
//! receive of that message replays exactly that message.
//!
//! Where each part lives:
//! - [`dispatch`]: one node's replay; which model rule each event stands for
//!   (causes start a step, effects are checked against it), restarts.
//! - [`frontier`]: the candidate model states and how rules expand them
//!   (without duplicates) and checks prune them.
//! - [`checkpoint`]: what the trace showed during a step, compared with the
//!   rule's resulting state when the step ends.
//! - [`effects`]: sends, a leader's appends, applies, snapshots and installs,
//!   checked as they happen.
//! - [`convert`]: between `raft-trace/1` values and the model's types.
//! - [`preconditions`]: what the model's rules assume of their inputs,
//!   checked before they are called (a broken assumption is an invalid step
//!   or an inconclusive run, never a crash).
//! - [`report`]: why a replay stopped and what it did.

mod checkpoint;
mod convert;
mod dispatch;
mod divergence;
mod effects;
mod frontier;
mod preconditions;
mod report;

use std::collections::{BTreeMap, HashMap};

use raft_model::server::Rules;
use raft_model::types::Msg;
use raft_trace as rt;

use super::Violation;
use dispatch::{Ctx, NodeReplay};
pub use preconditions::{MAX_ENTRY_COUNT, MAX_NUMBER};
pub use report::{ReplayError, ReplayStats};

/// The default bound on a node's frontier.
pub const DEFAULT_BUDGET: usize = 256;

/// The replay of one run.
pub struct Replay {
    /// The rules and what the header says is observed.
    ctx: Ctx,
    disabled: Option<String>,
    /// Set when the replay is off for a reason that leaves the run without
    /// a verdict (inconclusive), not merely less checked.
    no_verdict: bool,
    budget: usize,
    nodes: BTreeMap<rt::NodeId, NodeReplay>,
    /// The model message each replayed send stands for, by (from, id), and
    /// whether the state machine it carries is known (an InstallSnapshot's
    /// data is the sender's snapshot, unknown where the sender's is).
    messages: HashMap<(rt::NodeId, u64), (Msg, bool)>,
}

impl Replay {
    /// A replay of a run with `header`, against the specification with the
    /// header's features and `features` switched on.
    pub fn new(
        header: &rt::Header,
        features: &[String],
        budget: usize,
    ) -> Result<Self, raft_model::UnknownFeature> {
        let n = header.nodes.len() as u64;
        let events = &header.observes.events;
        // Any order of the ids 1..=n is fine (the model numbers them so).
        let mut ids = header.nodes.clone();
        ids.sort_unstable();
        let contiguous = ids.iter().copied().eq(1..=n);
        let disabled = if n == 0 {
            Some("the header lists no nodes".to_string())
        } else if !contiguous {
            Some(format!(
                "the model numbers nodes 1..={n}; this trace's nodes are {:?}, so its \
                 events cannot be replayed through the model",
                header.nodes
            ))
        } else if !events.contains(&rt::EventType::Init)
            || !events.contains(&rt::EventType::Receive)
        {
            Some("the header does not declare init and receive events observed".to_string())
        } else {
            None
        };
        // The features the trace may use: those the header declares and
        // those given here; a header that declares none (no `features`
        // field) leaves them unknown, so every one is allowed.
        let servers = n.max(1);
        let mut rules = match (&header.features, features.is_empty()) {
            (None, true) => Rules::all_features(servers),
            _ => Rules::new(servers),
        };
        for f in header.features.iter().flatten().chain(features) {
            rules.with_feature(f)?;
        }
        // raft-trace/1 has static membership: configuration entries are
        // replicated and applied, never interpreted, so the model's
        // membership semantics (which read them) stay off in the replay.
        rules.membership = false;
        rules.config_on_apply = false;
        Ok(Replay {
            no_verdict: n > 0 && !contiguous,
            ctx: Ctx {
                rules,
                figure2: (!rules.features().is_empty()).then(|| Rules::new(servers)),
                sticky: Rules {
                    sticky_leader: true,
                    ..rules
                },
                observes_timeouts: events.contains(&rt::EventType::Timeout),
                observes_apply: events.contains(&rt::EventType::Apply),
                observes_commit: events.contains(&rt::EventType::Commit)
                    || header.observes.state.contains(&rt::StateField::Commit),
                observes_append: events.contains(&rt::EventType::Append),
                observes_snapshot: events.contains(&rt::EventType::Snapshot),
                observes_install: events.contains(&rt::EventType::Install),
            },
            disabled,
            budget,
            nodes: header
                .nodes
                .iter()
                .map(|&id| (id, NodeReplay::new()))
                .collect(),
            messages: HashMap::new(),
        })
    }

    /// Replays one node event.
    pub fn step(&mut self, e: &rt::NodeEvent) -> Result<(), ReplayError> {
        if self.disabled.is_some() {
            return Ok(());
        }
        let ctx = self.ctx;
        let Some(node) = self.nodes.get_mut(&e.node) else {
            return Ok(());
        };
        let messages = &mut self.messages;
        let mut record = None;
        {
            let recorded = |m: &rt::Message| messages.get(&(m.from, m.id)).cloned();
            let mut sent = |m: &rt::Message, msg: Msg, data_known: bool| {
                record = Some(((m.from, m.id), (msg, data_known)))
            };
            // What the model's rules assume of their inputs is checked
            // before they are called (see `preconditions`).
            let forgot = node.frontier.iter().any(|c| c.forgot_pending);
            // A send of a leadership the replay no longer remembers.
            let forgot_leader = match &e.event {
                rt::Event::Send(m) => {
                    matches!(
                        m.msg.rpc,
                        rt::Rpc::AppendEntries { .. }
                            | rt::Rpc::InstallSnapshot { .. }
                            | rt::Rpc::Heartbeat { .. }
                    ) && node
                        .frontier
                        .iter()
                        .any(|c| m.msg.term > 0 && m.msg.term <= c.forgot_leadership)
                }
                _ => false,
            };
            match node.event(e, &ctx, &mut sent, &recorded) {
                // A send the replay might have matched with a message it
                // forgot: no verdict rather than a false alarm.
                Err(ReplayError::Violation(v))
                    if forgot && matches!(e.event, rt::Event::Send(_)) =>
                {
                    return Err(ReplayError::Inconclusive(format!(
                        "node {}: the send at seq {} matches none of the messages the replay \
                         remembers, and it forgot some ({} held back by one candidate); \
                         it would otherwise be rejected with {}",
                        e.node,
                        e.seq,
                        frontier::MAX_PENDING,
                        v.rule
                    )));
                }
                Err(ReplayError::Violation(v)) if forgot_leader => {
                    return Err(ReplayError::Inconclusive(format!(
                        "node {}: the send at seq {} may be a message of a leadership older \
                         than the {} the replay remembers; it would otherwise be rejected \
                         with {}",
                        e.node,
                        e.seq,
                        frontier::MAX_PAST_LEADERSHIPS,
                        v.rule
                    )));
                }
                r => r?,
            }
        }
        if let Some((k, msg)) = record {
            messages.insert(k, msg);
        }
        if node.frontier.len() > self.budget {
            return Err(ReplayError::Inconclusive(format!(
                "node {}: {} candidate states after seq {} exceed the frontier budget of {} \
                 (log more of the state: see traces/SCHEMA.md, \"What a checker can check\")",
                e.node,
                node.frontier.len(),
                e.seq,
                self.budget
            )));
        }
        Ok(())
    }

    /// Ends the replay: the last step of every node is checked like any
    /// other. Returns the node whose last step is wrong, with the violation.
    pub fn finish(&mut self) -> Result<(), (rt::NodeId, Violation)> {
        if self.disabled.is_some() {
            return Ok(());
        }
        let ctx = self.ctx;
        for (&id, node) in &mut self.nodes {
            node.finish(&ctx).map_err(|v| (id, v))?;
        }
        Ok(())
    }

    /// Why the run can have no verdict although nothing was violated: the
    /// replay, which most rules rest on, could not run at all.
    pub fn no_verdict(&self) -> Option<&str> {
        self.disabled.as_deref().filter(|_| self.no_verdict)
    }

    pub fn stats(&self) -> ReplayStats {
        ReplayStats {
            enabled: self.disabled.is_none(),
            note: self.disabled.clone(),
            steps: self.nodes.values().map(|n| n.steps).sum(),
            max_frontier: self
                .nodes
                .values()
                .map(|n| n.max_frontier)
                .max()
                .unwrap_or(0),
            suspended: self
                .nodes
                .iter()
                .filter_map(|(&id, n)| n.suspended.clone().map(|r| (id, r)))
                .collect(),
        }
    }
}
