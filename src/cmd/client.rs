//! `raftcheck client`: get, put, delete and cas against a raftkv cluster,
//! with leader discovery and retries (same client id and seq); leader
//! transfer; membership (`members list|add|promote|remove`, as etcdctl's
//! `member` commands).

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
    /// The cluster's members: list, add, promote, remove (one change at a
    /// time; each waits until the change is committed and applied on the
    /// leader; exit 1 when the leader refuses it).
    Members {
        #[command(subcommand)]
        op: MembersOp,
    },
}

#[derive(clap::Subcommand)]
enum MembersOp {
    /// List the members of the leader's configuration with their addresses.
    List {
        /// Print the configuration as JSON (as `GET /v1/admin/members`).
        #[arg(long)]
        json: bool,
    },
    /// Add node ID, then start it with `raftcheck node --join` (the command
    /// is printed); a voter at once, or a learner (`--learner`) that
    /// receives the log without voting until promoted.
    Add {
        #[arg(value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
        /// The new node's peer (Raft) address, IP:PORT.
        #[arg(long, value_name = "ADDR")]
        peer_addr: String,
        /// The new node's client API address, HOST:PORT.
        #[arg(long, value_name = "ADDR")]
        client_addr: String,
        /// Add it as a learner (non-voting).
        #[arg(long)]
        learner: bool,
    },
    /// Make learner ID a voter.
    Promote {
        #[arg(value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
    },
    /// Remove node ID (a voter or a learner; the leader too: it steps down
    /// once its removal is committed). Then stop the removed node's
    /// process: a removed follower is not told (the leader stops sending to
    /// it at once), so it keeps asking for pre-votes, which the members
    /// refuse.
    Remove {
        #[arg(value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
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
    if let Op::Members { op } = &args.op {
        return members(&mut c, op);
    }
    let r = match &args.op {
        Op::Get { key } => c.get(key),
        Op::Put { key, value } => c.put(key, value),
        Op::Delete { key } => c.delete(key),
        Op::Cas { key, from, to, .. } => c.cas(key, from.as_deref(), to),
        Op::Transfer { to } => c.transfer(*to),
        Op::Members { .. } => unreachable!("handled above"),
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

/// `raftcheck client members ...`.
fn members(c: &mut Client, op: &MembersOp) -> Result<Outcome> {
    let r = match op {
        MembersOp::List { .. } => c.members(),
        MembersOp::Add {
            id,
            peer_addr,
            client_addr,
            learner,
        } => c.add_member(*id, peer_addr, client_addr, *learner),
        MembersOp::Promote { id } => c.promote_member(*id),
        MembersOp::Remove { id } => c.remove_member(*id),
    };
    let body = match r {
        Err(e) => return unavailable(e, "client"),
        Ok(KvOutcome::Value(body)) => body,
        Ok(KvOutcome::Refused(e)) => {
            errln!("refused: {e}");
            return Ok(Outcome::Violated);
        }
        Ok(other) => bail!("unexpected answer from the cluster: {other:?}"),
    };
    let config: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| anyhow::anyhow!("the cluster's configuration is not JSON ({e}): {body}"))?;
    match op {
        MembersOp::List { json: true } => {
            crate::output::json(&config)?;
            return Ok(Outcome::Holds);
        }
        MembersOp::List { json: false } => {}
        MembersOp::Add { id, learner, .. } => {
            let role = if *learner { "learner" } else { "voter" };
            outln!("added node {id} as a {role}")?;
        }
        MembersOp::Promote { id } => outln!("promoted node {id} to voter")?,
        MembersOp::Remove { id } => outln!("removed node {id}")?,
    }
    print_members(&config)?;
    if let MembersOp::Add { id, .. } = op {
        if let Some(cmd) = join_command(&config, *id) {
            outln!("start it (unless it runs already): {cmd}")?;
        }
    }
    Ok(Outcome::Holds)
}

/// The members table of a configuration (`GET /v1/admin/members`' JSON).
pub fn print_members(config: &serde_json::Value) -> Result<(), crate::output::OutputError> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    outln!("{:<4} {:<8} {:<22} CLIENT ADDR", "ID", "ROLE", "PEER ADDR")?;
    for m in config["members"].as_array().into_iter().flatten() {
        outln!(
            "{:<4} {:<8} {:<22} {}",
            m["id"].as_u64().map_or("?".to_string(), |n| n.to_string()),
            s(&m["role"]),
            s(&m["peer_addr"]),
            s(&m["client_addr"])
        )?;
    }
    let leader = match config["leader"].as_u64() {
        Some(l) => format!("node {l}"),
        None => "unknown".to_string(),
    };
    outln!(
        "configuration at index {} ({}); leader {leader}",
        config["index"],
        if config["committed"] == true {
            "committed"
        } else {
            "not committed yet"
        }
    )
}

/// The command that starts node `id` joining the cluster of `config`.
fn join_command(config: &serde_json::Value, id: u64) -> Option<String> {
    let members = config["members"].as_array()?;
    let mut peers = Vec::new();
    let mut clients = Vec::new();
    let mut own_client = None;
    for m in members {
        let n = m["id"].as_u64()?;
        if let Some(p) = m["peer_addr"].as_str() {
            peers.push(format!("{n}={p}"));
        }
        if let Some(c) = m["client_addr"].as_str() {
            clients.push(format!("{n}={c}"));
            if n == id {
                own_client = Some(c.to_string());
            }
        }
    }
    Some(format!(
        "raftcheck node --join --id {id} --peers {} --client-addr {} --client-peers {} --data-dir DIR",
        peers.join(","),
        own_client?,
        clients.join(",")
    ))
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
