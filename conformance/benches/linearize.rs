//! Side-by-side benchmark: raft-conformance's checker against the Rust
//! port `porcupine-rs` and stateright's `LinearizabilityTester`, on every
//! Porcupine history (etcd register, kv partitioned and not) and on a
//! generated 10,000-operation kv history over 100 keys, and a generated
//! 40,000-operation history of one key.
//!
//! `cargo bench -p raft-conformance --bench linearize` prints one row per
//! history and totals with ratios. Parsing is not timed. stateright has no
//! time limit of its own, so each of its checks runs in a child process
//! that is killed after a short bound ("-" in the table).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use raft_conformance::linearizability::{
    check_history, read_history, History, HistoryOp, ModelKind, Request, Verdict,
};

const STATERIGHT_BOUND: Duration = Duration::from_millis(1500);

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine")
}

// ---------------------------------------------------------------- ours

fn ours(h: &History, model: ModelKind, partitioned: bool) -> (Verdict, f64) {
    let mut req = Request::new(model);
    req.partitioned = partitioned;
    req.explain = false;
    req.options.timeout = Some(Duration::from_secs(60));
    time_it(|| check_history(h, &req).expect("supported").verdict)
}

/// Median seconds per run, over runs until 0.3 s or 40 runs have passed
/// (the median resists the noise of a shared machine).
fn time_it<T>(mut f: impl FnMut() -> T) -> (T, f64) {
    let start = Instant::now();
    let mut samples = Vec::new();
    loop {
        let t = Instant::now();
        let out = f();
        samples.push(t.elapsed().as_secs_f64());
        if start.elapsed() >= Duration::from_millis(300) || samples.len() >= 40 {
            samples.sort_by(f64::total_cmp);
            return (out, samples[samples.len() / 2]);
        }
    }
}

// ---------------------------------------------------------- porcupine-rs

mod porc {
    use std::collections::{BTreeMap, HashMap};

    use porcupine_rs::{Model, Operation};
    use raft_conformance::linearizability::{Call, History, Outcome};

    /// Porcupine's etcd model: an integer register (-1000000 stands for nil).
    #[derive(Clone, Debug)]
    pub struct Reg;

    #[derive(Clone, Debug)]
    pub enum RegOp {
        Read(i32),
        ReadAny,
        Write(i32),
        Cas(i32, i32, Outcome),
    }

    const NIL: i32 = -1000000;

    impl Model for Reg {
        type State = i32;
        type Op = RegOp;
        type Metadata = ();
        fn init() -> i32 {
            NIL
        }
        fn step(s: &i32, op: &RegOp) -> (bool, i32) {
            match op {
                RegOp::Read(v) => (v == s, *s),
                RegOp::ReadAny => (true, *s),
                RegOp::Write(v) => (true, *v),
                RegOp::Cas(a, b, o) => match o {
                    Outcome::Ok(_) => (a == s, *b),
                    Outcome::Fail => (a != s, *s),
                    Outcome::Unknown => (true, if a == s { *b } else { *s }),
                },
            }
        }
    }

    /// Porcupine's kv model (string state, partitioned by key).
    #[derive(Clone, Debug)]
    pub struct Kv;

    #[derive(Clone, Debug)]
    pub enum KvOp {
        Get(String, String),
        Put(String, String),
        Append(String, String),
    }

    impl KvOp {
        fn key(&self) -> &str {
            match self {
                KvOp::Get(k, _) | KvOp::Put(k, _) | KvOp::Append(k, _) => k,
            }
        }
    }

