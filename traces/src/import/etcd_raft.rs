//! etcd-io/raft's TLA+ trace-validation traces (`state_trace.go`, written
//! through zap's JSON logger: one `{"ts":..,"event":{..}}` object a line) to
//! `raft-trace/1`.
//!
//! What the etcd format holds and what the conversion rebuilds:
//!
//! - **Message identity.** etcd's events carry no message id. Each
//!   `Receive*` is paired with the earliest `Send*` not yet received that
//!   has the same content (type, term, from, to, entry count, logTerm,
//!   index, commit, vote, reject, rejectHint); a receive without one is an
//!   error, never a guess. Messages a node sends to itself (a candidate's own
//!   vote, a leader's acknowledgement of its own durable entries) are etcd's
//!   bookkeeping and are left out.
//! - **When a message leaves.** etcd logs a `Send*` when `raft.send` queues
//!   the message; the message leaves with the next `Ready` (whose contract is
//!   that its messages go out after its entries and HardState are durable).
//!   The `send` is written there: at the `Ready`, or, in files that log
//!   `Advance`, at the `Advance` that follows it, after the `persist`.
//! - **Entries.** etcd logs only counts and the last index. Entries are
//!   rebuilt: `Bootstrap` writes its configuration entries at term 1 (one
//!   voter added by each, as its `ApplyConfChange`s show); a leader appends
//!   at its term (`Replicate`: the empty entry `becomeLeader` appends is a
//!   no-op, any other an opaque application entry whose contents are not
//!   logged; `ChangeConf`: a configuration entry naming the whole
//!   configuration its one change makes from the latest in the leader's
//!   log); an AppendEntries carries the sender's entries after `index`; a
//!   follower keeps or replaces its entries by Raft's append rule. The
//!   rebuilt log is checked against the `log` field of every event. Every
//!   entry is determined: a node's log starts empty or as Bootstrap's
//!   entries (any other start is refused), and grows only by its own appends
//!   or by entries of a sender whose log is known, so the file declares
//!   `"entries": "full"`.
//! - **Durability.** `Advance` (logged by the later schema) is the
//!   application saying that the `Ready` before it is durable: it becomes a
//!   `persist` of the term, vote and last index that `Ready` showed. Files
//!   without `Advance` show no durability and do not declare `persist`.
//! - **Start.** `InitState` up to `Bootstrap` (or the node's first other
//!   event) is one `init`. A node that starts with Bootstrap's entries
//!   recovers them as its log, committed and applied (a `commit` and their
//!   `apply`s follow the `init`). etcd leaves its applied index at 0 there,
//!   so its application applies them again after the first `Ready`: those
//!   `ApplyConfChange`s change nothing (adding a voter twice) and are not
//!   written.
//! - **Membership** (feature `config-on-apply`: etcd switches configuration
//!   when the application calls `ApplyConfChange`). An `ApplyConfChange`
//!   applies the node's next configuration entry: the `apply`s of every
//!   entry up to it are written there (the main schema logs no other
//!   applies; the later one's `applied` adds those, never past a
//!   configuration entry not yet applied). Its `newconf`, and the `conf` of
//!   every event, are checked against the configuration the node applied. A
//!   removed leader goes on leading (`StepDownOnRemoval` is off by default:
//!   feature `removed-leader-stays`). Joint consensus (a `ChangeConf` of
//!   several changes or none, a joint `conf`; `raft-trace/1` can write it,
//!   but neither published trace shows how etcd logs it), or a
//!   configuration the converter cannot follow otherwise, stops the
//!   conversion: every node gets a `gap` naming the line, and the rest of
//!   the file is not converted.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde_json::Value;

use crate::error::{ErrorKind, TraceError};
use crate::event::{
    Append, Apply, Commit, Entry, EntryData, EntryDetail, Event, EventType, Gap, Header, Init,
    InitReason, Message, MessageEvent, Network, NodeEvent, NodeId, Observes, Persist, PostState,
    Record, Role, RoleChange, RoleReason, Rpc, StateField, Term, Truncate,
};

/// The term etcd's `Bootstrap` gives the configuration entries it writes.
const BOOTSTRAP_TERM: Term = 1;

/// The behaviours beyond Figure 2 that etcd-io/raft has and that its trace
/// can show. Its others (pre-vote, ReadIndex and lease reads, leader
/// transfer, proposal forwarding) travel in messages the trace logger does
/// not record (MsgPreVote, MsgReadIndex, MsgTimeoutNow, MsgProp), and
/// snapshots are refused by this converter.
pub const FEATURES: [&str; 6] = [
    "stale-append-reply",
    "lost-election",
    "heartbeat",
    "check-quorum",
    "config-on-apply",
    "removed-leader-stays",
];

/// A converted file.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub header: Header,
    pub records: Vec<Record>,
    /// Lines of the etcd file read.
    pub lines: u64,
    /// Set when the conversion stopped before the end of the file.
    pub stopped: Option<Stopped>,
    /// What the reader should know about the conversion, one sentence each.
    pub notes: Vec<String>,
}

/// Where and why the conversion stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The first etcd line not converted.
    pub line: u64,
    pub reason: String,
}

/// Converts the etcd trace read from `reader`; `name` names it in errors.
pub fn convert<R: BufRead>(reader: R, name: &str) -> Result<Conversion, TraceError> {
    let events = parse(reader, name)?;
    let lines = events.last().map_or(0, |e| e.line);
    let durable = events.iter().any(|e| e.name == Name::Advance);
    let mut conv = Converter {
        file: name.to_string(),
        durable,
        nodes: BTreeMap::new(),
        members: None,
        sends: Vec::new(),
        records: Vec::new(),
        notes: Vec::new(),
        t0: events.iter().find_map(|e| e.ts),
        now: None,
    };
    let mut stopped = None;
    for (k, ev) in events.iter().enumerate() {
        if let Some(reason) = conv.unfollowable(ev) {
            conv.stop(ev.line, &reason, &events[k..]);
            stopped = Some(Stopped {
                line: ev.line,
                reason,
            });
            break;
        }
        conv.now = ev.ts;
        conv.step(ev)?;
    }
    if stopped.is_none() {
        // A file that ends while a node is still starting: its start.
        let starting: Vec<NodeId> = conv
            .nodes
            .iter()
            .filter(|(_, n)| n.phase == Phase::Starting)
            .map(|(&id, _)| id)
            .collect();
        for id in starting {
            conv.finish_start(id)?;
        }
    }
    conv.finish(lines, stopped)
}

// ---------------------------------------------------------------------------
// Reading the etcd lines.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    InitState,
    Bootstrap,
    BecomeCandidate,
    BecomeFollower,
    BecomeLeader,
    Commit,
    Replicate,
    ChangeConf,
    ApplyConfChange,
    Ready,
    Advance,
    SendAppendEntriesRequest,
    ReceiveAppendEntriesRequest,
    SendAppendEntriesResponse,
    ReceiveAppendEntriesResponse,
    SendRequestVoteRequest,
    ReceiveRequestVoteRequest,
    SendRequestVoteResponse,
    ReceiveRequestVoteResponse,
    SendSnapshot,
    ReceiveSnapshot,
}

