//! The wire and disk encodings of the core's types (postcard): messages
//! between nodes and the payload of WAL entries.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::core::{
    Body, Command, ConfigEntry, Entry, Membership, Message, Op, Payload, SnapshotMeta,
};

/// An operation (postcard cannot encode the trace crate's internally tagged `Op`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WireOp {
    Read(String),
    Write(String, String),
    Cas(String, Option<String>, String),
    Delete(String),
    Append(String, String),
}

impl From<&Op> for WireOp {
    fn from(op: &Op) -> Self {
        match op.clone() {
            Op::Read { key } => WireOp::Read(key),
            Op::Write { key, value } => WireOp::Write(key, value),
            Op::Cas { key, from, to } => WireOp::Cas(key, from, to),
            Op::Delete { key } => WireOp::Delete(key),
            Op::Append { key, value } => WireOp::Append(key, value),
        }
    }
}

impl From<WireOp> for Op {
    fn from(op: WireOp) -> Self {
        match op {
            WireOp::Read(key) => Op::Read { key },
            WireOp::Write(key, value) => Op::Write { key, value },
            WireOp::Cas(key, from, to) => Op::Cas { key, from, to },
            WireOp::Delete(key) => Op::Delete { key },
            WireOp::Append(key, value) => Op::Append { key, value },
        }
    }
}

/// An entry's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WirePayload {
    Noop,
    Command {
        client: u64,
        req: u64,
        op: WireOp,
    },
    // New variants go last: postcard encodes the variant's position.
    Config {
        voters: Vec<u64>,
        learners: Vec<u64>,
        context: Vec<u8>,
    },
}

impl From<&Payload> for WirePayload {
    fn from(p: &Payload) -> Self {
        match p {
            Payload::Noop => WirePayload::Noop,
            Payload::Command(c) => WirePayload::Command {
                client: c.client,
                req: c.req,
                op: (&c.op).into(),
            },
            Payload::Config(c) => WirePayload::Config {
                voters: c.membership.voters.iter().copied().collect(),
                learners: c.membership.learners.iter().copied().collect(),
                context: c.context.clone(),
            },
        }
    }
}

impl From<WirePayload> for Payload {
    fn from(p: WirePayload) -> Self {
        match p {
            WirePayload::Noop => Payload::Noop,
            WirePayload::Command { client, req, op } => Payload::Command(Arc::new(Command {
                client,
                req,
                op: op.into(),
            })),
            WirePayload::Config {
                voters,
                learners,
                context,
            } => Payload::Config(Arc::new(ConfigEntry {
                membership: Membership {
                    voters: voters.into_iter().collect(),
                    learners: learners.into_iter().collect(),
                },
                context,
            })),
        }
    }
}

/// Encodes an entry's payload for the WAL.
pub fn encode_payload(p: &Payload) -> Vec<u8> {
    postcard::to_stdvec(&WirePayload::from(p)).expect("payload encodes")
}

/// Decodes an entry's payload from the WAL.
pub fn decode_payload(bytes: &[u8]) -> Result<Payload, postcard::Error> {
    postcard::from_bytes::<WirePayload>(bytes).map(Payload::from)
}

/// The start of a snapshot file that states its configuration. Files
/// written before membership changes hold the state machine alone.
const SNAPSHOT_CONFIG_MAGIC: &[u8; 8] = b"RKVCONF1";

/// The configuration a snapshot file states.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredConfig {
    voters: Vec<u64>,
    learners: Vec<u64>,
}

/// Encodes a snapshot file's contents: a magic, the configuration at the
/// snapshot's index, then the state machine's encoded state as it is.
pub fn encode_snapshot(config: &Membership, state: &[u8]) -> Vec<u8> {
    let stored = StoredConfig {
        voters: config.voters.iter().copied().collect(),
        learners: config.learners.iter().copied().collect(),
    };
    let mut out = SNAPSHOT_CONFIG_MAGIC.to_vec();
    out.extend(postcard::to_stdvec(&stored).expect("configuration encodes"));
    out.extend_from_slice(state);
    out
}

