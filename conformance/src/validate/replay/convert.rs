//! Between `raft-trace/1` and the model's types.
//!
//! The model's log entries carry a register command; an implementation's
//! carry whatever its state machine takes. The replay only needs what Raft
//! itself looks at: an entry's term, whether two entries are the same, and
//! the session identity `(client, req)` that makes a retried command apply at
//! most once. So a trace command becomes a model command with the same
//! client and request number and an operation that stands for the trace's
//! operation (a fingerprint of it); a no-op becomes a command of the reserved
//! client 0; a configuration entry and an opaque application entry become
//! commands of their own reserved clients whose operation is a fingerprint of
//! their `data` (or [`Op::Read`] when the entry has none: unknown, so it
//! agrees with any data); an entry whose data the emitter does not log
//! becomes the [`opaque`] command, compared by term only. A configuration
//! entry that names its voters (and learners) becomes the model's own
//! configuration command ([`Command::config`], client 0, [`Op::Config`]),
//! with the fingerprint of its `data` as sequence number (0: none).

use std::hash::{Hash, Hasher};

use raft_model::state_machine::StateMachine;
use raft_model::types::{Command, CommitInfo, Entry, Members, Membership, Msg, Op};
use raft_trace as rt;

/// The client id that stands for a leader's no-op entry.
pub const NOOP_CLIENT: u64 = 0;
/// The client id of an entry whose data is not observed.
pub const OPAQUE_CLIENT: u64 = u64::MAX;
/// The client id that stands for a configuration entry (`"kind":"config"`).
pub const CONFIG_CLIENT: u64 = u64::MAX - 1;
/// The client id that stands for an opaque application entry
/// (`"kind":"opaque"`).
pub const APP_CLIENT: u64 = u64::MAX - 2;

/// The command of an entry whose data the trace does not show.
pub fn opaque() -> Command {
    Command {
        client: OPAQUE_CLIENT,
        seq: 0,
        op: Op::Read,
    }
}

/// The model command standing for a trace entry's data.
pub fn command(data: Option<&rt::EntryData>) -> Command {
    match data {
        None => opaque(),
        Some(rt::EntryData::Noop) => Command {
            client: NOOP_CLIENT,
            seq: 0,
            op: Op::Read,
        },
        Some(rt::EntryData::Command { client, req, op }) => Command {
            client: *client,
            seq: *req,
            op: Op::Write(fingerprint(op)),
        },
        Some(rt::EntryData::Config {
            voters: Some(voters),
            learners,
            outgoing_voters,
            data,
        }) => match membership(
            voters,
            learners.as_deref().unwrap_or_default(),
            outgoing_voters.as_deref().unwrap_or_default(),
        ) {
            Some(m) => Command {
                seq: data.as_ref().map_or(0, |d| data_fingerprint(d).max(1)),
                ..Command::config(m)
            },
            // Ids the model cannot hold: unknown to the replay
            // ([`config_outside`] names them).
            None => Command {
                client: CONFIG_CLIENT,
                seq: 0,
                op: data_op(data.as_ref()),
            },
        },
        Some(rt::EntryData::Config { data, .. }) => Command {
            client: CONFIG_CLIENT,
            seq: 0,
            op: data_op(data.as_ref()),
        },
        Some(rt::EntryData::Opaque { data }) => Command {
            client: APP_CLIENT,
            seq: 0,
            op: data_op(data.as_ref()),
        },
    }
}

/// The operation standing for an entry's opaque `data`: a fingerprint of it,
/// or [`Op::Read`] when it is absent (unknown).
fn data_op(data: Option<&serde_json::Value>) -> Op {
    match data {
        None => Op::Read,
        Some(v) => Op::Write(data_fingerprint(v)),
    }
}

fn data_fingerprint(v: &serde_json::Value) -> u64 {
    fingerprint(&v.to_string())
}

