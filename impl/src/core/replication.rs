//! Log replication: batching, pipelining under a max-in-flight window, fast
//! backtracking with conflict hints, heartbeats and the commit rule.

use super::progress::ProgressState;
use super::{Body, Entry, Index, NodeId, RaftNode, Role, Term};
use crate::bugs::Bug;

impl RaftNode {
    /// Leader: check-quorum, heartbeats, stalled-follower detection and
    /// snapshot retries.
    pub(crate) fn tick_leader(&mut self) {
        self.lease.tick();
        self.tick_transfer();
        // The leader's election clock measures its lease: it restarts every
        // `election_ticks`, when check-quorum counts who answered.
        self.election_elapsed += 1;
        if self.election_elapsed >= self.config().election_ticks {
            self.election_elapsed = 0;
            if self.config().check_quorum && self.check_quorum() {
                return;
            }
        }
        self.heartbeat_elapsed += 1;
        let retry = self.config().snapshot_retry_ticks;
        for pr in self.progress.values_mut() {
            if let ProgressState::Snapshot { .. } = pr.state {
                pr.snapshot_wait += 1;
                if pr.snapshot_wait >= retry {
                    pr.become_probe();
                }
            }
        }
        if self.heartbeat_elapsed < self.config().heartbeat_ticks {
            return;
        }
        self.heartbeat_elapsed = 0;
        self.trace().heartbeat_timed_out();
        let last = self.log.last_index();
        for pr in self.progress.values_mut() {
            match pr.state {
                // A lost probe is sent again.
                ProgressState::Probe => pr.probe_sent = false,
                // No progress for a whole heartbeat interval with entries
                // outstanding: messages were lost, fall back to probing.
                ProgressState::Replicate => {
                    if pr.matched < last && pr.matched == pr.heartbeat_match {
                        pr.become_probe();
                    }
                    pr.heartbeat_match = pr.matched;
                }
                ProgressState::Snapshot { .. } => {}
            }
        }
        // With lease reads every heartbeat round is numbered, so that the
        // acknowledgements of a quorum extend the lease; a round also
        // confirms every ReadIndex read queued before it.
        let ctx = if self.config().lease_read {
            // A round of reads not yet sent goes now (it is the newest).
            match self.reads.take_unsent() {
                Some(r) => r,
                None => self.reads.new_round(),
            }
        } else {
            self.reads.last_ctx()
        };
        self.bcast_heartbeat(ctx);
        self.bcast_append();
    }

    /// Sends a heartbeat (an empty AppendEntries at the follower's match
    /// index) to every follower; `read_ctx` > 0 asks for leadership
    /// confirmation of pending reads.
    pub(crate) fn bcast_heartbeat(&mut self, read_ctx: u64) {
        self.reads.round_broadcast(read_ctx);
        if self.config().lease_read && read_ctx > 0 {
            self.lease.round_sent(read_ctx, self.id());
        }
        let peers = self.others();
        for p in peers {
            let matched = self.progress[&p].matched;
            let (prev_index, prev_term) = match self.log.term(matched) {
                Some(t) => (matched, t),
                None => {
                    let s = self.log.snapshot_meta();
                    (s.index, s.term)
                }
            };
            let commit = self.log.committed.min(prev_index);
            self.send(
                p,
                Body::AppendEntries {
                    prev_index,
                    prev_term,
                    commit,
                    entries: Vec::new(),
                    read_ctx,
                },
            );
        }
    }

    /// Sends new entries to every follower whose window has room.
    pub(crate) fn bcast_append(&mut self) {
        let peers = self.others();
        for p in peers {
            self.send_append(p);
        }
    }

    /// Sends AppendEntries (or a snapshot) to `to` while flow control allows
    /// and there is something to send: one probe, or as many batches as the
    /// in-flight window holds.
    pub(crate) fn send_append(&mut self, to: NodeId) {
        while self.send_one_append(to) {}
    }

