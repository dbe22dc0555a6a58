//! Counterexamples as `raft-trace/1` files: each step of a path becomes the
//! node events (and client invoke/return events) it stands for.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path as FsPath, PathBuf};

use raft_trace as rt;
use stateright::actor::{ActorModelAction, Id};

use crate::actor::{who, NodeState, Timer, Who, Wire};
use crate::bugs::Bug;
use crate::check::{RaftPath, RunResult, Status};
use crate::config::NetworkKind;
use crate::model::RaftState;
use crate::server::{ghost, Rules, Server};
use crate::types::{read_context, Entry, Membership, Msg, Op, OpResult, Role};

/// The register's key in traces.
pub const KEY: &str = "x";

/// A model operation as a trace operation.
pub fn trace_op(op: &Op) -> rt::Op {
    match *op {
        Op::Read => rt::Op::Read { key: KEY.into() },
        Op::Write(v) => rt::Op::Write {
            key: KEY.into(),
            value: v.to_string(),
        },
        Op::Cas { from, to } => rt::Op::Cas {
            key: KEY.into(),
            from: Some(from.to_string()),
            to: to.to_string(),
        },
        // Not a client's operation: [`trace_entry`] writes a config entry.
        Op::Config(_) => rt::Op::Read { key: KEY.into() },
    }
}

/// A model configuration as a snapshot's in a trace.
fn configuration(m: Membership) -> rt::Configuration {
    rt::Configuration {
        voters: m.voters.iter().collect(),
        learners: Some(m.learners.iter().collect()),
        outgoing_voters: m.is_joint().then(|| m.outgoing.iter().collect()),
    }
}

/// A model entry as a trace entry.
pub fn trace_entry(e: &Entry) -> rt::Entry {
    if let Some(m) = e.cmd.membership() {
        return rt::Entry {
            term: e.term,
            data: Some(rt::EntryData::Config {
                voters: Some(m.voters.iter().collect()),
                learners: Some(m.learners.iter().collect()),
                outgoing_voters: m.is_joint().then(|| m.outgoing.iter().collect()),
                data: None,
            }),
        };
    }
    rt::Entry {
        term: e.term,
        data: Some(rt::EntryData::Command {
            client: e.cmd.client,
            req: e.cmd.seq,
            op: trace_op(&e.cmd.op),
        }),
    }
}

/// A server-to-server model message as a trace RPC (`None` for client traffic).
pub fn trace_rpc(m: &Msg) -> Option<rt::Rpc> {
    Some(match m {
        Msg::RequestVote {
            last_index,
            last_term,
            transfer,
            ..
        } => rt::Rpc::RequestVote {
            last_index: *last_index,
            last_term: *last_term,
            transfer: *transfer,
        },
        Msg::TimeoutNow { .. } => rt::Rpc::TimeoutNow {},
        Msg::RequestVoteReply { granted, .. } => rt::Rpc::RequestVoteReply { granted: *granted },
        Msg::AppendEntries {
            prev_index,
            prev_term,
            entries,
            commit,
            ..
        } => rt::Rpc::AppendEntries {
            prev_index: *prev_index,
            prev_term: *prev_term,
            commit: *commit,
            entries: Some(entries.iter().map(trace_entry).collect()),
            entry_count: None,
            context: None,
        },
        Msg::AppendEntriesReply { success, index, .. } => rt::Rpc::AppendEntriesReply {
            success: *success,
            match_index: success.then_some(*index),
            hint_index: (!success).then_some(*index),
            hint_term: None,
            context: None,
        },
        Msg::InstallSnapshot {
            last_index,
            last_term,
            data,
            ..
        } => rt::Rpc::InstallSnapshot {
            last_index: *last_index,
            last_term: *last_term,
            offset: 0,
            done: true,
            data: Some(serde_json::json!({ KEY: data.value })),
        },
        Msg::InstallSnapshotReply { last_index, .. } => rt::Rpc::InstallSnapshotReply {
            last_index: *last_index,
        },
        Msg::PreVote {
            last_index,
            last_term,
            ..
        } => rt::Rpc::PreVote {
            last_index: *last_index,
            last_term: *last_term,
        },
        Msg::PreVoteReply { granted, .. } => rt::Rpc::PreVoteReply { granted: *granted },
        Msg::Heartbeat { commit, ctx, .. } => rt::Rpc::Heartbeat {
            commit: *commit,
            context: *ctx,
        },
        Msg::HeartbeatReply { ctx, .. } => rt::Rpc::HeartbeatReply { context: *ctx },
        Msg::Request(_) | Msg::Reply { .. } | Msg::NotLeader { .. } => return None,
    })
}