/// A trace configuration as the model's, if every id is one the model's
/// sets hold (1 to [`Members::MAX`]).
pub fn membership(
    voters: &[rt::NodeId],
    learners: &[rt::NodeId],
    outgoing: &[rt::NodeId],
) -> Option<Membership> {
    let set = |ids: &[rt::NodeId]| {
        ids.iter().try_fold(Members::default(), |m, &j| {
            (1..=Members::MAX).contains(&j).then(|| m.with(j))
        })
    };
    Some(Membership {
        voters: set(voters)?,
        learners: set(learners)?,
        outgoing: set(outgoing)?,
    })
}

/// For a configuration entry, its configuration (`None` when it does not
/// name its voters, or names ids outside 1..=[`Members::MAX`]); for any
/// other entry, `None`.
pub fn trace_config(d: &rt::EntryData) -> Option<Option<Membership>> {
    match d {
        rt::EntryData::Config {
            voters,
            learners,
            outgoing_voters,
            ..
        } => Some(voters.as_deref().and_then(|v| {
            membership(
                v,
                learners.as_deref().unwrap_or_default(),
                outgoing_voters.as_deref().unwrap_or_default(),
            )
        })),
        _ => None,
    }
}

/// A stable 64-bit fingerprint of an operation (SipHash with fixed keys).
fn fingerprint<T: Hash + ?Sized>(op: &T) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    op.hash(&mut h);
    h.finish()
}

/// Whether two model commands may stand for the same entry: the same kind
/// and identity, and the same contents where both are known (an entry whose
/// data is not logged agrees with anything; a configuration or opaque entry
/// without `data` with any of its kind).
pub fn commands_agree(a: &Command, b: &Command) -> bool {
    if a.client == OPAQUE_CLIENT || b.client == OPAQUE_CLIENT {
        return true;
    }
    if let (Some(m), Some(n)) = (a.membership(), b.membership()) {
        // Two configurations: the same servers, and the same data where
        // both show it.
        return m == n && (a.seq == b.seq || a.seq == 0 || b.seq == 0);
    }
    if let Some((structured, other)) = config_pair(a, b).or_else(|| config_pair(b, a)) {
        // A configuration entry that does not name its voters agrees with
        // one that does when its data (if shown) is the same.
        return match other.op {
            Op::Write(f) => structured.seq == 0 || structured.seq == f.max(1),
            _ => true,
        };
    }
    if (a.client, a.seq) != (b.client, b.seq) {
        return false;
    }
    a.op == b.op || (has_opaque_data(a) && (a.op == Op::Read || b.op == Op::Read))
}

/// `(a, b)` when `a` is a configuration that names its voters and `b` one
/// that does not.
fn config_pair<'a>(a: &'a Command, b: &'a Command) -> Option<(&'a Command, &'a Command)> {
    (a.membership().is_some() && b.client == CONFIG_CLIENT).then_some((a, b))
}

fn has_opaque_data(c: &Command) -> bool {
    c.client == CONFIG_CLIENT || c.client == APP_CLIENT
}

/// What an entry is, in words, for violations.
pub fn describe(c: &Command) -> String {
    if let Some(m) = c.membership() {
        return format!("a configuration entry ({})", m);
    }
    match c.client {
        NOOP_CLIENT => "a no-op".into(),
        OPAQUE_CLIENT => "an entry of unknown contents".into(),
        CONFIG_CLIENT | APP_CLIENT => {
            let kind = if c.client == CONFIG_CLIENT {
                "a configuration entry"
            } else {
                "an opaque application entry"
            };
            match c.op {
                Op::Write(f) => format!("{kind} (data fingerprint {f:016x})"),
                _ => format!("{kind} (data not logged)"),
            }
        }
        _ => format!("a command of client {} request {}", c.client, c.seq),
    }
}

/// What a trace entry is, in words, for violations.
pub fn describe_trace(e: &rt::Entry) -> String {
    match &e.data {
        None => format!("an entry of term {} (contents not logged)", e.term),
        Some(d) => format!(
            "{} of term {}: {}",
            describe(&command(Some(d))),
            e.term,
            serde_json::to_string(d).unwrap_or_default()
        ),
    }
}

