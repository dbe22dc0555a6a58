//! Membership changes, one server at a time (Raft thesis §4.1-4.2).
//!
//! A configuration ([`Membership`]: voters and learners) travels in the log
//! as a configuration entry holding the whole new configuration. Every
//! server uses the latest configuration in its log, committed or not, from
//! the moment it appends it (thesis §4.1, hashicorp/raft), or else its
//! snapshot's, or else its bootstrap configuration ([`Config::peers`]).
//!
//! A leader proposes one change at a time ([`RaftNode::propose_change`]):
//! a voter or learner added, a learner promoted, a member removed. Two
//! configurations one server apart always share a majority, so no two
//! leaders can be elected in one term across the change, provided that a
//! change starts only once the previous one is committed and only once the
//! leader has committed an entry of its own term (Ongaro's 2015 correction
//! to the single-server algorithm, which the thesis omits).
//!
//! Majorities (votes, pre-votes, commits, ReadIndex rounds, leases and
//! check-quorum) count the voters of the current configuration only;
//! learners receive the log and never count. A leader that is not a voter
//! (it removed itself) goes on replicating without counting itself and
//! steps down once its removal is committed (thesis §4.2.2). A node that is
//! not a voter never campaigns.
//!
//! [`Config::peers`]: super::Config::peers

use std::collections::BTreeSet;
use std::sync::Arc;

use super::progress::Progress;
use super::{ConfigEntry, Index, Membership, NodeId, NotLeader, Payload, RaftNode, Role};

/// One change to the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfChange {
    /// A new voter, or a learner promoted to voter.
    AddVoter(NodeId),
    /// A new learner.
    AddLearner(NodeId),
    /// A voter or learner leaves.
    Remove(NodeId),
}

impl ConfChange {
    /// The server the change is about.
    pub fn node(self) -> NodeId {
        match self {
            ConfChange::AddVoter(id) | ConfChange::AddLearner(id) | ConfChange::Remove(id) => id,
        }
    }
}

/// Why a leader refused a membership change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
    #[error("a leader transfer is in progress")]
    Transferring,
    #[error(
        "a membership change is in progress (its configuration entry at index {0} is not committed yet)"
    )]
    Pending(Index),
    #[error("the leader has not yet committed an entry of its term; retry shortly")]
    NotReady,
    #[error("node {0} is already a voter")]
    AlreadyVoter(NodeId),
    #[error("node {0} is already a member")]
    AlreadyMember(NodeId),
    #[error("node {0} is not a member")]
    NotMember(NodeId),
    #[error("node {0} is the only voter; it cannot be removed")]
    LastVoter(NodeId),
    #[error("0 is not a node id")]
    ZeroId,
    #[error("membership changes are not enabled on this node")]
    Disabled,
}

impl Membership {
    /// A configuration of voters only.
    pub fn of_voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    pub fn is_member(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    /// Voters, then learners.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied()
    }

    /// Whether `ids` (distinct) include a majority of the voters. With no
    /// voters, nothing is a majority.
    pub fn has_quorum(&self, ids: impl IntoIterator<Item = NodeId>) -> bool {
        let n = ids.into_iter().filter(|id| self.is_voter(*id)).count();
        2 * n > self.voters.len()
    }

    /// Whether `yes` granting voters can still reach a majority when every
    /// voter not in `answered` (distinct ids) says yes.
    pub fn can_still_win(&self, yes: usize, answered: impl IntoIterator<Item = NodeId>) -> bool {
        let answered = answered.into_iter().filter(|id| self.is_voter(*id)).count();
        let unanswered = self.voters.len() - answered.min(self.voters.len());
        2 * (yes + unanswered) > self.voters.len()
    }

    /// The highest index that a majority of the voters hold, given each
    /// voter's match index (0 without voters).
    pub fn quorum_index(&self, matched: impl Fn(NodeId) -> Index) -> Index {
        let mut m: Vec<Index> = self.voters.iter().map(|v| matched(*v)).collect();
        if m.is_empty() {
            return 0;
        }
        m.sort_unstable_by(|a, b| b.cmp(a));
        m[self.voters.len() / 2]
    }

