//! The properties the model checker evaluates on every reachable state.
//!
//! Safety (always): Raft's Figure 3 guarantees, plus exactly-once
//! application, durability of committed entries on a quorum, and
//! linearizability of the clients' history. Reachability (sometimes): states
//! that show the bounds are large enough for the interesting behaviours, so a
//! check cannot pass vacuously.

use stateright::Expectation;

use crate::actor::server_actor;
use crate::actor::NodeState;
use crate::config::Config;
use crate::model::{RaftModel, RaftState};
use crate::rules;
use crate::server::{ghost, Rules, Server};
use crate::types::{Index, Membership, Msg, NodeId, Role, Term};

/// Property names, as printed and as used in JSON.
pub mod names {
    pub const ELECTION_SAFETY: &str = "Election Safety";
    pub const LEADER_APPEND_ONLY: &str = "Leader Append-Only";
    pub const LOG_MATCHING: &str = "Log Matching";
    pub const LEADER_COMPLETENESS: &str = "Leader Completeness";
    pub const STATE_MACHINE_SAFETY: &str = "State Machine Safety";
    pub const COMMITTED_DURABLE: &str = "Committed Entries On A Quorum";
    pub const NO_DOUBLE_APPLY: &str = "No Command Applied Twice";
    pub const LINEARIZABLE: &str = "Linearizable";
    pub const STEPS_DEFINED: &str = "Every Step Is Defined";
    pub const LEADER_ELECTED: &str = "a leader is elected";
    pub const VALUE_COMMITTED: &str = "a value is committed";
    pub const SPLIT_VOTE: &str = "a split vote";
    pub const TRUNCATED: &str = "an uncommitted suffix is truncated after a leader change";
    pub const SNAPSHOT_INSTALLED: &str = "a snapshot is installed on a follower";
    pub const DEDUPLICATED: &str = "a retried command is deduplicated";
    pub const STEPPED_DOWN: &str = "a leader steps down";
    pub const STALE_APPEND_ACKED: &str = "a stale append is acknowledged at the commit index";
    pub const LOST_ELECTION: &str = "a candidate gives up a lost election";
    pub const PRE_VOTE_KEEPS_TERMS: &str = "Pre-Vote Changes No Term";
    pub const PRE_VOTE_WON: &str = "a pre-candidate wins its pre-vote and campaigns";
    pub const PRE_VOTE_LOST: &str = "a pre-candidate loses its pre-vote";
    pub const CHECK_QUORUM_STEP_DOWN: &str = "a leader steps down by check-quorum";
    pub const HEARTBEAT_COMMIT: &str = "a follower commits on a heartbeat";
    pub const READ_INDEX_SERVED: &str = "a read is served by ReadIndex";
    pub const SNAPSHOT_FAST_FORWARD: &str = "a follower fast-forwards its commit on a snapshot";
    pub const TRANSFER_TARGET_UP_TO_DATE: &str = "Transfer Target Up To Date";
    pub const TRANSFER_COMPLETED: &str = "a leader transfer completes";
    pub const COMMIT_LEARNED: &str = "a commit is learned from a vote message";
    pub const PROPOSAL_FORWARDED: &str = "a forwarded proposal is appended by the leader";
    pub const LEASE_HOLDS: &str = "Leader Lease Holds";
    pub const LEASE_READ_SERVED: &str = "a read is served by the leader's lease";
    pub const STALE_TERM_STEP_DOWN: &str =
        "a leader steps down in its own term on a reply's higher term";
    pub const COMPACTED_PREV_REFUSED: &str =
        "a follower refuses an append whose previous entry it compacted";
    pub const COMMIT_BOUNDED_BY_BATCH: &str =
        "a follower's commit stops at the last entry of a partial batch";
    /// Not a stateright property: checked by [`crate::progress`].
    pub const PROGRESS: &str = "Progress";
    pub const VOTER_ADDED: &str = "a new voter is added";
    pub const LEARNER_ADDED: &str = "a learner is added";
    pub const LEARNER_PROMOTED: &str = "a learner is promoted to voter";
    pub const VOTER_REMOVED: &str = "a voter is removed";
    pub const LEADER_REMOVED: &str = "a leader removed from the configuration steps down";
    pub const JOINT_ENTERED: &str = "joint consensus is entered";
    pub const JOINT_LEFT: &str = "joint consensus is left";
}
use names::*;