/// The model entry for a trace entry.
pub fn entry(e: &rt::Entry) -> Entry {
    Entry {
        term: e.term,
        cmd: command(e.data.as_ref()),
    }
}

/// Whether a model entry agrees with what the trace shows of an entry.
pub fn entry_agrees(model: &Entry, trace: &rt::Entry) -> bool {
    model.term == trace.term && commands_agree(&model.cmd, &command(trace.data.as_ref()))
}

/// Whether a command is a client's (so its application goes through the
/// session table in a way the trace reports).
pub fn is_client_command(c: &Command) -> bool {
    !matches!(
        c.client,
        NOOP_CLIENT | OPAQUE_CLIENT | CONFIG_CLIENT | APP_CLIENT
    )
}

/// The sender's commit a trace message carries (feature commit-any-message).
pub fn commit_info(m: &rt::Message) -> Option<CommitInfo> {
    m.commit_info()
        .map(|(index, term)| CommitInfo { index, term })
}

/// A model message as it went over the wire: a vote message carries the
/// commit the trace message carries (the sender's choice; that it is true
/// is checked on the sender's side).
pub fn with_commit(mut msg: Msg, m: &rt::Message) -> Msg {
    let wire = commit_info(m);
    match &mut msg {
        Msg::RequestVote { commit, .. }
        | Msg::RequestVoteReply { commit, .. }
        | Msg::PreVote { commit, .. }
        | Msg::PreVoteReply { commit, .. } => *commit = wire,
        _ => {}
    }
    msg
}

/// A trace message as a model message, for a receive whose send the replay
/// did not see (the sender's events before it are missing). Snapshot data is
/// not comparable, so an InstallSnapshot carries an empty state machine and
/// the receiver marks its state machine unknown.
pub fn message(m: &rt::Message) -> Msg {
    with_commit(message_body(m), m)
}

fn message_body(m: &rt::Message) -> Msg {
    let term = m.term;
    match &m.rpc {
        // A forwarded proposal: the model's client request (its first
        // entry's command; the replay never executes it).
        rt::Rpc::Propose { entries } => {
            Msg::Request(command(entries.as_ref().and_then(|e| e.first())))
        }
        rt::Rpc::RequestVote {
            last_index,
            last_term,
            transfer,
        } => Msg::RequestVote {
            term,
            last_index: *last_index,
            last_term: *last_term,
            transfer: *transfer,
            commit: None,
        },
        rt::Rpc::RequestVoteReply { granted } => Msg::RequestVoteReply {
            term,
            granted: *granted,
            commit: None,
        },
        rt::Rpc::AppendEntries {
            prev_index,
            prev_term,
            commit,
            entries,
            ..
        } => Msg::AppendEntries {
            term,
            prev_index: *prev_index,
            prev_term: *prev_term,
            entries: entries.iter().flatten().map(entry).collect(),
            commit: *commit,
        },
        rt::Rpc::AppendEntriesReply {
            success,
            match_index,
            hint_index,
            ..
        } => Msg::AppendEntriesReply {
            term,
            success: *success,
            index: if *success {
                match_index.unwrap_or(0)
            } else {
                hint_index.unwrap_or(0)
            },
        },
        rt::Rpc::InstallSnapshot {
            last_index,
            last_term,
            ..
        } => Msg::InstallSnapshot {
            term,
            last_index: *last_index,
            last_term: *last_term,
            data: StateMachine::default(),
        },
        rt::Rpc::InstallSnapshotReply { last_index } => Msg::InstallSnapshotReply {
            term,
            last_index: *last_index,
        },
        rt::Rpc::PreVote {
            last_index,
            last_term,
        } => Msg::PreVote {
            term,
            last_index: *last_index,
            last_term: *last_term,
            commit: None,
        },
        rt::Rpc::PreVoteReply { granted } => Msg::PreVoteReply {
            term,
            granted: *granted,
            commit: None,
        },
        rt::Rpc::Heartbeat { commit, context } => Msg::Heartbeat {
            term,
            commit: *commit,
            ctx: *context,
        },
        rt::Rpc::HeartbeatReply { context } => Msg::HeartbeatReply {
            term,
            ctx: *context,
        },
        rt::Rpc::TimeoutNow {} => Msg::TimeoutNow { term },
    }
}