    /// The configuration `change` makes from this one, if it is one
    /// server away.
    pub fn apply(&self, change: ConfChange) -> Result<Membership, ChangeError> {
        if change.node() == 0 {
            return Err(ChangeError::ZeroId);
        }
        let mut next = self.clone();
        match change {
            ConfChange::AddVoter(id) => {
                if self.is_voter(id) {
                    return Err(ChangeError::AlreadyVoter(id));
                }
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            ConfChange::AddLearner(id) => {
                if self.is_member(id) {
                    return Err(ChangeError::AlreadyMember(id));
                }
                next.learners.insert(id);
            }
            ConfChange::Remove(id) => {
                if !self.is_member(id) {
                    return Err(ChangeError::NotMember(id));
                }
                if self.voters.len() == 1 && self.is_voter(id) {
                    return Err(ChangeError::LastVoter(id));
                }
                next.voters.remove(&id);
                next.learners.remove(&id);
            }
        }
        Ok(next)
    }
}

impl std::fmt::Display for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |s: &BTreeSet<NodeId>| {
            s.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(f, "voters {{{}}}", list(&self.voters))?;
        if !self.learners.is_empty() {
            write!(f, ", learners {{{}}}", list(&self.learners))?;
        }
        Ok(())
    }
}

impl RaftNode {
    /// The configuration this node uses: the latest in its log, committed
    /// or not, or its snapshot's, or its bootstrap configuration.
    pub fn membership(&self) -> &Membership {
        self.log.config().unwrap_or(&self.bootstrap)
    }

    /// Whether this node is a voter of the configuration it uses.
    pub fn is_voter(&self) -> bool {
        self.membership().is_voter(self.id())
    }

    /// The members other than this node: where a leader replicates.
    pub(crate) fn others(&self) -> Vec<NodeId> {
        let me = self.id();
        self.membership().members().filter(|p| *p != me).collect()
    }

    /// The voters other than this node: whom a candidate asks.
    pub(crate) fn other_voters(&self) -> Vec<NodeId> {
        let me = self.id();
        let m = self.membership();
        m.voters.iter().copied().filter(|p| *p != me).collect()
    }

    /// Proposes one membership change (leader only). The configuration
    /// entry takes effect here at once, and on each follower when it
    /// appends it. `context` travels with the entry, opaque to the core.
    /// Returns the entry's index; the change is done once it is committed
    /// (the entry is applied like any other).
    pub fn propose_change(
        &mut self,
        change: ConfChange,
        context: Vec<u8>,
    ) -> Result<Index, ChangeError> {
        if !self.config().membership {
            return Err(ChangeError::Disabled);
        }
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            }
            .into());
        }
        if self.transfer.is_some() {
            return Err(ChangeError::Transferring);
        }
        let pending = self.log.config_index();
        if pending > self.log.committed && !self.bug(crate::bugs::Bug::OverlappingChanges) {
            return Err(ChangeError::Pending(pending));
        }
        if self.log.term(self.log.committed) != Some(self.term)
            && !self.bug(crate::bugs::Bug::OverlappingChanges)
        {
            return Err(ChangeError::NotReady);
        }
        let membership = self.membership().apply(change)?;
        let entry = ConfigEntry {
            membership,
            context,
        };
        Ok(self.append_local(Payload::Config(Arc::new(entry))))
    }

    /// A leader's configuration changed (it appended a configuration
    /// entry): replicate to new members, forget removed ones, and abandon
    /// a transfer to a node that no longer votes.
    pub(crate) fn membership_changed(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let members: BTreeSet<NodeId> = self.others().into_iter().collect();
        self.progress.retain(|id, _| members.contains(id));
        let next = self.log.last_index();
        for id in members {
            self.progress
                .entry(id)
                .or_insert_with(|| Progress::new(next));
        }
        if let Some(t) = self.transfer {
            if !self.membership().is_voter(t.to) {
                self.transfer = None;
            }
        }
    }

    /// Thesis §4.2.2: a leader that is not a voter of the configuration it
    /// uses steps down once that configuration is committed.
    pub(crate) fn step_down_if_removed(&mut self) {
        if self.role == Role::Leader
            && !self.is_voter()
            && self.log.config_index() <= self.log.committed
        {
            tracing::info!(
                id = self.id(),
                term = self.term,
                "removed from the configuration, which is committed: stepping down"
            );
            self.step_down_removed();
        }
    }
}
