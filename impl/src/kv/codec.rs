//! The snapshot codec: a small, versioned, length-prefixed binary format.
//!
//! ```text
//! "RKVS" version:u8 applied:u64 capacity:u64
//! n:u32 { key:str value:str }*n
//! m:u32 { client:u64 last_req:u64 last_index:u64 reply }*m
//! k:u32 { id:u64 peer_addr:str client_addr:str }*k     (version 2 on)
//! checksum:u64   (FNV-1a of everything before it)
//! str   = len:u32 bytes(UTF-8)
//! reply = tag:u8 (0 done, 1 value, 2 cas-failed, 3 stale) [opt-str for 1, 2]
//! opt-str = 0:u8 | 1:u8 str
//! ```
//! Integers are little-endian. Version 2 added the address book; version 1
//! snapshots (without one) are still read.

use std::collections::BTreeMap;

use super::members::MemberAddrs;
use super::session::{Session, SessionTable};
use super::{KvStore, Reply};
use crate::bugs::Bugs;

const MAGIC: &[u8; 4] = b"RKVS";
const VERSION: u8 = 2;

/// Why a snapshot could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("snapshot truncated at byte {0}")]
    Truncated(usize),
    #[error("not a raftkv snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot version {0}")]
    BadVersion(u8),
    #[error("invalid UTF-8 in a string at byte {0}")]
    BadUtf8(usize),
    #[error("invalid tag {tag} at byte {at}")]
    BadTag { tag: u8, at: usize },
    #[error("checksum mismatch")]
    Checksum,
    #[error("{0} unexpected bytes after the snapshot")]
    Trailing(usize),
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt(&mut self, s: &Option<String>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
}

/// Encodes a store.
pub fn encode(kv: &KvStore) -> Vec<u8> {
    encode_version(kv, VERSION)
}

/// Encodes a store in format `version` (1: without the address book).
fn encode_version(kv: &KvStore, version: u8) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(64));
    w.0.extend_from_slice(MAGIC);
    w.u8(version);
    w.u64(kv.applied);
    w.u64(kv.sessions.capacity as u64);
    w.u32(kv.data.len() as u32);
    for (k, v) in &kv.data {
        w.str(k);
        w.str(v);
    }
    w.u32(kv.sessions.map.len() as u32);
    for (c, s) in &kv.sessions.map {
        w.u64(*c);
        w.u64(s.last_req);
        w.u64(s.last_index);
        match &s.reply {
            Reply::Done => w.u8(0),
            Reply::Value(v) => {
                w.u8(1);
                w.opt(v);
            }
            Reply::CasFailed(v) => {
                w.u8(2);
                w.opt(v);
            }
            Reply::Stale => w.u8(3),
        }
    }
    if version >= 2 {
        w.u32(kv.members.len() as u32);
        for (id, a) in &kv.members {
            w.u64(*id);
            w.str(&a.peer_addr);
            w.str(&a.client_addr);
        }
    }
    let sum = fnv(&w.0);
    w.u64(sum);
    w.0
}

struct R<'a> {
    b: &'a [u8],
    at: usize,
}

impl R<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        if self.b.len() - self.at < n {
            return Err(CodecError::Truncated(self.at));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn str(&mut self) -> Result<String, CodecError> {
        let n = self.u32()? as usize;
        let at = self.at;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError::BadUtf8(at))
    }
    fn opt(&mut self) -> Result<Option<String>, CodecError> {
        let at = self.at;
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            tag => Err(CodecError::BadTag { tag, at }),
        }
    }
}

