//! The simulated disk: what a node has made durable. A crash loses
//! everything else (the node's memory and whatever it had not yet handed to
//! the disk through a `Ready`).

use std::sync::Arc;

use raftkv::core::{
    Entry, HardState, Index, Membership, NodeId, Recovered, Snapshot, SnapshotMeta, Term,
};

/// One write a raftkv node asks for.
#[derive(Debug, Clone)]
pub enum Write {
    /// What a `Ready` asks to persist, written and synced together.
    Persist {
        hard_state: Option<HardState>,
        /// A snapshot received from the leader.
        snapshot: Option<Snapshot>,
        /// Entries that replace the stored log from the first one on.
        entries: Vec<Entry>,
    },
    /// A snapshot the node took of its own state machine.
    Compact {
        index: Index,
        term: Term,
        /// The configuration in use at `index`.
        config: Membership,
        data: Arc<Vec<u8>>,
    },
}

/// One node's stable storage.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot.
    pub entries: Vec<Entry>,
    /// How many times the node has started.
    pub incarnation: u64,
    pub writes: u64,
}

impl Disk {
    fn snap_meta(&self) -> SnapshotMeta {
        self.snapshot.as_ref().map(|s| s.meta).unwrap_or_default()
    }

    /// The term of the durable entry at `index` (`Some` for the snapshot's
    /// last entry).
    pub fn term(&self, index: Index) -> Option<Term> {
        let s = self.snap_meta();
        if index == s.index {
            return Some(s.term);
        }
        if index < s.index {
            return None;
        }
        self.entries
            .get((index - s.index - 1) as usize)
            .map(|e| e.term)
    }

    /// Whether the entry (`index`, `term`) is durable here (or covered by
    /// the snapshot, which holds only committed entries).
    pub fn holds(&self, index: Index, term: Term) -> bool {
        index <= self.snap_meta().index || self.term(index) == Some(term)
    }

    pub fn last_index(&self) -> Index {
        self.snap_meta().index + self.entries.len() as u64
    }

    /// Writes and syncs everything a `Ready` asks to persist.
    fn persist(
        &mut self,
        hard_state: Option<HardState>,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
    ) {
        self.writes += 1;
        if let Some(snap) = snapshot {
            let keep = self.term(snap.meta.index) == Some(snap.meta.term)
                && snap.meta.index <= self.last_index();
            let old = self.snap_meta();
            if keep {
                let drop = (snap.meta.index - old.index) as usize;
                self.entries.drain(..drop.min(self.entries.len()));
            } else {
                self.entries.clear();
            }
            self.snapshot = Some(snap);
        }
        // Entries overwrite the stored log from the first one on (those the
        // snapshot already covers are skipped).
        let s = self.snap_meta();
        let fresh = entries.into_iter().skip_while(|e| e.index <= s.index);
        let mut fresh = fresh.peekable();
        if let Some(first) = fresh.peek() {
            self.entries.truncate((first.index - s.index - 1) as usize);
            self.entries.extend(fresh);
        }
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
    }

    /// Records a snapshot the node took and drops the log prefix it covers.
    fn compact(&mut self, index: Index, term: Term, config: Membership, data: Arc<Vec<u8>>) {
        let old = self.snap_meta();
        if index <= old.index {
            return;
        }
        let drop = (index - old.index) as usize;
        self.entries.drain(..drop.min(self.entries.len()));
        self.snapshot = Some(Snapshot {
            meta: SnapshotMeta { index, term },
            config,
            data,
        });
    }

    /// What the node recovers at restart.
    pub fn recover(&mut self) -> Recovered {
        self.incarnation += 1;
        Recovered {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
            incarnation: self.incarnation - 1,
        }
    }
}

impl crate::node::Disk for Disk {
    type Write = Write;

    fn write(&mut self, w: Write) {
        match w {
            Write::Persist {
                hard_state,
                snapshot,
                entries,
            } => self.persist(hard_state, snapshot, entries),
            Write::Compact {
                index,
                term,
                config,
                data,
            } => self.compact(index, term, config, data),
        }
    }

    fn hard_state(&self) -> (u64, Option<NodeId>) {
        (self.hard_state.term, self.hard_state.vote)
    }

    fn holds(&self, index: Index, term: Term) -> bool {
        Disk::holds(self, index, term)
    }

    fn last_index(&self) -> Index {
        Disk::last_index(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftkv::core::{Config, Payload, RaftNode};

    fn ent(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }

    fn persist(d: &mut Disk, snapshot: Option<Snapshot>, entries: Vec<Entry>) {
        d.persist(None, snapshot, entries);
    }

    #[test]
    fn only_written_state_survives_and_snapshots_keep_matching_suffix() {
        let mut d = Disk::default();
        // A node that campaigns: its Ready carries term and vote.
        let mut n = RaftNode::new(Config::new(1, vec![1, 2, 3]), d.recover(), None);
        for _ in 0..30 {
            n.tick();
        }
        let rd = n.ready();
        d.persist(rd.hard_state, rd.snapshot.clone(), rd.entries.clone());
        assert_eq!(d.hard_state.term, n.term());
        assert_eq!(d.hard_state.vote, Some(1));
        let rec = d.recover();
        assert_eq!(rec.incarnation, 1);
        assert_eq!(rec.hard_state.term, n.term());

        d.entries = vec![ent(1, 1), ent(2, 1), ent(3, 2)];
        d.compact(1, 1, Membership::default(), Arc::new(vec![]));
        assert_eq!(d.last_index(), 3);
        assert!(d.holds(1, 1) && d.holds(3, 2) && !d.holds(3, 1));
        let snap = |index, term| Snapshot {
            meta: SnapshotMeta { index, term },
            config: Membership::default(),
            data: Arc::new(vec![]),
        };
        persist(&mut d, Some(snap(2, 1)), vec![]);
        assert_eq!(d.last_index(), 3, "matching suffix kept");
        persist(&mut d, Some(snap(3, 9)), vec![]);
        assert_eq!(d.last_index(), 3);
        assert!(d.entries.is_empty(), "conflicting suffix dropped");
        persist(&mut d, None, vec![ent(3, 9), ent(4, 9)]);
        assert_eq!(d.last_index(), 4);
        assert_eq!(d.term(4), Some(9));
    }
}
