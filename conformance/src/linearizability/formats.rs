//! Input formats: `raft-trace/1` histories (or the client events inside a
//! full trace), Jepsen's `jepsen.util` log lines, and Jepsen/Porcupine EDN
//! maps, one per line. Each is read into a [`History`]; every error names
//! the file and the line.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use raft_trace::{ClientEvent, Op, Record, Status};

use super::history::{Call, History, HistoryOp, Outcome};

/// A history file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", at_line(.line))]
pub struct FormatError {
    pub file: String,
    /// 1-based; 0 when the error concerns the whole file.
    pub line: u64,
    pub message: String,
}

/// `:LINE` after a file name, nothing for an error about the whole file.
fn at_line(line: &u64) -> String {
    match line {
        0 => String::new(),
        l => format!(":{l}"),
    }
}

/// The formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `raft-trace/1` ndjson (a history or a full trace).
    RaftTrace,
    /// Jepsen log lines: `INFO jepsen.util - 3 :ok :read 4`.
    Jepsen,
    /// EDN maps: `{:process 0, :type :invoke, :f :put, :key "1", :value "x"}`.
    Edn,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::RaftTrace => "raft-trace",
            Format::Jepsen => "jepsen",
            Format::Edn => "edn",
        }
    }

    pub fn from_name(s: &str) -> Option<Format> {
        match s {
            "raft-trace" | "raft-trace/1" => Some(Format::RaftTrace),
            "jepsen" => Some(Format::Jepsen),
            "edn" | "porcupine" => Some(Format::Edn),
            _ => None,
        }
    }
}

