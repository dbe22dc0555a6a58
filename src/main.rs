//! `raftcheck`: one CLI for the Raft model checker, the trace validator, the
//! linearizability checker and the key-value store.
//!
//! Conventions every subcommand follows (see the README):
//! exit 0 = checked and holds, 1 = a violation was found, 2 = bad usage or bad
//! input, 3 = inconclusive (a budget ran out), 4 = unavailable (no node of a
//! cluster answered in time, or none is left running). Results go to stdout (text, or
//! one JSON object with `--json`); progress and logs go to stderr. A closed
//! stdout (`| head -1`) ends the process quietly with exit 141.

mod cmd;
mod exit;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::Outcome;

/// The model checker and the trace replay allocate and free a small state for
/// almost every step they take, from two threads; mimalloc serves that faster
/// than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "raftcheck", version, about = "Make Raft implementations provably boring", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level for stderr diagnostics (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn", env = "RAFTCHECK_LOG", value_parser = log_level)]
    log: String,
}

#[derive(Subcommand)]
enum Command {
    /// Model-check the Raft specification (the default suite, or one configuration).
    Check(cmd::check::Args),
    /// Serve stateright's web explorer for one configuration of the model.
    Explore(cmd::explore::Args),
    /// List the planted bugs that `check --bug NAME` switches on.
    Bugs(cmd::bugs::Args),
    /// Validate raft-trace/1 runs against the invariants (or only their format).
    Validate(cmd::validate::Args),
    /// Run the raftkv core in the deterministic simulator over many seeds.
    Sim(cmd::sim::Args),
    /// Convert another implementation's trace to raft-trace/1 (etcd-raft).
    Import(cmd::import::Args),
    /// Check client histories for linearizability (Porcupine's algorithm).
    Linearize(cmd::linearize::Args),
    /// Run one node of a raftkv cluster.
    Node(cmd::node::Args),
    /// Start a local raftkv cluster of node processes until Ctrl-C; add or
    /// remove nodes of a running one.
    Cluster(cmd::cluster::Args),
    /// Talk to a raftkv cluster: get, put, delete, cas, transfer, members.
    Client(cmd::client::Args),
    /// Load a raftkv cluster: throughput and latency percentiles.
    Bench(cmd::bench::Args),
    /// Jepsen-style fault experiment on real node processes: clients, a
    /// nemesis, a linearizability check and an HTML report.
    Jepsen(cmd::jepsen::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout with success; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Outcome::BadInput.code()
            } else {
                0
            });
        }
    };
    init_logging(&cli.log);
    let result = match cli.command {
        Command::Validate(args) => cmd::validate::run(args),
        Command::Sim(args) => cmd::sim::run_cmd(args),
        Command::Check(args) => cmd::check::run_cmd(args),
        Command::Explore(args) => cmd::explore::run(args),
        Command::Bugs(args) => cmd::bugs::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Linearize(args) => cmd::linearize::run(args),
        Command::Node(args) => cmd::node::run(args),
        Command::Cluster(args) => cmd::cluster::run(args),
        Command::Client(args) => cmd::client::run(args),
        Command::Jepsen(args) => cmd::jepsen::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    };
    match result {
        Ok(outcome) => ExitCode::from(outcome.code()),
        // The reader of stdout went away: nothing to say, and nobody to say it to.
        Err(e) if output::closed_early(&e) => ExitCode::from(output::CLOSED_EXIT_CODE),
        Err(e) => {
            // Every error that reaches here is bad usage, bad input or an
            // I/O failure on the user's files.
            output::errln!("raftcheck: {}", output::error_line(&e));
            ExitCode::from(exit::Outcome::BadInput.code())
        }
    }
}

/// A `--log` level: one of the five names, or a tracing filter directive
/// that names a target (`raftkv=debug`).
fn log_level(s: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let known = |l: &str| LEVELS.contains(&l.to_ascii_lowercase().as_str());
    let ok = s.split(',').all(|d| match d.rsplit_once('=') {
        Some((target, level)) => !target.is_empty() && known(level),
        None => known(d),
    });
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected one of {} (or TARGET=LEVEL, comma-separated)",
            LEVELS.join(", ")
        ))
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not in log files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // On a closed stderr, drop the log line; the fallback would panic.
        .log_internal_errors(false)
        .with_target(false)
        .init();
}
