//! `raftcheck bugs`: the planted bugs of both layers, under one naming
//! scheme. A model bug (`raftcheck check --bug NAME`) and an implementation
//! bug (`raftcheck sim --bug NAME`) that are the same mistake share a name.

use std::collections::BTreeMap;

use anyhow::Result;
use raft_model::suite::suite_for_bug;
use raft_model::Bug as ModelBug;
use raftkv::bugs::Bug as ImplBug;
use serde::Serialize;

use crate::exit::Outcome;
use crate::output::{self, outln};

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// One planted bug in one layer.
#[derive(Serialize)]
struct Planted {
    /// `model` or `implementation`.
    layer: &'static str,
    /// The command that switches it on.
    command: String,
    description: &'static str,
    /// What must catch it.
    caught_by: String,
    /// A former name that still works.
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<&'static str>,
}

/// Every planted bug by name, model layer first.
fn catalogue() -> BTreeMap<&'static str, Vec<Planted>> {
    let mut bugs: BTreeMap<&'static str, Vec<Planted>> = BTreeMap::new();
    for b in ModelBug::ALL {
        let cfg = suite_for_bug(b).first().map_or("", |e| e.name);
        bugs.entry(b.name()).or_default().push(Planted {
            layer: "model",
            command: format!("raftcheck check --bug {}", b.name()),
            description: b.description(),
            caught_by: format!("{} (suite config {cfg})", b.expected_property()),
            alias: None,
        });
    }
    for b in ImplBug::ALL {
        bugs.entry(b.name()).or_default().push(Planted {
            layer: "implementation",
            command: if b.needs_membership() {
                format!("raftcheck sim --membership --bug {}", b.name())
            } else {
                format!("raftcheck sim --bug {}", b.name())
            },
            description: b.describe(),
            caught_by: if ImplBug::LIVENESS.contains(&b) {
                "raftcheck sim: the progress the healed cluster owes (no progress, too little \
                 progress)"
                    .to_string()
            } else {
                "raftcheck sim: conformance's replay or linearizability check".to_string()
            },
            alias: b.old_name(),
        });
    }
    for b in ImplBug::NODE {
        bugs.entry(b.name()).or_default().push(Planted {
            layer: "node",
            command: format!("raftcheck jepsen --node-bug {}", b.name()),
            description: b.describe(),
            caught_by: "raftcheck jepsen: the linearizability check of the clients' history"
                .to_string(),
            alias: None,
        });
    }
    bugs
}

pub fn run(args: Args) -> Result<Outcome> {
    let bugs = catalogue();
    if args.json {
        let list: Vec<_> = bugs
            .iter()
            .map(|(name, layers)| serde_json::json!({ "name": name, "layers": layers }))
            .collect();
        output::json(&serde_json::json!({ "bugs": list }))?;
        return Ok(Outcome::Holds);
    }
    for (name, layers) in &bugs {
        outln!("{name}")?;
        for p in layers {
            outln!("  {:<15} {}", p.layer, p.description)?;
            outln!(
                "  {:<15} run: {}; caught by: {}",
                "",
                p.command,
                p.caught_by
            )?;
            if let Some(old) = p.alias {
                outln!("  {:<15} formerly {old} (still accepted)", "")?;
            }
        }
    }
    Ok(Outcome::Holds)
}
