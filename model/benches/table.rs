//! A table of model-checking runs: states, unique states, seconds, unique
//! states per second (and its ratio to the first row, the baseline measured
//! in the same run: stateright's two-phase commit example, see
//! [`two_phase`]) and peak memory. Each configuration runs in a child
//! process so that its peak memory (VmHWM) is its own.
//!
//! `cargo bench -p raft-model --bench table` (add `-- --budget SECS` to
//! change the per-row time budget, default 60; rows that hit it are marked).

use std::process::Command;
use std::time::Duration;

use raft_model::check::{run, Engine, RunOptions, Strategy};
use raft_model::search::Search;
use raft_model::{Config, NetworkKind};
use stateright::{Checker, Model};

mod two_phase;

/// The allocator `raftcheck` uses, so that the figures are the CLI's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Row {
    name: &'static str,
    cfg: Config,
    strategy: Strategy,
    /// The DFS checker.
    engine: Engine,
    threads: usize,
    symmetry: bool,
}

/// The baseline (row 1): two-phase commit with 9 resource managers, DFS
/// on 2 threads, as stateright's own example runs it.
const BASELINE: &str = "baseline: two-phase commit, 9 RMs";

fn rows() -> Vec<Row> {
    let c3 = Config {
        servers: 3,
        clients: 1,
        ops: 1,
        max_term: 2,
        max_log: 2,
        max_retries: 1,
        max_in_flight: 4,
        ..Config::default()
    };
    let row = |name, cfg: Config, strategy, threads| Row {
        name,
        cfg,
        strategy,
        engine: Engine::Search,
        threads,
        symmetry: false,
    };
    // The same configuration on stateright's DFS checker.
    let stateright = |r: Row| Row {
        engine: Engine::Stateright,
        ..r
    };
    let elections = Config {
        clients: 0,
        ops: 0,
        max_term: 3,
        max_log: 0,
        max_in_flight: 6,
        ..c3.clone()
    };
    // The configurations of `raftcheck check --servers 3 --clients 0
    // --max-term 3 --max-crashes 1` and of the deep one (`--clients 2
    // --max-term 3 --max-log 3 --max-crashes 1 --lossy --network
    // duplicating`), the other flags at their defaults.
    let election_cli = Config {
        servers: 3,
        clients: 0,
        max_term: 3,
        max_crashes: 1,
        ..Config::default()
    };
    let deep_cli = Config {
        servers: 3,
        clients: 2,
        max_term: 3,
        max_log: 3,
        max_crashes: 1,
        lossy: true,
        network: NetworkKind::Duplicating,
        ..Config::default()
    };
    const ELECTION: &str = "election (check --clients 0 --max-term 3 --max-crashes 1)";
    const DEEP: &str = "deep (check --clients 2 --max-term 3 --max-log 3 --max-crashes 1 --lossy --network duplicating)";
    vec![
        row(ELECTION, election_cli.clone(), Strategy::Dfs, 2),
        stateright(row(ELECTION, election_cli, Strategy::Dfs, 2)),
        row(DEEP, deep_cli.clone(), Strategy::Dfs, 2),
        stateright(row(DEEP, deep_cli, Strategy::Dfs, 2)),
        row("3 srv, term 2, log 2", c3.clone(), Strategy::Dfs, 1),
        row(
            "3 srv, no clients, term 3",
            elections.clone(),
            Strategy::Dfs,
            1,
        ),
        Row {
            symmetry: true,
            ..row("3 srv, no clients, term 3", elections, Strategy::Dfs, 1)
        },
        row("3 srv, term 2, log 2", c3.clone(), Strategy::Dfs, 2),
        row("3 srv, term 2, log 2", c3.clone(), Strategy::Bfs, 1),
        row(
            "3 srv, term 2, log 2, 1 crash",
            Config {
                max_crashes: 1,
                ..c3.clone()
            },
            Strategy::Dfs,
            2,
        ),
        row(
            "3 srv, term 2, log 2, lossy",
            Config {
                lossy: true,
                ..c3.clone()
            },
            Strategy::Dfs,
            2,
        ),
        row(
            "3 srv, term 2, log 2, duplicating",
            Config {
                network: NetworkKind::Duplicating,
                ..c3.clone()
            },
            Strategy::Dfs,
            2,
        ),
        row(
            "3 srv, term 3, log 3",
            Config {
                max_term: 3,
                max_log: 3,
                ..c3.clone()
            },
            Strategy::Dfs,
            2,
        ),
        row(
            "5 srv, term 2, log 2",
            Config {
                servers: 5,
                max_in_flight: 9,
                ..c3
            },
            Strategy::Dfs,
            2,
        ),
    ]
}

