//! A model-independent history: what every input format is read into, and
//! what every model converts into its own typed operations.

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    Read,
    Write(String),
    /// Compare-and-set: if the value is `from` (`None`: absent), set `to`.
    Cas {
        from: Option<String>,
        to: String,
    },
    Append(String),
    Delete,
}

/// What the client learned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It happened; for a read, the value read (`None`: absent / nil).
    Ok(Option<String>),
    /// It certainly did not take effect. For a cas: it ran and the value
    /// was not `from`.
    Fail,
    /// Unknown (info, timeout, no return): it may take effect at any point
    /// after its call, or never.
    Unknown,
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryOp {
    pub client: u64,
    /// The key ("" for a single register).
    pub key: String,
    pub call: Call,
    pub outcome: Outcome,
    /// Real-time interval: invocation and completion on one clock (here the
    /// position of the event in the file). `ret` is `None` when the outcome
    /// is unknown, unless the trace showed its command applied.
    pub invoke: u64,
    pub ret: Option<u64>,
    /// 1-based lines of the invocation and completion in the input file.
    pub invoke_line: u64,
    pub return_line: Option<u64>,
    /// The line of the first `apply` of its command in the trace, which
    /// ends the interval of an operation of unknown outcome (`ret`).
    pub applied_line: Option<u64>,
}

impl HistoryOp {
    /// A short rendering: `read() -> 3`, `cas(1, 2) fail`, `write(4) ?`.
    pub fn describe(&self) -> String {
        let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "nil".into());
        let call = match &self.call {
            Call::Read => "read()".to_string(),
            Call::Write(x) => format!("write({x:?})"),
            Call::Cas { from, to } => format!(
                "cas({}, {to:?})",
                v(&from.as_ref().map(|f| format!("{f:?}")))
            ),
            Call::Append(x) => format!("append({x:?})"),
            Call::Delete => "delete()".to_string(),
        };
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!("[{:?}] ", self.key)
        };
        let out = match (&self.call, &self.outcome) {
            (Call::Read, Outcome::Ok(x)) => format!(
                " -> {}",
                x.as_ref().map_or("nil".into(), |x| format!("{x:?}"))
            ),
            (_, Outcome::Ok(_)) => " ok".to_string(),
            (_, Outcome::Fail) => " fail".to_string(),
            (_, Outcome::Unknown) => " ?".to_string(),
        };
        format!("{key}{call}{out}")
    }
}

/// A whole history read from one file.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The file it came from.
    pub file: String,
    pub ops: Vec<HistoryOp>,
}
