//! `raftcheck import FORMAT FILE -o OUT`: convert another implementation's
//! trace to `raft-trace/1`.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::{Context, Result};
use raft_trace::import::etcd_raft;
use raft_trace::TraceWriter;

use crate::exit::Outcome;
use crate::output::{errln, outln};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// etcd-io/raft's TLA+ trace-validation traces (state_trace.go, ndjson).
    EtcdRaft,
}

#[derive(clap::Args)]
pub struct Args {
    /// The format of FILE.
    #[arg(value_enum)]
    format: Format,
    /// The trace to convert.
    file: PathBuf,
    /// Where to write the raft-trace/1 file.
    #[arg(short, long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<Outcome> {
    let name = args.file.display().to_string();
    let input = File::open(&args.file).with_context(|| format!("{name}: cannot open"))?;
    let conversion = match args.format {
        Format::EtcdRaft => etcd_raft::convert(BufReader::new(input), &name),
    };
    let conversion = match conversion {
        Ok(c) => c,
        Err(e) => {
            errln!("{e}");
            return Ok(Outcome::BadInput);
        }
    };
    let out = File::create(&args.out)
        .with_context(|| format!("{}: cannot create", args.out.display()))?;
    let mut writer = TraceWriter::new(out, &conversion.header)
        .with_context(|| format!("{}: cannot write", args.out.display()))?;
    for r in &conversion.records {
        writer
            .write(r)
            .with_context(|| format!("{}: cannot write", args.out.display()))?;
    }
    writer
        .flush()
        .with_context(|| format!("{}: cannot write", args.out.display()))?;
    for note in &conversion.notes {
        errln!("note: {note}");
    }
    let converted = conversion
        .stopped
        .as_ref()
        .map_or(conversion.lines, |s| s.line - 1);
    outln!(
        "{name}: converted lines 1-{converted} of {} to {} ({}, nodes {:?})",
        conversion.lines,
        args.out.display(),
        raft_conformance::count(conversion.records.len() as u64, "event"),
        conversion.header.nodes
    )?;
    if let Some(s) = &conversion.stopped {
        outln!(
            "{name}:{}: stopped: {}; the importer does not convert membership changes, so the \
             rest is not converted (every node ends with a gap: validate checks only what came before)",
            s.line,
            s.reason
        )?;
    }
    Ok(Outcome::Holds)
}
