//! `raftcheck bench`: closed-loop load against a cluster's leader over
//! keep-alive HTTP/1.1 connections (one per client thread, one request
//! outstanding each); prints throughput and latency percentiles
//! (HdrHistogram). Targets: a raftkv cluster (`/v1/kv`) or an etcd cluster
//! through its JSON gateway (`--target etcd`), so both are driven by the same
//! load generator.

mod etcd;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use raftkv::node::client::Outcome as KvOutcome;
use raftkv::node::http_client::{base64, Conn};

use crate::exit::Outcome;
use crate::output::{self, errln, outln};

/// Which kind of cluster the endpoints belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// raftkv's client API (`PUT`/`GET /v1/kv/{key}`, exactly-once headers).
    Raftkv,
    /// etcd's JSON gateway (`POST /v3/kv/put`, `POST /v3/kv/range`).
    Etcd,
}

#[derive(clap::Args)]
pub struct Args {
    /// Client API addresses of the nodes.
    #[arg(long)]
    endpoints: String,
    /// What the endpoints serve.
    #[arg(long, value_enum, default_value_t = Target::Raftkv)]
    target: Target,
    /// Concurrent clients (threads, one connection each, one request outstanding).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring starts (connections warm, caches filled).
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Percentages of writes and reads: `write=50,read=50` (`write=70` alone
    /// leaves the other 30 to reads).
    #[arg(long, default_value = "write=50,read=50")]
    mix: String,
    /// Distinct keys.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Seconds to keep trying to find the leader before giving up: exit 4
    /// (unavailable).
    #[arg(long, default_value_t = 15.0, value_name = "SECONDS")]
    timeout: f64,
}

fn parse_mix(s: &str) -> Result<u32> {
    let (mut w, mut r) = (None, None);
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .context("--mix: expected write=N,read=M")?;
        let v: u32 = v.trim().parse().context("--mix: bad percentage")?;
        match k.trim() {
            "write" => w = Some(v),
            "read" => r = Some(v),
            other => bail!("--mix: unknown operation {other:?}"),
        }
    }
    // One percentage given: the other operation takes the rest.
    let (w, r) = match (w, r) {
        (Some(w), Some(r)) => (w, r),
        (Some(w), None) => (w, 100u32.saturating_sub(w)),
        (None, Some(r)) => (100u32.saturating_sub(r), r),
        (None, None) => bail!("--mix: expected write=N,read=M"),
    };
    if w + r != 100 {
        bail!("--mix: percentages must add up to 100 (got {})", w + r);
    }
    Ok(w)
}

/// Where and how to send requests.
struct Plan {
    target: Target,
    leader: String,
    /// etcd's gateway prefix (`/v3` or `/v3beta`).
    prefix: &'static str,
    write_pct: u32,
    keys: u64,
    /// The value, raw for raftkv and in base64 for etcd.
    value: String,
}

impl Plan {
    fn request(&self, key: u64, write: bool, client_id: u64, seq: u64) -> String {
        let leader = &self.leader;
        let value = &self.value;
        match (self.target, write) {
            (Target::Raftkv, true) => format!(
                "PUT /v1/kv/k{key} HTTP/1.1\r\nHost: {leader}\r\nX-Client-Id: {client_id}\r\nX-Request-Seq: {seq}\r\nContent-Length: {}\r\n\r\n{value}",
                value.len()
            ),
            (Target::Raftkv, false) => {
                format!("GET /v1/kv/k{key} HTTP/1.1\r\nHost: {leader}\r\n\r\n")
            }
            (Target::Etcd, true) => etcd::put_request(self.prefix, leader, &format!("k{key}"), value),
            (Target::Etcd, false) => etcd::range_request(self.prefix, leader, &format!("k{key}")),
        }
    }

    fn ok(&self, status: u16) -> bool {
        match self.target {
            Target::Raftkv => matches!(status, 200 | 204 | 404),
            Target::Etcd => status == 200,
        }
    }
}

struct Stats {
    hist: Histogram<u64>,
    writes: u64,
    reads: u64,
    errors: u64,
}

impl Stats {
    fn new() -> Result<Stats> {
        Ok(Stats {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            writes: 0,
            reads: 0,
            errors: 0,
        })
    }
}

/// One client: requests back to back until `stop`; counted only while
/// `measure` is set.
fn worker(
    plan: Arc<Plan>,
    id: u64,
    measure: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<Stats> {
    let mut conn = Conn::open(&plan.leader)?;
    let mut st = Stats::new()?;
    let client_id = rand::random::<u64>() >> 1;
    let mut seq = 0u64;
    let mut rng = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while !stop.load(Ordering::Relaxed) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let key = rng % plan.keys;
        let write = (rng >> 32) % 100 < u64::from(plan.write_pct);
        if write {
            seq += 1;
        }
        let req = plan.request(key, write, client_id, seq);
        let t = Instant::now();
        let r = conn.call(req.as_bytes());
        let counted = measure.load(Ordering::Relaxed);
        match r {
            Ok(s) if plan.ok(s) => {
                if counted {
                    st.hist.saturating_record(t.elapsed().as_micros() as u64);
                    if write {
                        st.writes += 1;
                    } else {
                        st.reads += 1;
                    }
                }
            }
            Ok(s) => {
                if counted {
                    st.errors += 1;
                }
                if st.errors <= 3 {
                    tracing::warn!(status = s, body = %String::from_utf8_lossy(conn.body()), "request failed");
                }
            }
            Err(_) => {
                if counted {
                    st.errors += 1;
                }
                conn = Conn::open(&plan.leader)?;
            }
        }
    }
    Ok(st)
}

