//! `raftcheck bench`: closed-loop load against a raftkv cluster's leader
//! over keep-alive HTTP/1.1 connections (one per client thread); prints
//! throughput and latency percentiles (HdrHistogram).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use raftkv::node::client::{Client, Outcome as KvOutcome};

use crate::exit::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// Client API addresses of the nodes.
    #[arg(long)]
    endpoints: String,
    /// Concurrent clients (threads, one connection each, one request outstanding).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Percentages of writes and reads: `write=50,read=50`.
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
    let (w, r) = (w.unwrap_or(0), r.unwrap_or(0));
    if w + r != 100 {
        bail!("--mix: percentages must add up to 100 (got {})", w + r);
    }
    Ok(w)
}

/// One keep-alive connection.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: &str) -> Result<Conn> {
        let s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Conn {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// Sends a request and returns the status code.
    fn call(&mut self, req: &[u8]) -> Result<u16> {
        self.writer.write_all(req)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse()?;
                }
            }
        }
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body)?;
        Ok(status)
    }
}

struct Stats {
    hist: Histogram<u64>,
    writes: u64,
    reads: u64,
    errors: u64,
}

fn worker(
    leader: String,
    id: u64,
    write_pct: u32,
    keys: u64,
    value: Arc<String>,
    stop: Arc<AtomicBool>,
) -> Result<Stats> {
    let mut conn = Conn::open(&leader)?;
    let mut st = Stats {
        hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        writes: 0,
        reads: 0,
        errors: 0,
    };
    let client_id = rand::random::<u64>() >> 1;
    let mut seq = 0u64;
    let mut rng = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while !stop.load(Ordering::Relaxed) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let key = rng % keys;
        let write = (rng >> 32) % 100 < u64::from(write_pct);
        let req = if write {
            seq += 1;
            format!(
                "PUT /v1/kv/k{key} HTTP/1.1\r\nHost: {leader}\r\nX-Client-Id: {client_id}\r\nX-Request-Seq: {seq}\r\nContent-Length: {}\r\n\r\n{value}",
                value.len()
            )
        } else {
            format!("GET /v1/kv/k{key} HTTP/1.1\r\nHost: {leader}\r\n\r\n")
        };
        let t = Instant::now();
        match conn.call(req.as_bytes()) {
            Ok(200 | 204 | 404) => {
                st.hist.saturating_record(t.elapsed().as_micros() as u64);
                if write {
                    st.writes += 1;
                } else {
                    st.reads += 1;
                }
            }
            Ok(_) => st.errors += 1,
            Err(_) => {
                st.errors += 1;
                conn = Conn::open(&leader)?;
            }
        }
    }
    Ok(st)
}

pub fn run(args: Args) -> Result<Outcome> {
    let write_pct = parse_mix(&args.mix)?;
    let endpoints: Vec<String> = args
        .endpoints
        .split(',')
        .map(|s| s.trim().trim_start_matches("http://").to_string())
        .filter(|s| !s.is_empty())
        .collect();
    // Find the leader with one write.
    let mut c = Client::new(endpoints);
    if c.put("bench-probe", "1")? != KvOutcome::Done {
        bail!("the probe write failed");
    }
    let leader = c.endpoint().to_string();
    eprintln!(
        "bench: leader {leader}, {} clients, {}s, {}% writes",
        args.clients, args.duration, write_pct
    );
    let value = Arc::new("x".repeat(args.value_size));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..args.clients.max(1))
        .map(|i| {
            let (l, v, s) = (leader.clone(), value.clone(), stop.clone());
            let keys = args.keys.max(1);
            std::thread::spawn(move || worker(l, i as u64 + 1, write_pct, keys, v, s))
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(args.duration.max(0.1)));
    stop.store(true, Ordering::Relaxed);
    let mut total = Stats {
        hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        writes: 0,
        reads: 0,
        errors: 0,
    };
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        total.hist.add(&s.hist)?;
        total.writes += s.writes;
        total.reads += s.reads;
        total.errors += s.errors;
    }
    let secs = start.elapsed().as_secs_f64();
    let ops = total.writes + total.reads;
    let ms = |q: f64| total.hist.value_at_quantile(q) as f64 / 1000.0;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "clients": args.clients, "seconds": secs, "ops": ops,
                "writes": total.writes, "reads": total.reads, "errors": total.errors,
                "ops_per_sec": ops as f64 / secs,
                "p50_ms": ms(0.5), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
            })
        );
    } else {
        println!(
            "clients {}: {:.0} ops/s ({} writes, {} reads, {} errors in {:.1}s); latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
            args.clients,
            ops as f64 / secs,
            total.writes,
            total.reads,
            total.errors,
            secs,
            ms(0.5),
            ms(0.99),
            ms(0.999)
        );
    }
    Ok(if total.errors > 0 && ops == 0 {
        Outcome::Inconclusive
    } else {
        Outcome::Holds
    })
}
