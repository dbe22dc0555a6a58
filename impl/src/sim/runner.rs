//! The simulation loop.

use raft_trace as rt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::client::{Action, Client, Workload};
use super::host::{Host, Output};
use super::invariants::{Invariants, Violation};
use super::linearize::{self, Verdict};
use super::network::{NetFaults, Network, Packet};
use super::{RunResult, SimConfig, Stats};
use crate::core::{Config, NodeId, RaftNode};
use crate::trace::{SharedTrace, TraceSink};

/// Steps of the quiet phase after the faulty one.
const QUIET_STEPS: u64 = 400;
/// Search budget of the linearizability check, per key.
const LIN_BUDGET: usize = 500_000;

struct World {
    rng: ChaCha8Rng,
    now: u64,
    ids: Vec<NodeId>,
    hosts: Vec<Host>,
    restart_at: Vec<Option<u64>>,
    net: Network,
    clients: Vec<Client>,
    workload: Workload,
    history: Vec<rt::ClientEvent>,
    inv: Invariants,
    trace: Option<SharedTrace>,
    heal_at: Option<u64>,
    stats: Stats,
    crash_p: f64,
    partition_p: f64,
    ready_p: f64,
}

impl World {
    fn sink(&self) -> Option<Box<dyn TraceSink>> {
        self.trace
            .as_ref()
            .map(|t| Box::new(t.clone()) as Box<dyn TraceSink>)
    }

    fn record(&mut self, ev: rt::ClientEvent) {
        if let Some(t) = &self.trace {
            t.0.lock().expect("trace lock").client(ev.clone());
        }
        self.history.push(ev);
    }

