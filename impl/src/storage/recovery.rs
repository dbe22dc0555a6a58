//! Reading the WAL back at start-up: segment listing, record scanning, torn-tail handling and
//! replay of the records into the recovered log.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{io_err, Result, StorageError};
use super::record::{self, HardState, Record, RecordAt, SEGMENT_HEADER_LEN};
use super::snapshot::SnapshotMeta;
use super::wal::Entry;

/// One segment file of the log.
#[derive(Debug, Clone)]
pub(crate) struct SegmentInfo {
    pub seq: u64,
    pub path: PathBuf,
    /// Highest entry index written in this segment (0 if none). A segment can be removed once
    /// a durable snapshot covers this index.
    pub max_index: u64,
    /// Valid length in bytes after recovery (the end of its last record: a preallocated
    /// segment's file is longer).
    pub len: u64,
    /// The segment ends with a seal: the next segment was created, durably, before it.
    pub sealed: bool,
    /// Its format version.
    pub version: u16,
    /// It holds records beyond its start (the hard state and snapshot position that open
    /// every segment): only written once the segment before it was sealed.
    pub has_body: bool,
}

/// The path of segment number `seq` in `dir`.
pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("wal-{seq:016x}.log"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Lists the segment files in `dir` in order and checks that their numbers are contiguous.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut segs = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("list directory", dir))? {
        let e = e.map_err(io_err("list directory", dir))?;
        if let Some(seq) = e.file_name().to_str().and_then(parse_segment_name) {
            segs.push((seq, e.path()));
        }
    }
    segs.sort();
    for w in segs.windows(2) {
        if w[1].0 != w[0].0 + 1 {
            return Err(StorageError::MissingSegment {
                missing: segment_path(dir, w[0].0 + 1),
                found: w[1].1.clone(),
            });
        }
    }
    Ok(segs)
}

/// The log state rebuilt by replaying records in order.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub hard_state: HardState,
    /// A hard-state record was read (every segment starts with one).
    pub saw_hard_state: bool,
    /// The newest snapshot position recorded so far.
    pub snap: SnapshotMeta,
    /// Index just before `entries[0]`. `None` until the first entry is seen: after old segments
    /// were compacted away the first remaining entry need not follow the first snapshot mark.
    base: Option<u64>,
    pub entries: VecDeque<Entry>,
}

impl Replay {
    fn last_index(&self) -> Option<u64> {
        self.base.map(|b| b + self.entries.len() as u64)
    }

    /// Applies one record. An error means the log contradicts itself (corruption).
    pub(crate) fn apply(&mut self, rec: Record<'_>) -> Result<(), String> {
        match rec {
            Record::Entry { index, term, data } => {
                if index == 0 {
                    return Err("entry with index 0".into());
                }
                let base = *self.base.get_or_insert(index - 1);
                let expected = base + self.entries.len() as u64 + 1;
                if index != expected {
                    return Err(format!(
                        "entry index {index} does not follow the log (expected {expected})"
                    ));
                }
                if let Some(prev) = self.entries.back() {
                    if term < prev.term {
                        return Err(format!(
                            "entry {index} has term {term}, lower than the previous entry's {}",
                            prev.term
                        ));
                    }
                }
                self.entries.push_back(Entry {
                    index,
                    term,
                    data: data.to_vec(),
                });
            }
            Record::HardState(hs) => {
                self.hard_state = hs;
                self.saw_hard_state = true;
            }
            Record::Truncate { from } => {
                if from == 0 {
                    return Err("truncation from index 0".into());
                }
                if let Some(base) = self.base {
                    if from <= base {
                        self.entries.clear();
                        self.base = Some(from - 1);
                    } else {
                        self.entries.truncate((from - base - 1) as usize);
                    }
                }
            }
            Record::Snapshot { index, term } => self.apply_snapshot(SnapshotMeta { index, term }),
            // Checked where segments are scanned.
            Record::Seal { .. } => {}
        }
        Ok(())
    }

    /// Records that a snapshot covers the log up to `meta.index`: entries up to it are dropped,
    /// and if the log does not hold `meta.index` with `meta.term`, the whole log is replaced.
    pub(crate) fn apply_snapshot(&mut self, meta: SnapshotMeta) {
        if meta.index <= self.snap.index {
            return;
        }
        self.snap = meta;
        let Some(base) = self.base else { return };
        if meta.index <= base {
            // Only possible for entries already compacted away, which a later snapshot covers.
            return;
        }
        let pos = (meta.index - base - 1) as usize;
        if self.entries.get(pos).is_some_and(|e| e.term == meta.term) {
            self.entries.drain(..=pos);
        } else {
            self.entries.clear();
        }
        self.base = Some(meta.index);
    }

    /// Final consistency check: the log must start right after the snapshot.
    pub(crate) fn finish(&mut self, dir: &Path) -> Result<()> {
        if let Some(first) = self.entries.front() {
            if first.index != self.snap.index + 1 {
                return Err(StorageError::Corrupt {
                    path: dir.to_path_buf(),
                    offset: 0,
                    reason: format!(
                        "log entries {}..{} are missing: the snapshot ends at {} and the log starts at {}",
                        self.snap.index + 1,
                        first.index - 1,
                        self.snap.index,
                        first.index
                    ),
                });
            }
        }
        self.base = Some(self.snap.index);
        debug_assert_eq!(
            self.last_index(),
            Some(self.snap.index + self.entries.len() as u64)
        );
        Ok(())
    }
}

