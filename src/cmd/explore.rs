//! `raftcheck explore`: serve stateright's web explorer for one
//! configuration of the model.

use anyhow::Result;
use raft_model::build;
use stateright::Model;

use crate::cmd::check::ModelArgs;
use crate::exit::Outcome;
use crate::output::errln;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
}

pub fn run(args: Args) -> Result<Outcome> {
    let cfg = args.model.config()?;
    errln!(
        "explorer for {} on http://{}/ (Ctrl-C to stop)",
        cfg.to_flags(),
        args.addr
    );
    let addr: std::net::SocketAddr = args
        .addr
        .parse()
        .map_err(|e| anyhow::anyhow!("--addr {:?}: {e}", args.addr))?;
    // Binding first gives a clear error instead of a panic in the server.
    drop(
        std::net::TcpListener::bind(addr)
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?,
    );
    build(&cfg).checker().serve(addr);
    Ok(Outcome::Holds)
}
