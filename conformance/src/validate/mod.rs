//! Trace validation: replay a `raft-trace/1` run event by event, and reject
//! the first event that breaks message identity or a global invariant.
//!
//! Input is one run: a single file with every node's events, or one file per
//! node (merged here by send/receive order, with no global clock), plus any
//! client-history files. [`validate_run`] checks a run; [`runs_in`] finds the
//! runs under a path (a file, a run directory, or a directory of runs such as
//! `raftcheck sim --trace-dir` writes).

mod ahead;
mod input;
mod invariants;
mod network;
mod reads;
mod replay;
pub mod summary;
mod verdict;

use crate::linearizability::{ClientEvents, History};

use std::collections::VecDeque;

use raft_trace::{Event, Header, NodeEvent, NodeId, Record, TraceError};
use serde::Serialize;
use serde_json::value::RawValue;

pub use input::{candidate_runs, runs_in, Run};
use invariants::{Invariants, Stop};
use network::NetworkCheck;
use replay::{Replay, ReplayError};
pub use replay::{ReplayStats, DEFAULT_BUDGET, MESSAGE_WINDOW};
pub use verdict::{
    check_input, check_records, check_run, check_runs, Checked, HistorySummary, Verdict,
};

/// Every rule a rejection can name ([`Rejection::rule`]): the message
/// identity checks, the global invariants and the replay's rules. The
/// tests keep it complete (a rule named in the validator's sources and
/// missing here fails them), so a test that must cover every rule can
/// enumerate it.
pub const RULES: &[&str] = &[
    // message identity (network.rs)
    "MessageIdentity",
    "MessageNeverSent",
    "MessageAltered",
    "MessageDuplicated",
    "MessageReordered",
    "MessageLost",
    // global invariants (invariants.rs)
    "EventWhileCrashed",
    "PersistedStateLost",
    "OneVotePerTerm",
    "TermNeverDecreases",
    "ElectionSafety",
    "LeaderCompleteness",
    "VotePersistedBeforeReply",
    "TermPersistedBeforeSend",
    "EntriesPersistedBeforeAck",
    "AppendAtLogEnd",
    "LogMatching",
    "LeaderAppendOnly",
    "NoTruncationOfCommitted",
    "StateMachineSafety",
    "CommitNeverDecreases",
    "CommitWithinLog",
    "ApplyInOrder",
    "ApplyOnlyCommitted",
    "ApplyWhatIsLogged",
    "SnapshotOfApplied",
    "SnapshotMatchesLog",
    "SnapshotNeverRegresses",
    "PostStateMatchesEvents",
    // reads served without the log (reads.rs)
    "ReadIndexRule",
    "LeaseReadRule",
    // replay through the model (replay/)
    "RestartRule",
    "ElectionTimeoutRule",
    "HeartbeatTimeout",
    "CheckQuorumRule",
    "RequestVoteRule",
    "VoteCountingRule",
    "PreVoteRule",
    "PreVoteCountingRule",
    "AppendEntriesRule",
    "AppendEntriesReplyRule",
    "HeartbeatRule",
    "HeartbeatReplyRule",
    "InstallSnapshotRule",
    "InstallSnapshotReplyRule",
    "TimeoutNowRule",
    "LeaderTransferRule",
    "ProposeRule",
    "ReplicationRule",
    "CommitRule",
    "ClientRequestRule",
    "MembershipChangeRule",
    "ApplyRule",
    "AtMostOnce",
    "SnapshotRule",
];

/// A broken rule, before it is placed at a line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule or invariant, e.g. `ElectionSafety`.
    pub rule: &'static str,
    pub expected: String,
    pub actual: String,
    /// For a step rejected at its end: where in the step the trace departs
    /// from the model (boxed: most violations have none).
    pub divergence: Option<Box<Divergence>>,
}

impl Violation {
    pub fn new(rule: &'static str, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Violation {
            rule,
            expected: expected.into(),
            actual: actual.into(),
            divergence: None,
        }
    }
}

