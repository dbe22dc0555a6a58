//! `raftcheck client`: get, put, delete and cas against a raftkv cluster,
//! with leader discovery and retries (same client id and seq).

use anyhow::{bail, Result};
use raftkv::node::client::{Client, Outcome as KvOutcome};

use crate::exit::Outcome;
use crate::output::{errln, outln};

#[derive(clap::Args)]
pub struct Args {
    /// Client API addresses of the nodes: `127.0.0.1:8001,127.0.0.1:8002`.
    #[arg(long, global = true, default_value = "127.0.0.1:8001")]
    endpoints: String,
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
    let mut c = Client::new(endpoints);
    let r = match &args.op {
        Op::Get { key } => c.get(key)?,
        Op::Put { key, value } => c.put(key, value)?,
        Op::Delete { key } => c.delete(key)?,
        Op::Cas { key, from, to, .. } => c.cas(key, from.as_deref(), to)?,
        Op::Transfer { to } => c.transfer(*to)?,
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
            errln!("cas failed: current value {cur:?}");
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
