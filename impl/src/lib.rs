//! raftkv: the production Raft key-value store.

pub mod storage;
pub mod transport;
