//! Snapshot files: written atomically, checksummed, named by (index, term).
//!
//! ```text
//! magic "RKVSNAP1" (8) | index u64 LE | term u64 LE | data length u64 LE
//! | crc32c(index ++ term ++ length ++ data) u32 LE | data
//! ```
//!
//! A snapshot is written to `snap-<index>-<term>.snap.tmp`, fsynced, renamed to its final name,
//! and then the directory is fsynced, so a crash leaves either the old set of snapshots or the
//! new one, never a partial file under a final name.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{io_err, Result, StorageError};

const SNAP_MAGIC: &[u8; 8] = b"RKVSNAP1";
const SNAP_HEADER_LEN: usize = 36;

/// The position in the log that a snapshot covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct SnapshotMeta {
    /// Index of the last log entry the snapshot includes.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
}

fn file_name(meta: SnapshotMeta) -> String {
    format!("snap-{:020}-{:020}.snap", meta.index, meta.term)
}

fn parse_name(name: &str) -> Option<SnapshotMeta> {
    let rest = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
    let (i, t) = rest.split_once('-')?;
    Some(SnapshotMeta {
        index: i.parse().ok()?,
        term: t.parse().ok()?,
    })
}

/// Fsyncs a directory so that file creations, renames and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Lists the snapshot files in `dir`, sorted by (index, term).
fn list(dir: &Path) -> Result<Vec<(SnapshotMeta, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("list directory", dir))? {
        let e = e.map_err(io_err("list directory", dir))?;
        if let Some(meta) = e.file_name().to_str().and_then(parse_name) {
            out.push((meta, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes leftover temporary snapshot files of an interrupted write.
pub(crate) fn remove_temp_files(dir: &Path) -> Result<()> {
    for e in fs::read_dir(dir).map_err(io_err("list directory", dir))? {
        let e = e.map_err(io_err("list directory", dir))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap-") && name.ends_with(".snap.tmp") {
            tracing::info!(file = %e.path().display(), "removing an incomplete snapshot file");
            fs::remove_file(e.path()).map_err(io_err("remove", e.path()))?;
        }
    }
    Ok(())
}

/// Writes a snapshot atomically, then removes older snapshot files.
pub fn write_snapshot(dir: &Path, meta: SnapshotMeta, data: &[u8]) -> Result<PathBuf> {
    let path = dir.join(file_name(meta));
    let tmp = dir.join(format!("{}.tmp", file_name(meta)));
    let mut header = Vec::with_capacity(SNAP_HEADER_LEN);
    header.extend_from_slice(SNAP_MAGIC);
    header.extend_from_slice(&meta.index.to_le_bytes());
    header.extend_from_slice(&meta.term.to_le_bytes());
    header.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[8..32]), data);
    header.extend_from_slice(&crc.to_le_bytes());
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(&header).map_err(io_err("write", &tmp))?;
        f.write_all(data).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    sync_dir(dir)?;
    // Older snapshots are superseded; removing them is not needed for safety.
    let mut removed = false;
    for (m, p) in list(dir)? {
        if m < meta {
            fs::remove_file(&p).map_err(io_err("remove", &p))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(path)
}

/// Reads and verifies one snapshot file.
pub fn read_snapshot(path: &Path) -> Result<(SnapshotMeta, Vec<u8>)> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if bytes.len() < SNAP_HEADER_LEN {
        return Err(corrupt(
            0,
            format!(
                "snapshot file is {} bytes, shorter than its header",
                bytes.len()
            ),
        ));
    }
    if &bytes[..8] != SNAP_MAGIC {
        return Err(corrupt(0, "bad snapshot magic".into()));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let meta = SnapshotMeta {
        index: u64_at(8),
        term: u64_at(16),
    };
    let len = u64_at(24);
    let have = (bytes.len() - SNAP_HEADER_LEN) as u64;
    if len != have {
        return Err(corrupt(
            24,
            format!("snapshot data length field says {len} bytes, file holds {have}"),
        ));
    }
    let crc = u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes"));
    let data = &bytes[SNAP_HEADER_LEN..];
    if crc != crc32c::crc32c_append(crc32c::crc32c(&bytes[8..32]), data) {
        return Err(corrupt(0, "snapshot checksum mismatch".into()));
    }
    if let Some(named) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_name)
    {
        if named != meta {
            return Err(corrupt(
                8,
                format!("snapshot header says {meta:?} but its file name says {named:?}"),
            ));
        }
    }
    Ok((meta, data.to_vec()))
}

/// The path of the newest snapshot file in `dir`, if any.
pub(crate) fn latest_path(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list(dir)?.pop().map(|(_, path)| path))
}

/// Loads the newest snapshot in `dir`, verifying its checksum.
///
/// A corrupt newest snapshot is an error, not a reason to fall back to an older one: the log
/// it allowed to compact is gone.
pub fn load_latest_snapshot(dir: &Path) -> Result<Option<(SnapshotMeta, Vec<u8>)>> {
    match list(dir)?.pop() {
        None => Ok(None),
        Some((_, path)) => read_snapshot(&path).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_load_replace_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_latest_snapshot(dir.path()).unwrap().is_none());
        let m1 = SnapshotMeta { index: 10, term: 2 };
        write_snapshot(dir.path(), m1, b"state one").unwrap();
        assert_eq!(
            load_latest_snapshot(dir.path()).unwrap().unwrap(),
            (m1, b"state one".to_vec())
        );
        let m2 = SnapshotMeta { index: 20, term: 3 };
        let p2 = write_snapshot(dir.path(), m2, b"state two").unwrap();
        assert_eq!(
            load_latest_snapshot(dir.path()).unwrap().unwrap(),
            (m2, b"state two".to_vec())
        );
        assert_eq!(list(dir.path()).unwrap().len(), 1, "older snapshot removed");
        // No temporary file is left behind.
        assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")));

        let mut bytes = fs::read(&p2).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        fs::write(&p2, &bytes).unwrap();
        let err = load_latest_snapshot(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("checksum mismatch") && err.contains("snap-"),
            "{err}"
        );

        fs::write(&p2, &bytes[..bytes.len() - 3]).unwrap();
        let err = load_latest_snapshot(dir.path()).unwrap_err().to_string();
        assert!(err.contains("length field"), "{err}");
    }

    #[test]
    fn temp_files_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path()
                .join("snap-00000000000000000005-00000000000000000001.snap.tmp"),
            b"partial",
        )
        .unwrap();
        remove_temp_files(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