const NAMES: [(&str, Name); 21] = [
    ("InitState", Name::InitState),
    ("Bootstrap", Name::Bootstrap),
    ("BecomeCandidate", Name::BecomeCandidate),
    ("BecomeFollower", Name::BecomeFollower),
    ("BecomeLeader", Name::BecomeLeader),
    ("Commit", Name::Commit),
    ("Replicate", Name::Replicate),
    ("ChangeConf", Name::ChangeConf),
    ("ApplyConfChange", Name::ApplyConfChange),
    ("Ready", Name::Ready),
    ("Advance", Name::Advance),
    ("SendAppendEntriesRequest", Name::SendAppendEntriesRequest),
    (
        "ReceiveAppendEntriesRequest",
        Name::ReceiveAppendEntriesRequest,
    ),
    ("SendAppendEntriesResponse", Name::SendAppendEntriesResponse),
    (
        "ReceiveAppendEntriesResponse",
        Name::ReceiveAppendEntriesResponse,
    ),
    ("SendRequestVoteRequest", Name::SendRequestVoteRequest),
    ("ReceiveRequestVoteRequest", Name::ReceiveRequestVoteRequest),
    ("SendRequestVoteResponse", Name::SendRequestVoteResponse),
    (
        "ReceiveRequestVoteResponse",
        Name::ReceiveRequestVoteResponse,
    ),
    ("SendSnapshot", Name::SendSnapshot),
    ("ReceiveSnapshot", Name::ReceiveSnapshot),
];

impl Name {
    fn as_str(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, n)| *n == self)
            .map_or("?", |(s, _)| s)
    }

    fn is_send(self) -> bool {
        matches!(
            self,
            Name::SendAppendEntriesRequest
                | Name::SendAppendEntriesResponse
                | Name::SendRequestVoteRequest
                | Name::SendRequestVoteResponse
                | Name::SendSnapshot
        )
    }

    fn is_receive(self) -> bool {
        matches!(
            self,
            Name::ReceiveAppendEntriesRequest
                | Name::ReceiveAppendEntriesResponse
                | Name::ReceiveRequestVoteRequest
                | Name::ReceiveRequestVoteResponse
                | Name::ReceiveSnapshot
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MsgType {
    App,
    AppResp,
    Vote,
    VoteResp,
    Heartbeat,
    HeartbeatResp,
    Snap,
}

const MSG_TYPES: [(&str, MsgType); 7] = [
    ("MsgApp", MsgType::App),
    ("MsgAppResp", MsgType::AppResp),
    ("MsgVote", MsgType::Vote),
    ("MsgVoteResp", MsgType::VoteResp),
    ("MsgHeartbeat", MsgType::Heartbeat),
    ("MsgHeartbeatResp", MsgType::HeartbeatResp),
    ("MsgSnap", MsgType::Snap),
];

impl MsgType {
    fn as_str(self) -> &'static str {
        MSG_TYPES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(s, _)| s)
    }
}

/// An etcd `TracingMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EMsg {
    typ: MsgType,
    term: Term,
    from: NodeId,
    to: NodeId,
    entries: u64,
    log_term: Term,
    index: u64,
    commit: u64,
    vote: u64,
    reject: bool,
    reject_hint: u64,
}

impl EMsg {
    fn describe(&self) -> String {
        format!(
            "{} from {} to {} (term {}, entries {}, logTerm {}, index {}, commit {}, reject {})",
            self.typ.as_str(),
            self.from,
            self.to,
            self.term,
            self.entries,
            self.log_term,
            self.index,
            self.commit,
            self.reject
        )
    }
}

/// One etcd `TracingEvent`, with its line.
#[derive(Debug, Clone)]
struct Ev {
    line: u64,
    ts: Option<f64>,
    name: Name,
    nid: NodeId,
    term: Term,
    vote: Option<NodeId>,
    commit: u64,
    role: Role,
    log: u64,
    voters: Vec<NodeId>,
    outgoing: Vec<NodeId>,
    msg: Option<EMsg>,
    /// `ApplyConfChange`: the voters after the change.
    newconf: Option<Vec<NodeId>>,
    /// `ChangeConf`: the changes proposed, `(node, action)`.
    changes: Option<Vec<(NodeId, String)>>,
    /// The applied index (the later schema only).
    applied: Option<u64>,
}

fn field_err(file: &str, line: u64, field: &str, message: impl Into<String>) -> TraceError {
    TraceError::new(file, line, ErrorKind::Field, message).with_field(field)
}

fn parse<R: BufRead>(mut reader: R, file: &str) -> Result<Vec<Ev>, TraceError> {
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| TraceError::new(file, line + 1, ErrorKind::Io, e.to_string()))?;
        if n == 0 {
            break;
        }
        line += 1;
        let complete = buf.ends_with(b"\n");
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|_| TraceError::new(file, line, ErrorKind::Utf8, "not valid UTF-8"))?;
        if text.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) if !complete && e.is_eof() => {
                return Err(TraceError::new(
                    file,
                    line,
                    ErrorKind::Truncated,
                    "the last line is cut short (no newline and not a complete JSON object)",
                ))
            }
            Err(e) => {
                return Err(TraceError::new(
                    file,
                    line,
                    ErrorKind::Syntax,
                    format!("not JSON: {e}"),
                ))
            }
        };
        events.push(event(&value, file, line)?);
    }
    if events.is_empty() {
        return Err(TraceError::new(
            file,
            0,
            ErrorKind::Empty,
            "the file has no events",
        ));
    }
    Ok(events)
}

/// Field readers that name the field on error.
struct Fields<'a> {
    file: &'a str,
    line: u64,
}

