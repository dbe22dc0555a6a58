//! The simulation loop: a cluster of nodes of any [`Implementation`] over
//! the simulated network and disks, with retrying clients, driven by one
//! seeded RNG.

use raft_trace as rt;
use raft_trace::sink::{SharedTrace, TraceSink};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::client::{Action, Client, Workload};
use crate::invariants::{Invariants, Violation};
use crate::network::{NetFaults, Network, Packet};
use crate::node::{Change, Disk, Implementation, Members, Node, Output, Setup};
use crate::{NodeId, RunResult, SimConfig, Stats};

/// Election timeout of every node in the simulator, in ticks.
pub const ELECTION_TICKS: u64 = 10;

/// The bound of the quiet (heal) phase after the faulty one, in election
/// timeouts: within it a leader must be elected and every pending client
/// operation answered, or the run fails with "no progress".
pub const HEAL_ELECTION_TIMEOUTS: u64 = 40;

/// Ticks after a crash, a restart, a partition or its end before the
/// cluster counts as settled again (five election timeouts: an election,
/// and catching up a node that was away).
pub const SETTLE_TICKS: u64 = 5 * ELECTION_TICKS;

/// Steps (ticks) of the quiet phase after the faulty one: the bound of
/// [`HEAL_ELECTION_TIMEOUTS`] election timeouts.
pub const QUIET_STEPS: u64 = HEAL_ELECTION_TIMEOUTS * ELECTION_TICKS;

/// Chance per step that the nemesis asks a leader to transfer (with
/// `SimConfig::leader_transfer`).
const TRANSFER_P: f64 = 0.01;

/// Servers beyond `SimConfig::nodes` that a run with membership changes
/// has: they boot as non-members and join (and leave) by changes.
pub const SPARE_NODES: usize = 2;

/// Chance per step that the nemesis asks a leader for a membership change
/// (with `SimConfig::membership`).
const CHANGE_P: f64 = 0.01;

/// Chance, in the faulty phase, that a node's writes of one Ready wait
/// until its next turn after what it hands over early ([`Node::early`])
/// has gone: the node steps on meanwhile, and a crash loses the writes.
/// Only for nodes that allow it ([`Node::STEPS_WHILE_WRITING`]).
const DEFER_P: f64 = 0.25;

/// Chance per step, times the fault intensity, that a node holding
/// deferred writes crashes before they are written (a leader whose appends
/// left before its own write, most interestingly).
const CRASH_UNWRITTEN_P: f64 = 0.05;

/// One server slot: its disk survives crashes, its node does not.
struct Server<N: Node> {
    setup: Setup,
    node: Option<N>,
    disk: N::Disk,
    /// Writes of a Ready whose early output has left but which are not yet
    /// on the disk (see [`DEFER_P`]); a crash loses them.
    unwritten: Option<Vec<<N::Disk as Disk>::Write>>,
}

struct World<'a, I: Implementation> {
    imp: &'a I,
    rng: ChaCha8Rng,
    now: u64,
    ids: Vec<NodeId>,
    servers: Vec<Server<I::Node>>,
    restart_at: Vec<Option<u64>>,
    net: Network<<I::Node as Node>::Message>,
    clients: Vec<Client>,
    workload: Workload,
    history: Vec<rt::ClientEvent>,
    inv: Invariants,
    trace: SharedTrace,
    heal_at: Option<u64>,
    /// The last tick a node crashed or restarted or the network was cut or
    /// healed.
    last_fault: u64,
    stats: Stats,
    crash_p: f64,
    crash_unwritten_p: f64,
    partition_p: f64,
    ready_p: f64,
}

/// How far a node's output went before one of its calls, so that what the
/// call added can be checked: each message sent against the node's disk, each
/// entry applied against what the other nodes applied.
struct Mark {
    sent: usize,
    applied: usize,
}

impl Mark {
    fn of<M>(out: &Output<M>) -> Mark {
        Mark {
            sent: out.messages.len(),
            applied: out.applied.len(),
        }
    }