fn trace_role(r: Role) -> rt::Role {
    match r {
        Role::Follower => rt::Role::Follower,
        Role::PreCandidate => rt::Role::PreCandidate,
        Role::Candidate => rt::Role::Candidate,
        Role::Leader => rt::Role::Leader,
    }
}

fn post(s: &Server) -> rt::PostState {
    rt::PostState {
        term: Some(s.term),
        vote: Some(s.voted_for),
        role: Some(trace_role(s.role)),
        leader: Some(s.leader),
        commit: Some(s.commit),
        applied: Some(s.commit),
        last_index: Some(s.log.last_index()),
        last_term: Some(s.log.last_term()),
        snapshot_index: Some(s.log.snapshot_index),
        snapshot_term: Some(s.log.snapshot_term),
    }
}

/// Converts a path of the model for `servers` servers into trace records.
struct Converter {
    servers: u64,
    seq: BTreeMap<u64, u64>,
    next_id: BTreeMap<u64, u64>,
    /// Ids of sent, not yet received messages, per envelope (oldest first).
    in_flight: BTreeMap<(Id, Id, Msg), Vec<u64>>,
    duplicating: bool,
    /// The rules the path was explored with (to tell how a read was served).
    rules: Rules,
    records: Vec<rt::Record>,
}

impl Converter {
    fn event(&mut self, node: u64, event: rt::Event, post_state: Option<rt::PostState>) {
        let seq = self.seq.entry(node).or_insert(0);
        *seq += 1;
        self.records.push(rt::Record::Node(Box::new(rt::NodeEvent {
            node,
            seq: *seq,
            time: None,
            event,
            post: post_state,
        })));
    }

    fn message(&self, id: u64, src: Id, dst: Id, m: &Msg) -> Option<rt::Message> {
        let (Who::Server(from), Who::Server(to)) = (who(self.servers, src), who(self.servers, dst))
        else {
            return None;
        };
        let mut msg = rt::Message::new(id, from, to, m.term()?, trace_rpc(m)?);
        if let Some(c) = m.commit_info() {
            msg.commit = Some(c.index);
            msg.commit_term = Some(c.term);
        }
        Some(msg)
    }