impl Fields<'_> {
    fn get<'v>(&self, obj: &'v Value, key: &str, path: &str) -> Result<&'v Value, TraceError> {
        obj.get(key)
            .ok_or_else(|| field_err(self.file, self.line, path, "missing field"))
    }

    fn object<'v>(&self, obj: &'v Value, key: &str, path: &str) -> Result<&'v Value, TraceError> {
        let v = self.get(obj, key, path)?;
        if v.is_object() {
            Ok(v)
        } else {
            Err(field_err(
                self.file,
                self.line,
                path,
                format!("expected an object, found {v}"),
            ))
        }
    }

    fn u64(&self, obj: &Value, key: &str, path: &str) -> Result<u64, TraceError> {
        let v = self.get(obj, key, path)?;
        v.as_u64().ok_or_else(|| {
            field_err(
                self.file,
                self.line,
                path,
                format!("expected an unsigned integer, found {v}"),
            )
        })
    }

    fn bool(&self, obj: &Value, key: &str, path: &str) -> Result<bool, TraceError> {
        let v = self.get(obj, key, path)?;
        v.as_bool().ok_or_else(|| {
            field_err(
                self.file,
                self.line,
                path,
                format!("expected true or false, found {v}"),
            )
        })
    }

    fn str<'v>(&self, obj: &'v Value, key: &str, path: &str) -> Result<&'v str, TraceError> {
        let v = self.get(obj, key, path)?;
        v.as_str().ok_or_else(|| {
            field_err(
                self.file,
                self.line,
                path,
                format!("expected a string, found {v}"),
            )
        })
    }

    /// A node id written as a decimal string; `"0"` (none) is allowed only
    /// where `zero` says so.
    fn id_str(&self, s: &str, path: &str, zero: bool) -> Result<NodeId, TraceError> {
        match s.parse::<u64>() {
            Ok(0) if !zero => Err(field_err(
                self.file,
                self.line,
                path,
                "node id 0 is not a node",
            )),
            Ok(id) => Ok(id),
            Err(_) => Err(field_err(
                self.file,
                self.line,
                path,
                format!("expected a node id as a decimal string, found {s:?}"),
            )),
        }
    }

    fn id(&self, obj: &Value, key: &str, path: &str, zero: bool) -> Result<NodeId, TraceError> {
        let s = self.str(obj, key, path)?;
        self.id_str(s, path, zero)
    }

    fn ids(&self, v: &Value, path: &str) -> Result<Vec<NodeId>, TraceError> {
        let arr = v.as_array().ok_or_else(|| {
            field_err(
                self.file,
                self.line,
                path,
                format!("expected a list of node ids, found {v}"),
            )
        })?;
        let mut ids = Vec::with_capacity(arr.len());
        for x in arr {
            let s = x.as_str().ok_or_else(|| {
                field_err(
                    self.file,
                    self.line,
                    path,
                    format!("expected a node id as a decimal string, found {x}"),
                )
            })?;
            ids.push(self.id_str(s, path, false)?);
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// `prop.cc.changes`: `[{"nid": ID, "action": A}, ...]`.
    fn changes(&self, v: &Value) -> Result<Vec<(NodeId, String)>, TraceError> {
        let path = "event.prop.cc.changes";
        let arr = v.as_array().ok_or_else(|| {
            field_err(
                self.file,
                self.line,
                path,
                format!("expected a list of changes, found {v}"),
            )
        })?;
        arr.iter()
            .map(|c| {
                let nid = self.id(c, "nid", "event.prop.cc.changes.nid", false)?;
                let action = self.str(c, "action", "event.prop.cc.changes.action")?;
                Ok((nid, action.to_string()))
            })
            .collect()
    }
}

fn event(line_value: &Value, file: &str, line: u64) -> Result<Ev, TraceError> {
    let f = Fields { file, line };
    if !line_value.is_object() {
        return Err(TraceError::new(
            file,
            line,
            ErrorKind::Syntax,
            "expected a JSON object",
        ));
    }
    let ts = line_value.get("ts").and_then(Value::as_f64);
    let e = f.object(line_value, "event", "event")?;
    let name_str = f.str(e, "name", "event.name")?;
    let name = NAMES
        .iter()
        .find(|(s, _)| *s == name_str)
        .map(|(_, n)| *n)
        .ok_or_else(|| {
            TraceError::new(
                file,
                line,
                ErrorKind::UnknownEvent,
                format!("unknown etcd trace event {name_str:?}"),
            )
            .with_field("event.name")
        })?;
    let nid = f.id(e, "nid", "event.nid", false)?;
    let state = f.object(e, "state", "event.state")?;
    let term = f.u64(state, "term", "event.state.term")?;
    let vote = f.id(state, "vote", "event.state.vote", true)?;
    let commit = f.u64(state, "commit", "event.state.commit")?;
    let role = match f.str(e, "role", "event.role")? {
        "StateFollower" => Role::Follower,
        "StateCandidate" => Role::Candidate,
        "StateLeader" => Role::Leader,
        "StatePreCandidate" => Role::PreCandidate,
        other => {
            return Err(field_err(
                file,
                line,
                "event.role",
                format!("unknown role {other:?}"),
            ))
        }
    };
    let log = f.u64(e, "log", "event.log")?;
    let conf = f.get(e, "conf", "event.conf")?;
    let (voters, outgoing) = match conf.as_array().map(Vec::as_slice) {
        Some([a, b]) => (f.ids(a, "event.conf")?, f.ids(b, "event.conf")?),
        _ => {
            return Err(field_err(
                file,
                line,
                "event.conf",
                format!("expected [[voters...],[outgoing voters...]], found {conf}"),
            ))
        }
    };
    let msg = match e.get("msg") {
        None if name.is_send() || name.is_receive() => {
            return Err(field_err(file, line, "event.msg", "missing field"))
        }
        None => None,
        Some(m) => Some(message(&f, m)?),
    };
    let cc = e.get("prop").and_then(|p| p.get("cc"));
    let newconf = match cc.and_then(|cc| cc.get("newconf")) {
        Some(v) => Some(f.ids(v, "event.prop.cc.newconf")?),
        None => None,
    };
    let changes = match cc.and_then(|cc| cc.get("changes")) {
        Some(v) => Some(f.changes(v)?),
        None => None,
    };
    let applied = match e.get("applied") {
        Some(_) => Some(f.u64(e, "applied", "event.applied")?),
        None => None,
    };
    Ok(Ev {
        line,
        ts,
        name,
        nid,
        term,
        vote: (vote != 0).then_some(vote),
        commit,
        role,
        log,
        voters,
        outgoing,
        msg,
        newconf,
        changes,
        applied,
    })
}

fn message(f: &Fields, m: &Value) -> Result<EMsg, TraceError> {
    if !m.is_object() {
        return Err(field_err(
            f.file,
            f.line,
            "event.msg",
            format!("expected an object, found {m}"),
        ));
    }
    let t = f.str(m, "type", "event.msg.type")?;
    let typ = MSG_TYPES
        .iter()
        .find(|(s, _)| *s == t)
        .map(|(_, k)| *k)
        .ok_or_else(|| {
            field_err(
                f.file,
                f.line,
                "event.msg.type",
                format!("unknown message type {t:?}"),
            )
        })?;
    Ok(EMsg {
        typ,
        term: f.u64(m, "term", "event.msg.term")?,
        from: f.id(m, "from", "event.msg.from", false)?,
        to: f.id(m, "to", "event.msg.to", false)?,
        entries: f.u64(m, "entries", "event.msg.entries")?,
        log_term: f.u64(m, "logTerm", "event.msg.logTerm")?,
        index: f.u64(m, "index", "event.msg.index")?,
        commit: f.u64(m, "commit", "event.msg.commit")?,
        vote: f.id(m, "vote", "event.msg.vote", true)?,
        reject: f.bool(m, "reject", "event.msg.reject")?,
        reject_hint: f.u64(m, "rejectHint", "event.msg.rejectHint")?,
    })
}

// ---------------------------------------------------------------------------
// The conversion.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `InitState` seen; the node is still being set up.
    Starting,
    Running,
}

/// A configuration: voters and learners, each sorted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Conf {
    voters: Vec<NodeId>,
    learners: Vec<NodeId>,
}

impl Conf {
    /// The configuration after one etcd `ConfChange` (`ConfChangeAddNode`,
    /// `RemoveNode`, `AddLearnerNode`, as `state_trace.go` names them), or
    /// why it cannot be followed.
    fn changed(&self, node: NodeId, action: &str) -> Result<Conf, String> {
        let mut c = self.clone();
        c.voters.retain(|&j| j != node);
        c.learners.retain(|&j| j != node);
        match action {
            "AddNewServer" => c.voters.push(node),
            "AddLearner" => c.learners.push(node),
            "RemoveServer" => {}
            other => return Err(format!("unknown configuration change action {other:?}")),
        }
        c.voters.sort_unstable();
        c.learners.sort_unstable();
        Ok(c)
    }
}

/// What a rebuilt log entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// The empty entry a new leader appends (`becomeLeader`).
    Noop,
    /// An application entry: etcd's trace does not log its contents.
    Opaque,
    /// A configuration entry, as the whole configuration it makes.
    Config(Conf),
}

/// A rebuilt log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogEntry {
    term: Term,
    kind: Kind,
}

impl LogEntry {
    fn entry(&self) -> Entry {
        let data = match &self.kind {
            Kind::Noop => EntryData::Noop,
            Kind::Opaque => EntryData::Opaque { data: None },
            Kind::Config(c) => EntryData::Config {
                voters: Some(c.voters.clone()),
                learners: (!c.learners.is_empty()).then(|| c.learners.clone()),
                outgoing_voters: None,
                data: None,
            },
        };
        Entry {
            term: self.term,
            data: Some(data),
        }
    }
}

fn entries(es: &[LogEntry]) -> Vec<Entry> {
    es.iter().map(LogEntry::entry).collect()
}

/// A follower's AppendEntries, received and to be applied once the step's
/// role change (if any) is known.
#[derive(Debug, Clone)]
struct PendingAppend {
    term: Term,
    prev_index: u64,
    prev_term: Term,
    entries: Vec<LogEntry>,
}

