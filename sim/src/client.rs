//! Simulated clients: each runs one operation at a time, follows leader
//! redirects, and retries with the same request number on timeout; every
//! operation is recorded in the history as raft-trace/1 client events.

use raft_trace::{ClientEvent, Invoke, Op, Return, Status};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::NodeId;

/// A client's request to a node.
#[derive(Debug, Clone)]
pub struct Request {
    pub client: u64,
    pub req: u64,
    pub to: NodeId,
    pub op: Op,
}

/// What a node answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Done; for reads the value read.
    Ok(Option<String>),
    /// A cas whose precondition failed.
    CasFailed,
    /// The request was older than the client's latest (not executed).
    Stale,
    /// Not the leader; the leader it knows.
    NotLeader(Option<NodeId>),
}

/// A node's response to a client.
#[derive(Debug, Clone)]
pub struct Response {
    pub client: u64,
    pub req: u64,
    pub from: NodeId,
    pub answer: Answer,
}

struct Outstanding {
    req: u64,
    op: Op,
    /// The tick the operation was invoked.
    since: u64,
    deadline: u64,
    attempts: u32,
    redirects: u32,
}

/// Parameters of the client workload.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub keys: usize,
    /// Ticks without an answer before a retry.
    pub timeout: u64,
    /// Attempts before the client gives up (outcome unknown).
    pub max_attempts: u32,
    /// Most ticks a client idles between operations.
    pub think: u64,
}

/// One client process.
pub struct Client {
    pub id: u64,
    next_req: u64,
    current: Option<Outstanding>,
    leader_hint: Option<NodeId>,
    idle_until: u64,
    needs_think: bool,
    value_seq: u64,
}

/// An action the client wants the driver to take.
pub enum Action {
    Send(Request),
    Record(ClientEvent),
}

impl Client {
    pub fn new(id: u64) -> Self {
        Client {
            id,
            next_req: 1,
            current: None,
            leader_hint: None,
            idle_until: 0,
            needs_think: true,
            value_seq: 0,
        }
    }

    pub fn busy(&self) -> bool {
        self.current.is_some()
    }

    /// The operation waiting for an answer: its request number, the
    /// operation and the tick it was invoked.
    pub fn pending(&self) -> Option<(u64, &Op, u64)> {
        self.current.as_ref().map(|c| (c.req, &c.op, c.since))
    }

    fn target(&self, rng: &mut ChaCha8Rng, nodes: &[NodeId]) -> NodeId {
        self.leader_hint
            .unwrap_or_else(|| nodes[rng.random_range(0..nodes.len())])
    }

    fn random_op(&mut self, rng: &mut ChaCha8Rng, w: &Workload) -> Op {
        let key = format!("k{}", rng.random_range(0..w.keys));
        self.value_seq += 1;
        let value = format!("{}.{}", self.id, self.value_seq);
        match rng.random_range(0..100) {
            0..40 => Op::Read { key },
            40..65 => Op::Write { key, value },
            65..80 => {
                let from = if rng.random_bool(0.2) {
                    None
                } else {
                    // A plausible current value: some recent write.
                    let c = rng.random_range(1..=3u64);
                    let s = self.value_seq.saturating_sub(rng.random_range(1..4));
                    Some(format!("{c}.{s}"))
                };
                Op::Cas {
                    key,
                    from,
                    to: value,
                }
            }
            80..88 => Op::Delete { key },
            _ => Op::Append {
                key,
                value: format!("{}.{};", self.id, self.value_seq),
            },
        }
    }