/// A property: expectation, name and condition.
pub type Prop = (
    Expectation,
    &'static str,
    fn(&RaftModel, &RaftState) -> bool,
);

/// The properties that apply to `cfg` (reachability properties that the
/// configuration cannot reach by construction are left out: e.g. no client
/// properties without clients).
pub fn properties(cfg: &Config) -> Vec<Prop> {
    let clients = cfg.clients > 0 && cfg.ops > 0;
    let rules = cfg.rules();
    let mut props: Vec<Prop> = vec![
        (Expectation::Always, ELECTION_SAFETY, election_safety),
        (Expectation::Always, LEADER_APPEND_ONLY, leader_append_only),
        (Expectation::Always, LOG_MATCHING, log_matching),
        (
            Expectation::Always,
            LEADER_COMPLETENESS,
            leader_completeness,
        ),
        (
            Expectation::Always,
            STATE_MACHINE_SAFETY,
            state_machine_safety,
        ),
        (Expectation::Always, COMMITTED_DURABLE, committed_durable),
        (Expectation::Always, STEPS_DEFINED, steps_defined),
    ];
    if clients {
        props.push((Expectation::Always, NO_DOUBLE_APPLY, no_double_apply));
        props.push((Expectation::Always, LINEARIZABLE, linearizable));
    }
    if cfg.max_term >= 1 {
        props.push((Expectation::Sometimes, LEADER_ELECTED, leader_elected));
    }
    if clients && cfg.max_term >= 1 {
        props.push((Expectation::Sometimes, VALUE_COMMITTED, value_committed));
    }
    if cfg.servers >= 2 && cfg.max_term >= 1 {
        props.push((Expectation::Sometimes, SPLIT_VOTE, split_vote));
    }
    if cfg.servers >= 2 && cfg.max_term >= 2 {
        props.push((Expectation::Sometimes, STEPPED_DOWN, stepped_down));
        if clients {
            props.push((Expectation::Sometimes, TRUNCATED, truncated));
        }
    }
    if clients && cfg.snapshot_after > 0 && cfg.servers >= 2 {
        props.push((
            Expectation::Sometimes,
            SNAPSHOT_INSTALLED,
            snapshot_installed,
        ));
    }
    if clients && cfg.max_log >= 2 {
        props.push((Expectation::Sometimes, DEDUPLICATED, deduplicated));
    }
    // The production behaviours beyond Figure 2, when switched on: a stale
    // append needs a committed entry, a lost election a rival candidate.
    if rules.stale_append_reply && clients && cfg.servers >= 2 && cfg.max_term >= 1 {
        props.push((
            Expectation::Sometimes,
            STALE_APPEND_ACKED,
            stale_append_acked,
        ));
    }
    if rules.lost_election && cfg.servers >= 3 && cfg.max_term >= 1 {
        props.push((Expectation::Sometimes, LOST_ELECTION, lost_election));
    }
    if rules.pre_vote {
        props.push((
            Expectation::Always,
            PRE_VOTE_KEEPS_TERMS,
            pre_vote_keeps_terms,
        ));
        if cfg.servers >= 2 && cfg.max_term >= 1 {
            props.push((Expectation::Sometimes, PRE_VOTE_WON, pre_vote_won));
        }
        // Only a voter with a better log refuses a pre-vote of a higher term.
        if clients && cfg.servers >= 2 && cfg.max_term >= 2 {
            props.push((Expectation::Sometimes, PRE_VOTE_LOST, pre_vote_lost));
        }
    }
    if rules.check_quorum && cfg.servers >= 2 && cfg.max_term >= 1 {
        props.push((
            Expectation::Sometimes,
            CHECK_QUORUM_STEP_DOWN,
            check_quorum_step_down,
        ));
    }
    // A higher term in a reply needs a second election.
    if rules.stale_term_step_down && cfg.servers >= 2 && cfg.max_term >= 2 {
        props.push((
            Expectation::Sometimes,
            STALE_TERM_STEP_DOWN,
            stale_term_step_down,
        ));
    }
    if rules.refuse_compacted_prev && clients && cfg.snapshot_after > 0 && cfg.servers >= 2 {
        props.push((
            Expectation::Sometimes,
            COMPACTED_PREV_REFUSED,
            compacted_prev_refused,
        ));
    }
    if rules.snapshot_fast_forward && clients && cfg.snapshot_after > 0 && cfg.servers >= 2 {
        props.push((
            Expectation::Sometimes,
            SNAPSHOT_FAST_FORWARD,
            snapshot_fast_forward,
        ));
    }
    // A read needs a committed entry of the leader's term first: a write.
    if rules.read_index && clients && cfg.ops >= 2 && cfg.max_term >= 1 {
        props.push((Expectation::Sometimes, READ_INDEX_SERVED, read_index_served));
    }
    if rules.forward_proposals && clients && cfg.servers >= 2 {
        props.push((
            Expectation::Sometimes,
            PROPOSAL_FORWARDED,
            proposal_forwarded,
        ));
    }
    if rules.lease_read {
        props.push((Expectation::Always, LEASE_HOLDS, lease_holds));
    }
    if rules.lease_read && clients && cfg.ops >= 2 && cfg.max_term >= 1 {
        props.push((Expectation::Sometimes, LEASE_READ_SERVED, lease_read_served));
    }
    if rules.leader_transfer {
        props.push((
            Expectation::Always,
            TRANSFER_TARGET_UP_TO_DATE,
            transfer_target_up_to_date,
        ));
        // A transfer starts in a term and ends in the next.
        if cfg.servers >= 2 && cfg.max_term >= 2 {
            props.push((
                Expectation::Sometimes,
                TRANSFER_COMPLETED,
                transfer_completed,
            ));
        }
    }
    if rules.heartbeat && clients && cfg.servers >= 2 && cfg.max_term >= 1 {
        props.push((Expectation::Sometimes, HEARTBEAT_COMMIT, heartbeat_commit));
    }
    // A server learns a commit from a vote message once another server
    // committed more than it and then campaigns (or answers a campaign).
    if rules.commit_any_message && clients && cfg.servers >= 2 && cfg.max_term >= 2 {
        props.push((Expectation::Sometimes, COMMIT_LEARNED, commit_learned));
    }
    // Membership changes: each kind of change a configuration allows is
    // applied somewhere; a leader that removes itself steps down.
    if rules.membership && cfg.max_term >= 1 {
        use crate::types::Change;
        let initial = rules::membership::initial(&rules);
        let adds_new = cfg.changes.iter().any(|c| matches!(c, Change::AddVoter(_)));
        let learns = cfg
            .changes
            .iter()
            .any(|c| matches!(c, Change::AddLearner(_)));
        let removes = cfg
            .changes
            .iter()
            .any(|c| matches!(c, Change::RemoveVoter(_) | Change::Demote(_)));
        if adds_new {
            props.push((Expectation::Sometimes, VOTER_ADDED, voter_added));
        }
        if learns {
            props.push((Expectation::Sometimes, LEARNER_ADDED, learner_added));
        }
        if learns && adds_new {
            props.push((Expectation::Sometimes, LEARNER_PROMOTED, learner_promoted));
        }
        if removes {
            props.push((Expectation::Sometimes, VOTER_REMOVED, voter_removed));
        }
        let leaves = cfg.changes.contains(&Change::LeaveJoint);
        let removes_a_leader = cfg.changes.iter().any(|c| match c {
            Change::RemoveVoter(j) | Change::Demote(j) => initial.voters.contains(*j),
            Change::Joint(voters) => leaves && !initial.voters.minus(*voters).is_empty(),
            _ => false,
        });
        if removes_a_leader && !cfg.rules().removed_leader_stays {
            props.push((Expectation::Sometimes, LEADER_REMOVED, leader_removed));
        }
        if cfg.changes.iter().any(|c| matches!(c, Change::Joint(_))) {
            props.push((Expectation::Sometimes, JOINT_ENTERED, joint_entered));
            if leaves {
                props.push((Expectation::Sometimes, JOINT_LEFT, joint_left));
            }
        }
    }
    // A batch short of the leader's commit: the leader commits two entries,
    // then sends a lagging follower the first alone.
    if cfg.partial_batches && clients && cfg.servers >= 2 && cfg.max_term >= 1 && cfg.max_log >= 2 {
        props.push((
            Expectation::Sometimes,
            COMMIT_BOUNDED_BY_BATCH,
            commit_bounded_by_batch,
        ));
    }
    props
}

