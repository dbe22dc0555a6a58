//! Why a history is not linearizable, in terms a person can check.
//!
//! For the failing partition (a key) we give: the longest linearizable
//! prefix the search found and the state after it; the operations that
//! could come next but cannot be applied in that state, with their
//! real-time intervals; a minimal non-linearizable sub-history (shrunk by
//! removing operations while the rest stays non-linearizable, within a time
//! budget); and, when the sub-history's writes are unique, a short cycle of
//! constraints (real-time order, reads-from, overwritten-before) that no
//! linearization can satisfy, found on a `petgraph` graph.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;

use super::engine::{
    check_partition, impossible_op, Budget, Model, Operation, Partition, Verdict, NEVER,
};
use super::history::{Call, History, HistoryOp, Outcome};

/// An operation as shown in an explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownOp {
    /// Index in the whole history.
    pub id: usize,
    pub client: u64,
    /// e.g. `["3"] read() -> "x 1 y"`.
    pub op: String,
    /// Real-time interval (positions in the file); `ret` is null when the
    /// outcome is unknown.
    pub call: u64,
    pub ret: Option<u64>,
    pub line: u64,
    pub return_line: Option<u64>,
    /// Where the trace showed an operation of unknown outcome applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_line: Option<u64>,
}

impl ShownOp {
    pub fn new(history: &History, id: usize) -> Self {
        let h = &history.ops[id];
        ShownOp {
            id,
            client: h.client,
            op: h.describe(),
            call: h.invoke,
            ret: h.ret,
            line: h.invoke_line,
            return_line: h.return_line,
            applied_line: h.applied_line.filter(|_| h.outcome == Outcome::Unknown),
        }
    }

    /// Where the operation is in the file, which is also its real-time
    /// interval: from its invocation's line to its return's, or to the end
    /// of the history when its outcome is unknown (it may take effect at
    /// any time after it was invoked).
    pub fn lines(&self) -> String {
        match (self.ret, self.return_line) {
            (Some(_), Some(r)) if self.applied_line.is_some() => format!(
                "line {} to its apply at line {}, unknown at line {r}",
                self.line,
                self.applied_line.unwrap_or_default()
            ),
            (Some(_), None) if self.applied_line.is_some() => format!(
                "line {} to its apply at line {}",
                self.line,
                self.applied_line.unwrap_or_default()
            ),
            (Some(_), Some(r)) => format!("lines {}-{}", self.line, r),
            (_, Some(r)) => format!("line {} to the end, unknown at line {r}", self.line),
            (_, None) => format!("line {} to the end", self.line),
        }
    }
}

/// One constraint of a cycle: `from` must take effect before `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Constraint {
    pub from: usize,
    pub to: usize,
    /// `real-time`, `reads-from` or `overwritten-before`.
    pub kind: &'static str,
}

/// Why a partition is not linearizable.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub key: String,
    /// Operations in the failing partition.
    pub operations: usize,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<ShownOp>,
    /// The model state after that prefix.
    pub state: String,
    /// Operations that could come next but cannot take effect in `state`.
    pub unplaceable: Vec<ShownOp>,
    /// An operation that can take effect in no state the operations called
    /// before its return could produce, in any order
    /// ([`super::engine::impossible_op`]): proof enough on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impossible: Option<ShownOp>,
    /// A minimal non-linearizable sub-history (every operation in it is
    /// needed), when shrinking finished within the budget.
    pub minimal: Option<Vec<ShownOp>>,
    /// A cycle of constraints over `minimal` (or the partition), when the
    /// writes are unique and one exists.
    pub cycle: Option<Vec<Constraint>>,
    /// Operations of `cycle`, by id.
    #[serde(skip)]
    pub cycle_ops: HashMap<usize, ShownOp>,
}

