//! Assembling the stateright model for a [`Config`].

use std::sync::Arc;

use stateright::actor::{ActorModel, ActorModelState, LossyNetwork, Network};

use crate::actor::{RaftActor, Who};
use crate::config::{Config, NetworkKind};
use crate::history::{self, History};
use crate::server::{ghost, Server};
use crate::types::{Msg, Role};

/// The model type.
pub type RaftModel = ActorModel<RaftActor, Config, History>;
/// A state of the model: every actor's state, the network, timers, crashes
/// and the clients' history.
pub type RaftState = ActorModelState<RaftActor, History>;

/// Builds the model for `cfg` with every property that applies to it.
pub fn build(cfg: &Config) -> RaftModel {
    let shared = Arc::new(cfg.clone());
    let rules = cfg.rules();
    let network = match cfg.network {
        NetworkKind::Ordered => Network::new_ordered([]),
        NetworkKind::Unordered => Network::new_unordered_nonduplicating([]),
        NetworkKind::Duplicating => Network::new_unordered_duplicating([]),
    };
    let mut model = ActorModel::new(cfg.clone(), History::new(cfg.clients))
        .init_network(network)
        .lossy_network(if cfg.lossy {
            LossyNetwork::Yes
        } else {
            LossyNetwork::No
        })
        .max_crashes(cfg.max_crashes)
        .record_msg_out(history::record_out)
        .record_msg_in(history::record_in)
        .within_boundary(within_boundary);
    for id in 1..=cfg.servers {
        model = model.actor(RaftActor {
            who: Who::Server(id),
            cfg: shared.clone(),
            rules,
        });
    }
    for id in 1..=cfg.clients {
        model = model.actor(RaftActor {
            who: Who::Client(id),
            cfg: shared.clone(),
            rules,
        });
    }
    for (expectation, name, condition) in crate::properties::properties(cfg) {
        model = model.property(expectation, name, condition);
    }
    model
}

/// The bounds: logs no longer than `max_log`; clients never crash (only
/// servers do); at most `max_in_flight` messages on a network that does not
/// deduplicate them.
fn within_boundary(cfg: &Config, state: &RaftState) -> bool {
    let n = cfg.servers as usize;
    !cfg.stop.is_raised()
        && state.crashed[n..].iter().all(|c| !c)
        && state
            .actor_states
            .iter()
            .filter_map(|a| a.server())
            .all(|s| s.log.last_index() <= cfg.max_log)
        && (cfg.network == NetworkKind::Duplicating || state.network.len() <= cfg.max_in_flight)
        && leases_hold(cfg, state)
}

/// Feature lease-read: the timing assumptions behind leases (thesis 6.4.1:
/// bounded clock drift and message delay), which the model's timers, having
/// no duration, cannot express. A follower's lease lasts at least an
/// election timeout from when it accepted the leader's AppendEntries; a
/// leader counts its lease from when it sent them, ends it at its next
/// check-quorum, and a message arrives well within an election timeout. So
/// a follower's lease does not end by time (its lease timer, or a restart:
/// ghost bit LEASE_EXPIRED) while its success reply that renews a lease is
/// still in flight, or while a running leader of its term holds a lease
/// that counts it. States where one did are outside the model. A follower
/// that leaves the term on a message of a higher term is not excluded:
/// that is what check-quorum's lease must prevent.
pub fn leases_hold(cfg: &Config, state: &RaftState) -> bool {
    // Only configurations with the feature; the check runs on every state.
    if !cfg.features.contains(&"lease-read") {
        return true;
    }
    let rules = cfg.rules();
    let servers: Vec<&Server> = state
        .actor_states
        .iter()
        .filter_map(|a| a.server())
        .collect();
    servers.iter().all(|f| {
        if !f.has(ghost::LEASE_EXPIRED) {
            return true;
        }
        let counted = servers.iter().enumerate().any(|(i, l)| {
            l.role == Role::Leader
                && !state.crashed[i]
                && l.term == f.term
                && crate::rules::membership::has_quorum(l, &rules, |j| {
                    j == l.id || l.lease_acks.contains(&j)
                })
                && !l.sent_timeout_now
                && l.lease_acks.contains(&f.id)
        });
        let renewing = state.network.iter_all().any(|env| {
            usize::from(env.src) == (f.id - 1) as usize
                && matches!(crate::actor::unwire(env.msg), Msg::AppendEntriesReply { term, success: true, .. } if *term == f.term)
        });
        !counted && !renewing
    })
}
