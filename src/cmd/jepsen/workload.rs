//! The clients: concurrent logical clients doing reads, writes and cas over
//! a few keys, recording every invoke and completion in real-time order.
//! As in Jepsen, an operation whose outcome is unknown (a timeout, a lost
//! connection) is `info`, and its logical client is never used again: the
//! worker thread goes on as a new client.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use raft_trace::{ClientEvent, Header, Invoke, Observes, Op, Return, Status, TraceWriter};
use raftkv::node::client::{Client, Outcome as KvOutcome};

/// Why an operation has no answer.
#[derive(Debug)]
pub enum OpError {
    /// The request never reached a node: it certainly did not happen.
    NotSent(String),
    /// It may have happened.
    Unknown(String),
}

/// A store's client, as the workers drive it.
pub trait KvOps: Send {
    /// Whether a request can be sent now (a connection to some node is
    /// open). A worker invokes nothing while this is false, so that an
    /// operation that could never have been sent does not enter the
    /// history.
    fn ready(&mut self) -> bool {
        true
    }
    fn get(&mut self, key: &str) -> Result<KvOutcome, OpError>;
    fn put(&mut self, key: &str, value: &str) -> Result<KvOutcome, OpError>;
    fn cas(&mut self, key: &str, from: Option<&str>, to: &str) -> Result<KvOutcome, OpError>;
}

/// raftkv's own client: leader discovery, and retries that keep the
/// session's request number (at most once), so any error is `Unknown`.
impl KvOps for Client {
    fn get(&mut self, key: &str) -> Result<KvOutcome, OpError> {
        Client::get(self, key).map_err(|e| OpError::Unknown(short(&e.to_string())))
    }
    fn put(&mut self, key: &str, value: &str) -> Result<KvOutcome, OpError> {
        Client::put(self, key, value).map_err(|e| OpError::Unknown(short(&e.to_string())))
    }
    fn cas(&mut self, key: &str, from: Option<&str>, to: &str) -> Result<KvOutcome, OpError> {
        Client::cas(self, key, from, to).map_err(|e| OpError::Unknown(short(&e.to_string())))
    }
}
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The history file, written as events happen: the order of its lines is
/// the real-time order the checker relies on.
pub struct Recorder {
    origin: Instant,
    out: Mutex<TraceWriter<File>>,
    next_client: AtomicU64,
    pub counts: [AtomicU64; 3],
}

impl Recorder {
    pub fn create(path: &Path, origin: Instant, implementation: &str) -> Result<Recorder> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let header = Header::new(implementation, vec![], Observes::default());
        Ok(Recorder {
            origin,
            out: Mutex::new(TraceWriter::new(file, &header)?),
            next_client: AtomicU64::new(1),
            counts: Default::default(),
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    pub fn new_client(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::SeqCst)
    }

    fn record(&self, ev: ClientEvent) -> Result<()> {
        let mut w = self.out.lock().expect("history lock");
        let ev = match ev {
            ClientEvent::Invoke(mut i) => {
                i.time = Some(self.now_ns());
                ClientEvent::Invoke(i)
            }
            ClientEvent::Return(mut r) => {
                r.time = Some(self.now_ns());
                let slot = match r.status {
                    Status::Ok => 0,
                    Status::Fail => 1,
                    Status::Info => 2,
                };
                self.counts[slot].fetch_add(1, Ordering::Relaxed);
                ClientEvent::Return(r)
            }
        };
        w.write_client(&ev)?;
        Ok(())
    }

    pub fn flush(&self) -> Result<()> {
        self.out.lock().expect("history lock").flush()?;
        Ok(())
    }
}

/// What the workers do.
#[derive(Clone)]
pub struct Workload {
    pub target: super::Target,
    pub endpoints: Vec<String>,
    pub keys: u64,
    pub op_timeout: Duration,
    /// Pause between a client's operations.
    pub think: Duration,
}

fn key_name(k: u64) -> String {
    format!("k{k}")
}

/// One logical client: its connection and session with the store, its
/// request numbers, and the node it was bound to.
struct Session {
    id: u64,
    client: Box<dyn KvOps>,
    req: u64,
    node: u64,
}

impl Workload {
    fn session(&self, rec: &Recorder, worker: usize) -> Session {
        // Each worker starts at its own node, as Jepsen binds a process to
        // a node; the client follows redirects to the leader from there.
        let n = self.endpoints.len();
        let mut endpoints = self.endpoints.clone();
        endpoints.rotate_left(worker % n);
        let client: Box<dyn KvOps> = match self.target {
            super::Target::Raftkv => {
                let mut c = Client::new(endpoints);
                c.deadline = self.op_timeout;
                c.request_timeout = self.op_timeout;
                Box::new(c)
            }
            super::Target::Etcd => {
                Box::new(super::etcd::EtcdClient::new(endpoints, self.op_timeout))
            }
        };
        Session {
            id: rec.new_client(),
            client,
            req: 0,
            node: (worker % n) as u64 + 1,
        }
    }

