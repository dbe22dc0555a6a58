//! The simulator's traces: every receive matches a send with identical
//! fields, message ids are unique per sender, and per-node events are
//! numbered in order.

use std::collections::{BTreeMap, HashMap};

use raft_sim::raftkv::RaftKv;
use raft_sim::{run, Outcome, SimConfig};
use raft_trace::{Event, Record};

#[test]
fn receives_match_sends_and_ids_are_unique() {
    let cfg = SimConfig::default();
    for seed in 0..5 {
        let r = run(seed, &cfg, &RaftKv::default());
        assert_eq!(r.outcome(), Outcome::Valid);
        let records = &r.records;
        let mut sends = HashMap::new();
        let mut seqs: BTreeMap<u64, u64> = BTreeMap::new();
        let mut receives = 0;
        for rec in records {
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
    let cfg = SimConfig::default();
    let r = run(7, &cfg, &RaftKv::default());
    let records = &r.records;
    let mut applies = 0;
    let mut duplicates = 0;
    for rec in records {
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

/// Replays each node's log from its init, append, truncate, snapshot and
/// install events and compares it with the post state of every event: the
/// trace describes the log faithfully, step by step.
#[test]
fn log_events_replay_to_the_post_states() {
    let cfg = SimConfig::default();
    let mut checked = 0;
    for seed in 0..8 {
        let r = run(seed, &cfg, &RaftKv::default());
        let records = &r.records;
        // node -> (snapshot (index, term), terms of entries after it)
        let mut logs: BTreeMap<u64, ((u64, u64), Vec<u64>)> = BTreeMap::new();
        for rec in records {
            let Record::Node(e) = rec else { continue };
            let log = logs.entry(e.node).or_insert(((0, 0), Vec::new()));
            let last = |l: &((u64, u64), Vec<u64>)| l.0 .0 + l.1.len() as u64;
            match &e.event {
                Event::Init(i) => {
                    let s = i.snapshot.as_ref().map_or((0, 0), |s| (s.index, s.term));
                    let terms = i.entries.as_ref().unwrap().iter().map(|e| e.term).collect();
                    *log = (s, terms);
                }
                Event::Append(a) => {
                    assert_eq!(
                        a.index,
                        last(log) + 1,
                        "seed {seed}: append not at the end: {e:?}"
                    );
                    log.1
                        .extend(a.entries.as_ref().unwrap().iter().map(|e| e.term));
                }
                Event::Truncate(t) => {
                    assert!(
                        t.from <= last(log),
                        "seed {seed}: truncating nothing: {e:?}"
                    );
                    log.1.truncate((t.from - log.0 .0 - 1) as usize);
                }
                Event::Snapshot(s) => {
                    let drop = (s.index - log.0 .0) as usize;
                    log.1.drain(..drop);
                    log.0 = (s.index, s.term);
                }
                Event::Install(s) => {
                    let pos = s.index.checked_sub(log.0 .0 + 1).map(|p| p as usize);
                    match pos {
                        Some(p) if log.1.get(p) == Some(&s.term) => {
                            log.1.drain(..=p);
                        }
                        _ => log.1.clear(),
                    }
                    log.0 = (s.index, s.term);
                }
                Event::Commit(c) => {
                    assert_eq!(e.post.as_ref().unwrap().commit, Some(c.index));
                }
                Event::Role(rc) => {
                    let p = e.post.as_ref().unwrap();
                    assert_eq!(p.term, Some(rc.term));
                }
                _ => {}
            }
            if let Some(p) = &e.post {
                let last_term = log.1.last().copied().unwrap_or(log.0 .1);
                assert_eq!(p.last_index, Some(last(log)), "seed {seed}: {e:?}");
                assert_eq!(p.last_term, Some(last_term), "seed {seed}: {e:?}");
                assert_eq!(p.snapshot_index, Some(log.0 .0), "seed {seed}: {e:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000);
}