    fn do_actions(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(r) => {
                    let now = self.now;
                    self.net.send(&mut self.rng, now, Packet::Request(r));
                }
                Action::Record(ev) => self.record(ev),
            }
        }
    }

    fn send_output(&mut self, out: Output) {
        let now = self.now;
        for m in out.messages {
            self.net.send(&mut self.rng, now, Packet::Raft(m));
        }
        for r in out.responses {
            self.net.send(&mut self.rng, now, Packet::Response(r));
        }
    }

    fn inject_faults(&mut self, cfg: &SimConfig) {
        let n = self.hosts.len();
        if cfg.faults.crash {
            for i in 0..n {
                if self.restart_at[i].is_some_and(|t| t <= self.now) {
                    self.restart_at[i] = None;
                    let sink = self.sink();
                    self.hosts[i].restart(sink);
                }
            }
            if self.rng.random_bool(self.crash_p) {
                let i = self.rng.random_range(0..n);
                if self.hosts[i].is_up() {
                    if let Some(t) = &self.trace {
                        t.0.lock().expect("trace lock").crash(self.ids[i]);
                    }
                    self.hosts[i].crash();
                    self.stats.crashes += 1;
                    self.restart_at[i] = Some(self.now + self.rng.random_range(5..120));
                }
            }
        }
        if cfg.faults.partition {
            if let Some(t) = self.heal_at {
                if t <= self.now {
                    self.net.heal();
                    self.heal_at = None;
                }
            } else if self.rng.random_bool(self.partition_p) {
                let size = self.rng.random_range(1..n.max(2));
                let mut ids = self.ids.clone();
                for k in (1..ids.len()).rev() {
                    let j = self.rng.random_range(0..=k);
                    ids.swap(k, j);
                }
                let side = ids[..size.min(n - 1).max(1)].to_vec();
                let all = self.ids.clone();
                self.net.partition(&side, &all);
                self.stats.partitions += 1;
                self.heal_at = Some(self.now + self.rng.random_range(20..250));
            }
        }
    }

    /// One tick of the whole world.
    fn step(&mut self, cfg: &SimConfig, faulty: bool) -> Result<(), Violation> {
        self.now += 1;
        if let Some(t) = &self.trace {
            t.0.lock().expect("trace lock").now = self.now * 1_000_000;
        }
        if faulty {
            self.inject_faults(cfg);
        }
        let now = self.now;
        for p in self.net.due(&mut self.rng, now) {
            match p {
                Packet::Raft(m) => {
                    let i = (m.to - 1) as usize;
                    if let Some(node) = self.hosts[i].node.as_mut() {
                        node.step(m);
                    }
                }
                Packet::Request(r) => {
                    let i = (r.to - 1) as usize;
                    let mut out = Output::default();
                    self.hosts[i].on_request(r, &mut out);
                    self.send_output(out);
                }
                Packet::Response(r) => {
                    let c = (r.client - 1) as usize;
                    let mut actions = Vec::new();
                    let ids = self.ids.clone();
                    self.clients[c].on_response(&mut self.rng, now, &ids, r, &mut actions);
                    self.do_actions(actions);
                }
            }
        }
        for h in &mut self.hosts {
            if let Some(node) = h.node.as_mut() {
                node.tick();
            }
        }
        let ids = self.ids.clone();
        let w = self.workload;
        for c in 0..self.clients.len() {
            let mut actions = Vec::new();
            self.clients[c].tick(&mut self.rng, now, &ids, &w, faulty, &mut actions);
            self.do_actions(actions);
        }
        for i in 0..self.hosts.len() {
            // A node may be slow to persist: its state can stay volatile
            // for a while, and a crash then loses it.
            if faulty && !self.rng.random_bool(self.ready_p) {
                continue;
            }
            let mut out = Output::default();
            self.hosts[i].process(&mut self.inv, &mut out)?;
            self.send_output(out);
        }
        let nodes: Vec<Option<&RaftNode>> = self.hosts.iter().map(|h| h.node.as_ref()).collect();
        let disks: Vec<&_> = self.hosts.iter().map(|h| &h.disk).collect();
        self.inv.check(&nodes, &disks)
    }

    /// The end of the run: acknowledged writes and linearizability.
    fn final_checks(&mut self) -> Result<(), Violation> {
        let mut open = std::collections::HashMap::new();
        for ev in &self.history {
            match ev {
                rt::ClientEvent::Invoke(i) => {
                    open.insert((i.client, i.req), i.op.clone());
                }
                rt::ClientEvent::Return(r) => {
                    let op = open.remove(&(r.client, r.req));
                    match r.status {
                        rt::Status::Ok => self.stats.ops_ok += 1,
                        rt::Status::Fail => self.stats.ops_fail += 1,
                        rt::Status::Info => self.stats.ops_info += 1,
                    }
                    let is_write = op.is_some_and(|o| !matches!(o, rt::Op::Read { .. }));
                    if r.status == rt::Status::Ok
                        && is_write
                        && self.inv.executed_at(r.client, r.req).is_none()
                    {
                        return Err(Violation {
                            invariant: "acknowledged-write-present",
                            detail: format!(
                                "client {} request {} was acknowledged but never executed",
                                r.client, r.req
                            ),
                        });
                    }
                }
            }
        }
        // Replicas that applied the same prefix hold the same data.
        let mut by_applied: std::collections::BTreeMap<u64, (NodeId, &crate::kv::KvStore)> =
            Default::default();
        for h in self.hosts.iter().filter(|h| h.is_up()) {
            if let Some((other, kv)) = by_applied.get(&h.kv.applied()) {
                if kv.snapshot() != h.kv.snapshot() {
                    return Err(Violation {
                        invariant: "state-machine-safety",
                        detail: format!(
                            "nodes {other} and {} applied up to {} but hold different data",
                            h.id,
                            h.kv.applied()
                        ),
                    });
                }
            } else {
                by_applied.insert(h.kv.applied(), (h.id, &h.kv));
            }
        }
        match linearize::check(&self.history, LIN_BUDGET) {
            Verdict::Linearizable => Ok(()),
            Verdict::Inconclusive { .. } => {
                self.stats.linearizability_inconclusive = true;
                Ok(())
            }
            Verdict::Violation { key, detail } => Err(Violation {
                invariant: "linearizability",
                detail: format!("key {key}: {detail}"),
            }),
        }
    }
}