    impl Model for Kv {
        type State = String;
        type Op = KvOp;
        type Metadata = ();
        fn init() -> String {
            String::new()
        }
        fn step(s: &String, op: &KvOp) -> (bool, String) {
            match op {
                KvOp::Get(_, v) => (v == s, s.clone()),
                KvOp::Put(_, v) => (true, v.clone()),
                KvOp::Append(_, v) => (true, s.clone() + v),
            }
        }
        fn partition_operations(history: &[Operation<Self>]) -> Vec<Vec<Operation<Self>>> {
            let mut by_key: HashMap<String, Vec<Operation<Self>>> = HashMap::new();
            for op in history {
                by_key
                    .entry(op.op.key().to_owned())
                    .or_default()
                    .push(op.clone());
            }
            by_key.into_values().collect()
        }
    }

    /// The same without partitioning: a map state, as porcupine-rs's own
    /// `KvNoPartitionModel`.
    #[derive(Clone, Debug)]
    pub struct KvMap;

    impl Model for KvMap {
        type State = BTreeMap<String, String>;
        type Op = KvOp;
        type Metadata = ();
        fn init() -> Self::State {
            BTreeMap::new()
        }
        fn step(s: &Self::State, op: &KvOp) -> (bool, Self::State) {
            match op {
                KvOp::Get(k, v) => (s.get(k).map_or(v.is_empty(), |x| x == v), s.clone()),
                KvOp::Put(k, v) => {
                    let mut n = s.clone();
                    n.insert(k.clone(), v.clone());
                    (true, n)
                }
                KvOp::Append(k, v) => {
                    let mut n = s.clone();
                    n.entry(k.clone()).or_default().push_str(v);
                    (true, n)
                }
            }
        }
    }

    fn times(h: &History) -> Vec<(i64, i64)> {
        let end = h.ops.iter().filter_map(|o| o.ret).max().unwrap_or(0) as i64 + 1;
        h.ops
            .iter()
            .map(|o| {
                let ret = match (&o.outcome, o.ret) {
                    (Outcome::Unknown, _) | (_, None) => end,
                    (_, Some(r)) => r as i64,
                };
                (o.invoke as i64, ret)
            })
            .collect()
    }

    pub fn register(h: &History) -> Vec<Operation<Reg>> {
        let int = |s: &str| s.parse::<i32>().expect("integer");
        h.ops
            .iter()
            .zip(times(h))
            .filter_map(|(o, (c, r))| {
                let op = match (&o.call, &o.outcome) {
                    (Call::Read, Outcome::Ok(v)) => RegOp::Read(v.as_deref().map_or(NIL, int)),
                    (Call::Read, _) => RegOp::ReadAny,
                    (Call::Write(_), Outcome::Fail) => return None,
                    (Call::Write(v), _) => RegOp::Write(int(v)),
                    (Call::Cas { from, to }, o) => {
                        RegOp::Cas(from.as_deref().map_or(NIL, int), int(to), o.clone())
                    }
                    _ => unreachable!("register histories have read, write and cas"),
                };
                Some(Operation {
                    client_id: Some(o.client as u32),
                    call_time: c,
                    return_time: r,
                    op,
                    metadata: None,
                })
            })
            .collect()
    }

    pub fn kv<M: Model<Op = KvOp>>(h: &History) -> Vec<Operation<M>> {
        h.ops
            .iter()
            .zip(times(h))
            .map(|(o, (c, r))| {
                let k = o.key.clone();
                let op = match (&o.call, &o.outcome) {
                    (Call::Read, Outcome::Ok(v)) => KvOp::Get(k, v.clone().unwrap_or_default()),
                    (Call::Write(v), _) => KvOp::Put(k, v.clone()),
                    (Call::Append(v), _) => KvOp::Append(k, v.clone()),
                    other => unreachable!("kv histories are complete get/put/append: {other:?}"),
                };
                Operation {
                    client_id: Some(o.client as u32),
                    call_time: c,
                    return_time: r,
                    op,
                    metadata: None,
                }
            })
            .collect()
    }
}