impl Explanation {
    /// A few readable lines.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let key = if self.key.is_empty() {
            "(the register)".to_string()
        } else {
            format!("{:?}", self.key)
        };
        let _ = writeln!(
            s,
            "key {key}: {} not linearizable",
            crate::count_as(self.operations as u64, "operation is", "operations are")
        );
        if let Some(o) = &self.impossible {
            let _ = writeln!(
                s,
                "  {} (client {}, {}) can take effect in no state that the operations \
                 called before it returned can produce, in any order: no linearization exists",
                o.op,
                o.client,
                o.lines()
            );
        }
        let _ = writeln!(
            s,
            "  longest linearizable prefix: {} of {}, leaving state {}",
            self.prefix.len(),
            crate::count(self.operations as u64, "operation"),
            self.state
        );
        let tail = self.prefix.len().saturating_sub(3);
        if tail > 0 {
            let _ = writeln!(
                s,
                "    ... {}",
                crate::count(tail as u64, "earlier operation")
            );
        }
        for o in &self.prefix[tail..] {
            let _ = writeln!(s, "    {} (client {}, {})", o.op, o.client, o.lines());
        }
        if !self.unplaceable.is_empty() {
            let _ = writeln!(
                s,
                "  cannot be placed next (none can take effect in state {}):",
                self.state
            );
        }
        for o in &self.unplaceable {
            let _ = writeln!(s, "    {} (client {}, {})", o.op, o.client, o.lines());
        }
        if let Some(m) = &self.minimal {
            let _ = writeln!(
                s,
                "  minimal non-linearizable sub-history ({}):",
                crate::count(m.len() as u64, "operation")
            );
            for o in m {
                let _ = writeln!(s, "    {} (client {}, {})", o.op, o.client, o.lines());
            }
        }
        if let Some(c) = &self.cycle {
            let _ = writeln!(s, "  proof: these constraints form a cycle:");
            for e in c {
                let name = |id: usize| {
                    self.cycle_ops
                        .get(&id)
                        .map_or(format!("op {id}"), |o| format!("{} ({})", o.op, o.lines()))
                };
                let _ = writeln!(s, "    {} --{}--> {}", name(e.from), e.kind, name(e.to));
            }
        }
        s
    }
}

/// Explains why `part` is not linearizable. Runs the search again with
/// tracking, then shrinks within `budget`.
pub fn explain<M: Model>(
    model: &M,
    part: &mut Partition<M>,
    history: &History,
    budget: Duration,
) -> Explanation {
    let started = Instant::now();
    let impossible = impossible_op(model, &mut part.ctx, &part.ops)
        .map(|i| ShownOp::new(history, part.ops[i].id));
    let b = Budget::new(Some(budget));
    let r = check_partition(model, part, &b, true);
    let longest = r.longest.expect("tracking was asked for");
    let placed: std::collections::HashSet<usize> = longest.order.iter().copied().collect();
    let rest: Vec<usize> = (0..part.ops.len())
        .filter(|i| !placed.contains(i))
        .collect();
    // Candidates for the next step: called before the earliest return of
    // what is left (touching intervals overlap).
    let first_ret = rest.iter().map(|&i| part.ops[i].ret).min().unwrap_or(NEVER);
    // Only those that really cannot take effect there: a search cut short
    // by its budget may have stopped before a prefix that one would extend.
    let mut next = Vec::new();
    let unplaceable = rest
        .iter()
        .filter(|&&i| part.ops[i].call <= first_ret)
        .filter(|&&i| {
            next.clear();
            model.step(&mut part.ctx, &longest.state, &part.ops[i].op, &mut next);
            next.is_empty()
        })
        .map(|&i| ShownOp::new(history, part.ops[i].id))
        .collect();
    let prefix = longest
        .order
        .iter()
        .map(|&i| ShownOp::new(history, part.ops[i].id))
        .collect();
    let state = model.describe_state(&part.ctx, &longest.state);
    let remaining = budget.saturating_sub(started.elapsed());
    let all_ids: Vec<usize> = part.ops.iter().map(|o| o.id).collect();
    let minimal_ops = shrink(model, part, remaining, |ids| {
        close_reads(history, &all_ids, ids)
    });
    let ids: Vec<usize> = match &minimal_ops {
        Some(m) => m.clone(),
        None => part.ops.iter().map(|o| o.id).collect(),
    };
    let cycle = constraint_cycle(history, &ids);
    let cycle_ops = cycle
        .iter()
        .flatten()
        .flat_map(|c| [c.from, c.to])
        .filter(|&id| id != INIT)
        .map(|id| (id, ShownOp::new(history, id)))
        .collect();
    Explanation {
        key: part.key.clone(),
        operations: part.ops.len(),
        prefix,
        state,
        unplaceable,
        impossible,
        minimal: minimal_ops.map(|m| m.into_iter().map(|id| ShownOp::new(history, id)).collect()),
        cycle,
        cycle_ops,
    }
}