/// Whether a model message and a trace RPC are the same kind of RPC.
pub fn same_kind(model: &Msg, rpc: &rt::Rpc) -> bool {
    matches!(
        (model, rpc),
        (Msg::RequestVote { .. }, rt::Rpc::RequestVote { .. })
            | (
                Msg::RequestVoteReply { .. },
                rt::Rpc::RequestVoteReply { .. }
            )
            | (Msg::AppendEntries { .. }, rt::Rpc::AppendEntries { .. })
            | (
                Msg::AppendEntriesReply { .. },
                rt::Rpc::AppendEntriesReply { .. }
            )
            | (Msg::InstallSnapshot { .. }, rt::Rpc::InstallSnapshot { .. })
            | (
                Msg::InstallSnapshotReply { .. },
                rt::Rpc::InstallSnapshotReply { .. }
            )
            | (Msg::PreVote { .. }, rt::Rpc::PreVote { .. })
            | (Msg::PreVoteReply { .. }, rt::Rpc::PreVoteReply { .. })
            | (Msg::Heartbeat { .. }, rt::Rpc::Heartbeat { .. })
            | (Msg::HeartbeatReply { .. }, rt::Rpc::HeartbeatReply { .. })
            | (Msg::TimeoutNow { .. }, rt::Rpc::TimeoutNow {})
    )
}

/// Compares what a node sent with what the model's rule sends. Fields that
/// are the implementation's choice are not compared: a rejection's hint (the
/// model only needs the leader to retry lower), a snapshot's chunking, and
/// the leader commit index carried by AppendEntries, which may lag the
/// model's (a leader may tell followers less than it knows). On agreement,
/// returns the model message as it was actually sent, for the receiver's
/// replay.
///
/// With `stale`, the message answers a request of an older term: its
/// receiver, seeing the newer term, only steps down, so only the term and
/// the outcome are compared.
///
/// The commit a vote message carries (feature commit-any-message) is taken
/// as sent; [`super::effects::send`] checks it is true of the sender.
pub fn sent_as(model: &Msg, sent: &rt::Message, stale: bool) -> Result<Msg, String> {
    sent_body(model, sent, stale).map(|m| with_commit(m, sent))
}