/// Finds the leader (and for etcd the gateway prefix); `None` when no node
/// answered within `timeout` seconds (said on stderr).
fn find_leader(
    target: Target,
    endpoints: Vec<String>,
    timeout: f64,
) -> Result<Option<(String, &'static str)>> {
    match target {
        Target::Raftkv => {
            // One write through the redirecting client finds the leader.
            let mut c = crate::cmd::client::patient_client(endpoints, timeout, "bench")?;
            match c.put("bench-probe", "1") {
                Ok(KvOutcome::Done) => Ok(Some((c.endpoint().to_string(), ""))),
                Ok(_) => bail!("the probe write failed"),
                Err(e) => crate::cmd::client::unavailable(e, "bench").map(|_| None),
            }
        }
        Target::Etcd => {
            let e = etcd::discover(&endpoints)?;
            let mut conn = Conn::open(&e.leader)?;
            let probe = etcd::put_request(e.prefix, &e.leader, "bench-probe", &base64(b"1"));
            let s = conn.call(probe.as_bytes())?;
            if s != 200 {
                bail!(
                    "the probe write to {}{}/kv/put failed: HTTP {s}: {}",
                    e.leader,
                    e.prefix,
                    String::from_utf8_lossy(conn.body())
                );
            }
            Ok(Some((e.leader, e.prefix)))
        }
    }
}

pub fn run(args: Args) -> Result<Outcome> {
    let write_pct = parse_mix(&args.mix)?;
    let endpoints: Vec<String> = args
        .endpoints
        .split(',')
        .map(|s| s.trim().trim_start_matches("http://").to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let Some((leader, prefix)) = find_leader(args.target, endpoints, args.timeout)? else {
        return Ok(Outcome::Unavailable);
    };
    errln!(
        "bench: {:?} leader {leader}{prefix}, {}, {}s (+{}s warm-up), {}% writes",
        args.target,
        raft_conformance::count(args.clients as u64, "client"),
        args.duration,
        args.warmup,
        write_pct
    );
    let raw = "x".repeat(args.value_size);
    let value = match args.target {
        Target::Raftkv => raw,
        Target::Etcd => base64(raw.as_bytes()),
    };
    let plan = Arc::new(Plan {
        target: args.target,
        leader,
        prefix,
        write_pct,
        keys: args.keys.max(1),
        value,
    });
    let measure = Arc::new(AtomicBool::new(args.warmup <= 0.0));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..args.clients.max(1))
        .map(|i| {
            let (p, m, s) = (plan.clone(), measure.clone(), stop.clone());
            std::thread::spawn(move || worker(p, i as u64 + 1, m, s))
        })
        .collect();
    if args.warmup > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(args.warmup));
        measure.store(true, Ordering::Relaxed);
    }
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.duration.max(0.1)));
    measure.store(false, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut total = Stats::new()?;
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        total.hist.add(&s.hist)?;
        total.writes += s.writes;
        total.reads += s.reads;
        total.errors += s.errors;
    }
    let ops = total.writes + total.reads;
    let ms = |q: f64| total.hist.value_at_quantile(q) as f64 / 1000.0;
    if args.json {
        output::json(&serde_json::json!({
            "target": format!("{:?}", args.target).to_lowercase(),
            "clients": args.clients, "seconds": secs, "ops": ops,
            "writes": total.writes, "reads": total.reads, "errors": total.errors,
            "ops_per_sec": ops as f64 / secs,
            "p50_ms": ms(0.5), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
        }))?;
    } else {
        outln!(
            "clients {}: {:.0} ops/s ({}, {}, {} in {:.1}s); latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
            args.clients,
            ops as f64 / secs,
            raft_conformance::count(total.writes, "write"),
            raft_conformance::count(total.reads, "read"),
            raft_conformance::count(total.errors, "error"),
            secs,
            ms(0.5),
            ms(0.99),
            ms(0.999)
        )?;
    }
    Ok(if total.errors > 0 && ops == 0 {
        errln!(
            "bench: unavailable: every request failed ({} errors)",
            total.errors
        );
        Outcome::Unavailable
    } else {
        Outcome::Holds
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_must_add_up() {
        assert_eq!(parse_mix("write=50,read=50").unwrap(), 50);
        assert_eq!(parse_mix("write=100").unwrap(), 100);
        // One operation given: the other takes the rest.
        assert_eq!(parse_mix("write=70").unwrap(), 70);
        assert_eq!(parse_mix("read=30").unwrap(), 70);
        assert!(parse_mix("write=170").is_err());
        assert!(parse_mix("write=50,read=40").is_err());
        assert!(parse_mix("write=50,delete=50").is_err());
    }
}