    /// Runs one worker until `stop`.
    pub fn worker(
        &self,
        rec: &Recorder,
        worker: usize,
        seed: u64,
        stop: &AtomicBool,
    ) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(seed ^ (worker as u64).wrapping_mul(0x9e37_79b9));
        let mut s = self.session(rec, worker);
        let mut seen: Vec<Option<String>> = vec![None; self.keys as usize];
        while !stop.load(Ordering::SeqCst) {
            if !s.client.ready() {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let k = rng.random_range(0..self.keys);
            s.req += 1;
            let value = format!("{}-{}", s.id, s.req);
            let dice = rng.random_range(0..100);
            let op = if dice < 50 {
                Op::Read { key: key_name(k) }
            } else if dice < 80 {
                Op::Write {
                    key: key_name(k),
                    value,
                }
            } else {
                Op::Cas {
                    key: key_name(k),
                    from: seen[k as usize].clone(),
                    to: value,
                }
            };
            let status = self.invoke(rec, &mut s, op, &mut seen[k as usize])?;
            if status == Status::Info {
                // Unknown outcome: this client may still be in flight.
                s = self.session(rec, worker);
            }
            if !self.think.is_zero() {
                std::thread::sleep(self.think);
            }
        }
        Ok(())
    }

    /// Invokes `op` as a new client of its own and records it; returns
    /// whether it completed `ok`.
    pub fn invoke_once(&self, rec: &Recorder, worker: usize, op: Op) -> Result<bool> {
        let mut s = self.session(rec, worker);
        s.req = 1;
        let mut seen = None;
        Ok(self.invoke(rec, &mut s, op, &mut seen)? == Status::Ok)
    }

    /// Invokes `op`, records its outcome and returns it.
    fn invoke(
        &self,
        rec: &Recorder,
        s: &mut Session,
        op: Op,
        seen: &mut Option<String>,
    ) -> Result<Status> {
        rec.record(ClientEvent::Invoke(Invoke {
            client: s.id,
            req: s.req,
            node: Some(s.node),
            op: op.clone(),
            time: None,
        }))?;
        let result = match &op {
            Op::Read { key } => s.client.get(key),
            Op::Write { key, value } => s.client.put(key, value),
            Op::Cas { key, from, to } => s.client.cas(key, from.as_deref(), to),
            Op::Delete { .. } | Op::Append { .. } => {
                unreachable!("the workload only reads, writes and cas")
            }
        };
        let is_read = matches!(op, Op::Read { .. });
        let (status, value, error) = match result {
            Ok(KvOutcome::Value(v)) => {
                *seen = Some(v.clone());
                (Status::Ok, Some(v), None)
            }
            Ok(KvOutcome::NotFound) => {
                *seen = None;
                (Status::Ok, None, None)
            }
            Ok(KvOutcome::Done) => {
                match &op {
                    Op::Write { value, .. } => *seen = Some(value.clone()),
                    Op::Cas { to, .. } => *seen = Some(to.clone()),
                    _ => {}
                }
                (Status::Ok, None, None)
            }
            Ok(KvOutcome::CasFailed(cur)) => {
                *seen = cur;
                (
                    Status::Fail,
                    None,
                    Some("cas precondition failed".to_string()),
                )
            }
            // A reply the workload never provokes: the outcome is unknown.
            Ok(other) => (
                Status::Info,
                None,
                Some(format!("unexpected reply {other:?}")),
            ),
            // A read that did not complete changed nothing; nor did a
            // request that reached no node. But a failed cas tells the
            // checker that the key did not hold `from` (its precondition
            // was evaluated), which a cas that was never sent does not
            // say: it can only be `info`.
            Err(OpError::NotSent(e)) if !matches!(op, Op::Cas { .. }) => {
                (Status::Fail, None, Some(short(&e)))
            }
            Err(OpError::NotSent(e)) => (Status::Info, None, Some(short(&e))),
            Err(OpError::Unknown(e)) if is_read => (Status::Fail, None, Some(short(&e))),
            Err(OpError::Unknown(e)) => (Status::Info, None, Some(short(&e))),
        };
        rec.record(ClientEvent::Return(Return {
            client: s.id,
            req: s.req,
            status,
            value,
            error,
            time: None,
        }))?;
        Ok(status)
    }
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}