/// Decodes a snapshot file's contents: its configuration (`None` in a file
/// written before membership changes, which holds the state alone) and its
/// state.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(Option<Membership>, Vec<u8>), postcard::Error> {
    let Some(rest) = bytes.strip_prefix(SNAPSHOT_CONFIG_MAGIC) else {
        return Ok((None, bytes.to_vec()));
    };
    let (c, state): (StoredConfig, &[u8]) = postcard::take_from_bytes(rest)?;
    let config = Membership {
        voters: c.voters.into_iter().collect(),
        learners: c.learners.into_iter().collect(),
    };
    Ok((Some(config), state.to_vec()))
}

/// A log entry on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireEntry {
    pub index: u64,
    pub term: u64,
    pub payload: WirePayload,
}

/// The RPC bodies on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WireBody {
    RequestVote {
        last_index: u64,
        last_term: u64,
    },
    RequestVoteReply {
        granted: bool,
    },
    AppendEntries {
        prev_index: u64,
        prev_term: u64,
        commit: u64,
        entries: Vec<WireEntry>,
        read_ctx: u64,
    },
    AppendEntriesReply {
        success: bool,
        index: u64,
        hint_term: u64,
        reject_prev: u64,
        read_ctx: u64,
    },
    InstallSnapshot {
        index: u64,
        term: u64,
        voters: Vec<u64>,
        learners: Vec<u64>,
        offset: u64,
        chunk: Vec<u8>,
        done: bool,
    },
    InstallSnapshotReply {
        last_index: u64,
    },
    // New variants go last: postcard encodes the variant's position.
    PreVote {
        last_index: u64,
        last_term: u64,
    },
    PreVoteReply {
        granted: bool,
    },
    /// A RequestVote of a campaign started by a TimeoutNow (leader transfer).
    TransferVote {
        last_index: u64,
        last_term: u64,
    },
    TimeoutNow,
}

/// A message between nodes on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireMessage {
    pub id: u64,
    pub from: u64,
    pub to: u64,
    pub term: u64,
    pub body: WireBody,
}

impl From<&Message> for WireMessage {
    fn from(m: &Message) -> Self {
        let body = match &m.body {
            Body::RequestVote {
                last_index,
                last_term,
                transfer: true,
            } => WireBody::TransferVote {
                last_index: *last_index,
                last_term: *last_term,
            },
            Body::TimeoutNow => WireBody::TimeoutNow,
            Body::RequestVote {
                last_index,
                last_term,
                transfer: false,
            } => WireBody::RequestVote {
                last_index: *last_index,
                last_term: *last_term,
            },
            Body::RequestVoteReply { granted } => WireBody::RequestVoteReply { granted: *granted },
            Body::PreVote {
                last_index,
                last_term,
            } => WireBody::PreVote {
                last_index: *last_index,
                last_term: *last_term,
            },
            Body::PreVoteReply { granted } => WireBody::PreVoteReply { granted: *granted },
            Body::AppendEntries {
                prev_index,
                prev_term,
                commit,
                entries,
                read_ctx,
            } => WireBody::AppendEntries {
                prev_index: *prev_index,
                prev_term: *prev_term,
                commit: *commit,
                entries: entries
                    .iter()
                    .map(|e| WireEntry {
                        index: e.index,
                        term: e.term,
                        payload: (&e.payload).into(),
                    })
                    .collect(),
                read_ctx: *read_ctx,
            },
            Body::AppendEntriesReply {
                success,
                index,
                hint_term,
                reject_prev,
                read_ctx,
            } => WireBody::AppendEntriesReply {
                success: *success,
                index: *index,
                hint_term: *hint_term,
                reject_prev: *reject_prev,
                read_ctx: *read_ctx,
            },
            Body::InstallSnapshot {
                meta,
                config,
                offset,
                chunk,
                done,
            } => WireBody::InstallSnapshot {
                index: meta.index,
                term: meta.term,
                voters: config.voters.iter().copied().collect(),
                learners: config.learners.iter().copied().collect(),
                offset: *offset,
                chunk: chunk.clone(),
                done: *done,
            },
            Body::InstallSnapshotReply { last_index } => WireBody::InstallSnapshotReply {
                last_index: *last_index,
            },
        };
        WireMessage {
            id: m.id,
            from: m.from,
            to: m.to,
            term: m.term,
            body,
        }
    }
}

