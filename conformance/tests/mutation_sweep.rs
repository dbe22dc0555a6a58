//! A property-based sweep of the validator over simulator traces: the
//! checker never misses and never cries wolf.
//!
//! For each seed the simulator runs the raftkv core and records a valid
//! raft-trace/1 run. Then:
//!
//! - every **mutation kind** (at least one per rule in
//!   [`raft_conformance::validate::RULES`]) plants one semantic violation at
//!   a site the seed chooses; the mutant stays well-formed (it parses, `seq`
//!   is renumbered, every receive still follows its send) and must be
//!   rejected, at or after the planted site. Whether the rejection names the
//!   kind's rule or another rule the mutant also breaks is counted;
//! - every **control** (an omission or reordering SCHEMA.md's "What is
//!   checked when you emit less" allows) must leave the trace valid, on the
//!   simulator's traces and on the example traces.
//!
//! The CI size is `RAFTCHECK_MUTATION_SEEDS` seeds (default 6). The table
//! in traces/SCHEMA.md was measured with `RAFTCHECK_MUTATION_SEEDS=100`;
//! `--nocapture` prints it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use raft_conformance::validate::{runs_in, validate_records, validate_run, Options, RULES};
use raft_sim::raftkv::RaftKv;
use raft_sim::{run, Outcome as SimOutcome, SimConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Traces as JSON lines, and their verdicts
// ---------------------------------------------------------------------------

/// A run: its header and its lines (node and client events) in one order.
#[derive(Clone)]
struct Trace {
    name: String,
    header: Value,
    lines: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Valid,
    Rejected {
        rule: String,
        line: u64,
        text: String,
    },
    Inconclusive(String),
}

impl Trace {
    fn text(&self) -> String {
        let mut s = format!("{}\n", self.header);
        for l in &self.lines {
            s.push_str(&format!("{l}\n"));
        }
        s
    }

    /// The validator's verdict on the trace's node events. The trace must be
    /// well-formed: it is read back with the format's own reader first.
    fn verdict(&self) -> Verdict {
        let text = self.text();
        let (header, records) = raft_trace::read_all(text.as_bytes(), &self.name)
            .unwrap_or_else(|e| panic!("{}: not well-formed: {e}", self.name));
        let report = validate_records(&self.name, &header, &records, &Options::default())
            .unwrap_or_else(|e| panic!("{}: bad input: {e}", self.name));
        if let Some(r) = report.rejection {
            return Verdict::Rejected {
                rule: r.rule.to_string(),
                line: r.at.line,
                text: r.to_string(),
            };
        }
        match report.inconclusive {
            Some(why) => Verdict::Inconclusive(why),
            None => Verdict::Valid,
        }
    }

    fn observes(&self, ty: &str) -> bool {
        self.header["observes"]["events"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e == ty))
    }

    fn features(&self) -> Vec<String> {
        self.header["features"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Renumbers `seq` per node, 1, 2, 3, ... (inserted lines carry seq 0).
fn renumber(lines: &mut [Value]) {
    let mut next: BTreeMap<u64, u64> = BTreeMap::new();
    for l in lines.iter_mut() {
        if let Some(n) = node(l) {
            let s = next.entry(n).or_insert(0);
            *s += 1;
            l["seq"] = json!(*s);
        }
    }
}

/// The simulator's options for a seed: the CLI's defaults (pre-vote,
/// check-quorum, lost election), with leader transfer, with leader
/// transfer and lease reads, or Figure 2 alone, in turn.
fn sim_setup(seed: u64) -> (SimConfig, RaftKv) {
    let figure2 = seed % 4 == 2;
    let transfer = seed % 4 == 1 || seed % 4 == 3;
    let cfg = SimConfig {
        steps: 800,
        leader_transfer: transfer,
        ..SimConfig::default()
    };
    let imp = RaftKv {
        pre_vote: !figure2,
        check_quorum: !figure2,
        lost_election: !figure2,
        leader_transfer: transfer,
        lease_read: seed % 4 == 3,
        ..RaftKv::default()
    };
    (cfg, imp)
}

fn sim_trace(seed: u64) -> Trace {
    let (cfg, imp) = sim_setup(seed);
    let r = run(seed, &cfg, &imp);
    assert_eq!(r.outcome(), SimOutcome::Valid, "seed {seed}");
    Trace {
        name: format!("seed-{seed}.ndjson"),
        header: serde_json::to_value(&r.header).unwrap(),
        lines: r
            .records
            .iter()
            .map(|x| serde_json::to_value(x).unwrap())
            .collect(),
    }
}

fn example_traces() -> Vec<Trace> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces/examples");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let mut it = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap());
            Trace {
                name: p.file_name().unwrap().to_string_lossy().into_owned(),
                header: it.next().unwrap(),
                lines: it.collect(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Reading lines
// ---------------------------------------------------------------------------

/// The node of a node event (client events have no `seq`).
fn node(l: &Value) -> Option<u64> {
    l.get("seq")?;
    l["node"].as_u64()
}

fn ty(l: &Value) -> &str {
    l["type"].as_str().unwrap_or("")
}

fn rpc(l: &Value) -> &str {
    l["msg"]["rpc"].as_str().unwrap_or("")
}

fn is_msg(l: &Value, t: &str, r: &str) -> bool {
    ty(l) == t && rpc(l) == r
}

fn post(l: &Value, f: &str) -> Option<u64> {
    l.get("post")?.get(f)?.as_u64()
}

fn role(l: &Value) -> Option<&str> {
    l.get("post")?.get("role")?.as_str()
}

fn u(l: &Value, f: &str) -> u64 {
    l[f].as_u64().unwrap_or_else(|| panic!("{f} in {l}"))
}

/// Events that start a step of the replay (its checkpoint compares the
/// state the previous step's events showed with the rule's).
fn starts_step(l: &Value) -> bool {
    matches!(ty(l), "receive" | "timeout" | "init")
        || (ty(l) == "role" && l["reason"] == "check_quorum")
}

/// Facts about a trace that site choices need.
struct Index {
    /// For each line, the previous line of the same node.
    prev: Vec<Option<usize>>,
    /// For each line, the node's latest `persist` before it.
    persist: Vec<Option<usize>>,
    /// For each line, whether the node is up (after an init, before a crash).
    up: Vec<bool>,
    /// For each line, the node's role and term before it, as its role
    /// events and posts show them.
    role_term: Vec<Option<(String, u64)>>,
    /// For each (from, id), the line of its send.
    send_of: HashMap<(u64, u64), usize>,
    /// For each (from, id), the lines of its receives.
    receives_of: HashMap<(u64, u64), Vec<usize>>,
    /// The largest message id.
    max_id: u64,
    nodes: Vec<u64>,
}

fn index(t: &Trace) -> Index {
    let n = t.lines.len();
    let mut idx = Index {
        prev: vec![None; n],
        persist: vec![None; n],
        up: vec![false; n],
        role_term: vec![None; n],
        send_of: HashMap::new(),
        receives_of: HashMap::new(),
        max_id: 0,
        nodes: t.header["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect(),
    };
    let mut last: HashMap<u64, usize> = HashMap::new();
    let mut persist: HashMap<u64, usize> = HashMap::new();
    let mut up: HashMap<u64, bool> = HashMap::new();
    let mut rt: HashMap<u64, (String, u64)> = HashMap::new();
    for (i, l) in t.lines.iter().enumerate() {
        let Some(nd) = node(l) else { continue };
        idx.role_term[i] = rt.get(&nd).cloned();
        if ty(l) == "role" {
            rt.insert(nd, (l["role"].as_str().unwrap().to_string(), u(l, "term")));
        }
        if ty(l) == "init" {
            rt.insert(nd, ("follower".to_string(), u(l, "term")));
        }
        if let (Some(r), Some(term)) = (role(l), post(l, "term")) {
            rt.insert(nd, (r.to_string(), term));
        }
        idx.prev[i] = last.get(&nd).copied();
        idx.persist[i] = persist.get(&nd).copied();
        idx.up[i] = up.get(&nd).copied().unwrap_or(false);
        last.insert(nd, i);
        match ty(l) {
            "persist" => {
                persist.insert(nd, i);
            }
            "init" => {
                up.insert(nd, true);
            }
            "crash" => {
                up.insert(nd, false);
            }
            "send" => {
                let key = (u(&l["msg"], "from"), u(&l["msg"], "id"));
                idx.send_of.insert(key, i);
                idx.max_id = idx.max_id.max(key.1);
            }
            "receive" => {
                let key = (u(&l["msg"], "from"), u(&l["msg"], "id"));
                idx.receives_of.entry(key).or_default().push(i);
                idx.max_id = idx.max_id.max(key.1);
            }
            _ => {}
        }
    }
    idx
}

fn msg_key(l: &Value) -> (u64, u64) {
    (u(&l["msg"], "from"), u(&l["msg"], "id"))
}

impl Index {
    /// The post the node's previous event left (its state before line `i`).
    fn before<'a>(&self, t: &'a Trace, i: usize) -> Option<&'a Value> {
        t.lines[self.prev[i]?].get("post")
    }

    fn before_u(&self, t: &Trace, i: usize, f: &str) -> Option<u64> {
        self.before(t, i)?.get(f)?.as_u64()
    }

    /// The line that starts the node's next step after line `i`, if the
    /// node gets there without a crash or a gap (a crash cuts a step short
    /// and its state is never compared).
    fn step_end(&self, t: &Trace, i: usize) -> Option<usize> {
        let nd = node(&t.lines[i])?;
        for j in i + 1..t.lines.len() {
            let l = &t.lines[j];
            if node(l) != Some(nd) {
                continue;
            }
            match ty(l) {
                "crash" | "gap" | "init" => return None,
                _ if starts_step(l) => return Some(j),
                _ => {}
            }
        }
        // The replay checks the last step when the trace ends.
        Some(t.lines.len())
    }

    /// The line that started the step line `i` belongs to.
    fn step_start(&self, t: &Trace, i: usize) -> Option<usize> {
        let mut j = self.prev[i];
        while let Some(k) = j {
            if starts_step(&t.lines[k]) {
                return Some(k);
            }
            j = self.prev[k];
        }
        None
    }

    /// Lines of the message's send and receives.
    fn copies(&self, key: (u64, u64)) -> Vec<usize> {
        let mut v: Vec<usize> = self.send_of.get(&key).into_iter().copied().collect();
        v.extend(self.receives_of.get(&key).into_iter().flatten().copied());
        v
    }
}

/// Applies `f` to the message of a send and of every receive of it (so a
/// mutated message is still the message its receives show).
fn edit_message(t: &mut Trace, idx: &Index, key: (u64, u64), f: impl Fn(&mut Value)) {
    for i in idx.copies(key) {
        f(&mut t.lines[i]["msg"]);
    }
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, v: &[T]) -> Option<T> {
    if v.is_empty() {
        None
    } else {
        Some(v[rng.random_range(0..v.len())])
    }
}

/// Lines `i` of `t` with `pred(t, idx, i)`.
fn sites(t: &Trace, idx: &Index, pred: impl Fn(&Trace, &Index, usize) -> bool) -> Vec<usize> {
    (0..t.lines.len()).filter(|&i| pred(t, idx, i)).collect()
}

fn ev(node: u64, ty: &str, fields: Value) -> Value {
    let mut v = json!({"type": ty, "node": node, "seq": 0});
    if let Value::Object(m) = fields {
        for (k, x) in m {
            v[k] = x;
        }
    }
    v
}

/// The result of a mutation: the mutant and the line the violation was
/// planted at (the rejection must not come before it).
struct Mutant {
    trace: Trace,
    at: usize,
}

fn mutant(t: &Trace, at: usize, f: impl FnOnce(&mut Vec<Value>)) -> Mutant {
    let mut trace = t.clone();
    f(&mut trace.lines);
    renumber(&mut trace.lines);
    Mutant { trace, at }
}

type Mutate = fn(&Trace, &Index, &mut ChaCha8Rng) -> Option<Mutant>;

// ---------------------------------------------------------------------------
// Mutation kinds: one or more per rule of the validator
// ---------------------------------------------------------------------------

/// A receive of a message id its sender never used: every receive must
/// match an earlier send (SCHEMA: message identity).
fn receive_of_unsent(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(rng, &sites(t, idx, |t, _, i| ty(&t.lines[i]) == "receive"))?;
    let id = idx.max_id + 1;
    Some(mutant(t, i, |ls| ls[i]["msg"]["id"] = json!(id)))
}

/// A receive whose term differs from its send's: the network may lose,
/// duplicate or reorder messages, never alter them.
fn receive_altered(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(rng, &sites(t, idx, |t, _, i| ty(&t.lines[i]) == "receive"))?;
    Some(mutant(t, i, |ls| {
        let term = u(&ls[i]["msg"], "term");
        ls[i]["msg"]["term"] = json!(term + 1);
    }))
}

/// A message received twice, in a run whose header no longer declares
/// duplication: each message is delivered at most once.
fn receive_duplicated(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(rng, &sites(t, idx, |t, _, i| ty(&t.lines[i]) == "receive"))?;
    let mut m = mutant(t, i + 1, |ls| {
        let copy = ls[i].clone();
        ls.insert(i + 1, copy);
    });
    m.trace.header["network"]["duplication"] = json!(false);
    // An earlier duplicate the simulator made is the same violation.
    m.at = 0;
    Some(m)
}

/// A message delivered after a later message of the same channel was, in a
/// run whose header no longer declares reordering: the copy of an earlier
/// message re-delivered after a later one is out of order.
fn receive_reordered(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    // Position of each message on its channel, in send order.
    let mut position: HashMap<(u64, u64), u64> = HashMap::new();
    let mut sent: HashMap<(u64, u64), u64> = HashMap::new();
    let mut order: Vec<(usize, usize)> = Vec::new();
    // The last receive seen per channel: (line, position).
    let mut last: HashMap<(u64, u64), (usize, u64)> = HashMap::new();
    for (i, l) in t.lines.iter().enumerate() {
        match ty(l) {
            "send" => {
                let ch = (u(&l["msg"], "from"), u(&l["msg"], "to"));
                let n = sent.entry(ch).or_insert(0);
                position.insert(msg_key(l), *n);
                *n += 1;
            }
            "receive" => {
                let ch = (u(&l["msg"], "from"), u(&l["msg"], "to"));
                let Some(&p) = position.get(&msg_key(l)) else {
                    continue;
                };
                if let Some(&(j, q)) = last.get(&ch) {
                    if q < p {
                        // Re-deliver the earlier message j after i.
                        order.push((i, j));
                    }
                }
                last.insert(ch, (i, p));
            }
            _ => {}
        }
    }
    let (i, j) = pick(rng, &order)?;
    let mut m = mutant(t, 0, |ls| {
        let copy = ls[j].clone();
        ls.insert(i + 1, copy);
    });
    m.trace.header["network"]["reorder"] = json!(false);
    m.trace.header["network"]["duplication"] = json!(true);
    let _ = idx;
    Some(m)
}

/// A run declared lossless and ordered although the simulator dropped
/// messages: the first message delivered after an earlier one of its
/// channel was lost breaks the declaration (MessageLost; an earlier
/// out-of-order delivery breaks it as MessageReordered).
fn declared_lossless(t: &Trace, _: &Index, _: &mut ChaCha8Rng) -> Option<Mutant> {
    // Whether some channel delivered a message after skipping or passing
    // an earlier one.
    let mut position: HashMap<(u64, u64), u64> = HashMap::new();
    let mut sent: HashMap<(u64, u64), u64> = HashMap::new();
    let mut last: HashMap<(u64, u64), u64> = HashMap::new();
    let mut broken = false;
    for l in &t.lines {
        let ch = || (u(&l["msg"], "from"), u(&l["msg"], "to"));
        match ty(l) {
            "send" => {
                let n = sent.entry(ch()).or_insert(0);
                position.insert(msg_key(l), *n);
                *n += 1;
            }
            "receive" => {
                let Some(&p) = position.get(&msg_key(l)) else {
                    continue;
                };
                let dup = t.header["network"]["duplication"] == true;
                let prev = last.get(&ch()).copied();
                broken |= !match prev {
                    None => p == 0,
                    Some(q) => p == q + 1 || (p == q && dup),
                };
                last.insert(ch(), prev.map_or(p, |q| q.max(p)));
            }
            _ => {}
        }
    }
    if !broken {
        return None;
    }
    let mut m = mutant(t, 0, |_| {});
    m.trace.header["network"]["loss"] = json!(false);
    m.trace.header["network"]["reorder"] = json!(false);
    Some(m)
}

/// A send reusing the id of an earlier send by the same node: a message is
/// identified by (from, id), so ids must be unique per sender.
fn send_reuses_id(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let mut first: HashMap<u64, u64> = HashMap::new();
    let mut cands = Vec::new();
    for (i, l) in t.lines.iter().enumerate() {
        if ty(l) == "send" {
            let (from, id) = msg_key(l);
            match first.get(&from) {
                Some(&f) if f != id => cands.push((i, f)),
                Some(_) => {}
                None => {
                    first.insert(from, id);
                }
            }
        }
    }
    let (i, id) = pick(rng, &cands)?;
    let key = msg_key(&t.lines[i]);
    let mut tr = t.clone();
    edit_message(&mut tr, idx, key, |m| m["id"] = json!(id));
    renumber(&mut tr.lines);
    Some(Mutant { trace: tr, at: i })
}

/// An event of a crashed node before it restarts: a crashed server takes no
/// steps (SCHEMA: `crash` ... until the next `init`).
fn event_while_crashed(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, idx, i| {
            ty(&t.lines[i]) == "crash" && idx.persist[i].is_some()
        }),
    )?;
    let n = node(&t.lines[i]).unwrap();
    Some(mutant(t, i + 1, |ls| {
        ls.insert(i + 1, ev(n, "timeout", json!({"timer": "election"})));
    }))
}

/// A restart that recovers a lower term than the node made durable: what
/// was persisted survives a crash (Figure 2: currentTerm is persistent).
fn restart_loses_term(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, idx, i| {
            let l = &t.lines[i];
            ty(l) == "init"
                && l["reason"] == "restart"
                && idx.persist[i].is_some_and(|p| u(&t.lines[p], "term") >= 1)
        }),
    )?;
    let d = u(&t.lines[idx.persist[i].unwrap()], "term");
    Some(mutant(t, i, |ls| {
        ls[i]["term"] = json!(d - 1);
        ls[i]["vote"] = Value::Null;
    }))
}

