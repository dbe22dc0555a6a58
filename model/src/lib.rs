//! The Raft specification as a stateright model.
//!
//! - [`rules`]: every rule of Raft (Figure 2, and Figure 13 for snapshots) as
//!   a pure function over one [`server::Server`] and an input, returning the
//!   new state and the messages to send. The trace validator replays
//!   implementation traces through the same functions.
//! - [`actor`]: the stateright actors (servers and clients) wrapping them.
//! - [`properties`]: safety and reachability properties.
//! - [`model`]: the model for a [`config::Config`]; [`suite`]: the default
//!   suite of configurations; [`check`]: running the checker and reporting;
//!   [`search`]: the depth-first search it runs.
//! - [`bugs`]: planted bugs that the suite must catch.
//! - [`explain`] and [`why`]: counterexamples as readable steps, and the
//!   one line on why their last state breaks the property.

pub mod actor;
pub mod bugs;
pub mod check;
pub mod config;
pub mod explain;
pub mod explorer;
pub mod hashed;
pub mod history;
pub mod model;
pub mod progress;
pub mod properties;
pub mod rules;
pub mod search;
pub mod server;
pub mod state_machine;
pub mod suite;
pub mod symmetry;
pub mod trace;
pub mod types;
pub mod visited;
pub mod why;

pub use bugs::Bug;
pub use config::{Config, NetworkKind};
pub use model::{build, RaftModel, RaftState};
pub use server::{Rules, Server, UnknownFeature, FEATURES};
pub use types::{Change, Members, Membership};
