//! The simulated disk of a raft-rs node, which is also the `Storage` its
//! `RawNode` reads: a node rebuilds its storage from the disk at every
//! (re)start, and applies each write to both, so the storage holds exactly
//! what Ready handling persisted (plus the node's own compactions, which
//! reach the disk with its next Ready).

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{Error, GetEntriesContext, RaftState, Storage, StorageError};

/// One write a raft-rs node asks for.
#[derive(Debug, Clone)]
pub enum Write {
    /// What a `Ready` asks to persist, written and synced together, in
    /// raft-rs's documented order: snapshot, entries, hard state.
    Persist {
        snapshot: Option<Snapshot>,
        /// Entries that replace the stored log from the first one on.
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
    },
    /// A snapshot the node took of its own state machine.
    Compact(Snapshot),
}

/// One node's stable storage (and its raft-rs `Storage`).
#[derive(Debug, Clone, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub conf_state: ConfState,
    /// The last snapshot, with the state machine's data.
    pub snapshot: Snapshot,
    /// Entries after the snapshot.
    pub entries: Vec<Entry>,
    /// How many times the node has started.
    pub incarnation: u64,
}

impl Disk {
    /// Index and term of the snapshot's last entry (0, 0 without one).
    pub fn snap(&self) -> (u64, u64) {
        let m = self.snapshot.get_metadata();
        (m.index, m.term)
    }

    pub fn last(&self) -> u64 {
        self.snap().0 + self.entries.len() as u64
    }

    /// The term of the entry at `index` (the snapshot's for its last one).
    pub fn term_of(&self, index: u64) -> Option<u64> {
        let (si, st) = self.snap();
        if index == si {
            return Some(st);
        }
        if index < si {
            return None;
        }
        self.entries.get((index - si - 1) as usize).map(|e| e.term)
    }

    fn persist(
        &mut self,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
    ) {
        if let Some(s) = snapshot {
            // raft-rs hands out a snapshot only when it replaces the whole
            // log (it fast-forwards a matching one without a Ready).
            self.conf_state = s.get_metadata().get_conf_state().clone();
            self.snapshot = s;
            self.entries.clear();
        }
        if let Some(first) = entries.first() {
            let si = self.snap().0;
            assert!(first.index > si, "entries below the snapshot");
            self.entries.truncate((first.index - si - 1) as usize);
            assert_eq!(self.last() + 1, first.index, "a gap in the log");
            self.entries.extend(entries);
        }
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
    }

    fn compact(&mut self, s: Snapshot) {
        let (old, _) = self.snap();
        let index = s.get_metadata().index;
        if index <= old {
            return;
        }
        let drop = (index - old) as usize;
        self.entries.drain(..drop.min(self.entries.len()));
        self.snapshot = s;
    }
}

impl raft_sim::node::Disk for Disk {
    type Write = Write;

    fn write(&mut self, w: Write) {
        match w {
            Write::Persist {
                snapshot,
                entries,
                hard_state,
            } => self.persist(snapshot, entries, hard_state),
            Write::Compact(s) => self.compact(s),
        }
    }

    fn hard_state(&self) -> (u64, Option<u64>) {
        let hs = &self.hard_state;
        (hs.term, (hs.vote != 0).then_some(hs.vote))
    }

    fn holds(&self, index: u64, term: u64) -> bool {
        index <= self.snap().0 || self.term_of(index) == Some(term)
    }

    fn last_index(&self) -> u64 {
        self.last()
    }
}

impl Storage for Disk {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState {
            hard_state: self.hard_state.clone(),
            conf_state: self.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let si = self.snap().0;
        if low <= si {
            return Err(Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(Error::Store(StorageError::Unavailable));
        }
        let mut es = self.entries[(low - si - 1) as usize..(high - si - 1) as usize].to_vec();
        raft::util::limit_size(&mut es, max_size.into());
        Ok(es)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx < self.snap().0 {
            return Err(Error::Store(StorageError::Compacted));
        }
        self.term_of(idx)
            .ok_or(Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.snap().0 + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.snap().0 < request_index {
            return Err(Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(self.snapshot.clone())
    }
}
