//! Network transport between Raft nodes over TCP (tokio).
//!
//! - Every frame carries a versioned header (magic, version, sender id) and a length prefix
//!   bounded by a maximum size that is checked before the payload is allocated
//!   ([`frame`]).
//! - Messages are any `serde` type, encoded with postcard, so the core's message type plugs in
//!   without the transport knowing it.
//! - Each peer has one outbound connection, re-established with exponential backoff, fed by a
//!   bounded queue that drops the OLDEST message when full and counts the drops ([`queue`]).
//! - Frames from unknown node ids (unless
//!   [`TransportConfig::accept_unknown_senders`], as a cluster whose membership changes
//!   needs), garbage, oversized or undecodable frames close their connection with a logged
//!   warning and are counted; the transport keeps running.
//! - Peers can be added (or moved) at run time ([`Transport::add_peer`]): a node that joins.
//! - A cluster started on one machine takes its listen ports from [`ports`], where outgoing
//!   connections cannot take them between the choice and a node's (re)start.
//!
//! - [`relay`] puts a cuttable TCP relay in front of a peer link, for fault experiments on
//!   node processes.
//!
//! Under `--cfg loom` only the queue is compiled (for its loom tests).

#[cfg(not(loom))]
pub mod frame;
#[cfg(not(loom))]
mod net;
#[cfg(not(loom))]
pub mod ports;
pub mod queue;
#[cfg(not(loom))]
pub mod relay;

/// A node's id in the cluster.
pub type NodeId = u64;

#[cfg(not(loom))]
pub use frame::{FrameError, FRAME_HEADER_LEN, FRAME_MAGIC, FRAME_VERSION};
#[cfg(not(loom))]
pub use net::{
    PeerStats, SendError, Transport, TransportConfig, TransportError, TransportHandle,
    TransportStats,
};
pub use queue::{BoundedQueue, PushOutcome};
