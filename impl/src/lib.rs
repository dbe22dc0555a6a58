//! raftkv: the production Raft key-value store.
//!
//! - [`core`]: the deterministic, sans-IO Raft node (election, replication,
//!   log, snapshots, ReadIndex reads), emitting `raft-trace/1` events;
//! - [`kv`]: the key-value state machine with client sessions;
//! - [`sim`]: a deterministic simulator of a cluster of cores over a faulty
//!   network with crashes and a simulated disk, with safety invariants and a
//!   linearizability check of the clients' history;
//! - [`trace`]: the trace sink;
//! - [`bugs`]: planted bugs that the checkers must catch;
//! - [`storage`]: the durable write-ahead log and snapshot files;
//! - [`node`]: the node process, its HTTP client API and a client;
//! - [`transport`]: TCP framing and connections between nodes.

pub mod bugs;
pub mod core;
pub mod kv;
pub mod node;
pub mod sim;
pub mod storage;
pub mod trace;
pub mod transport;
