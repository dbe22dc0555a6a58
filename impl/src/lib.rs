//! raftkv: the production Raft key-value store.
