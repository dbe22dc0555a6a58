//! What a leader knows about each follower's log, and the flow control of
//! replication (probe, pipelined replicate, snapshot), after etcd's
//! `tracker.Progress`.

use std::collections::VecDeque;

use super::types::Index;

/// How the leader currently sends to a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// The follower's match is unknown: one AppendEntries at a time, then
    /// wait for its reply (or the next heartbeat).
    Probe,
    /// The follower is in step: send optimistically, up to the in-flight
    /// window.
    Replicate,
    /// A snapshot is on its way; wait for its reply (or resend after
    /// `retry_ticks`).
    Snapshot { index: Index },
}

/// The leader's view of one follower.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Highest index known to be replicated on the follower.
    pub matched: Index,
    /// Next index to send.
    pub next: Index,
    pub state: ProgressState,
    /// Last index of each AppendEntries in flight (replicate state).
    pub inflight: VecDeque<Index>,
    /// Probe state: a message was sent and no reply has come yet.
    pub probe_sent: bool,
    /// Ticks since a snapshot was sent without a reply.
    pub snapshot_wait: u32,
    /// `matched` at the previous heartbeat (stall detection).
    pub heartbeat_match: Index,
    /// The follower answered since the leader's last check-quorum round.
    pub recent_active: bool,
}

impl Progress {
    pub fn new(next: Index) -> Self {
        Progress {
            matched: 0,
            next,
            state: ProgressState::Probe,
            inflight: VecDeque::new(),
            probe_sent: false,
            snapshot_wait: 0,
            heartbeat_match: 0,
            recent_active: false,
        }
    }

    /// Whether the leader may send another AppendEntries now.
    pub fn can_send(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe => !self.probe_sent,
            ProgressState::Replicate => self.inflight.len() < max_inflight,
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// Records an AppendEntries whose last entry is `last`.
    pub fn sent(&mut self, last: Index, entries: usize) {
        match self.state {
            ProgressState::Replicate => {
                if entries > 0 {
                    self.next = last + 1;
                    self.inflight.push_back(last);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot { .. } => {}
        }
    }

    /// A success reply: the follower matches up to `index`. Returns whether
    /// the match advanced.
    pub fn acked(&mut self, index: Index) -> bool {
        let advanced = index > self.matched;
        if advanced {
            self.matched = index;
        }
        self.next = self.next.max(index + 1);
        while self.inflight.front().is_some_and(|&l| l <= index) {
            self.inflight.pop_front();
        }
        match self.state {
            ProgressState::Probe => {
                self.probe_sent = false;
                self.become_replicate();
            }
            ProgressState::Snapshot { index: snap } if self.matched >= snap => {
                self.become_probe();
            }
            _ => {}
        }
        advanced
    }

    /// A rejection: retry from `hint` (never below `matched + 1`). Returns
    /// false for a stale rejection that is ignored.
    pub fn rejected(&mut self, rejected_prev: Index, hint: Index) -> bool {
        match self.state {
            ProgressState::Replicate => {
                // A rejection of something already matched is stale.
                if rejected_prev <= self.matched {
                    return false;
                }
                self.next = hint.min(rejected_prev).max(self.matched + 1);
                self.become_probe();
                true
            }
            ProgressState::Probe => {
                if rejected_prev + 1 != self.next {
                    return false;
                }
                self.next = hint.min(rejected_prev).max(self.matched + 1);
                self.probe_sent = false;
                true
            }
            ProgressState::Snapshot { .. } => false,
        }
    }

    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.inflight.clear();
        self.probe_sent = false;
        self.next = self.next.max(self.matched + 1);
    }

    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.inflight.clear();
        self.next = self.matched + 1;
    }

    pub fn become_snapshot(&mut self, index: Index) {
        self.state = ProgressState::Snapshot { index };
        self.inflight.clear();
        self.snapshot_wait = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sends_one_then_waits() {
        let mut p = Progress::new(5);
        assert!(p.can_send(4));
        p.sent(6, 2);
        assert!(!p.can_send(4));
        assert!(p.rejected(4, 2));
        assert_eq!(p.next, 2);
        assert!(p.can_send(4));
    }

    #[test]
    fn replicate_is_bounded_by_window() {
        let mut p = Progress::new(1);
        p.acked(0);
        assert_eq!(p.state, ProgressState::Replicate);
        for i in 1..=3 {
            assert!(p.can_send(3));
            p.sent(i, 1);
        }
        assert!(!p.can_send(3));
        p.acked(2);
        assert_eq!(p.inflight.len(), 1);
        assert!(p.can_send(3));
        assert_eq!(p.next, 4);
    }

    #[test]
    fn stale_rejection_is_ignored() {
        let mut p = Progress::new(1);
        p.acked(5);
        p.sent(8, 3);
        assert!(!p.rejected(3, 1));
        assert_eq!(p.state, ProgressState::Replicate);
        assert!(p.rejected(8, 6));
        assert_eq!(p.next, 6);
        assert_eq!(p.state, ProgressState::Probe);
    }

    #[test]
    fn a_heartbeat_takes_no_window_slot() {
        let mut p = Progress::new(1);
        p.acked(4);
        assert_eq!((p.state, p.next), (ProgressState::Replicate, 5));
        // An AppendEntries without entries (prev 4) changes nothing.
        p.sent(4, 0);
        assert!(p.inflight.is_empty());
        assert_eq!(p.next, 5);
        assert!(p.can_send(1));
    }

    #[test]
    fn acked_reports_only_an_advance_of_the_match() {
        let mut p = Progress::new(1);
        assert!(p.acked(5));
        assert!(!p.acked(5), "the same match again");
        assert!(!p.acked(3), "an older match");
        assert_eq!(p.matched, 5);
    }

    #[test]
    fn a_snapshot_acknowledged_up_to_its_index_returns_to_probe() {
        let mut p = Progress::new(1);
        p.become_snapshot(10);
        assert!(!p.can_send(4));
        p.acked(9);
        assert_eq!(p.state, ProgressState::Snapshot { index: 10 });
        p.acked(10);
        assert_eq!((p.state, p.next), (ProgressState::Probe, 11));
        assert!(p.can_send(4));
    }

    #[test]
    fn a_rejection_hint_at_the_match_resumes_just_after_it() {
        // Replicate: the follower holds exactly the matched 5 entries and
        // refuses an optimistic append after 8.
        let mut p = Progress::new(1);
        p.acked(5);
        p.sent(8, 3);
        assert!(p.rejected(8, 5));
        assert_eq!((p.state, p.next), (ProgressState::Probe, 6));
        // Probe: a probe after 7 refused by a follower whose log ends at
        // the match.
        let mut p = Progress::new(1);
        p.acked(5);
        p.sent(8, 3);
        assert!(p.rejected(8, 8));
        assert_eq!((p.state, p.next), (ProgressState::Probe, 8));
        p.sent(9, 2);
        assert!(p.rejected(7, 5));
        assert_eq!(p.next, 6, "never at or below the match");
    }
}
