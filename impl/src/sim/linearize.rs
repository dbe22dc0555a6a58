//! A small linearizability checker for key-value histories in raft-trace/1
//! client-event form, used by the simulator until the project's
//! Porcupine-style checker is wired in.
//!
//! The algorithm is Wing & Gong's search with Lowe's memoisation, per key
//! (linearizability is compositional, and every operation touches one key):
//! repeatedly pick an operation that no pending operation's return precedes,
//! apply it to a sequential model of a register, and backtrack on a
//! mismatch; `(set of linearized operations, register value)` pairs already
//! explored are skipped.
//!
//! Outcomes: `ok` operations happened with the recorded result; `fail`
//! operations did not happen and are dropped; `info` operations (and those
//! without a return) may have happened at any time after their invoke, or
//! not at all (linearizing them after everything else is the same as never).

use std::collections::{BTreeMap, HashMap, HashSet};

use raft_trace::{ClientEvent, Op, Status};

/// One operation of a single key's history.
#[derive(Debug, Clone)]
struct Operation {
    call: usize,
    ret: usize,
    op: Op,
    /// Certain (`ok`) or not (`info`).
    ok: bool,
    /// For an `ok` read: the value read.
    read: Option<String>,
    client: u64,
    req: u64,
}

/// The checker's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// Not linearizable: the key and a description.
    Violation {
        key: String,
        detail: String,
    },
    /// The search budget ran out on some key.
    Inconclusive {
        key: String,
    },
}

/// Steps the register model; `None` when the operation cannot happen here.
fn step(state: &Option<String>, o: &Operation) -> Option<Option<String>> {
    match &o.op {
        Op::Read { .. } => {
            if !o.ok || *state == o.read {
                Some(state.clone())
            } else {
                None
            }
        }
        Op::Write { value, .. } => Some(Some(value.clone())),
        Op::Delete { .. } => Some(None),
        Op::Append { value, .. } => {
            Some(Some(format!("{}{}", state.as_deref().unwrap_or(""), value)))
        }
        Op::Cas { from, to, .. } => {
            if state == from {
                Some(Some(to.clone()))
            } else if o.ok {
                None
            } else {
                // An unknown cas whose precondition fails is a no-op.
                Some(state.clone())
            }
        }
    }
}

/// Checks a history (client events in real-time order). `budget` bounds the
/// number of search states per key.
pub fn check(history: &[ClientEvent], budget: usize) -> Verdict {
    let mut open: HashMap<(u64, u64), (usize, Op)> = HashMap::new();
    let mut per_key: BTreeMap<String, Vec<Operation>> = BTreeMap::new();
    for (pos, ev) in history.iter().enumerate() {
        match ev {
            ClientEvent::Invoke(i) => {
                open.insert((i.client, i.req), (pos, i.op.clone()));
            }
            ClientEvent::Return(r) => {
                let Some((call, op)) = open.remove(&(r.client, r.req)) else {
                    continue;
                };
                let ok = match r.status {
                    Status::Ok => true,
                    Status::Fail => continue,
                    Status::Info => false,
                };
                if !ok && matches!(op, Op::Read { .. }) {
                    continue;
                }
                let key = op.key().to_string();
                per_key.entry(key).or_default().push(Operation {
                    call,
                    ret: if ok { pos } else { usize::MAX },
                    read: r.value.clone(),
                    op,
                    ok,
                    client: r.client,
                    req: r.req,
                });
            }
        }
    }
    for ((client, req), (call, op)) in open {
        if matches!(op, Op::Read { .. }) {
            continue;
        }
        let key = op.key().to_string();
        per_key.entry(key).or_default().push(Operation {
            call,
            ret: usize::MAX,
            op,
            ok: false,
            read: None,
            client,
            req,
        });
    }
    for (key, mut ops) in per_key {
        ops.sort_by_key(|o| o.call);
        match check_key(&ops, budget) {
            Some(true) => {}
            Some(false) => {
                let detail = describe(&ops);
                return Verdict::Violation { key, detail };
            }
            None => return Verdict::Inconclusive { key },
        }
    }
    Verdict::Linearizable
}

fn describe(ops: &[Operation]) -> String {
    // The earliest certain operation is a useful pointer; the full history
    // is in the written files.
    let certain = ops.iter().filter(|o| o.ok).count();
    let last = ops
        .iter()
        .filter(|o| o.ok)
        .max_by_key(|o| o.ret)
        .map(|o| format!("; last completed: client {} request {}", o.client, o.req))
        .unwrap_or_default();
    format!(
        "no linearization of {} operations ({} certain) on this key{last}",
        ops.len(),
        certain
    )
}

