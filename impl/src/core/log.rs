//! The in-memory Raft log: a compacted prefix (the snapshot) followed by
//! entries, with the commit, apply and persistence cursors.

use std::sync::Arc;

use super::types::{ConfigEntry, Entry, Index, Membership, Payload, SnapshotMeta, Term};

/// Why an AppendEntries could not be accepted, with the hint the leader
/// uses to skip back over a whole conflicting term at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// The index to retry from (the leader sets `next = hint_index`).
    pub hint_index: Index,
    /// The term of the follower's entry at `hint_index`, or 0.
    pub hint_term: Term,
    /// Set when the leader's entries conflict with a *committed* entry of
    /// ours: a safety violation elsewhere (never in a correct cluster). The
    /// log is left unchanged.
    pub committed_conflict: Option<Index>,
}

/// The result of [`RaftLog::maybe_append`] when the log matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The last index the leader's message proves matching.
    pub last_new: Index,
    /// When entries were removed, the first removed index.
    pub truncated_from: Option<Index>,
    /// When entries were added, the first added index.
    pub appended_from: Option<Index>,
}

/// A Raft log. Invariant: `entries[i].index == snapshot.index + 1 + i`.
///
/// It also knows the configuration it holds (thesis §4.1: a server uses the
/// latest configuration in its log, committed or not): the last
/// configuration entry, or else the snapshot's.
#[derive(Debug, Clone, Default)]
pub struct RaftLog {
    snapshot: SnapshotMeta,
    /// The configuration the snapshot holds (`None`: the log never had one,
    /// the node uses its bootstrap configuration).
    snapshot_config: Option<Membership>,
    entries: Vec<Entry>,
    /// The configuration entries among `entries`, oldest first.
    configs: Vec<(Index, Arc<ConfigEntry>)>,
    /// Highest index known committed.
    pub committed: Index,
    /// Highest index handed to the host for applying.
    pub applied: Index,
    /// Highest index the host reported durable.
    pub stable: Index,
    /// First index not yet handed to the host for persisting.
    pub unpersisted_from: Index,
}