/// True when `ids` keeps, for every operation in it that observed its key's
/// state (a read, a cas), every operation of `all` that may have written
/// what it observed: each write or cas of the value read, each append whose
/// value the read contains (and, on a key with appends, each write whose
/// value it contains), each delete when the read saw no value or the key has
/// appends, and every writer of the key for a failed cas (which saw only
/// "not the expected value"). Shrinking keeps to such sub-histories, and
/// that makes them sound explanations: if the whole history were
/// linearizable, restricting a linearization to the kept operations would
/// leave every kept observation after the same latest writer, so the kept
/// sub-history would be linearizable too. It never ends at "a lone read of a
/// value its writers were dropped from".
///
/// A failed write changes nothing and is never needed; an operation whose
/// outcome is unknown may have taken effect and counts as a writer.
pub fn reads_from_closed(history: &History, all: &[usize], ids: &[usize]) -> bool {
    unclosed(history, all, ids).is_empty()
}

/// The largest subset of `ids` that [`reads_from_closed`] accepts: the
/// observers whose writers are missing are dropped, again and again.
pub fn close_reads(history: &History, all: &[usize], ids: &[usize]) -> Vec<usize> {
    let mut ids = ids.to_vec();
    loop {
        let out = unclosed(history, all, &ids);
        if out.is_empty() {
            return ids;
        }
        ids.retain(|i| !out.contains(i));
    }
}

/// The operations of `ids` that observed a state some missing writer of
/// `all` may have made (see [`reads_from_closed`]).
fn unclosed(history: &History, all: &[usize], ids: &[usize]) -> Vec<usize> {
    use std::collections::HashSet;
    let kept: HashSet<usize> = ids.iter().copied().collect();
    let may_write = |o: &HistoryOp| {
        o.outcome != Outcome::Fail
            && matches!(
                o.call,
                Call::Write(_) | Call::Cas { .. } | Call::Append(_) | Call::Delete
            )
    };
    ids.iter()
        .copied()
        .filter(|&i| {
            let o = &history.ops[i];
            // What the operation saw: Some(value) for a read or a successful
            // cas, None for a failed cas (only that the value differed).
            let seen: Option<Option<&str>> = match (&o.call, &o.outcome) {
                (Call::Read, Outcome::Ok(v)) => Some(v.as_deref()),
                (Call::Cas { from, .. }, Outcome::Ok(_)) => Some(from.as_deref()),
                (Call::Cas { .. }, Outcome::Fail) => None,
                _ => return false,
            };
            let writers: Vec<usize> = all
                .iter()
                .copied()
                .filter(|&j| j != i && history.ops[j].key == o.key && may_write(&history.ops[j]))
                .collect();
            let appends = writers
                .iter()
                .any(|&j| matches!(history.ops[j].call, Call::Append(_)));
            writers.iter().any(|&j| {
                let needed = match (&history.ops[j].call, seen) {
                    (_, None) => true,
                    (Call::Delete, Some(r)) => r.is_none() || appends,
                    (Call::Write(v) | Call::Cas { to: v, .. }, Some(Some(r))) => {
                        r == v || (appends && r.contains(v.as_str()))
                    }
                    (Call::Append(v), Some(Some(r))) => r.contains(v.as_str()),
                    _ => false,
                };
                needed && !kept.contains(&j)
            })
        })
        .collect()
}