/// A step the replay rejected only at its end (when the next step began,
/// or the trace ended): the node's state after its events is none the
/// model's rule allows. Events are named by their `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The node's events of the step, oldest first: the step's cause (a
    /// receive, a timeout) through the event that ended it.
    pub events: Vec<u64>,
    /// The earliest event of the step by which the trace had departed from
    /// every state the model allowed, and why; `None` when the replay
    /// cannot pin one down (the whole step is then the answer).
    pub culprit: Option<(u64, String)>,
}

/// Where an event was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Shared by every event of the file (one is made per event).
    pub file: std::sync::Arc<str>,
    pub line: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// An event that the validator rejected, with enough context to act on.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub at: Location,
    pub node: NodeId,
    pub rule: &'static str,
    pub expected: String,
    pub actual: String,
    /// The event, as JSON.
    pub event: Box<RawValue>,
    /// The last few events of the same node that were accepted, oldest first.
    pub recent: Vec<(Location, Box<RawValue>)>,
    /// The event in one line ([`summary::event`]).
    pub summary: String,
    /// `recent` in one line each.
    pub recent_summary: Vec<EventLine>,
    /// For a step rejected only at its end: the step's events and, when the
    /// replay can pin it down, the first of them by which the trace had
    /// left every state the model allows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergence: Option<DivergenceReport>,
}

/// An event in one line, where it was read.
#[derive(Debug, Clone, Serialize)]
pub struct EventLine {
    pub at: Location,
    pub seq: u64,
    pub summary: String,
}

/// Where in a rejected step the trace departs from the model.
#[derive(Debug, Clone, Serialize)]
pub struct DivergenceReport {
    /// The event, when one is pinned down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub culprit: Option<EventLine>,
    /// That event's `seq` on the node (also when the report no longer
    /// holds where it was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub culprit_seq: Option<u64>,
    /// Why that event already rules out every state the model allows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The node's events of the step, oldest first (those the report still
    /// holds: at most the last [`HISTORY`] before the rejected one).
    pub step: Vec<EventLine>,
}

/// How a report names a location: by line alone in the rejection's file.
fn place(at: &Location, file: &str) -> String {
    if *at.file == *file {
        format!("line {}", at.line)
    } else {
        at.to_string()
    }
}

impl std::fmt::Display for Rejection {
    /// `{:#}` also prints the events as the trace has them (raw JSON).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let raw = f.alternate();
        let file = &self.at.file;
        writeln!(f, "{}: node {}: {} violated", self.at, self.node, self.rule)?;
        if let Some(d) = &self.divergence {
            match (&d.culprit, d.culprit_seq, &d.why) {
                (Some(c), _, Some(why)) => {
                    writeln!(f, "  diverges: {}: {}", c.at, c.summary)?;
                    writeln!(f, "            {why}")?;
                }
                (None, Some(seq), Some(why)) => {
                    writeln!(f, "  diverges: node {}'s event of seq {seq}", self.node)?;
                    writeln!(f, "            {why}")?;
                }
                _ => {
                    if let (Some(first), Some(last)) = (d.step.first(), d.step.last()) {
                        writeln!(
                            f,
                            "  diverges: between {} ({}) and {} ({}); no single event of \
                             the step can be blamed",
                            place(&first.at, file),
                            first.summary,
                            place(&last.at, file),
                            last.summary
                        )?;
                    }
                }
            }
        }
        writeln!(f, "  expected: {}", self.expected)?;
        writeln!(f, "  actual:   {}", self.actual)?;
        writeln!(f, "  event:    {}  {}", place(&self.at, file), self.summary)?;
        if raw {
            writeln!(f, "            {}", self.event)?;
        }
        let culprit = self
            .divergence
            .as_ref()
            .and_then(|d| d.culprit.as_ref())
            .map(|c| c.seq);
        let mark = |e: &EventLine| {
            if Some(e.seq) == culprit {
                "  <- diverges"
            } else {
                ""
            }
        };
        match &self.divergence {
            Some(d) if d.step.len() > 1 => {
                writeln!(f, "  node {}'s events of the step:", self.node)?;
                let n = d.step.len();
                for (k, e) in d.step.iter().enumerate() {
                    // A long step: its start, the culprit and its end.
                    if n > STEP_SHOWN && k >= 3 && k + STEP_SHOWN - 3 < n && Some(e.seq) != culprit
                    {
                        if k == 3 {
                            writeln!(f, "    ...")?;
                        }
                        continue;
                    }
                    writeln!(f, "    {}  {}{}", place(&e.at, file), e.summary, mark(e))?;
                }
            }
            _ => {
                if !self.recent_summary.is_empty() {
                    writeln!(f, "  node {}'s last accepted events:", self.node)?;
                    for e in &self.recent_summary {
                        writeln!(f, "    {}  {}", place(&e.at, file), e.summary)?;
                    }
                }
            }
        }
        if raw && !self.recent.is_empty() {
            writeln!(f, "  node {}'s last accepted events, as logged:", self.node)?;
            for (at, ev) in &self.recent {
                writeln!(f, "    {at}: {ev}")?;
            }
        }
        Ok(())
    }
}