impl RaftLog {
    /// A log recovered from durable storage.
    pub fn restore(
        snapshot: SnapshotMeta,
        snapshot_config: Option<Membership>,
        entries: Vec<Entry>,
        committed: Index,
    ) -> Self {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.index == snapshot.index + 1 + i as u64));
        let last = snapshot.index + entries.len() as u64;
        let configs = entries.iter().filter_map(config_of).collect();
        RaftLog {
            snapshot,
            snapshot_config,
            entries,
            configs,
            committed: committed.clamp(snapshot.index, last),
            applied: snapshot.index,
            stable: last,
            unpersisted_from: last + 1,
        }
    }

    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot
    }

    /// The latest configuration in the log (or its snapshot), committed or
    /// not; `None` when it holds none.
    pub fn config(&self) -> Option<&Membership> {
        match self.configs.last() {
            Some((_, c)) => Some(&c.membership),
            None => self.snapshot_config.as_ref(),
        }
    }

    /// The index of the latest configuration entry held (0 when the
    /// configuration comes from the snapshot or from nowhere: committed).
    pub fn config_index(&self) -> Index {
        self.configs.last().map_or(0, |(i, _)| *i)
    }

    /// The configuration in use at `index` and every later one the log
    /// holds, oldest first (one of them committed the entry at `index`).
    pub fn configs_from(&self, index: Index) -> Vec<&Membership> {
        let mut out: Vec<&Membership> = self.config_at(index).into_iter().collect();
        out.extend(
            self.configs
                .iter()
                .filter(|(i, _)| *i > index)
                .map(|(_, c)| &c.membership),
        );
        out
    }

    /// The configuration in use at `index` (at most the last index, at
    /// least the snapshot's): what a snapshot taken there holds.
    pub fn config_at(&self, index: Index) -> Option<&Membership> {
        match self.configs.iter().rev().find(|(i, _)| *i <= index) {
            Some((_, c)) => Some(&c.membership),
            None => self.snapshot_config.as_ref(),
        }
    }

    pub fn first_index(&self) -> Index {
        self.snapshot.index + 1
    }

    pub fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot.term, |e| e.term)
    }

    /// The term of the entry at `index`; `None` when compacted or beyond the end.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        if index < self.snapshot.index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.snapshot.index - 1) as usize].term)
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.snapshot.index || index > self.last_index() {
            return None;
        }
        self.entries.get((index - self.snapshot.index - 1) as usize)
    }

    /// All held entries (after the snapshot).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn matches(&self, index: Index, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// The election restriction: is a log ending at (`last_index`,
    /// `last_term`) at least as up to date as this one?
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Entries `lo..=hi` (at most `max` of them); `None` when `lo` is compacted.
    pub fn slice(&self, lo: Index, hi: Index, max: usize) -> Option<Vec<Entry>> {
        if lo <= self.snapshot.index {
            return None;
        }
        let hi = hi.min(self.last_index());
        if lo > hi {
            return Some(Vec::new());
        }
        let start = (lo - self.snapshot.index - 1) as usize;
        let end = ((hi - self.snapshot.index) as usize).min(start.saturating_add(max.max(1)));
        Some(self.entries[start..end].to_vec())
    }

    /// A leader appends new entries at the end.
    pub fn append(&mut self, entries: Vec<Entry>) {
        for e in entries {
            debug_assert_eq!(e.index, self.last_index() + 1);
            if let Some(c) = config_of(&e) {
                self.configs.push(c);
            }
            self.entries.push(e);
        }
    }

    /// Removes entries from `from` on (never a committed one).
    pub fn truncate(&mut self, from: Index) {
        debug_assert!(from > self.committed, "truncating committed entries");
        let keep = from.saturating_sub(self.snapshot.index + 1) as usize;
        self.entries.truncate(keep);
        while self.configs.last().is_some_and(|(i, _)| *i >= from) {
            self.configs.pop();
        }
        self.stable = self.stable.min(from - 1);
        self.unpersisted_from = self.unpersisted_from.min(from);
    }

    /// The first index of `entries` whose term differs from ours, or where
    /// our log ends; `None` when every entry is already present.
    pub fn find_conflict(&self, entries: &[Entry]) -> Option<Index> {
        entries
            .iter()
            .find(|e| !self.matches(e.index, e.term) && e.index > self.snapshot.index)
            .map(|e| e.index)
    }

    /// A follower's AppendEntries: if our log holds (`prev_index`,
    /// `prev_term`), remove conflicting entries, append the new ones and
    /// advance the commit index; otherwise return a hint for the leader.
    ///
    /// `drop_matching` plants a bug: it also cuts matching entries beyond
    /// the message.
    pub fn maybe_append(
        &mut self,
        prev_index: Index,
        prev_term: Term,
        leader_commit: Index,
        entries: Vec<Entry>,
        drop_matching: bool,
    ) -> Result<Appended, Reject> {
        if prev_index < self.snapshot.index {
            // Entries up to our snapshot are committed and match; skip them.
            let skip = (self.snapshot.index - prev_index) as usize;
            if skip > entries.len() {
                let last_new = self.snapshot.index;
                return Ok(Appended {
                    last_new,
                    truncated_from: None,
                    appended_from: None,
                });
            }
            let rest: Vec<Entry> = entries.into_iter().skip(skip).collect();
            return self.maybe_append(
                self.snapshot.index,
                self.snapshot.term,
                leader_commit,
                rest,
                drop_matching,
            );
        }
        if !self.matches(prev_index, prev_term) {
            return Err(self.reject_hint(prev_index, prev_term));
        }
        let last_new = prev_index + entries.len() as u64;
        let mut out = Appended {
            last_new,
            truncated_from: None,
            appended_from: None,
        };
        match self.find_conflict(&entries) {
            Some(conflict) if conflict <= self.committed => {
                return Err(Reject {
                    hint_index: self.committed + 1,
                    hint_term: 0,
                    committed_conflict: Some(conflict),
                });
            }
            Some(conflict) => {
                if conflict <= self.last_index() {
                    self.truncate(conflict);
                    out.truncated_from = Some(conflict);
                }
                let start = (conflict - prev_index - 1) as usize;
                self.append(entries.into_iter().skip(start).collect());
                out.appended_from = Some(conflict);
            }
            None => {
                if drop_matching && last_new < self.last_index() && last_new >= self.committed {
                    // BUG (planted): treat a longer log as conflicting.
                    self.truncate(last_new + 1);
                    out.truncated_from = Some(last_new + 1);
                }
            }
        }
        self.commit_to(leader_commit.min(last_new));
        Ok(out)
    }

    /// The fast-backtracking hint for a rejected AppendEntries: skip back to
    /// the first index of the term of our entry at `prev_index` (or to the
    /// end of our log when it is shorter).
    fn reject_hint(&self, prev_index: Index, _prev_term: Term) -> Reject {
        if prev_index > self.last_index() {
            return Reject {
                hint_index: self.last_index() + 1,
                hint_term: 0,
                committed_conflict: None,
            };
        }
        let term = self.term(prev_index).unwrap_or(0);
        let mut i = prev_index;
        while i > self.snapshot.index + 1 && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        Reject {
            hint_index: i.max(self.committed + 1),
            hint_term: term,
            committed_conflict: None,
        }
    }

    /// Advances the commit index (never backwards, never past the log).
    pub fn commit_to(&mut self, index: Index) -> bool {
        let index = index.min(self.last_index());
        if index > self.committed {
            self.committed = index;
            true
        } else {
            false
        }
    }

    /// Committed entries not yet handed out for applying (at most `max`).
    pub fn next_committed(&self, max: usize) -> Vec<Entry> {
        let hi = self.committed.min(self.stable.max(self.applied));
        if hi <= self.applied {
            return Vec::new();
        }
        self.slice(self.applied + 1, hi, max).unwrap_or_default()
    }

    /// Entries not yet handed out for persisting.
    pub fn unpersisted(&self) -> Vec<Entry> {
        if self.unpersisted_from > self.last_index() {
            return Vec::new();
        }
        let lo = self.unpersisted_from.max(self.first_index());
        self.slice(lo, self.last_index(), usize::MAX)
            .unwrap_or_default()
    }

    /// Discards entries up to `meta.index` (applied, hence committed) into a
    /// snapshot the host has taken.
    pub fn compact(&mut self, meta: SnapshotMeta) {
        if meta.index <= self.snapshot.index {
            return;
        }
        debug_assert!(meta.index <= self.applied.max(self.committed));
        self.snapshot_config = self.config_at(meta.index).cloned();
        let drop = (meta.index - self.snapshot.index) as usize;
        self.entries.drain(..drop.min(self.entries.len()));
        self.configs.retain(|(i, _)| *i > meta.index);
        self.snapshot = meta;
    }

    /// Replaces the log by a snapshot received from the leader. Entries after
    /// the snapshot that match it are kept.
    pub fn install(&mut self, meta: SnapshotMeta, config: Membership) {
        if self.matches(meta.index, meta.term) && meta.index <= self.last_index() {
            let drop = (meta.index - self.snapshot.index) as usize;
            self.entries.drain(..drop.min(self.entries.len()));
            self.configs.retain(|(i, _)| *i > meta.index);
        } else {
            self.entries.clear();
            self.configs.clear();
            self.unpersisted_from = meta.index + 1;
        }
        self.snapshot_config = Some(config);
        self.snapshot = meta;
        self.committed = self.committed.max(meta.index);
        self.applied = self.applied.max(meta.index);
        self.stable = self.stable.max(meta.index);
        self.unpersisted_from = self.unpersisted_from.max(meta.index + 1);
    }
}