/// A second vote in a term: a persist that changes the vote of a term
/// already voted in (Figure 2: votedFor, at most one candidate per term).
fn second_vote(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "persist" && l["vote"].is_u64()
        }),
    )?;
    let l = &t.lines[i];
    let n = node(l).unwrap();
    let vote = u(l, "vote");
    let other = *idx.nodes.iter().find(|&&x| x != vote).unwrap();
    let p = json!({"term": l["term"], "vote": other, "last_index": l["last_index"]});
    Some(mutant(t, i + 1, |ls| ls.insert(i + 1, ev(n, "persist", p))))
}

/// A persist of a lower term than the node made durable: currentTerm
/// increases monotonically (Figure 2).
fn term_decreases(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "persist" && u(l, "term") >= 2
        }),
    )?;
    let l = &t.lines[i];
    let n = node(l).unwrap();
    let p = json!({"term": u(l, "term") - 1, "vote": null, "last_index": l["last_index"]});
    Some(mutant(t, i + 1, |ls| ls.insert(i + 1, ev(n, "persist", p))))
}

/// A second leader in a term: another node, up and at most in that term,
/// becomes leader of a term that already has one (Election Safety, Figure 3).
fn second_leader(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let mut cands = Vec::new();
    let mut term_of: HashMap<u64, u64> = HashMap::new();
    let mut up: HashMap<u64, bool> = HashMap::new();
    for (i, l) in t.lines.iter().enumerate() {
        let Some(n) = node(l) else { continue };
        match ty(l) {
            "init" => {
                up.insert(n, true);
            }
            "crash" => {
                up.insert(n, false);
            }
            _ => {}
        }
        if let Some(x) = post(l, "term") {
            term_of.insert(n, x);
        }
        if ty(l) == "role" && l["role"] == "leader" {
            let term = u(l, "term");
            for &m in &idx.nodes {
                if m != n
                    && up.get(&m) == Some(&true)
                    && term_of.get(&m).is_some_and(|&x| x <= term)
                {
                    cands.push((i, m, term));
                }
            }
        }
    }
    let (i, m, term) = pick(rng, &cands)?;
    let r = json!({"role": "leader", "term": term, "reason": "won_election"});
    Some(mutant(t, i + 1, |ls| ls.insert(i + 1, ev(m, "role", r))))
}