    /// Sends one AppendEntries; returns whether another may follow at once.
    fn send_one_append(&mut self, to: NodeId) -> bool {
        let max_inflight = self.config().max_inflight;
        let max_batch = self.config().max_batch;
        let Some(pr) = self.progress.get(&to) else {
            return false;
        };
        if !pr.can_send(max_inflight) {
            return false;
        }
        let next = pr.next;
        let last = self.log.last_index();
        if pr.state == ProgressState::Replicate && next > last {
            return false;
        }
        let prev_index = if self.bug(Bug::PrevIndexIsNext) && next <= last {
            // BUG (planted): the previous entry named is the next one, which
            // the follower does not hold yet, so it refuses the append.
            next
        } else {
            next - 1
        };
        let (Some(prev_term), Some(entries)) = (
            self.log.term(prev_index),
            self.log.slice(prev_index + 1, last, max_batch),
        ) else {
            self.send_snapshot(to);
            return false;
        };
        let n = entries.len();
        let sent_last = prev_index + n as u64;
        let commit = self.log.committed;
        self.progress
            .get_mut(&to)
            .expect("progress")
            .sent(sent_last, n);
        self.send(
            to,
            Body::AppendEntries {
                prev_index,
                prev_term,
                commit,
                entries,
                read_ctx: 0,
            },
        );
        n > 0 && self.progress[&to].state == ProgressState::Replicate
    }

    /// Follower (or candidate) side of AppendEntries.
    pub(crate) fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        commit: Index,
        entries: Vec<Entry>,
        read_ctx: u64,
    ) {
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(self.term, Some(from));
        }
        self.election_elapsed = 0;
        let old_commit = self.log.committed;
        let drop_matching = self.bug(Bug::TruncateOnMatch);
        match self
            .log
            .maybe_append(prev_index, prev_term, commit, entries, drop_matching)
        {
            Ok(a) => {
                if let Some(cut) = a.truncated_from {
                    // Acknowledgements queued earlier (to a leader of an
                    // older term) for entries now removed must not leave:
                    // they were never durable.
                    self.msgs.retain(|m| {
                        !matches!(m.body, Body::AppendEntriesReply { success: true, index, .. } if index >= cut)
                    });
                }
                self.trace().accepted(&a, old_commit);
                if self.log.committed > old_commit {
                    self.trace().committed();
                }
                self.send(
                    from,
                    Body::AppendEntriesReply {
                        success: true,
                        index: a.last_new,
                        hint_term: 0,
                        reject_prev: 0,
                        read_ctx,
                    },
                );
            }
            Err(r) => {
                if let Some(i) = r.committed_conflict {
                    self.committed_conflict.get_or_insert(i);
                }
                self.send(
                    from,
                    Body::AppendEntriesReply {
                        success: false,
                        index: r.hint_index,
                        hint_term: r.hint_term,
                        reject_prev: prev_index,
                        read_ctx,
                    },
                )
            }
        }
    }

    /// Leader side of an AppendEntries reply.
    pub(crate) fn handle_append_reply(
        &mut self,
        from: NodeId,
        success: bool,
        index: Index,
        _hint_term: Term,
        reject_prev: Index,
        read_ctx: u64,
    ) {
        if self.role != Role::Leader {
            return;
        }
        if read_ctx > 0 {
            self.read_acked(from, read_ctx);
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        if success {
            if pr.acked(index) {
                self.maybe_commit();
            }
            self.send_append(from);
            self.maybe_send_timeout_now(from);
        } else {
            // Fast backtracking: the follower's hint already skips its whole
            // conflicting term (or goes to the end of its shorter log); its
            // term is informative for the trace.
            let hint = index;
            let pr = self.progress.get_mut(&from).expect("progress");
            if pr.rejected(reject_prev, hint) {
                self.send_append(from);
            }
        }
    }

    /// Advances the commit index to the highest index a quorum holds, but
    /// only through an entry of the current term (Raft §5.4.2).
    pub(crate) fn maybe_commit(&mut self) {
        // The leader's own copy counts once durable (thesis §10.2.1: its
        // appends may leave before its write, its count may not), and only
        // while it is a voter (a leader removing itself does not count).
        let own = if self.bug(Bug::EarlySelfCount) {
            // BUG (planted): entries count as soon as they are appended.
            self.log.last_index()
        } else {
            self.log.stable.min(self.log.last_index())
        };
        let me = self.id();
        let progress = &self.progress;
        let q = self.membership().quorum_index(|id| {
            if id == me {
                own
            } else {
                progress.get(&id).map_or(0, |p| p.matched)
            }
        });
        if q <= self.log.committed {
            return;
        }
        let term_ok = self.log.term(q) == Some(self.term);
        if !term_ok && !self.bug(Bug::CommitOldTerm) {
            return;
        }
        self.log.commit_to(q);
        self.trace().committed();
        self.step_down_if_removed();
        if self.role != Role::Leader {
            return;
        }
        self.serve_waiting_reads();
        // Followers learn the new commit index with the next message.
        self.append_pending = true;
        let peers = self.others();
        for p in peers {
            self.send_append(p);
        }
    }
}
