//! Membership changes (thesis chapter 4; features membership and
//! config-on-apply): which configuration a server uses, what a majority of
//! it is, and how a leader changes it, one server at a time.
//!
//! A configuration entry holds the whole new configuration
//! ([`Membership`]), as in hashicorp/raft. Which one a server uses:
//! - feature membership (thesis 4.1, hashicorp/raft): "a server always uses
//!   the latest configuration in its log, regardless of whether the entry
//!   is committed";
//! - with config-on-apply (etcd-io/raft, raft-rs): the last one it applied.
//!
//! Either way, one change at a time is safe: any majority of the old
//! configuration overlaps any majority of the new one when they differ by
//! one voter (thesis 4.1), so a leader proposes a change only when no
//! earlier one is pending and it has committed an entry of its own term
//! (Ongaro's 2015 correction to the thesis: otherwise an uncommitted change
//! of an earlier term and a new one can have disjoint majorities).
//!
//! Larger changes go through joint consensus (thesis 4.3, etcd-io/raft's
//! `ConfChangeV2`): the leader first appends C_old,new, in which elections
//! and commitment need a majority of the old voters and one of the new, and
//! once that is committed (applied, with config-on-apply), C_new. Leaving is
//! a change of its own ([`Change::LeaveJoint`]); the model's leader proposes
//! it at any moment it may, which covers etcd-io/raft's automatic leave (the
//! leader proposes it right after applying C_old,new) and an explicit one.

use super::{become_follower, replication, Step};
use crate::bugs::Bug;
use crate::server::{ghost, Rules, Server};
use crate::types::{Change, Command, Entry, Index, Members, Membership, NodeId, Role};

/// The initial configuration ([`Rules::initial`]).
pub fn initial(rules: &Rules) -> Membership {
    rules.initial
}

/// The latest configuration entry in `s`'s log and its index; the
/// snapshot's configuration (at its index) when no entry holds one.
pub fn latest_in_log(s: &Server) -> Option<(Index, Membership)> {
    let first = s.log.snapshot_index + 1;
    s.log
        .entries
        .iter()
        .enumerate()
        .rev()
        .find_map(|(k, e)| e.cmd.membership().map(|m| (first + k as Index, m)))
        .or_else(|| {
            s.log
                .snapshot_data
                .config
                .map(|m| (s.log.snapshot_index, m))
        })
}

/// The configuration `s` uses: the latest in its log (thesis 4.1), or with
/// config-on-apply the last it applied; the initial one when there is none
/// (and always without feature membership).
pub fn config(s: &Server, rules: &Rules) -> Membership {
    if !rules.membership {
        return initial(rules);
    }
    let m = if rules.config_on_apply {
        s.sm.config
    } else {
        latest_in_log(s).map(|(_, m)| m)
    };
    m.unwrap_or_else(|| initial(rules))
}

/// How many of `n` voters make a majority.
pub fn majority_of(n: usize, rules: &Rules) -> usize {
    if rules.bug(Bug::MinorityQuorum) {
        (n / 2).max(1)
    } else {
        n / 2 + 1
    }
}

/// Whether the servers for which `has` holds include a majority of the
/// voters of `m` ("a majority of the servers", of the configuration in use).
/// Learners never count. Joint consensus (thesis 4.3): "agreement (for
/// elections and entry commitment) requires separate majorities from both
/// the old and new configurations".
pub fn is_quorum(m: &Membership, rules: &Rules, has: impl Fn(NodeId) -> bool) -> bool {
    let majority_of_set = |voters: Members| {
        let counted = if rules.bug(Bug::LearnerCounts) {
            // Wrong: a learner's acknowledgement counts as a voter's.
            voters.union(m.learners)
        } else {
            voters
        };
        counted.iter().filter(|&j| has(j)).count() >= majority_of(voters.len(), rules)
    };
    // With bug joint-new-majority-only, wrongly: the new majority alone.
    let old_counts = m.is_joint() && !rules.bug(Bug::JointNewMajorityOnly);
    majority_of_set(m.voters) && (!old_counts || majority_of_set(m.outgoing))
}

/// The configuration whose voters' majority `s` counts: `None` without
/// feature membership, where every server `1..=servers` votes.
pub fn counted(s: &Server, rules: &Rules) -> Option<Membership> {
    rules.membership.then(|| config(s, rules))
}

/// How many voters `counted` (of [`counted`]) has (of both configurations
/// while joint).
pub fn voter_count(counted: Option<&Membership>, rules: &Rules) -> usize {
    counted.map_or(rules.servers as usize, |m| m.all_voters().len())
}

/// Whether the servers for which `has` holds make a majority of `counted`
/// (of [`counted`]; [`is_quorum`] of a configuration, else of every server).
pub fn quorum_in(
    counted: Option<&Membership>,
    rules: &Rules,
    has: impl Fn(NodeId) -> bool,
) -> bool {
    match counted {
        Some(m) => is_quorum(m, rules, has),
        None => {
            let yes = (1..=rules.servers).filter(|&j| has(j)).count();
            yes >= majority_of(rules.servers as usize, rules)
        }
    }
}