/// A leader that lacks an entry committed in an earlier term (Leader
/// Completeness, Figure 3). On the trace without its commit events and
/// `post.commit` (an omission SCHEMA allows: the control "no commit at
/// all" stays valid), the node that wins an election loses the suffix of
/// its log just before, from an entry another node applied in an earlier
/// term: what the node committed is unknown, so the truncate itself breaks
/// no invariant, and the win breaks Leader Completeness.
fn leader_missing_committed(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    // (index, term of the applying node) of every apply so far.
    let mut applied: Vec<(u64, u64)> = Vec::new();
    let mut cands = Vec::new();
    for (i, l) in t.lines.iter().enumerate() {
        if ty(l) == "apply" {
            if let Some((_, term)) = &idx.role_term[i] {
                applied.push((u(l, "index"), *term));
            }
        }
        if ty(l) == "role" && l["role"] == "leader" {
            let term = u(l, "term");
            let (Some(last), Some(snap)) = (
                idx.before_u(t, i, "last_index"),
                idx.before_u(t, i, "snapshot_index"),
            ) else {
                continue;
            };
            let mut ok: Vec<u64> = applied
                .iter()
                .filter(|&&(c, by)| by < term && c > snap && c <= last)
                .map(|&(c, _)| c)
                .collect();
            ok.sort_unstable();
            ok.dedup();
            for c in ok {
                cands.push((i, c));
            }
        }
    }
    let (i, c) = pick(rng, &cands)?;
    let n = node(&t.lines[i]).unwrap();
    let mut base = drop_events(t, "commit")?;
    undeclare_state(&mut base, "commit");
    // drop_events removed lines before i: find the role event again.
    let seq = t.lines[i]["seq"].clone();
    let nd = t.lines[i]["node"].clone();
    let at = base
        .lines
        .iter()
        .position(|l| {
            l["node"] == nd
                && ty(l) == "role"
                && l["role"] == "leader"
                && l["term"] == t.lines[i]["term"]
        })
        .expect("the role event");
    let _ = seq;
    Some(mutant(&base, at, |ls| {
        ls.insert(at, ev(n, "truncate", json!({"from": c})));
    }))
}

/// A vote sent before it is durable: the persist that records it is
/// removed (Figure 2: persistent state is updated on stable storage before
/// responding to RPCs).
fn vote_not_persisted(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let cands: Vec<(usize, usize)> = (0..t.lines.len())
        .filter(|&i| {
            let l = &t.lines[i];
            is_msg(l, "send", "request_vote_reply") && l["msg"]["granted"] == true
        })
        .filter_map(|i| {
            let p = idx.persist[i]?;
            let pl = &t.lines[p];
            let m = &t.lines[i]["msg"];
            // The persist that made this vote durable, and the one before
            // it did not already hold it.
            let holds = |x: &Value| x["term"] == m["term"] && x["vote"] == m["to"];
            (holds(pl) && !idx.persist[p].is_some_and(|q| holds(&t.lines[q]))).then_some((i, p))
        })
        .collect();
    let (i, p) = pick(rng, &cands)?;
    // Every granted reply from the removed persist on is unprotected (a
    // reply sent twice is rejected at its first copy).
    let _ = i;
    Some(mutant(t, p, |ls| {
        ls.remove(p);
    }))
}

/// A message sent in a term the node has not made durable: the persist
/// that first held the term of a refusal or an answer, a term the node
/// learned without voting in it, is removed (Figure 2: currentTerm reaches
/// stable storage before the node responds).
fn term_not_persisted(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let cands: Vec<usize> = sites(t, idx, |t, idx, i| {
        let l = &t.lines[i];
        let answer = (is_msg(l, "send", "append_entries_reply") && l["msg"]["success"] == false)
            || (is_msg(l, "send", "request_vote_reply") && l["msg"]["granted"] == false)
            || is_msg(l, "send", "install_snapshot_reply")
            || is_msg(l, "send", "heartbeat_reply");
        let Some(p) = idx.persist[i].filter(|_| answer) else {
            return false;
        };
        let term = &l["msg"]["term"];
        // A term learned, not one the node voted in (its vote's own rule
        // would name the removed persist first).
        t.lines[p]["term"] == *term
            && t.lines[p]["vote"].is_null()
            && idx.persist[p].is_none_or(|q| t.lines[q]["term"].as_u64() < term.as_u64())
    })
    .into_iter()
    .map(|i| idx.persist[i].expect("a persist"))
    .collect();
    let p = pick(rng, &cands)?;
    Some(mutant(t, p, |ls| {
        ls.remove(p);
    }))
}

/// An acknowledgement of entries past the durable log: the reply's
/// match_index is one more than what the follower persisted (Figure 2:
/// persist before responding).
fn ack_not_persisted(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, idx, i| {
            let l = &t.lines[i];
            is_msg(l, "send", "append_entries_reply")
                && l["msg"]["success"] == true
                && l["msg"]["match_index"].is_u64()
                && idx.persist[i].is_some()
        }),
    )?;
    let d = u(&t.lines[idx.persist[i].unwrap()], "last_index");
    let key = msg_key(&t.lines[i]);
    let mut tr = t.clone();
    edit_message(&mut tr, idx, key, |m| m["match_index"] = json!(d + 1));
    renumber(&mut tr.lines);
    Some(Mutant { trace: tr, at: i })
}

/// An append that leaves a hole: it starts one past the end of the log
/// (Figure 2: entries are appended at the log's end).
fn append_past_end(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(rng, &sites(t, idx, |t, _, i| ty(&t.lines[i]) == "append"))?;
    Some(mutant(t, i, |ls| {
        let x = u(&ls[i], "index");
        ls[i]["index"] = json!(x + 1);
    }))
}

/// Two logs with the same entry (index and term) but different
/// predecessors: an append whose entry before the last carries another
/// term, followed by an entry that another log holds after the right one
/// (Log Matching, Figure 3).
fn log_mismatch(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    // (index, term) of every entry appended so far, with its predecessor's term.
    let mut seen: HashMap<(u64, u64), ()> = HashMap::new();
    let mut cands = Vec::new();
    for (i, l) in t.lines.iter().enumerate() {
        if ty(l) != "append" {
            continue;
        }
        let Some(es) = l["entries"].as_array() else {
            continue;
        };
        let at = u(l, "index");
        for k in 0..es.len() {
            let term = u(&es[k], "term");
            if k + 1 < es.len() && seen.contains_key(&(at + k as u64 + 1, u(&es[k + 1], "term"))) {
                cands.push((i, k));
            }
            seen.insert((at + k as u64, term), ());
        }
    }
    let (i, k) = pick(rng, &cands)?;
    let _ = idx;
    Some(mutant(t, i, |ls| {
        let term = u(&ls[i]["entries"][k], "term");
        ls[i]["entries"][k]["term"] = json!(term + 1);
    }))
}

/// A leader that removes entries from its own log (Leader Append-Only,
/// Figure 3).
fn leader_truncates(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            node(l).is_some()
                && role(l) == Some("leader")
                && post(l, "last_index").is_some_and(|x| x >= 1)
        }),
    )?;
    let l = &t.lines[i];
    let n = node(l).unwrap();
    let from = post(l, "last_index")
        .unwrap()
        .max(post(l, "snapshot_index").unwrap_or(0) + 1);
    Some(mutant(t, i + 1, |ls| {
        ls.insert(i + 1, ev(n, "truncate", json!({"from": from})));
    }))
}

/// A follower that truncates a committed entry: committed entries are
/// never removed (Figure 2: "If an existing entry conflicts..." only
/// uncommitted entries can conflict).
fn truncate_committed(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            node(l).is_some()
                && role(l) == Some("follower")
                && post(l, "commit").is_some_and(|c| {
                    c >= 1
                        && c > post(l, "snapshot_index").unwrap_or(0)
                        && post(l, "last_index").is_some_and(|x| x >= c)
                })
        }),
    )?;
    let l = &t.lines[i];
    let n = node(l).unwrap();
    let from = post(l, "commit").unwrap();
    Some(mutant(t, i + 1, |ls| {
        ls.insert(i + 1, ev(n, "truncate", json!({"from": from})));
    }))
}

/// An installed snapshot whose last entry has another term than the
/// entry committed there (State Machine Safety, Figure 3: every server
/// applies the same entry at an index).
fn install_other_term(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    // An install at an index some node has already applied.
    let mut applied: HashMap<u64, ()> = HashMap::new();
    let mut cands = Vec::new();
    for (i, l) in t.lines.iter().enumerate() {
        match ty(l) {
            "apply" => {
                applied.insert(u(l, "index"), ());
            }
            "install" if applied.contains_key(&u(l, "index")) && u(l, "index") > 0 => cands.push(i),
            _ => {}
        }
    }
    let i = pick(rng, &cands)?;
    let _ = idx;
    Some(mutant(t, i, |ls| {
        let x = u(&ls[i], "term");
        ls[i]["term"] = json!(x + 1);
    }))
}

/// A commit index that goes back (Figure 2: commitIndex increases
/// monotonically).
fn commit_decreases(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "commit" && u(l, "index") >= 2
        }),
    )?;
    let l = &t.lines[i];
    let n = node(l).unwrap();
    let c = u(l, "index") - 1;
    Some(mutant(t, i + 1, |ls| {
        ls.insert(i + 1, ev(n, "commit", json!({"index": c})));
    }))
}