    fn check<N: Node>(
        self,
        inv: &mut Invariants,
        disk: &N::Disk,
        id: NodeId,
        out: &Output<N::Message>,
    ) -> Result<(), Violation> {
        for m in &out.messages[self.sent..] {
            inv.on_send(disk, m, N::envelope(m))?;
        }
        for a in &out.applied[self.applied..] {
            inv.on_apply(id, a)?;
        }
        Ok(())
    }
}

impl<I: Implementation> World<'_, I> {
    fn sink(&self) -> Box<dyn TraceSink> {
        Box::new(self.trace.clone())
    }

    fn record(&mut self, ev: rt::ClientEvent) {
        self.trace.0.lock().expect("trace lock").client(ev.clone());
        self.history.push(ev);
    }

    fn is_up(&self, i: usize) -> bool {
        self.servers[i].node.is_some()
    }

    /// A node leads and no node is in a later term: the leader the healed
    /// cluster needs.
    ///
    /// With membership changes only the members of the leader's
    /// configuration count: a removed server is told nothing more, so its
    /// term may stay above the cluster's for good.
    fn has_leader(&self) -> bool {
        let up = || {
            self.servers
                .iter()
                .zip(&self.ids)
                .filter_map(|(s, id)| s.node.as_ref().map(|n| (*id, n)))
        };
        up().any(|(_, l)| {
            let st = l.status();
            let members = l.membership();
            let counts = |id: NodeId| {
                members
                    .as_ref()
                    .is_none_or(|m| m.voters.contains(&id) || m.learners.contains(&id))
            };
            st.role == rt::Role::Leader
                && up()
                    .filter(|(id, _)| counts(*id))
                    .all(|(_, n)| n.status().term <= st.term)
        })
    }

    /// The voters of the configuration the cluster uses, as far as the
    /// simulator can tell: that of the up node furthest ahead (highest
    /// term, then commit); every server without membership changes.
    fn voters(&self) -> Vec<NodeId> {
        self.servers
            .iter()
            .filter_map(|s| s.node.as_ref())
            .max_by_key(|n| (n.status().term, n.status().commit))
            .and_then(|n| n.membership())
            .map_or_else(|| self.ids.clone(), |m| m.voters)
    }

    /// A quorum of nodes is up and can reach each other: the schedule
    /// allows progress at this step.
    fn quorum_connected(&self) -> bool {
        let voters = self.voters();
        let index = |id: &NodeId| self.ids.iter().position(|x| x == id);
        let voters: Vec<usize> = voters.iter().filter_map(index).collect();
        voters.iter().filter(|&&i| self.is_up(i)).any(|&i| {
            let reach = voters
                .iter()
                .filter(|&&j| {
                    self.is_up(j) && (i == j || !self.net.is_blocked(self.ids[i], self.ids[j]))
                })
                .count();
            2 * reach > voters.len()
        })
    }

    /// The nemesis asks the leader for one membership change, chosen at
    /// random among those one server away from its configuration that keep
    /// between `nodes` and `nodes + SPARE_NODES` voters (so that faults
    /// leave a quorum often enough): a non-member added as voter or
    /// learner, a learner promoted or removed, a voter removed (the leader
    /// itself included).
    fn change_membership(&mut self, cfg: &SimConfig) {
        let Some(i) = self.leader_index() else {
            return;
        };
        let Some(Members { voters, learners }) =
            self.servers[i].node.as_ref().and_then(|l| l.membership())
        else {
            return;
        };
        let mut options = Vec::new();
        for &id in &self.ids {
            let voter = voters.contains(&id);
            let learner = learners.contains(&id);
            if !voter && voters.len() < cfg.nodes + SPARE_NODES {
                options.push(Change::AddVoter(id));
            }
            if !voter && !learner {
                options.push(Change::AddLearner(id));
            }
            if learner || voter && voters.len() > cfg.nodes {
                options.push(Change::Remove(id));
            }
        }
        if options.is_empty() {
            return;
        }
        let change = options[self.rng.random_range(0..options.len())];
        let node = self.servers[i].node.as_mut().expect("up");
        if node.propose_change(change) {
            self.stats.changes += 1;
        }
    }

    /// The slot of an up node that is leader (the first, if several of
    /// different terms are).
    fn leader_index(&self) -> Option<usize> {
        self.servers.iter().position(|s| {
            s.node
                .as_ref()
                .is_some_and(|n| n.status().role == rt::Role::Leader)
        })
    }

    /// The process starts again from its disk.
    fn restart(&mut self, i: usize) {
        let sink = self.sink();
        let s = &mut self.servers[i];
        s.node = Some(self.imp.start(&s.setup, &mut s.disk, sink));
    }

    /// The process dies: memory is gone, the disk stays.
    fn crash(&mut self, i: usize) {
        self.servers[i].node = None;
        self.servers[i].unwritten = None;
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

    fn send_output(&mut self, out: Output<<I::Node as Node>::Message>) {
        let now = self.now;
        for m in out.messages {
            self.net.send(&mut self.rng, now, Packet::Raft(m));
        }
        for r in out.responses {
            self.net.send(&mut self.rng, now, Packet::Response(r));
        }
    }

    fn inject_faults(&mut self, cfg: &SimConfig) {
        let n = self.servers.len();
        if cfg.membership && self.rng.random_bool(CHANGE_P) {
            self.change_membership(cfg);
        }
        if cfg.leader_transfer && n > 1 && self.rng.random_bool(TRANSFER_P) {
            if let Some(i) = self.leader_index() {
                let to = self.ids[(i + self.rng.random_range(1..n)) % n];
                let node = self.servers[i].node.as_mut().expect("up");
                if node.transfer_leader(to) {
                    self.stats.transfers += 1;
                }
            }
        }
        if cfg.faults.crash {
            for i in 0..n {
                if self.restart_at[i].is_some_and(|t| t <= self.now) {
                    self.restart_at[i] = None;
                    self.restart(i);
                    self.last_fault = self.now;
                }
            }
            // A node whose deferred writes are not on its disk yet may
            // crash first; otherwise one random node may crash.
            let unwritten = (0..n).find(|&i| self.servers[i].unwritten.is_some());
            let victim = match unwritten {
                Some(i) if self.rng.random_bool(self.crash_unwritten_p) => Some(i),
                _ => self
                    .rng
                    .random_bool(self.crash_p)
                    .then(|| self.rng.random_range(0..n)),
            };
            if let Some(i) = victim {
                if self.is_up(i) {
                    self.trace.0.lock().expect("trace lock").crash(self.ids[i]);
                    self.crash(i);
                    self.last_fault = self.now;
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
                    self.last_fault = self.now;
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
                self.last_fault = self.now;
                self.heal_at = Some(self.now + self.rng.random_range(20..250));
            }
        }
    }

    /// One tick of the whole world.
    fn step(&mut self, cfg: &SimConfig, faulty: bool) -> Result<(), Violation> {
        self.now += 1;
        self.trace.0.lock().expect("trace lock").now = self.now * 1_000_000;
        if faulty {
            self.inject_faults(cfg);
        }
        let now = self.now;
        for p in self.net.due(&mut self.rng, now) {
            match p {
                Packet::Raft(m) => {
                    let i = (crate::network::Addressed::to(&m) - 1) as usize;
                    if let Some(node) = self.servers[i].node.as_mut() {
                        node.step(m);
                    }
                }
                Packet::Request(r) => {
                    let i = (r.to - 1) as usize;
                    if let Some(node) = self.servers[i].node.as_mut() {
                        let mut out = Output::default();
                        node.request(r, &mut out);
                        self.send_output(out);
                    }
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
        for s in &mut self.servers {
            if let Some(node) = s.node.as_mut() {
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
        for i in 0..self.servers.len() {
            // A node may be slow to persist: its state can stay volatile
            // for a while, and a crash then loses it.
            if faulty && !self.rng.random_bool(self.ready_p) {
                continue;
            }
            let mut out = Output::default();
            self.process(i, faulty, &mut out)?;
            self.send_output(out);
        }
        let nodes: Vec<Option<&I::Node>> = self.servers.iter().map(|s| s.node.as_ref()).collect();
        let disks: Vec<&_> = self.servers.iter().map(|s| &s.disk).collect();
        self.inv.check(&nodes, &disks)
    }

    /// Runs node `i`'s Ready loop until it has nothing more: its writes
    /// made durable, then its messages checked and sent, its applies
    /// checked.
    fn process(
        &mut self,
        i: usize,
        faulty: bool,
        out: &mut Output<<I::Node as Node>::Message>,
    ) -> Result<(), Violation> {
        let id = self.ids[i];
        let s = &mut self.servers[i];
        let Some(node) = s.node.as_mut() else {
            return Ok(());
        };
        let mut writes = s.unwritten.take();
        if writes.is_some() {
            // The writes waited while the node stepped on: what it may
            // apply meanwhile is applied before they are done.
            let mark = Mark::of(out);
            node.meanwhile(out);
            mark.check::<I::Node>(&mut self.inv, &s.disk, id, out)?;
        }
        loop {
            let Some(ws) = writes.take() else {
                let Some(ws) = node.ready() else {
                    break;
                };
                // What may leave before the writes are durable leaves now;
                // the writes may then wait for the node's next turn.
                let mark = Mark::of(out);
                node.early(out);
                mark.check::<I::Node>(&mut self.inv, &s.disk, id, out)?;
                if I::Node::STEPS_WHILE_WRITING && faulty && self.rng.random_bool(DEFER_P) {
                    s.unwritten = Some(ws);
                    break;
                }
                writes = Some(ws);
                continue;
            };
            for w in ws {
                s.disk.write(w);
            }
            let mark = Mark::of(out);
            node.persisted(out);
            mark.check::<I::Node>(&mut self.inv, &s.disk, id, out)?;
        }
        self.stats.snapshots += out.snapshots;
        self.stats.installs += out.installs;
        Ok(())
    }

    /// The end of the run: every acknowledged write was executed. (The
    /// history's linearizability is conformance's to decide.)
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
        Ok(())
    }
}

/// Runs one seed of `imp`, then hands its trace to conformance.
pub fn run<I: Implementation>(seed: u64, cfg: &SimConfig, imp: &I) -> RunResult {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let voters: Vec<NodeId> = (1..=cfg.nodes.max(1) as u64).collect();
    let spares = if cfg.membership { SPARE_NODES } else { 0 };
    let ids: Vec<NodeId> = (1..=(cfg.nodes.max(1) + spares) as u64).collect();
    // Per-seed variety: batching, pipelining, compaction and fault rates.
    let max_batch = [1, 4, 64][rng.random_range(0..3)];
    let max_inflight = [1, 4, 16][rng.random_range(0..3)];
    let snapshot_every = [8, 32][rng.random_range(0..2)];
    let intensity: f64 = rng.random_range(0.5..2.0);
    let loss_p = 0.03 * intensity;
    let dup_p = 0.02 * intensity;
    let trace = SharedTrace::default();
    let mut servers = Vec::new();
    for &id in &ids {
        // A spare server boots with no configuration: it joins by a change.
        let peers = if voters.contains(&id) {
            voters.clone()
        } else {
            Vec::new()
        };
        let setup = Setup {
            id,
            peers,
            seed,
            max_batch,
            max_inflight,
            snapshot_every,
            election_ticks: ELECTION_TICKS as u32,
            heartbeat_ticks: 2,
        };
        let mut disk = <I::Node as Node>::Disk::default();
        let node = imp.start(&setup, &mut disk, Box::new(trace.clone()));
        servers.push(Server {
            setup,
            node: Some(node),
            disk,
            unwritten: None,
        });
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
        imp,
        rng,
        now: 0,
        restart_at: vec![None; ids.len()],
        ids: ids.clone(),
        servers,
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
        last_fault: 0,
        stats: Stats::default(),
        crash_p: 0.004 * intensity,
        crash_unwritten_p: CRASH_UNWRITTEN_P * intensity,
        partition_p: 0.004 * intensity,
        ready_p: 0.8,
    };
    world.inv.initial_voters = voters.clone();
    let mut early = None;
    let mut step = 0;
    let mut healed = false;
    while step < cfg.steps + QUIET_STEPS {
        let faulty = step < cfg.steps;
        if step == cfg.steps {
            // Quiet phase: heal, restart everyone, stop new operations.
            world.net.heal();
            world.heal_at = None;
            for i in 0..world.servers.len() {
                if !world.is_up(i) {
                    world.restart_at[i] = None;
                    world.restart(i);
                }
            }
        }
        step += 1;
        if let Err(v) = world.step(cfg, faulty) {
            early = Some((step, v));
            break;
        }
        if faulty && world.quorum_connected() {
            world.stats.quorum_steps += 1;
            if world.now >= world.last_fault + SETTLE_TICKS {
                world.stats.calm_steps += 1;
            }
        }
        if !faulty && world.has_leader() && world.clients.iter().all(|c| !c.busy()) {
            healed = true;
            world.stats.heal_steps = step - cfg.steps;
            break;
        }
    }
    // The healed cluster must elect a leader and answer every pending
    // operation within the quiet phase's bound.
    let no_progress = (early.is_none() && !healed).then(|| {
        let mut missing = Vec::new();
        if !world.has_leader() {
            missing.push(format!(
                "no leader elected within {QUIET_STEPS} ticks ({HEAL_ELECTION_TIMEOUTS} election \
                 timeouts) after healing"
            ));
        }
        let pending: Vec<String> = world
            .clients
            .iter()
            .filter_map(|c| {
                c.pending().map(|(req, op, since)| {
                    format!(
                        "client {} request {req} ({}, invoked at tick {since})",
                        c.id,
                        op_name(op)
                    )
                })
            })
            .collect();
        if !pending.is_empty() {
            missing.push(format!(
                "{} still pending {QUIET_STEPS} ticks ({HEAL_ELECTION_TIMEOUTS} election \
                 timeouts) after healing: {}",
                if pending.len() == 1 {
                    "1 client operation".to_string()
                } else {
                    format!("{} client operations", pending.len())
                },
                pending.join(", ")
            ));
        }
        missing.join("; ")
    });
    let now = world.now;
    let mut actions = Vec::new();
    for c in &mut world.clients {
        c.abandon(now, &mut actions);
    }
    world.do_actions(actions);
    if let Err(v) = world.final_checks() {
        early = early.or(Some((step, v)));
    }
    world.stats.steps = step;
    world.stats.terms_with_leader = world.inv.terms_with_leader();
    world.stats.max_commit = world
        .servers
        .iter()
        .filter_map(|s| s.node.as_ref().map(|n| n.status().commit))
        .max()
        .unwrap_or(0);
    world.stats.messages = world.net.sent;
    world.stats.dropped = world.net.dropped;
    let records = std::mem::take(&mut world.trace.0.lock().expect("trace lock").records);
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
        "election_ticks": ELECTION_TICKS,
        "heartbeat_ticks": 2,
        "membership": cfg.membership,
    });
    let mut header = imp.header(ids.clone(), network, params);
    if cfg.membership {
        header.voters = Some(voters);
    }
    let name = format!("seed-{seed}/{}", crate::TRACE_FILE);
    let options = raft_conformance::validate::Options {
        frontier_budget: cfg.frontier_budget,
        ..raft_conformance::validate::Options::default()
    };
    let checked = raft_conformance::validate::check_records(&name, &header, &records, &options)
        .map_err(|e| e.to_string());
    RunResult {
        seed,
        early,
        faulty_steps: cfg.steps,
        clients: cfg.clients,
        checked,
        stats: world.stats,
        header,
        records,
        history: world.history,
        nodes: ids,
        no_progress,
    }
}

/// A short description of an operation for reports.
fn op_name(op: &rt::Op) -> String {
    match op {
        rt::Op::Read { key } => format!("read {key}"),
        rt::Op::Write { key, .. } => format!("write {key}"),
        rt::Op::Cas { key, .. } => format!("cas {key}"),
        rt::Op::Delete { key } => format!("delete {key}"),
        rt::Op::Append { key, .. } => format!("append {key}"),
    }
}
