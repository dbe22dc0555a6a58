//! The write-ahead log: append, truncate, hard state, group commit, rotation, compaction.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::{io_err, Result, StorageError};
use super::fault::{Faults, FileOp};
use super::record::{self, HardState, Record, MAX_RECORD_LEN};
use super::recovery::{self, Replay, SegmentInfo};
use super::snapshot::{self, SnapshotMeta};

/// A log entry as stored: the payload is opaque to the storage layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Log index (1-based, contiguous).
    pub index: u64,
    /// Term in which the entry was created.
    pub term: u64,
    /// The encoded command.
    pub data: Vec<u8>,
}

/// What [`Wal::open`] found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recovered {
    /// The last hard state written (all zero / no vote on a fresh log).
    pub hard_state: HardState,
    /// The newest durable snapshot, if any; load its data with [`Wal::load_latest_snapshot`].
    pub snapshot: Option<SnapshotMeta>,
    /// The log entries after the snapshot, in index order, contiguous.
    pub entries: Vec<Entry>,
}

/// Tuning of the WAL.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// A new segment is started once the current one reaches this many bytes.
    pub segment_size: u64,
    /// Buffered records are written to the file (without fdatasync) once this many bytes are
    /// pending, to bound memory between syncs.
    pub write_buffer: usize,
    /// Segment files are extended with zeros up to this many bytes ahead of their last record
    /// (never past `segment_size`), so that the fdatasync after an append writes data only:
    /// on ext4 and XFS an fdatasync that must also make a new file length durable commits
    /// the journal, which measured about twice as slow here. 0 turns it off.
    pub preallocate: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 64 << 20,
            write_buffer: 1 << 20,
            preallocate: 4 << 20,
        }
    }
}

/// Counters for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Number of fdatasync calls on segment files.
    pub fsyncs: u64,
    /// Bytes written to segment files.
    pub bytes_written: u64,
    /// Records encoded.
    pub records: u64,
    /// Segment files currently making up the log.
    pub segments: usize,
}

/// A durable Raft log in segment files, with the hard state and snapshot files beside it.
///
/// Mutations (`append`, `truncate_from`, `set_hard_state`) are buffered; [`Wal::sync`] makes
/// everything buffered durable with one fdatasync (group commit). Callers must not act on a
/// mutation (send a vote, acknowledge an append) before a `sync` that follows it returned `Ok`.
/// After any write or sync error the WAL is poisoned: every later call fails with
/// [`StorageError::Poisoned`], so nothing that may not have been persisted is acknowledged.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    /// Held open to keep the advisory lock on the directory.
    _lock: File,
    /// Segments in order; the last one is open for appending.
    segments: Vec<SegmentInfo>,
    file: File,
    /// Length of the current segment including `pending`.
    seg_len: u64,
    /// Bytes of the current segment written to its file (`seg_len` less `pending`): where
    /// the next write goes.
    file_off: u64,
    /// Length of the current segment's file: past `file_off` it holds preallocated zeros
    /// (`segment_size` once a preallocation failed: no more attempts in this segment).
    alloc_end: u64,
    /// Whether the current segment holds records other than its start-up records.
    seg_has_records: bool,
    /// The current segment is of the format this build writes, so it can be sealed (a
    /// version 1 segment recovered from an older build is not).
    seg_sealable: bool,
    pending: Vec<u8>,
    needs_fsync: bool,
    dir_dirty: bool,
    poisoned: bool,
    /// Injected failures (tests only).
    faults: Faults,
    hard_state: HardState,
    snap: SnapshotMeta,
    /// Terms of the entries `snap.index + 1 ..= last_index()`.
    terms: VecDeque<u64>,
    stats: WalStats,
}

/// Takes an exclusive advisory lock on `dir/LOCK`, so that two processes never write the same
/// log. The lock is released when the process exits, even by a crash.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::Locked { path }),
        Err(std::fs::TryLockError::Error(e)) => Err(StorageError::Io {
            op: "lock",
            path,
            source: e,
        }),
    }
}

/// The lock file of the log in `dir` when another process holds it (a node
/// runs on `dir`); `None` when the lock is free or there is no log yet.
pub fn held_lock(dir: &Path) -> Option<PathBuf> {
    let path = dir.join("LOCK");
    let f = OpenOptions::new().write(true).open(&path).ok()?;
    // Taken and released at once (on drop) when free.
    matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)).then_some(path)
}

impl Wal {
    /// Opens (or creates) the log in `dir` with default options and recovers its contents.
    pub fn open(dir: impl AsRef<Path>) -> Result<(Wal, Recovered)> {
        Wal::open_with(dir, WalOptions::default())
    }

