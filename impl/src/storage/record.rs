//! On-disk encoding of WAL segment headers and records.
//!
//! A segment file is a 20-byte header followed by records:
//!
//! ```text
//! header:  magic "RKVWAL" (6) | version u16 LE (2) | segment number u64 LE (8) | crc32c of the previous 16 bytes (4)
//! record:  payload length u32 LE (4) | crc32c(length bytes) u32 LE (4)
//!          | crc32c(length bytes ++ payload) u32 LE (4) | payload
//!          (version 1 segments, still read: no checksum of the length alone)
//! payload: kind u8 | fields (all integers u64 LE)
//!   1 Entry     index, term, data (rest of the payload)
//!   2 HardState term, vote (u64::MAX = none), commit
//!   3 Truncate  from (drop every entry with index >= from)
//!   4 Snapshot  index, term (a snapshot covering the log up to index is durable)
//!   5 Seal      next (the last record of a full segment, written once segment `next` exists
//!               durably with its header and hard state; version 2)
//! ```
//!
//! Version 3 segments are preallocated: the file is extended with zeros ahead of its last
//! record, so that the fdatasync after an append writes data only, not a new file length (a
//! journal commit on ext4 and XFS). Zeros from a record boundary to the end of the file are
//! space not yet written. A record header is never all zeros (the checksum of a zero length is
//! not zero), so an all-zero header followed by nothing but zeros ends the segment's records.

/// Magic bytes at the start of every segment.
pub(crate) const SEGMENT_MAGIC: &[u8; 6] = b"RKVWAL";
/// On-disk format version of the segments this build writes. Version 2 gives each record a
/// checksum of its length field alone, so that a damaged length is never mistaken for a torn
/// write; version 3 adds preallocation (a tail of zeros after the records). Versions 1 (no
/// length checksum) and 2 are still read.
pub(crate) const SEGMENT_VERSION: u16 = 3;
/// Length of the segment header.
pub(crate) const SEGMENT_HEADER_LEN: usize = 20;
/// Length of a record header (length, length checksum, record checksum) in version 2.
pub(crate) const RECORD_HEADER_LEN: usize = 12;

/// Length of a record header in a segment of `version`.
pub(crate) fn record_header_len(version: u16) -> usize {
    if version >= 2 {
        RECORD_HEADER_LEN
    } else {
        8
    }
}
/// Largest accepted record payload. A larger length field is corruption.
pub const MAX_RECORD_LEN: u32 = 64 << 20;

const KIND_ENTRY: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_TRUNCATE: u8 = 3;
const KIND_SNAPSHOT: u8 = 4;
const KIND_SEAL: u8 = 5;
const NO_VOTE: u64 = u64::MAX;

/// The persistent Raft state that is not the log: current term, vote, and a commit hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// Current term.
    pub term: u64,
    /// The node voted for in `term`, if any.
    pub vote: Option<u64>,
    /// A commit index known at the time of writing (a hint: it may lag the real one).
    pub commit: u64,
}

/// One decoded record, borrowing the entry payload from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    Entry {
        index: u64,
        term: u64,
        data: &'a [u8],
    },
    HardState(HardState),
    Truncate {
        from: u64,
    },
    Snapshot {
        index: u64,
        term: u64,
    },
    /// The segment is full and segment `next` exists: nothing follows in this one.
    Seal {
        next: u64,
    },
}

/// Checksum of a record: over its length field and its payload.
pub(crate) fn record_crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload)
}

/// What a segment holds at a record's offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecordAt<'a> {
    /// An intact record (checksums hold) ending at `end`.
    Intact { payload: &'a [u8], end: usize },
    /// Damage. `torn` when it has the shape an interrupted write leaves at the end of a
    /// file: an incomplete header; a verified length running past the end of the file; a
    /// payload checksum failing on a record that ends the file (version 3: or that only
    /// preallocated zeros follow); a header whose length
    /// checksum fails with nothing but zeros after it. (Version 1: a length that runs past
    /// the end, verified or not.)
    Damaged { reason: String, torn: bool },
}

