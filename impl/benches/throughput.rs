//! Entries committed per second by a 3-node cluster of raftkv cores in one
//! process: no faults, no disk (persistence is instantaneous), no network
//! delay, no tracing; the key-value state machine applies every entry on
//! every node. Each proposer keeps one command outstanding and proposes
//! again as soon as the leader has applied it. Measured with and without
//! batching (at most one entry per AppendEntries); pipelining stays on.
//!
//! Run: `cargo bench -p raftkv --bench throughput` (prints a table).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use raftkv::core::{Command, Config, Message, NodeId, Op, RaftNode, Recovered};
use raftkv::kv::KvStore;
use raftkv::trace::TraceSink;

/// A sink that builds every event and throws it away: the cost of tracing
/// without the cost of writing.
struct NullSink(u64);

impl TraceSink for NullSink {
    fn record(&mut self, _: NodeId, ev: raft_trace::Event, _: raft_trace::PostState) {
        self.0 += 1;
        std::hint::black_box(ev);
    }
}

struct Cluster {
    nodes: Vec<RaftNode>,
    kvs: Vec<KvStore>,
    queue: VecDeque<Message>,
}

impl Cluster {
    fn new(batching: bool, traced: bool) -> Self {
        let ids: Vec<NodeId> = vec![1, 2, 3];
        let nodes = ids
            .iter()
            .map(|&id| {
                let mut c = Config::new(id, ids.clone());
                c.max_batch = if batching { 4096 } else { 1 };
                c.max_inflight = 64;
                c.seed = 1;
                let sink = traced.then(|| Box::new(NullSink(0)) as Box<dyn TraceSink>);
                RaftNode::new(c, Recovered::default(), sink)
            })
            .collect();
        Cluster {
            nodes,
            kvs: (0..3)
                .map(|_| KvStore::new(1 << 20, Default::default()))
                .collect(),
            queue: VecDeque::new(),
        }
    }

    /// Processes every node's Ready; returns the (client, req) pairs the
    /// leader (node 1) applied.
    fn drain(&mut self, done: &mut Vec<u64>) {
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            while n.has_ready() {
                let mut rd = n.ready();
                // The fast path as the node runs it (here the write is
                // instantaneous, so only the order of the calls differs).
                self.queue.extend(n.early_messages(&mut rd));
                self.queue.extend(n.persisted(&mut rd));
                for e in &rd.committed_entries {
                    let a = self.kvs[i].apply(e);
                    n.applied(e.index, a.duplicate);
                    if i == 0 {
                        if let Some((client, _)) = a.command {
                            done.push(client);
                        }
                    }
                }
            }
        }
    }

    /// Delivers messages until none are left.
    fn pump(&mut self, done: &mut Vec<u64>) {
        loop {
            self.drain(done);
            if self.queue.is_empty() {
                return;
            }
            while let Some(m) = self.queue.pop_front() {
                let to = (m.to - 1) as usize;
                self.nodes[to].step(m);
            }
        }
    }

    fn elect(&mut self) {
        let mut done = Vec::new();
        while !self.nodes[0].is_leader() {
            self.nodes[0].tick();
            self.pump(&mut done);
        }
        self.pump(&mut done);
    }
}

/// CPU time this process has used (user + system), from /proc on Linux:
/// on a shared machine the wall clock also counts other processes' turns.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Entries committed per wall-clock second and per CPU second with
/// `proposers` concurrent proposers.
fn measure(proposers: u64, batching: bool, traced: bool, budget: Duration) -> (f64, f64) {
    let mut c = Cluster::new(batching, traced);
    c.elect();
    let mut req = vec![0u64; proposers as usize + 1];
    let mut idle: Vec<u64> = (1..=proposers).collect();
    let mut done = Vec::new();
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let mut committed = 0u64;
    let value = "v".to_string();
    loop {
        for client in idle.drain(..) {
            req[client as usize] += 1;
            let cmd = Command {
                client,
                req: req[client as usize],
                op: Op::Write {
                    key: format!("k{}", client % 64),
                    value: value.clone(),
                },
            };
            c.nodes[0].propose(cmd).expect("node 1 leads");
        }
        c.pump(&mut done);
        committed += done.len() as u64;
        idle.append(&mut done);
        if committed >= 20_000 && start.elapsed() >= budget {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => secs,
    };
    (committed as f64 / secs, committed as f64 / cpu)
}

fn main() {
    // `cargo bench` passes `--bench`; a quick mode for smoke runs.
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 200 } else { 2000 });
    println!("raftkv core, 3 nodes in one process, no faults, no disk, KV applied on every node");
    println!("entries committed per second of wall clock (per CPU second in brackets)");
    println!(
        "{:>10} | {:>24} | {:>24} | {:>14}",
        "proposers", "batched", "unbatched", "ratio"
    );
    println!("{:-<10}-+-{:-<24}-+-{:-<24}-+-{:-<14}", "", "", "", "");
    for p in [1u64, 64, 1024, 4096] {
        let (b, bc) = measure(p, true, false, budget);
        let (u, uc) = measure(p, false, false, budget);
        println!(
            "{p:>10} | {:>24} | {:>24} | {:>14}",
            format!("{b:.0} ({bc:.0})"),
            format!("{u:.0} ({uc:.0})"),
            format!("{:.2}x ({:.2}x)", b / u, bc / uc)
        );
    }
    println!();
    println!("tracing cost (64 proposers, batched): events built and discarded vs no sink");
    let (_, plain) = measure(64, true, false, budget);
    let (_, traced) = measure(64, true, true, budget);
    println!(
        "no sink {plain:.0} entries per CPU second, null sink {traced:.0} ({:.2}x)",
        plain / traced
    );
}