/// Reads `path` in `format`, or in the format its first line shows.
pub fn read_history(path: &Path, format: Option<Format>) -> Result<(History, Format), FormatError> {
    let file = path.display().to_string();
    let text = fs::read(path).map_err(|e| FormatError {
        file: file.clone(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    read_history_from(&file, &text, format)
}

/// Reads a history from `text` (a file's contents, or standard input's)
/// in `format`, or in the format its first line shows; `file` names it in
/// messages.
pub fn read_history_from(
    file: &str,
    text: &[u8],
    format: Option<Format>,
) -> Result<(History, Format), FormatError> {
    let err = |line: u64, message: String| FormatError {
        file: file.to_string(),
        line,
        message,
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(err(0, "the file is empty: no operations to check".into()));
    }
    let format = match format {
        Some(f) => f,
        None => detect(text).ok_or_else(|| {
            err(1, "unknown format (expected raft-trace/1 JSON lines, Jepsen log lines or EDN maps); use --format".into())
        })?,
    };
    let history = match format {
        Format::RaftTrace => raft_trace_history(file, text)?,
        Format::Jepsen | Format::Edn => {
            let text = std::str::from_utf8(text)
                .map_err(|e| err(0, format!("cannot read as UTF-8 text: {e}")))?;
            if format == Format::Jepsen {
                parse_jepsen(text, file)?
            } else {
                parse_edn(text, file)?
            }
        }
    };
    Ok((history, format))
}

/// Guesses the format from the first non-blank line.
pub fn detect(text: &[u8]) -> Option<Format> {
    let first = text
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty())?;
    if first.starts_with(b"{\"") || first.starts_with(b"{ \"") {
        Some(Format::RaftTrace)
    } else if first.starts_with(b"{:") {
        Some(Format::Edn)
    } else if first.windows(11).any(|w| w == b"jepsen.util") {
        Some(Format::Jepsen)
    } else {
        None
    }
}

/// Pairs invocations with completions, per process, and builds the
/// history. A process runs one operation at a time.
struct Pairer {
    file: String,
    ops: Vec<HistoryOp>,
    open: HashMap<u64, usize>,
    clock: u64,
}

impl Pairer {
    fn new(file: &str) -> Self {
        Pairer {
            file: file.to_string(),
            ops: Vec::new(),
            open: HashMap::new(),
            clock: 0,
        }
    }

    fn err(&self, line: u64, message: impl Into<String>) -> FormatError {
        FormatError {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }

    fn invoke(
        &mut self,
        line: u64,
        client: u64,
        key: String,
        call: Call,
    ) -> Result<(), FormatError> {
        if let Some(&prev) = self.open.get(&client) {
            return Err(self.err(
                line,
                format!(
                    "process {client} invokes an operation while its operation from line {} has not completed",
                    self.ops[prev].invoke_line
                ),
            ));
        }
        self.clock += 1;
        self.open.insert(client, self.ops.len());
        self.ops.push(HistoryOp {
            client,
            key,
            call,
            outcome: Outcome::Unknown,
            invoke: self.clock,
            ret: None,
            invoke_line: line,
            return_line: None,
            applied_line: None,
        });
        Ok(())
    }

    /// Completes the open operation of `client`. `same` checks that the
    /// completion describes the same operation.
    fn complete(
        &mut self,
        line: u64,
        client: u64,
        outcome: Outcome,
        same: impl FnOnce(&HistoryOp) -> Result<(), String>,
    ) -> Result<(), FormatError> {
        let Some(i) = self.open.remove(&client) else {
            return Err(self.err(
                line,
                format!("process {client} completes an operation it never invoked"),
            ));
        };
        same(&self.ops[i]).map_err(|m| self.err(line, m))?;
        self.clock += 1;
        let op = &mut self.ops[i];
        op.return_line = Some(line);
        if outcome != Outcome::Unknown {
            op.ret = Some(self.clock);
        }
        op.outcome = outcome;
        Ok(())
    }

    fn finish(self) -> History {
        History {
            file: self.file,
            ops: self.ops,
        }
    }
}

/// Jepsen log lines; fields are separated by tabs or spaces.
pub fn parse_jepsen(text: &str, file: &str) -> Result<History, FormatError> {
    let mut p = Pairer::new(file);
    for (n, raw) in text.lines().enumerate() {
        let line = n as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let tokens: Vec<&str> = raw.split_whitespace().collect();
        let Some(at) = tokens.iter().position(|t| *t == "jepsen.util") else {
            return Err(p.err(line, "not a jepsen.util log line"));
        };
        let rest = &tokens[at + 1..];
        if rest.len() < 5 || rest[0] != "-" {
            return Err(p.err(
                line,
                "expected `jepsen.util - <process> <type> <f> <value>`",
            ));
        }
        let client: u64 = rest[1]
            .parse()
            .map_err(|_| p.err(line, format!("process: {:?} is not a number", rest[1])))?;
        let kind = rest[2];
        let f = rest[3];
        let value = rest[4..].join(" ");
        let int = |v: &str, what: &str| -> Result<String, FormatError> {
            v.parse::<i64>()
                .map(|x| x.to_string())
                .map_err(|_| p.err(line, format!("value: {what} {v:?} is not an integer")))
        };
        let call = match f {
            ":read" => Call::Read,
            ":write" => Call::Write(if kind == ":invoke" || kind == ":ok" {
                int(&value, "write of")?
            } else {
                String::new()
            }),
            ":cas" => {
                if kind == ":invoke" || kind == ":ok" || (kind == ":fail" && value.starts_with('['))
                {
                    let inner = value
                        .strip_prefix('[')
                        .and_then(|v| v.strip_suffix(']'))
                        .ok_or_else(|| {
                            p.err(line, format!("value: cas expects [from to], got {value:?}"))
                        })?;
                    let parts: Vec<&str> = inner.split_whitespace().collect();
                    if parts.len() != 2 {
                        return Err(
                            p.err(line, format!("value: cas expects [from to], got {value:?}"))
                        );
                    }
                    Call::Cas {
                        from: Some(int(parts[0], "cas from")?),
                        to: int(parts[1], "cas to")?,
                    }
                } else {
                    Call::Cas {
                        from: None,
                        to: String::new(),
                    }
                }
            }
            other => {
                return Err(p.err(
                    line,
                    format!("f: unknown operation {other:?} (expected :read, :write or :cas)"),
                ))
            }
        };
        let same_f = |op: &HistoryOp| {
            if std::mem::discriminant(&op.call) == std::mem::discriminant(&call) {
                Ok(())
            } else {
                Err(format!(
                    "f: completion {f} does not match the invoked {}",
                    op.describe()
                ))
            }
        };
        match kind {
            ":invoke" => {
                let call = if let Call::Read = call {
                    Call::Read
                } else {
                    call.clone()
                };
                p.invoke(line, client, String::new(), call)?;
            }
            ":ok" => {
                let outcome = if f == ":read" {
                    if value == "nil" {
                        Outcome::Ok(None)
                    } else {
                        Outcome::Ok(Some(int(&value, "read of")?))
                    }
                } else {
                    Outcome::Ok(None)
                };
                p.complete(line, client, outcome, same_f)?;
            }
            ":fail" => {
                // A failed read that timed out is an unknown read.
                let outcome = if f == ":read" {
                    Outcome::Unknown
                } else {
                    Outcome::Fail
                };
                p.complete(line, client, outcome, same_f)?;
            }
            ":info" => p.complete(line, client, Outcome::Unknown, same_f)?,
            other => {
                return Err(p.err(
                    line,
                    format!("type: unknown {other:?} (expected :invoke, :ok, :fail or :info)"),
                ))
            }
        }
    }
    Ok(p.finish())
}

/// One EDN value as far as histories need: keywords, strings, integers,
/// nil and vectors of those.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Edn {
    Keyword(String),
    Str(String),
    Int(i64),
    Nil,
    Vector(Vec<Edn>),
}

impl Edn {
    fn text(&self) -> Option<String> {
        match self {
            Edn::Str(s) => Some(s.clone()),
            Edn::Int(i) => Some(i.to_string()),
            Edn::Keyword(k) => Some(k.clone()),
            _ => None,
        }
    }
}

/// How deeply EDN vectors may nest. Histories need two levels (a
/// transaction's `[[:append 1 2] ...]`); the bound keeps a hostile input from
/// overflowing the stack.
const MAX_EDN_DEPTH: usize = 64;

struct EdnParser<'a> {
    s: &'a [u8],
    i: usize,
    /// Vectors open at the current position.
    depth: usize,
}

impl EdnParser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_whitespace() || self.s[self.i] == b',')
        {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Result<Edn, String> {
        self.skip_ws();
        let Some(&c) = self.s.get(self.i) else {
            return Err("unexpected end of line".into());
        };
        match c {
            b':' => {
                let start = self.i + 1;
                self.i += 1;
                while self.i < self.s.len()
                    && !self.s[self.i].is_ascii_whitespace()
                    && !b",}]".contains(&self.s[self.i])
                {
                    self.i += 1;
                }
                Ok(Edn::Keyword(
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                ))
            }
            b'"' => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    let Some(&c) = self.s.get(self.i) else {
                        return Err("unterminated string".into());
                    };
                    self.i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            let Some(&e) = self.s.get(self.i) else {
                                return Err("unterminated string".into());
                            };
                            self.i += 1;
                            out.push(match e {
                                b'n' => b'\n',
                                b't' => b'\t',
                                b'r' => b'\r',
                                other => other,
                            });
                        }
                        c => out.push(c),
                    }
                }
                String::from_utf8(out)
                    .map(Edn::Str)
                    .map_err(|_| "string is not UTF-8".into())
            }
            b'[' => {
                if self.depth == MAX_EDN_DEPTH {
                    return Err(format!(
                        "value: vectors nested deeper than {MAX_EDN_DEPTH} levels"
                    ));
                }
                self.depth += 1;
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.s.get(self.i) {
                        Some(b']') => {
                            self.i += 1;
                            self.depth -= 1;
                            return Ok(Edn::Vector(items));
                        }
                        None => return Err("unterminated vector".into()),
                        _ => items.push(self.value()?),
                    }
                }
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && !self.s[self.i].is_ascii_whitespace()
                    && !b",}]".contains(&self.s[self.i])
                {
                    self.i += 1;
                }
                let tok = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                if tok == "nil" {
                    Ok(Edn::Nil)
                } else {
                    tok.parse()
                        .map(Edn::Int)
                        .map_err(|_| format!("unexpected token {tok:?}"))
                }
            }
        }
    }

    fn map(&mut self) -> Result<Vec<(String, Edn)>, String> {
        self.skip_ws();
        if self.s.get(self.i) != Some(&b'{') {
            return Err("expected an EDN map `{:process ..., :type ..., :f ..., ...}`".into());
        }
        self.i += 1;
        let mut fields = Vec::new();
        loop {
            self.skip_ws();
            match self.s.get(self.i) {
                Some(b'}') => {
                    self.i += 1;
                    self.skip_ws();
                    if self.i != self.s.len() {
                        return Err("trailing text after the map".into());
                    }
                    return Ok(fields);
                }
                None => return Err("unterminated map".into()),
                _ => {
                    let Edn::Keyword(k) = self.value()? else {
                        return Err("map keys must be keywords".into());
                    };
                    let v = self.value()?;
                    fields.push((k, v));
                }
            }
        }
    }
}

