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
use raftkv::node::client::{Client, ClientError, Outcome as KvOutcome};
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
    client: Client,
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
        let mut client = Client::new(endpoints);
        client.deadline = self.op_timeout;
        client.request_timeout = self.op_timeout;
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
            Op::Delete { key } => s.client.delete(key),
            Op::Append { .. } => unreachable!("the workload does not append"),
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
            // A read that did not complete changed nothing.
            Err(e) if is_read => (Status::Fail, None, Some(short(&e))),
            Err(e) => (Status::Info, None, Some(short(&e))),
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

fn short(e: &ClientError) -> String {
    let s = e.to_string();
    s.chars().take(200).collect()
}
