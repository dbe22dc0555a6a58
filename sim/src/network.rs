//! The simulated network: loss, duplication, delay, reordering and
//! partitions, all driven by the simulation's seeded RNG.

use std::collections::BTreeSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::client::{Request, Response};
use crate::NodeId;

/// The addressing of a message between nodes, which is all the network
/// reads of it.
pub trait Addressed {
    fn from(&self) -> NodeId;
    fn to(&self) -> NodeId;
}

/// What travels on the network.
#[derive(Debug, Clone)]
pub enum Packet<M> {
    Raft(M),
    /// A client's request to a node.
    Request(Request),
    /// A node's response to a client.
    Response(Response),
}

/// Which faults the network injects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetFaults {
    pub loss: bool,
    pub dup: bool,
    pub reorder: bool,
}

struct InFlight<M> {
    at: u64,
    seq: u64,
    packet: Packet<M>,
}

/// Messages in flight and the current partition.
pub struct Network<M> {
    faults: NetFaults,
    /// Loss and duplication probabilities when enabled.
    pub loss_p: f64,
    pub dup_p: f64,
    inflight: Vec<InFlight<M>>,
    seq: u64,
    /// Node pairs that cannot talk (both directions stored).
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Per-link last delivery time (FIFO when reordering is off).
    fifo: std::collections::BTreeMap<(u64, u64), u64>,
    pub sent: u64,
    pub dropped: u64,
}

impl<M: Addressed + Clone> Network<M> {
    pub fn new(faults: NetFaults, loss_p: f64, dup_p: f64) -> Self {
        Network {
            faults,
            loss_p,
            dup_p,
            inflight: Vec::new(),
            seq: 0,
            blocked: BTreeSet::new(),
            fifo: Default::default(),
            sent: 0,
            dropped: 0,
        }
    }

    fn endpoints(p: &Packet<M>) -> (u64, u64) {
        match p {
            Packet::Raft(m) => (m.from(), m.to()),
            Packet::Request(r) => (1000 + r.client, r.to),
            Packet::Response(r) => (r.from, 1000 + r.client),
        }
    }

    /// Whether two nodes are cut off from each other.
    pub fn is_blocked(&self, a: NodeId, b: NodeId) -> bool {
        self.blocked.contains(&(a, b))
    }

    pub fn partitioned(&self) -> bool {
        !self.blocked.is_empty()
    }

    /// Cuts the cluster into `side` and the rest.
    pub fn partition(&mut self, side: &[NodeId], all: &[NodeId]) {
        self.blocked.clear();
        for a in side {
            for b in all.iter().filter(|b| !side.contains(b)) {
                self.blocked.insert((*a, *b));
                self.blocked.insert((*b, *a));
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Sends a packet at time `now`.
    pub fn send(&mut self, rng: &mut ChaCha8Rng, now: u64, packet: Packet<M>) {
        self.sent += 1;
        if self.faults.loss && rng.random_bool(self.loss_p) {
            self.dropped += 1;
            return;
        }
        let copies = if self.faults.dup && rng.random_bool(self.dup_p) {
            2
        } else {
            1
        };
        let link = Self::endpoints(&packet);
        for _ in 0..copies {
            let at = if self.faults.reorder {
                now + rng.random_range(1..=6)
            } else {
                let at = now + rng.random_range(1..=2);
                let last = self.fifo.entry(link).or_insert(0);
                *last = (*last).max(at);
                *last
            };
            self.seq += 1;
            self.inflight.push(InFlight {
                at,
                seq: self.seq,
                packet: packet.clone(),
            });
        }
    }

    /// Removes and returns the packets due at `now`, in delivery order.
    /// Packets across a partition are dropped.
    pub fn due(&mut self, rng: &mut ChaCha8Rng, now: u64) -> Vec<Packet<M>> {
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.inflight.len() {
            if self.inflight[i].at <= now {
                due.push(self.inflight.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|p| (p.at, p.seq));
        if self.faults.reorder {
            // Random order among those due together.
            for k in (1..due.len()).rev() {
                let j = rng.random_range(0..=k);
                due.swap(k, j);
            }
        }
        let mut out = Vec::with_capacity(due.len());
        for d in due {
            if let Packet::Raft(m) = &d.packet {
                if self.is_blocked(m.from(), m.to()) {
                    self.dropped += 1;
                    continue;
                }
            }
            out.push(d.packet);
        }
        out
    }

    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }
}
