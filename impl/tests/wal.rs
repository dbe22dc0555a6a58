//! Write-ahead log: round trips, recovery, torn tails, corruption, rotation, compaction,
//! snapshots and poisoning.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use raftkv::storage::{Entry, HardState, SnapshotMeta, StorageError, Wal, WalOptions};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("command {index} of term {term}").into_bytes(),
    }
}

fn entries(from: u64, to: u64, term: u64) -> Vec<Entry> {
    (from..=to).map(|i| entry(i, term)).collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Offset of the first entry in segment 1 of a fresh log: segment header (20) + the initial
/// hard-state record (12 + 25).
const FIRST_ENTRY_OFFSET: u64 = 57;

#[test]
fn round_trip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, rec) = Wal::open(dir.path()).unwrap();
    assert_eq!(rec.entries, vec![]);
    assert_eq!(rec.hard_state, HardState::default());
    assert_eq!(rec.snapshot, None);
    wal.append(&entries(1, 5, 1)).unwrap();
    let hs = HardState {
        term: 2,
        vote: Some(3),
        commit: 4,
    };
    wal.set_hard_state(hs).unwrap();
    wal.append(&entries(6, 7, 2)).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.last_index(), 7);
    assert_eq!(wal.term_at(6), Some(2));
    drop(wal);

    let (wal, rec) = Wal::open(dir.path()).unwrap();
    assert_eq!(rec.hard_state, hs);
    let mut want = entries(1, 5, 1);
    want.extend(entries(6, 7, 2));
    assert_eq!(rec.entries, want);
    assert_eq!(wal.last_index(), 7);
    assert_eq!(wal.hard_state(), hs);
}

#[test]
fn unsynced_writes_are_not_recovered_and_sync_batches_into_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    let before = wal.stats().fsyncs;
    wal.append(&entries(1, 100, 1)).unwrap();
    wal.set_hard_state(HardState {
        term: 1,
        vote: Some(1),
        commit: 0,
    })
    .unwrap();
    wal.sync().unwrap();
    assert_eq!(
        wal.stats().fsyncs,
        before + 1,
        "one fdatasync for the whole batch"
    );
    wal.sync().unwrap();
    assert_eq!(
        wal.stats().fsyncs,
        before + 1,
        "nothing pending, no fdatasync"
    );
    wal.append(&entries(101, 110, 1)).unwrap();
    drop(wal); // crash before sync: the buffered entries were never written
    let (_, rec) = Wal::open(dir.path()).unwrap();
    assert_eq!(rec.entries.len(), 100);
}

#[test]
fn invalid_operations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.append(&entries(1, 3, 2)).unwrap();
    assert!(matches!(
        wal.append(&entries(5, 5, 2)),
        Err(StorageError::Invalid(_))
    ));
    assert!(matches!(
        wal.append(&entries(3, 3, 2)),
        Err(StorageError::Invalid(_))
    ));
    assert!(matches!(
        wal.append(&entries(4, 4, 1)),
        Err(StorageError::Invalid(_))
    ));
    assert!(matches!(
        wal.truncate_from(0),
        Err(StorageError::Invalid(_))
    ));
    assert!(matches!(
        wal.truncate_from(5),
        Err(StorageError::Invalid(_))
    ));
    assert!(matches!(wal.compact(1), Err(StorageError::Invalid(_))));
    assert!(!wal.is_poisoned());
}