    /// One tick: maybe start an operation, maybe retry one. While new
    /// operations may start (the faulty phase) a client gives up after
    /// [`Workload::max_attempts`] (outcome unknown); after that (the heal
    /// phase: network whole, every node up) it retries until it gets an
    /// answer, so an operation still waiting at the end of the run is one
    /// the healed cluster never answered.
    pub fn tick(
        &mut self,
        rng: &mut ChaCha8Rng,
        now: u64,
        nodes: &[NodeId],
        w: &Workload,
        may_start: bool,
        out: &mut Vec<Action>,
    ) {
        match &mut self.current {
            None => {
                if self.needs_think {
                    self.needs_think = false;
                    self.idle_until = now + rng.random_range(0..=w.think);
                }
                if !may_start || now < self.idle_until {
                    return;
                }
                let op = self.random_op(rng, w);
                let req = self.next_req;
                self.next_req += 1;
                let to = self.target(rng, nodes);
                out.push(Action::Record(ClientEvent::Invoke(Invoke {
                    client: self.id,
                    req,
                    node: Some(to),
                    op: op.clone(),
                    time: Some(now * 1_000_000),
                })));
                out.push(Action::Send(Request {
                    client: self.id,
                    req,
                    to,
                    op: op.clone(),
                }));
                self.current = Some(Outstanding {
                    req,
                    op,
                    since: now,
                    deadline: now + w.timeout,
                    attempts: 1,
                    redirects: 0,
                });
            }
            Some(cur) if now >= cur.deadline => {
                if may_start && cur.attempts >= w.max_attempts {
                    let req = cur.req;
                    self.finish(now, req, Status::Info, None, Some("timeout"), out);
                    return;
                }
                cur.attempts += 1;
                cur.redirects = 0;
                cur.deadline = now + w.timeout;
                let (req, op) = (cur.req, cur.op.clone());
                // The node we tried may be down or cut off: try another.
                self.leader_hint = None;
                let to = self.target(rng, nodes);
                out.push(Action::Send(Request {
                    client: self.id,
                    req,
                    to,
                    op,
                }));
            }
            Some(_) => {}
        }
    }

    /// A response from a node.
    pub fn on_response(
        &mut self,
        rng: &mut ChaCha8Rng,
        now: u64,
        nodes: &[NodeId],
        r: Response,
        out: &mut Vec<Action>,
    ) {
        let Some(cur) = &mut self.current else {
            return;
        };
        if cur.req != r.req {
            return;
        }
        match r.answer {
            Answer::Ok(v) => {
                let is_read = matches!(cur.op, Op::Read { .. });
                let req = cur.req;
                self.leader_hint = Some(r.from);
                self.finish(
                    now,
                    req,
                    Status::Ok,
                    if is_read { v } else { None },
                    None,
                    out,
                );
            }
            Answer::CasFailed => {
                let req = cur.req;
                self.leader_hint = Some(r.from);
                self.finish(now, req, Status::Fail, None, Some("precondition"), out);
            }
            Answer::Stale => {
                let req = cur.req;
                self.finish(now, req, Status::Info, None, Some("stale"), out);
            }
            Answer::NotLeader(hint) => {
                // Redirect at once (same request number); after a few
                // fruitless redirects wait for the timeout instead.
                cur.redirects += 1;
                if cur.redirects > 2 * nodes.len() as u32 {
                    return;
                }
                let (req, op) = (cur.req, cur.op.clone());
                self.leader_hint = hint.filter(|h| *h != r.from);
                let to = self.target(rng, nodes);
                out.push(Action::Send(Request {
                    client: self.id,
                    req,
                    to,
                    op,
                }));
            }
        }
    }

    fn finish(
        &mut self,
        now: u64,
        req: u64,
        status: Status,
        value: Option<String>,
        error: Option<&str>,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::Record(ClientEvent::Return(Return {
            client: self.id,
            req,
            status,
            value,
            error: error.map(str::to_string),
            time: Some(now * 1_000_000),
        })));
        self.current = None;
        self.needs_think = true;
        let _ = now;
    }

    /// Ends the run: an operation still outstanding has an unknown outcome.
    pub fn abandon(&mut self, now: u64, out: &mut Vec<Action>) {
        if let Some(cur) = &self.current {
            let req = cur.req;
            self.finish(now, req, Status::Info, None, Some("run ended"), out);
        }
    }
}
