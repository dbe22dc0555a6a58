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

use std::collections::BTreeMap;

use raft_model::server::Rules;
use raft_model::types::{Members, Msg};
use raft_trace as rt;

use super::Violation;
use dispatch::{Ctx, NodeReplay};
pub use preconditions::{MAX_ENTRY_COUNT, MAX_NUMBER};
pub use report::{ReplayError, ReplayStats};

/// Why the replay cannot tell which configuration an entry of `e` sets, if
/// it cannot. With feature membership or config-on-apply, every entry must
/// show its contents and every configuration entry its voters; without, a
/// configuration entry that changes who votes is one the replay cannot
/// follow (the semantics it would need is not declared).
fn unreadable_config(e: &rt::NodeEvent, rules: &Rules) -> Option<String> {
    let entries = |es: &Option<Vec<rt::Entry>>| {
        es.iter()
            .flatten()
            .find_map(|x| unreadable_entry(x.data.as_ref(), rules))
    };
    match &e.event {
        rt::Event::Init(i) => entries(&i.entries),
        rt::Event::Append(a) => entries(&a.entries),
        rt::Event::Send(m) | rt::Event::Receive(m) => match &m.msg.rpc {
            rt::Rpc::AppendEntries { entries: es, .. } => entries(es),
            rt::Rpc::Propose { entries: es } => es
                .iter()
                .flatten()
                .find_map(|d| unreadable_entry(Some(d), rules)),
            _ => None,
        },
        _ => None,
    }
}

/// [`unreadable_config`] of one entry's contents.
fn unreadable_entry(d: Option<&rt::EntryData>, rules: &Rules) -> Option<String> {
    let config = d.and_then(convert::trace_config);
    if rules.membership {
        match (d, config) {
            (None, _) => {
                return Some(
                    "an entry whose contents are not logged may be a configuration entry, \
                     so the configuration in use is unknown"
                        .into(),
                )
            }
            (Some(d), Some(None)) => {
                return Some(format!(
                    "a configuration entry that does not name its voters (or names a node \
                     outside 1..={}): {}; with feature membership or config-on-apply every \
                     configuration entry must say whom it makes voters and learners",
                    rules.servers,
                    serde_json::to_string(d).unwrap_or_default()
                ))
            }
            _ => {}
        }
    } else if let Some(Some(m)) = config {
        if m != rules.initial {
            return Some(format!(
                "a configuration entry changes the membership to {}, and the trace \
                 declares neither feature membership nor config-on-apply, so the replay \
                 cannot tell when it takes effect; declare one (the header's \"features\", \
                 or --features)",
                m
            ));
        }
    }
    None
}

/// Why a candidate's configuration is unknown, if it is: it comes from a
/// snapshot whose state machine the trace does not show (with
/// config-on-apply, or when no configuration entry follows the snapshot).
/// Asked when a step begins (`NodeReplay::next_step`), of the candidates
/// the previous step's checkpoint kept: one the trace then rules out (an
/// install the node did not make) never decides anything.
fn snapshot_config_unknown(c: &frontier::Cand, rules: &Rules) -> Option<String> {
    if c.sm_known || c.config_known {
        return None;
    }
    let from_log =
        !rules.config_on_apply && c.s.log.entries.iter().any(|e| e.cmd.membership().is_some());
    (!from_log).then(|| {
        "the configuration in use comes from a state machine (a snapshot) whose contents \
         the trace does not show"
            .to_string()
    })
}

/// Why a trace that declares feature membership or config-on-apply cannot
/// be replayed, if it cannot: the model's configurations hold node ids 1 to
/// [`Members::MAX`]; the replay must read every configuration entry as a
/// leader appends it, and with config-on-apply see when a node applies it.
fn membership_unreplayable(header: &rt::Header, rules: &Rules) -> Option<String> {
    let n = header.nodes.len() as u64;
    let events = &header.observes.events;
    if n > Members::MAX {
        Some(format!(
            "with feature membership or config-on-apply the replay holds configurations of at \
             most {} nodes; this trace has {n}",
            Members::MAX
        ))
    } else if header.observes.entries != rt::EntryDetail::Full {
        Some(
            "with feature membership or config-on-apply the replay reads configuration \
             entries, so it needs entries observed in full (\"observes\": {\"entries\": \
             \"full\"})"
                .to_string(),
        )
    } else if !events.contains(&rt::EventType::Append) {
        Some(
            "with feature membership or config-on-apply the replay reads a leader's \
             configuration entries as it appends them, so it needs `append` events observed"
                .to_string(),
        )
    } else if rules.config_on_apply && !events.contains(&rt::EventType::Apply) {
        Some(
            "with feature config-on-apply a node uses the last configuration it applied, \
             so the replay needs `apply` events observed"
                .to_string(),
        )
    } else {
        None
    }
}