#[test]
fn truncate_then_append_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.append(&entries(1, 10, 1)).unwrap();
    wal.sync().unwrap();
    wal.truncate_from(6).unwrap();
    assert_eq!(wal.last_index(), 5);
    wal.append(&entries(6, 8, 2)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (mut wal, rec) = Wal::open(dir.path()).unwrap();
    let mut want = entries(1, 5, 1);
    want.extend(entries(6, 8, 2));
    assert_eq!(rec.entries, want);
    // Truncating everything after the snapshot boundary (here: the whole log) works too.
    wal.truncate_from(1).unwrap();
    wal.append(&entries(1, 2, 3)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::open(dir.path()).unwrap();
    assert_eq!(rec.entries, entries(1, 2, 3));
}

/// Appends `bytes` to a file.
fn append_bytes(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// The end of the records in segment `bytes`: a preallocated segment holds zeros after them.
fn record_end(bytes: &[u8]) -> usize {
    let mut off = 20;
    while off + 12 <= bytes.len() && bytes[off..off + 12].iter().any(|&b| b != 0) {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        off += 12 + len;
    }
    off
}

/// Writes `bytes` into segment `path` at `at`, over its preallocated zeros.
fn write_at(path: &Path, at: usize, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, at as u64)
        .unwrap();
}

/// Encodes a valid record by writing it through a scratch WAL and reading it back.
fn encoded_entry_record(index: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.append(&entries(1, index, 1)).unwrap();
    wal.sync().unwrap();
    let seg = &segments(dir.path())[0];
    let bytes = fs::read(seg).unwrap();
    let end = record_end(&bytes);
    let rec_len = 12 + 17 + entry(index, 1).data.len();
    bytes[end - rec_len..end].to_vec()
}

#[test]
fn torn_tail_is_truncated_with_the_log_intact() {
    let full = encoded_entry_record(4);
    // Every proper prefix of the next record (incomplete header, incomplete payload), an
    // all-zero tail, and a final record whose checksum fails are all torn writes.
    let mut bad_crc = full.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    let mut tails: Vec<Vec<u8>> = (1..full.len()).map(|n| full[..n].to_vec()).collect();
    tails.push(vec![0u8; 40]);
    tails.push(bad_crc);
    // Both where the file ends at its last record (appended: a segment that is not
    // preallocated) and where the torn bytes land in preallocated zeros.
    for (tail, preallocated) in tails
        .iter()
        .flat_map(|t| [(t.clone(), false), (t.clone(), true)])
    {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&entries(1, 3, 1)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let seg = segments(dir.path()).pop().unwrap();
        let mut good = fs::read(&seg).unwrap();
        let end = record_end(&good);
        assert!(good.len() > end, "the segment is preallocated");
        assert!(good[end..].iter().all(|&b| b == 0));
        if preallocated {
            write_at(&seg, end, &tail);
        } else {
            OpenOptions::new()
                .write(true)
                .open(&seg)
                .unwrap()
                .set_len(end as u64)
                .unwrap();
            append_bytes(&seg, &tail);
        }
        good.truncate(end);
        let good_len = good.len() as u64;

        let (mut wal, rec) = Wal::open(dir.path()).unwrap_or_else(|e| panic!("tail {tail:?}: {e}"));
        assert_eq!(
            rec.entries,
            entries(1, 3, 1),
            "tail of {} bytes",
            tail.len()
        );
        // The torn bytes are gone; the segment is sealed (a 21-byte record) as the log
        // continues in a new one.
        let after = fs::read(&seg).unwrap();
        assert_eq!(
            record_end(&after) as u64,
            good_len + 21,
            "torn bytes removed"
        );
        assert!(after[good_len as usize + 21..].iter().all(|&b| b == 0));
        assert_eq!(after[..good.len()], good[..]);
        // The log continues normally after the truncation.
        wal.append(&entries(4, 4, 1)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.entries, entries(1, 4, 1));
    }
}

fn expect_corrupt(dir: &Path, file: &Path, offset: u64, reason: &str) {
    let err = Wal::open(dir).unwrap_err();
    let msg = err.to_string();
    match &err {
        StorageError::Corrupt {
            path, offset: o, ..
        } => {
            assert_eq!(path, file, "{msg}");
            assert_eq!(*o, offset, "{msg}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("offset {offset}")), "{msg}");
    assert!(msg.contains(reason), "{msg}");
}

#[test]
fn corruption_in_the_middle_of_the_last_segment_is_an_error_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.append(&entries(1, 5, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    // Flip one payload byte of the first entry record: records follow it, so it is not torn.
    bytes[FIRST_ENTRY_OFFSET as usize + 20] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    expect_corrupt(dir.path(), &seg, FIRST_ENTRY_OFFSET, "checksum mismatch");
    // Nothing was truncated by the failed open.
    assert_eq!(fs::read(&seg).unwrap(), bytes);
}

#[test]
fn bad_length_in_the_middle_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.append(&entries(1, 5, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let at = FIRST_ENTRY_OFFSET as usize;
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&seg, &bytes).unwrap();
    expect_corrupt(
        dir.path(),
        &seg,
        FIRST_ENTRY_OFFSET,
        "record length checksum mismatch",
    );
}

fn small_segments() -> WalOptions {
    WalOptions {
        segment_size: 512,
        ..WalOptions::default()
    }
}

#[test]
fn damage_in_an_older_segment_is_never_treated_as_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open_with(dir.path(), small_segments()).unwrap();
    wal.append(&entries(1, 60, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");
    // Cut the end off the first segment: a torn tail anywhere but the last segment is loss.
    let first = &segs[0];
    let len = fs::metadata(first).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(first)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let err = Wal::open(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, StorageError::Corrupt { ref path, .. } if path == first),
        "{msg}"
    );
    assert!(msg.contains("runs past the end"), "{msg}");
}

#[test]
fn missing_middle_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open_with(dir.path(), small_segments()).unwrap();
    wal.append(&entries(1, 60, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let segs = segments(dir.path());
    fs::remove_file(&segs[1]).unwrap();
    let err = Wal::open(dir.path()).unwrap_err();
    match err {
        StorageError::MissingSegment { missing, found } => {
            assert_eq!(missing, segs[1]);
            assert_eq!(found, segs[2]);
        }
        other => panic!("expected a missing segment error, got {other:?}"),
    }
}

#[test]
fn missing_first_segment_without_snapshot_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open_with(dir.path(), small_segments()).unwrap();
    wal.append(&entries(1, 60, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    fs::remove_file(&segments(dir.path())[0]).unwrap();
    let msg = Wal::open(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("are missing"), "{msg}");
}

#[test]
fn rotation_snapshot_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open_with(dir.path(), small_segments()).unwrap();
    let hs = HardState {
        term: 3,
        vote: Some(2),
        commit: 80,
    };
    wal.set_hard_state(hs).unwrap();
    wal.append(&entries(1, 100, 3)).unwrap();
    wal.sync().unwrap();
    let n_segments = segments(dir.path()).len();
    assert!(n_segments >= 8, "rotation happened: {n_segments} segments");
    assert_eq!(wal.stats().segments, n_segments);

    let meta = SnapshotMeta { index: 60, term: 3 };
    wal.save_snapshot(meta, b"state machine at 60").unwrap();
    assert_eq!(
        wal.last_index(),
        100,
        "the suffix after a matching snapshot is kept"
    );
    let removed = wal.compact(60).unwrap();
    assert!(removed >= 3, "removed {removed}");
    assert_eq!(segments(dir.path()).len(), n_segments - removed);
    assert!(matches!(wal.compact(61), Err(StorageError::Invalid(_))));
    wal.append(&entries(101, 105, 4)).unwrap();
    wal.sync().unwrap();
    drop(wal);

    let (wal, rec) = Wal::open_with(dir.path(), small_segments()).unwrap();
    assert_eq!(rec.snapshot, Some(meta));
    assert_eq!(rec.hard_state, hs);
    let mut want = entries(61, 100, 3);
    want.extend(entries(101, 105, 4));
    assert_eq!(rec.entries, want);
    assert_eq!(wal.term_at(60), Some(3));
    assert_eq!(wal.term_at(59), None);
    assert_eq!(
        wal.load_latest_snapshot().unwrap(),
        Some((meta, b"state machine at 60".to_vec()))
    );
}

#[test]
fn conflicting_snapshot_replaces_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.append(&entries(1, 10, 1)).unwrap();
    wal.sync().unwrap();
    // A leader's snapshot at index 20 (beyond our log) replaces everything.
    let meta = SnapshotMeta { index: 20, term: 5 };
    wal.save_snapshot(meta, b"leader state").unwrap();
    assert_eq!(wal.last_index(), 20);
    wal.append(&entries(21, 22, 5)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::open(dir.path()).unwrap();
    assert_eq!(rec.snapshot, Some(meta));
    assert_eq!(rec.entries, entries(21, 22, 5));

    // A snapshot at an index we hold but with another term also drops the log.
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.append(&entries(1, 10, 1)).unwrap();
    wal.save_snapshot(SnapshotMeta { index: 5, term: 2 }, b"x")
        .unwrap();
    assert_eq!(wal.last_index(), 5);
    drop(wal);
    let (_, rec) = Wal::open(dir.path()).unwrap();
    assert_eq!(rec.entries, vec![]);
}

#[test]
fn corrupted_or_missing_snapshot_stops_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open_with(dir.path(), small_segments()).unwrap();
    wal.append(&entries(1, 50, 1)).unwrap();
    wal.save_snapshot(SnapshotMeta { index: 40, term: 1 }, b"snapshot data")
        .unwrap();
    wal.compact(40).unwrap();
    drop(wal);
    let snap = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "snap"))
        .unwrap();
    let mut bytes = fs::read(&snap).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0x10;
    fs::write(&snap, &bytes).unwrap();
    let msg = Wal::open(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("snapshot checksum mismatch") && msg.contains(&snap.display().to_string()),
        "{msg}"
    );

    fs::remove_file(&snap).unwrap();
    let msg = Wal::open(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("records a snapshot at index 40"), "{msg}");
}

#[test]
fn a_failed_write_poisons_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size: 256,
        write_buffer: 1 << 20,
        ..WalOptions::default()
    };
    let (mut wal, _) = Wal::open_with(dir.path(), opts).unwrap();
    // Block creation of the next segment: rotation will fail.
    fs::create_dir(dir.path().join("wal-0000000000000002.log")).unwrap();
    let mut failed = None;
    for i in 1..100 {
        if let Err(e) = wal.append(&entries(i, i, 1)) {
            failed = Some(e);
            break;
        }
    }
    assert!(
        matches!(failed, Some(StorageError::Io { op: "create", .. })),
        "{failed:?}"
    );
    assert!(wal.is_poisoned());
    assert!(matches!(wal.sync(), Err(StorageError::Poisoned)));
    assert!(matches!(
        wal.set_hard_state(HardState {
            term: 9,
            vote: None,
            commit: 0
        }),
        Err(StorageError::Poisoned)
    ));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path()).unwrap();
    assert!(matches!(
        Wal::open(dir.path()),
        Err(StorageError::Locked { .. })
    ));
    drop(wal);
    Wal::open(dir.path()).unwrap();
}

