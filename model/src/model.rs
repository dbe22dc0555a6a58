//! Assembling the stateright model for a [`Config`].

use std::sync::Arc;

use stateright::actor::{ActorModel, ActorModelState, LossyNetwork, Network};

use crate::actor::{RaftActor, Who};
use crate::config::{Config, NetworkKind};
use crate::history::{self, History};

/// The model type.
pub type RaftModel = ActorModel<RaftActor, Config, History>;
/// A state of the model: every actor's state, the network, timers, crashes
/// and the clients' history.
pub type RaftState = ActorModelState<RaftActor, History>;

/// Builds the model for `cfg` with every property that applies to it.
pub fn build(cfg: &Config) -> RaftModel {
    let shared = Arc::new(cfg.clone());
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
        });
    }
    for id in 1..=cfg.clients {
        model = model.actor(RaftActor {
            who: Who::Client(id),
            cfg: shared.clone(),
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
}