/// The most events of a rejected step the text report lists.
const STEP_SHOWN: usize = 12;

/// Why a run could not be checked (bad input).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("{0}")]
    Layout(String),
    #[error(transparent)]
    History(#[from] crate::linearizability::FormatError),
    /// Files read as one run have events of the same node: they are not
    /// one run (see [`check_runs`]).
    #[error("node {node} has events in both {first} and {second}: they are not one run")]
    SharedNode {
        node: NodeId,
        first: String,
        second: String,
    },
}

/// The outcome of validating one run.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// The files of the run.
    pub files: Vec<String>,
    pub events: u64,
    pub nodes: Vec<NodeId>,
    /// Messages sent and never received when the trace ends.
    pub undelivered: usize,
    pub rejection: Option<Rejection>,
    /// Set when the replay could not decide (frontier budget exceeded).
    pub inconclusive: Option<String>,
    /// What the replay through the model did.
    pub replay: ReplayStats,
}

const RECENT: usize = 5;
/// The accepted events of each node the validator remembers, to place a
/// rejected step's events.
const HISTORY: usize = 256;

/// How to validate.
#[derive(Debug, Clone)]
pub struct Options {
    /// The most candidate model states a node's replay may keep.
    pub frontier_budget: usize,
    /// Features (behaviours beyond Figure 2, `raft_model::FEATURES`) to
    /// switch on in addition to those the trace's header lists.
    pub features: Vec<String>,
    /// The linearizability check of a run's client events gives up
    /// (inconclusive) after this long, over all of the run's histories...
    pub history_timeout: Option<std::time::Duration>,
    /// ...or when one key's search memo grows past about this many bytes
    /// (see `linearizability::Options::memo_limit`).
    pub memo_limit: Option<usize>,
    /// The model messages of how many of the latest sends the replay
    /// keeps: a receive of an older one (lost for long, or delayed) is
    /// replayed from the message as the trace logs it (the message
    /// identity check keeps every message in flight, as a digest).
    pub message_window: usize,
}

/// The default time budget of a run's linearizability check.
pub const DEFAULT_HISTORY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The default memo limit of a run's linearizability check (1 GiB).
pub const DEFAULT_MEMO_LIMIT: usize = 1 << 30;

impl Default for Options {
    fn default() -> Self {
        Options {
            frontier_budget: DEFAULT_BUDGET,
            features: Vec::new(),
            history_timeout: Some(DEFAULT_HISTORY_TIMEOUT),
            memo_limit: Some(DEFAULT_MEMO_LIMIT),
            message_window: MESSAGE_WINDOW,
        }
    }
}

/// Validates one run with the default options.
pub fn validate_run(run: &Run) -> Result<RunReport, InputError> {
    validate_run_with(run, &Options::default())
}

/// Validates one run's files.
pub fn validate_run_with(run: &Run, options: &Options) -> Result<RunReport, InputError> {
    validate_files(run, options).map(|(report, _)| report)
}

/// Validates one run's files, and gathers the client history of each file
/// on the way (a file's lines are in real-time order; files are not).
fn validate_files(run: &Run, options: &Options) -> Result<(RunReport, Vec<History>), InputError> {
    let mut merged = input::Merged::open(run)?;
    let header: Header = merged.header().clone();
    let files = run.files.iter().map(|p| p.display().to_string()).collect();
    validate_stream(&header, files, options, |network| merged.next(network))
}

