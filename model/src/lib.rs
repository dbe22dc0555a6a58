//! The Raft specification as a stateright model (see issue: the model).