/// Every server's state (crashed servers keep their last state, whose
/// persistent part is what they saved).
pub(crate) fn servers(state: &RaftState) -> impl Iterator<Item = &Server> {
    state.actor_states.iter().filter_map(|a| a.server())
}

/// Servers that are up.
pub(crate) fn live_servers(state: &RaftState) -> impl Iterator<Item = &Server> {
    state
        .actor_states
        .iter()
        .zip(&state.crashed)
        .filter(|(_, crashed)| !**crashed)
        .filter_map(|(a, _)| match &***a {
            NodeState::Server(s) => Some(&**s),
            NodeState::Client(_) => None,
        })
}

pub(crate) fn leaders(state: &RaftState) -> impl Iterator<Item = &Server> {
    live_servers(state).filter(|s| s.role == Role::Leader)
}

/// The committed entries whose term `s` knows: (index, term).
pub(crate) fn known_committed(s: &Server) -> impl Iterator<Item = (Index, Term)> + '_ {
    let upto = s.commit.min(s.log.last_index());
    (s.log.snapshot_index.max(1)..=upto).filter_map(|k| s.log.term_at(k).map(|t| (k, t)))
}

/// At most one leader per term.
fn election_safety(_: &RaftModel, state: &RaftState) -> bool {
    let mut terms: Vec<Term> = leaders(state).map(|s| s.term).collect();
    let n = terms.len();
    terms.sort_unstable();
    terms.dedup();
    terms.len() == n
}