/// A commit index past the end of the node's log: only entries a node
/// holds can be committed by it.
fn commit_past_log(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "commit" && post(l, "last_index").is_some()
        }),
    )?;
    let l = &t.lines[i];
    let n = node(l).unwrap();
    let c = post(l, "last_index").unwrap() + 1;
    Some(mutant(t, i + 1, |ls| {
        ls.insert(i + 1, ev(n, "commit", json!({"index": c})));
    }))
}

/// An entry skipped: an apply is removed while the next apply follows
/// (Figure 2: lastApplied is incremented one entry at a time).
fn apply_skips(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let cands: Vec<usize> = (0..t.lines.len())
        .filter(|&i| {
            let l = &t.lines[i];
            if ty(l) != "apply" {
                return false;
            }
            let n = node(l);
            // The node's next apply, before any restart or install.
            for j in i + 1..t.lines.len() {
                let m = &t.lines[j];
                if node(m) != n {
                    continue;
                }
                match ty(m) {
                    "apply" => return u(m, "index") == u(l, "index") + 1,
                    "crash" | "init" | "install" | "gap" => return false,
                    _ => {}
                }
            }
            false
        })
        .collect();
    let i = pick(rng, &cands)?;
    let _ = idx;
    Some(mutant(t, i, |ls| {
        ls.remove(i);
    }))
}

/// An apply of an entry past the commit index (Figure 2: apply only
/// committed entries): right after the node applied up to its commit index.
fn apply_uncommitted(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "apply"
                && post(l, "commit") == Some(u(l, "index"))
                && post(l, "last_index").is_some_and(|x| x > u(l, "index"))
        }),
    )?;
    let l = &t.lines[i];
    let n = node(l).unwrap();
    let a = json!({"index": u(l, "index") + 1, "term": l["term"]});
    Some(mutant(t, i + 1, |ls| ls.insert(i + 1, ev(n, "apply", a))))
}

/// An apply whose term is not the term of the node's entry at that index:
/// a node applies what its log holds.
fn apply_other_term(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "apply" && post(l, "snapshot_index").is_some_and(|s| s < u(l, "index"))
        }),
    )?;
    Some(mutant(t, i, |ls| {
        let x = u(&ls[i], "term");
        ls[i]["term"] = json!(x + 1);
    }))
}

/// A snapshot past what the node applied: a snapshot holds the state
/// machine's applied prefix (section 7).
fn snapshot_unapplied(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, idx, i| {
            let l = &t.lines[i];
            ty(l) == "snapshot"
                && idx
                    .before_u(t, i, "last_index")
                    .is_some_and(|x| x > u(l, "index"))
        }),
    )?;
    Some(mutant(t, i, |ls| {
        let x = u(&ls[i], "index");
        ls[i]["index"] = json!(x + 1);
    }))
}

/// A snapshot whose last term is not the term of the log's entry there
/// (section 7: the snapshot records the last included entry's term).
fn snapshot_other_term(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(rng, &sites(t, idx, |t, _, i| ty(&t.lines[i]) == "snapshot"))?;
    Some(mutant(t, i, |ls| {
        let x = u(&ls[i], "term");
        ls[i]["term"] = json!(x + 1);
    }))
}

/// A snapshot installed below what the node already applied: the state
/// machine would go back (Figure 13: a snapshot covering less is ignored).
fn install_regresses(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "apply" && u(l, "index") >= 2
        }),
    )?;
    let l = &t.lines[i];
    let n = node(l).unwrap();
    let s = json!({"index": u(l, "index") - 1, "term": l["term"]});
    Some(mutant(t, i + 1, |ls| ls.insert(i + 1, ev(n, "install", s))))
}

/// A post whose last_index is not what the node's log events leave: the
/// state an event shows is the state its node is in.
fn post_disagrees(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "commit" && post(l, "last_index").is_some()
        }),
    )?;
    Some(mutant(t, i, |ls| {
        let x = post(&ls[i], "last_index").unwrap();
        ls[i]["post"]["last_index"] = json!(x + 1);
    }))
}

/// A restart that recovers a log whose last term is not the term of the
/// last entry it recovered: a restarted server holds the log it had on
/// disk (the replay's restart rule).
fn restart_wrong_last_term(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "init" && l["reason"] == "restart" && l["entries"].is_array()
        }),
    )?;
    Some(mutant(t, i, |ls| {
        let x = u(&ls[i], "last_term");
        ls[i]["last_term"] = json!(x + 1);
        if ls[i].get("post").is_some() {
            ls[i]["post"]["last_term"] = json!(x + 1);
        }
    }))
}

/// A PreVote retried with a last_index that is not the pre-candidate's:
/// the election timeout's rule sends the node's own last log index.
fn pre_vote_wrong_log(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    msg_field_plus_one(t, idx, rng, "pre_vote", "last_index", &["timeout", "role"])
}

/// A RequestVote whose last_index is not the candidate's (Figure 2:
/// RequestVote carries lastLogIndex); sent on an election timeout.
fn request_vote_wrong_log(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    msg_field_plus_one(t, idx, rng, "request_vote", "last_index", &["timeout"])
}

/// Sends of `rpc` in a step started by one of `starts`, with `field` one
/// more in the send and its receives.
fn msg_field_plus_one(
    t: &Trace,
    idx: &Index,
    rng: &mut ChaCha8Rng,
    r: &str,
    field: &str,
    starts: &[&str],
) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, idx, i| {
            let l = &t.lines[i];
            is_msg(l, "send", r)
                && l["msg"][field].is_u64()
                && idx
                    .step_start(t, i)
                    .is_some_and(|s| starts.contains(&ty(&t.lines[s])))
        }),
    )?;
    let key = msg_key(&t.lines[i]);
    let mut tr = t.clone();
    edit_message(&mut tr, idx, key, |m| {
        let x = m[field].as_u64().unwrap();
        m[field] = json!(x + 1);
    });
    renumber(&mut tr.lines);
    Some(Mutant { trace: tr, at: i })
}

/// The first send of `reply` in a step started by a receive of `request`,
/// with its term one more (no rule replies in a term its sender is not in).
fn reply_term_plus_one(
    t: &Trace,
    idx: &Index,
    rng: &mut ChaCha8Rng,
    request: &str,
    reply: &str,
    keep: impl Fn(&Value) -> bool,
) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, idx, i| {
            let l = &t.lines[i];
            is_msg(l, "send", reply)
                && keep(&l["msg"])
                && idx
                    .step_start(t, i)
                    .is_some_and(|s| is_msg(&t.lines[s], "receive", request))
        }),
    )?;
    let key = msg_key(&t.lines[i]);
    let mut tr = t.clone();
    edit_message(&mut tr, idx, key, |m| {
        let x = m["term"].as_u64().unwrap();
        m["term"] = json!(x + 1);
    });
    renumber(&mut tr.lines);
    Some(Mutant { trace: tr, at: i })
}

/// A reply to AppendEntries in a term the follower is not in: the receiver
/// replies with its currentTerm (Figure 2, AppendEntries RPC).
fn append_reply_wrong_term(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    reply_term_plus_one(
        t,
        idx,
        rng,
        "append_entries",
        "append_entries_reply",
        |_| true,
    )
}

/// A reply to a heartbeat in a term the follower is not in (feature
/// heartbeat: the reply carries the receiver's term).
fn heartbeat_reply_wrong_term(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    reply_term_plus_one(t, idx, rng, "heartbeat", "heartbeat_reply", |_| true)
}

/// A reply to InstallSnapshot in a term the follower is not in (Figure 13:
/// the reply carries currentTerm).
fn install_reply_wrong_term(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    reply_term_plus_one(
        t,
        idx,
        rng,
        "install_snapshot",
        "install_snapshot_reply",
        |_| true,
    )
}

/// A refused PreVote answered in a term the node is not in, or a granted
/// one answered in another than the pre-vote's (the pre-vote rule replies
/// in the node's term when it refuses, the request's when it grants).
fn pre_vote_reply_wrong_term(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    reply_term_plus_one(t, idx, rng, "pre_vote", "pre_vote_reply", |_| true)
}

/// A refusal of a vote the rule grants, or a refusal in a term the node is
/// not in (Figure 2, RequestVote RPC: grant if votedFor is null or the
/// candidate, and its log is at least as up-to-date).
fn request_vote_reply_flipped(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, idx, i| {
            let l = &t.lines[i];
            is_msg(l, "send", "request_vote_reply")
                && idx
                    .step_start(t, i)
                    .is_some_and(|s| is_msg(&t.lines[s], "receive", "request_vote"))
        }),
    )?;
    let key = msg_key(&t.lines[i]);
    let granted = t.lines[i]["msg"]["granted"] == true;
    let mut tr = t.clone();
    edit_message(&mut tr, idx, key, |m| {
        if granted {
            m["granted"] = json!(false);
        } else {
            let x = m["term"].as_u64().unwrap();
            m["term"] = json!(x + 1);
        }
    });
    renumber(&mut tr.lines);
    Some(Mutant { trace: tr, at: i })
}

