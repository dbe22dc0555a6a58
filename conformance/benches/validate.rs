//! Trace validation throughput: events validated per second on simulator
//! traces of about 10^5 and 10^6 events, fully and partially observed, with
//! reading the same files (parsing only) as the baseline in the same run.
//!
//! `cargo bench -p raft-conformance --bench validate [-- --quick]`

use std::path::Path;
use std::time::Instant;

use raft_conformance::validate::{runs_in, validate_run};
use raft_sim::raftkv::RaftKv;
use raft_sim::SimConfig;
use raft_trace as rt;
use serde_json::Value;

/// Writes one simulated run of `steps` steps into `dir` (trace only).
fn simulate(dir: &Path, seed: u64, steps: u64) -> u64 {
    let cfg = SimConfig {
        steps,
        ..SimConfig::default()
    };
    let r = raft_sim::run(seed, &cfg, &RaftKv::default());
    let (header, records) = (r.header, r.records);
    std::fs::create_dir_all(dir).unwrap();
    let f = std::fs::File::create(dir.join("trace.ndjson")).unwrap();
    let mut w = rt::TraceWriter::new(std::io::BufWriter::new(f), &header).unwrap();
    let mut n = 0;
    for rec in &records {
        if matches!(rec, rt::Record::Node(_)) {
            w.write(rec).unwrap();
            n += 1;
        }
    }
    w.flush().unwrap();
    n
}

/// A copy of `from` with the vote, the entries' data and commits unobserved.
fn partial(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let text = std::fs::read_to_string(from.join("trace.ndjson")).unwrap();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if v["type"] == "commit" {
            continue;
        }
        if v["type"] == "header" {
            v["observes"]["entries"] = "terms".into();
            let st = v["observes"]["state"].as_array_mut().unwrap();
            st.retain(|f| f != "vote" && f != "commit");
            let ev = v["observes"]["events"].as_array_mut().unwrap();
            ev.retain(|f| f != "commit");
        }
        if let Some(p) = v.get_mut("post").and_then(Value::as_object_mut) {
            p.remove("vote");
            p.remove("commit");
        }
        strip(&mut v);
        if let Some(m) = v.get_mut("msg") {
            strip(m);
        }
        out.push_str(&serde_json::to_string(&v).unwrap());
        out.push('\n');
    }
    std::fs::write(to.join("trace.ndjson"), out).unwrap();
}

fn strip(v: &mut Value) {
    if let Some(es) = v.get_mut("entries").and_then(Value::as_array_mut) {
        for e in es {
            if let Some(o) = e.as_object_mut() {
                o.remove("data");
            }
        }
    }
}

/// Best of `reps` timings of `f`, in seconds.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let tmp = tempfile::tempdir().unwrap();
    let sizes: &[(&str, u64)] = if quick {
        &[("1e5", 14_000)]
    } else {
        &[("1e5", 14_000), ("1e6", 140_000)]
    };
    println!("| trace | events | read only (ev/s) | validate full (ev/s) | ratio | validate partial (ev/s) | max frontier (full/partial) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for &(name, steps) in sizes {
        let full = tmp.path().join(format!("{name}-full"));
        let part = tmp.path().join(format!("{name}-partial"));
        let events = simulate(&full, 7, steps);
        partial(&full, &part);
        let reps = if events > 500_000 { 1 } else { 3 };
        let read = best(reps, || {
            let r = rt::read_file(&full.join("trace.ndjson")).unwrap();
            let n = r.filter(|x| x.is_ok()).count();
            assert!(n > 0);
        });
        let run = runs_in(&full).unwrap().remove(0);
        let mut frontier_full = 0;
        let t_full = best(reps, || {
            let rep = validate_run(&run).unwrap();
            assert!(rep.rejection.is_none(), "{:?}", rep.rejection);
            frontier_full = rep.replay.max_frontier;
        });
        let prun = runs_in(&part).unwrap().remove(0);
        let mut frontier_part = 0;
        let t_part = best(reps, || {
            let rep = validate_run(&prun).unwrap();
            assert!(rep.rejection.is_none(), "{:?}", rep.rejection);
            frontier_part = rep.replay.max_frontier;
        });
        let ev = events as f64;
        println!(
            "| {name} ({steps} sim steps) | {events} | {:.0} | {:.0} | {:.2}x of reading | {:.0} | {frontier_full}/{frontier_part} |",
            ev / read,
            ev / t_full,
            read / t_full,
            ev / t_part,
        );
    }
}
