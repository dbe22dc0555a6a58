//! The simulated disk: what a node has made durable. A crash loses
//! everything else (the node's memory and whatever it had not yet handed to
//! the disk through a `Ready`).

use std::sync::Arc;

use crate::core::{Entry, HardState, Index, Ready, Recovered, Snapshot, SnapshotMeta, Term};

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
    pub fn write(&mut self, rd: &Ready) {
        self.writes += 1;
        if let Some(snap) = &rd.snapshot {
            let keep = self.term(snap.meta.index) == Some(snap.meta.term)
                && snap.meta.index <= self.last_index();
            let old = self.snap_meta();
            if keep {
                let drop = (snap.meta.index - old.index) as usize;
                self.entries.drain(..drop.min(self.entries.len()));
            } else {
                self.entries.clear();
            }
            self.snapshot = Some(snap.clone());
        }
        // Entries overwrite the stored log from the first one on (those the
        // snapshot already covers are skipped).
        let s = self.snap_meta();
        let fresh = rd.entries.iter().skip_while(|e| e.index <= s.index);
        if let Some(first) = fresh.clone().next() {
            self.entries.truncate((first.index - s.index - 1) as usize);
            self.entries.extend(fresh.cloned());
        }
        if let Some(hs) = rd.hard_state {
            self.hard_state = hs;
        }
    }

    /// Records a snapshot the node took and drops the log prefix it covers.
    pub fn compact(&mut self, index: Index, term: Term, data: Arc<Vec<u8>>) {
        let old = self.snap_meta();
        if index <= old.index {
            return;
        }
        let drop = (index - old.index) as usize;
        self.entries.drain(..drop.min(self.entries.len()));
        self.snapshot = Some(Snapshot {
            meta: SnapshotMeta { index, term },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Config, Payload, RaftNode};

    fn ent(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
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
        d.write(&rd);
        assert_eq!(d.hard_state.term, n.term());
        assert_eq!(d.hard_state.vote, Some(1));
        let rec = d.recover();
        assert_eq!(rec.incarnation, 1);
        assert_eq!(rec.hard_state.term, n.term());

        d.entries = vec![ent(1, 1), ent(2, 1), ent(3, 2)];
        d.compact(1, 1, Arc::new(vec![]));
        assert_eq!(d.last_index(), 3);
        assert!(d.holds(1, 1) && d.holds(3, 2) && !d.holds(3, 1));
        let snap = |index, term| Snapshot {
            meta: SnapshotMeta { index, term },
            data: Arc::new(vec![]),
        };
        let mut rd = Ready::default();
        rd.snapshot = Some(snap(2, 1));
        d.write(&rd);
        assert_eq!(d.last_index(), 3, "matching suffix kept");
        rd.snapshot = Some(snap(3, 9));
        d.write(&rd);
        assert_eq!(d.last_index(), 3);
        assert!(d.entries.is_empty(), "conflicting suffix dropped");
        let mut rd = Ready::default();
        rd.entries = vec![ent(3, 9), ent(4, 9)];
        d.write(&rd);
        assert_eq!(d.last_index(), 4);
        assert_eq!(d.term(4), Some(9));
    }
}