    /// Events for what changed on server `s` from `a` to `b`, then its sends.
    fn server_changes(&mut self, a: &Server, b: &Server, by_message: bool) {
        let node = b.id;
        if a.role != b.role || a.term != b.term && b.role != Role::Follower {
            let reason = match (a.role, b.role) {
                (Role::PreCandidate, Role::Candidate) => rt::RoleReason::PreVoteWon,
                (_, Role::Candidate) if b.transfer_campaign => rt::RoleReason::Transfer,
                (_, Role::Candidate | Role::PreCandidate) => rt::RoleReason::ElectionTimeout,
                (_, Role::Leader) => rt::RoleReason::WonElection,
                _ if b.term > a.term => rt::RoleReason::HigherTerm,
                (Role::Leader, Role::Follower) => rt::RoleReason::CheckQuorum,
                (Role::Candidate | Role::PreCandidate, Role::Follower) if b.leader.is_some() => {
                    rt::RoleReason::LeaderDiscovered
                }
                (Role::Candidate | Role::PreCandidate, Role::Follower) => {
                    rt::RoleReason::LostElection
                }
                _ => rt::RoleReason::Other,
            };
            let ev = rt::Event::Role(rt::RoleChange {
                role: trace_role(b.role),
                term: b.term,
                reason,
            });
            // The role changes before the step touches the log: the post
            // state has the new role and term with the old log and commit
            // (the append, truncate, install and commit events follow).
            let mut mid = b.clone();
            mid.log = a.log.clone();
            mid.commit = a.commit;
            self.event(node, ev, Some(post(&mid)));
        }
        let installed = b.has(ghost::INSTALLED_SNAPSHOT)
            && b.log.snapshot_index != a.log.snapshot_index
            || by_message && b.log.snapshot_index < a.log.snapshot_index;
        if installed {
            let ev = rt::Event::Install(rt::SnapshotEvent {
                index: b.log.snapshot_index,
                term: b.log.snapshot_term,
            });
            self.event(node, ev, Some(post(b)));
        } else {
            // Entries of `a` that `b` no longer holds with the same term.
            let first_diff = (a.log.snapshot_index.max(b.log.snapshot_index) + 1
                ..=a.log.last_index())
                .find(|&k| a.log.term_at(k).is_some() && a.log.entry(k) != b.log.entry(k));
            if let Some(from) = first_diff {
                // The state between the truncation and the append.
                let mut mid = b.clone();
                mid.log = a.log.clone();
                mid.log.truncate_from(from);
                self.event(
                    node,
                    rt::Event::Truncate(rt::Truncate { from }),
                    Some(post(&mid)),
                );
            }
            let from = first_diff
                .unwrap_or(a.log.last_index() + 1)
                .max(b.log.snapshot_index + 1);
            if b.log.last_index() >= from {
                let entries: Vec<rt::Entry> = b
                    .log
                    .entries_from(from, usize::MAX)
                    .iter()
                    .map(trace_entry)
                    .collect();
                let ev = rt::Event::Append(rt::Append {
                    index: from,
                    entry_count: Some(entries.len() as u64),
                    entries: Some(entries),
                });
                self.event(node, ev, Some(post(b)));
            }
        }
        if b.commit > a.commit && !installed {
            self.event(
                node,
                rt::Event::Commit(rt::Commit { index: b.commit }),
                Some(post(b)),
            );
            if self.rules.config_on_apply {
                self.applies(node, a, b);
            }
        }
        if b.log.snapshot_index > a.log.snapshot_index && !installed {
            let ev = rt::Event::Snapshot(rt::SnapshotEvent {
                index: b.log.snapshot_index,
                term: b.log.snapshot_term,
            });
            self.event(node, ev, Some(post(b)));
        }
    }

    /// The entries `b` committed after `a`, as `apply` events (a server
    /// applies what it commits at once). Written with feature
    /// config-on-apply, where the configuration in use is the last one
    /// applied and the validator needs to see it.
    fn applies(&mut self, node: u64, a: &Server, b: &Server) {
        let mut sm = a.sm.clone();
        for k in a.commit + 1..=b.commit {
            // An entry compacted in the same step is in the old log.
            let Some(e) = b.log.entry(k).or_else(|| a.log.entry(k)).copied() else {
                return;
            };
            let applied = sm.apply(&e.cmd, !self.rules.bug(Bug::NoDedup));
            let command = e.cmd.membership().is_none();
            let ev = rt::Event::Apply(rt::Apply {
                index: k,
                term: e.term,
                client: command.then_some(e.cmd.client),
                req: command.then_some(e.cmd.seq),
                duplicate: applied.duplicate,
            });
            self.event(node, ev, Some(post(b)));
        }
    }

    fn sends(&mut self, before: &RaftState, after: &RaftState) {
        for (src, dst, msg) in crate::explain::new_messages(before, after) {
            let Who::Server(from) = who(self.servers, src) else {
                continue;
            };
            let id = self.next_id.entry(from).or_insert(0);
            *id += 1;
            let id = *id;
            if let Some(m) = self.message(id, src, dst, &msg) {
                self.in_flight.entry((src, dst, msg)).or_default().push(id);
                self.event(from, rt::Event::Send(rt::MessageEvent { msg: m }), None);
            }
        }
    }

