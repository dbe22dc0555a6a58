//! Property test: random sequences of WAL operations with crashes (drop without sync) and
//! reopens. After each reopen the recovered state must equal the state of a simple in-memory
//! model at some record boundary no earlier than the last successful sync.

use proptest::prelude::*;
use raftkv::storage::{Entry, HardState, Recovered, SnapshotMeta, Wal, WalOptions};

#[derive(Debug, Clone)]
enum Op {
    Append {
        count: u8,
        term_bump: bool,
        size: u8,
    },
    Truncate {
        back: u8,
    },
    HardState {
        term: u8,
        vote: Option<u8>,
        commit: u8,
    },
    Sync,
    /// Snapshot at `last_index - back` (keeping the suffix) or, if `beyond`, past the log.
    Snapshot {
        back: u8,
        beyond: bool,
    },
    Compact,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..6, any::<bool>(), 0u8..60).prop_map(|(count, term_bump, size)| Op::Append { count, term_bump, size }),
        2 => (0u8..6).prop_map(|back| Op::Truncate { back }),
        2 => (0u8..5, proptest::option::of(0u8..3), 0u8..20).prop_map(|(term, vote, commit)| Op::HardState { term, vote, commit }),
        4 => Just(Op::Sync),
        1 => (0u8..8, proptest::bool::weighted(0.2)).prop_map(|(back, beyond)| Op::Snapshot { back, beyond }),
        1 => Just(Op::Compact),
        2 => Just(Op::Crash),
    ]
}

/// What the log should contain.
#[derive(Debug, Clone, PartialEq, Default)]
struct Model {
    hard_state: HardState,
    snapshot: Option<SnapshotMeta>,
    entries: Vec<Entry>,
}

impl Model {
    fn snap_index(&self) -> u64 {
        self.snapshot.map_or(0, |s| s.index)
    }
    fn last_index(&self) -> u64 {
        self.snap_index() + self.entries.len() as u64
    }
    fn last_term(&self) -> u64 {
        self.entries
            .last()
            .map(|e| e.term)
            .or(self.snapshot.map(|s| s.term))
            .unwrap_or(0)
    }
    fn term_at(&self, index: u64) -> Option<u64> {
        if Some(index) == self.snapshot.map(|s| s.index) {
            return self.snapshot.map(|s| s.term);
        }
        let pos = index.checked_sub(self.snap_index() + 1)?;
        self.entries.get(pos as usize).map(|e| e.term)
    }
    fn from_recovered(r: Recovered) -> Model {
        Model {
            hard_state: r.hard_state,
            snapshot: r.snapshot,
            entries: r.entries,
        }
    }
}

fn run(ops: Vec<Op>, opts: WalOptions) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, rec) = Wal::open_with(dir.path(), opts).unwrap();
    let mut model = Model::from_recovered(rec);
    // States at record boundaries since the last successful sync; recovery may land on any.
    let mut candidates = vec![model.clone()];
    let mut snap_counter = 0u64;
    for op in ops.into_iter().chain([Op::Crash]) {
        match op {
            Op::Append {
                count,
                term_bump,
                size,
            } => {
                let term = model.last_term().max(model.hard_state.term) + u64::from(term_bump);
                for _ in 0..count {
                    let index = model.last_index() + 1;
                    let data = vec![(index % 251) as u8; size as usize];
                    wal.append_entry(index, term, &data).unwrap();
                    model.entries.push(Entry { index, term, data });
                    candidates.push(model.clone());
                }
            }
            Op::Truncate { back } => {
                let from = model.last_index().saturating_sub(u64::from(back)) + 1;
                if from > model.snap_index() && from <= model.last_index() {
                    wal.truncate_from(from).unwrap();
                    model
                        .entries
                        .truncate((from - model.snap_index() - 1) as usize);
                    candidates.push(model.clone());
                }
            }
            Op::HardState { term, vote, commit } => {
                let hs = HardState {
                    term: u64::from(term),
                    vote: vote.map(u64::from),
                    commit: u64::from(commit),
                };
                wal.set_hard_state(hs).unwrap();
                if hs != model.hard_state {
                    model.hard_state = hs;
                    candidates.push(model.clone());
                }
            }
            Op::Sync => {
                wal.sync().unwrap();
                candidates = vec![model.clone()];
            }
            Op::Snapshot { back, beyond } => {
                let (index, term) = if beyond {
                    (model.last_index() + 3, model.last_term() + 1)
                } else {
                    let index = model.last_index().saturating_sub(u64::from(back));
                    (index, model.term_at(index).unwrap_or(0))
                };
                if index > model.snap_index() {
                    snap_counter += 1;
                    let meta = SnapshotMeta { index, term };
                    wal.save_snapshot(meta, &snap_counter.to_le_bytes())
                        .unwrap();
                    if model.term_at(index) == Some(term) {
                        let drop = (index - model.snap_index()) as usize;
                        model.entries.drain(..drop);
                    } else {
                        model.entries.clear();
                    }
                    model.snapshot = Some(meta);
                    candidates = vec![model.clone()];
                }
            }
            Op::Compact => {
                wal.compact(model.snap_index()).unwrap();
                candidates = vec![model.clone()];
            }
            Op::Crash => {
                drop(wal);
                let (w, rec) = Wal::open_with(dir.path(), opts).unwrap();
                wal = w;
                let got = Model::from_recovered(rec);
                prop_assert!(
                    candidates.contains(&got),
                    "recovered {got:?}\nnot among the states since the last sync:\n{candidates:?}"
                );
                prop_assert_eq!(wal.last_index(), got.last_index());
                if let Some(s) = got.snapshot {
                    let (meta, _) = wal.load_latest_snapshot().unwrap().unwrap();
                    prop_assert_eq!(meta, s);
                }
                model = got;
                candidates = vec![model.clone()];
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn recovery_matches_the_model(
        ops in proptest::collection::vec(op(), 1..40),
        segment_size in prop_oneof![Just(200u64), Just(1000), Just(1 << 20)],
        write_buffer in prop_oneof![Just(64usize), Just(1 << 20)],
        preallocate in prop_oneof![Just(0u64), Just(100), Just(4 << 20)],
    ) {
        run(ops, WalOptions { segment_size, write_buffer, preallocate })?;
    }
}
