//! A streaming, memory-bounded reader of `raft-trace/1` files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{ErrorKind, TraceError};
use crate::event::*;
use crate::history::ClientEvent;

/// The longest line the reader accepts by default: 16 MiB. A longer line is
/// an error, found without holding more than this much of it in memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

/// Reads a trace line by line: the header first ([`TraceReader::header`]),
/// then one [`Record`] per line through the iterator. Memory stays bounded by
/// the longest line, however large the file. After the first error the
/// iterator ends.
pub struct TraceReader<R> {
    input: R,
    file: String,
    line: u64,
    max_line: usize,
    header: Header,
    buf: Vec<u8>,
    last_seq: BTreeMap<NodeId, u64>,
    done: bool,
    /// The fast path's post states of earlier lines.
    posts: crate::fast::PostCache,
}

/// `line` decoded by the slow path alone (see [`crate::__slow_decode`]).
pub(crate) fn slow_decode(line: &[u8]) -> Result<Record, TraceError> {
    let mut r = TraceReader {
        input: &b""[..],
        file: "line".to_string(),
        line: 1,
        max_line: DEFAULT_MAX_LINE_BYTES,
        header: Header::new("", vec![], Observes::default()),
        buf: line.to_vec(),
        last_seq: BTreeMap::new(),
        done: false,
        posts: Default::default(),
    };
    r.decode_slow(true)
}

/// Opens `path` and reads its header.
pub fn read_file(path: &Path) -> Result<TraceReader<BufReader<File>>, TraceError> {
    let name = path.display().to_string();
    let file = File::open(path)
        .map_err(|e| TraceError::new(&name, 0, ErrorKind::Io, format!("cannot open: {e}")))?;
    TraceReader::new(BufReader::with_capacity(1 << 16, file), &name)
}

/// One physical line as read from the input.
enum Line {
    /// A complete line (without its newline); `terminated` is false for a
    /// last line with no newline.
    Text {
        terminated: bool,
    },
    Eof,
}

impl<R: BufRead> TraceReader<R> {
    /// Reads the header from `input`; `file` names the input in errors.
    pub fn new(input: R, file: &str) -> Result<Self, TraceError> {
        Self::with_max_line(input, file, DEFAULT_MAX_LINE_BYTES)
    }

    /// As [`TraceReader::new`] with another line-length limit.
    pub fn with_max_line(input: R, file: &str, max_line: usize) -> Result<Self, TraceError> {
        let mut r = TraceReader {
            input,
            file: file.to_string(),
            line: 0,
            max_line,
            header: Header::new("", vec![], Observes::default()),
            buf: Vec::new(),
            last_seq: BTreeMap::new(),
            done: false,
            posts: Default::default(),
        };
        r.header = r.read_header()?;
        Ok(r)
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file name given at creation.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The number of the line last read (1-based).
    pub fn line(&self) -> u64 {
        self.line
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> TraceError {
        TraceError::new(&self.file, self.line, kind, msg)
    }

    /// Reads the next non-blank line into `self.buf`.
    fn next_line(&mut self) -> Result<Line, TraceError> {
        loop {
            self.buf.clear();
            self.line += 1;
            let mut terminated = false;
            loop {
                let chunk = match self.input.fill_buf() {
                    Ok(c) => c,
                    Err(e) => {
                        let msg = format!("read error: {e}");
                        return Err(TraceError::new(&self.file, self.line, ErrorKind::Io, msg));
                    }
                };
                if chunk.is_empty() {
                    break;
                }
                let (take, found) = match memchr::memchr(b'\n', chunk) {
                    Some(i) => (i, true),
                    None => (chunk.len(), false),
                };
                if self.buf.len() + take > self.max_line {
                    let msg = format!(
                        "line is longer than the limit of {} bytes (is the file ndjson?)",
                        self.max_line
                    );
                    return Err(TraceError::new(
                        &self.file,
                        self.line,
                        ErrorKind::TooLong,
                        msg,
                    ));
                }
                self.buf.extend_from_slice(&chunk[..take]);
                self.input.consume(take + usize::from(found));
                if found {
                    terminated = true;
                    break;
                }
            }
            if !terminated && self.buf.is_empty() {
                return Ok(Line::Eof);
            }
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                if terminated {
                    continue;
                }
                return Ok(Line::Eof);
            }
            return Ok(Line::Text { terminated });
        }
    }

    /// Parses `self.buf` as a JSON object.
    /// A `null` where the format has none (schema.json allows it only for
    /// a vote, a leader and an operation's `from` and `value`).
    fn no_null(&self, map: &Map<String, Value>) -> Result<(), TraceError> {
        match disallowed_null_in(map, "") {
            Some(field) => Err(self
                .err(
                    ErrorKind::Field,
                    "null is not a value of this field (leave the field out instead)",
                )
                .with_field(&field)),
            None => Ok(()),
        }
    }

    fn parse_object(&self, terminated: bool) -> Result<Map<String, Value>, TraceError> {
        if let Err(e) = std::str::from_utf8(&self.buf) {
            let msg = format!(
                "not valid UTF-8 (invalid byte at column {})",
                e.valid_up_to() + 1
            );
            return Err(self.err(ErrorKind::Utf8, msg));
        }
        match serde_json::from_slice::<Value>(&self.buf) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(self.err(
                ErrorKind::Syntax,
                format!("expected a JSON object, found {}", describe(&other)),
            )),
            Err(e) if !terminated && e.is_eof() => Err(self.err(
                ErrorKind::Truncated,
                "truncated last line: the file ends in the middle of a JSON object",
            )),
            Err(e) => Err(self.err(
                ErrorKind::Syntax,
                format!(
                    "not valid JSON: {} at column {}",
                    strip_position(&e),
                    e.column()
                ),
            )),
        }
    }

