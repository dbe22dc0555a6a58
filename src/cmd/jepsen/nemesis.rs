//! The nemesis: a seeded schedule of faults, each applied for a while and
//! then healed, recorded with its times for the report.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::cluster::Cluster;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL one node; restart it when healed.
    Kill,
    /// SIGKILL the node that leads; restart it when healed.
    KillLeader,
    /// SIGSTOP one node; SIGCONT when healed.
    Pause,
    /// Cut every link between a minority and the majority, both ways.
    Partition,
    /// Cut every link into the leader: it can send but hears nothing.
    Oneway,
    /// SIGKILL every node; restart them all when healed.
    KillAll,
    /// Remove a node (the leader too) from the configuration through the
    /// admin API; add it back, with the state it kept, when healed
    /// (raftkv only; not part of `all`).
    Member,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::Kill,
        Fault::KillLeader,
        Fault::Pause,
        Fault::Partition,
        Fault::Oneway,
        Fault::KillAll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::KillLeader => "kill-leader",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
            Fault::Oneway => "oneway",
            Fault::KillAll => "kill-all",
            Fault::Member => "member",
        }
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Fault::ALL
            .into_iter()
            .chain([Fault::Member])
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Fault::ALL
                    .iter()
                    .chain([&Fault::Member])
                    .map(|f| f.name())
                    .collect();
                format!(
                    "unknown fault {s:?}; known: {}, all, none",
                    names.join(", ")
                )
            })
    }
}

/// `--nemesis`: a comma-separated list, `all` or `none`.
pub fn parse_list(s: &str) -> Result<Vec<Fault>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "all" => out.extend(Fault::ALL),
            "none" => {}
            p => match p.parse() {
                Ok(f) => out.push(f),
                Err(e) => bail!("--nemesis: {e}"),
            },
        }
    }
    out.dedup();
    Ok(out)
}

/// One fault as it happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRecord {
    pub fault: Fault,
    /// The nodes it hit (for a partition: the minority side).
    pub nodes: Vec<u64>,
    /// What was done, in words.
    pub detail: String,
    /// Nanoseconds since the run's origin.
    pub start_ns: u64,
    pub end_ns: Option<u64>,
}

/// The seeded schedule: which fault next, and for how long.
pub struct Nemesis {
    rng: StdRng,
    faults: Vec<Fault>,
    /// Quiet time between faults, and how long a fault lasts: each drawn
    /// uniformly from [interval / 2, interval * 3 / 2].
    pub interval: Duration,
}

impl Nemesis {
    pub fn new(seed: u64, faults: Vec<Fault>, interval: Duration) -> Self {
        Nemesis {
            rng: StdRng::seed_from_u64(seed),
            faults,
            interval,
        }
    }

    pub fn is_idle(&self) -> bool {
        self.faults.is_empty()
    }

    pub fn next_pause(&mut self) -> Duration {
        let ms = self.interval.as_millis().max(2) as u64;
        Duration::from_millis(self.rng.random_range(ms / 2..=ms * 3 / 2))
    }

    /// Applies the next fault of the schedule.
    pub fn strike(&mut self, cluster: &mut Cluster, start_ns: u64) -> Option<FaultRecord> {
        let fault = *self.faults.choose(&mut self.rng)?;
        let n = cluster.nodes.len() as u64;
        let ids: Vec<u64> = (1..=n).collect();
        let (nodes, detail) = match fault {
            Fault::Kill => {
                let id = *ids.choose(&mut self.rng)?;
                cluster.kill(id);
                (vec![id], format!("killed node {id}"))
            }
            Fault::KillLeader => match cluster.leader() {
                Some(id) => {
                    cluster.kill(id);
                    (vec![id], format!("killed node {id}, the leader"))
                }
                None => (vec![], "no leader to kill".to_string()),
            },
            Fault::Pause => {
                let id = *ids.choose(&mut self.rng)?;
                cluster.pause(id);
                (vec![id], format!("paused node {id}"))
            }
            Fault::Partition => {
                let mut shuffled = ids.clone();
                for i in (1..shuffled.len()).rev() {
                    let j = self.rng.random_range(0..=i);
                    shuffled.swap(i, j);
                }
                let minority: Vec<u64> = shuffled[..(n as usize - 1) / 2].to_vec();
                for &a in &minority {
                    for &b in ids.iter().filter(|b| !minority.contains(b)) {
                        cluster.cut(a, b);
                        cluster.cut(b, a);
                    }
                }
                let detail = format!("partitioned {minority:?} from the rest");
                (minority, detail)
            }
            Fault::Oneway => {
                let target = cluster
                    .leader()
                    .unwrap_or_else(|| *ids.choose(&mut self.rng).unwrap_or(&1));
                for &from in ids.iter().filter(|&&f| f != target) {
                    cluster.cut(from, target);
                }
                (
                    vec![target],
                    format!("cut every link into node {target} (it can still send)"),
                )
            }
            Fault::KillAll => {
                for &id in &ids {
                    cluster.kill(id);
                }
                (ids.clone(), "killed every node".to_string())
            }
            Fault::Member => {
                let id = *ids.choose(&mut self.rng)?;
                if cluster.remove_member(id) {
                    (
                        vec![id],
                        format!("removed node {id} from the configuration"),
                    )
                } else {
                    (
                        vec![],
                        format!("could not remove node {id} (no leader, or refused)"),
                    )
                }
            }
        };
        Some(FaultRecord {
            fault,
            nodes,
            detail,
            start_ns,
            end_ns: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_unknown_names_are_refused() {
        assert_eq!(parse_list("all").unwrap(), Fault::ALL.to_vec());
        assert_eq!(parse_list("none").unwrap(), vec![]);
        assert_eq!(
            parse_list("kill, pause").unwrap(),
            vec![Fault::Kill, Fault::Pause]
        );
        let e = parse_list("kill,explode").unwrap_err().to_string();
        assert!(e.contains("explode") && e.contains("kill-leader"), "{e}");
        assert!(e.contains("member"), "{e}");
        assert!(!parse_list("all").unwrap().contains(&Fault::Member));
        assert_eq!(
            parse_list("all,member").unwrap().last(),
            Some(&Fault::Member)
        );
    }

    #[test]
    fn the_schedule_is_seeded() {
        let a: Vec<u64> = {
            let mut n = Nemesis::new(7, Fault::ALL.to_vec(), Duration::from_secs(4));
            (0..5).map(|_| n.next_pause().as_millis() as u64).collect()
        };
        let b: Vec<u64> = {
            let mut n = Nemesis::new(7, Fault::ALL.to_vec(), Duration::from_secs(4));
            (0..5).map(|_| n.next_pause().as_millis() as u64).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().all(|&ms| (2000..=6000).contains(&ms)));
    }
}