fn porcupine(h: &History, model: ModelKind, partitioned: bool) -> (Verdict, f64) {
    use porcupine_rs::{check_operations_timeout, CheckResult};
    let limit = Duration::from_secs(60);
    let conv = |r: CheckResult| match r {
        CheckResult::Ok => Verdict::Linearizable,
        CheckResult::Illegal => Verdict::NotLinearizable,
        CheckResult::Unknown => Verdict::Unknown,
    };
    match (model, partitioned) {
        (ModelKind::CasRegister, _) => {
            let ops = porc::register(h);
            time_it(|| conv(check_operations_timeout(&ops, limit)))
        }
        (_, true) => {
            let ops = porc::kv::<porc::Kv>(h);
            time_it(|| conv(check_operations_timeout(&ops, limit)))
        }
        (_, false) => {
            let ops = porc::kv::<porc::KvMap>(h);
            time_it(|| conv(check_operations_timeout(&ops, limit)))
        }
    }
}

// ------------------------------------------------------------- stateright

mod sr {
    use raft_conformance::linearizability::{Call, HistoryOp, Outcome};
    use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

    /// One key's value as a stateright reference object.
    #[derive(Clone, Debug, Hash, PartialEq, Eq)]
    pub struct Value(pub Option<String>);

    impl SequentialSpec for Value {
        type Op = Call;
        type Ret = Outcome;
        fn invoke(&mut self, op: &Call) -> Outcome {
            match op {
                Call::Read => Outcome::Ok(self.0.clone()),
                Call::Write(v) => {
                    self.0 = Some(v.clone());
                    Outcome::Ok(None)
                }
                Call::Cas { from, to } => {
                    if self.0 == *from {
                        self.0 = Some(to.clone());
                        Outcome::Ok(None)
                    } else {
                        Outcome::Fail
                    }
                }
                Call::Append(v) => {
                    self.0 = Some(format!("{}{v}", self.0.clone().unwrap_or_default()));
                    Outcome::Ok(None)
                }
                Call::Delete => {
                    self.0 = None;
                    Outcome::Ok(None)
                }
            }
        }
    }

    /// Checks the operations of one key; `init` is the initial value.
    pub fn check(ops: &[&HistoryOp], init: Option<String>) -> bool {
        // Events in real-time order: (time, is_return, op).
        let mut events = Vec::new();
        for (i, o) in ops.iter().enumerate() {
            let constrains = match (&o.call, &o.outcome) {
                (Call::Read, Outcome::Ok(_)) => true,
                (Call::Read, _) => false,
                (Call::Cas { .. }, _) => true,
                (_, Outcome::Fail) => false,
                _ => true,
            };
            if !constrains {
                continue;
            }
            events.push((o.invoke, false, i));
            if o.outcome != Outcome::Unknown {
                if let Some(r) = o.ret {
                    events.push((r, true, i));
                }
            }
        }
        events.sort();
        let mut t = LinearizabilityTester::new(Value(init));
        for (_, is_return, i) in events {
            let o = ops[i];
            let res = if is_return {
                t.on_return(o.client, o.outcome.clone()).map(|_| ())
            } else {
                t.on_invoke(o.client, o.call.clone()).map(|_| ())
            };
            if res.is_err() {
                return false;
            }
        }
        t.is_consistent()
    }
}

/// The child process: check one file with stateright, key by key.
fn stateright_child(file: &str, kv: bool) {
    let (h, _) = read_history(Path::new(file), None).expect("readable");
    let mut by_key: HashMap<&str, Vec<&HistoryOp>> = HashMap::new();
    for o in &h.ops {
        by_key.entry(o.key.as_str()).or_default().push(o);
    }
    let init = kv.then(String::new);
    let start = Instant::now();
    // kv reads of "" on a fresh key: the initial value is "".
    let ok = by_key.values().all(|ops| sr::check(ops, init.clone()));
    println!("{} {}", ok, start.elapsed().as_secs_f64());
}