/// The default window: the model messages of how many of the latest sends
/// the replay keeps (see [`Replay::with_window`]).
pub const MESSAGE_WINDOW: usize = 1 << 16;

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
    /// data is the sender's snapshot, unknown where the sender's is). Where
    /// the network does not duplicate, a message is forgotten once it has
    /// been received: the table holds the messages in flight, not every
    /// message of the run. Boxed: the table of a long run grows by doubling,
    /// and each growth writes every entry to fresh memory again.
    messages: ahash::AHashMap<(rt::NodeId, u64), Box<(Msg, dispatch::Known)>>,
    duplication: bool,
    /// The latest sends, oldest first: only the model messages of the
    /// latest `window` sends are kept (so that messages the network lost,
    /// or may duplicate, do not pile up). A receive of an older message is
    /// replayed from the message as the trace logs it, as if its send had
    /// not been seen: less is known of what it carries, nothing is assumed.
    latest: std::collections::VecDeque<(rt::NodeId, u64)>,
    window: usize,
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
        // Membership (features membership, config-on-apply): the header's
        // initial configuration, and configuration entries that name their
        // voters, change who votes. Without either feature the membership
        // is static: every node votes.
        let all_vote =
            header.voters.is_none() && header.learners.as_deref().is_none_or(|l| l.is_empty());
        let mut no_verdict = n > 0 && !contiguous;
        let mut disabled = disabled;
        if disabled.is_none() {
            let why = if rules.membership {
                membership_unreplayable(header, &rules)
            } else if !all_vote {
                Some(
                    "the header's initial configuration (\"voters\", \"learners\") is not \
                     every node voting, and the trace declares neither feature membership nor \
                     config-on-apply, so the replay cannot tell when a configuration takes \
                     effect; declare one (the header's \"features\", or --features)"
                        .to_string(),
                )
            } else {
                None
            };
            if let Some(why) = why {
                disabled = Some(why);
                no_verdict = true;
            } else if rules.membership {
                let nodes = &header.nodes;
                rules.initial = convert::membership(
                    header.voters.as_deref().unwrap_or(nodes),
                    header.learners.as_deref().unwrap_or_default(),
                    &[],
                )
                .expect("ids checked by membership_unreplayable");
            }
        }
        let figure2 = Rules {
            initial: rules.initial,
            membership: rules.membership,
            config_on_apply: rules.config_on_apply,
            ..Rules::new(servers)
        };
        Ok(Replay {
            no_verdict,
            ctx: Ctx {
                rules,
                figure2: (rules.features() != figure2.features()).then_some(figure2),
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
            messages: ahash::AHashMap::new(),
            duplication: header.network.duplication,
            latest: std::collections::VecDeque::new(),
            window: MESSAGE_WINDOW,
        })
    }

    /// The same replay, keeping the model messages of the latest `window`
    /// sends only.
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
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
        if let Some(why) = unreadable_config(e, &ctx.rules) {
            return Err(ReplayError::Inconclusive(format!(
                "node {}: seq {}: {why}",
                e.node, e.seq
            )));
        }
        let messages = &mut self.messages;
        let mut record = None;
        {
            let recorded = |m: &rt::Message| messages.get(&(m.from, m.id)).map(|b| (**b).clone());
            let mut sent = |m: &rt::Message, msg: Msg, data_known: dispatch::Known| {
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
            messages.insert(k, Box::new(msg));
            self.latest.push_back(k);
            if self.latest.len() > self.window {
                let oldest = self.latest.pop_front().expect("more than the window");
                messages.remove(&oldest);
            }
        }
        if let (false, rt::Event::Receive(m)) = (self.duplication, &e.event) {
            // Never received again: the network check rejects a second
            // receive before the replay sees it.
            messages.remove(&(m.msg.from, m.msg.id));
        }
        if ctx.rules.membership && ctx.rules.config_on_apply && ctx.observes_apply {
            // The configuration in use is the last one the node applied,
            // which its `apply` events show (the model applies what it
            // commits at once; etcd-io/raft applies later).
            for c in &mut node.frontier {
                c.s.sm.config = c.applied_sm.config;
            }
        }
        frontier::merge_pending(&mut node.frontier);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Without duplication the table of messages holds those in flight:
    /// here the one of 15 sends never received.
    #[test]
    fn received_messages_are_forgotten_without_duplication() {
        let text = include_str!("../../../../traces/examples/election-and-commits.ndjson");
        let (header, records) = rt::read_all(text.as_bytes(), "t").unwrap();
        assert!(!header.network.duplication);
        let mut replay = Replay::new(&header, &[], DEFAULT_BUDGET).unwrap();
        let (mut sends, mut receives) = (0, 0);
        for r in records {
            if let rt::Record::Node(e) = r {
                sends += usize::from(matches!(e.event, rt::Event::Send(_)));
                receives += usize::from(matches!(e.event, rt::Event::Receive(_)));
                replay.step(&e).unwrap();
            }
        }
        assert_eq!((sends, receives), (15, 14));
        assert_eq!(replay.messages.len(), 1);
        // With duplication every message stays.
        let mut header = header;
        header.network.duplication = true;
        let (_, records) = rt::read_all(text.as_bytes(), "t").unwrap();
        let mut replay = Replay::new(&header, &[], DEFAULT_BUDGET).unwrap();
        for r in records {
            if let rt::Record::Node(e) = r {
                replay.step(&e).unwrap();
            }
        }
        assert_eq!(replay.messages.len(), 15);
    }
}