/// EDN maps, one per line (Porcupine's kv histories, Jepsen's history.edn).
pub fn parse_edn(text: &str, file: &str) -> Result<History, FormatError> {
    let mut p = Pairer::new(file);
    for (n, raw) in text.lines().enumerate() {
        let line = n as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let fields = EdnParser {
            s: raw.as_bytes(),
            i: 0,
            depth: 0,
        }
        .map()
        .map_err(|m| p.err(line, m))?;
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v);
        let need = |k: &str| get(k).ok_or_else(|| p.err(line, format!(":{k}: missing")));
        let client = match need("process")? {
            Edn::Int(i) if *i >= 0 => *i as u64,
            other => {
                return Err(p.err(
                    line,
                    format!(":process: expected a non-negative integer, got {other:?}"),
                ))
            }
        };
        let Edn::Keyword(kind) = need("type")? else {
            return Err(p.err(line, ":type: expected a keyword"));
        };
        let Edn::Keyword(f) = need("f")? else {
            return Err(p.err(line, ":f: expected a keyword"));
        };
        let key = match get("key") {
            None | Some(Edn::Nil) => String::new(),
            Some(v) => v
                .text()
                .ok_or_else(|| p.err(line, ":key: expected a string or an integer"))?,
        };
        let value = get("value").cloned().unwrap_or(Edn::Nil);
        let text_value = |what: &str| {
            value.text().ok_or_else(|| {
                p.err(
                    line,
                    format!(":value: {what} expects a string or an integer"),
                )
            })
        };
        let call = |p: &Pairer| -> Result<Call, FormatError> {
            Ok(match f.as_str() {
                "get" | "read" => Call::Read,
                "put" | "write" => Call::Write(text_value(f)?),
                "append" => Call::Append(text_value(f)?),
                "delete" => Call::Delete,
                "cas" => match &value {
                    Edn::Vector(v) if v.len() == 2 => Call::Cas {
                        from: v[0].text(),
                        to: v[1]
                            .text()
                            .ok_or_else(|| p.err(line, ":value: cas expects [from to]"))?,
                    },
                    _ => return Err(p.err(line, ":value: cas expects [from to]")),
                },
                other => return Err(p.err(line, format!(":f: unknown operation {other:?}"))),
            })
        };
        match kind.as_str() {
            "invoke" => {
                let c = call(&p)?;
                p.invoke(line, client, key, c)?;
            }
            "ok" | "fail" | "info" => {
                let is_read = matches!(f.as_str(), "get" | "read");
                let outcome = match kind.as_str() {
                    "ok" if is_read => Outcome::Ok(match &value {
                        Edn::Nil => None,
                        v => Some(v.text().ok_or_else(|| {
                            p.err(line, ":value: a read returns a string or an integer")
                        })?),
                    }),
                    "ok" => Outcome::Ok(None),
                    "fail" => Outcome::Fail,
                    _ => Outcome::Unknown,
                };
                let f2 = f.clone();
                p.complete(line, client, outcome, move |op| {
                    let same = match op.call {
                        Call::Read => is_read,
                        Call::Write(_) => matches!(f2.as_str(), "put" | "write"),
                        Call::Append(_) => f2 == "append",
                        Call::Cas { .. } => f2 == "cas",
                        Call::Delete => f2 == "delete",
                    };
                    if same {
                        Ok(())
                    } else {
                        Err(format!(
                            ":f: completion :{f2} does not match the invoked {}",
                            op.describe()
                        ))
                    }
                })?;
            }
            other => {
                return Err(p.err(
                    line,
                    format!(":type: unknown :{other} (expected :invoke, :ok, :fail or :info)"),
                ))
            }
        }
    }
    Ok(p.finish())
}