/// What the conversion knows of one node.
#[derive(Debug)]
struct NodeState {
    phase: Phase,
    /// The last event seen while starting.
    start: Option<Ev>,
    seq: u64,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    commit: u64,
    /// The log (index `k + 1` at position `k`).
    log: Vec<LogEntry>,
    /// The configuration the node uses: the last one it applied, as etcd's
    /// `conf` shows it (voters; learners as the converter followed them).
    conf: Conf,
    /// The index of the last entry written as applied.
    applied: u64,
    /// The index of the last configuration entry etcd applied (its
    /// `ApplyConfChange`s, in log order).
    conf_applied: u64,
    /// While starting: the voters after each configuration entry Bootstrap
    /// applied.
    boot_confs: Vec<Vec<NodeId>>,
    /// Appends announced (`Replicate`, `ChangeConf`) that etcd's `log` does
    /// not show yet: it logs these events before it appends.
    announced: u64,
    /// The node's previous event (for the reason of a role change).
    prev: Option<(Name, Option<MsgType>)>,
    pending_append: Option<PendingAppend>,
    /// Sends (indexes into `Converter::sends`) queued since the last `Ready`.
    queued: Vec<usize>,
    /// With `Advance`: the last `Ready`'s durable state and messages.
    ready: Option<(Persist, Vec<usize>)>,
    last_persist: Option<Persist>,
    next_id: u64,
}

impl NodeState {
    fn new() -> Self {
        NodeState {
            phase: Phase::Starting,
            start: None,
            seq: 0,
            term: 0,
            vote: None,
            role: Role::Follower,
            commit: 0,
            log: Vec::new(),
            conf: Conf::default(),
            applied: 0,
            conf_applied: 0,
            boot_confs: Vec::new(),
            announced: 0,
            prev: None,
            pending_append: None,
            queued: Vec::new(),
            ready: None,
            last_persist: None,
            next_id: 1,
        }
    }

    fn last_index(&self) -> u64 {
        self.log.len() as u64
    }

    /// The term of the entry at `index` (1-based; present).
    fn term_at(&self, index: u64) -> Term {
        self.log[index as usize - 1].term
    }

    /// The latest configuration in the log, if any.
    fn latest_conf(&self) -> Option<&Conf> {
        self.log.iter().rev().find_map(|e| match &e.kind {
            Kind::Config(c) => Some(c),
            _ => None,
        })
    }

    /// The first configuration entry after index `after`: its index and
    /// configuration.
    fn next_conf(&self, after: u64) -> Option<(u64, &Conf)> {
        self.log
            .iter()
            .enumerate()
            .skip(after as usize)
            .find_map(|(k, e)| match &e.kind {
                Kind::Config(c) => Some((k as u64 + 1, c)),
                _ => None,
            })
    }

    fn post(&self) -> PostState {
        PostState {
            term: Some(self.term),
            vote: Some(self.vote),
            role: Some(self.role),
            commit: Some(self.commit),
            last_index: Some(self.last_index()),
            ..PostState::default()
        }
    }

    fn durable(&self) -> Persist {
        Persist {
            term: self.term,
            vote: self.vote,
            last_index: self.last_index(),
        }
    }
}

/// A message some node sent.
#[derive(Debug)]
struct Sent {
    emsg: EMsg,
    /// The converted message (`None` for a message to the sender itself).
    msg: Option<Message>,
    /// For an AppendEntries: its entries.
    entries: Vec<LogEntry>,
    written: bool,
    received: bool,
}

struct Converter {
    file: String,
    durable: bool,
    nodes: BTreeMap<NodeId, NodeState>,
    /// The voters of the configuration the cluster started with.
    members: Option<Vec<NodeId>>,
    sends: Vec<Sent>,
    records: Vec<Record>,
    notes: Vec<String>,
    t0: Option<f64>,
    now: Option<f64>,
}

impl Converter {
    fn err(&self, line: u64, field: &str, message: impl Into<String>) -> TraceError {
        field_err(&self.file, line, field, message)
    }

    fn node(&mut self, id: NodeId) -> &mut NodeState {
        self.nodes.entry(id).or_insert_with(NodeState::new)
    }

    /// Writes one event of `id` with the node's state as its post.
    fn emit(&mut self, id: NodeId, event: Event) {
        let time = match (self.now, self.t0) {
            (Some(now), Some(t0)) if now >= t0 => Some(((now - t0) * 1e9).round() as u64),
            _ => None,
        };
        let n = self.node(id);
        n.seq += 1;
        let record = NodeEvent {
            node: id,
            seq: n.seq,
            time,
            post: (!matches!(event, Event::Gap(_))).then(|| n.post()),
            event,
        };
        self.records.push(Record::Node(Box::new(record)));
    }

    /// The configuration the cluster started with.
    fn initial_conf(&self) -> Conf {
        Conf {
            voters: self.members.clone().unwrap_or_default(),
            learners: Vec::new(),
        }
    }

    /// Why the conversion must stop at `ev`: a membership change it cannot
    /// follow (joint consensus, an unknown change, a configuration that
    /// differs from the one the node's configuration entries give).
    fn unfollowable(&self, ev: &Ev) -> Option<String> {
        if !ev.outgoing.is_empty() {
            return Some(format!(
                "node {} is in a joint configuration (voters {:?}, outgoing {:?}): joint \
                 consensus is not followed by this converter",
                ev.nid, ev.voters, ev.outgoing
            ));
        }
        let n = self
            .nodes
            .get(&ev.nid)
            .filter(|n| n.phase == Phase::Running)?;
        if ev.voters != n.conf.voters {
            return Some(format!(
                "node {}'s voters are {:?} here, but the configuration entries it applied give \
                 {:?}",
                ev.nid, ev.voters, n.conf.voters
            ));
        }
        match ev.name {
            Name::ChangeConf => match ev.changes.as_deref() {
                Some([(node, action)]) => {
                    let base = n
                        .latest_conf()
                        .cloned()
                        .unwrap_or_else(|| self.initial_conf());
                    base.changed(*node, action).err()
                }
                Some(cs) => Some(format!(
                    "node {} proposes {} configuration changes in one entry (etcd's \
                     ConfChangeV2: joint consensus), which this converter does not follow",
                    ev.nid,
                    cs.len()
                )),
                None => Some(format!(
                    "node {}'s ChangeConf does not name its change (prop.cc.changes)",
                    ev.nid
                )),
            },
            Name::ApplyConfChange => {
                let Some(new) = &ev.newconf else {
                    return Some(format!(
                        "node {}'s ApplyConfChange does not name the voters after it \
                         (prop.cc.newconf)",
                        ev.nid
                    ));
                };
                match n.next_conf(n.conf_applied) {
                    None => Some(format!(
                        "node {} applies a configuration change, but its log holds no \
                         configuration entry after index {}",
                        ev.nid, n.conf_applied
                    )),
                    // Applied again (Bootstrap's entries): etcd's changes are
                    // idempotent there.
                    Some((index, _)) if index <= n.applied => (*new != n.conf.voters).then(|| {
                        format!(
                            "node {} applies the configuration entry at index {index} again, \
                             which changes its voters from {:?} to {new:?}",
                            ev.nid, n.conf.voters
                        )
                    }),
                    Some((index, c)) => (*new != c.voters).then(|| {
                        format!(
                            "node {} applies a change to voters {new:?}, but the configuration \
                             entry it applies (index {index}) makes {:?}",
                            ev.nid, c.voters
                        )
                    }),
                }
            }
            _ => None,
        }
    }