/// [`quorum_in`] the configuration `s` uses.
pub fn has_quorum(s: &Server, rules: &Rules, has: impl Fn(NodeId) -> bool) -> bool {
    quorum_in(counted(s, rules).as_ref(), rules, has)
}

/// The servers `s` sends (pre-)vote requests to: the voters of its
/// configuration (old and new while joint) but itself, or with bug
/// removed-vote-counts every server.
pub fn asked_for_votes(s: &Server, rules: &Rules) -> Vec<NodeId> {
    if !rules.membership || rules.bug(Bug::RemovedVoteCounts) {
        return rules.peers(s.id).collect();
    }
    config(s, rules).all_voters().without(s.id).iter().collect()
}

/// Whether leader `s` replicates to server `j`: a voter or learner of its
/// configuration (everyone without feature membership).
pub fn replicates_to(s: &Server, rules: &Rules) -> impl Fn(NodeId) -> bool {
    let members = rules.membership.then(|| config(s, rules).members());
    let me = s.id;
    move |j| j != me && members.is_none_or(|m| m.contains(j))
}

/// Whether `s` may campaign: it is a voter of its configuration, old or new
/// while joint (etcd-io/raft `promotable`; learners and servers outside the
/// cluster never do).
pub fn is_voter(s: &Server, rules: &Rules) -> bool {
    config(s, rules).all_voters().contains(s.id)
}

/// Thesis 4.1: leader `s` proposes `change` by appending the new
/// configuration to its log, provided that
/// - no configuration entry in its log is uncommitted ("the leader will not
///   start another membership change until the previous one is
///   committed"; etcd-io/raft refuses while `pendingConfIndex > applied`);
/// - it has committed an entry of its current term (Ongaro's 2015
///   correction; etcd-io/raft's no-op entry at election serves this);
/// - the change changes the configuration (a voter added must not be one,
///   at least one voter stays), applied to the latest configuration in its
///   log.
///
/// Otherwise, or not a leader: nothing.
pub fn propose_change(s: &Server, rules: &Rules, change: Change) -> Step {
    let mut step = Step::unchanged(s);
    if !rules.membership || s.role != Role::Leader {
        return step;
    }
    let latest = latest_in_log(s);
    let pending = latest.is_some_and(|(index, _)| index > s.commit);
    if pending && !rules.bug(Bug::OverlappingChanges) {
        return step;
    }
    if s.log.term_at(s.commit) != Some(s.term) {
        return step;
    }
    let current = latest.map_or_else(|| initial(rules), |(_, m)| m);
    let Some(next) = change.apply(current) else {
        return step;
    };
    step.state.log.entries.push(Entry {
        term: s.term,
        cmd: Command::config(next),
    });
    // As for a client's command: a leader that alone is a majority commits.
    let replies = replication::advance_commit(&mut step.state, rules);
    step.sends.extend(replies);
    step
}

/// Records what applying configuration `next` after `before` changed (the
/// ghost bits for the sometimes-properties).
pub(crate) fn applied(s: &mut Server, rules: &Rules, before: Option<Membership>, next: Membership) {
    let before = before.unwrap_or_else(|| initial(rules));
    for j in next
        .voters
        .iter()
        .filter(|&j| !before.all_voters().contains(j))
    {
        s.ghost |= if before.learners.contains(j) {
            ghost::LEARNER_PROMOTED
        } else {
            ghost::VOTER_ADDED
        };
    }
    if before.voters.iter().any(|j| !next.all_voters().contains(j)) {
        s.ghost |= ghost::VOTER_REMOVED;
    }
    if next.is_joint() && !before.is_joint() {
        s.ghost |= ghost::JOINT_ENTERED;
    }
    if before.is_joint() && !next.is_joint() {
        s.ghost |= ghost::JOINT_LEFT;
    }
    if next.learners.iter().any(|j| !before.members().contains(j)) {
        s.ghost |= ghost::LEARNER_ADDED;
    }
}

/// Thesis 4.2.2: a leader that is not part of the new configuration "steps
/// down (returns to follower state) once the C_new entry is committed"
/// (unless feature `removed-leader-stays`: it goes on leading). While
/// joint, a leader of C_old only manages the cluster until C_new (thesis
/// 4.3).
/// Called after `s` committed up to its commit index.
pub(crate) fn step_down_if_removed(s: &mut Server, rules: &Rules) {
    if !rules.membership
        || rules.removed_leader_stays
        || s.role != Role::Leader
        || config(s, rules).all_voters().contains(s.id)
    {
        return;
    }
    // With config-on-apply the configuration in use is committed already.
    let committed =
        rules.config_on_apply || latest_in_log(s).is_none_or(|(index, _)| index <= s.commit);
    if committed {
        become_follower(s);
        s.ghost |= ghost::LEADER_REMOVED;
    }
}