/// The client events of a `raft-trace/1` file (node events are skipped).
/// Operations are identified by (client, req); a repeated invocation of an
/// operation still in flight (a retry) keeps the first invocation.
pub fn read_raft_trace(path: &Path) -> Result<History, FormatError> {
    let file = path.display().to_string();
    let reader = raft_trace::read_file(path).map_err(|e| trace_error(&file, e))?;
    client_history(&file, reader)
}

/// The client events of a `raft-trace/1` text held in memory.
fn raft_trace_history(file: &str, text: &[u8]) -> Result<History, FormatError> {
    let reader = raft_trace::TraceReader::new(text, file).map_err(|e| trace_error(file, e))?;
    client_history(file, reader)
}

fn trace_error(file: &str, e: raft_trace::TraceError) -> FormatError {
    FormatError {
        file: file.to_string(),
        line: e.line,
        message: match &e.field {
            Some(f) => format!("{f}: {}", e.message),
            None => e.message.clone(),
        },
    }
}

fn client_history<R: std::io::BufRead>(
    file: &str,
    reader: raft_trace::TraceReader<R>,
) -> Result<History, FormatError> {
    let conv = |e| trace_error(file, e);
    let mut builder = ClientEvents::new(file);
    let mut records = reader.into_iter();
    loop {
        let record = match records.next() {
            None => break,
            Some(r) => r.map_err(conv)?,
        };
        let line = records.line();
        if let Record::Client(ev) = record {
            builder.push(line, *ev)?;
        }
    }
    Ok(builder.finish())
}

