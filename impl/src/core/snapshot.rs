//! Sending and receiving snapshots in chunks (InstallSnapshot).
//!
//! The leader sends every chunk of its latest snapshot at once (in order);
//! the network may reorder, drop or repeat them. The follower keeps each
//! chunk of the snapshot it is receiving by its offset, across the leader's
//! resends, and installs (and answers) on the last chunk (`done`, Figure 13
//! step 4) once the chunks it holds cover every byte before it. If a chunk is
//! lost, or the last one overtakes another, the leader resends the whole
//! snapshot after `snapshot_retry_ticks` without a reply, and the chunks
//! already held need not arrive again.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Body, Membership, NodeId, RaftNode, Role, Snapshot, SnapshotMeta};

/// A snapshot being received.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub from: NodeId,
    pub meta: SnapshotMeta,
    pub config: Membership,
    /// The chunks held, by byte offset.
    pub chunks: BTreeMap<u64, Vec<u8>>,
}

impl Incoming {
    /// The snapshot's bytes, if the chunks held cover `0..len` without a gap.
    fn assemble(&self, len: u64) -> Option<Vec<u8>> {
        // `len` comes from the wire: allocate only what the chunks hold.
        let held: usize = self.chunks.values().map(Vec::len).sum();
        let mut buf = Vec::with_capacity(held.min(usize::try_from(len).ok()?));
        for (&offset, chunk) in &self.chunks {
            let have = buf.len() as u64;
            if have >= len {
                break;
            }
            if offset > have {
                return None;
            }
            // Chunks of another size from an earlier send may overlap.
            let end = offset.saturating_add(chunk.len() as u64).min(len);
            if end > have {
                buf.extend_from_slice(&chunk[(have - offset) as usize..(end - offset) as usize]);
            }
        }
        (buf.len() as u64 == len).then_some(buf)
    }
}

impl RaftNode {
    /// Leader: `to` needs entries we have compacted; send our snapshot.
    pub(crate) fn send_snapshot(&mut self, to: NodeId) {
        let Some(snap) = self.snapshot.clone() else {
            return;
        };
        let chunk = self.config().snapshot_chunk.max(1);
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.become_snapshot(snap.meta.index);
        }
        let data = &snap.data;
        let mut offset = 0usize;
        loop {
            let end = (offset + chunk).min(data.len());
            let done = end == data.len();
            self.send(
                to,
                Body::InstallSnapshot {
                    meta: snap.meta,
                    config: snap.config.clone(),
                    offset: offset as u64,
                    chunk: data[offset..end].to_vec(),
                    done,
                },
            );
            if done {
                break;
            }
            offset = end;
        }
    }

    /// Follower: one chunk of a snapshot from the leader.
    pub(crate) fn handle_snapshot_chunk(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        config: Membership,
        offset: u64,
        chunk: Vec<u8>,
        done: bool,
    ) {
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(self.term, Some(from));
        }
        self.election_elapsed = 0;
        if meta.index <= self.log.committed {
            // We already hold everything the snapshot covers.
            self.incoming = None;
            self.send(
                from,
                Body::InstallSnapshotReply {
                    last_index: meta.index,
                },
            );
            return;
        }
        match &self.incoming {
            Some(i) if i.from == from && i.meta == meta && i.config == config => {}
            // A late chunk of an older snapshot than the one being received.
            Some(i) if i.from == from && i.meta.index > meta.index => return,
            // The first chunk of a snapshot, or of a newer one, or from
            // another leader: start over.
            _ => {
                self.incoming = Some(Incoming {
                    from,
                    meta,
                    config: config.clone(),
                    chunks: BTreeMap::new(),
                })
            }
        }
        let inc = self.incoming.as_mut().expect("incoming snapshot");
        let len = offset.saturating_add(chunk.len() as u64);
        inc.chunks.insert(offset, chunk);
        if !done {
            return;
        }
        let Some(data) = inc.assemble(len) else {
            // Some earlier chunk is missing: wait for the leader's resend.
            return;
        };
        let inc = self.incoming.take().expect("incoming snapshot");
        self.log.install(meta, inc.config.clone());
        let snap = Snapshot {
            meta,
            config: inc.config,
            data: Arc::new(data),
        };
        self.snapshot = Some(snap.clone());
        self.pending_snapshot = Some(snap);
        self.trace().snapshot_installed(meta);
        self.send(
            from,
            Body::InstallSnapshotReply {
                last_index: meta.index,
            },
        );
    }

    /// Leader: the follower holds our snapshot up to `last_index`.
    pub(crate) fn handle_snapshot_reply(&mut self, from: NodeId, last_index: u64) {
        if self.role != Role::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        if pr.acked(last_index) {
            self.maybe_commit();
        }
        self.send_append(from);
    }
}