    fn step(
        &mut self,
        before: &RaftState,
        action: &ActorModelAction<Wire, Timer, ()>,
        after: &RaftState,
    ) {
        let server = |st: &RaftState, id: Id| st.actor_states[usize::from(id)].server().cloned();
        let mut client_events = vec![];
        match action {
            ActorModelAction::Deliver { src, dst, msg } => {
                if let Some(b) = server(after, *dst) {
                    let key = (*src, *dst, Msg::clone(msg));
                    let id = match self.in_flight.get_mut(&key) {
                        Some(ids) if !ids.is_empty() => {
                            if self.duplicating {
                                *ids.last().expect("not empty")
                            } else {
                                ids.remove(0)
                            }
                        }
                        _ => 0,
                    };
                    let a = server(before, *dst).expect("same actor");
                    if let Some(m) = self.message(id, *src, *dst, msg) {
                        // A receive's post is the state it arrived in: its
                        // effects are the events that follow.
                        self.event(
                            b.id,
                            rt::Event::Receive(rt::MessageEvent { msg: m }),
                            Some(post(&a)),
                        );
                    }
                    self.server_changes(&a, &b, true);
                    self.reads_served(&a, &b, msg);
                }
            }
            // A lease that ends changes nothing a trace shows.
            ActorModelAction::Timeout(_, Timer::Lease) => {}
            ActorModelAction::Timeout(id, timer) => {
                if let (Some(a), Some(b)) = (server(before, *id), server(after, *id)) {
                    let t = match timer {
                        // A transfer is an operator's request, not a timer;
                        // the leader's sends it causes are its own choice.
                        // So is a membership change (an operator's request).
                        Timer::Heartbeat
                        | Timer::Batch(_)
                        | Timer::Transfer(_)
                        | Timer::Change(_) => rt::TimerKind::Heartbeat,
                        // etcd-io/raft checks the quorum when a leader's
                        // election timeout elapses.
                        Timer::Election | Timer::CheckQuorum | Timer::Retry | Timer::Lease => {
                            rt::TimerKind::Election
                        }
                    };
                    self.event(
                        b.id,
                        rt::Event::Timeout(rt::Timeout { timer: t }),
                        Some(post(&a)),
                    );
                    self.server_changes(&a, &b, false);
                }
            }
            ActorModelAction::Crash(id) => {
                if let Some(a) = server(before, *id) {
                    self.event(a.id, rt::Event::Crash(rt::Crash {}), None);
                }
            }
            ActorModelAction::Recover(id) => {
                if let Some(b) = server(after, *id) {
                    self.init(&b, rt::InitReason::Restart);
                }
            }
            ActorModelAction::Drop(_) | ActorModelAction::SelectRandom { .. } => {}
        }
        self.sends(before, after);
        // Client history: invocations and returns recorded by the model.
        let (h0, h1) = (&before.history, &after.history);
        for c in 0..h1.invoked.len() {
            let client = c as u64 + 1;
            if h1.invoked[c] > h0.invoked[c] {
                client_events.push(invoke(self.servers, after, client, h1.invoked[c]));
            }
            if h1.returned[c] > h0.returned[c] {
                if let Some(Msg::Reply { result, .. }) = crate::check::delivered(action) {
                    let (status, value) = match result {
                        OpResult::Read(v) => (rt::Status::Ok, Some(v.to_string())),
                        OpResult::Write => (rt::Status::Ok, None),
                        OpResult::Cas(ok) => (
                            if *ok {
                                rt::Status::Ok
                            } else {
                                rt::Status::Fail
                            },
                            None,
                        ),
                    };
                    client_events.push(rt::ClientEvent::Return(rt::Return {
                        client,
                        req: h1.returned[c],
                        status,
                        value,
                        error: None,
                        time: None,
                    }));
                }
            }
        }
        self.records.extend(
            client_events
                .into_iter()
                .map(|c| rt::Record::Client(Box::new(c))),
        );
    }