fn sent_body(model: &Msg, sent: &rt::Message, stale: bool) -> Result<Msg, String> {
    if model.term() != Some(sent.term) {
        return Err(format!("term {}", model.term().unwrap_or(0)));
    }
    let field = |name: &str, want: u64, got: u64| {
        if want == got {
            Ok(())
        } else {
            Err(format!("{name} {want}"))
        }
    };
    match (model, &sent.rpc) {
        (
            Msg::RequestVote {
                last_index,
                last_term,
                transfer,
                ..
            },
            rt::Rpc::RequestVote {
                last_index: li,
                last_term: lt,
                transfer: tr,
            },
        ) => {
            field("last_index", *last_index, *li)?;
            field("last_term", *last_term, *lt)?;
            if transfer != tr {
                return Err(format!("transfer {transfer}"));
            }
            Ok(model.clone())
        }
        (Msg::TimeoutNow { .. }, rt::Rpc::TimeoutNow {}) => Ok(model.clone()),
        (Msg::RequestVoteReply { granted, .. }, rt::Rpc::RequestVoteReply { granted: g }) => {
            if granted != g {
                return Err(format!("granted {granted}"));
            }
            Ok(model.clone())
        }
        (
            Msg::AppendEntries {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            },
            rt::Rpc::AppendEntries {
                prev_index: pi,
                prev_term: pt,
                commit: c,
                entries: es,
                entry_count,
                // A ReadIndex round's name: the leader's to choose.
                context: _,
            },
        ) => {
            field("prev_index", *prev_index, *pi)?;
            field("prev_term", *prev_term, *pt)?;
            if c > commit {
                return Err(format!("commit <= {commit}"));
            }
            if let Some(es) = es {
                if es.len() != entries.len() {
                    return Err(format!("{} entries", entries.len()));
                }
                for (k, (m, t)) in entries.iter().zip(es).enumerate() {
                    if !entry_agrees(m, t) {
                        return Err(format!(
                            "entry at index {}: {} of term {}, not {}",
                            prev_index + 1 + k as u64,
                            describe(&m.cmd),
                            m.term,
                            describe_trace(t)
                        ));
                    }
                }
            } else if let Some(n) = entry_count {
                field("entry_count", entries.len() as u64, *n)?;
            }
            Ok(Msg::AppendEntries {
                term: *term,
                prev_index: *prev_index,
                prev_term: *prev_term,
                entries: entries.clone(),
                commit: *c,
            })
        }
        (
            Msg::AppendEntriesReply {
                term,
                success,
                index,
            },
            rt::Rpc::AppendEntriesReply {
                success: s,
                match_index,
                hint_index,
                ..
            },
        ) => {
            if success != s {
                return Err(format!("success {success}"));
            }
            if *success && !stale {
                match match_index {
                    // Acknowledging less than the follower could is safe
                    // (the leader only commits less): hashicorp/raft answers
                    // a heartbeat, which has no log position, with a bare
                    // success, whose match is prev_index + 0 = 0.
                    Some(m) if m > index => Err(format!("match_index at most {index}")),
                    Some(m) => Ok(Msg::AppendEntriesReply {
                        term: *term,
                        success: true,
                        index: *m,
                    }),
                    None => Ok(model.clone()),
                }
            } else {
                Ok(Msg::AppendEntriesReply {
                    term: *term,
                    success: false,
                    index: hint_index.unwrap_or(*index),
                })
            }
        }
        (
            Msg::InstallSnapshot {
                last_index,
                last_term,
                ..
            },
            rt::Rpc::InstallSnapshot {
                last_index: li,
                last_term: lt,
                ..
            },
        ) => {
            field("last_index", *last_index, *li)?;
            field("last_term", *last_term, *lt)?;
            Ok(model.clone())
        }
        (
            Msg::InstallSnapshotReply { last_index, term },
            rt::Rpc::InstallSnapshotReply { last_index: li },
        ) => {
            if stale {
                return Ok(Msg::InstallSnapshotReply {
                    term: *term,
                    last_index: *li,
                });
            }
            field("last_index", *last_index, *li)?;
            Ok(model.clone())
        }
        (
            Msg::PreVote {
                last_index,
                last_term,
                ..
            },
            rt::Rpc::PreVote {
                last_index: li,
                last_term: lt,
            },
        ) => {
            field("last_index", *last_index, *li)?;
            field("last_term", *last_term, *lt)?;
            Ok(model.clone())
        }
        (Msg::PreVoteReply { granted, .. }, rt::Rpc::PreVoteReply { granted: g }) => {
            if granted != g {
                return Err(format!("granted {granted}"));
            }
            Ok(model.clone())
        }
        // A heartbeat may announce less than the model's commit bound, like
        // AppendEntries; its read context is the leader's to choose (the
        // reads a leader serves are not node events).
        (Msg::Heartbeat { term, commit, .. }, rt::Rpc::Heartbeat { commit: c, context }) => {
            if c > commit {
                return Err(format!("commit <= {commit}"));
            }
            Ok(Msg::Heartbeat {
                term: *term,
                commit: *c,
                ctx: *context,
            })
        }
        // The reply echoes the heartbeat's context, or carries none: an answer
        // that confirms no read (raft-rs and etcd-io/raft answer a heartbeat
        // of an older term with a bare term-only response). Without it the
        // reply confirms nothing, so leaving it out is never unsafe.
        (Msg::HeartbeatReply { term, ctx }, rt::Rpc::HeartbeatReply { context }) => {
            if context.is_some() && ctx != context {
                return Err(format!("context {ctx:?}"));
            }
            Ok(Msg::HeartbeatReply {
                term: *term,
                ctx: *context,
            })
        }
        _ => Err(format!("a {}", raft_model::explain::message(model))),
    }
}