/// A leader never overwrites or deletes entries in its log (checked on each
/// transition by the actor, which sets a ghost bit).
fn leader_append_only(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.has(ghost::LEADER_OVERWROTE))
}

/// No server's step hit a rule whose precondition failed (see
/// `RaftActor::guarded`): every state the bounds reach is one the rules
/// handle.
fn steps_defined(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.has(ghost::RULE_FAILED))
}

/// If two logs contain an entry with the same index and term, the logs are
/// identical in all entries up through that index (as far as both hold them
/// uncompacted).
fn log_matching(_: &RaftModel, state: &RaftState) -> bool {
    let all: Vec<&Server> = servers(state).collect();
    for (x, a) in all.iter().enumerate() {
        for b in &all[x + 1..] {
            let top = a.log.last_index().min(b.log.last_index());
            let mut matched = false;
            for k in (1..=top).rev() {
                match (a.log.term_at(k), b.log.term_at(k)) {
                    (Some(ta), Some(tb)) if ta == tb => matched = true,
                    (Some(_), Some(_)) if matched => return false,
                    _ => {}
                }
                if matched {
                    if let (Some(ea), Some(eb)) = (a.log.entry(k), b.log.entry(k)) {
                        if ea != eb {
                            return false;
                        }
                    }
                }
            }
        }
    }
    true
}

/// Whether `s`'s log holds entry (k, t): uncompacted with that term, or
/// compacted (the compacted prefix is committed; its terms are not kept).
pub(crate) fn holds(s: &Server, k: Index, t: Term) -> bool {
    k < s.log.snapshot_index || s.log.term_at(k) == Some(t)
}

/// If an entry is committed in a term, it is in the log of every leader of
/// a later term. A server with commit index c in term T knows entries up to c
/// were committed in a term <= T, so every leader of a term >= T holds them.
fn leader_completeness(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| {
        known_committed(s).all(|(k, t)| {
            leaders(state)
                .filter(|l| l.term >= s.term)
                .all(|l| holds(l, k, t))
        })
    })
}