/// `Some(true)`: linearizable; `Some(false)`: not; `None`: budget exhausted.
fn check_key(ops: &[Operation], budget: usize) -> Option<bool> {
    let n = ops.len();
    let words = n.div_ceil(64);
    let mut seen: HashSet<(Vec<u64>, Option<String>)> = HashSet::new();
    // Iterative DFS: each frame is (done set, state, next candidate to try).
    let mut stack: Vec<(Vec<u64>, Option<String>, usize)> = vec![(vec![0; words], None, 0)];
    let certain: Vec<usize> = (0..n).filter(|i| ops[*i].ok).collect();
    let mut explored = 0usize;
    while let Some((done, state, from)) = stack.pop() {
        if certain.iter().all(|i| done[i / 64] & (1 << (i % 64)) != 0) {
            return Some(true);
        }
        // The earliest return among pending operations bounds the candidates.
        let min_ret = (0..n)
            .filter(|i| done[i / 64] & (1 << (i % 64)) == 0)
            .map(|i| ops[i].ret)
            .min()
            .unwrap_or(usize::MAX);
        let mut i = from;
        while i < n {
            let o = &ops[i];
            if o.call > min_ret {
                break;
            }
            if done[i / 64] & (1 << (i % 64)) == 0 {
                if let Some(next) = step(&state, o) {
                    let mut d = done.clone();
                    d[i / 64] |= 1 << (i % 64);
                    if seen.insert((d.clone(), next.clone())) {
                        explored += 1;
                        if explored > budget {
                            return None;
                        }
                        // Resume this frame after `i`, then explore the child.
                        stack.push((done, state, i + 1));
                        stack.push((d, next, 0));
                        break;
                    }
                }
            }
            i += 1;
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_trace::{Invoke, Return};

    fn inv(client: u64, req: u64, op: Op) -> ClientEvent {
        ClientEvent::Invoke(Invoke {
            client,
            req,
            node: None,
            op,
            time: None,
        })
    }
    fn ret(client: u64, req: u64, status: Status, value: Option<&str>) -> ClientEvent {
        ClientEvent::Return(Return {
            client,
            req,
            status,
            value: value.map(str::to_string),
            error: None,
            time: None,
        })
    }
    fn w(v: &str) -> Op {
        Op::Write {
            key: "x".into(),
            value: v.into(),
        }
    }
    fn r() -> Op {
        Op::Read { key: "x".into() }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = vec![
            inv(1, 1, w("a")),
            ret(1, 1, Status::Ok, None),
            inv(2, 1, r()),
            ret(2, 1, Status::Ok, Some("a")),
        ];
        assert_eq!(check(&h, 10_000), Verdict::Linearizable);
    }

    #[test]
    fn stale_read_after_completed_write_is_caught() {
        let h = vec![
            inv(1, 1, w("a")),
            ret(1, 1, Status::Ok, None),
            inv(1, 2, w("b")),
            ret(1, 2, Status::Ok, None),
            inv(2, 1, r()),
            ret(2, 1, Status::Ok, Some("a")),
        ];
        assert!(matches!(check(&h, 10_000), Verdict::Violation { .. }));
    }

    #[test]
    fn concurrent_ops_may_reorder() {
        let h = vec![
            inv(1, 1, w("a")),
            inv(2, 1, r()),
            inv(3, 1, w("b")),
            ret(2, 1, Status::Ok, Some("b")),
            ret(1, 1, Status::Ok, None),
            ret(3, 1, Status::Ok, None),
            inv(2, 2, r()),
            ret(2, 2, Status::Ok, Some("a")),
        ];
        assert_eq!(check(&h, 10_000), Verdict::Linearizable);
    }

    #[test]
    fn unknown_write_may_or_may_not_happen() {
        let h = vec![
            inv(1, 1, w("a")),
            ret(1, 1, Status::Info, None),
            inv(2, 1, r()),
            ret(2, 1, Status::Ok, None),
            inv(2, 2, r()),
            ret(2, 2, Status::Ok, Some("a")),
        ];
        assert_eq!(check(&h, 10_000), Verdict::Linearizable);
        // But it cannot un-happen.
        let mut h2 = h.clone();
        h2.push(inv(2, 3, r()));
        h2.push(ret(2, 3, Status::Ok, None));
        assert!(matches!(check(&h2, 10_000), Verdict::Violation { .. }));
    }

    #[test]
    fn double_append_is_caught() {
        let a = Op::Append {
            key: "x".into(),
            value: "1;".into(),
        };
        let h = vec![
            inv(1, 1, a),
            ret(1, 1, Status::Ok, None),
            inv(2, 1, r()),
            ret(2, 1, Status::Ok, Some("1;1;")),
        ];
        assert!(matches!(check(&h, 10_000), Verdict::Violation { .. }));
    }

    #[test]
    fn cas_semantics() {
        let cas = |from: Option<&str>, to: &str| Op::Cas {
            key: "x".into(),
            from: from.map(str::to_string),
            to: to.into(),
        };
        let ok = vec![
            inv(1, 1, cas(None, "a")),
            ret(1, 1, Status::Ok, None),
            inv(1, 2, cas(Some("a"), "b")),
            ret(1, 2, Status::Ok, None),
            inv(2, 1, r()),
            ret(2, 1, Status::Ok, Some("b")),
        ];
        assert_eq!(check(&ok, 10_000), Verdict::Linearizable);
        let bad = vec![inv(1, 1, cas(Some("zz"), "a")), ret(1, 1, Status::Ok, None)];
        assert!(matches!(check(&bad, 10_000), Verdict::Violation { .. }));
    }
}