/// Runs one seed.
pub fn run(seed: u64, cfg: &SimConfig) -> RunResult {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ids: Vec<NodeId> = (1..=cfg.nodes.max(1) as u64).collect();
    // Per-seed variety: batching, pipelining, compaction and fault rates.
    let max_batch = [1, 4, 64][rng.random_range(0..3)];
    let max_inflight = [1, 4, 16][rng.random_range(0..3)];
    let snapshot_every = [8, 32][rng.random_range(0..2)];
    let intensity: f64 = rng.random_range(0.5..2.0);
    let loss_p = 0.03 * intensity;
    let dup_p = 0.02 * intensity;
    let trace = cfg.trace.then(SharedTrace::default);
    let mut hosts = Vec::new();
    for &id in &ids {
        let mut c = Config::new(id, ids.clone());
        c.seed = seed;
        c.max_batch = max_batch;
        c.max_inflight = max_inflight;
        c.snapshot_chunk = 48;
        c.heartbeat_ticks = 2;
        c.election_ticks = 10;
        c.bugs = cfg.bugs;
        c.compact_every = snapshot_every;
        let sink = trace
            .as_ref()
            .map(|t| Box::new(t.clone()) as Box<dyn TraceSink>);
        hosts.push(Host::new(c, 1024, sink));
    }
    let net = Network::new(
        NetFaults {
            loss: cfg.faults.loss,
            dup: cfg.faults.dup,
            reorder: cfg.faults.reorder,
        },
        loss_p,
        dup_p,
    );
    let mut world = World {
        rng,
        now: 0,
        restart_at: vec![None; ids.len()],
        ids: ids.clone(),
        hosts,
        net,
        clients: (1..=cfg.clients as u64).map(Client::new).collect(),
        workload: Workload {
            keys: cfg.keys.max(1),
            timeout: 30,
            max_attempts: 6,
            think: 6,
        },
        history: Vec::new(),
        inv: Invariants::default(),
        trace,
        heal_at: None,
        stats: Stats::default(),
        crash_p: 0.004 * intensity,
        partition_p: 0.004 * intensity,
        ready_p: 0.8,
    };
    let mut violation = None;
    let mut step = 0;
    while step < cfg.steps + QUIET_STEPS {
        let faulty = step < cfg.steps;
        if step == cfg.steps {
            // Quiet phase: heal, restart everyone, stop new operations.
            world.net.heal();
            world.heal_at = None;
            for i in 0..world.hosts.len() {
                if !world.hosts[i].is_up() {
                    world.restart_at[i] = None;
                    let sink = world.sink();
                    world.hosts[i].restart(sink);
                }
            }
        }
        step += 1;
        if let Err(v) = world.step(cfg, faulty) {
            violation = Some((step, v));
            break;
        }
        if !faulty && world.clients.iter().all(|c| !c.busy()) {
            break;
        }
    }
    let now = world.now;
    let mut actions = Vec::new();
    for c in &mut world.clients {
        c.abandon(now, &mut actions);
    }
    world.do_actions(actions);
    if violation.is_none() {
        if let Err(v) = world.final_checks() {
            violation = Some((step, v));
        }
    } else {
        let _ = world.final_checks();
    }
    world.stats.steps = step;
    world.stats.terms_with_leader = world.inv.terms_with_leader();
    world.stats.max_commit = world
        .hosts
        .iter()
        .filter_map(|h| h.node.as_ref().map(|n| n.commit_index()))
        .max()
        .unwrap_or(0);
    world.stats.snapshots = world.hosts.iter().map(|h| h.snapshots).sum();
    world.stats.installs = world.hosts.iter().map(|h| h.installs).sum();
    world.stats.messages = world.net.sent;
    world.stats.dropped = world.net.dropped;
    let trace = world.trace.take().map(|t| {
        let records = std::mem::take(&mut t.0.lock().expect("trace lock").records);
        let network = rt::Network {
            loss: cfg.faults.loss || cfg.faults.partition,
            duplication: cfg.faults.dup,
            reorder: cfg.faults.reorder,
        };
        let params = serde_json::json!({
            "seed": seed,
            "steps": cfg.steps,
            "faults": cfg.faults.to_string(),
            "max_batch": max_batch,
            "max_inflight": max_inflight,
            "snapshot_every": snapshot_every,
            "election_ticks": 10,
            "heartbeat_ticks": 2,
        });
        (crate::trace::header(ids.clone(), network, params), records)
    });
    RunResult {
        seed,
        violation,
        stats: world.stats,
        trace,
        history: world.history,
        nodes: ids,
    }
}