    fn read_header(&mut self) -> Result<Header, TraceError> {
        let terminated = match self.next_line()? {
            Line::Eof => {
                self.line = 0;
                return Err(self.err(
                    ErrorKind::Empty,
                    "empty file: expected a header line ({\"type\":\"header\",\"format\":\"raft-trace/1\",...})",
                ));
            }
            Line::Text { terminated } => terminated,
        };
        let map = self.parse_object(terminated)?;
        self.no_null(&map)?;
        match map.get("type") {
            Some(Value::String(t)) if t == "header" => {}
            Some(Value::String(t)) => {
                return Err(self
                    .err(
                        ErrorKind::Header,
                        format!(
                            "the first line must be the header, found an event of type \"{t}\""
                        ),
                    )
                    .with_field("type"))
            }
            _ => {
                return Err(self
                    .err(
                        ErrorKind::Header,
                        "the first line must be the header (\"type\": \"header\")",
                    )
                    .with_field("type"))
            }
        }
        match map.get("format") {
            Some(Value::String(f)) if f == crate::FORMAT => {}
            Some(Value::String(f)) => {
                return Err(self
                    .err(
                        ErrorKind::Version,
                        format!(
                            "unsupported format \"{f}\"; this reader understands \"{}\"",
                            crate::FORMAT
                        ),
                    )
                    .with_field("format"))
            }
            Some(other) => {
                return Err(self
                    .err(
                        ErrorKind::Version,
                        format!("expected a string, found {}", describe(other)),
                    )
                    .with_field("format"))
            }
            None => {
                return Err(self
                    .err(ErrorKind::Header, "missing field")
                    .with_field("format"))
            }
        }
        let header: Header = self.typed(Value::Object(map), "", ErrorKind::Header)?;
        if let Some(dup) = duplicate(&header.nodes) {
            return Err(self
                .err(ErrorKind::Header, format!("node {dup} is listed twice"))
                .with_field("nodes"));
        }
        if header.nodes.contains(&0) {
            return Err(self
                .err(
                    ErrorKind::Header,
                    "node ids must be positive (0 is not a node)",
                )
                .with_field("nodes"));
        }
        // The initial configuration: members of `nodes`, each once, no
        // server both a voter and a learner.
        for (field, ids) in [("voters", &header.voters), ("learners", &header.learners)] {
            let Some(ids) = ids else { continue };
            let bad = duplicate(ids)
                .map(|d| format!("node {d} is listed twice"))
                .or_else(|| {
                    ids.iter()
                        .find(|j| !header.nodes.contains(j))
                        .map(|j| format!("node {j} is not one of \"nodes\" {:?}", header.nodes))
                })
                .or_else(|| {
                    let voters = header.voters.as_deref().unwrap_or(&header.nodes);
                    (field == "learners")
                        .then(|| ids.iter().find(|j| voters.contains(j)))
                        .flatten()
                        .map(|j| format!("node {j} is also a voter"))
                })
                .or_else(|| {
                    (field == "voters" && ids.is_empty() && !header.nodes.is_empty())
                        .then(|| "the initial configuration needs a voter".to_string())
                });
            if let Some(msg) = bad {
                return Err(self.err(ErrorKind::Header, msg).with_field(field));
            }
        }
        Ok(header)
    }