/// No two servers apply different entries at the same index; servers that
/// applied the same prefix have the same state machine.
fn state_machine_safety(_: &RaftModel, state: &RaftState) -> bool {
    let all: Vec<&Server> = servers(state).collect();
    for (x, a) in all.iter().enumerate() {
        for b in &all[x + 1..] {
            let upto = a.commit.min(b.commit);
            for (k, t) in known_committed(a).take_while(|(k, _)| *k <= upto) {
                if let Some(tb) = b.log.term_at(k) {
                    if tb != t
                        || a.log
                            .entry(k)
                            .zip(b.log.entry(k))
                            .is_some_and(|(x, y)| x != y)
                    {
                        return false;
                    }
                }
            }
            if a.commit == b.commit && a.sm != b.sm {
                return false;
            }
        }
    }
    true
}

/// Every committed entry is stored (in the log or a snapshot) on a quorum of
/// servers, so no election can lose it.
///
/// With feature membership, "a quorum" is a majority of the voters of some
/// configuration: the initial one or one that a server's log, snapshot or
/// state machine holds. The leader that committed the entry counted a
/// majority of its configuration, which is one of these unless it was an
/// uncommitted one that every log has lost since. Then the check is still
/// exact for a change from three voters (a majority after adding or
/// removing one server is a majority of the three); from another size it
/// could reject a correct state, but only after a first change, with an
/// entry committed under a later, uncommitted configuration entry that is
/// then lost: logs of at least four entries (the suite's hold three).
fn committed_durable(model: &RaftModel, state: &RaftState) -> bool {
    let rules = model.actors[0].rules;
    let configs = known_configs(&rules, state);
    servers(state).all(|s| {
        known_committed(s).all(|(k, t)| {
            let holds = |j: NodeId| {
                servers(state).any(|x| {
                    x.id == j && (x.log.snapshot_index >= k || x.log.term_at(k) == Some(t))
                })
            };
            configs
                .iter()
                .any(|m| rules::membership::is_quorum(m, &Rules { bug: None, ..rules }, holds))
        })
    })
}

/// The configurations a state knows of: the initial one and every one in a
/// server's log, snapshot or state machine.
pub(crate) fn known_configs(rules: &Rules, state: &RaftState) -> Vec<Membership> {
    let mut configs = vec![rules::membership::initial(rules)];
    if rules.membership {
        for s in servers(state) {
            let logged = s.log.entries.iter().filter_map(|e| e.cmd.membership());
            configs.extend(logged.chain(s.log.snapshot_data.config).chain(s.sm.config));
        }
        configs.sort();
        configs.dedup();
    }
    configs
}

/// No state machine executed a command it had already executed.
fn no_double_apply(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.sm.reexecuted && !s.log.snapshot_data.reexecuted)
}

fn linearizable(_: &RaftModel, state: &RaftState) -> bool {
    state.history.linearizable()
}

fn leader_elected(_: &RaftModel, state: &RaftState) -> bool {
    leaders(state).next().is_some()
}

fn value_committed(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| !s.sm.sessions.is_empty())
}

/// Some term's votes are split so that no candidate can reach a quorum, even
/// with the votes of every server that has not voted in that term yet.
fn split_vote(model: &RaftModel, state: &RaftState) -> bool {
    let quorum = (model.cfg.servers / 2 + 1) as usize;
    let all: Vec<&Server> = servers(state).collect();
    (1..=model.cfg.max_term).any(|t| {
        let undecided = all
            .iter()
            .filter(|s| s.term < t || (s.term == t && s.voted_for.is_none()))
            .count();
        let cast: Vec<_> = all
            .iter()
            .filter(|s| s.term == t)
            .filter_map(|s| s.voted_for)
            .collect();
        !cast.is_empty()
            && cast
                .iter()
                .all(|c| cast.iter().filter(|v| *v == c).count() + undecided < quorum)
    })
}

fn truncated(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::TRUNCATED))
}

fn snapshot_installed(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::INSTALLED_SNAPSHOT))
}

fn deduplicated(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::DEDUPLICATED))
}

