//! Messages kept small: the message identity check keeps of each message
//! in flight a 128-bit digest of its fields, and the replay keeps the model
//! messages of the latest `message_window` sends only. With the smallest
//! windows, simulated runs with every fault (duplication too, so old
//! messages are delivered again) keep their verdicts, and an old message
//! altered on the way is still caught.

use raft_conformance::validate::{validate_records, Options, RunReport};
use raft_sim::raftkv::RaftKv;
use raft_sim::{run, Faults, SimConfig};
use raft_trace::{Record, Rpc};

fn check(name: &str, header: &raft_trace::Header, records: &[Record], window: usize) -> RunReport {
    let options = Options {
        message_window: window,
        ..Options::default()
    };
    validate_records(name, header, records, &options).expect("well-formed")
}

fn simulated(seed: u64, faults: Faults) -> (raft_trace::Header, Vec<Record>) {
    let cfg = SimConfig {
        steps: 1_500,
        faults,
        ..SimConfig::default()
    };
    let r = run(seed, &cfg, &RaftKv::default());
    (r.header, r.records)
}

#[test]
fn the_smallest_windows_change_no_verdict_of_simulated_runs() {
    let no_dup = Faults {
        dup: false,
        ..Faults::ALL
    };
    for seed in 0..8 {
        for faults in [Faults::ALL, no_dup] {
            let (header, records) = simulated(seed, faults);
            let name = format!("seed {seed}, duplication {}", faults.dup);
            let whole = check(&name, &header, &records, usize::MAX);
            assert!(
                whole.rejection.is_none() && whole.inconclusive.is_none(),
                "{name}: {:?} {:?}",
                whole.rejection.map(|r| r.to_string()),
                whole.inconclusive
            );
            for window in [1, 2, 16] {
                let small = check(&name, &header, &records, window);
                assert!(
                    small.rejection.is_none() && small.inconclusive.is_none(),
                    "{name}, window {window}: {:?} {:?}",
                    small.rejection.map(|r| r.to_string()),
                    small.inconclusive
                );
                assert_eq!(small.events, whole.events, "{name}");
                assert_eq!(small.undelivered, whole.undelivered, "{name}");
            }
        }
    }
}

#[test]
fn an_old_message_altered_on_the_way_is_still_caught() {
    let (header, mut records) = simulated(3, Faults::ALL);
    // The first receive of an AppendEntries with entries, delivered after
    // at least 4 later sends: the replay no longer holds it at a window of 2.
    let mut sends_since = std::collections::HashMap::new();
    let mut sends = 0u64;
    let mut target = None;
    for (i, r) in records.iter().enumerate() {
        let Record::Node(e) = r else { continue };
        match &e.event {
            raft_trace::Event::Send(m) => {
                sends += 1;
                sends_since.insert((m.msg.from, m.msg.id), sends);
            }
            raft_trace::Event::Receive(m) => {
                let old = sends_since
                    .get(&(m.msg.from, m.msg.id))
                    .is_some_and(|&at| sends - at >= 4);
                let carries = matches!(&m.msg.rpc, Rpc::AppendEntries { entries: Some(es), .. } if !es.is_empty());
                if old && carries {
                    target = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let i = target.expect("an old AppendEntries delivered");
    let Record::Node(e) = &mut records[i] else {
        unreachable!()
    };
    let raft_trace::Event::Receive(m) = &mut e.event else {
        unreachable!()
    };
    let Rpc::AppendEntries {
        entries: Some(es), ..
    } = &mut m.msg.rpc
    else {
        unreachable!()
    };
    // Only an entry's contents change (raftkv's entries are no-ops and
    // commands): addressing, term and counts agree.
    es[0].data = Some(raft_trace::EntryData::Opaque {
        data: Some(serde_json::json!("altered")),
    });
    for window in [2, usize::MAX] {
        let report = check("altered", &header, &records, window);
        let r = report.rejection.expect("rejected");
        assert_eq!(r.rule, "MessageAltered", "window {window}: {r}");
        assert_eq!(r.at.line, i as u64 + 2, "window {window}");
    }
}