/// Builds a history from `raft-trace/1` client events given in real-time
/// order (a file's client lines, or a simulator's run in memory).
/// Operations are identified by (client, req); a repeated invocation of an
/// operation still in flight (a retry) keeps the first invocation.
pub struct ClientEvents {
    file: String,
    ops: Vec<HistoryOp>,
    open: HashMap<(u64, u64), usize>,
    /// The (client, req) of each operation, in `ops` order.
    ids: Vec<(u64, u64)>,
    /// The clock and line of the first `apply` of each (client, req) the
    /// trace shows.
    applied: HashMap<(u64, u64), (u64, u64)>,
    clock: u64,
}

impl ClientEvents {
    /// `file` names where the events come from, in errors and explanations.
    pub fn new(file: &str) -> Self {
        ClientEvents {
            file: file.to_string(),
            ops: Vec::new(),
            open: HashMap::new(),
            ids: Vec::new(),
            applied: HashMap::new(),
            clock: 0,
        }
    }

    /// A node applied and executed the command of `client`'s request `req`
    /// here (an `apply` event on the same clock as the client events: the
    /// same file; not one marked `duplicate`, which executed nothing).
    /// Applied means committed: the operation took effect before this point.
    pub fn applied(&mut self, line: u64, client: u64, req: u64) {
        if !self.applied.contains_key(&(client, req)) {
            self.clock += 1;
            self.applied.insert((client, req), (self.clock, line));
        }
    }

