//! Hand-made histories at the edges: unknown outcomes, zero-length
//! intervals, only calls, a single client, many concurrent clients, the
//! typed engine API with a nondeterministic model, timeouts and
//! explanations.

use std::time::Duration;

use raft_conformance::linearizability::engine::{
    check, check_partition, Budget, Model, Operation, Options, Partition, NEVER,
};
use raft_conformance::linearizability::explain::reads_from_closed;
use raft_conformance::linearizability::formats::{parse_edn, parse_jepsen};
use raft_conformance::linearizability::{
    check_history, Call, History, HistoryOp, ModelKind, Outcome, Request, Verdict,
};

fn op(client: u64, call: Call, outcome: Outcome, invoke: u64, ret: Option<u64>) -> HistoryOp {
    HistoryOp {
        client,
        key: "k".into(),
        call,
        outcome,
        invoke,
        ret,
        invoke_line: invoke,
        return_line: ret,
        applied_line: None,
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

fn verdict(ops: Vec<HistoryOp>) -> Verdict {
    let h = History {
        file: "t".into(),
        ops,
    };
    check_history(&h, &Request::new(ModelKind::RaftKv))
        .unwrap()
        .verdict
}

fn read(c: u64, v: Option<&str>, a: u64, b: u64) -> HistoryOp {
    op(c, Call::Read, Outcome::Ok(v.map(s)), a, Some(b))
}

fn write(c: u64, v: &str, a: u64, b: u64) -> HistoryOp {
    op(c, Call::Write(s(v)), Outcome::Ok(None), a, Some(b))
}

#[test]
fn stale_read_is_caught() {
    assert_eq!(
        verdict(vec![
            write(1, "a", 1, 2),
            write(1, "b", 3, 4),
            read(2, Some("a"), 5, 6)
        ]),
        Verdict::NotLinearizable
    );
    assert_eq!(
        verdict(vec![
            write(1, "a", 1, 2),
            write(1, "b", 3, 6),
            read(2, Some("a"), 5, 7)
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn unknown_writes_may_happen_later_or_never() {
    // The unknown write of b may take effect after the first read...
    let later = vec![
        op(1, Call::Write(s("b")), Outcome::Unknown, 1, None),
        read(2, None, 2, 3),
        read(2, Some("b"), 10, 11),
    ];
    assert_eq!(verdict(later), Verdict::Linearizable);
    // ...or never.
    let never = vec![
        op(1, Call::Write(s("b")), Outcome::Unknown, 1, None),
        read(2, None, 50, 51),
    ];
    assert_eq!(verdict(never), Verdict::Linearizable);
    // But not before its call.
    let before = vec![
        read(2, Some("b"), 1, 2),
        op(1, Call::Write(s("b")), Outcome::Unknown, 3, None),
    ];
    assert_eq!(verdict(before), Verdict::NotLinearizable);
    // And once seen it cannot be undone.
    let undone = vec![
        op(1, Call::Write(s("b")), Outcome::Unknown, 1, None),
        read(2, Some("b"), 2, 3),
        read(2, None, 4, 5),
    ];
    assert_eq!(verdict(undone), Verdict::NotLinearizable);
}

#[test]
fn failed_cas_constrains_and_failed_write_does_not() {
    let cas_fail = |from: &str| {
        op(
            2,
            Call::Cas {
                from: Some(s(from)),
                to: s("z"),
            },
            Outcome::Fail,
            3,
            Some(4),
        )
    };
    assert_eq!(
        verdict(vec![write(1, "a", 1, 2), cas_fail("a")]),
        Verdict::NotLinearizable
    );
    assert_eq!(
        verdict(vec![write(1, "a", 1, 2), cas_fail("b")]),
        Verdict::Linearizable
    );
    let failed_write = op(1, Call::Write(s("b")), Outcome::Fail, 1, Some(2));
    assert_eq!(
        verdict(vec![failed_write.clone(), read(2, None, 3, 4)]),
        Verdict::Linearizable
    );
    assert_eq!(
        verdict(vec![failed_write, read(2, Some("b"), 3, 4)]),
        Verdict::NotLinearizable
    );
}

#[test]
fn zero_length_intervals_and_touching_intervals() {
    // Points in time: strict order.
    assert_eq!(
        verdict(vec![write(1, "a", 5, 5), read(2, None, 6, 6)]),
        Verdict::NotLinearizable
    );
    assert_eq!(
        verdict(vec![write(1, "a", 5, 5), read(2, Some("a"), 6, 6)]),
        Verdict::Linearizable
    );
    // Touching at one instant: concurrent, either order.
    assert_eq!(
        verdict(vec![write(1, "a", 5, 5), read(2, None, 5, 5)]),
        Verdict::Linearizable
    );
    assert_eq!(
        verdict(vec![write(1, "a", 1, 5), read(2, None, 5, 9)]),
        Verdict::Linearizable
    );
}

#[test]
fn only_calls_and_empty_histories() {
    let calls = vec![
        op(1, Call::Write(s("a")), Outcome::Unknown, 1, None),
        op(2, Call::Read, Outcome::Unknown, 2, None),
        op(
            3,
            Call::Cas {
                from: Some(s("a")),
                to: s("b"),
            },
            Outcome::Unknown,
            3,
            None,
        ),
        op(4, Call::Delete, Outcome::Unknown, 4, None),
    ];
    assert_eq!(verdict(calls), Verdict::Linearizable);
    assert_eq!(verdict(vec![]), Verdict::Linearizable);
    // Jepsen invocations with no completion at all.
    let h = parse_jepsen(
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 1\t:invoke\t:read\tnil\n",
        "x",
    )
    .unwrap();
    assert!(h.ops.iter().all(|o| o.outcome == Outcome::Unknown));
    let r = check_history(&h, &Request::new(ModelKind::CasRegister)).unwrap();
    assert_eq!(r.verdict, Verdict::Linearizable);
}

#[test]
fn single_client_is_sequential() {
    let ok: Vec<HistoryOp> = (0..200)
        .map(|i| {
            if i % 2 == 0 {
                write(1, &i.to_string(), 2 * i, 2 * i + 1)
            } else {
                read(1, Some(&(i - 1).to_string()), 2 * i, 2 * i + 1)
            }
        })
        .collect();
    assert_eq!(verdict(ok.clone()), Verdict::Linearizable);
    let mut bad = ok;
    bad[101].outcome = Outcome::Ok(Some(s("98")));
    assert_eq!(verdict(bad), Verdict::NotLinearizable);
}

#[test]
fn many_concurrent_clients() {
    // 80 clients write distinct values at once, then 80 clients read the
    // value that won.
    let n = 80u64;
    let mut ops: Vec<HistoryOp> = (0..n).map(|c| write(c, &c.to_string(), 1, 100)).collect();
    ops.extend((0..n).map(|c| read(n + c, Some("79"), 200, 300)));
    assert_eq!(verdict(ops.clone()), Verdict::Linearizable);
    // A read that saw a value before anyone wrote it.
    ops.push(read(3 * n, Some("5"), 0, 0));
    assert_eq!(verdict(ops), Verdict::NotLinearizable);

    // 80 concurrent reads after a write, then a read of the old value:
    // placing reads greedily keeps this linear (plain Porcupine would try
    // every subset of the reads).
    let mut reads = vec![write(0, "a", 1, 2)];
    reads.extend((0..n).map(|c| read(c + 1, Some("a"), 3, 10)));
    assert_eq!(verdict(reads.clone()), Verdict::Linearizable);
    reads.push(read(99, None, 11, 12));
    assert_eq!(verdict(reads), Verdict::NotLinearizable);

    // A concurrent cas chain over 70 clients: each from i to i+1.
    let mut chain = vec![write(0, "0", 1, 2)];
    for c in 0..70u64 {
        chain.push(op(
            c + 1,
            Call::Cas {
                from: Some(c.to_string()),
                to: (c + 1).to_string(),
            },
            Outcome::Ok(None),
            3,
            Some(1000),
        ));
    }
    chain.push(read(99, Some("70"), 1001, 1002));
    assert_eq!(verdict(chain.clone()), Verdict::Linearizable);
    chain.last_mut().unwrap().outcome = Outcome::Ok(Some(s("69")));
    assert_eq!(verdict(chain), Verdict::NotLinearizable);
}

/// A register whose writes may be lost (a nondeterministic model): a write
/// leads to the new value or leaves the old one.
struct LossyRegister;

impl Model for LossyRegister {
    type Op = (bool, u8);
    type State = u8;
    type Ctx = ();
    fn init(&self, _: &mut ()) -> u8 {
        0
    }
    fn step(&self, _: &mut (), s: &u8, op: &(bool, u8), next: &mut Vec<u8>) {
        match op {
            (true, v) => {
                next.push(*v);
                next.push(*s);
            }
            (false, v) => {
                if v == s {
                    next.push(*s);
                }
            }
        }
    }
    fn describe_op(&self, _: &(), op: &(bool, u8)) -> String {
        format!("{op:?}")
    }
    fn describe_state(&self, _: &(), s: &u8) -> String {
        s.to_string()
    }
}

fn lossy(ops: &[(bool, u8, u64, u64)]) -> Verdict {
    let part = Partition {
        key: "r".into(),
        ctx: (),
        ops: ops
            .iter()
            .enumerate()
            .map(|(i, &(w, v, a, b))| Operation {
                id: i,
                client: i as u64,
                call: a,
                ret: b,
                op: (w, v),
            })
            .collect(),
    };
    check(&LossyRegister, vec![part], &Options::default()).verdict
}

#[test]
fn nondeterministic_models() {
    // Write 1 (kept), write 2 (lost), read 1: only with the second branch.
    assert_eq!(
        lossy(&[(true, 1, 1, 2), (true, 2, 3, 4), (false, 1, 5, 6)]),
        Verdict::Linearizable
    );
    // Write 2 first kept, then read 2, write 1 lost, read 2, then read 1 is impossible.
    assert_eq!(
        lossy(&[
            (true, 2, 1, 2),
            (false, 2, 3, 4),
            (true, 1, 5, 6),
            (false, 2, 7, 8),
            (false, 1, 9, 10)
        ]),
        Verdict::NotLinearizable
    );
    assert_eq!(lossy(&[(false, 3, 1, 2)]), Verdict::NotLinearizable);
    assert_eq!(
        lossy(&[(true, 3, 1, NEVER), (false, 3, 5, 6), (false, 3, 7, 8)]),
        Verdict::Linearizable
    );
}

/// Writes of 0..30 to a lossy register, all concurrent (lines 0-100).
fn thirty_concurrent_writes() -> Partition<LossyRegister> {
    Partition {
        key: "r".into(),
        ctx: (),
        ops: (0..30u64)
            .map(|i| Operation {
                id: i as usize,
                client: i,
                call: 0,
                ret: 100,
                op: (true, i as u8),
            })
            .collect(),
    }
}

#[test]
fn the_budget_gives_unknown() {
    // Many concurrent writes of distinct values, then two concurrent reads
    // of two of them: the search must try many orders of the writes to
    // find that none ends in both values; with no time it stops. (A read
    // of a value nobody wrote needs no search: see impossible_reads.)
    let mut ops: Vec<HistoryOp> = (0..40u64)
        .map(|c| write(c, &c.to_string(), 1, 100))
        .collect();
    ops.push(read(98, Some("3"), 101, 200));
    ops.push(read(99, Some("5"), 101, 200));
    let h = History {
        file: "t".into(),
        ops,
    };
    let mut req = Request::new(ModelKind::RaftKv);
    req.options.timeout = Some(Duration::ZERO);
    req.explain = false;
    assert_eq!(check_history(&h, &req).unwrap().verdict, Verdict::Unknown);
    let budget = Budget::new(Some(Duration::ZERO));
    let mut part = thirty_concurrent_writes();
    for (id, v) in [(98, 3), (99, 5)] {
        part.ops.push(Operation {
            id,
            client: id as u64,
            call: 101,
            ret: 200,
            op: (false, v),
        });
    }
    assert_eq!(
        check_partition(&LossyRegister, &mut part, &budget, false).verdict,
        Verdict::Unknown
    );
}

#[test]
fn impossible_reads() {
    // Many concurrent writes of distinct values and a read, concurrent
    // with them all, of a value nobody wrote: refuted without trying the
    // writes' orders, even with no time for a search.
    let mut part = thirty_concurrent_writes();
    part.ops.push(Operation {
        id: 99,
        client: 99,
        call: 0,
        ret: 100,
        op: (false, 200),
    });
    let budget = Budget::new(Some(Duration::ZERO));
    let r = check_partition(&LossyRegister, &mut part, &budget, false);
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    // The same through check_history, with the read named.
    let mut ops: Vec<HistoryOp> = (0..40u64)
        .map(|c| write(c, &c.to_string(), 1, 100))
        .collect();
    ops.push(read(99, Some("none"), 1, 100));
    let h = History {
        file: "t".into(),
        ops,
    };
    let mut req = Request::new(ModelKind::RaftKv);
    req.options.timeout = Some(Duration::from_secs(60));
    req.explain_budget = Duration::from_secs(60);
    let report = check_history(&h, &req).unwrap();
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    let why = report.failing.expect("explained");
    let impossible = why.impossible.as_ref().expect("the impossible read named");
    assert_eq!(impossible.id, 40);
    assert_eq!(why.minimal.as_ref().map(|m| m.len()), Some(1));
    assert!(why.render().contains("can take effect in no state"));
}

#[test]
fn explanations_name_the_key_prefix_and_unplaceable_ops() {
    let mut ops = vec![
        write(1, "a", 1, 2),
        write(1, "b", 3, 4),
        read(2, Some("a"), 5, 6),
        read(3, Some("b"), 7, 8),
    ];
    ops.push(HistoryOp {
        key: "other".into(),
        ..write(4, "x", 1, 2)
    });
    let h = History {
        file: "t".into(),
        ops,
    };
    let r = check_history(&h, &Request::new(ModelKind::RaftKv)).unwrap();
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    assert_eq!(r.partitions, 2);
    let f = r.failing.expect("explained");
    assert_eq!(f.key, "k");
    assert_eq!(f.prefix.len(), 2);
    assert_eq!(f.state, "\"b\"");
    assert_eq!(
        f.unplaceable.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![2]
    );
    let minimal: Vec<usize> = f.minimal.as_ref().unwrap().iter().map(|o| o.id).collect();
    assert_eq!(minimal, vec![0, 1, 2]);
    // The proof: the read of a was overwritten by b before it was called.
    let cycle = f.cycle.as_ref().expect("writes are unique");
    assert!(cycle.len() <= 3, "{cycle:?}");
    let text = f.render();
    assert!(text.contains("key \"k\""), "{text}");
    assert!(text.contains("read() -> \"a\""), "{text}");
    assert!(text.contains("overwritten-before"), "{text}");
}

#[test]
fn failed_appends_do_not_free_reads_when_shrinking() {
    // The cas reads "c" at [59, 59], before the only write of "c" was
    // called: not linearizable. The failed append never took effect, so
    // the key has no appends that could have built "c", and the write
    // stays in the minimal history to explain where "c" comes from. The
    // partition drops the failed append; whether the whole history or the
    // partition is given as `all` must not matter.
    let ops = vec![
        op(0, Call::Append(s("a")), Outcome::Fail, 50, Some(55)),
        op(1, Call::Write(s("c")), Outcome::Unknown, 60, None),
        op(
            2,
            Call::Cas {
                from: Some(s("c")),
                to: s("a"),
            },
            Outcome::Ok(None),
            59,
            Some(59),
        ),
        op(3, Call::Read, Outcome::Unknown, 80, None),
    ];
    let h = History {
        file: "t".into(),
        ops,
    };
    let r = check_history(&h, &Request::new(ModelKind::RaftKv)).unwrap();
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    let minimal: Vec<usize> = r
        .failing
        .unwrap()
        .minimal
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(minimal, vec![1, 2]);
    for all in [vec![0, 1, 2, 3], vec![1, 2]] {
        assert!(reads_from_closed(&h, &all, &[1, 2]));
        assert!(!reads_from_closed(&h, &all, &[2]), "{all:?}");
    }
    // An append that may have taken effect does not free the read either:
    // the write of "c" is still what the cas may have seen; the append of
    // "a", which "c" does not contain, is not needed.
    let mut maybe = h.clone();
    maybe.ops[0].outcome = Outcome::Unknown;
    maybe.ops[0].ret = None;
    assert!(!reads_from_closed(&maybe, &[0, 1, 2, 3], &[2]));
    assert!(reads_from_closed(&maybe, &[0, 1, 2, 3], &[1, 2]));
}

#[test]
fn edn_and_kv_unknowns() {
    let text = "{:process 0, :type :invoke, :f :put, :key \"1\", :value \"x\"}\n\
                {:process 1, :type :invoke, :f :get, :key \"1\", :value nil}\n\
                {:process 1, :type :ok, :f :get, :key \"1\", :value \"x\"}\n\
                {:process 0, :type :info, :f :put, :key \"1\", :value \"x\"}\n";
    let h = parse_edn(text, "t").unwrap();
    assert_eq!(h.ops.len(), 2);
    assert_eq!(h.ops[0].outcome, Outcome::Unknown);
    let r = check_history(&h, &Request::new(ModelKind::Kv)).unwrap();
    assert_eq!(r.verdict, Verdict::Linearizable);
    // kv keys start as "": a get of "" on a fresh key is fine, nil is the same.
    let h = parse_edn("{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n{:process 0, :type :ok, :f :get, :key \"1\", :value \"\"}\n", "t").unwrap();
    assert_eq!(
        check_history(&h, &Request::new(ModelKind::Kv))
            .unwrap()
            .verdict,
        Verdict::Linearizable
    );
}

#[test]
fn malformed_lines_are_named() {
    let e = parse_jepsen(
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - x\t:ok\t:read\tnil\n",
        "f.log",
    )
    .unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("f.log", 2));
    let e = parse_jepsen("INFO  jepsen.util - 0\t:ok\t:read\tnil\n", "f.log").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.message.contains("never invoked"), "{e}");
    let e = parse_jepsen("INFO  jepsen.util - 0\t:invoke\t:frob\tnil\n", "f.log").unwrap_err();
    assert!(e.message.contains("unknown operation"), "{e}");
    let e = parse_edn("{:process 0, :type :invoke, :f :put, :key \"1\", :value \"x\"}\n{:process 0, :type :ok, :f :put, :key \"1\"\n", "kv.txt").unwrap_err();
    assert_eq!(e.line, 2);
    let e = parse_edn("{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n{:process 0, :type :ok, :f :put, :key \"1\", :value \"x\"}\n", "kv.txt").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("does not match"), "{e}");
}

/// A value nested 50,000 vectors deep once overflowed the parser's stack
/// (abort, no message); now it is bad input naming the line.
#[test]
fn deeply_nested_edn_is_bad_input() {
    let deep = format!(
        "{{:process 0, :type :invoke, :f :put, :key \"1\", :value {}}}\n",
        "[".repeat(50_000)
    );
    let text = format!("{{:process 1, :type :invoke, :f :get, :key \"1\", :value nil}}\n{deep}");
    let e = parse_edn(&text, "deep.edn").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("nested deeper"), "{e}");
    // Two levels (a transaction's micro-operations) still parse.
    let ok = "{:process 0, :type :invoke, :f :put, :key \"1\", :value [[1 2] [3]]}\n";
    if let Err(e) = parse_edn(ok, "t") {
        assert!(!e.message.contains("nested"), "{e}");
    }
}