    /// `read` events for the reads leader `b` served without the log in the step from `a`
    /// that handled `msg`: a ReadIndex read its heartbeat round confirmed, or a read answered
    /// at once (by its lease, by a leader that is a quorum alone, or by the stale-read bug,
    /// which confirms nothing).
    fn reads_served(&mut self, a: &Server, b: &Server, msg: &Msg) {
        if b.role != Role::Leader || a.role != Role::Leader || a.term != b.term {
            return;
        }
        let alone = self.rules.quorum() == 1;
        let read = |index, via, context, client, seq| {
            rt::Event::Read(rt::Read {
                index,
                via,
                context,
                client: Some(client),
                req: Some(seq),
            })
        };
        let mut events = vec![];
        for r in &a.reads {
            if !b
                .reads
                .iter()
                .any(|x| (x.client, x.seq) == (r.client, r.seq))
            {
                let context = (!alone).then(|| read_context(r.client, r.seq));
                events.push(read(
                    r.index,
                    rt::ReadVia::ReadIndex,
                    context,
                    r.client,
                    r.seq,
                ));
            }
        }
        if let Msg::Request(cmd) = msg {
            let answered_now = cmd.op == Op::Read
                && a.transfer.is_none()
                && b.log.last_index() == a.log.last_index()
                && !b
                    .reads
                    .iter()
                    .any(|x| (x.client, x.seq) == (cmd.client, cmd.seq));
            if answered_now {
                let lease = !self.rules.bug(Bug::StaleRead)
                    && crate::rules::clients::in_lease(a, &self.rules);
                let via = if lease {
                    rt::ReadVia::Lease
                } else {
                    rt::ReadVia::ReadIndex
                };
                events.push(read(a.commit, via, None, cmd.client, cmd.seq));
            }
        }
        for ev in events {
            self.event(b.id, ev, Some(post(b)));
        }
    }

    fn init(&mut self, s: &Server, reason: rt::InitReason) {
        let ev = rt::Event::Init(rt::Init {
            reason,
            term: s.term,
            vote: s.voted_for,
            snapshot: (s.log.snapshot_index > 0).then(|| rt::SnapshotMeta {
                index: s.log.snapshot_index,
                term: s.log.snapshot_term,
                config: self.rules.membership.then(|| {
                    configuration(s.log.snapshot_data.config.unwrap_or(self.rules.initial))
                }),
            }),
            commit: None,
            last_index: s.log.last_index(),
            last_term: s.log.last_term(),
            entries: Some(s.log.entries.iter().map(trace_entry).collect()),
        });
        self.event(s.id, ev, Some(post(s)));
    }
}

/// The invocation of request `req` of `client`, sent to the server the
/// client targets in `state`.
fn invoke(servers: u64, state: &RaftState, client: u64, req: u64) -> rt::ClientEvent {
    let actor = crate::actor::client_actor(servers, client);
    let target = state.actor_states[usize::from(actor)]
        .client()
        .map(|s| s.target);
    rt::ClientEvent::Invoke(rt::Invoke {
        client,
        req,
        node: target,
        op: trace_op(&crate::config::client_op(client, req - 1)),
        time: None,
    })
}

