//! `raftcheck bugs`: list the planted bugs.

use anyhow::Result;
use raft_model::suite::suite_for_bug;
use raft_model::Bug;

use crate::exit::Outcome;
use crate::output::{self, outln};

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<Outcome> {
    if args.json {
        let bugs: Vec<_> = Bug::ALL
            .iter()
            .map(|b| {
                serde_json::json!({
                    "name": b.name(),
                    "description": b.description(),
                    "expected_property": b.expected_property(),
                    "suite_config": suite_for_bug(*b).first().map(|e| e.name),
                })
            })
            .collect();
        output::json(&serde_json::json!({ "bugs": bugs }))?;
    } else {
        for b in Bug::ALL {
            let cfg = suite_for_bug(b).first().map_or("", |e| e.name);
            outln!("{:<24} {}", b.name(), b.description())?;
            outln!(
                "{:<24} caught by: {} (suite config {cfg})",
                "",
                b.expected_property()
            )?;
        }
        outln!("\nrun one with: raftcheck check --bug NAME")?;
    }
    Ok(Outcome::Holds)
}