/// Validates one run held in memory (a simulator's): `records` are in one
/// global order, as a single trace file `name` would hold them after its
/// header (so the first record is at line 2).
pub fn validate_records(
    name: &str,
    header: &Header,
    records: &[Record],
    options: &Options,
) -> Result<RunReport, InputError> {
    validate_memory(name, header, records, options).map(|(report, _)| report)
}

fn validate_memory(
    name: &str,
    header: &Header,
    records: &[Record],
    options: &Options,
) -> Result<(RunReport, Vec<History>), InputError> {
    let located = records.iter().enumerate().map(|(i, r)| (i as u64 + 2, r));
    validate_located(name, header, located, options)
}

/// Validates one run given as records with their line numbers, in one
/// global order, as the single trace file `name` holds them.
fn validate_located<'a>(
    name: &str,
    header: &Header,
    records: impl Iterator<Item = (u64, &'a Record)> + Send,
    options: &Options,
) -> Result<(RunReport, Vec<History>), InputError> {
    let mut next = records;
    validate_stream(header, vec![name.to_string()], options, |_| {
        Ok(next.next().map(|(line, r)| {
            let at = input::At { file: 0, line };
            match r {
                Record::Node(e) => input::Item::Node(at, e.clone()),
                Record::Client(c) => input::Item::Client(at, c.clone()),
            }
        }))
    })
}

/// The validation loop over a run's events in replay order. Returns the
/// report and the client history of each file, in file order.
fn validate_stream(
    header: &Header,
    files: Vec<String>,
    options: &Options,
    next: impl FnMut(&NetworkCheck) -> Result<Option<input::Item>, InputError> + Send,
) -> Result<(RunReport, Vec<History>), InputError> {
    let mut histories: Vec<ClientEvents> = files.iter().map(|f| ClientEvents::new(f)).collect();
    // Applies bound the operations of unknown outcome (one file: node and
    // client events on one clock; applies that name their command).
    let applies = files.len() == 1
        && header.observes.entries == raft_trace::EntryDetail::Full
        && header
            .observes
            .events
            .contains(&raft_trace::EventType::Apply);
    let mut complete = Completeness::new(header);
    let invariants = Invariants::new(header, &options.features);
    let mut replay = Replay::new(header, &options.features, options.frontier_budget)
        .map_err(|e| {
            InputError::Layout(format!("{}:1: field \"features\": {e}", files.join(", ")))
        })?
        .with_window(options.message_window);
    let network = NetworkCheck::new(
        header.network,
        header
            .observes
            .events
            .contains(&raft_trace::EventType::Send),
    );
    let mut report = RunReport {
        files,
        events: 0,
        nodes: header.nodes.clone(),
        undelivered: 0,
        rejection: None,
        inconclusive: None,
        replay: ReplayStats::default(),
    };
    let names: Vec<std::sync::Arc<str>> = report.files.iter().map(|f| f.as_str().into()).collect();
    std::thread::scope(|scope| {
        let mut ahead = ahead::Ahead::start(scope, network, invariants, next);
        replay_events(
            &mut ahead,
            &names,
            applies,
            &mut histories,
            &mut complete,
            &mut replay,
            &mut report,
        )
    })?;
    // Only a run read to its end shows every apply.
    let whole = report.rejection.is_none() && report.inconclusive.is_none();
    let complete = whole && complete.all();
    Ok((
        report,
        histories
            .into_iter()
            .map(|h| {
                if applies {
                    h.finish_with_applies(complete)
                } else {
                    h.finish()
                }
            })
            .collect(),
    ))
}

