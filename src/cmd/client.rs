//! `raftcheck client`: get, put, delete and cas against a raftkv cluster,
//! with leader discovery and retries (same client id and seq).

use std::time::Duration;

use anyhow::{bail, Result};
use raftkv::node::client::{Client, ClientError, Outcome as KvOutcome, Retrying};

use crate::exit::Outcome;
use crate::output::{errln, outln};

#[derive(clap::Args)]
pub struct Args {
    /// Client API addresses of the nodes: `127.0.0.1:8001,127.0.0.1:8002`.
    #[arg(long, global = true, default_value = "127.0.0.1:8001")]
    endpoints: String,
    /// Seconds to keep trying the endpoints before giving up: exit 4
    /// (unavailable).
    #[arg(long, global = true, default_value_t = 15.0, value_name = "SECONDS")]
    timeout: f64,
    #[command(subcommand)]
    op: Op,
}

#[derive(clap::Subcommand)]
enum Op {
    /// Print the value of KEY (exit 1 when absent).
    Get { key: String },
    /// Set KEY to VALUE.
    Put { key: String, value: String },
    /// Remove KEY.
    Delete { key: String },
    /// Set KEY to TO if it holds FROM (`--from-absent` for an absent key); exit 1 otherwise.
    Cas {
        key: String,
        #[arg(
            long,
            conflicts_with = "from_absent",
            required_unless_present = "from_absent"
        )]
        from: Option<String>,
        #[arg(long)]
        from_absent: bool,
        #[arg(long)]
        to: String,
    },
    /// Hand leadership to node N (leader transfer); exit 1 when refused.
    Transfer {
        #[arg(long, value_name = "N")]
        to: u64,
    },
}

pub fn run(args: Args) -> Result<Outcome> {
    let endpoints: Vec<String> = args
        .endpoints
        .split(',')
        .map(|s| {
            s.trim()
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .collect();
    if endpoints.is_empty() {
        bail!("--endpoints: empty");
    }
    let mut c = patient_client(endpoints, args.timeout, "client")?;
    let r = match &args.op {
        Op::Get { key } => c.get(key),
        Op::Put { key, value } => c.put(key, value),
        Op::Delete { key } => c.delete(key),
        Op::Cas { key, from, to, .. } => c.cas(key, from.as_deref(), to),
        Op::Transfer { to } => c.transfer(*to),
    };
    let r = match r {
        Err(e) => return unavailable(e, "client"),
        Ok(r) => r,
    };
    Ok(match r {
        KvOutcome::Value(v) => {
            outln!("{v}")?;
            Outcome::Holds
        }
        KvOutcome::Done => {
            outln!("OK")?;
            Outcome::Holds
        }
        KvOutcome::NotFound => {
            errln!("not found");
            Outcome::Violated
        }
        KvOutcome::CasFailed(cur) => {
            match cur {
                // Quoted, so that an empty value or spaces show.
                Some(v) => errln!("cas failed: current value {v:?}"),
                None => errln!("cas failed: key absent"),
            }
            Outcome::Violated
        }
        KvOutcome::Stale => {
            errln!("stale request");
            Outcome::Violated
        }
        KvOutcome::Accepted(body) => {
            outln!("{}", body.trim())?;
            Outcome::Holds
        }
        KvOutcome::Refused(e) => {
            errln!("refused: {e}");
            Outcome::Violated
        }
    })
}

/// A client that gives up after `timeout` seconds and says on stderr, as
/// `who`, what it is trying while no node answers: after the first failed
/// attempt, then every few seconds.
pub fn patient_client(endpoints: Vec<String>, timeout: f64, who: &'static str) -> Result<Client> {
    if !(timeout > 0.0 && timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds");
    }
    let mut c = Client::new(endpoints);
    c.deadline = Duration::from_secs_f64(timeout);
    c.request_timeout = c.request_timeout.min(c.deadline);
    let mut first = true;
    c.on_retry = Some(Box::new(move |r: &Retrying| {
        if std::mem::take(&mut first) {
            errln!(
                "{who}: no answer yet from {} ({}); retrying for up to {:.1} s (--timeout)",
                r.endpoints.join(","),
                r.last,
                r.deadline.as_secs_f64()
            );
        } else {
            errln!(
                "{who}: still trying {}: {} attempts in {:.1} s of {:.1} s; last: {}",
                r.endpoints.join(","),
                r.attempts,
                r.elapsed.as_secs_f64(),
                r.deadline.as_secs_f64(),
                r.last
            );
        }
    }));
    Ok(c)
}

/// Exit 4 with a line on stderr when no node answered in time; any other
/// error as usual.
pub fn unavailable(e: ClientError, who: &str) -> Result<Outcome> {
    match e {
        ClientError::GaveUp {
            attempts,
            elapsed,
            last,
        } => {
            errln!(
                "{who}: unavailable: no node answered within {:.1} s ({attempts} attempts); \
                 last: {last}",
                elapsed.as_secs_f64()
            );
            Ok(Outcome::Unavailable)
        }
        e => Err(e.into()),
    }
}