/// Reads the record at `off` of a segment of `version`.
pub(crate) fn record_at(bytes: &[u8], off: usize, version: u16) -> RecordAt<'_> {
    let header = record_header_len(version);
    let rest = bytes.len() - off;
    let damaged = |reason: String, torn: bool| RecordAt::Damaged { reason, torn };
    if rest < header {
        return damaged(format!("incomplete record header ({rest} bytes)"), true);
    }
    let len_bytes: [u8; 4] = bytes[off..off + 4].try_into().expect("4 bytes");
    let len = u32::from_le_bytes(len_bytes);
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let verified = version >= 2;
    if verified && word(off + 4) != crc32c::crc32c(&len_bytes) {
        let zeros_after = bytes[off + header..].iter().all(|&b| b == 0);
        return damaged("record length checksum mismatch".into(), zeros_after);
    }
    if len == 0 || len > MAX_RECORD_LEN {
        return damaged(format!("bad record length {len}"), false);
    }
    let end = off + header + len as usize;
    if end > bytes.len() {
        return damaged(
            format!("record of {len} bytes runs past the end of the file"),
            true,
        );
    }
    let payload = &bytes[off + header..end];
    if record_crc(len_bytes, payload) != word(off + header - 4) {
        // Torn when it ends the file, or (preallocated) only unwritten zeros follow it.
        let last = end == bytes.len() || (version >= 3 && bytes[end..].iter().all(|&b| b == 0));
        return damaged("record checksum mismatch".into(), last);
    }
    RecordAt::Intact { payload, end }
}