impl From<WireMessage> for Message {
    fn from(m: WireMessage) -> Self {
        let body = match m.body {
            WireBody::RequestVote {
                last_index,
                last_term,
            } => Body::RequestVote {
                last_index,
                last_term,
                transfer: false,
            },
            WireBody::TransferVote {
                last_index,
                last_term,
            } => Body::RequestVote {
                last_index,
                last_term,
                transfer: true,
            },
            WireBody::TimeoutNow => Body::TimeoutNow,
            WireBody::RequestVoteReply { granted } => Body::RequestVoteReply { granted },
            WireBody::PreVote {
                last_index,
                last_term,
            } => Body::PreVote {
                last_index,
                last_term,
            },
            WireBody::PreVoteReply { granted } => Body::PreVoteReply { granted },
            WireBody::AppendEntries {
                prev_index,
                prev_term,
                commit,
                entries,
                read_ctx,
            } => Body::AppendEntries {
                prev_index,
                prev_term,
                commit,
                entries: entries
                    .into_iter()
                    .map(|e| Entry {
                        index: e.index,
                        term: e.term,
                        payload: e.payload.into(),
                    })
                    .collect(),
                read_ctx,
            },
            WireBody::AppendEntriesReply {
                success,
                index,
                hint_term,
                reject_prev,
                read_ctx,
            } => Body::AppendEntriesReply {
                success,
                index,
                hint_term,
                reject_prev,
                read_ctx,
            },
            WireBody::InstallSnapshot {
                index,
                term,
                voters,
                learners,
                offset,
                chunk,
                done,
            } => Body::InstallSnapshot {
                meta: SnapshotMeta { index, term },
                config: Membership {
                    voters: voters.into_iter().collect(),
                    learners: learners.into_iter().collect(),
                },
                offset,
                chunk,
                done,
            },
            WireBody::InstallSnapshotReply { last_index } => {
                Body::InstallSnapshotReply { last_index }
            }
        };
        Message {
            id: m.id,
            from: m.from,
            to: m.to,
            term: m.term,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trip() {
        let m = Message {
            id: 7,
            from: 1,
            to: 2,
            term: 3,
            body: Body::AppendEntries {
                prev_index: 4,
                prev_term: 2,
                commit: 4,
                entries: vec![Entry {
                    index: 5,
                    term: 3,
                    payload: Payload::Command(Arc::new(Command {
                        client: 9,
                        req: 1,
                        op: Op::Cas {
                            key: "k".into(),
                            from: None,
                            to: "v".into(),
                        },
                    })),
                }],
                read_ctx: 0,
            },
        };
        let bytes = postcard::to_stdvec(&WireMessage::from(&m)).unwrap();
        let back: Message = postcard::from_bytes::<WireMessage>(&bytes).unwrap().into();
        assert_eq!(back, m);
        for body in [
            Body::PreVote {
                last_index: 5,
                last_term: 3,
            },
            Body::PreVoteReply { granted: true },
            Body::RequestVote {
                last_index: 5,
                last_term: 3,
                transfer: true,
            },
            Body::RequestVote {
                last_index: 5,
                last_term: 3,
                transfer: false,
            },
            Body::TimeoutNow,
        ] {
            let m = Message { body, ..m.clone() };
            let bytes = postcard::to_stdvec(&WireMessage::from(&m)).unwrap();
            let back: Message = postcard::from_bytes::<WireMessage>(&bytes).unwrap().into();
            assert_eq!(back, m);
        }
        let config = Membership {
            voters: [1, 2, 4].into(),
            learners: [5].into(),
        };
        let file = encode_snapshot(&config, b"RKVSNAP state");
        assert_eq!(
            decode_snapshot(&file).unwrap(),
            (Some(config), b"RKVSNAP state".to_vec())
        );
        // A file of a release before membership changes: the state alone.
        assert_eq!(
            decode_snapshot(b"RKVSNAP state").unwrap(),
            (None, b"RKVSNAP state".to_vec())
        );
        assert!(decode_snapshot(b"RKVCONF1\xff\xff\xff").is_err());
        let p = encode_payload(&Payload::Noop);
        assert_eq!(decode_payload(&p).unwrap(), Payload::Noop);
        assert!(decode_payload(&[0xff, 0xff]).is_err());
    }
}
