//! The engine against a brute-force checker (try every order consistent
//! with real time) on random small histories of one or two keys:
//! histories cut from a real sequential execution with stretched intervals
//! must be linearizable; mutated ones must get the brute force's verdict.
//! Explanations are checked too: the shrunk sub-history is non-linearizable
//! and every operation in it is needed.

use proptest::prelude::*;
use raft_conformance::linearizability::explain::{constraint_cycle, reads_from_closed};
use raft_conformance::linearizability::{
    check_history, Call, History, HistoryOp, ModelKind, Outcome, Request, Verdict,
};

/// The raftkv semantics of one operation, written out independently of
/// the crate's models: the new value, or None if the outcome is impossible.
fn apply(v: &Option<String>, op: &HistoryOp, unknown_cas_applies: bool) -> Option<Option<String>> {
    match (&op.call, &op.outcome) {
        (Call::Read, Outcome::Ok(r)) => (r == v).then(|| v.clone()),
        (Call::Read, _) => Some(v.clone()),
        (Call::Write(_), Outcome::Fail) => Some(v.clone()),
        (Call::Write(w), _) => Some(Some(w.clone())),
        (Call::Cas { from, to }, Outcome::Ok(_)) => (from == v).then(|| Some(to.clone())),
        (Call::Cas { from, .. }, Outcome::Fail) => (from != v).then(|| v.clone()),
        (Call::Cas { from, to }, Outcome::Unknown) => Some(if from == v && unknown_cas_applies {
            Some(to.clone())
        } else {
            v.clone()
        }),
        (Call::Append(a), Outcome::Fail) => {
            let _ = a;
            Some(v.clone())
        }
        (Call::Append(a), _) => Some(Some(format!("{}{a}", v.clone().unwrap_or_default()))),
        (Call::Delete, Outcome::Fail) => Some(v.clone()),
        (Call::Delete, _) => Some(None),
    }
}

/// Every subset of unknown-outcome operations may take effect (the rest
/// never do); every permutation of the taking-effect ones that respects
/// real time (a before b when a returned before b was called) is tried.
fn brute_force(ops: &[HistoryOp]) -> bool {
    let unknown: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].outcome == Outcome::Unknown)
        .collect();
    for mask in 0u32..(1 << unknown.len()) {
        let chosen: Vec<usize> = (0..ops.len())
            .filter(|i| match unknown.iter().position(|u| u == i) {
                Some(k) => mask & (1 << k) != 0,
                None => true,
            })
            .collect();
        let mut used = vec![false; ops.len()];
        if permute(ops, &chosen, &mut used, &mut Vec::new()) {
            return true;
        }
    }
    false
}

fn permute(ops: &[HistoryOp], chosen: &[usize], used: &mut [bool], order: &mut Vec<usize>) -> bool {
    if order.len() == chosen.len() {
        return legal(ops, order);
    }
    for &i in chosen {
        if used[i] {
            continue;
        }
        // Real time: nothing still unplaced may have returned before i's call.
        let blocked = chosen.iter().any(|&j| {
            j != i
                && !used[j]
                && ops[j].outcome != Outcome::Unknown
                && ops[j].ret.is_some_and(|r| r < ops[i].invoke)
        });
        if blocked {
            continue;
        }
        used[i] = true;
        order.push(i);
        if permute(ops, chosen, used, order) {
            return true;
        }
        order.pop();
        used[i] = false;
    }
    false
}

fn legal(ops: &[HistoryOp], order: &[usize]) -> bool {
    let keys: std::collections::BTreeSet<&str> =
        order.iter().map(|&i| ops[i].key.as_str()).collect();
    keys.into_iter().all(|k| {
        let mut v: Option<String> = None;
        order
            .iter()
            .filter(|&&i| ops[i].key == k)
            .all(|&i| match apply(&v, &ops[i], true) {
                Some(n) => {
                    v = n;
                    true
                }
                None => false,
            })
    })
}

fn engine(ops: &[HistoryOp]) -> (Verdict, Option<Vec<usize>>) {
    let h = History {
        file: "gen".into(),
        ops: ops.to_vec(),
    };
    let mut req = Request::new(ModelKind::RaftKv);
    req.options.threads = 1;
    let r = check_history(&h, &req).expect("raftkv supports every call");
    let minimal = r
        .failing
        .and_then(|f| f.minimal)
        .map(|m| m.into_iter().map(|o| o.id).collect());
    (r.verdict, minimal)
}

#[derive(Debug, Clone)]
enum Gen {
    Read,
    Write(u8),
    Cas(Option<u8>, u8),
    Append(u8),
    Delete,
}

fn gen_op() -> impl Strategy<Value = (u8, Gen, u8, u8, u8)> {
    let call = prop_oneof![
        3 => Just(Gen::Read),
        3 => (0u8..3).prop_map(Gen::Write),
        2 => (proptest::option::of(0u8..3), 0u8..3).prop_map(|(a, b)| Gen::Cas(a, b)),
        1 => (0u8..3).prop_map(Gen::Append),
        1 => Just(Gen::Delete),
    ];
    // (key, call, stretch before, stretch after, outcome tag)
    (0u8..2, call, 0u8..30, 0u8..30, 0u8..10)
}

