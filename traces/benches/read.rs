//! Reader throughput: events per second through `TraceReader` (parse,
//! field-level checks, per-node seq checks) on a generated trace, against
//! two baselines measured in the same run: splitting lines only, and
//! parsing each line into a `serde_json::Value`.
//!
//! `cargo bench -p raft-trace --bench read [-- EVENTS]`

use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

use raft_trace::*;

fn generate(path: &std::path::Path, events: u64) -> u64 {
    let header = Header::new(
        "bench",
        vec![1, 2, 3],
        Observes {
            events: EventType::ALL.to_vec(),
            state: vec![StateField::Term, StateField::Commit],
            entries: EntryDetail::Full,
        },
    );
    let file = std::fs::File::create(path).unwrap();
    let mut w = TraceWriter::new(file, &header).unwrap();
    let mut seq = [0u64; 4];
    for i in 0..events {
        let node = 1 + i % 3;
        seq[node as usize] += 1;
        let entry = Entry {
            term: 2,
            data: Some(EntryData::Command {
                client: i % 7,
                req: i,
                op: Op::Write {
                    key: "k".into(),
                    value: i.to_string(),
                },
            }),
        };
        let event = match i % 4 {
            0 => Event::Send(MessageEvent {
                msg: Message::new(
                    i,
                    node,
                    1 + (node % 3),
                    2,
                    Rpc::AppendEntries {
                        prev_index: i,
                        prev_term: 2,
                        commit: i,
                        entries: Some(vec![entry]),
                        entry_count: None,
                        context: None,
                    },
                ),
            }),
            1 => Event::Append(Append {
                index: i,
                entries: Some(vec![entry]),
                entry_count: None,
            }),
            2 => Event::Commit(Commit { index: i }),
            _ => Event::Persist(Persist {
                term: 2,
                vote: Some(1),
                last_index: i,
            }),
        };
        let post = PostState {
            term: Some(2),
            commit: Some(i),
            ..Default::default()
        };
        w.write_node(&NodeEvent {
            node,
            seq: seq[node as usize],
            time: None,
            event,
            post: Some(post),
        })
        .unwrap();
    }
    w.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn main() {
    let events: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.ndjson");
    let bytes = generate(&path, events);

    let t = Instant::now();
    let mut lines = 0u64;
    for line in BufReader::new(std::fs::File::open(&path).unwrap()).split(b'\n') {
        std::hint::black_box(line.unwrap());
        lines += 1;
    }
    let split = t.elapsed().as_secs_f64();
    assert_eq!(lines, events + 1);

    let t = Instant::now();
    for line in BufReader::new(std::fs::File::open(&path).unwrap()).split(b'\n') {
        let v: serde_json::Value = serde_json::from_slice(&line.unwrap()).unwrap();
        std::hint::black_box(v);
    }
    let value = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut n = 0u64;
    for r in read_file(&path).unwrap() {
        std::hint::black_box(r.unwrap());
        n += 1;
    }
    let reader = t.elapsed().as_secs_f64();
    assert_eq!(n, events);

    let mb = bytes as f64 / 1e6;
    println!("{events} events, {mb:.1} MB");
    println!(
        "{:<28} {:>10} {:>14} {:>10}",
        "pass", "seconds", "events/s", "vs reader"
    );
    for (name, s) in [
        ("split lines (lower bound)", split),
        ("serde_json::Value per line", value),
        ("TraceReader", reader),
    ] {
        println!(
            "{name:<28} {s:>10.3} {:>14.0} {:>9.2}x",
            events as f64 / s,
            reader / s
        );
    }
    std::io::stdout().flush().unwrap();
}