/// A role change inserted at the end of the step a receive of `request`
/// started, where the rule changes no role: `new_role(receive, role, term)`
/// gives the role event's role, term and reason (or `None`: no site). The
/// posts that show the node's state from there to the next step's start
/// show the new role, so the trace stays consistent with itself.
fn role_after_receive(
    t: &Trace,
    idx: &Index,
    rng: &mut ChaCha8Rng,
    request: &str,
    new_role: impl Fn(&Value, &str, u64) -> Option<(&'static str, u64, &'static str)>,
) -> Option<Mutant> {
    let cands: Vec<(usize, usize, (&str, u64, &str))> = (0..t.lines.len())
        .filter(|&i| is_msg(&t.lines[i], "receive", request))
        .filter_map(|i| {
            let end = idx.step_end(t, i)?;
            // The step must show no role change of its own.
            if (i + 1..end)
                .any(|j| node(&t.lines[j]) == node(&t.lines[i]) && ty(&t.lines[j]) == "role")
            {
                return None;
            }
            let (r, term) = idx.role_term[i].clone()?;
            Some((i, end, new_role(&t.lines[i], &r, term)?))
        })
        .collect();
    let k = rng.random_range(0..cands.len().max(1));
    let &(i, end, (r, term, reason)) = cands.get(k)?;
    let n = node(&t.lines[i]).unwrap();
    let show = |p: &mut Value| {
        if p.is_object() {
            p["role"] = json!(r);
            p["term"] = json!(term);
            if p.get("leader").is_some() {
                p["leader"] = if r == "leader" { json!(n) } else { Value::Null };
            }
            if r == "candidate" && p.get("vote").is_some() {
                p["vote"] = json!(n);
            }
        }
    };
    Some(mutant(t, end, |ls| {
        let mut e = ev(
            n,
            "role",
            json!({"role": r, "term": term, "reason": reason}),
        );
        if let Some(mut p) = ls[..end]
            .iter()
            .rev()
            .find(|l| node(l) == Some(n))
            .and_then(|l| l.get("post").cloned())
        {
            show(&mut p);
            e["post"] = p;
        }
        if end < ls.len() {
            // The next step's start shows the state this step left.
            if let Some(p) = ls[end].get_mut("post") {
                show(p);
            }
        }
        ls.insert(end, e);
    }))
}

/// A candidate that becomes leader on a vote reply that does not give it a
/// majority (Figure 2, Candidates: "If votes received from majority of
/// servers: become leader"): the replies where the trace shows no win.
fn leader_without_majority(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    // Terms some node won (a second leader there breaks Election Safety
    // first).
    let won: Vec<u64> = t
        .lines
        .iter()
        .filter(|l| ty(l) == "role" && l["role"] == "leader")
        .map(|l| u(l, "term"))
        .collect();
    role_after_receive(t, idx, rng, "request_vote_reply", |l, role, term| {
        (role == "candidate" && u(&l["msg"], "term") <= term && !won.contains(&term)).then_some((
            "leader",
            term,
            "won_election",
        ))
    })
}

/// A pre-candidate that starts an election on a pre-vote reply that does not
/// give it a majority (pre-vote, thesis 9.6).
fn candidate_without_pre_votes(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    role_after_receive(t, idx, rng, "pre_vote_reply", |_, role, term| {
        (role == "pre_candidate").then_some(("candidate", term + 1, "pre_vote_won"))
    })
}

/// A leader stepping down, in its own term, on an AppendEntries reply of
/// that term or older (Figure 2: only a higher term makes a leader a
/// follower).
fn leader_quits_on_append_reply(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    leader_quits_on(t, idx, rng, "append_entries_reply")
}

/// A leader stepping down, in its own term, on an InstallSnapshot reply of
/// that term or older (Figure 13 and Figure 2: only a higher term).
fn leader_quits_on_install_reply(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    leader_quits_on(t, idx, rng, "install_snapshot_reply")
}

/// A leader stepping down, in its own term, on a heartbeat reply of that
/// term or older (feature heartbeat; Figure 2: only a higher term).
fn leader_quits_on_heartbeat_reply(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    leader_quits_on(t, idx, rng, "heartbeat_reply")
}

fn leader_quits_on(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng, r: &str) -> Option<Mutant> {
    role_after_receive(t, idx, rng, r, |l, role, term| {
        (role == "leader" && u(&l["msg"], "term") <= term).then_some((
            "follower",
            term,
            "higher_term",
        ))
    })
}

/// A check-quorum step-down that also changes the term: stepping down for
/// want of a quorum keeps the leader's term (thesis 6.2).
fn check_quorum_changes_term(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, idx, i| {
            let l = &t.lines[i];
            ty(l) == "role" && l["reason"] == "check_quorum" && idx.step_end(t, i).is_some()
        }),
    )?;
    Some(mutant(t, i, |ls| {
        let x = u(&ls[i], "term");
        ls[i]["term"] = json!(x + 1);
        if ls[i].get("post").is_some() {
            ls[i]["post"]["term"] = json!(x + 1);
        }
    }))
}

/// A candidate's RequestVote after TimeoutNow whose last_index is not its
/// own (thesis 3.10: the target starts an election at once, sending its log
/// position).
fn transfer_vote_wrong_log(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, idx, i| {
            let l = &t.lines[i];
            is_msg(l, "send", "request_vote")
                && idx
                    .step_start(t, i)
                    .is_some_and(|s| is_msg(&t.lines[s], "receive", "timeout_now"))
        }),
    )?;
    let key = msg_key(&t.lines[i]);
    let mut tr = t.clone();
    edit_message(&mut tr, idx, key, |m| {
        let x = m["last_index"].as_u64().unwrap();
        m["last_index"] = json!(x + 1);
    });
    renumber(&mut tr.lines);
    Some(Mutant { trace: tr, at: i })
}

/// A send of a bare `rpc` (no fields but the envelope's) by a node a
/// seeded site shows as a follower, to another node.
fn follower_sends(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng, rpc: &str) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, idx, i| {
            let l = &t.lines[i];
            idx.up[i]
                && role(l) == Some("follower")
                && ty(l) != "crash"
                && post(l, "term").is_some()
        }),
    )?;
    let l = &t.lines[i];
    let n = node(l).unwrap();
    let to = *idx.nodes.iter().find(|&&x| x != n).unwrap();
    let msg = json!({"id": idx.max_id + 1, "from": n, "to": to,
        "term": post(l, "term").unwrap(), "rpc": rpc});
    Some(mutant(t, i + 1, |ls| {
        ls.insert(i + 1, ev(n, "send", json!({"msg": msg})))
    }))
}

/// A TimeoutNow sent by a node that is not leader (thesis 3.10: the leader
/// hands over leadership).
fn timeout_now_from_follower(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    if !t.features().iter().any(|f| f == "leader-transfer") {
        return None;
    }
    follower_sends(t, idx, rng, "timeout_now")
}

/// A forwarded proposal (`propose`) in a trace whose header declares its
/// features without forward-proposals: Figure 2's clients send commands to
/// the leader, and no declared feature lets a node forward them.
fn propose_undeclared(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    if !t.header["features"].is_array() || t.features().iter().any(|f| f == "forward-proposals") {
        return None;
    }
    follower_sends(t, idx, rng, "propose")
}

/// Reads a leader served by ReadIndex (with the round that confirmed them).
fn read_index_reads(t: &Trace, idx: &Index) -> Vec<usize> {
    sites(t, idx, |t, _, i| {
        let l = &t.lines[i];
        ty(l) == "read" && l["via"] == "read_index" && l["context"].is_u64()
    })
}

/// A ReadIndex read naming a heartbeat round its leader never sent (thesis
/// 6.4: the leader confirms it still leads by a round it sends after the
/// read arrives).
fn read_context_never_sent(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(rng, &read_index_reads(t, idx))?;
    let unused = t
        .lines
        .iter()
        .filter_map(|l| l["msg"]["context"].as_u64().or(l["context"].as_u64()))
        .max()
        .unwrap_or(0)
        + 1000;
    Some(mutant(t, i, |ls| ls[i]["context"] = json!(unused)))
}

/// A ReadIndex read served with no round at all, by a leader that is no
/// quorum alone (the planted `stale-read` bug's shape).
fn read_unconfirmed(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(rng, &read_index_reads(t, idx))?;
    Some(mutant(t, i, |ls| {
        ls[i].as_object_mut().unwrap().remove("context");
    }))
}

/// A lease read by an implementation whose header does not declare
/// lease-read: its followers made no promise not to elect another leader.
fn lease_read_undeclared(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    if !t.header["features"].is_array() || t.features().iter().any(|f| f == "lease-read") {
        return None;
    }
    let i = pick(rng, &read_index_reads(t, idx))?;
    Some(mutant(t, i, |ls| {
        ls[i]["via"] = json!("lease");
        ls[i].as_object_mut().unwrap().remove("context");
    }))
}

/// An AppendEntries from a leader starting past the end of its log
/// (Figure 2, Leaders: entries are sent from nextIndex ≤ last index + 1).
fn replication_past_log(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            is_msg(l, "send", "append_entries")
                && role(l) == Some("leader")
                && post(l, "term") == l["msg"]["term"].as_u64()
                && post(l, "last_index").is_some()
        }),
    )?;
    let last = post(&t.lines[i], "last_index").unwrap();
    let key = msg_key(&t.lines[i]);
    let mut tr = t.clone();
    edit_message(&mut tr, idx, key, |m| m["prev_index"] = json!(last + 1));
    renumber(&mut tr.lines);
    Some(Mutant { trace: tr, at: i })
}

/// A leader announcing a commit index past its log (Figure 2: leaderCommit
/// is the leader's commitIndex, which is within its log).
fn announce_uncommitted(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            is_msg(l, "send", "append_entries")
                && role(l) == Some("leader")
                && post(l, "last_index").is_some()
        }),
    )?;
    let last = post(&t.lines[i], "last_index").unwrap();
    let key = msg_key(&t.lines[i]);
    let mut tr = t.clone();
    edit_message(&mut tr, idx, key, |m| m["commit"] = json!(last + 1));
    renumber(&mut tr.lines);
    Some(Mutant { trace: tr, at: i })
}

/// The lines where a leader appends entries that `entries` holds of.
fn leader_appends(t: &Trace, idx: &Index, entries: impl Fn(&[Value]) -> bool) -> Vec<usize> {
    sites(t, idx, |t, idx, i| {
        let l = &t.lines[i];
        ty(l) == "append"
            && idx.before(t, i).is_some_and(|b| b["role"] == "leader")
            && l["entries"].as_array().is_some_and(|e| entries(e))
    })
}

/// A leader appending a client entry of another term than its own
/// (Figure 2, Leaders: "append entry to local log", in currentTerm).
fn client_entry_wrong_term(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(rng, &leader_appends(t, idx, |e| !e.is_empty()))?;
    Some(mutant(t, i, |ls| {
        let x = u(&ls[i]["entries"][0], "term");
        ls[i]["entries"][0]["term"] = json!(x + 1);
    }))
}