fn stateright(file: &Path, kv: bool) -> Option<(Verdict, f64)> {
    let exe = std::env::current_exe().ok()?;
    let mut child = Command::new(exe)
        .arg("--stateright-one")
        .arg(file)
        .arg(if kv { "kv" } else { "register" })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        if child.try_wait().ok()?.is_some() {
            break;
        }
        if start.elapsed() > STATERIGHT_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    let ok: bool = it.next()?.parse().ok()?;
    let secs: f64 = it.next()?.parse().ok()?;
    Some((
        if ok {
            Verdict::Linearizable
        } else {
            Verdict::NotLinearizable
        },
        secs,
    ))
}

// -------------------------------------------------------------- generated

/// A linearizable `n`-operation kv history over `keys` keys: a sequential
/// run (linearization points 10 apart) with each interval stretched by up
/// to 40 either side, spread over 20 clients; gets, puts and (with
/// `appends`) appends. xorshift64, fixed seed.
fn generated(path: &Path, n: u64, keys: u64, appends: bool) {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut values: Vec<String> = vec![String::new(); keys as usize];
    let mut ops: Vec<(u64, u64, String)> = Vec::new();
    for i in 0..n {
        let point = 100 + 10 * i;
        let key = rnd(keys) as usize;
        let (call, ret) = (point - rnd(40), point + rnd(40));
        let (f, v_in, v_out) = match rnd(if appends { 3 } else { 2 }) {
            0 => ("get", "nil".to_string(), format!("{:?}", values[key])),
            1 => {
                let v = format!("x {i} y");
                values[key] = v.clone();
                ("put", format!("{v:?}"), format!("{v:?}"))
            }
            _ => {
                let v = format!("x {i} y");
                values[key].push_str(&v);
                ("append", format!("{v:?}"), format!("{v:?}"))
            }
        };
        let client = i % 20;
        ops.push((
            call * 2,
            0,
            format!("{{:process {client}, :type :invoke, :f :{f}, :key \"{key}\", :value {v_in}}}"),
        ));
        ops.push((
            ret * 2 + 1,
            1,
            format!("{{:process {client}, :type :ok, :f :{f}, :key \"{key}\", :value {v_out}}}"),
        ));
    }
    // Client i % 20's consecutive operations are 200 apart and stretched
    // by less than 40 each side, so a client never overlaps itself.
    ops.sort();
    let mut text = String::new();
    for (_, _, line) in &ops {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(path, text).expect("writable temp file");
}

struct Row {
    name: String,
    ops: usize,
    verdict: Verdict,
    ours: f64,
    porc: Option<f64>,
    sr: Option<f64>,
}

fn ms(x: Option<f64>) -> String {
    x.map_or("-".into(), |s| format!("{:.3}", s * 1e3))
}

fn ratio(a: Option<f64>, b: f64) -> String {
    a.map_or("-".into(), |a| format!("{:.1}x", a / b))
}

fn print_row(r: &Row) {
    println!(
        "{:<24} {:>6} {:<17} {:>10} {:>12} {:>12} {:>8} {:>8}",
        r.name,
        r.ops,
        format!("{:?}", r.verdict),
        ms(Some(r.ours)),
        ms(r.porc),
        ms(r.sr),
        ratio(r.porc, r.ours),
        ratio(r.sr, r.ours),
    );
}

fn bench(
    name: String,
    path: &Path,
    model: ModelKind,
    partitioned: bool,
    with_sr: bool,
) -> Option<Row> {
    if std::env::var("LIN_BENCH_ONLY").is_ok_and(|o| !name.contains(&o)) {
        return None;
    }
    let (h, _) = read_history(path, None).expect("readable history");
    let (verdict, t_ours) = ours(&h, model, partitioned);
    let (pv, t_porc) = porcupine(&h, model, partitioned);
    let porc = match pv {
        Verdict::Unknown => None,
        v => {
            assert_eq!(v, verdict, "{name}: porcupine-rs disagrees");
            Some(t_porc)
        }
    };
    let sr = if with_sr {
        stateright(path, model == ModelKind::Kv).map(|(v, t)| {
            assert_eq!(v, verdict, "{name}: stateright disagrees");
            t
        })
    } else {
        None
    };
    let row = Row {
        name,
        ops: h.ops.len(),
        verdict,
        ours: t_ours,
        porc,
        sr,
    };
    print_row(&row);
    Some(row)
}

fn total(label: &str, rows: &[Row]) {
    let ours: f64 = rows.iter().map(|r| r.ours).sum();
    let porc: Option<f64> = rows.iter().map(|r| r.porc).sum();
    let sr_done: Vec<&Row> = rows.iter().filter(|r| r.sr.is_some()).collect();
    let sr_ours: f64 = sr_done.iter().map(|r| r.ours).sum();
    let sr: f64 = sr_done.iter().filter_map(|r| r.sr).sum();
    println!(
        "TOTAL {label:<18} ours {:>9.3} ms | porcupine-rs {:>9} ms ({}) | stateright finished {}/{}: {:.3} ms vs ours {:.3} ms ({})",
        ours * 1e3,
        ms(porc),
        ratio(porc, ours),
        sr_done.len(),
        rows.len(),
        sr * 1e3,
        sr_ours * 1e3,
        if sr_done.is_empty() { "-".into() } else { format!("{:.1}x", sr / sr_ours) },
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--stateright-one") {
        stateright_child(&args[i + 1], args[i + 2] == "kv");
        return;
    }
    let dir = data_dir();
    println!(
        "{:<24} {:>6} {:<17} {:>10} {:>12} {:>12} {:>8} {:>8}",
        "history", "ops", "verdict", "ours ms", "porc-rs ms", "stateright", "porc/us", "sr/us"
    );
    let mut etcd = Vec::new();
    for i in 0..=102u32 {
        if i == 95 {
            continue; // empty file
        }
        let path = dir.join(format!("jepsen/etcd_{i:03}.log"));
        etcd.extend(bench(
            format!("etcd_{i:03}"),
            &path,
            ModelKind::CasRegister,
            true,
            true,
        ));
    }
    let mut kv = Vec::new();
    for name in [
        "c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad",
    ] {
        let path = dir.join(format!("kv/{name}.txt"));
        kv.extend(bench(
            format!("kv {name}"),
            &path,
            ModelKind::Kv,
            true,
            true,
        ));
    }
    let mut kv_flat = Vec::new();
    for name in ["c01-ok", "c01-bad", "c10-ok", "c10-bad"] {
        let path = dir.join(format!("kv/{name}.txt"));
        kv_flat.extend(bench(
            format!("kv {name} unpartitioned"),
            &path,
            ModelKind::Kv,
            false,
            false,
        ));
    }
    let gen_path =
        std::env::temp_dir().join(format!("raftcheck-bench-kv10k-{}.txt", std::process::id()));
    generated(&gen_path, 10_000, 100, true);
    let mut gen: Vec<Row> = Vec::from_iter(bench(
        "generated kv 10k/100 keys".into(),
        &gen_path,
        ModelKind::Kv,
        true,
        true,
    ));
    // One key's long history: past 4,096 operations the search keeps
    // fingerprints of the linearized sets, not bitsets of every operation.
    generated(&gen_path, 40_000, 1, false);
    gen.extend(bench(
        "generated kv 40k/1 key".into(),
        &gen_path,
        ModelKind::Kv,
        true,
        true,
    ));
    let _ = std::fs::remove_file(&gen_path);
    println!();
    total("etcd (102 files)", &etcd);
    total("kv partitioned", &kv);
    total("kv unpartitioned", &kv_flat);
    total("generated 10k and 40k", &gen);
    let all: Vec<Row> = etcd
        .into_iter()
        .chain(kv)
        .chain(kv_flat)
        .chain(gen)
        .collect();
    total("whole suite", &all);
}
