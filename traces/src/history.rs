//! Client events: the history part of `raft-trace/1`.
//!
//! A history is the clients' view of the store, as in Jepsen and Porcupine:
//! each operation is an `invoke` and, when the client learned the outcome, a
//! `return` whose status is `ok` (it happened), `fail` (it certainly did not
//! happen) or `info` (unknown: it may or may not have happened, at any time
//! after its invoke). The order of client lines in a file is real-time order.

use serde::{Deserialize, Serialize};

use crate::event::{EventType, NodeId};

/// An operation on the key-value store. `f` on the wire names the variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Read `key`; the return's `value` is the value read (`null`: absent).
    Read { key: String },
    /// Set `key` to `value`.
    Write { key: String, value: String },
    /// If `key` holds `from` (`null`: absent), set it to `to`. A cas whose
    /// precondition does not hold returns `fail`.
    Cas {
        key: String,
        #[serde(deserialize_with = "crate::event::required_nullable")]
        from: Option<String>,
        to: String,
    },
    /// Remove `key`.
    Delete { key: String },
    /// Append `value` to the value of `key` (absent counts as "").
    Append { key: String, value: String },
}

impl Op {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Read { key }
            | Op::Write { key, .. }
            | Op::Cas { key, .. }
            | Op::Delete { key }
            | Op::Append { key, .. } => key,
        }
    }
}

/// A client event; `type` on the wire is `invoke` or `return`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientEvent {
    Invoke(Invoke),
    Return(Return),
}

impl ClientEvent {
    pub fn event_type(&self) -> EventType {
        match self {
            ClientEvent::Invoke(_) => EventType::Invoke,
            ClientEvent::Return(_) => EventType::Return,
        }
    }

    /// The (client, req) pair that identifies the operation.
    pub fn id(&self) -> (u64, u64) {
        match self {
            ClientEvent::Invoke(i) => (i.client, i.req),
            ClientEvent::Return(r) => (r.client, r.req),
        }
    }
}

/// A client starts an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invoke {
    /// The client (Jepsen's process). A client runs one operation at a time.
    pub client: u64,
    /// The client's request number; a retry of the same command keeps it.
    pub req: u64,
    /// The node the client sent the request to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    pub op: Op,
    /// Nanoseconds since the trace's origin; informative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
}

/// The outcome of an operation, as the client learned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It happened.
    Ok,
    /// It certainly did not happen (e.g. a cas whose precondition failed).
    Fail,
    /// Unknown: it may have happened, at any point after its invoke.
    Info,
}

/// A client learns the outcome of the operation it invoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Return {
    pub client: u64,
    pub req: u64,
    pub status: Status,
    /// For a read that returned `ok`: the value read (`null` or absent: the
    /// key was absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why it failed, or why the outcome is unknown; informative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
}