/// Appends the encoded record to `out` and returns the number of bytes added.
pub(crate) fn encode(rec: &Record<'_>, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    match *rec {
        Record::Entry { index, term, data } => {
            out.push(KIND_ENTRY);
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&term.to_le_bytes());
            out.extend_from_slice(data);
        }
        Record::HardState(hs) => {
            out.push(KIND_HARD_STATE);
            out.extend_from_slice(&hs.term.to_le_bytes());
            out.extend_from_slice(&hs.vote.unwrap_or(NO_VOTE).to_le_bytes());
            out.extend_from_slice(&hs.commit.to_le_bytes());
        }
        Record::Truncate { from } => {
            out.push(KIND_TRUNCATE);
            out.extend_from_slice(&from.to_le_bytes());
        }
        Record::Snapshot { index, term } => {
            out.push(KIND_SNAPSHOT);
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&term.to_le_bytes());
        }
        Record::Seal { next } => {
            out.push(KIND_SEAL);
            out.extend_from_slice(&next.to_le_bytes());
        }
    }
    let payload_len = out.len() - start - RECORD_HEADER_LEN;
    let len = u32::try_from(payload_len).expect("record payload checked against MAX_RECORD_LEN");
    let len_bytes = len.to_le_bytes();
    let crc = record_crc(len_bytes, &out[start + RECORD_HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc32c::crc32c(&len_bytes).to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    out.len() - start
}

fn u64_at(p: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&p[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Decodes a payload whose checksum has already been verified.
pub(crate) fn decode(payload: &[u8]) -> Result<Record<'_>, String> {
    let (&kind, body) = payload.split_first().ok_or("empty record payload")?;
    let need = |n: usize, what: &str| {
        if body.len() == n {
            Ok(())
        } else {
            Err(format!(
                "{what} record has {} body bytes, expected {n}",
                body.len()
            ))
        }
    };
    match kind {
        KIND_ENTRY => {
            if body.len() < 16 {
                return Err(format!(
                    "entry record has {} body bytes, expected at least 16",
                    body.len()
                ));
            }
            Ok(Record::Entry {
                index: u64_at(body, 0),
                term: u64_at(body, 8),
                data: &body[16..],
            })
        }
        KIND_HARD_STATE => {
            need(24, "hard-state")?;
            let vote = u64_at(body, 8);
            Ok(Record::HardState(HardState {
                term: u64_at(body, 0),
                vote: (vote != NO_VOTE).then_some(vote),
                commit: u64_at(body, 16),
            }))
        }
        KIND_TRUNCATE => {
            need(8, "truncate")?;
            Ok(Record::Truncate {
                from: u64_at(body, 0),
            })
        }
        KIND_SNAPSHOT => {
            need(16, "snapshot")?;
            Ok(Record::Snapshot {
                index: u64_at(body, 0),
                term: u64_at(body, 8),
            })
        }
        KIND_SEAL => {
            need(8, "seal")?;
            Ok(Record::Seal {
                next: u64_at(body, 0),
            })
        }
        other => Err(format!("unknown record kind {other}")),
    }
}

/// Encodes a segment header.
pub(crate) fn segment_header(seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..6].copy_from_slice(SEGMENT_MAGIC);
    h[6..8].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment header and returns its segment number and format version.
pub(crate) fn parse_segment_header(h: &[u8]) -> Result<(u64, u16), String> {
    if h.len() < SEGMENT_HEADER_LEN {
        return Err(format!(
            "segment header is {} bytes, expected {SEGMENT_HEADER_LEN}",
            h.len()
        ));
    }
    if &h[..6] != SEGMENT_MAGIC {
        return Err("bad segment magic (not a raftkv WAL segment)".into());
    }
    let crc = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
    if crc != crc32c::crc32c(&h[..16]) {
        return Err("segment header checksum mismatch".into());
    }
    let version = u16::from_le_bytes([h[6], h[7]]);
    if !(1..=SEGMENT_VERSION).contains(&version) {
        return Err(format!(
            "unsupported segment version {version} (this build reads 1 to {SEGMENT_VERSION})"
        ));
    }
    Ok((u64_at(h, 8), version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let recs = [
            Record::Entry {
                index: 7,
                term: 3,
                data: b"hello",
            },
            Record::Entry {
                index: 8,
                term: 3,
                data: b"",
            },
            Record::HardState(HardState {
                term: 4,
                vote: Some(2),
                commit: 6,
            }),
            Record::HardState(HardState {
                term: 5,
                vote: None,
                commit: 0,
            }),
            Record::Truncate { from: 5 },
            Record::Snapshot { index: 9, term: 4 },
            Record::Seal { next: 3 },
        ];
        for r in recs {
            let mut buf = vec![1, 2, 3];
            let n = encode(&r, &mut buf);
            assert_eq!(n, buf.len() - 3);
            let len = u32::from_le_bytes(buf[3..7].try_into().unwrap());
            let len_crc = u32::from_le_bytes(buf[7..11].try_into().unwrap());
            let crc = u32::from_le_bytes(buf[11..15].try_into().unwrap());
            assert_eq!(len as usize, n - RECORD_HEADER_LEN);
            assert_eq!(len_crc, crc32c::crc32c(&len.to_le_bytes()));
            assert_eq!(crc, record_crc(len.to_le_bytes(), &buf[15..]));
            assert_eq!(decode(&buf[15..]).unwrap(), r);
            match record_at(&buf, 3, SEGMENT_VERSION) {
                RecordAt::Intact { payload, end } => {
                    assert_eq!((payload, end), (&buf[15..], buf.len()));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn bad_payloads_are_rejected() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 0, 0]).is_err());
        assert!(decode(&[KIND_TRUNCATE, 1, 2]).is_err());
        assert!(decode(&[KIND_ENTRY, 1, 2]).is_err());
    }

    #[test]
    fn segment_header_round_trip_and_checks() {
        let h = segment_header(42);
        assert_eq!(parse_segment_header(&h).unwrap(), (42, SEGMENT_VERSION));
        let mut bad = h;
        bad[9] ^= 1;
        assert!(parse_segment_header(&bad).unwrap_err().contains("checksum"));
        let mut bad = h;
        bad[0] = b'X';
        assert!(parse_segment_header(&bad).unwrap_err().contains("magic"));
        assert!(parse_segment_header(&h[..10]).is_err());
    }
}