/// Writes `path` of a model with `cfg` as a `raft-trace/1` file.
pub fn write_path(
    file: &FsPath,
    cfg: &crate::config::Config,
    path: &RaftPath,
) -> std::io::Result<()> {
    let steps = path.clone().into_vec();
    let rules = cfg.rules();
    let mut conv = Converter {
        servers: cfg.servers,
        seq: BTreeMap::new(),
        next_id: BTreeMap::new(),
        in_flight: BTreeMap::new(),
        duplicating: cfg.network == NetworkKind::Duplicating,
        rules,
        records: vec![],
    };
    if let Some((first, _)) = steps.first() {
        for a in first.actor_states.iter() {
            if let NodeState::Server(s) = &***a {
                conv.init(s, rt::InitReason::Boot);
            }
        }
        // Requests the clients sent when they started.
        for (c, &n) in first.history.invoked.iter().enumerate() {
            for req in 1..=n {
                let ev = invoke(cfg.servers, first, c as u64 + 1, req);
                conv.records.push(rt::Record::Client(Box::new(ev)));
            }
        }
    }
    for pair in steps.windows(2) {
        if let Some(action) = &pair[0].1 {
            conv.step(&pair[0].0, action, &pair[1].0);
        }
    }
    let mut observes = rt::Observes {
        events: vec![
            rt::EventType::Init,
            rt::EventType::Crash,
            rt::EventType::Role,
            rt::EventType::Timeout,
            rt::EventType::Send,
            rt::EventType::Receive,
            rt::EventType::Append,
            rt::EventType::Truncate,
            rt::EventType::Commit,
            rt::EventType::Apply,
            rt::EventType::Snapshot,
            rt::EventType::Install,
            rt::EventType::Read,
            rt::EventType::Invoke,
            rt::EventType::Return,
        ],
        state: rt::StateField::ALL.to_vec(),
        entries: rt::EntryDetail::Full,
    };
    if !rules.config_on_apply {
        // Applies are written only where the configuration in use is the
        // last one applied (`Converter::applies`).
        observes.events.retain(|e| *e != rt::EventType::Apply);
    }
    let mut header = rt::Header::new(
        concat!("raft-model ", env!("CARGO_PKG_VERSION"), " counterexample"),
        (1..=cfg.servers).collect(),
        observes,
    );
    header.network = rt::Network {
        loss: cfg.lossy,
        duplication: cfg.network == NetworkKind::Duplicating,
        reorder: cfg.network != NetworkKind::Ordered,
    };
    header.params = Some(serde_json::json!({ "model_flags": cfg.to_flags() }));
    if rules.membership {
        // The initial configuration; every later one is in the log.
        header.voters = Some(rules.initial.voters.iter().collect());
        header.learners = Some(rules.initial.learners.iter().collect());
    }
    header.features = Some(rules.features().into_iter().map(String::from).collect());
    let mut w = rt::TraceWriter::new(File::create(file)?, &header)?;
    for r in &conv.records {
        w.write(r)?;
    }
    w.flush()
}

/// Writes every counterexample of `result` into `dir` as
/// `<config>-<property>.ndjson`, and every example path of a reached
/// sometimes-property as `<config>-example-<property>.ndjson` (behaviours of
/// the correct model, which the trace validator must accept); returns the
/// files written.
pub fn write_counterexamples(
    dir: &FsPath,
    config: &str,
    result: &RunResult,
) -> std::io::Result<Vec<WrittenTrace>> {
    std::fs::create_dir_all(dir)?;
    let mut written = vec![];
    for p in result
        .properties
        .iter()
        .filter(|p| matches!(p.status, Status::Violated | Status::Reached))
    {
        let Some(path) = &p.path else { continue };
        let slug: String = p
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let file = if p.status == Status::Reached {
            dir.join(format!("{config}-example-{slug}.ndjson"))
        } else {
            dir.join(format!("{config}-{slug}.ndjson"))
        };
        write_path(&file, &result.config, path)?;
        written.push(WrittenTrace {
            file,
            property: p.name,
            counterexample: p.status == Status::Violated,
        });
    }
    Ok(written)
}

/// A trace file [`write_counterexamples`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenTrace {
    pub file: PathBuf,
    pub property: &'static str,
    /// A counterexample to an always-property; else an example path that
    /// reaches a sometimes-property.
    pub counterexample: bool,
}

impl std::fmt::Display for WrittenTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.counterexample {
            write!(
                f,
                "{}: the counterexample to \"{}\"",
                self.file.display(),
                self.property
            )
        } else {
            write!(
                f,
                "{}: an example, not a violation: a path of the model that reaches \"{}\" \
                 (a trace the validator must accept)",
                self.file.display(),
                self.property
            )
        }
    }
}