/// Decodes a store; any corruption is an error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<KvStore, CodecError> {
    if bytes.len() < MAGIC.len() || &bytes[..4] != MAGIC {
        return Err(CodecError::BadMagic);
    }
    if bytes.len() < 13 {
        return Err(CodecError::Truncated(bytes.len()));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let mut r = R { b: body, at: 4 };
    let version = r.u8()?;
    if !(1..=VERSION).contains(&version) {
        return Err(CodecError::BadVersion(version));
    }
    if fnv(body) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
        return Err(CodecError::Checksum);
    }
    let applied = r.u64()?;
    let capacity = r.u64()? as usize;
    let n = r.u32()?;
    let mut data = BTreeMap::new();
    for _ in 0..n {
        let k = r.str()?;
        let v = r.str()?;
        data.insert(k, v);
    }
    let m = r.u32()?;
    let mut sessions = SessionTable::new(capacity);
    for _ in 0..m {
        let client = r.u64()?;
        let last_req = r.u64()?;
        let last_index = r.u64()?;
        let at = r.at;
        let reply = match r.u8()? {
            0 => Reply::Done,
            1 => Reply::Value(r.opt()?),
            2 => Reply::CasFailed(r.opt()?),
            3 => Reply::Stale,
            tag => return Err(CodecError::BadTag { tag, at }),
        };
        sessions.map.insert(
            client,
            Session {
                last_req,
                reply,
                last_index,
            },
        );
    }
    let mut members = BTreeMap::new();
    if version >= 2 {
        let k = r.u32()?;
        for _ in 0..k {
            let id = r.u64()?;
            let peer_addr = r.str()?;
            let client_addr = r.str()?;
            members.insert(
                id,
                MemberAddrs {
                    peer_addr,
                    client_addr,
                },
            );
        }
    }
    if r.at != body.len() {
        return Err(CodecError::Trailing(body.len() - r.at));
    }
    Ok(KvStore {
        data,
        sessions,
        applied,
        members,
        bugs: Bugs::NONE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reply() -> impl Strategy<Value = Reply> {
        prop_oneof![
            Just(Reply::Done),
            Just(Reply::Stale),
            proptest::option::of("[a-z]{0,5}").prop_map(Reply::Value),
            proptest::option::of("[a-z]{0,5}").prop_map(Reply::CasFailed),
        ]
    }

    fn store() -> impl Strategy<Value = KvStore> {
        (
            0u64..1000,
            1usize..64,
            proptest::collection::btree_map("\\PC{0,6}", "\\PC{0,6}", 0..8),
            proptest::collection::btree_map(0u64..100, (0u64..50, 0u64..1000, reply()), 0..8),
            proptest::collection::btree_map(1u64..10, ("\\PC{0,8}", "\\PC{0,8}"), 0..4),
        )
            .prop_map(|(applied, cap, data, sess, book)| {
                let mut sessions = SessionTable::new(cap);
                for (c, (last_req, last_index, reply)) in sess {
                    sessions.map.insert(
                        c,
                        Session {
                            last_req,
                            reply,
                            last_index,
                        },
                    );
                }
                let members = book
                    .into_iter()
                    .map(|(id, (peer_addr, client_addr))| {
                        let a = MemberAddrs {
                            peer_addr,
                            client_addr,
                        };
                        (id, a)
                    })
                    .collect();
                KvStore {
                    data,
                    sessions,
                    applied,
                    members,
                    bugs: Bugs::NONE,
                }
            })
    }

    #[test]
    fn a_version_1_snapshot_is_read_without_an_address_book() {
        let mut kv = KvStore::new(4, Bugs::NONE);
        kv.data.insert("k".into(), "v".into());
        kv.applied = 7;
        let v1 = encode_version(&kv, 1);
        assert_eq!(v1[4], 1);
        assert_eq!(decode(&v1).unwrap(), kv);
        let mut v3 = encode(&kv);
        v3[4] = 3;
        assert_eq!(decode(&v3), Err(CodecError::BadVersion(3)));
    }

    proptest! {
        #[test]
        fn round_trip(kv in store()) {
            prop_assert_eq!(decode(&encode(&kv)).unwrap(), kv);
        }

        #[test]
        fn corruption_is_an_error_not_a_panic(kv in store(), at in any::<usize>(), bit in 0u8..8) {
            let mut bytes = encode(&kv);
            let i = at % bytes.len();
            bytes[i] ^= 1 << bit;
            prop_assert!(decode(&bytes).is_err());
        }

        #[test]
        fn truncation_is_an_error(kv in store(), cut in any::<usize>()) {
            let bytes = encode(&kv);
            let n = cut % bytes.len();
            prop_assert!(decode(&bytes[..n]).is_err());
        }
    }
}