/// The configuration an entry holds, if it is a configuration entry.
fn config_of(e: &Entry) -> Option<(Index, Arc<ConfigEntry>)> {
    match &e.payload {
        Payload::Config(c) => Some((e.index, c.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::Payload;
    use proptest::prelude::*;

    fn ent(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }

    fn log_of(terms: &[Term]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, t)| ent(i as u64 + 1, *t))
            .collect();
        RaftLog::restore(SnapshotMeta::default(), None, entries, 0)
    }

    #[test]
    fn up_to_date_compares_term_then_index() {
        let l = log_of(&[1, 1, 2]);
        assert!(l.is_up_to_date(3, 2));
        assert!(l.is_up_to_date(1, 3));
        assert!(!l.is_up_to_date(2, 2));
        assert!(!l.is_up_to_date(10, 1));
    }

    #[test]
    fn append_rejects_missing_prev_with_hint_at_end() {
        let mut l = log_of(&[1, 1]);
        let r = l.maybe_append(5, 1, 0, vec![ent(6, 1)], false).unwrap_err();
        assert_eq!(r.hint_index, 3);
        assert_eq!(r.hint_term, 0);
    }

    #[test]
    fn reject_hint_skips_whole_conflicting_term() {
        let mut l = log_of(&[1, 2, 2, 2]);
        let r = l.maybe_append(4, 3, 0, vec![], false).unwrap_err();
        assert_eq!(r.hint_index, 2);
        assert_eq!(r.hint_term, 2);
    }

    #[test]
    fn conflict_truncates_only_from_first_conflict() {
        let mut l = log_of(&[1, 1, 2, 2]);
        let a = l
            .maybe_append(1, 1, 0, vec![ent(2, 1), ent(3, 3)], false)
            .unwrap();
        assert_eq!(a.truncated_from, Some(3));
        assert_eq!(l.last_index(), 3);
        assert_eq!(l.term(2), Some(1));
        assert_eq!(l.term(3), Some(3));
    }

    #[test]
    fn stale_short_append_keeps_longer_matching_log() {
        let mut l = log_of(&[1, 1, 1, 1]);
        let a = l.maybe_append(0, 0, 0, vec![ent(1, 1)], false).unwrap();
        assert_eq!(a.truncated_from, None);
        assert_eq!(l.last_index(), 4);
        // The planted bug cuts the matching tail.
        let mut l = log_of(&[1, 1, 1, 1]);
        l.maybe_append(0, 0, 0, vec![ent(1, 1)], true).unwrap();
        assert_eq!(l.last_index(), 1);
    }

    #[test]
    fn commit_is_bounded_by_last_new_entry() {
        let mut l = log_of(&[1, 1, 1, 1]);
        l.maybe_append(1, 1, 10, vec![ent(2, 1)], false).unwrap();
        assert_eq!(l.committed, 2);
    }

    #[test]
    fn compact_and_install_keep_terms() {
        let mut l = log_of(&[1, 1, 2, 2, 3]);
        l.commit_to(4);
        l.applied = 4;
        l.compact(SnapshotMeta { index: 3, term: 2 });
        assert_eq!(l.term(3), Some(2));
        assert_eq!(l.term(2), None);
        assert_eq!(l.last_index(), 5);
        l.install(SnapshotMeta { index: 4, term: 2 }, Membership::default());
        assert_eq!(l.last_index(), 5, "matching suffix is kept");
        l.install(SnapshotMeta { index: 9, term: 7 }, Membership::default());
        assert_eq!(l.last_index(), 9);
        assert_eq!(l.committed, 9);
    }

    proptest! {
        /// After a successful append the log holds the leader's entries at
        /// their indexes, keeps every entry before them, and its indexes stay
        /// contiguous.
        #[test]
        fn append_makes_prefix_match(
            ours in proptest::collection::vec(1u64..4, 0..12),
            theirs in proptest::collection::vec(1u64..4, 0..12),
            prev in 0usize..12,
        ) {
            let mut ours_sorted = ours.clone();
            ours_sorted.sort();
            let mut theirs_sorted = theirs.clone();
            theirs_sorted.sort();
            let mut l = log_of(&ours_sorted);
            let before = l.clone();
            let prev = prev.min(theirs_sorted.len());
            let prev_term = if prev == 0 { 0 } else { theirs_sorted[prev - 1] };
            let msg: Vec<Entry> = theirs_sorted[prev..].iter().enumerate()
                .map(|(i, t)| ent((prev + i + 1) as u64, *t)).collect();
            match l.maybe_append(prev as u64, prev_term, 0, msg.clone(), false) {
                Ok(a) => {
                    for e in &msg { prop_assert_eq!(l.term(e.index), Some(e.term)); }
                    for i in 1..=prev as u64 { prop_assert_eq!(l.term(i), before.term(i)); }
                    prop_assert!(l.last_index() >= a.last_new);
                    if a.truncated_from.is_none() {
                        prop_assert!(l.last_index() >= before.last_index());
                    }
                }
                Err(r) => {
                    prop_assert!(!before.matches(prev as u64, prev_term));
                    prop_assert!(r.hint_index <= prev as u64 || r.hint_index == before.last_index() + 1);
                    prop_assert_eq!(l.last_index(), before.last_index());
                }
            }
            for (i, e) in l.entries().iter().enumerate() {
                prop_assert_eq!(e.index, i as u64 + 1);
            }
        }
    }
}
