//! raftkv: the production Raft key-value store.
//!
//! - [`core`]: the deterministic, sans-IO Raft node (election, replication,
//!   log, snapshots, ReadIndex reads), emitting `raft-trace/1` events;
//! - [`kv`]: the key-value state machine with client sessions;
//! - [`trace`]: the core's events in `raft-trace/1` form;
//! - [`bugs`]: planted bugs that the checkers must catch;
//! - [`storage`]: the durable write-ahead log and snapshot files;
//! - [`node`]: the node process, its HTTP client API and a client;
//! - [`transport`]: TCP framing and connections between nodes.

pub mod bugs;
pub mod core;
pub mod kv;
pub mod node;
pub mod storage;
pub mod trace;
pub mod transport;
