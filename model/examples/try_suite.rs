use raft_model::check::{run, RunOptions};
use raft_model::suite::{default_suite, suite_for_bug};
use raft_model::{Bug, Config};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let entries: Vec<(String, Config)> = if args.len() >= 6 {
        let n = |i: usize| args[i].parse::<u64>().unwrap();
        let cfg = Config {
            servers: n(0),
            clients: n(1),
            ops: n(2),
            max_term: n(3),
            max_log: n(4),
            max_crashes: n(5) as usize,
            network: args.get(6).map(|s| s.parse().unwrap()).unwrap_or_default(),
            snapshot_after: args.get(7).map(|s| s.parse().unwrap()).unwrap_or(0),
            bug: args
                .get(8)
                .filter(|s| *s != "-")
                .map(|s| s.parse().unwrap()),
            max_in_flight: args.get(9).map(|s| s.parse().unwrap()).unwrap_or(8),
            max_retries: args.get(10).map(|s| s.parse().unwrap()).unwrap_or(2),
            ..Config::default()
        };
        vec![("custom".into(), cfg)]
    } else {
        match args.first() {
            None => default_suite()
                .into_iter()
                .map(|e| (e.name.to_string(), e.config))
                .collect(),
            Some(b) => suite_for_bug(b.parse::<Bug>().unwrap())
                .into_iter()
                .map(|e| (e.name.to_string(), e.config))
                .collect(),
        }
    };
    for (name, cfg) in entries {
        let r = run(
            &cfg,
            &RunOptions {
                progress: Some(name.clone()),
                timeout: Some(std::time::Duration::from_secs(60)),
                ..Default::default()
            },
        );
        println!(
            "{} states={} unique={} depth={} secs={:.2} exhaustive={}",
            name, r.states, r.unique_states, r.max_depth, r.seconds, r.exhaustive
        );
        for p in &r.properties {
            println!(
                "   {:?} {} {:?} len={:?}",
                p.expectation,
                p.name,
                p.status,
                p.path.as_ref().map(|p| p.clone().into_actions().len())
            );
        }
    }
}