/// Removes operations from a non-linearizable partition while it stays
/// non-linearizable: chunks first, then single operations (ddmin-style),
/// until no operation can go. Each candidate is first `close`d (given
/// history ids, it returns the subset to try: for explanations, the
/// observers whose writers went go too). Returns the history ids, or `None`
/// when the budget ran out first. `part.ops` is left as it was.
pub fn shrink<M: Model>(
    model: &M,
    part: &mut Partition<M>,
    budget: Duration,
    close: impl Fn(&[usize]) -> Vec<usize>,
) -> Option<Vec<usize>> {
    let deadline = Instant::now() + budget;
    let all: Vec<Operation<M::Op>> = std::mem::take(&mut part.ops);
    let mut keep: Vec<usize> = (0..all.len()).collect();
    let fails = |part: &mut Partition<M>, subset: &[usize]| -> Option<bool> {
        let left = deadline.checked_duration_since(Instant::now())?;
        part.ops.clear();
        part.ops.extend(subset.iter().map(|&i| all[i].clone()));
        let r = check_partition(model, part, &Budget::new(Some(left)), false);
        match r.verdict {
            Verdict::NotLinearizable => Some(true),
            Verdict::Linearizable => Some(false),
            Verdict::Unknown => None,
        }
    };
    let mut chunk = (keep.len() / 2).max(1);
    let mut finished = true;
    'outer: loop {
        let mut removed = false;
        let mut start = 0;
        while start < keep.len() {
            let end = (start + chunk).min(keep.len());
            let candidate: Vec<usize> = keep[..start].iter().chain(&keep[end..]).copied().collect();
            let ids: Vec<usize> = candidate.iter().map(|&i| all[i].id).collect();
            let closed = close(&ids);
            let candidate: Vec<usize> = candidate
                .into_iter()
                .filter(|&i| closed.contains(&all[i].id))
                .collect();
            if candidate.is_empty() {
                start = end;
                continue;
            }
            match fails(part, &candidate) {
                Some(true) => {
                    keep = candidate;
                    removed = true;
                }
                Some(false) => start = end,
                None => {
                    finished = false;
                    break 'outer;
                }
            }
        }
        // Single operations are tried until none can go.
        if chunk == 1 && !removed {
            break;
        }
        chunk = (chunk / 2).max(1);
    }
    let ids = keep.iter().map(|&i| all[i].id).collect();
    part.ops = all;
    finished.then_some(ids)
}

/// The id that stands for the initial state in the constraint graph.
const INIT: usize = usize::MAX;

/// Builds the graph of constraints among `ids`, key by key, and returns a
/// shortest cycle, for keys where every value is written at most once (so
/// that reads-from and the order of versions are known).
pub fn constraint_cycle(history: &History, ids: &[usize]) -> Option<Vec<Constraint>> {
    let mut keys: Vec<&str> = ids.iter().map(|&i| history.ops[i].key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let of_key: Vec<usize> = ids
                .iter()
                .copied()
                .filter(|&i| history.ops[i].key == k)
                .collect();
            key_cycle(history, &of_key)
        })
        .min_by_key(Vec::len)
}