/// The checks after message identity, event by event, until one rejects
/// or the replay cannot go on; then the rest of the client events.
fn replay_events(
    ahead: &mut ahead::Ahead,
    files: &[std::sync::Arc<str>],
    applies: bool,
    histories: &mut [ClientEvents],
    complete: &mut Completeness,
    replay: &mut Replay,
    report: &mut RunReport,
) -> Result<(), InputError> {
    let mut recent: std::collections::BTreeMap<NodeId, VecDeque<(input::At, Box<NodeEvent>)>> =
        Default::default();
    let locate = |at: input::At| Location {
        file: files[at.file].clone(),
        line: at.line,
    };
    let located = |history: VecDeque<(input::At, Box<NodeEvent>)>| {
        history
            .into_iter()
            .map(|(at, e)| (locate(at), e))
            .collect::<VecDeque<_>>()
    };
    while let Some(checked) = ahead.next()? {
        let (at, event) = match checked.item {
            input::Item::Client(at, c) => {
                if let Some(h) = histories.get_mut(at.file) {
                    h.push(at.line, *c)?;
                }
                continue;
            }
            input::Item::Node(at, e) => (at, e),
        };
        report.events += 1;
        complete.see(&event);
        if let (true, Event::Apply(a)) = (applies, &event.event) {
            // A `duplicate` apply did not execute the command (a retry the
            // session table already answered, or a request older than one
            // the client sent later): it bounds nothing. The apply that
            // executed it, if any, comes first, as every node applies the
            // same log in order.
            if let (Some(client), Some(req), Some(h), false) =
                (a.client, a.req, histories.first_mut(), a.duplicate)
            {
                h.applied(at.line, client, req);
            }
        }
        report.undelivered = checked.undelivered;
        let result = match checked.checks.map_err(|stop| *stop) {
            Ok(()) => match replay.step(&event) {
                Ok(()) => Ok(()),
                Err(ReplayError::Violation(v)) => Err(v),
                Err(ReplayError::Inconclusive(why)) => {
                    report.inconclusive = Some(why);
                    break;
                }
            },
            Err(Stop::Violation(v)) => Err(v),
            Err(Stop::Inconclusive(why)) => {
                report.inconclusive = Some(why);
                break;
            }
        };
        if let Err(v) = result {
            let history = recent.remove(&event.node).unwrap_or_default();
            report.rejection = Some(rejection(locate(at), event, v, located(history)));
            break;
        }
        let queue = recent.entry(event.node).or_default();
        if queue.len() == HISTORY {
            if let Some((_, old)) = queue.pop_front() {
                ahead.discard(old);
            }
        }
        queue.push_back((at, event));
    }
    if report.rejection.is_none() && report.inconclusive.is_none() {
        if let Some(why) = replay.no_verdict() {
            report.inconclusive = Some(why.to_string());
        }
    }
    if report.rejection.is_none() && report.inconclusive.is_none() {
        if let Err((node, v)) = replay.finish() {
            let mut history = recent.remove(&node).unwrap_or_default();
            if let Some((at, last)) = history.pop_back() {
                report.rejection = Some(rejection(locate(at), last, v, located(history)));
            }
        }
    }
    if report.rejection.is_none() {
        // A replay that stopped without a verdict still leaves the history
        // to check: read the rest of its client events.
        while let Some(checked) = ahead.next()? {
            if let input::Item::Client(at, c) = checked.item {
                if let Some(h) = histories.get_mut(at.file) {
                    h.push(at.line, *c)?;
                }
            }
        }
    }
    report.replay = replay.stats();
    Ok(())
}

/// Whether a run's trace shows every event of every node: each node of the
/// header traced, no `gap`, and each node's `seq` numbers without a jump
/// (a jump may hide lost events, a restart's too).
struct Completeness {
    last: std::collections::BTreeMap<NodeId, u64>,
    nodes: Vec<NodeId>,
    lossy: bool,
}

impl Completeness {
    fn new(header: &Header) -> Self {
        Completeness {
            last: Default::default(),
            nodes: header.nodes.clone(),
            lossy: false,
        }
    }

    fn see(&mut self, e: &NodeEvent) {
        if matches!(e.event, Event::Gap(_)) {
            self.lossy = true;
        }
        if let Some(prev) = self.last.insert(e.node, e.seq) {
            if e.seq != prev + 1 {
                self.lossy = true;
            }
        }
    }

    fn all(&self) -> bool {
        !self.lossy && self.nodes.iter().all(|n| self.last.contains_key(n))
    }
}