    /// Opens (or creates) the log in `dir` and recovers its contents.
    ///
    /// A torn record at the tail of the last segment is truncated (with a warning); any other
    /// damage is returned as an error naming the file and byte offset.
    pub fn open_with(dir: impl AsRef<Path>, opts: WalOptions) -> Result<(Wal, Recovered)> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let lock = lock_dir(&dir)?;
        snapshot::remove_temp_files(&dir)?;
        let listed = recovery::list_segments(&dir)?;
        let mut replay = Replay::default();
        let mut segments = Vec::with_capacity(listed.len());
        for (i, (seq, path)) in listed.iter().enumerate() {
            let after_seal = segments.last().is_some_and(|s: &SegmentInfo| s.sealed);
            segments.push(recovery::scan_segment(
                *seq,
                path,
                i + 1 == listed.len(),
                after_seal,
                &mut replay,
            )?);
        }
        // A full segment is sealed once the next one exists durably, before anything but its
        // start is written to that one. Unsealed with another after it is a crash in between
        // only if that other is the last segment and holds nothing but its start; otherwise
        // the unsealed segment lost its end.
        for (i, seg) in segments.iter().enumerate() {
            let next = segments.get(i + 1);
            let crash_in_rotation = i + 2 == segments.len() && next.is_some_and(|n| !n.has_body);
            if seg.version >= 2 && !seg.sealed && next.is_some() && !crash_in_rotation {
                return Err(StorageError::Corrupt {
                    path: seg.path.clone(),
                    offset: seg.len,
                    reason: "the segment ends without its seal although a later segment holds \
                             records: its last records are missing"
                        .into(),
                });
            }
        }
        // A sealed last segment: the one its seal names was created, and is gone.
        if let Some(last) = segments.last().filter(|s| s.sealed) {
            return Err(StorageError::MissingLastSegment {
                missing: recovery::segment_path(&dir, last.seq + 1),
                sealed: last.path.clone(),
            });
        }
        // The newest snapshot file is the authority on what the log may omit.
        let snap_file = snapshot::load_latest_snapshot(&dir)?.map(|(meta, _)| meta);
        if replay.snap.index > 0 && snap_file.is_none_or(|m| m.index < replay.snap.index) {
            return Err(StorageError::Corrupt {
                path: dir.clone(),
                offset: 0,
                reason: format!(
                    "the log records a snapshot at index {} but the newest snapshot file is {:?}",
                    replay.snap.index, snap_file
                ),
            });
        }
        if let Some(meta) = snap_file {
            // A snapshot is only ever taken by a node whose log holds its term and vote (each
            // segment starts with them, durable before the snapshot): a log without them was
            // deleted or emptied, and starting from term 0 could let the node vote twice.
            if !replay.saw_hard_state {
                return Err(StorageError::StateLost {
                    snapshot: snapshot::latest_path(&dir)?.unwrap_or_else(|| dir.clone()),
                    dir,
                    index: meta.index,
                    term: meta.term,
                });
            }
            replay.apply_snapshot(meta);
        }
        replay.finish(&dir)?;