fn peak_kb() -> u64 {
    raft_model::progress::proc_kb("/proc/self/status", "VmHWM:").map_or(0, |b| b / 1024)
}

fn print_baseline<C: Checker<two_phase::TwoPhase>>(
    checker: C,
    start: std::time::Instant,
    complete: bool,
) {
    println!(
        "{} {} {} {:.3} {} {}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        start.elapsed().as_secs_f64(),
        peak_kb(),
        complete
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let budget: f64 = args
        .iter()
        .position(|a| a == "--budget")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(60.0);
    // Child mode: run the baseline and print its measurements; with
    // `--search`, on raftcheck's own search instead of stateright's checker.
    if args.iter().any(|a| a == "--baseline") {
        let start = std::time::Instant::now();
        let model = two_phase::TwoPhase { rms: 9 };
        if args.iter().any(|a| a == "--search") {
            let search = Search::spawn(model, 2, None);
            let mut stopped = false;
            while !search.is_done() {
                if start.elapsed().as_secs_f64() >= budget && !stopped {
                    search.stop();
                    stopped = true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            print_baseline(search.join(), start, !stopped);
        } else {
            let checker = model
                .checker()
                .threads(2)
                .timeout(Duration::from_secs_f64(budget))
                .spawn_dfs()
                .join();
            // stateright's checker reports done at its timeout too.
            let complete = start.elapsed().as_secs_f64() < budget;
            print_baseline(checker, start, complete);
        }
        return;
    }
    // Child mode: run one row and print its measurements.
    if let Some(i) = args.iter().position(|a| a == "--row") {
        let r = &rows()[args[i + 1].parse::<usize>().expect("row index")];
        let opts = RunOptions {
            strategy: r.strategy,
            engine: r.engine,
            threads: r.threads,
            timeout: Some(Duration::from_secs_f64(budget)),
            symmetry: r.symmetry,
            progress: None,
            ..Default::default()
        };
        let res = run(&r.cfg, &opts);
        println!(
            "{} {} {} {:.3} {} {}",
            res.states,
            res.unique_states,
            res.max_depth,
            res.seconds,
            peak_kb(),
            res.exhaustive || res.violated()
        );
        return;
    }
    if args.iter().any(|a| a == "--list") {
        println!("-: {BASELINE} (--baseline)");
        for (i, r) in rows().iter().enumerate() {
            println!("{i}: {}", r.name);
        }
        return;
    }
    let me = std::env::current_exe().expect("own path");
    println!(
        "| configuration | strategy | threads | states | unique | depth | seconds | unique/s | vs baseline | peak MB | complete |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut baseline = None;
    let runs = [
        (BASELINE, "Dfs (stateright)", vec!["--baseline"]),
        (BASELINE, "Dfs", vec!["--baseline", "--search"]),
    ]
    .into_iter()
    .map(|(name, strategy, args)| {
        let args = args.into_iter().map(String::from).collect();
        (name, strategy.to_string(), 2, args)
    })
    .chain(rows().into_iter().enumerate().map(|(i, r)| {
        let strategy = format!(
            "{:?}{}{}",
            r.strategy,
            if r.symmetry { "+symmetry" } else { "" },
            match (r.strategy, r.engine) {
                (Strategy::Dfs, Engine::Stateright) => " (stateright)",
                _ => "",
            }
        );
        (
            r.name,
            strategy,
            r.threads,
            vec!["--row".to_string(), i.to_string()],
        )
    }));
    for (name, strategy, threads, which) in runs {
        let out = Command::new(&me)
            .args(&which)
            .args(["--budget", &budget.to_string()])
            .output()
            .expect("run a row");
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = text.split_whitespace().collect();
        if f.len() < 6 {
            println!(
                "| {} | failed: {} |",
                name,
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        let unique: f64 = f[1].parse().unwrap_or(0.0);
        let secs: f64 = f[3].parse().unwrap_or(1.0);
        let rate = unique / secs.max(1e-9);
        let base = *baseline.get_or_insert(rate);
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.0} | {} |",
            name,
            strategy,
            threads,
            f[0],
            f[1],
            f[2],
            secs,
            rate,
            rate / base,
            f[4].parse::<f64>().unwrap_or(0.0) / 1024.0,
            if f[5] == "true" { "yes" } else { "budget hit" }
        );
    }
}
