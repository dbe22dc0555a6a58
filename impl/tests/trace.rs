//! The simulator's traces: every receive matches a send with identical
//! fields, message ids are unique per sender, and per-node events are
//! numbered in order.

use std::collections::{BTreeMap, HashMap};

use raft_trace::{Event, Record};
use raftkv::sim::{run, SimConfig};

#[test]
fn receives_match_sends_and_ids_are_unique() {
    let cfg = SimConfig {
        trace: true,
        ..SimConfig::default()
    };
    for seed in 0..5 {
        let r = run(seed, &cfg);
        assert!(r.violation.is_none());
        let (_, records) = r.trace.expect("trace recorded");
        let mut sends = HashMap::new();
        let mut seqs: BTreeMap<u64, u64> = BTreeMap::new();
        let mut receives = 0;
        for rec in &records {
            let Record::Node(e) = rec else { continue };
            let last = seqs.entry(e.node).or_insert(0);
            assert!(e.seq > *last, "seq must increase on node {}", e.node);
            *last = e.seq;
            match &e.event {
                Event::Send(m) => {
                    assert_eq!(m.msg.from, e.node);
                    let prev = sends.insert((m.msg.from, m.msg.id), m.msg.clone());
                    assert!(prev.is_none(), "message id reused: {:?}", m.msg);
                }
                Event::Receive(m) => {
                    assert_eq!(m.msg.to, e.node);
                    let sent = sends
                        .get(&(m.msg.from, m.msg.id))
                        .unwrap_or_else(|| panic!("receive without send: {:?}", m.msg));
                    assert_eq!(sent, &m.msg);
                    receives += 1;
                }
                _ => {}
            }
        }
        assert!(receives > 100, "seed {seed}: only {receives} receives");
    }
}

#[test]
fn every_command_apply_names_its_client_and_request() {
    let cfg = SimConfig {
        trace: true,
        ..SimConfig::default()
    };
    let r = run(7, &cfg);
    let (_, records) = r.trace.expect("trace recorded");
    let mut applies = 0;
    let mut duplicates = 0;
    for rec in &records {
        if let Record::Node(e) = rec {
            if let Event::Apply(a) = &e.event {
                assert_eq!(a.client.is_some(), a.req.is_some());
                applies += 1;
                duplicates += usize::from(a.duplicate);
                assert!(e.post.as_ref().unwrap().applied.unwrap() >= a.index);
            }
        }
    }
    assert!(applies > 50);
    let _ = duplicates;
}