        let mut fresh = false;
        if segments.is_empty() {
            let path = recovery::segment_path(&dir, 1);
            segments.push(SegmentInfo {
                seq: 1,
                path,
                max_index: 0,
                len: 0,
                sealed: false,
                version: record::SEGMENT_VERSION,
                has_body: false,
            });
            fresh = true;
        }
        let last = segments.last().expect("at least one segment");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&last.path)
            .map_err(io_err("open", &last.path))?;
        let alloc_end = file.metadata().map_err(io_err("stat", &last.path))?.len();
        let mut wal = Wal {
            seg_len: last.len,
            file_off: last.len,
            alloc_end,
            dir,
            opts,
            _lock: lock,
            file,
            seg_has_records: true,
            // Seals exist since version 2.
            seg_sealable: last.version >= 2,
            pending: Vec::new(),
            needs_fsync: false,
            dir_dirty: false,
            poisoned: false,
            faults: Faults::none(),
            hard_state: replay.hard_state,
            snap: replay.snap,
            terms: replay.entries.iter().map(|e| e.term).collect(),
            stats: WalStats::default(),
            segments,
        };
        if fresh {
            wal.start_segment(1);
            wal.dir_dirty = true;
        } else {
            // Continue in a new segment that starts with the recovered hard state and snapshot
            // position. The old last segment may lack those (its start was torn, or it was
            // truncated), and it may be compacted away later.
            wal.rotate()?;
        }
        wal.sync()?;
        let recovered = Recovered {
            hard_state: replay.hard_state,
            snapshot: (replay.snap.index > 0).then_some(replay.snap),
            entries: replay.entries.into(),
        };
        Ok((wal, recovered))
    }

    /// The directory holding the segments and snapshots.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current hard state (including buffered, not yet synced changes).
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The newest snapshot position recorded in the log.
    pub fn snapshot(&self) -> Option<SnapshotMeta> {
        (self.snap.index > 0).then_some(self.snap)
    }

    /// Index of the last entry (the snapshot index when the log after it is empty).
    pub fn last_index(&self) -> u64 {
        self.snap.index + self.terms.len() as u64
    }

    /// Term of the entry at `index`, if the log (or the snapshot boundary) holds it.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snap.index {
            return Some(self.snap.term);
        }
        let pos = index.checked_sub(self.snap.index + 1)?;
        self.terms.get(pos as usize).copied()
    }

    /// Test hook: makes later writes or fdatasyncs fail as `faults` decides.
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// Whether an earlier write or sync failed.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Counters.
    pub fn stats(&self) -> WalStats {
        WalStats {
            segments: self.segments.len(),
            ..self.stats
        }
    }

    /// Appends entries; they must continue the log (`entries[0].index == last_index() + 1`).
    /// Buffered until [`Wal::sync`].
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        for e in entries {
            self.append_entry(e.index, e.term, &e.data)?;
        }
        Ok(())
    }

    /// Appends one entry without copying its payload. Buffered until [`Wal::sync`].
    pub fn append_entry(&mut self, index: u64, term: u64, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        if index != self.last_index() + 1 {
            return Err(StorageError::Invalid(format!(
                "append of entry {index} does not continue the log (last index {})",
                self.last_index()
            )));
        }
        let last_term = self.term_at(self.last_index()).unwrap_or(0);
        if term < last_term {
            return Err(StorageError::Invalid(format!(
                "entry {index} has term {term} below the last term {last_term}"
            )));
        }
        if data.len() as u64 + 17 > u64::from(MAX_RECORD_LEN) {
            return Err(StorageError::Invalid(format!(
                "entry {index} of {} bytes exceeds the maximum record size {MAX_RECORD_LEN}",
                data.len()
            )));
        }
        self.push(&Record::Entry { index, term, data })?;
        self.terms.push_back(term);
        let seg = self.segments.last_mut().expect("at least one segment");
        seg.max_index = seg.max_index.max(index);
        Ok(())
    }

    /// Drops every entry with index `>= from`. `from` must be above the snapshot and at most
    /// `last_index() + 1`. Buffered until [`Wal::sync`].
    pub fn truncate_from(&mut self, from: u64) -> Result<()> {
        self.check_writable()?;
        if from <= self.snap.index || from > self.last_index() + 1 {
            return Err(StorageError::Invalid(format!(
                "truncation from {from} outside ({}, {}]",
                self.snap.index,
                self.last_index() + 1
            )));
        }
        if from == self.last_index() + 1 {
            return Ok(());
        }
        self.push(&Record::Truncate { from })?;
        self.terms.truncate((from - self.snap.index - 1) as usize);
        Ok(())
    }

    /// Records a new hard state. Buffered until [`Wal::sync`]; an unchanged state writes nothing.
    pub fn set_hard_state(&mut self, hs: HardState) -> Result<()> {
        self.check_writable()?;
        if hs == self.hard_state {
            return Ok(());
        }
        self.push(&Record::HardState(hs))?;
        self.hard_state = hs;
        Ok(())
    }

    /// Makes everything buffered durable: one write and one fdatasync for the whole batch
    /// (group commit), plus a directory fsync if segments were created.
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable()?;
        self.flush_pending()?;
        if self.needs_fsync {
            let r = self.fdatasync();
            self.poison_on_err(r, "fdatasync")?;
            self.needs_fsync = false;
            self.stats.fsyncs += 1;
        }
        if self.dir_dirty {
            if let Err(e) = snapshot::sync_dir(&self.dir) {
                self.poison(&e);
                return Err(e);
            }
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Writes a snapshot file atomically, records it in the log and syncs.
    ///
    /// If the log holds `meta.index` with `meta.term`, the entries after it are kept;
    /// otherwise the whole log is discarded (a follower installing a leader's snapshot).
    pub fn save_snapshot(&mut self, meta: SnapshotMeta, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        if meta.index == 0 || meta.index <= self.snap.index {
            return Err(StorageError::Invalid(format!(
                "snapshot at index {} does not advance the current snapshot at {}",
                meta.index, self.snap.index
            )));
        }
        if let Err(e) = snapshot::write_snapshot(&self.dir, meta, data) {
            self.poison(&e);
            return Err(e);
        }
        self.push(&Record::Snapshot {
            index: meta.index,
            term: meta.term,
        })?;
        if self.term_at(meta.index) == Some(meta.term) {
            self.terms.drain(..(meta.index - self.snap.index) as usize);
        } else {
            self.terms.clear();
        }
        self.snap = meta;
        self.sync()
    }

    /// Loads and verifies the newest snapshot file.
    pub fn load_latest_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>> {
        snapshot::load_latest_snapshot(&self.dir)
    }

    /// Removes whole old segments whose entries all lie at or below `upto`, which a durable
    /// snapshot must cover (`upto <= snapshot index`). The current segment is never removed.
    /// Returns the number of segments removed.
    pub fn compact(&mut self, upto: u64) -> Result<usize> {
        if upto > self.snap.index {
            return Err(StorageError::Invalid(format!(
                "compaction up to {upto} beyond the snapshot at {}",
                self.snap.index
            )));
        }
        self.sync()?;
        let mut removed = 0;
        while self.segments.len() > 1 && self.segments[0].max_index <= upto {
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path).map_err(io_err("remove", &seg.path))?;
            tracing::debug!(file = %seg.path.display(), "removed compacted WAL segment");
            removed += 1;
        }
        if removed > 0 {
            snapshot::sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    fn check_writable(&self) -> Result<()> {
        if self.poisoned {
            Err(StorageError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn current_path(&self) -> &Path {
        self.segments.last().map_or(Path::new(""), |s| &s.path)
    }

    fn fdatasync(&mut self) -> std::io::Result<()> {
        self.faults.check(FileOp::Fdatasync, self.current_path())?;
        self.file.sync_data()
    }

    fn write_pending(&mut self) -> std::io::Result<()> {
        self.faults.check(FileOp::Write, self.current_path())?;
        self.file.write_all_at(&self.pending, self.file_off)
    }

    /// Extends the current segment's file with zeros to `preallocate` bytes past `file_off`
    /// (at most to `segment_size`) once less than half of that is left. The zeros are made
    /// durable by the next fdatasync, which then costs one extra write of them; the ones
    /// after are data-only. Best effort: zeros hold no data, so a failure (a full disk) only
    /// ends the preallocation of this segment, with a warning; the records' own writes
    /// decide whether the log can go on.
    fn preallocate_ahead(&mut self) {
        let ahead = self.opts.preallocate;
        if ahead == 0 || self.alloc_end >= self.file_off + ahead / 2 {
            return;
        }
        let target = (self.file_off + ahead).min(self.opts.segment_size.max(self.file_off));
        let from = self.alloc_end.max(self.file_off);
        if target <= from {
            return;
        }
        if preallocate(&self.file, self.current_path(), from, target) {
            self.alloc_end = target;
            self.stats.bytes_written += target - from;
        } else {
            // Not again for this segment.
            self.alloc_end = self.opts.segment_size.max(self.file_off);
        }
    }

    fn poison(&mut self, e: &StorageError) {
        tracing::error!(error = %e, "WAL write failed; refusing further writes");
        self.poisoned = true;
    }

    fn poison_on_err<T>(&mut self, r: std::io::Result<T>, op: &'static str) -> Result<T> {
        r.map_err(|source| {
            let path = self
                .segments
                .last()
                .map(|s| s.path.clone())
                .unwrap_or_default();
            let e = StorageError::Io { op, path, source };
            self.poison(&e);
            e
        })
    }

    /// Encodes one record into the buffer, rotating the segment first if it is full.
    fn push(&mut self, rec: &Record<'_>) -> Result<()> {
        if self.seg_has_records && self.seg_len >= self.opts.segment_size {
            self.rotate()?;
        }
        let n = record::encode(rec, &mut self.pending);
        self.seg_len += n as u64;
        self.seg_has_records = true;
        self.stats.records += 1;
        if self.pending.len() >= self.opts.write_buffer {
            self.flush_pending()?;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let r = self.write_pending();
        self.poison_on_err(r, "write")?;
        self.file_off += self.pending.len() as u64;
        self.alloc_end = self.alloc_end.max(self.file_off);
        self.stats.bytes_written += self.pending.len() as u64;
        self.pending.clear();
        self.needs_fsync = true;
        self.preallocate_ahead();
        Ok(())
    }

    /// The header of a new segment and the state that makes it self-contained (the hard
    /// state and the snapshot position), so that older segments can be removed.
    fn segment_start(&self, seq: u64) -> Vec<u8> {
        let mut out = record::segment_header(seq).to_vec();
        record::encode(&Record::HardState(self.hard_state), &mut out);
        if self.snap.index > 0 {
            record::encode(
                &Record::Snapshot {
                    index: self.snap.index,
                    term: self.snap.term,
                },
                &mut out,
            );
        }
        out
    }

    /// Buffers the start of the first segment of a fresh log.
    fn start_segment(&mut self, seq: u64) {
        let start = self.segment_start(seq);
        self.pending.extend_from_slice(&start);
        self.seg_len = start.len() as u64;
        self.seg_has_records = false;
    }

    /// Starts the next segment and seals the current one.
    ///
    /// The order makes a seal a proof: the new segment's start (header, hard state, snapshot
    /// position) and its directory entry are durable before the seal is written to the old
    /// segment. Recovery then refuses a log whose newest segment is gone or empty while the
    /// one before it is sealed, and a log whose older segment lost its end (no seal), instead
    /// of starting with less than was durable. A crash between the two leaves an unsealed
    /// segment followed by a complete one, which is fine.
    fn rotate(&mut self) -> Result<()> {
        self.flush_pending()?;
        if self.needs_fsync {
            let r = self.fdatasync();
            self.poison_on_err(r, "fdatasync")?;
            self.needs_fsync = false;
            self.stats.fsyncs += 1;
        }
        let seq = self.segments.last().expect("at least one segment").seq + 1;
        let path = recovery::segment_path(&self.dir, seq);
        let start = self.segment_start(seq);
        let created = self.create_segment(&path, &start);
        let (file, alloc_end) = match created {
            Ok(f) => f,
            Err(e) => {
                self.poison(&e);
                return Err(e);
            }
        };
        if let Err(e) = snapshot::sync_dir(&self.dir) {
            self.poison(&e);
            return Err(e);
        }
        if self.seg_sealable {
            let mut seal = Vec::new();
            record::encode(&Record::Seal { next: seq }, &mut seal);
            let r = self
                .faults
                .check(FileOp::Write, self.current_path())
                .and_then(|()| self.file.write_all_at(&seal, self.file_off));
            self.poison_on_err(r, "write")?;
            let r = self.fdatasync();
            self.poison_on_err(r, "fdatasync")?;
            self.stats.fsyncs += 1;
            self.stats.bytes_written += seal.len() as u64;
        }
        self.file = file;
        self.segments.push(SegmentInfo {
            seq,
            path,
            max_index: 0,
            len: 0,
            sealed: false,
            version: record::SEGMENT_VERSION,
            has_body: false,
        });
        self.seg_len = start.len() as u64;
        self.file_off = start.len() as u64;
        self.alloc_end = alloc_end;
        self.seg_has_records = false;
        self.seg_sealable = true;
        self.stats.fsyncs += 1;
        self.stats.bytes_written += start.len() as u64;
        Ok(())
    }

    /// Creates segment file `path` holding `start` and its first preallocated zeros, written
    /// and synced. Returns the file and its length.
    fn create_segment(&self, path: &Path, start: &[u8]) -> Result<(File, u64)> {
        let err = |op: &'static str| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { op, path, source }
        };
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(path)
            .map_err(err("create"))?;
        let len = start.len() as u64;
        self.faults
            .check(FileOp::Write, path)
            .and_then(|()| file.write_all_at(start, 0))
            .map_err(err("write"))?;
        let target = (len + self.opts.preallocate)
            .min(self.opts.segment_size)
            .max(len);
        let alloc_end = if preallocate(&file, path, len, target) {
            target
        } else {
            self.opts.segment_size.max(len)
        };
        self.faults
            .check(FileOp::Fdatasync, path)
            .and_then(|()| file.sync_data())
            .map_err(err("fdatasync"))?;
        Ok((file, alloc_end))
    }
}

/// Extends segment `file` with zeros from byte `from` up to `to`; whether it did. Best effort:
/// zeros hold no data, so a failure (a full disk) is only a warning.
fn preallocate(file: &File, path: &Path, from: u64, to: u64) -> bool {
    match write_zeros(file, from, to) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e,
                "could not preallocate the WAL segment; going on without");
            false
        }
    }
}

/// Writes zeros to `file` from byte `from` up to `to`.
fn write_zeros(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    static CHUNK: [u8; 64 << 10] = [0; 64 << 10];
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK.len() as u64) as usize;
        file.write_all_at(&CHUNK[..n], at)?;
        at += n as u64;
    }
    Ok(())
}