#[test]
fn torn_segment_start_does_not_lose_the_hard_state_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let hs = HardState {
        term: 7,
        vote: Some(3),
        commit: 1,
    };
    {
        let (mut wal, _) = Wal::open_with(dir.path(), small_segments()).unwrap();
        wal.set_hard_state(hs).unwrap();
        wal.append(&entries(1, 40, 7)).unwrap();
        wal.sync().unwrap();
    }
    // A crash right after a rotation created the next segment: only part of its header and
    // of its first record (the hard state) made it to disk.
    let last = segments(dir.path()).pop().unwrap();
    let name = last.file_name().unwrap().to_str().unwrap();
    let seq = u64::from_str_radix(&name[4..20], 16).unwrap();
    let next = dir.path().join(format!("wal-{:016x}.log", seq + 1));
    let mut header_and_partial_record = fs::read(&last).unwrap()[..30].to_vec();
    header_and_partial_record[8..16].copy_from_slice(&(seq + 1).to_le_bytes());
    // Fix the header checksum so only the record is torn.
    let crc = crc32c_of(&header_and_partial_record[..16]);
    header_and_partial_record[16..20].copy_from_slice(&crc.to_le_bytes());
    fs::write(&next, &header_and_partial_record).unwrap();
    {
        let (mut wal, rec) = Wal::open_with(dir.path(), small_segments()).unwrap();
        assert_eq!(rec.hard_state, hs);
        assert_eq!(rec.entries.len(), 40);
        // The torn record is truncated (to the 20-byte header) and the segment sealed (21
        // bytes) as the log continues in a new one.
        assert_eq!(
            fs::metadata(&next).unwrap().len(),
            20 + 21,
            "torn record truncated"
        );
        wal.save_snapshot(SnapshotMeta { index: 40, term: 7 }, b"s")
            .unwrap();
        wal.compact(40).unwrap();
    }
    let (_, rec) = Wal::open_with(dir.path(), small_segments()).unwrap();
    assert_eq!(
        rec.hard_state, hs,
        "hard state survived the removal of old segments"
    );
    assert_eq!(rec.snapshot, Some(SnapshotMeta { index: 40, term: 7 }));
}

