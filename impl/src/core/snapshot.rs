//! Sending and receiving snapshots in chunks (InstallSnapshot).
//!
//! The leader sends every chunk of its latest snapshot at once (in order);
//! the follower assembles chunks whose offset continues its buffer and
//! drops anything else. Only a complete snapshot is installed and answered;
//! if a chunk is lost the leader resends the whole snapshot after
//! `snapshot_retry_ticks` without a reply.

use std::sync::Arc;

use super::{Body, Membership, NodeId, RaftNode, Role, Snapshot, SnapshotMeta};

/// A snapshot being received.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub from: NodeId,
    pub meta: SnapshotMeta,
    pub config: Membership,
    pub buf: Vec<u8>,
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
        if offset == 0 {
            self.incoming = Some(Incoming {
                from,
                meta,
                config: config.clone(),
                buf: Vec::new(),
            });
        }
        let Some(inc) = self.incoming.as_mut() else {
            return;
        };
        if inc.from != from
            || inc.meta != meta
            || inc.config != config
            || inc.buf.len() as u64 != offset
        {
            return;
        }
        inc.buf.extend_from_slice(&chunk);
        if !done {
            return;
        }
        let inc = self.incoming.take().expect("incoming snapshot");
        self.log.install(meta, inc.config.clone());
        let snap = Snapshot {
            meta,
            config: inc.config,
            data: Arc::new(inc.buf),
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