    /// Where the events come from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Adds the event read at `line`.
    pub fn push(&mut self, line: u64, ev: ClientEvent) -> Result<(), FormatError> {
        let err = |message: String| FormatError {
            file: self.file.clone(),
            line,
            message,
        };
        match ev {
            ClientEvent::Invoke(inv) => {
                if let Some(&i) = self.open.get(&(inv.client, inv.req)) {
                    if self.ops[i].key != inv.op.key() {
                        return Err(err(format!(
                            "op: client {} req {} is retried with another operation than at line {}",
                            inv.client, inv.req, self.ops[i].invoke_line
                        )));
                    }
                    return Ok(());
                }
                self.clock += 1;
                let (key, call) = match inv.op {
                    Op::Read { key } => (key, Call::Read),
                    Op::Write { key, value } => (key, Call::Write(value)),
                    Op::Cas { key, from, to } => (key, Call::Cas { from, to }),
                    Op::Delete { key } => (key, Call::Delete),
                    Op::Append { key, value } => (key, Call::Append(value)),
                };
                self.open.insert((inv.client, inv.req), self.ops.len());
                self.ids.push((inv.client, inv.req));
                self.ops.push(HistoryOp {
                    client: inv.client,
                    key,
                    call,
                    outcome: Outcome::Unknown,
                    invoke: self.clock,
                    ret: None,
                    invoke_line: line,
                    return_line: None,
                    applied_line: None,
                });
            }
            ClientEvent::Return(ret) => {
                let Some(i) = self.open.remove(&(ret.client, ret.req)) else {
                    return Err(err(format!(
                        "client {} req {}: a return with no invocation in flight",
                        ret.client, ret.req
                    )));
                };
                self.clock += 1;
                let op = &mut self.ops[i];
                op.return_line = Some(line);
                op.outcome = match ret.status {
                    Status::Ok => Outcome::Ok(if op.call == Call::Read {
                        ret.value
                    } else {
                        None
                    }),
                    Status::Fail => Outcome::Fail,
                    Status::Info => Outcome::Unknown,
                };
                if ret.status != Status::Info {
                    op.ret = Some(self.clock);
                }
            }
        }
        Ok(())
    }

    /// The history; operations still in flight have an unknown outcome.
    pub fn finish(self) -> History {
        History {
            file: self.file,
            ops: self.ops,
        }
    }

    /// The history, with what the trace's `apply` events tell about the
    /// operations of unknown outcome (Jepsen's `info`). One that some node
    /// applied took effect no later than that first apply (an entry is
    /// applied only once committed, and every later operation is ordered
    /// after it through the log): its interval ends there. With `complete`
    /// (every apply of the run is in the trace: no events lost, every node
    /// traced), one that no node applied (or whose every apply was a
    /// `duplicate`: a stale request the session table refused) took effect after every completed
    /// operation, if ever (an operation that completed was applied, and
    /// applies follow the log's order): it constrains nothing and is left
    /// out. Both shrink the search, which otherwise tries every unknown
    /// operation at every later point.
    pub fn finish_with_applies(self, complete: bool) -> History {
        // A (client, req) invoked as two operations: which one an apply
        // belongs to is unknown, so neither is touched.
        let mut uses: HashMap<(u64, u64), usize> = HashMap::new();
        for id in &self.ids {
            *uses.entry(*id).or_default() += 1;
        }
        let mut ops = Vec::with_capacity(self.ops.len());
        for (op, id) in self.ops.into_iter().zip(&self.ids) {
            let mut op = op;
            if op.outcome == Outcome::Unknown && op.ret.is_none() && uses[id] == 1 {
                match self.applied.get(id) {
                    Some(&(at, line)) if at > op.invoke => {
                        op.ret = Some(at);
                        op.applied_line = Some(line);
                    }
                    Some(_) => {}
                    None if complete => continue,
                    None => {}
                }
            }
            ops.push(op);
        }
        History {
            file: self.file,
            ops,
        }
    }
}