/// A leader's configuration entry with one more server moved (a voter
/// toggled, other than the leader): from the configuration before it, that
/// is two servers at once, or none (SCHEMA: Membership changes).
fn config_moves_two(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let is_config = |e: &Value| e["data"]["kind"] == "config" && e["data"]["voters"].is_array();
    let i = pick(rng, &leader_appends(t, idx, |es| es.iter().any(is_config)))?;
    let leader = u(&t.lines[i], "node");
    let others: Vec<u64> = t.header["nodes"]
        .as_array()?
        .iter()
        .filter_map(Value::as_u64)
        .filter(|&n| n != leader)
        .collect();
    let k = others[rng.random_range(0..others.len())];
    Some(mutant(t, i, |ls| {
        let entries = ls[i]["entries"].as_array_mut().unwrap();
        let e = entries.iter_mut().find(|e| is_config(e)).unwrap();
        let voters = e["data"]["voters"].as_array_mut().unwrap();
        match voters.iter().position(|v| v == &json!(k)) {
            Some(p) => drop(voters.remove(p)),
            None => voters.push(json!(k)),
        }
        if let Some(ls) = e["data"]["learners"].as_array_mut() {
            ls.retain(|v| v != &json!(k));
        }
    }))
}

/// An apply of a command that names another client than the entry's: an
/// apply names the entry it applies (SCHEMA: `apply`).
fn apply_other_client(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "apply" && l["client"].is_u64() && t.header["observes"]["entries"] == "full"
        }),
    )?;
    Some(mutant(t, i, |ls| {
        let x = u(&ls[i], "client");
        ls[i]["client"] = json!(x + 1000);
    }))
}

/// A command applied with its duplicate flag flipped: the state machine's
/// sessions decide whether a retried command executes (section 8,
/// at-most-once).
fn duplicate_flipped(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    if t.header["observes"]["entries"] != "full" {
        return None;
    }
    // Applies on nodes that have not installed a snapshot (whose sessions
    // the replay then knows) since their last boot.
    let mut installed: HashMap<u64, bool> = HashMap::new();
    let mut cands = Vec::new();
    for (i, l) in t.lines.iter().enumerate() {
        let Some(n) = node(l) else { continue };
        match ty(l) {
            "init" if l["reason"] == "boot" => {
                installed.insert(n, false);
            }
            "init" | "install" | "gap" => {
                installed.insert(n, true);
            }
            "apply" if l["client"].is_u64() && installed.get(&n) == Some(&false) => cands.push(i),
            _ => {}
        }
    }
    let i = pick(rng, &cands)?;
    let _ = idx;
    Some(mutant(t, i, |ls| {
        let d = ls[i]["duplicate"] == true;
        ls[i]["duplicate"] = json!(!d);
    }))
}

/// A snapshot of less than the node applied: a snapshot is taken of the
/// applied prefix (section 7).
fn snapshot_short(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, idx, i| {
            let l = &t.lines[i];
            ty(l) == "snapshot"
                && idx
                    .before_u(t, i, "snapshot_index")
                    .is_some_and(|s| s + 1 < u(l, "index"))
        }),
    )?;
    Some(mutant(t, i, |ls| {
        let x = u(&ls[i], "index");
        ls[i]["index"] = json!(x - 1);
    }))
}

/// A leader that, on a heartbeat timer, sends a vote reply no rule of that
/// step sends (a leader's heartbeat timer sends AppendEntries only). The
/// reply goes to a node whose request for votes in that term the leader
/// never received: a refusal of one it did receive may still be owed, and
/// may leave late (a node sends its messages in any order).
fn heartbeat_timer_sends_vote(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    // The first line at which each (node, candidate, term) request for
    // votes was received.
    let mut asked: HashMap<(u64, u64, u64), usize> = HashMap::new();
    for (i, r) in t.lines.iter().enumerate() {
        if let (Some(n), true) = (node(r), is_msg(r, "receive", "request_vote")) {
            let key = (n, u(&r["msg"], "from"), u(&r["msg"], "term"));
            asked.entry(key).or_insert(i);
        }
    }
    // The node a vote reply may go to at line i, if any.
    let owed_nothing = |t: &Trace, i: usize| {
        let l = &t.lines[i];
        let (n, term) = (node(l)?, post(l, "term")?);
        idx.nodes
            .iter()
            .copied()
            .find(|&to| to != n && asked.get(&(n, to, term)).is_none_or(|&first| first > i))
    };
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "timeout"
                && l["timer"] == "heartbeat"
                && post(l, "term").is_some()
                && owed_nothing(t, i).is_some()
        }),
    )?;
    let l = &t.lines[i];
    let n = node(l).unwrap();
    let to = owed_nothing(t, i).unwrap();
    let msg = json!({"id": idx.max_id + 1, "from": n, "to": to,
        "term": post(l, "term").unwrap(), "rpc": "request_vote_reply", "granted": false});
    Some(mutant(t, i + 1, |ls| {
        ls.insert(i + 1, ev(n, "send", json!({"msg": msg})))
    }))
}

/// An InstallSnapshot step whose install shows another snapshot than the
/// one received (Figure 13: the follower installs the leader's snapshot).
fn install_other_index(t: &Trace, idx: &Index, rng: &mut ChaCha8Rng) -> Option<Mutant> {
    let i = pick(
        rng,
        &sites(t, idx, |t, _, i| {
            let l = &t.lines[i];
            ty(l) == "install" && u(l, "index") >= 2
        }),
    )?;
    Some(mutant(t, i, |ls| {
        let x = u(&ls[i], "index");
        ls[i]["index"] = json!(x - 1);
    }))
}

/// A mutation kind: the rule whose violation it plants.
struct Kind {
    name: &'static str,
    rule: &'static str,
    mutate: Mutate,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "receive-of-unsent",
        rule: "MessageNeverSent",
        mutate: receive_of_unsent,
    },
    Kind {
        name: "receive-altered",
        rule: "MessageAltered",
        mutate: receive_altered,
    },
    Kind {
        name: "receive-duplicated",
        rule: "MessageDuplicated",
        mutate: receive_duplicated,
    },
    Kind {
        name: "receive-reordered",
        rule: "MessageReordered",
        mutate: receive_reordered,
    },
    Kind {
        name: "declared-lossless",
        rule: "MessageLost",
        mutate: declared_lossless,
    },
    Kind {
        name: "send-reuses-id",
        rule: "MessageIdentity",
        mutate: send_reuses_id,
    },
    Kind {
        name: "event-while-crashed",
        rule: "EventWhileCrashed",
        mutate: event_while_crashed,
    },
    Kind {
        name: "restart-loses-term",
        rule: "PersistedStateLost",
        mutate: restart_loses_term,
    },
    Kind {
        name: "second-vote",
        rule: "OneVotePerTerm",
        mutate: second_vote,
    },
    Kind {
        name: "term-decreases",
        rule: "TermNeverDecreases",
        mutate: term_decreases,
    },
    Kind {
        name: "second-leader",
        rule: "ElectionSafety",
        mutate: second_leader,
    },
    Kind {
        name: "leader-missing-committed",
        rule: "LeaderCompleteness",
        mutate: leader_missing_committed,
    },
    Kind {
        name: "vote-not-persisted",
        rule: "VotePersistedBeforeReply",
        mutate: vote_not_persisted,
    },
    Kind {
        name: "term-not-persisted",
        rule: "TermPersistedBeforeSend",
        mutate: term_not_persisted,
    },
    Kind {
        name: "ack-not-persisted",
        rule: "EntriesPersistedBeforeAck",
        mutate: ack_not_persisted,
    },
    Kind {
        name: "append-past-end",
        rule: "AppendAtLogEnd",
        mutate: append_past_end,
    },
    Kind {
        name: "log-mismatch",
        rule: "LogMatching",
        mutate: log_mismatch,
    },
    Kind {
        name: "leader-truncates",
        rule: "LeaderAppendOnly",
        mutate: leader_truncates,
    },
    Kind {
        name: "truncate-committed",
        rule: "NoTruncationOfCommitted",
        mutate: truncate_committed,
    },
    Kind {
        name: "install-other-term",
        rule: "StateMachineSafety",
        mutate: install_other_term,
    },
    Kind {
        name: "commit-decreases",
        rule: "CommitNeverDecreases",
        mutate: commit_decreases,
    },
    Kind {
        name: "commit-past-log",
        rule: "CommitWithinLog",
        mutate: commit_past_log,
    },
    Kind {
        name: "apply-skips",
        rule: "ApplyInOrder",
        mutate: apply_skips,
    },
    Kind {
        name: "apply-uncommitted",
        rule: "ApplyOnlyCommitted",
        mutate: apply_uncommitted,
    },
    Kind {
        name: "apply-other-term",
        rule: "ApplyWhatIsLogged",
        mutate: apply_other_term,
    },
    Kind {
        name: "snapshot-unapplied",
        rule: "SnapshotOfApplied",
        mutate: snapshot_unapplied,
    },
    Kind {
        name: "snapshot-other-term",
        rule: "SnapshotMatchesLog",
        mutate: snapshot_other_term,
    },
    Kind {
        name: "install-regresses",
        rule: "SnapshotNeverRegresses",
        mutate: install_regresses,
    },
    Kind {
        name: "post-disagrees",
        rule: "PostStateMatchesEvents",
        mutate: post_disagrees,
    },
    Kind {
        name: "restart-wrong-last-term",
        rule: "RestartRule",
        mutate: restart_wrong_last_term,
    },
    Kind {
        name: "pre-vote-wrong-log",
        rule: "ElectionTimeoutRule",
        mutate: pre_vote_wrong_log,
    },
    Kind {
        name: "request-vote-wrong-log",
        rule: "ElectionTimeoutRule",
        mutate: request_vote_wrong_log,
    },
    Kind {
        name: "heartbeat-timer-sends-vote",
        rule: "HeartbeatTimeout",
        mutate: heartbeat_timer_sends_vote,
    },
    Kind {
        name: "check-quorum-changes-term",
        rule: "CheckQuorumRule",
        mutate: check_quorum_changes_term,
    },
    Kind {
        name: "request-vote-reply-flipped",
        rule: "RequestVoteRule",
        mutate: request_vote_reply_flipped,
    },
    Kind {
        name: "leader-without-majority",
        rule: "VoteCountingRule",
        mutate: leader_without_majority,
    },
    Kind {
        name: "pre-vote-reply-wrong-term",
        rule: "PreVoteRule",
        mutate: pre_vote_reply_wrong_term,
    },
    Kind {
        name: "candidate-without-pre-votes",
        rule: "PreVoteCountingRule",
        mutate: candidate_without_pre_votes,
    },
    Kind {
        name: "append-reply-wrong-term",
        rule: "AppendEntriesRule",
        mutate: append_reply_wrong_term,
    },
    Kind {
        name: "leader-quits-on-append-reply",
        rule: "AppendEntriesReplyRule",
        mutate: leader_quits_on_append_reply,
    },
    Kind {
        name: "heartbeat-reply-wrong-term",
        rule: "HeartbeatRule",
        mutate: heartbeat_reply_wrong_term,
    },
    Kind {
        name: "leader-quits-on-heartbeat-reply",
        rule: "HeartbeatReplyRule",
        mutate: leader_quits_on_heartbeat_reply,
    },
    Kind {
        name: "install-reply-wrong-term",
        rule: "InstallSnapshotRule",
        mutate: install_reply_wrong_term,
    },
    Kind {
        name: "install-other-index",
        rule: "InstallSnapshotRule",
        mutate: install_other_index,
    },
    Kind {
        name: "leader-quits-on-install-reply",
        rule: "InstallSnapshotReplyRule",
        mutate: leader_quits_on_install_reply,
    },
    Kind {
        name: "transfer-vote-wrong-log",
        rule: "TimeoutNowRule",
        mutate: transfer_vote_wrong_log,
    },
    Kind {
        name: "propose-undeclared",
        rule: "ProposeRule",
        mutate: propose_undeclared,
    },
    Kind {
        name: "read-context-never-sent",
        rule: "ReadIndexRule",
        mutate: read_context_never_sent,
    },
    Kind {
        name: "read-unconfirmed",
        rule: "ReadIndexRule",
        mutate: read_unconfirmed,
    },
    Kind {
        name: "lease-read-undeclared",
        rule: "LeaseReadRule",
        mutate: lease_read_undeclared,
    },
    Kind {
        name: "timeout-now-from-follower",
        rule: "LeaderTransferRule",
        mutate: timeout_now_from_follower,
    },
    Kind {
        name: "replication-past-log",
        rule: "ReplicationRule",
        mutate: replication_past_log,
    },
    Kind {
        name: "announce-uncommitted",
        rule: "CommitRule",
        mutate: announce_uncommitted,
    },
    Kind {
        name: "client-entry-wrong-term",
        rule: "ClientRequestRule",
        mutate: client_entry_wrong_term,
    },
    Kind {
        name: "config-moves-two",
        rule: "MembershipChangeRule",
        mutate: config_moves_two,
    },
    Kind {
        name: "apply-other-client",
        rule: "ApplyRule",
        mutate: apply_other_client,
    },
    Kind {
        name: "duplicate-flipped",
        rule: "AtMostOnce",
        mutate: duplicate_flipped,
    },
    Kind {
        name: "snapshot-short",
        rule: "SnapshotRule",
        mutate: snapshot_short,
    },
];