fn stepped_down(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::STEPPED_DOWN))
}

fn stale_append_acked(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::STALE_APPEND_ACKED))
}

fn lost_election(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::LOST_ELECTION))
}

/// A pre-vote request changed neither the voter's term nor its vote
/// (thesis 9.6: a server that cannot win an election disturbs no one). The
/// actor checks each such transition and sets a ghost bit.
fn pre_vote_keeps_terms(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).all(|s| !s.has(ghost::PRE_VOTE_DISTURBED))
}

fn pre_vote_won(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::PRE_VOTE_WON))
}

fn pre_vote_lost(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::PRE_VOTE_LOST))
}

fn check_quorum_step_down(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::CHECK_QUORUM_STEP_DOWN))
}

fn stale_term_step_down(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::STALE_TERM_STEP_DOWN))
}

fn compacted_prev_refused(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::COMPACTED_PREV_REFUSED))
}

fn commit_bounded_by_batch(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::COMMIT_BOUNDED_BY_BATCH))
}

fn heartbeat_commit(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::HEARTBEAT_COMMIT))
}

fn read_index_served(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::READ_INDEX_SERVED))
}

/// Feature lease-read (thesis 6.4.1): while a leader may serve reads by its
/// lease, no server is leader of a higher term, so nothing is committed
/// that the leader's state machine lacks. The linearizability property
/// catches the stale read itself, in larger configurations (two clients).
fn lease_holds(model: &RaftModel, state: &RaftState) -> bool {
    let quorum = model.actors[0].rules.quorum();
    // A crashed leader serves nothing; its state is gone when it restarts.
    live_servers(state).all(|l| {
        let lease =
            l.role == Role::Leader && l.lease_acks.len() + 1 >= quorum && !l.sent_timeout_now;
        !lease || servers(state).all(|s| s.role != Role::Leader || s.term <= l.term)
    })
}

fn proposal_forwarded(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::PROPOSAL_FORWARDED))
}

fn lease_read_served(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::LEASE_READ_SERVED))
}

fn snapshot_fast_forward(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::SNAPSHOT_FAST_FORWARD))
}

/// Feature leader-transfer (thesis 3.10): a TimeoutNow tells a follower
/// whose log is the leader's to campaign. For every TimeoutNow of term t in
/// flight from L to T: while L is still leader of t, in the transfer to T
/// that sent it, and T is in term t, T's log holds all of L's log. (In term
/// t only L writes T's log, and L appends nothing while it transfers, so
/// the match that allowed the TimeoutNow still holds.)
fn transfer_target_up_to_date(_: &RaftModel, state: &RaftState) -> bool {
    let all: Vec<&Server> = servers(state).collect();
    let by_actor =
        |id: stateright::actor::Id| all.iter().find(|s| server_actor(s.id) == id).copied();
    state.network.iter_deliverable().all(|env| {
        let Msg::TimeoutNow { term } = crate::actor::unwire(env.msg) else {
            return true;
        };
        let (Some(l), Some(t)) = (by_actor(env.src), by_actor(env.dst)) else {
            return true;
        };
        let transferring = l.role == Role::Leader
            && l.term == *term
            && l.transfer.is_some_and(|x| x.to == t.id && x.sent);
        !transferring
            || t.term != *term
            || (1..=l.log.last_index()).all(|k| match l.log.term_at(k) {
                Some(lt) => holds(t, k, lt),
                None => t.log.holds(k),
            })
    })
}

fn transfer_completed(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::TRANSFER_COMPLETED))
}

fn commit_learned(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::COMMIT_LEARNED))
}

fn voter_added(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::VOTER_ADDED))
}

fn learner_added(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::LEARNER_ADDED))
}

fn learner_promoted(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::LEARNER_PROMOTED))
}

fn voter_removed(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::VOTER_REMOVED))
}

fn leader_removed(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::LEADER_REMOVED))
}

fn joint_entered(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::JOINT_ENTERED))
}

fn joint_left(_: &RaftModel, state: &RaftState) -> bool {
    servers(state).any(|s| s.has(ghost::JOINT_LEFT))
}