/// The rejection of `event` read at `at`, with `history` the node's
/// accepted events before it (oldest first).
fn rejection(
    at: Location,
    event: Box<NodeEvent>,
    v: Violation,
    history: VecDeque<(Location, Box<NodeEvent>)>,
) -> Rejection {
    let line = |at: &Location, e: &NodeEvent| EventLine {
        at: at.clone(),
        seq: e.seq,
        summary: summary::event(e),
    };
    let divergence = v.divergence.as_ref().map(|d| {
        // The step's events this report still holds: those of the
        // history (searched from its end: a seq may recur after a
        // restart) and the rejected event.
        let find = |seq: u64| {
            if seq == event.seq {
                return Some(line(&at, &event));
            }
            history
                .iter()
                .rev()
                .find(|(_, e)| e.seq == seq)
                .map(|(l, e)| line(l, e))
        };
        let step: Vec<EventLine> = d.events.iter().filter_map(|&s| find(s)).collect();
        let culprit = d.culprit.as_ref().and_then(|(s, _)| find(*s));
        DivergenceReport {
            culprit,
            culprit_seq: d.culprit.as_ref().map(|(s, _)| *s),
            why: d.culprit.as_ref().map(|(_, why)| why.clone()),
            step,
        }
    });
    let recent: Vec<_> = history
        .iter()
        .skip(history.len().saturating_sub(RECENT))
        .collect();
    Rejection {
        node: event.node,
        rule: v.rule,
        expected: v.expected,
        actual: v.actual,
        summary: summary::event(&event),
        event: raw(&event),
        recent: recent.iter().map(|(l, e)| (l.clone(), raw(e))).collect(),
        recent_summary: recent.iter().map(|(l, e)| line(l, e)).collect(),
        divergence,
        at,
    }
}

fn raw(e: &NodeEvent) -> Box<RawValue> {
    serde_json::value::to_raw_value(e).expect("trace events serialize")
}

#[cfg(test)]
mod tests {
    use super::RULES;

    /// The validator's sources: every rule name a rejection can carry is a
    /// string literal in one of them.
    const SOURCES: &[&str] = &[
        include_str!("mod.rs"),
        include_str!("input.rs"),
        include_str!("invariants.rs"),
        include_str!("reads.rs"),
        include_str!("network.rs"),
        include_str!("verdict.rs"),
        include_str!("replay/checkpoint.rs"),
        include_str!("replay/convert.rs"),
        include_str!("replay/divergence.rs"),
        include_str!("summary.rs"),
        include_str!("replay/dispatch.rs"),
        include_str!("replay/effects.rs"),
        include_str!("replay/frontier.rs"),
        include_str!("replay/mod.rs"),
        include_str!("replay/preconditions.rs"),
        include_str!("replay/report.rs"),
    ];

    /// The string literals of `src` that are CamelCase words of two or
    /// more parts (the form of every rule name).
    fn camel_literals(src: &str) -> Vec<&str> {
        src.split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| {
                let parts = s.chars().filter(|c| c.is_ascii_uppercase()).count();
                s.len() > 1
                    && s.starts_with(|c: char| c.is_ascii_uppercase())
                    && s.chars().all(|c| c.is_ascii_alphabetic())
                    && parts >= 2
            })
            .collect()
    }

    #[test]
    fn rules_lists_every_rule_the_sources_name() {
        let mut named: Vec<&str> = Vec::new();
        for src in SOURCES {
            // This module's own list and tests are not uses of the names.
            let src = src.split("#[cfg(test)]").next().unwrap_or(src);
            let (before, after) = match src.split_once("pub const RULES") {
                Some((before, rest)) => (before, rest.split_once("];").map_or("", |(_, a)| a)),
                None => (src, ""),
            };
            named.extend(camel_literals(before));
            named.extend(camel_literals(after));
        }
        named.sort_unstable();
        named.dedup();
        let missing: Vec<_> = named.iter().filter(|n| !RULES.contains(n)).collect();
        assert!(missing.is_empty(), "rules missing from RULES: {missing:?}");
        let stale: Vec<_> = RULES.iter().filter(|r| !named.contains(r)).collect();
        assert!(
            stale.is_empty(),
            "RULES names rules no source uses: {stale:?}"
        );
        let mut sorted = RULES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), RULES.len(), "RULES has duplicates");
    }
}