/// CRC-32C (Castagnoli), bitwise, to build a test segment header without the library.
fn crc32c_of(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One flipped bit in the length field of a record in the middle of the last segment made the
/// record seem to run past the end of the file, like a torn write, and 93 valid records, the
/// term and the vote were dropped as a "torn tail". The length has a checksum of its own now:
/// an error naming the file and offset, nothing truncated; in the last record of the file too.
#[test]
fn a_flipped_length_bit_mid_segment_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.append(&entries(1, 60, 1)).unwrap();
    wal.set_hard_state(HardState {
        term: 1,
        vote: Some(2),
        commit: 43,
    })
    .unwrap();
    wal.append(&entries(61, 90, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    // The third byte of the first entry record's length (65,536 bytes more).
    bytes[FIRST_ENTRY_OFFSET as usize + 2] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    expect_corrupt(
        dir.path(),
        &seg,
        FIRST_ENTRY_OFFSET,
        "record length checksum mismatch",
    );
    assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing was truncated");

    // The last record of the file: nothing follows it, and still it is not taken as torn.
    bytes[FIRST_ENTRY_OFFSET as usize + 2] ^= 0x01;
    let last = record_end(&bytes) - encoded_entry_record_len(90);
    bytes[last + 2] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    expect_corrupt(
        dir.path(),
        &seg,
        last as u64,
        "record length checksum mismatch",
    );
    assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing was truncated");
}

fn encoded_entry_record_len(index: u64) -> usize {
    12 + 17 + entry(index, 1).data.len()
}

/// A version 1 segment (written before records had a length checksum): a version 1 record.
fn v1_record(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    let mut r = len.to_vec();
    r.extend_from_slice(&crc.to_le_bytes());
    r.extend_from_slice(payload);
    r
}

fn v1_segment(records: &[Vec<u8>]) -> Vec<u8> {
    let mut h = b"RKVWAL".to_vec();
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&1u64.to_le_bytes());
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    for r in records {
        h.extend_from_slice(r);
    }
    h
}

fn v1_entry(index: u64, term: u64) -> Vec<u8> {
    let mut p = vec![1u8];
    p.extend_from_slice(&index.to_le_bytes());
    p.extend_from_slice(&term.to_le_bytes());
    p.extend_from_slice(&entry(index, term).data);
    v1_record(&p)
}

fn v1_hard_state(term: u64, vote: u64, commit: u64) -> Vec<u8> {
    let mut p = vec![2u8];
    for x in [term, vote, commit] {
        p.extend_from_slice(&x.to_le_bytes());
    }
    v1_record(&p)
}

/// Data directories written by the previous format are read, continued in a new (version 2)
/// segment, and their damage is classified as before, with the intact-record rule: a length
/// flipped mid-segment is corruption, a cut final record is torn.
#[test]
fn version_1_segments_are_still_read() {
    let mut recs = vec![v1_hard_state(3, 2, 2)];
    recs.extend((1..=4).map(|i| v1_entry(i, 3)));
    let good = v1_segment(&recs);

    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("wal-0000000000000001.log"), &good).unwrap();
    let (mut wal, rec) = Wal::open(dir.path()).unwrap();
    assert_eq!(
        rec.hard_state,
        HardState {
            term: 3,
            vote: Some(2),
            commit: 2
        }
    );
    assert_eq!(rec.entries, entries(1, 4, 3));
    wal.append(&entries(5, 5, 3)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::open(dir.path()).unwrap();
    assert_eq!(rec.entries, entries(1, 5, 3));

    // A flipped length bit in the first entry: intact records follow it.
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join("wal-0000000000000001.log");
    let mut bad = good.clone();
    let first_entry = 20 + recs[0].len();
    bad[first_entry + 2] ^= 0x01;
    fs::write(&seg, &bad).unwrap();
    expect_corrupt(
        dir.path(),
        &seg,
        first_entry as u64,
        "an intact record follows",
    );
    assert_eq!(fs::read(&seg).unwrap(), bad);

    // The final record cut short: a torn tail, truncated.
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("wal-0000000000000001.log"),
        &good[..good.len() - 5],
    )
    .unwrap();
    let (_, rec) = Wal::open(dir.path()).unwrap();
    assert_eq!(rec.entries, entries(1, 3, 3));
}