// ---------------------------------------------------------------------------
// Controls: what SCHEMA.md allows an emitter to leave out or reorder
// ---------------------------------------------------------------------------

fn undeclare_event(t: &mut Trace, ty_name: &str) {
    if let Some(a) = t.header["observes"]["events"].as_array_mut() {
        a.retain(|e| e != ty_name);
    }
}

fn undeclare_state(t: &mut Trace, field: &str) {
    if let Some(a) = t.header["observes"]["state"].as_array_mut() {
        a.retain(|e| e != field);
    }
    for l in &mut t.lines {
        if let Some(p) = l.get_mut("post").and_then(Value::as_object_mut) {
            p.remove(field);
        }
    }
}

/// Leaves out every event of type `ty_name`, undeclared in the header.
fn drop_events(t: &Trace, ty_name: &str) -> Option<Trace> {
    if !t.observes(ty_name) {
        return None;
    }
    let mut c = t.clone();
    undeclare_event(&mut c, ty_name);
    c.lines.retain(|l| node(l).is_none() || ty(l) != ty_name);
    renumber(&mut c.lines);
    Some(c)
}

/// Entry data left out: `"entries": "terms"` (entries carry their term
/// only), in appends, inits and AppendEntries.
fn entries_terms(t: &Trace) -> Option<Trace> {
    let mut c = t.clone();
    c.header["observes"]["entries"] = json!("terms");
    for l in &mut c.lines {
        for es in [l.get_mut("entries")].into_iter().flatten() {
            strip_data(es);
        }
        if let Some(m) = l.get_mut("msg") {
            if let Some(es) = m.get_mut("entries") {
                strip_data(es);
            }
        }
    }
    Some(c)
}

fn strip_data(es: &mut Value) {
    if let Some(a) = es.as_array_mut() {
        for e in a {
            if let Some(o) = e.as_object_mut() {
                o.remove("data");
            }
        }
    }
}

/// One `post` left out, at a line the seed chooses (`post` is optional on
/// every event).
fn drop_one_post(t: &Trace, rng: &mut ChaCha8Rng) -> Option<Trace> {
    let with: Vec<usize> = (0..t.lines.len())
        .filter(|&i| t.lines[i].get("post").is_some())
        .collect();
    let i = pick(rng, &with)?;
    let mut c = t.clone();
    c.lines[i].as_object_mut().unwrap().remove("post");
    Some(c)
}

/// Every `post` left out (and no state field declared).
fn drop_all_posts(t: &Trace) -> Option<Trace> {
    let mut c = t.clone();
    c.header["observes"]["state"] = json!([]);
    for l in &mut c.lines {
        if let Some(o) = l.as_object_mut() {
            o.remove("post");
        }
    }
    Some(c)
}

/// `commit` events and `post.commit` both left out.
fn drop_commit_entirely(t: &Trace) -> Option<Trace> {
    let mut c = drop_events(t, "commit")?;
    undeclare_state(&mut c, "commit");
    Some(c)
}

/// A node's events from a point to its next restart replaced by a `gap`
/// (events lost): the node is not replayed until its next `init`.
fn gap_before_restart(t: &Trace, rng: &mut ChaCha8Rng) -> Option<Trace> {
    // (first line lost, init line) for a node event followed by a restart.
    let mut cands = Vec::new();
    for (i, l) in t.lines.iter().enumerate() {
        if ty(l) == "crash" {
            let n = node(l);
            if let Some(j) = (i + 1..t.lines.len())
                .find(|&j| node(&t.lines[j]) == n && ty(&t.lines[j]) == "init")
            {
                // Lose from a few events before the crash up to the init.
                // (A lost send whose message was received would leave a
                // receive without its send: the range stops before one.)
                let received = |x: usize| {
                    ty(&t.lines[x]) == "send"
                        && t.lines
                            .iter()
                            .any(|r| ty(r) == "receive" && msg_key(r) == msg_key(&t.lines[x]))
                };
                let mut k = i;
                let mut back = rng.random_range(0..6);
                while back > 0 {
                    match (0..k).rev().find(|&x| node(&t.lines[x]) == n) {
                        Some(x) if ty(&t.lines[x]) != "init" && !received(x) => k = x,
                        _ => break,
                    }
                    back -= 1;
                }
                cands.push((k, j));
            }
        }
    }
    let (k, j) = pick(rng, &cands)?;
    let n = node(&t.lines[k]).unwrap();
    let mut c = t.clone();
    let mut out = Vec::with_capacity(c.lines.len());
    for (x, l) in c.lines.drain(..).enumerate() {
        if x == k {
            out.push(ev(n, "gap", json!({"reason": "events lost"})));
        }
        if x >= k && x < j && node(&l) == Some(n) {
            continue;
        }
        out.push(l);
    }
    c.lines = out;
    renumber(&mut c.lines);
    Some(c)
}

/// The per-node sequences merged in another order the seed chooses: every
/// receive after its send, each node's events in their own order (the order
/// a checker sees when it merges per-node files). Client events are left
/// out (their order is real time, which a merge does not keep).
fn reinterleave(t: &Trace, rng: &mut ChaCha8Rng) -> Option<Trace> {
    let mut per: BTreeMap<u64, std::collections::VecDeque<Value>> = BTreeMap::new();
    for l in &t.lines {
        if let Some(n) = node(l) {
            per.entry(n).or_default().push_back(l.clone());
        }
    }
    let mut sent = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(t.lines.len());
    loop {
        let ready: Vec<u64> = per
            .iter()
            .filter(|(_, q)| {
                q.front().is_some_and(|l| {
                    ty(l) != "receive" || !t.observes("send") || sent.contains(&msg_key(l))
                })
            })
            .map(|(&n, _)| n)
            .collect();
        let Some(n) = pick(rng, &ready) else { break };
        // Take a few events of that node at once.
        for _ in 0..rng.random_range(1..8) {
            let q = per.get_mut(&n).unwrap();
            let Some(l) = q.front() else { break };
            if ty(l) == "receive" && t.observes("send") && !sent.contains(&msg_key(l)) {
                break;
            }
            let l = q.pop_front().unwrap();
            if ty(&l) == "send" {
                sent.insert(msg_key(&l));
            }
            out.push(l);
        }
    }
    assert!(
        per.values().all(|q| q.is_empty()),
        "{}: no merge order",
        t.name
    );
    let mut c = t.clone();
    c.lines = out;
    Some(c)
}