/// [`constraint_cycle`] for operations on one key.
fn key_cycle(history: &History, ids: &[usize]) -> Option<Vec<Constraint>> {
    let ops: Vec<&HistoryOp> = ids.iter().map(|&i| &history.ops[i]).collect();
    // Who wrote each value (None: the initial absent value).
    let mut writer: HashMap<Option<&str>, usize> = HashMap::new();
    writer.insert(None, INIT);
    for (k, o) in ops.iter().enumerate() {
        let written = match (&o.call, &o.outcome) {
            (Call::Write(v), Outcome::Ok(_) | Outcome::Unknown) => Some(v.as_str()),
            (Call::Cas { to, .. }, Outcome::Ok(_) | Outcome::Unknown) => Some(to.as_str()),
            (Call::Append(_) | Call::Delete, _) => return None,
            _ => continue,
        };
        if writer.insert(written, ids[k]).is_some() {
            return None;
        }
    }
    let mut g: DiGraph<usize, &'static str> = DiGraph::new();
    let mut node: HashMap<usize, NodeIndex> = HashMap::new();
    node.insert(INIT, g.add_node(INIT));
    for &id in ids {
        node.insert(id, g.add_node(id));
    }
    let finished = |o: &HistoryOp| o.outcome != Outcome::Unknown && o.ret.is_some();
    // Real time: a returned before b was called.
    for (a, oa) in ops.iter().enumerate() {
        if !finished(oa) {
            continue;
        }
        for (b, ob) in ops.iter().enumerate() {
            if oa.ret.is_some_and(|r| r < ob.invoke) {
                g.add_edge(node[&ids[a]], node[&ids[b]], "real-time");
            }
        }
    }
    // The initial state precedes every operation.
    for &id in ids {
        g.add_edge(node[&INIT], node[&id], "real-time");
    }
    // Reads-from, for reads and successful cas.
    let mut readers: HashMap<usize, Vec<usize>> = HashMap::new();
    for (k, o) in ops.iter().enumerate() {
        let read = match (&o.call, &o.outcome) {
            (Call::Read, Outcome::Ok(v)) => v.as_deref(),
            (Call::Cas { from, .. }, Outcome::Ok(_)) => from.as_deref(),
            _ => continue,
        };
        let w = *writer.get(&read)?;
        if w != ids[k] {
            g.add_edge(node[&w], node[&ids[k]], "reads-from");
            readers.entry(w).or_default().push(ids[k]);
        }
    }
    // Overwritten-before: if w1 precedes w2 in every linearization (real
    // time, or w2 is a cas that read w1), each reader of w1 precedes w2,
    // because w1's value never comes back.
    let writes: Vec<usize> = writer.values().copied().collect();
    let mut extra = Vec::new();
    for &w1 in &writes {
        for &w2 in &writes {
            if w1 == w2 || w2 == INIT {
                continue;
            }
            let before = g
                .edges_connecting(node[&w1], node[&w2])
                .any(|e| *e.weight() == "real-time" || *e.weight() == "reads-from");
            if before {
                for &r in readers.get(&w1).into_iter().flatten() {
                    if r != w2 {
                        extra.push((node[&r], node[&w2]));
                    }
                }
            }
        }
    }
    for (a, b) in extra {
        g.add_edge(a, b, "overwritten-before");
    }
    shortest_cycle(&g)
}

/// The shortest cycle of `g`, by breadth-first search from every node.
fn shortest_cycle(g: &DiGraph<usize, &'static str>) -> Option<Vec<Constraint>> {
    let mut best: Option<Vec<Constraint>> = None;
    for start in g.node_indices() {
        // parent[v] = (u, edge kind) on the BFS tree from start.
        let mut parent: HashMap<NodeIndex, (NodeIndex, &'static str)> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut closing = None;
        'bfs: while let Some(u) = queue.pop_front() {
            for e in g.edges(u) {
                let v = e.target();
                if v == start {
                    closing = Some((u, *e.weight()));
                    break 'bfs;
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = parent.entry(v) {
                    slot.insert((u, *e.weight()));
                    queue.push_back(v);
                }
            }
        }
        let Some((last, kind)) = closing else {
            continue;
        };
        let mut edges = vec![Constraint {
            from: g[last],
            to: g[start],
            kind,
        }];
        let mut v = last;
        while v != start {
            let (u, k) = parent[&v];
            edges.push(Constraint {
                from: g[u],
                to: g[v],
                kind: k,
            });
            v = u;
        }
        edges.reverse();
        if best.as_ref().is_none_or(|b| edges.len() < b.len()) {
            best = Some(edges);
        }
    }
    best
}