/// Runs the generated operations sequentially (linearization points
/// 10, 20, ...) and stretches each interval around its point.
fn execute(spec: &[(u8, Gen, u8, u8, u8)]) -> Vec<HistoryOp> {
    let mut state: [Option<String>; 2] = [None, None];
    let val = |x: u8| ["a", "b", "c"][x as usize].to_string();
    spec.iter()
        .enumerate()
        .map(|(i, (k, g, before, after, tag))| {
            let point = 10 * (i as u64 + 1) + 40;
            let v = &mut state[*k as usize];
            let (call, mut outcome) = match g {
                Gen::Read => (Call::Read, Outcome::Ok(v.clone())),
                Gen::Write(x) => {
                    *v = Some(val(*x));
                    (Call::Write(val(*x)), Outcome::Ok(None))
                }
                Gen::Cas(from, to) => {
                    let from = from.map(val);
                    let ok = *v == from;
                    if ok {
                        *v = Some(val(*to));
                    }
                    (
                        Call::Cas { from, to: val(*to) },
                        if ok { Outcome::Ok(None) } else { Outcome::Fail },
                    )
                }
                Gen::Append(x) => {
                    *v = Some(format!("{}{}", v.clone().unwrap_or_default(), val(*x)));
                    (Call::Append(val(*x)), Outcome::Ok(None))
                }
                Gen::Delete => {
                    *v = None;
                    (Call::Delete, Outcome::Ok(None))
                }
            };
            // Some completed operations are reported as unknown: they did
            // take effect, so the history stays linearizable.
            if *tag == 0 {
                outcome = Outcome::Unknown;
            }
            let unknown = outcome == Outcome::Unknown;
            HistoryOp {
                client: i as u64,
                key: k.to_string(),
                call,
                outcome,
                invoke: point - u64::from(*before),
                ret: (!unknown).then_some(point + u64::from(*after)),
                invoke_line: i as u64 + 1,
                return_line: None,
                applied_line: None,
            }
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Change what a read returned.
    ReadValue(usize, Option<u8>),
    /// Shift an operation's interval.
    Shift(usize, i8),
    /// Flip an ok into a fail or unknown, or back.
    Outcome(usize, u8),
    /// Zero-length interval.
    Point(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), proptest::option::of(0u8..3)).prop_map(|(i, v)| Mutation::ReadValue(i, v)),
        (any::<usize>(), -60i8..60).prop_map(|(i, d)| Mutation::Shift(i, d)),
        (any::<usize>(), 0u8..3).prop_map(|(i, o)| Mutation::Outcome(i, o)),
        any::<usize>().prop_map(Mutation::Point),
    ]
}

fn mutate(ops: &mut [HistoryOp], m: &Mutation) {
    let n = ops.len();
    match *m {
        Mutation::ReadValue(i, v) => {
            let o = &mut ops[i % n];
            if o.call == Call::Read {
                o.outcome = Outcome::Ok(v.map(|x| ["a", "b", "c"][x as usize].to_string()));
            }
        }
        Mutation::Shift(i, d) => {
            let o = &mut ops[i % n];
            let d = i64::from(d);
            o.invoke = o.invoke.saturating_add_signed(d);
            o.ret = o.ret.map(|t| t.saturating_add_signed(d));
        }
        Mutation::Outcome(i, k) => {
            let o = &mut ops[i % n];
            if o.call != Call::Read {
                o.outcome = match k {
                    0 => Outcome::Ok(None),
                    1 => Outcome::Fail,
                    _ => Outcome::Unknown,
                };
                if o.outcome == Outcome::Unknown {
                    o.ret = None;
                } else if o.ret.is_none() {
                    o.ret = Some(o.invoke + 5);
                }
            }
        }
        Mutation::Point(i) => {
            let o = &mut ops[i % n];
            if o.ret.is_some() {
                o.ret = Some(o.invoke);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn stretched_sequential_executions_are_linearizable(spec in proptest::collection::vec(gen_op(), 1..7)) {
        let ops = execute(&spec);
        prop_assert!(brute_force(&ops));
        prop_assert_eq!(engine(&ops).0, Verdict::Linearizable);
        let h = History { file: "gen".into(), ops: ops.clone() };
        let cycle = constraint_cycle(&h, &(0..ops.len()).collect::<Vec<_>>());
        prop_assert!(cycle.is_none(), "{:?}", cycle);
    }

    #[test]
    fn mutated_histories_agree_with_brute_force(
        spec in proptest::collection::vec(gen_op(), 1..7),
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut ops = execute(&spec);
        for m in &muts {
            mutate(&mut ops, m);
        }
        let expected = brute_force(&ops);
        let (verdict, minimal) = engine(&ops);
        prop_assert_eq!(verdict == Verdict::Linearizable, expected, "{:#?}", ops);
        let h = History { file: "gen".into(), ops: ops.clone() };
        if expected {
            // A cycle of constraints would be a false proof.
            let cycle = constraint_cycle(&h, &(0..ops.len()).collect::<Vec<_>>());
            prop_assert!(cycle.is_none(), "{:?}", cycle);
        } else {
            let minimal = minimal.expect("small histories shrink within the budget");
            let sub: Vec<HistoryOp> = minimal.iter().map(|&i| ops[i].clone()).collect();
            prop_assert!(!brute_force(&sub), "shrunk history is linearizable: {:#?}", sub);
            // Every operation is needed: removing one (keeping the writers
            // of values still read, as the shrinker does) linearizes it.
            let all: Vec<usize> = (0..ops.len()).collect();
            for skip in 0..sub.len() {
                let fewer_ids: Vec<usize> = minimal.iter().copied().filter(|&i| i != minimal[skip]).collect();
                if !reads_from_closed(&h, &all, &fewer_ids) {
                    continue;
                }
                let fewer: Vec<HistoryOp> = fewer_ids.iter().map(|&i| ops[i].clone()).collect();
                prop_assert!(brute_force(&fewer), "operation {} of the minimal history is not needed: {:#?}", skip, fewer);
            }
        }
    }
}