/// A data directory whose WAL was deleted, or emptied, while a snapshot file remains has lost
/// the node's term and vote: it is refused with an error naming the directory and the
/// snapshot, and nothing is deleted.
#[test]
fn a_lost_wal_next_to_a_snapshot_is_refused() {
    for emptied in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&entries(1, 10, 1)).unwrap();
        wal.set_hard_state(HardState {
            term: 2,
            vote: Some(1),
            commit: 10,
        })
        .unwrap();
        wal.save_snapshot(SnapshotMeta { index: 8, term: 1 }, b"state")
            .unwrap();
        wal.sync().unwrap();
        drop(wal);
        for seg in segments(dir.path()) {
            if emptied {
                fs::write(&seg, b"").unwrap();
            } else {
                fs::remove_file(&seg).unwrap();
            }
        }
        let err = Wal::open(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                StorageError::StateLost {
                    index: 8,
                    term: 1,
                    ..
                }
            ),
            "emptied {emptied}: {err:?}"
        );
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(msg.contains("snap-") && msg.contains("vote twice"), "{msg}");
        // The snapshot is still there.
        assert!(fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("snap-")));
    }
}

/// The newest segment deleted, or an older one cut at a record boundary (its seal gone): both
/// looked like a shorter, consistent log, and recovery would have started without the term,
/// vote and entries they held. Each full segment ends with a seal written once the next one
/// exists, so both are refused now.
#[test]
fn a_deleted_newest_segment_or_a_lost_seal_is_refused() {
    let build = || {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open_with(dir.path(), small_segments()).unwrap();
        wal.append(&entries(1, 30, 1)).unwrap();
        wal.set_hard_state(HardState {
            term: 2,
            vote: Some(2),
            commit: 20,
        })
        .unwrap();
        wal.append(&entries(31, 40, 2)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let segs = segments(dir.path());
        assert!(segs.len() >= 3, "{segs:?}");
        (dir, segs)
    };

    let (dir, segs) = build();
    fs::remove_file(segs.last().unwrap()).unwrap();
    let err = Wal::open_with(dir.path(), small_segments()).unwrap_err();
    assert!(
        matches!(&err, StorageError::MissingLastSegment { missing, .. } if missing == segs.last().unwrap()),
        "{err:?}"
    );

    let (dir, segs) = build();
    let middle = &segs[segs.len() - 2];
    let bytes = fs::read(middle).unwrap();
    let cut = bytes.len() - 21;
    fs::write(middle, &bytes[..cut]).unwrap();
    expect_corrupt(dir.path(), middle, cut as u64, "without its seal");
}