/// Truncates the tail of the last segment at `offset` after a torn write.
fn truncate_torn_tail(path: &Path, offset: u64, file_len: u64, reason: &str) -> Result<()> {
    tracing::warn!(
        file = %path.display(),
        offset,
        dropped_bytes = file_len - offset,
        reason,
        "truncating a torn record at the tail of the last WAL segment"
    );
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    f.set_len(offset).map_err(io_err("truncate", path))?;
    f.sync_all().map_err(io_err("fsync", path))
}

/// The offset of the first intact record that starts after `from` in `bytes` (its checksums
/// hold and it decodes), if any.
///
/// A torn write leaves the tail of the file as the beginning of the last record and nothing
/// valid after it. An intact record after a damaged one shows that the damage is not a torn
/// tail (a flipped bit in a length field makes a record seem to run past the end of the file,
/// or seem to end at it) but corruption of durable data, which must never be truncated away.
fn intact_record_after(bytes: &[u8], from: usize, version: u16) -> Option<usize> {
    // A record is never all zeros: none starts in the zero tail (a preallocated segment's
    // unwritten space), which is not searched.
    let data_end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    (from + 1..data_end).find(|&p| {
        matches!(record::record_at(bytes, p, version),
            RecordAt::Intact { payload, .. } if record::decode(payload).is_ok())
    })
}

/// Scans one segment, applying its records to `replay`. Returns the valid length and the
/// highest entry index in the segment.
///
/// In the last segment, damage with the shape of an interrupted write ([`RecordAt::Damaged`]'s
/// `torn`, or an all-zero tail) and no intact record after it is a torn write: it is
/// truncated with a warning. Anything else is corruption and an error naming the file and
/// offset; nothing is deleted. When the previous segment is sealed (`after_seal`), this
/// segment's header and first hard state were durable before the seal was written: damage
/// there is never torn.
///
/// A seal must be the segment's last record and name the next segment.
pub(crate) fn scan_segment(
    seq: u64,
    path: &Path,
    is_last: bool,
    after_seal: bool,
    replay: &mut Replay,
) -> Result<SegmentInfo> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    let file_len = bytes.len() as u64;
    let corrupt = |offset: usize, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    let all_zero = |from: usize| bytes[from..].iter().all(|&b| b == 0);

    if bytes.len() < SEGMENT_HEADER_LEN || (is_last && all_zero(0)) {
        if !is_last || after_seal {
            return Err(corrupt(
                0,
                format!("segment header is incomplete ({} bytes)", bytes.len()),
            ));
        }
        tracing::warn!(file = %path.display(), "rewriting the torn header of the last WAL segment");
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err("open", path))?;
        f.set_len(0).map_err(io_err("truncate", path))?;
        (&f).write_all(&record::segment_header(seq))
            .map_err(io_err("write", path))?;
        f.sync_all().map_err(io_err("fsync", path))?;
        return Ok(SegmentInfo {
            seq,
            path: path.to_path_buf(),
            max_index: 0,
            len: SEGMENT_HEADER_LEN as u64,
            sealed: false,
            version: record::SEGMENT_VERSION,
            has_body: false,
        });
    }
    let (header_seq, version) = record::parse_segment_header(&bytes).map_err(|r| corrupt(0, r))?;
    if header_seq != seq {
        return Err(corrupt(
            0,
            format!("segment header says segment {header_seq}, file name says {seq}"),
        ));
    }

    let mut off = SEGMENT_HEADER_LEN;
    let mut max_index = 0;
    let mut sealed = false;
    // Whether the segment's first hard state has been read (it opens every segment), and
    // whether records beyond the start (that hard state and a snapshot position) followed.
    let mut started = false;
    let mut has_body = false;
    while off < bytes.len() {
        if version >= 3 && all_zero(off) {
            // Preallocated space never written: the records end here.
            break;
        }
        if sealed {
            return Err(corrupt(off, "a record after the segment's seal".into()));
        }
        let (payload, end) = match record::record_at(&bytes, off, version) {
            RecordAt::Intact { payload, end } => (payload, end),
            RecordAt::Damaged { reason, torn } => {
                // Torn only at the tail of the last segment, with nothing intact after it,
                // and never in the start of a segment created before a seal.
                if !is_last || !(torn || all_zero(off)) || (after_seal && !started) {
                    return Err(corrupt(off, reason));
                }
                if let Some(at) = intact_record_after(&bytes, off, version) {
                    return Err(corrupt(
                        off,
                        format!(
                            "{reason}, yet an intact record follows at offset {at}: not a \
                             torn tail but damaged durable data"
                        ),
                    ));
                }
                truncate_torn_tail(path, off as u64, file_len, &reason)?;
                return Ok(SegmentInfo {
                    seq,
                    path: path.to_path_buf(),
                    max_index,
                    len: off as u64,
                    sealed: false,
                    version,
                    has_body,
                });
            }
        };
        let rec = record::decode(payload).map_err(|r| corrupt(off, r))?;
        let in_start = match rec {
            Record::HardState(_) => !started,
            Record::Snapshot { .. } => !has_body,
            _ => false,
        };
        has_body |= !in_start;
        match rec {
            Record::Entry { index, .. } => max_index = max_index.max(index),
            Record::HardState(_) => started = true,
            Record::Seal { next } if next != seq + 1 => {
                return Err(corrupt(
                    off,
                    format!(
                        "the seal names segment {next}, not the next one ({})",
                        seq + 1
                    ),
                ));
            }
            Record::Seal { .. } => sealed = true,
            _ => {}
        }
        replay.apply(rec).map_err(|r| corrupt(off, r))?;
        off = end;
    }
    Ok(SegmentInfo {
        seq,
        path: path.to_path_buf(),
        max_index,
        len: off as u64,
        sealed,
        version,
        has_body,
    })
}