    /// Deserializes `value` as `T`, naming the failing field (under `prefix`).
    fn typed<T: DeserializeOwned>(
        &self,
        value: Value,
        prefix: &str,
        kind: ErrorKind,
    ) -> Result<T, TraceError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let mut field = match (prefix.is_empty(), path == ".") {
                (true, _) => path.clone(),
                (false, true) => prefix.to_string(),
                (false, false) => format!("{prefix}.{path}"),
            };
            let mut msg = reword(&e.into_inner().to_string());
            // serde names a missing or unknown field in the message, not the path.
            if let Some(name) = quoted_after(&msg, "missing field ") {
                field = join(&field, &name);
                msg = "missing field".to_string();
            } else if let Some(name) = quoted_after(&msg, "unknown field ") {
                field = join(&field, &name);
                msg = format!(
                    "unknown field{}",
                    msg.split_once(',')
                        .map(|x| format!(",{}", x.1))
                        .unwrap_or_default()
                );
            }
            let err = self.err(kind, msg);
            if field.is_empty() || field == "." {
                err
            } else {
                err.with_field(field)
            }
        })
    }

    fn read_record(&mut self, terminated: bool) -> Result<Record, TraceError> {
        // The fast path decodes well-formed lines straight from the bytes; any
        // line it does not accept goes through the slow path, which finds and
        // names exactly what is wrong.
        let record = match crate::fast::decode_with(&self.buf, &mut self.posts) {
            Some(r) => r,
            None => self.decode_slow(terminated)?,
        };
        self.check_record(&record)?;
        Ok(record)
    }

    /// Consistency with the header and earlier lines.
    fn check_record(&mut self, record: &Record) -> Result<(), TraceError> {
        let e = match record {
            Record::Client(c) => {
                // A history that stands alone may name nodes it does not list.
                if let (ClientEvent::Invoke(i), false) = (&**c, self.header.nodes.is_empty()) {
                    if let Some(n) = i.node {
                        self.check_node(n, "node")?;
                    }
                }
                return Ok(());
            }
            Record::Node(e) => e,
        };
        let (node, seq, event) = (e.node, e.seq, &e.event);
        self.check_node(node, "node")?;
        if let Event::Send(m) | Event::Receive(m) = event {
            self.check_node(m.msg.from, "msg.from")?;
            self.check_node(m.msg.to, "msg.to")?;
            let own = if matches!(event, Event::Send(_)) {
                m.msg.from
            } else {
                m.msg.to
            };
            if own != node {
                let side = if matches!(event, Event::Send(_)) {
                    "from"
                } else {
                    "to"
                };
                return Err(self
                    .err(
                        ErrorKind::Consistency,
                        format!("is {own}, but the event is node {node}'s"),
                    )
                    .with_field(format!("msg.{side}")));
            }
        }
        if let Some(&prev) = self.last_seq.get(&node) {
            if seq <= prev {
                return Err(self
                    .err(
                        ErrorKind::Consistency,
                        format!("{seq} does not increase on node {node}'s previous event ({prev})"),
                    )
                    .with_field("seq"));
            }
        }
        self.last_seq.insert(node, seq);
        Ok(())
    }

    /// Decodes `self.buf` through a `serde_json::Value`, naming the field at
    /// fault when the line is not a valid record.
    fn decode_slow(&mut self, terminated: bool) -> Result<Record, TraceError> {
        let mut map = self.parse_object(terminated)?;
        self.no_null(&map)?;
        let ty = match map.remove("type") {
            Some(Value::String(t)) => t,
            Some(other) => {
                return Err(self
                    .err(
                        ErrorKind::Field,
                        format!("expected a string, found {}", describe(&other)),
                    )
                    .with_field("type"))
            }
            None => {
                return Err(self
                    .err(ErrorKind::Field, "missing field")
                    .with_field("type"))
            }
        };
        let Some(event_type) = EventType::from_name(&ty) else {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            let msg = if ty == "header" {
                "a second header; only the first line may be a header".to_string()
            } else {
                format!("unknown event type \"{ty}\" (known: {})", known.join(", "))
            };
            return Err(self.err(ErrorKind::UnknownEvent, msg).with_field("type"));
        };
        if matches!(event_type, EventType::Invoke | EventType::Return) {
            map.insert("type".into(), Value::String(ty));
            let ev: ClientEvent = self.typed(Value::Object(map), "", ErrorKind::Field)?;
            return Ok(Record::Client(Box::new(ev)));
        }
        let node: NodeId = self.take_in(&mut map, "node", "")?;
        let seq: u64 = self.take_in(&mut map, "seq", "")?;
        let time: Option<u64> = self.take_opt(&mut map, "time")?;
        let post: Option<PostState> = self.take_opt(&mut map, "post")?;
        let obj = Value::Object(map);
        let event = match event_type {
            EventType::Init => Event::Init(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Crash => Event::Crash(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Role => Event::Role(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Timeout => Event::Timeout(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Send => Event::Send(self.message(obj)?),
            EventType::Receive => Event::Receive(self.message(obj)?),
            EventType::Append => Event::Append(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Truncate => Event::Truncate(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Persist => Event::Persist(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Commit => Event::Commit(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Apply => Event::Apply(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Snapshot => Event::Snapshot(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Install => Event::Install(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Read => Event::Read(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Gap => Event::Gap(self.typed(obj, "", ErrorKind::Field)?),
            EventType::Invoke | EventType::Return => unreachable!("handled above"),
        };
        Ok(Record::Node(Box::new(NodeEvent {
            node,
            seq,
            time,
            event,
            post,
        })))
    }

    /// A message event: `msg` with its header fields and its `rpc` body.
    fn message(&self, obj: Value) -> Result<MessageEvent, TraceError> {
        let Value::Object(mut outer) = obj else {
            unreachable!("an object")
        };
        let msg = match outer.remove("msg") {
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(self
                    .err(
                        ErrorKind::Field,
                        format!("expected an object, found {}", describe(&other)),
                    )
                    .with_field("msg"))
            }
            None => {
                return Err(self
                    .err(ErrorKind::Field, "missing field")
                    .with_field("msg"))
            }
        };
        if let Some(k) = outer.keys().next() {
            return Err(self
                .err(ErrorKind::Field, "unknown field")
                .with_field(k.clone()));
        }
        let mut msg = msg;
        let id = self.take_in(&mut msg, "id", "msg")?;
        let from = self.take_in(&mut msg, "from", "msg")?;
        let to = self.take_in(&mut msg, "to", "msg")?;
        let term = self.take_in(&mut msg, "term", "msg")?;
        // Feature commit-any-message: `commit` belongs to the message
        // unless the RPC has one of its own.
        let own = Rpc::has_own_commit(msg.get("rpc").and_then(Value::as_str));
        let commit = if own {
            None
        } else {
            self.take_opt_in(&mut msg, "commit", "msg")?
        };
        let commit_term = self.take_opt_in(&mut msg, "commit_term", "msg")?;
        let rpc: Rpc = self.typed(Value::Object(msg), "msg", ErrorKind::Field)?;
        let msg = Message {
            id,
            from,
            to,
            term,
            rpc,
            commit,
            commit_term,
        };
        if let Some((field, what)) = msg.commit_fields_error() {
            return Err(self
                .err(ErrorKind::Field, what)
                .with_field(join("msg", field)));
        }
        Ok(MessageEvent { msg })
    }

    fn take_in<T: DeserializeOwned>(
        &self,
        map: &mut Map<String, Value>,
        key: &str,
        prefix: &str,
    ) -> Result<T, TraceError> {
        let name = join(prefix, key);
        match map.remove(key) {
            Some(v) => self.typed(v, &name, ErrorKind::Field),
            None => Err(self.err(ErrorKind::Field, "missing field").with_field(name)),
        }
    }

    fn take_opt_in<T: DeserializeOwned>(
        &self,
        map: &mut Map<String, Value>,
        key: &str,
        prefix: &str,
    ) -> Result<Option<T>, TraceError> {
        match map.remove(key) {
            None => Ok(None),
            Some(v) => self
                .typed(v, &join(prefix, key), ErrorKind::Field)
                .map(Some),
        }
    }

    fn take_opt<T: DeserializeOwned>(
        &self,
        map: &mut Map<String, Value>,
        key: &str,
    ) -> Result<Option<T>, TraceError> {
        match map.remove(key) {
            Some(Value::Null) | None => Ok(None),
            Some(v) => self.typed(v, key, ErrorKind::Field).map(Some),
        }
    }

    fn check_node(&self, node: NodeId, field: &str) -> Result<(), TraceError> {
        if self.header.nodes.contains(&node) {
            Ok(())
        } else {
            Err(self
                .err(
                    ErrorKind::Consistency,
                    format!(
                        "node {node} is not one of the header's nodes {:?}",
                        self.header.nodes
                    ),
                )
                .with_field(field))
        }
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<Record, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = match self.next_line() {
            Ok(Line::Eof) => {
                self.done = true;
                return None;
            }
            Ok(Line::Text { terminated }) => self.read_record(terminated),
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

/// Reads a whole file into memory (for small inputs and tests).
pub fn read_all<R: Read>(input: R, file: &str) -> Result<(Header, Vec<Record>), TraceError> {
    let reader = TraceReader::new(BufReader::new(input), file)?;
    let header = reader.header().clone();
    let records = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((header, records))
}

fn duplicate(nodes: &[NodeId]) -> Option<NodeId> {
    let mut seen = std::collections::BTreeSet::new();
    nodes.iter().copied().find(|n| !seen.insert(*n))
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() || prefix == "." {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => {
            format!("a string \"{}...\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// serde_json appends " at line L column C"; drop it (lines are ours).
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The name in `"...prefix `name`..."`.
fn quoted_after(msg: &str, prefix: &str) -> Option<String> {
    let rest = msg.strip_prefix(prefix)?;
    let rest = rest.strip_prefix('`')?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

/// Turns serde's "invalid type: string \"x\", expected u64" into
/// "expected an unsigned integer, found string \"x\"".
fn reword(msg: &str) -> String {
    let plain = |t: &str| -> String {
        match t {
            "u64" | "u32" | "u16" | "u8" | "usize" => "an unsigned integer".into(),
            "i64" | "i32" => "an integer".into(),
            "a boolean" | "bool" => "true or false".into(),
            other => other.to_string(),
        }
    };
    for tag in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(tag) {
            if let Some((found, expected)) = rest.rsplit_once(", expected ") {
                let found = found.replace("integer `", "").replace('`', "");
                return format!("expected {}, found {}", plain(expected), found);
            }
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        return format!("unknown value {rest}");
    }
    msg.to_string()
}

/// The fields whose value may be `null` (schema.json): a vote or leader
/// that is none, a cas without an expected value, an absent value. Every
/// other optional field is left out, not `null`. `data` and `params` hold any
/// JSON and are not looked into.
const NULLABLE: [&str; 4] = ["vote", "leader", "from", "value"];
const ANY_JSON: [&str; 2] = ["data", "params"];

/// The path of the first field in `v` whose value is a `null` the format
/// does not allow, if any.
fn disallowed_null(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::Object(map) => disallowed_null_in(map, path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| disallowed_null(x, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// [`disallowed_null`] for the fields of one object.
fn disallowed_null_in(map: &Map<String, Value>, path: &str) -> Option<String> {
    map.iter().find_map(|(k, x)| {
        let here = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match x {
            Value::Null if !NULLABLE.contains(&k.as_str()) => Some(here),
            _ if ANY_JSON.contains(&k.as_str()) => None,
            _ => disallowed_null(x, &here),
        }
    })
}
