//! Damage to a node's data directory: every file of a WAL with several segments and a
//! snapshot is, in turn, deleted, emptied, cut short and hit by flipped bits, and a stale
//! LOCK file is left behind. Recovery must then either give back everything that was made
//! durable, or refuse with an error; it never panics and never starts with less.
//!
//! One kind of damage cannot be told from a power loss, and is allowed to lose what the
//! power loss would have: the end of the last segment cut short, or a bit flipped in its
//! final record, looks exactly like a write torn before its fdatasync returned (etcd's WAL
//! reads it the same way). There, recovery may give back a prefix of the log and an earlier
//! hard state, but nothing else.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use raftkv::storage::{Entry, HardState, Recovered, SnapshotMeta, Wal, WalOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn options() -> WalOptions {
    WalOptions {
        segment_size: 512,
        ..WalOptions::default()
    }
}

fn entries(from: u64, to: u64, term: u64) -> Vec<Entry> {
    (from..=to)
        .map(|index| Entry {
            index,
            term,
            data: format!("command {index} of term {term}").into_bytes(),
        })
        .collect()
}

const SNAPSHOT: SnapshotMeta = SnapshotMeta { index: 25, term: 2 };

/// Every hard state written, in order; the last one is the durable one.
fn hard_states() -> Vec<HardState> {
    vec![
        HardState {
            term: 1,
            vote: Some(1),
            commit: 10,
        },
        HardState {
            term: 2,
            vote: Some(3),
            commit: 30,
        },
        HardState {
            term: 3,
            vote: Some(2),
            commit: 45,
        },
    ]
}

/// Builds the data directory; every step is synced (acknowledged).
fn build(dir: &Path) {
    let hs = hard_states();
    let (mut wal, _) = Wal::open_with(dir, options()).unwrap();
    wal.append(&entries(1, 20, 1)).unwrap();
    wal.set_hard_state(hs[0]).unwrap();
    wal.sync().unwrap();
    wal.append(&entries(21, 40, 2)).unwrap();
    wal.set_hard_state(hs[1]).unwrap();
    wal.sync().unwrap();
    wal.save_snapshot(SNAPSHOT, b"state machine at 25").unwrap();
    wal.compact(SNAPSHOT.index).unwrap();
    wal.append(&entries(41, 50, 3)).unwrap();
    wal.set_hard_state(hs[2]).unwrap();
    wal.sync().unwrap();
}

fn full_log() -> Vec<Entry> {
    let mut v = entries(26, 40, 2);
    v.extend(entries(41, 50, 3));
    v
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    for f in files(from) {
        fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

/// The offset of the final record of a (version 2) segment.
fn final_record_offset(bytes: &[u8]) -> usize {
    let (mut off, mut last) = (20, 20);
    while off + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        last = off;
        off += 12 + len;
    }
    last
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Damage {
    Delete,
    Empty,
    Cut(u64),
    Flip(u64, u8),
}

fn apply(path: &Path, d: Damage) {
    match d {
        Damage::Delete => fs::remove_file(path).unwrap(),
        Damage::Empty => fs::write(path, b"").unwrap(),
        Damage::Cut(len) => {
            let bytes = fs::read(path).unwrap();
            fs::write(path, &bytes[..len as usize]).unwrap();
        }
        Damage::Flip(at, bit) => {
            let mut bytes = fs::read(path).unwrap();
            bytes[at as usize] ^= 1 << bit;
            fs::write(path, &bytes).unwrap();
        }
    }
}

/// What recovery gave back is everything durable.
fn is_full(r: &Recovered) -> bool {
    r.hard_state == *hard_states().last().unwrap()
        && r.snapshot == Some(SNAPSHOT)
        && r.entries == full_log()
}

/// What recovery gave back is what a power loss at the end could leave: the snapshot, a
/// prefix of the log, and a hard state written before.
fn is_torn_prefix(r: &Recovered) -> bool {
    let log = full_log();
    r.snapshot == Some(SNAPSHOT)
        && r.entries.len() <= log.len()
        && r.entries[..] == log[..r.entries.len()]
        && hard_states().contains(&r.hard_state)
}

#[test]
fn damaged_data_directories_recover_everything_or_refuse() {
    let template = tempfile::tempdir().unwrap();
    build(template.path());
    let names: Vec<PathBuf> = files(template.path());
    let segments: Vec<&PathBuf> = names
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert!(segments.len() >= 3, "{names:?}");
    let last_segment = segments.last().unwrap().file_name().unwrap().to_owned();

    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let (mut cases, mut recovered, mut refused, mut torn) = (0, 0, 0, 0);
    for name in &names {
        let file_name = name.file_name().unwrap().to_owned();
        let len = fs::metadata(name).unwrap().len();
        let mut damages = vec![Damage::Delete, Damage::Empty];
        for _ in 0..40 {
            damages.push(Damage::Cut(rng.random_range(0..len.max(1))));
            damages.push(Damage::Flip(
                rng.random_range(0..len.max(1)),
                rng.random_range(0..8),
            ));
        }
        let is_lock = file_name == "LOCK";
        for d in damages {
            if len == 0 && matches!(d, Damage::Cut(_) | Damage::Flip(..)) {
                continue;
            }
            cases += 1;
            let dir = tempfile::tempdir().unwrap();
            copy_dir(template.path(), dir.path());
            let path = dir.path().join(&file_name);
            apply(&path, d);
            let outcome = catch_unwind(AssertUnwindSafe(|| Wal::open_with(dir.path(), options())))
                .unwrap_or_else(|_| panic!("{file_name:?} {d:?}: recovery panicked"));
            match outcome {
                Err(e) => {
                    assert!(!is_lock, "a stale or damaged LOCK file is refused: {e}");
                    refused += 1;
                }
                Ok((_, r)) if is_full(&r) => recovered += 1,
                Ok((_, r)) => {
                    // Only the tail of the last segment may be read as a torn write.
                    let bytes = fs::read(template.path().join(&file_name)).unwrap();
                    let in_tail = file_name == last_segment
                        && match d {
                            Damage::Cut(_) => true,
                            Damage::Flip(at, _) => at as usize >= final_record_offset(&bytes),
                            _ => false,
                        };
                    assert!(
                        in_tail && is_torn_prefix(&r),
                        "{file_name:?} {d:?}: recovered less than was durable: hard state \
                         {:?}, snapshot {:?}, log {}..{}",
                        r.hard_state,
                        r.snapshot,
                        r.entries.first().map_or(0, |e| e.index),
                        r.entries.last().map_or(0, |e| e.index)
                    );
                    torn += 1;
                }
            }
        }
    }
    eprintln!(
        "{cases} damaged directories: {recovered} recovered in full, {refused} refused, \
         {torn} read as a torn tail"
    );
    assert!(refused > 0 && recovered > 0 && torn > 0);
}

/// A LOCK file left by a process that is gone does not stop recovery.
#[test]
fn a_stale_lock_file_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    fs::write(dir.path().join("LOCK"), b"4242\n").unwrap();
    let (_, r) = Wal::open_with(dir.path(), options()).unwrap();
    assert!(is_full(&r));
}
