//! The address book's pieces: where a member is reached, and the context
//! a raftkv leader puts in a configuration entry.
//!
//! The context is JSON, `{"addrs": {"4": {"peer_addr": "127.0.0.1:7004",
//! "client_addr": "127.0.0.1:8004"}, ...}}`: the addresses of every member
//! of the new configuration that the leader knows (the new member's from
//! the request), so that once any change is applied every node's address
//! book names every member, including those of the bootstrap
//! configuration. An empty context (a configuration entry written by
//! something else than the node, e.g. the simulator) names none.

use std::collections::BTreeMap;

use crate::core::NodeId;

/// Where a member is reached: its peer (Raft) address and the address of
/// its HTTP client API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberAddrs {
    pub peer_addr: String,
    pub client_addr: String,
}

/// The context of a configuration entry written by a raftkv node.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ChangeContext {
    /// Addresses of members of the new configuration.
    #[serde(default)]
    pub addrs: BTreeMap<NodeId, MemberAddrs>,
}

impl ChangeContext {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a context encodes")
    }

    /// Decodes a context; empty bytes are an empty context.
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        if bytes.is_empty() {
            return Ok(ChangeContext::default());
        }
        serde_json::from_slice(bytes)
    }
}