/// The run written as one file per node (each with the header) and checked
/// as the validator reads such a run: merged by send-before-receive.
fn per_node_files_valid(t: &Trace) -> Verdict {
    let dir = tempfile::tempdir().unwrap();
    let mut per: BTreeMap<u64, String> = BTreeMap::new();
    for l in &t.lines {
        if let Some(n) = node(l) {
            per.entry(n)
                .or_insert_with(|| format!("{}\n", t.header))
                .push_str(&format!("{l}\n"));
        }
    }
    for (n, text) in &per {
        std::fs::write(dir.path().join(format!("node-{n}.ndjson")), text).unwrap();
    }
    let runs = runs_in(dir.path()).unwrap();
    assert_eq!(runs.len(), 1, "{}: per-node files are one run", t.name);
    let report = validate_run(&runs[0]).unwrap();
    match (report.rejection, report.inconclusive) {
        (Some(r), _) => Verdict::Rejected {
            rule: r.rule.to_string(),
            line: r.at.line,
            text: r.to_string(),
        },
        (None, Some(why)) => Verdict::Inconclusive(why),
        (None, None) => Verdict::Valid,
    }
}

/// A control: a transform SCHEMA.md allows, whose result must stay valid.
/// `None`: the control does not apply to this trace.
struct Control {
    name: &'static str,
    apply: fn(&Trace, &mut ChaCha8Rng) -> Option<Trace>,
}

const CONTROLS: &[Control] = &[
    Control {
        name: "no timeout",
        apply: |t, _| drop_events(t, "timeout"),
    },
    Control {
        name: "no send",
        apply: |t, _| drop_events(t, "send"),
    },
    Control {
        name: "no read",
        apply: |t, _| drop_events(t, "read"),
    },
    Control {
        name: "no init",
        apply: |t, _| drop_events(t, "init"),
    },
    Control {
        name: "no append",
        apply: |t, _| drop_events(t, "append"),
    },
    Control {
        name: "no truncate",
        apply: |t, _| drop_events(t, "truncate"),
    },
    Control {
        name: "no install",
        apply: |t, _| drop_events(t, "install"),
    },
    Control {
        name: "no snapshot",
        apply: |t, _| drop_events(t, "snapshot"),
    },
    Control {
        name: "no commit events",
        apply: |t, _| drop_events(t, "commit"),
    },
    Control {
        name: "no commit at all",
        apply: |t, _| drop_commit_entirely(t),
    },
    Control {
        name: "no apply",
        apply: |t, _| drop_events(t, "apply"),
    },
    Control {
        name: "no apply, no commit",
        apply: |t, _| drop_events(&drop_events(t, "apply")?, "commit"),
    },
    Control {
        name: "no persist",
        apply: |t, _| drop_events(t, "persist"),
    },
    Control {
        name: "no post.vote",
        apply: |t, _| {
            let mut c = t.clone();
            undeclare_state(&mut c, "vote");
            Some(c)
        },
    },
    Control {
        name: "no post.term, post.role",
        apply: |t, _| {
            let mut c = t.clone();
            undeclare_state(&mut c, "term");
            undeclare_state(&mut c, "role");
            Some(c)
        },
    },
    Control {
        name: "entries terms only",
        apply: |t, _| entries_terms(t),
    },
    Control {
        name: "one post dropped",
        apply: drop_one_post,
    },
    Control {
        name: "no post",
        apply: |t, _| drop_all_posts(t),
    },
    Control {
        name: "gap before a restart",
        apply: gap_before_restart,
    },
    Control {
        name: "merged in another order",
        apply: reinterleave,
    },
];

// ---------------------------------------------------------------------------
// The sweep
// ---------------------------------------------------------------------------

/// The example traces and the simulator's, made once for all the tests.
fn traces() -> &'static [Trace] {
    static TRACES: std::sync::OnceLock<Vec<Trace>> = std::sync::OnceLock::new();
    TRACES.get_or_init(|| {
        let mut traces = example_traces();
        for seed in 0..seeds() {
            traces.push(sim_trace(seed));
        }
        for t in &traces {
            assert_eq!(t.verdict(), Verdict::Valid, "{}", t.name);
        }
        traces
    })
}

fn seeds() -> u64 {
    std::env::var("RAFTCHECK_MUTATION_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

#[derive(Default, Clone)]
struct Tally {
    sites: u64,
    expected: u64,
    other: BTreeMap<String, u64>,
    accepted: u64,
}

/// What every mutant of one trace came to; failures are collected, not
/// panicked on, so that one run reports them all.
fn mutate_trace(
    t: &Trace,
    seed: u64,
    tallies: &mut BTreeMap<&'static str, Tally>,
    failures: &mut Vec<String>,
) {
    let idx = index(t);
    for (k, kind) in KINDS.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003) ^ k as u64);
        let Some(m) = (kind.mutate)(t, &idx, &mut rng) else {
            continue;
        };
        let tally = tallies.entry(kind.name).or_default();
        tally.sites += 1;
        match m.trace.verdict() {
            Verdict::Rejected { rule, line, text } => {
                // Line 1 is the header; lines[i] is at line i + 2. A
                // rejection before the planted site is a false alarm on the
                // unmutated prefix.
                if m.at > 0 && line < m.at as u64 + 2 {
                    failures.push(format!(
                        "{} {}: rejected at line {line}, before the planted site (line {}):\n{text}",
                        t.name,
                        kind.name,
                        m.at + 2
                    ));
                }
                if rule == kind.rule {
                    tally.expected += 1;
                } else {
                    *tally.other.entry(rule).or_default() += 1;
                }
            }
            Verdict::Valid => {
                tally.accepted += 1;
                failures.push(format!(
                    "{} {}: mutant accepted (planted at line {})",
                    t.name,
                    kind.name,
                    m.at + 2
                ));
            }
            Verdict::Inconclusive(why) => {
                tally.accepted += 1;
                failures.push(format!(
                    "{} {}: mutant inconclusive: {why}",
                    t.name, kind.name
                ));
            }
        }
    }
}

/// Applies one control to every trace; each result must not be rejected.
fn control(name: &str) {
    let (k, c) = CONTROLS
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == name)
        .unwrap_or_else(|| panic!("no control {name}"));
    let mut applied = 0;
    let mut failures = Vec::new();
    for (s, t) in traces().iter().enumerate() {
        let mut rng =
            ChaCha8Rng::seed_from_u64((s as u64).wrapping_mul(7_919) ^ ((k as u64) << 32));
        let Some(ct) = (c.apply)(t, &mut rng) else {
            continue;
        };
        applied += 1;
        if let Verdict::Rejected { text, .. } = ct.verdict() {
            failures.push(format!("{} control {:?}: rejected\n{text}", t.name, c.name));
        }
    }
    assert!(applied > 0, "control {name} applied to no trace");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

macro_rules! control_tests {
    ($($(#[$attr:meta])* $test:ident: $name:literal,)*) => {
        $(
            $(#[$attr])*
            #[test]
            fn $test() {
                control($name);
            }
        )*

        #[test]
        fn every_control_has_a_test() {
            let tested = [$($name),*];
            for c in CONTROLS {
                assert!(tested.contains(&c.name), "control {} has no test", c.name);
            }
        }
    };
}

control_tests! {
    control_no_timeout: "no timeout",
    control_no_send: "no send",
    control_no_read: "no read",
    control_no_init: "no init",
    control_no_append: "no append",
    control_no_truncate: "no truncate",
    control_no_install: "no install",
    control_no_snapshot: "no snapshot",
    control_no_commit_events: "no commit events",
    control_no_commit_at_all: "no commit at all",
    control_no_apply: "no apply",
    control_no_apply_no_commit: "no apply, no commit",
    control_no_persist: "no persist",
    control_no_post_vote: "no post.vote",
    control_no_post_term_role: "no post.term, post.role",
    control_entries_terms_only: "entries terms only",
    control_one_post_dropped: "one post dropped",
    control_no_post: "no post",
    control_gap_before_a_restart: "gap before a restart",
    control_merged_in_another_order: "merged in another order",
}

/// The run written as one file per node, which the validator merges by
/// send-before-receive, is valid.
#[test]
fn control_per_node_files() {
    let mut failures = Vec::new();
    for t in traces()
        .iter()
        .filter(|t| t.lines.iter().any(|l| node(l).is_some()))
    {
        if let Verdict::Rejected { text, .. } = per_node_files_valid(t) {
            failures.push(format!(
                "{} control \"per-node files\": rejected\n{text}",
                t.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn table(tallies: &BTreeMap<&'static str, Tally>, seeds: u64) -> String {
    let mut s = String::from(
        "| kind | rule | mutants | rejected by the rule | rejected by another rule | accepted |\n\
         |---|---|---|---|---|---|\n",
    );
    for k in KINDS {
        let t = tallies.get(k.name).cloned().unwrap_or_default();
        let other: u64 = t.other.values().sum();
        let others = if t.other.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                t.other
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {}{} | {} |\n",
            k.name, k.rule, t.sites, t.expected, other, others, t.accepted
        ));
    }
    s.push_str(&format!(
        "\n({seeds} simulator seeds and the example traces)\n"
    ));
    s
}

#[test]
fn every_rule_has_a_mutation_kind() {
    let missing: Vec<_> = RULES
        .iter()
        .filter(|r| !KINDS.iter().any(|k| k.rule == **r))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a mutation kind: {missing:?}"
    );
    for k in KINDS {
        assert!(
            RULES.contains(&k.rule),
            "{}: {} is not a rule",
            k.name,
            k.rule
        );
    }
}

#[test]
fn mutants_are_rejected() {
    let n = seeds();
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let started = std::time::Instant::now();
    for (s, t) in traces().iter().enumerate() {
        mutate_trace(t, s as u64, &mut tallies, &mut failures);
    }
    println!("{}", table(&tallies, n));
    println!(
        "{} traces mutated in {:.1} s",
        traces().len(),
        started.elapsed().as_secs_f64()
    );
    for f in &failures {
        println!("FAILURE {f}");
    }
    // Every kind met a site somewhere.
    for k in KINDS {
        assert!(
            tallies.get(k.name).is_some_and(|t| t.sites > 0),
            "kind {} found no site in {} seeds and the examples",
            k.name,
            n
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
