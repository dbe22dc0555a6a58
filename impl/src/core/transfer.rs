//! Leader transfer (Raft thesis §3.10), as etcd-io/raft and raft-rs do it.
//!
//! [`RaftNode::transfer_leader`] on the leader:
//! 1. stops taking proposals (they would keep the target behind);
//! 2. brings the target's log up to date by normal replication;
//! 3. once the target's match index equals the leader's last index, sends
//!    it `TimeoutNow` in its term (again on each acknowledgement from the
//!    target while the transfer is pending, so a lost one is repeated);
//!    one still waiting for the host's persist when that no longer holds
//!    (the transfer was abandoned, entries appended) is dropped;
//! 4. gives up after an election timeout, or when it stops leading.
//!
//! The target, a follower of that leader in that term, campaigns at once:
//! term + 1, no pre-vote, and its vote requests say `transfer`, so that
//! voters answer them even inside the leader lease of check-quorum. The
//! leader gives up its own lease for lease reads when a transfer starts
//! (see [`read`](super::read)).

use super::{Body, NodeId, RaftNode, Role};

/// Why a transfer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("node {0} is not a member of the cluster")]
    UnknownNode(NodeId),
    #[error("node {0} is already the leader")]
    ToSelf(NodeId),
    #[error("a transfer to node {0} is in progress")]
    InProgress(NodeId),
    #[error("leader transfer is not enabled on this node")]
    Disabled,
}

/// A transfer in progress on the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transfer {
    pub(crate) to: NodeId,
    /// Ticks since it started; it is abandoned after `election_ticks`.
    pub(crate) elapsed: u32,
}

impl RaftNode {
    /// Asks the leader to hand its leadership to `to`. The result comes
    /// later: `to` becomes leader of a higher term, or the transfer is
    /// abandoned after an election timeout (see [`RaftNode::transferring`]).
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        if !self.config().leader_transfer {
            return Err(TransferError::Disabled);
        }
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader: self.leader,
            });
        }
        if !self.membership().is_voter(to) {
            return Err(TransferError::UnknownNode(to));
        }
        if to == self.id() {
            return Err(TransferError::ToSelf(to));
        }
        if let Some(t) = self.transfer {
            return Err(TransferError::InProgress(t.to));
        }
        tracing::debug!(
            id = self.id(),
            term = self.term,
            to,
            "leader transfer started"
        );
        self.transfer = Some(Transfer { to, elapsed: 0 });
        // TimeoutNow overrides the followers' leases: this leader's lease
        // cannot be trusted any more in this term.
        self.lease.revoke();
        if !self.maybe_send_timeout_now(to) {
            self.send_append(to);
        }
        Ok(())
    }

    /// The target of the transfer in progress, if any.
    pub fn transferring(&self) -> Option<NodeId> {
        self.transfer.map(|t| t.to)
    }

    /// Leader: sends `TimeoutNow` to `peer` if it is the transfer's target
    /// and holds the whole log. Returns whether it did.
    pub(crate) fn maybe_send_timeout_now(&mut self, peer: NodeId) -> bool {
        let up_to_date = self.timeout_now_due(peer, self.term);
        if up_to_date {
            self.send(peer, Body::TimeoutNow);
        }
        up_to_date
    }

    /// Whether a `TimeoutNow` of `term` to `peer` may leave now: this node
    /// still leads in `term`, transfers to `peer`, and `peer` holds the whole
    /// log. Messages leave only after the host persisted (see the Ready
    /// contract), so one queued when this held may have waited while the
    /// transfer was abandoned and new entries appended; it is dropped then.
    pub(crate) fn timeout_now_due(&self, peer: NodeId, term: super::Term) -> bool {
        self.role == Role::Leader
            && self.term == term
            && self.transfer.is_some_and(|t| t.to == peer)
            && self
                .progress
                .get(&peer)
                .is_some_and(|pr| pr.matched == self.log.last_index())
    }

    /// Leader, every tick: a transfer that has not completed within an
    /// election timeout is abandoned and proposals are taken again.
    pub(crate) fn tick_transfer(&mut self) {
        let (limit, id) = (self.config().election_ticks, self.id());
        if let Some(t) = self.transfer.as_mut() {
            t.elapsed += 1;
            if t.elapsed >= limit {
                tracing::debug!(id, to = t.to, "leader transfer abandoned");
                self.transfer = None;
            }
        }
    }
}