    /// Ends the conversion at `rest[0]`: a `gap` on every running node.
    fn stop(&mut self, line: u64, reason: &str, rest: &[Ev]) {
        let running: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.phase == Phase::Running)
            .map(|(&id, _)| id)
            .collect();
        for id in running {
            let lost = rest.iter().filter(|e| e.nid == id).count() as u64;
            self.emit(
                id,
                Event::Gap(Gap {
                    lost: Some(lost),
                    reason: Some(format!(
                        "etcd line {line}: {reason}; the rest of the etcd trace is not \
                         converted"
                    )),
                }),
            );
        }
    }

    fn step(&mut self, ev: &Ev) -> Result<(), TraceError> {
        let id = ev.nid;
        let phase = self.nodes.get(&id).map(|n| n.phase);
        match (phase, ev.name) {
            (None, Name::InitState) => {
                self.node(id).start = Some(ev.clone());
                return Ok(());
            }
            (None, other) => {
                return Err(self.err(
                    ev.line,
                    "event.name",
                    format!(
                        "node {id}'s first event is {}: a node must start with InitState",
                        other.as_str()
                    ),
                ))
            }
            (
                Some(Phase::Starting),
                Name::InitState | Name::BecomeFollower | Name::ApplyConfChange,
            ) => {
                // Setting up: newRaft, Bootstrap's becomeFollower(1) and the
                // configuration entries it applies (an ApplyConfChange logs
                // the configuration before the change, `newconf` the one
                // after).
                let mut st = ev.clone();
                if let (Name::ApplyConfChange, Some(new)) = (ev.name, &ev.newconf) {
                    st.voters = new.clone();
                    self.node(id).boot_confs.push(new.clone());
                }
                self.node(id).start = Some(st);
                return Ok(());
            }
            (Some(Phase::Starting), Name::Bootstrap) => {
                self.node(id).start = Some(ev.clone());
                return self.finish_start(id);
            }
            (Some(Phase::Starting), _) => self.finish_start(id)?,
            (Some(Phase::Running), Name::InitState | Name::Bootstrap) => {
                return Err(self.err(
                    ev.line,
                    "event.name",
                    format!(
                        "node {id} starts a second time ({}): the etcd trace has no crash \
                         event, so a restart cannot be converted",
                        ev.name.as_str()
                    ),
                ))
            }
            (Some(Phase::Running), _) => {}
        }
        self.running(ev)?;
        if let Some(applied) = ev.applied {
            self.applied(id, applied);
        }
        let n = self.node(id);
        n.prev = Some((ev.name, ev.msg.as_ref().map(|m| m.typ)));
        Ok(())
    }

    /// The node is set up: one `init` with the state it reached.
    fn finish_start(&mut self, id: NodeId) -> Result<(), TraceError> {
        let file = self.file.clone();
        let n = self.node(id);
        let Some(st) = n.start.take() else {
            return Ok(());
        };
        if st.log > 0 && st.commit != st.log {
            return Err(field_err(
                &file,
                st.line,
                "event.state.commit",
                format!(
                    "node {id} starts with {} log entries of which {} are committed: only a \
                     start from committed configuration entries (etcd's Bootstrap) can be converted",
                    st.log, st.commit
                ),
            ));
        }
        if st.log > 0 && st.term < BOOTSTRAP_TERM {
            return Err(field_err(
                &file,
                st.line,
                "event.state.term",
                format!(
                    "node {id} starts with log entries in term {}: etcd's Bootstrap starts in term 1",
                    st.term
                ),
            ));
        }
        let boot_confs = std::mem::take(&mut n.boot_confs);
        if boot_confs.len() as u64 != st.log {
            return Err(field_err(
                &file,
                st.line,
                "event.log",
                format!(
                    "node {id} starts with {} log entries but applied {} configuration changes \
                     while starting: only a start from Bootstrap's configuration entries (one \
                     change each) can be converted",
                    st.log,
                    boot_confs.len()
                ),
            ));
        }
        n.phase = Phase::Running;
        n.term = st.term;
        n.vote = st.vote;
        n.role = st.role;
        n.commit = st.commit;
        n.log = boot_confs
            .into_iter()
            .map(|voters| LogEntry {
                term: BOOTSTRAP_TERM,
                kind: Kind::Config(Conf {
                    voters,
                    learners: Vec::new(),
                }),
            })
            .collect();
        n.conf = Conf {
            voters: st.voters.clone(),
            learners: Vec::new(),
        };
        let init = if st.term == 0 && st.vote.is_none() && st.log == 0 {
            Init {
                reason: InitReason::Boot,
                term: 0,
                vote: None,
                snapshot: None,
                commit: None,
                last_index: 0,
                last_term: 0,
                entries: None,
            }
        } else {
            // The state Bootstrap wrote: its configuration entries,
            // committed.
            let last_term = if st.log > 0 { BOOTSTRAP_TERM } else { 0 };
            Init {
                reason: InitReason::Restart,
                term: st.term,
                vote: st.vote,
                snapshot: None,
                commit: Some(st.commit),
                last_index: st.log,
                last_term,
                entries: Some(entries(&n.log)),
            }
        };
        if st.log > 0 {
            self.notes.push(format!(
                "node {id} (line {}): starts with the {} configuration entries etcd's Bootstrap \
                 wrote, committed and applied (etcd applies them a second time after its first \
                 Ready: those ApplyConfChange events change nothing and are not converted)",
                st.line, st.log
            ));
        }
        if !st.voters.is_empty() {
            match &self.members {
                None => self.members = Some(st.voters.clone()),
                Some(m) if *m != st.voters => {
                    return Err(field_err(
                        &file,
                        st.line,
                        "event.conf",
                        format!(
                            "node {id} starts with voters {:?}, another node with {m:?}",
                            st.voters
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        self.emit(id, Event::Init(init));
        if st.log > 0 {
            // Bootstrap applied its entries (the ApplyConfChange events
            // while starting).
            self.emit(id, Event::Commit(Commit { index: st.commit }));
            self.apply_through(id, st.log);
        }
        if self.durable {
            let d = self.node(id).durable();
            self.node(id).last_persist = Some(d);
        }
        Ok(())
    }

    /// Writes the `apply` of every entry of `id` after the last one written,
    /// through `index`.
    fn apply_through(&mut self, id: NodeId, index: u64) {
        loop {
            let n = self.node(id);
            let next = n.applied + 1;
            if next > index || next > n.last_index() {
                return;
            }
            let term = n.term_at(next);
            n.applied = next;
            self.emit(
                id,
                Event::Apply(Apply {
                    index: next,
                    term,
                    client: None,
                    req: None,
                    duplicate: false,
                }),
            );
        }
    }

    /// The entries etcd says `id` applied (its `applied`, in the later
    /// schema), up to the next configuration entry it has not applied: etcd
    /// changes its configuration at `ApplyConfChange`, so the `apply` of a
    /// configuration entry is written there.
    fn applied(&mut self, id: NodeId, applied: u64) {
        let n = self.node(id);
        // Bootstrap's entries, applied again without an ApplyConfChange.
        while let Some((index, _)) = n.next_conf(n.conf_applied) {
            if index > applied.min(n.applied) {
                break;
            }
            n.conf_applied = index;
        }
        let bound = n
            .next_conf(n.conf_applied)
            .map_or(u64::MAX, |(index, _)| index - 1);
        self.apply_through(id, applied.min(bound));
    }

    /// `ApplyConfChange`: the node applies its next configuration entry
    /// (checked by [`Converter::unfollowable`]), again (Bootstrap's) or for
    /// the first time.
    fn apply_conf_change(&mut self, id: NodeId) {
        let n = self.node(id);
        let Some((index, conf)) = n.next_conf(n.conf_applied).map(|(i, c)| (i, c.clone())) else {
            return;
        };
        n.conf_applied = index;
        if index <= n.applied {
            return;
        }
        self.apply_through(id, index);
        self.node(id).conf = conf;
    }

    /// One event of a running node.
    fn running(&mut self, ev: &Ev) -> Result<(), TraceError> {
        let id = ev.nid;
        if ev.name != Name::BecomeFollower {
            self.apply_append(id)?;
        }
        match ev.name {
            Name::Replicate | Name::ChangeConf => {
                self.sync(ev, true)?;
                let initial = self.initial_conf();
                let n = self.node(id);
                if n.role != Role::Leader {
                    return Err(self.err(
                        ev.line,
                        "event.role",
                        format!("{} on node {id}, which does not lead", ev.name.as_str()),
                    ));
                }
                n.announced += 1;
                let kind = match (ev.name, ev.changes.as_deref(), n.prev) {
                    // One change (checked by `unfollowable`).
                    (Name::ChangeConf, Some([(node, action)]), _) => {
                        let base = n.latest_conf().cloned().unwrap_or_else(|| initial.clone());
                        Kind::Config(base.changed(*node, action).unwrap_or(base))
                    }
                    // `becomeLeader` appends an empty entry.
                    (_, _, Some((Name::BecomeLeader, _))) => Kind::Noop,
                    _ => Kind::Opaque,
                };
                let entry = LogEntry { term: n.term, kind };
                let index = n.last_index() + 1;
                n.log.push(entry.clone());
                self.emit(
                    id,
                    Event::Append(Append {
                        index,
                        entries: Some(vec![entry.entry()]),
                        entry_count: None,
                    }),
                );
            }
            Name::BecomeCandidate | Name::BecomeLeader | Name::BecomeFollower => {
                self.sync(ev, false)?;
                self.role(ev);
            }
            Name::Ready => {
                self.sync(ev, false)?;
                let durable = self.durable;
                let n = self.node(id);
                let queued = std::mem::take(&mut n.queued);
                if durable {
                    let d = n.durable();
                    match &mut n.ready {
                        Some((p, sends)) => {
                            *p = d;
                            sends.extend(queued);
                        }
                        None => n.ready = Some((d, queued)),
                    }
                } else {
                    for k in queued {
                        self.write_send(k);
                    }
                }
            }
            Name::Advance => {
                self.sync(ev, false)?;
                let n = self.node(id);
                if let Some((p, sends)) = n.ready.take() {
                    if n.last_persist.as_ref() != Some(&p) {
                        n.last_persist = Some(p.clone());
                        self.emit(id, Event::Persist(p));
                    }
                    for k in sends {
                        self.write_send(k);
                    }
                }
            }
            Name::Commit => self.sync(ev, false)?,
            Name::ApplyConfChange => {
                self.sync(ev, false)?;
                self.apply_conf_change(id);
            }
            Name::InitState | Name::Bootstrap => unreachable!("handled by step"),
            _ if ev.name.is_send() => {
                self.sync(ev, false)?;
                self.send(ev)?;
            }
            _ => {
                self.sync(ev, false)?;
                self.receive(ev)?;
            }
        }
        Ok(())
    }

    /// Compares the event's state with the rebuilt one: a commit that rose
    /// is a `commit` event; term, role and log must agree (they change only
    /// by the events that show them).
    fn sync(&mut self, ev: &Ev, announcing: bool) -> Result<(), TraceError> {
        let id = ev.nid;
        let file = self.file.clone();
        let n = self.node(id);
        if !announcing {
            n.announced = 0;
        }
        let expected_log = n.last_index() - n.announced;
        if ev.log != expected_log {
            return Err(field_err(
                &file,
                ev.line,
                "event.log",
                format!(
                    "node {id}'s last index is {} here, but its events so far give {expected_log}",
                    ev.log
                ),
            ));
        }
        let role_event = matches!(
            ev.name,
            Name::BecomeCandidate | Name::BecomeLeader | Name::BecomeFollower
        );
        if !role_event {
            if ev.term != n.term {
                return Err(field_err(
                    &file,
                    ev.line,
                    "event.state.term",
                    format!(
                        "node {id}'s term is {} here, but {} before, with no Become* event between",
                        ev.term, n.term
                    ),
                ));
            }
            if ev.role != n.role {
                return Err(field_err(
                    &file,
                    ev.line,
                    "event.role",
                    format!(
                        "node {id} is {:?} here, but {:?} before, with no Become* event between",
                        ev.role, n.role
                    ),
                ));
            }
            // A vote cast in this term shows first here (etcd sets it after
            // queueing the reply).
            n.vote = ev.vote;
        }
        if ev.commit > n.commit {
            n.commit = ev.commit;
            self.emit(id, Event::Commit(Commit { index: ev.commit }));
        } else {
            n.commit = ev.commit;
        }
        Ok(())
    }

    fn role(&mut self, ev: &Ev) {
        let id = ev.nid;
        let n = self.node(id);
        let (role, reason) = match ev.name {
            Name::BecomeCandidate => (Role::Candidate, RoleReason::ElectionTimeout),
            Name::BecomeLeader => (Role::Leader, RoleReason::WonElection),
            _ => {
                let reason = if ev.term > n.term {
                    RoleReason::HigherTerm
                } else {
                    match (n.role, n.prev) {
                        (Role::Follower, _) => {
                            // Already a follower in this term (etcd calls
                            // becomeFollower again to note the leader).
                            n.vote = ev.vote;
                            return;
                        }
                        (
                            Role::Candidate | Role::PreCandidate,
                            Some((_, Some(MsgType::App | MsgType::Heartbeat | MsgType::Snap))),
                        ) => RoleReason::LeaderDiscovered,
                        (
                            Role::Candidate | Role::PreCandidate,
                            Some((Name::ReceiveRequestVoteResponse, _)),
                        ) => RoleReason::LostElection,
                        (Role::Leader, prev)
                            if !prev.is_some_and(|(name, _)| name.is_receive()) =>
                        {
                            RoleReason::CheckQuorum
                        }
                        _ => RoleReason::Other,
                    }
                };
                (Role::Follower, reason)
            }
        };
        n.term = ev.term;
        n.vote = ev.vote;
        n.role = role;
        self.emit(
            id,
            Event::Role(RoleChange {
                role,
                term: ev.term,
                reason,
            }),
        );
    }

    fn send(&mut self, ev: &Ev) -> Result<(), TraceError> {
        let id = ev.nid;
        let file = self.file.clone();
        let m = ev.msg.clone().expect("checked by the parser");
        if m.from != id {
            return Err(self.err(
                ev.line,
                "event.msg.from",
                format!("node {id} sends a message from node {}", m.from),
            ));
        }
        let n = self.node(id);
        let mut entries = Vec::new();
        let rpc = match m.typ {
            MsgType::App => {
                let (from, to) = (m.index as usize, (m.index + m.entries) as usize);
                if to > n.log.len() {
                    return Err(field_err(
                        &file,
                        ev.line,
                        "event.msg.entries",
                        format!(
                            "node {id} sends entries {}..={} but its log ends at {}",
                            m.index + 1,
                            m.index + m.entries,
                            n.log.len()
                        ),
                    ));
                }
                entries = n.log[from..to].to_vec();
                Rpc::AppendEntries {
                    prev_index: m.index,
                    prev_term: m.log_term,
                    commit: m.commit,
                    entries: Some(self::entries(&entries)),
                    entry_count: None,
                    context: None,
                }
            }
            MsgType::AppResp if m.reject => Rpc::AppendEntriesReply {
                success: false,
                match_index: None,
                hint_index: Some(m.reject_hint),
                hint_term: Some(m.log_term),
                context: None,
            },
            MsgType::AppResp => Rpc::AppendEntriesReply {
                success: true,
                match_index: Some(m.index),
                hint_index: None,
                hint_term: None,
                context: None,
            },
            MsgType::Vote => Rpc::RequestVote {
                last_index: m.index,
                last_term: m.log_term,
                transfer: false,
            },
            MsgType::VoteResp => Rpc::RequestVoteReply { granted: !m.reject },
            MsgType::Heartbeat => Rpc::Heartbeat {
                commit: m.commit,
                context: None,
            },
            MsgType::HeartbeatResp => Rpc::HeartbeatReply { context: None },
            MsgType::Snap => return Err(snapshot_refused(&self.file, ev.line)),
        };
        let to_self = m.to == id;
        let msg = (!to_self).then(|| {
            let n = self.node(id);
            let msg_id = n.next_id;
            n.next_id += 1;
            Message::new(msg_id, m.from, m.to, m.term, rpc)
        });
        self.sends.push(Sent {
            emsg: m,
            msg,
            entries,
            written: to_self,
            received: false,
        });
        if !to_self {
            let k = self.sends.len() - 1;
            self.node(id).queued.push(k);
        }
        Ok(())
    }

    /// Writes the `send` of `sends[k]` on its sender, now.
    fn write_send(&mut self, k: usize) {
        let s = &mut self.sends[k];
        if s.written {
            return;
        }
        s.written = true;
        let Some(msg) = s.msg.clone() else {
            return;
        };
        self.emit(msg.from, Event::Send(MessageEvent { msg }));
    }

    fn receive(&mut self, ev: &Ev) -> Result<(), TraceError> {
        let id = ev.nid;
        let m = ev.msg.clone().expect("checked by the parser");
        if m.typ == MsgType::Snap {
            return Err(snapshot_refused(&self.file, ev.line));
        }
        if m.to != id {
            return Err(self.err(
                ev.line,
                "event.msg.to",
                format!("node {id} receives a message to node {}", m.to),
            ));
        }
        let Some(k) = self.sends.iter().position(|s| !s.received && s.emsg == m) else {
            return Err(self.err(
                ev.line,
                "event.msg",
                format!(
                    "{} of {}: no earlier send of this message that was not received yet \
                     (etcd's events carry no message id: a receive is paired with the earliest \
                     unreceived send of the same content)",
                    ev.name.as_str(),
                    m.describe()
                ),
            ));
        };
        self.sends[k].received = true;
        let Some(msg) = self.sends[k].msg.clone() else {
            // A message to itself: etcd's bookkeeping, not written.
            return Ok(());
        };
        if !self.sends[k].written {
            // Received before the Ready (or Advance) that lets it leave.
            let sender = msg.from;
            let s = self.node(sender);
            s.queued.retain(|&q| q != k);
            if let Some((_, sends)) = &mut s.ready {
                sends.retain(|&q| q != k);
            }
            self.notes.push(format!(
                "line {}: node {id} receives {} before its sender's Ready{} lets it leave; its \
                 send is written just before",
                ev.line,
                m.describe(),
                if self.durable { "/Advance" } else { "" }
            ));
            self.write_send(k);
        }
        if m.typ == MsgType::App {
            self.node(id).pending_append = Some(PendingAppend {
                term: m.term,
                prev_index: m.index,
                prev_term: m.log_term,
                entries: self.sends[k].entries.clone(),
            });
        }
        self.emit(id, Event::Receive(MessageEvent { msg }));
        Ok(())
    }

    /// A follower's handling of the AppendEntries it received (Figure 2,
    /// AppendEntries receiver steps 1-4; etcd's `handleAppendEntries` and
    /// `maybeAppend`), once its role change is known.
    fn apply_append(&mut self, id: NodeId) -> Result<(), TraceError> {
        let n = self.node(id);
        let Some(p) = n.pending_append.take() else {
            return Ok(());
        };
        // 1. A stale term is refused; etcd ignores an append below its
        // commit index (feature stale-append-reply).
        if p.term != n.term || n.role != Role::Follower || p.prev_index < n.commit {
            return Ok(());
        }
        // 2. The log must hold prev_term at prev_index.
        if p.prev_index > n.last_index() {
            return Ok(());
        }
        if p.prev_index > 0 && n.term_at(p.prev_index) != p.prev_term {
            return Ok(());
        }
        // 3. A conflicting entry and all that follow it are removed (were
        // it a committed one, the validator says so: the converter only
        // reports what the node did).
        // 4. New entries are appended.
        let mut first_new = None;
        for (k, e) in p.entries.iter().enumerate() {
            let index = p.prev_index + 1 + k as u64;
            if index > n.last_index() {
                first_new = Some(k);
                break;
            }
            if n.term_at(index) != e.term {
                n.log.truncate(index as usize - 1);
                first_new = Some(k);
                self.emit(id, Event::Truncate(Truncate { from: index }));
                break;
            }
        }
        let n = self.node(id);
        if let Some(k) = first_new {
            let index = n.last_index() + 1;
            let new = p.entries[k..].to_vec();
            n.log.extend(new.iter().cloned());
            self.emit(
                id,
                Event::Append(Append {
                    index,
                    entries: Some(entries(&new)),
                    entry_count: None,
                }),
            );
        }
        Ok(())
    }

    fn finish(mut self, lines: u64, stopped: Option<Stopped>) -> Result<Conversion, TraceError> {
        let Some(members) = self.members.clone() else {
            return Err(TraceError::new(
                &self.file,
                0,
                ErrorKind::Consistency,
                "no node starts with a configuration (Bootstrap or a configuration in its first \
                 state): the cluster's members are unknown",
            ));
        };
        // Every node with events: the initial voters and those that join.
        let mut nodes: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.seq > 0)
            .map(|(&id, _)| id)
            .chain(members.iter().copied())
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        let unsent = self.sends.iter().filter(|s| !s.written).count();
        if unsent > 0 {
            self.notes.push(format!(
                "{} queued but their Ready{} never came: not written as sent",
                if unsent == 1 {
                    "1 message was".to_string()
                } else {
                    format!("{unsent} messages were")
                },
                if self.durable { " and Advance" } else { "" }
            ));
        }
        let mut events = vec![
            EventType::Init,
            EventType::Role,
            EventType::Send,
            EventType::Receive,
            EventType::Append,
            EventType::Truncate,
            EventType::Commit,
            EventType::Apply,
        ];
        if self.durable {
            events.push(EventType::Persist);
        } else {
            self.notes.push(
                "the file logs no Advance, so when state became durable is not shown: persist is \
                 not declared and durability is not checked"
                    .to_string(),
            );
        }
        let mut header = Header::new(
            format!("etcd-io/raft (imported from {})", self.file),
            nodes.clone(),
            Observes {
                events,
                state: vec![
                    StateField::Term,
                    StateField::Vote,
                    StateField::Role,
                    StateField::Commit,
                    StateField::LastIndex,
                ],
                // Every entry is determined: see the module's documentation.
                entries: EntryDetail::Full,
            },
        );
        if nodes != members {
            header.voters = Some(members);
        }
        // The etcd trace does not describe its network; the harness may
        // drop and reorder messages. Duplicates cannot be told from a
        // receive without a send, and are refused.
        header.network = Network {
            loss: true,
            duplication: false,
            reorder: true,
        };
        header.features = Some(FEATURES.iter().map(|s| s.to_string()).collect());
        header.params = Some(serde_json::json!({
            "imported_from": "etcd-raft",
            "source": self.file,
            "source_lines": lines,
            "converted_through_line": stopped.as_ref().map_or(lines, |s| s.line - 1),
        }));
        Ok(Conversion {
            header,
            records: self.records,
            lines,
            stopped,
            notes: self.notes,
        })
    }
}

fn snapshot_refused(file: &str, line: u64) -> TraceError {
    field_err(
        file,
        line,
        "event.msg.type",
        "MsgSnap is not converted: etcd's trace zeroes the snapshot's term (logTerm)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An etcd line of a follower in term 0 with an empty log.
    fn line(name: &str, conf: &str) -> String {
        format!(
            "{{\"ts\":1.0,\"event\":{{\"name\":\"{name}\",\"nid\":\"1\",\"state\":{{\"term\":0,\
             \"vote\":\"0\",\"commit\":0}},\"role\":\"StateFollower\",\"log\":0,\
             \"conf\":[{conf},[]]}}}}\n"
        )
    }

    #[test]
    fn unknown_event_names_the_field() {
        let text = line("Sleep", "[]");
        let e = convert(text.as_bytes(), "t.ndjson").unwrap_err();
        assert_eq!(e.line, 1);
        assert_eq!(e.field.as_deref(), Some("event.name"));
        assert_eq!(e.kind, ErrorKind::UnknownEvent);
    }

    #[test]
    fn a_cut_last_line_is_truncated() {
        let mut text = line("InitState", "[\"1\"]");
        text.push_str("{\"ts\":1.0,\"event\":{\"name\":\"Rea");
        let e = convert(text.as_bytes(), "t.ndjson").unwrap_err();
        assert_eq!((e.line, e.kind), (2, ErrorKind::Truncated));
    }

    #[test]
    fn a_node_that_starts_empty_boots() {
        let text = line("InitState", "[\"1\"]") + &line("Ready", "[\"1\"]");
        let c = convert(text.as_bytes(), "t.ndjson").unwrap();
        assert_eq!(c.header.nodes, vec![1]);
        let Record::Node(e) = &c.records[0] else {
            panic!("{:?}", c.records)
        };
        assert!(matches!(&e.event, Event::Init(i) if i.reason == InitReason::Boot));
    }

    /// An etcd line of node `nid` with state `(term, vote, commit)`.
    fn ev(name: &str, nid: u64, st: (u64, u64, u64), role: &str, log: u64, msg: &str) -> String {
        let msg = if msg.is_empty() {
            String::new()
        } else {
            format!(",\"msg\":{msg}")
        };
        format!(
            "{{\"ts\":1.0,\"event\":{{\"name\":\"{name}\",\"nid\":\"{nid}\",\"state\":{{\
             \"term\":{},\"vote\":\"{}\",\"commit\":{}}},\"role\":\"State{role}\",\"log\":{log},\
             \"conf\":[[\"1\",\"2\",\"3\"],[]]{msg}}}}}\n",
            st.0, st.1, st.2
        )
    }

    /// A message: `(type, term, from, to, entries, index, reject)`.
    fn msg(m: (&str, u64, u64, u64, u64, u64, bool)) -> String {
        format!(
            "{{\"type\":\"{}\",\"term\":{},\"from\":\"{}\",\"to\":\"{}\",\"entries\":{},\
             \"logTerm\":0,\"index\":{},\"commit\":0,\"vote\":\"0\",\"reject\":{},\"rejectHint\":0}}",
            m.0, m.1, m.2, m.3, m.4, m.5, m.6
        )
    }

    #[test]
    fn a_follower_replaces_a_conflicting_entry() {
        // Node 1 leads term 1 and appends entry 1 alone; node 2 wins term 2
        // with node 3's vote and sends its own entry 1 (term 2) to node 1,
        // which steps down and replaces its entry.
        let (f, c, l) = ("Follower", "Candidate", "Leader");
        let vote12 = msg(("MsgVote", 1, 1, 2, 0, 0, false));
        let grant21 = msg(("MsgVoteResp", 1, 2, 1, 0, 0, false));
        let vote23 = msg(("MsgVote", 2, 2, 3, 0, 0, false));
        let grant32 = msg(("MsgVoteResp", 2, 3, 2, 0, 0, false));
        let app21 = msg(("MsgApp", 2, 2, 1, 1, 0, false));
        let ack12 = msg(("MsgAppResp", 2, 1, 2, 0, 1, false));
        let lines = [
            ev("InitState", 1, (0, 0, 0), f, 0, ""),
            ev("InitState", 2, (0, 0, 0), f, 0, ""),
            ev("InitState", 3, (0, 0, 0), f, 0, ""),
            ev("BecomeCandidate", 1, (1, 1, 0), c, 0, ""),
            ev("SendRequestVoteRequest", 1, (1, 1, 0), c, 0, &vote12),
            ev("Ready", 1, (1, 1, 0), c, 0, ""),
            ev("ReceiveRequestVoteRequest", 2, (0, 0, 0), f, 0, &vote12),
            ev("BecomeFollower", 2, (1, 0, 0), f, 0, ""),
            ev("SendRequestVoteResponse", 2, (1, 0, 0), f, 0, &grant21),
            ev("Ready", 2, (1, 1, 0), f, 0, ""),
            ev("ReceiveRequestVoteResponse", 1, (1, 1, 0), c, 0, &grant21),
            ev("BecomeLeader", 1, (1, 1, 0), l, 0, ""),
            ev("Replicate", 1, (1, 1, 0), l, 0, ""),
            ev("Ready", 1, (1, 1, 0), l, 1, ""),
            ev("BecomeCandidate", 2, (2, 2, 0), c, 0, ""),
            ev("SendRequestVoteRequest", 2, (2, 2, 0), c, 0, &vote23),
            ev("Ready", 2, (2, 2, 0), c, 0, ""),
            ev("ReceiveRequestVoteRequest", 3, (0, 0, 0), f, 0, &vote23),
            ev("BecomeFollower", 3, (2, 0, 0), f, 0, ""),
            ev("SendRequestVoteResponse", 3, (2, 0, 0), f, 0, &grant32),
            ev("Ready", 3, (2, 2, 0), f, 0, ""),
            ev("ReceiveRequestVoteResponse", 2, (2, 2, 0), c, 0, &grant32),
            ev("BecomeLeader", 2, (2, 2, 0), l, 0, ""),
            ev("Replicate", 2, (2, 2, 0), l, 0, ""),
            ev("SendAppendEntriesRequest", 2, (2, 2, 0), l, 1, &app21),
            ev("Ready", 2, (2, 2, 0), l, 1, ""),
            ev("ReceiveAppendEntriesRequest", 1, (1, 1, 0), l, 1, &app21),
            ev("BecomeFollower", 1, (2, 0, 0), f, 1, ""),
            ev("SendAppendEntriesResponse", 1, (2, 0, 0), f, 1, &ack12),
            ev("Ready", 1, (2, 0, 0), f, 1, ""),
        ];
        let c = convert(lines.concat().as_bytes(), "t.ndjson").unwrap();
        assert_eq!(c.header.observes.entries, EntryDetail::Full);
        let node1: Vec<&Event> = c
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Node(e) if e.node == 1 => Some(&e.event),
                _ => None,
            })
            .collect();
        let k = node1
            .iter()
            .position(|e| matches!(e, Event::Receive(m) if m.msg.rpc.name() == "append_entries"))
            .expect("node 1 receives node 2's append");
        assert!(
            matches!(node1[k + 1], Event::Role(r) if r.reason == RoleReason::HigherTerm),
            "{:#?}",
            &node1[k..]
        );
        assert_eq!(node1[k + 2], &Event::Truncate(Truncate { from: 1 }));
        assert_eq!(
            node1[k + 3],
            &Event::Append(Append {
                index: 1,
                // The entry node 2 appended when it took office.
                entries: Some(vec![Entry {
                    term: 2,
                    data: Some(EntryData::Noop)
                }]),
                entry_count: None,
            })
        );
        assert!(matches!(node1[k + 4], Event::Send(m) if m.msg.to == 2));
    }
}
