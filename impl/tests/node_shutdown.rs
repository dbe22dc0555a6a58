//! Shutdown of an in-process single-node cluster: the node loop stops on the
//! stop signal, every request still waiting is woken with `Stopped` (none
//! hangs), a write applied before the stop keeps its outcome, a linearizable
//! read is served through the read index and the apply notifier, and the
//! trace writer has finished its file when `run` returns.
#![cfg(not(loom))]

use std::collections::BTreeMap;
use std::time::Duration;

use raftkv::core::{Command, Op};
use raftkv::kv::Reply;
use raftkv::node::server::{NodeConfig, Request};
use raftkv::node::{Shared, Stopped};
use tokio::sync::mpsc;

fn config(dir: &std::path::Path) -> NodeConfig {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    NodeConfig {
        id: 1,
        peers: BTreeMap::from([(1, format!("127.0.0.1:{port}").parse().unwrap())]),
        client_addr: "127.0.0.1:0".parse().unwrap(),
        client_peers: BTreeMap::new(),
        data_dir: dir.join("data"),
        trace: Some(dir.join("trace.ndjson")),
        tick: Duration::from_millis(5),
        election_ticks: 4,
        heartbeat_ticks: 1,
        compact_every: 1000,
        pre_vote: true,
        check_quorum: true,
        lease_read: false,
        known_features: None,
        bugs: raftkv::bugs::Bugs::NONE,
        wal_faults: None,
        join: false,
        trace_nodes: None,
        trace_voters: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_wakes_every_waiter_and_drains_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel(16);
    let shared = Shared::new();
    let node = tokio::spawn(raftkv::node::run(config(dir.path()), rx, shared.clone()));

    // A write, retried until the single node has elected itself.
    let mut done = None;
    for attempt in 0..200 {
        let ticket = shared.proposals.register().unwrap();
        let cmd = Command {
            client: 7,
            req: 1,
            op: Op::Write {
                key: "k".into(),
                value: "v".into(),
            },
        };
        tx.send(Request::Propose {
            cmd,
            id: ticket.id(),
        })
        .await
        .unwrap();
        match tokio::time::timeout(Duration::from_secs(5), ticket).await {
            Ok(Ok(Ok(r))) => {
                done = Some(r);
                break;
            }
            Ok(Ok(Err(_))) => tokio::time::sleep(Duration::from_millis(10)).await,
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    assert_eq!(done, Some(Reply::Done));

    // A linearizable read: read index from the loop, then the notifier.
    let ticket = shared.reads.register().unwrap();
    tx.send(Request::Read { id: ticket.id() }).await.unwrap();
    let index = ticket.await.unwrap().unwrap();
    shared.applied.wait(index).await.unwrap();
    assert_eq!(shared.kv().get("k").map(String::as_str), Some("v"));

    // Waiters the node loop will never complete: registered, not yet sent;
    // and a read waiting for an index far ahead.
    let pending = shared.proposals.register().unwrap();
    let far = shared.applied.wait(index + 1_000_000);
    let waiting = tokio::spawn(async move { (pending.await, far.await) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiting.is_finished());

    shared.stop.stop();
    let r = tokio::time::timeout(Duration::from_secs(10), node)
        .await
        .expect("the node loop stops")
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
    let (p, f) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("no waiter hangs")
        .unwrap();
    assert_eq!(p.map(|_| ()), Err(Stopped));
    assert_eq!(f, Err(Stopped));
    assert!(shared.proposals.register().is_err());
    assert!(shared.reads.register().is_err());

    // The writer was joined: the file is well-formed to its last line and
    // holds the commit of the write.
    let events: Vec<_> = raft_trace::read_file(&dir.path().join("trace.ndjson"))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let commits = events
        .iter()
        .filter(|r| {
            matches!(r, raft_trace::Record::Node(e)
                if e.event.event_type() == raft_trace::EventType::Commit)
        })
        .count();
    assert!(commits >= 1, "no commit event in {} events", events.len());
}
