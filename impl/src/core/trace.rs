//! The core's types in `raft-trace/1` form.

use raft_trace as rt;

use super::{Body, Entry, Message, Payload};

/// A log entry in trace form.
pub fn entry(e: &Entry) -> rt::Entry {
    rt::Entry {
        term: e.term,
        data: Some(match &e.payload {
            Payload::Noop => rt::EntryData::Noop,
            Payload::Command(c) => rt::EntryData::Command {
                client: c.client,
                req: c.req,
                op: c.op.clone(),
            },
        }),
    }
}

/// A message in trace form; the sender's send and the receiver's receive
/// both use this, so their fields are identical.
pub fn message(m: &Message) -> rt::Message {
    let rpc = match &m.body {
        Body::RequestVote {
            last_index,
            last_term,
        } => rt::Rpc::RequestVote {
            last_index: *last_index,
            last_term: *last_term,
        },
        Body::RequestVoteReply { granted } => rt::Rpc::RequestVoteReply { granted: *granted },
        Body::AppendEntries {
            prev_index,
            prev_term,
            commit,
            entries,
            ..
        } => rt::Rpc::AppendEntries {
            prev_index: *prev_index,
            prev_term: *prev_term,
            commit: *commit,
            entries: Some(entries.iter().map(entry).collect()),
            entry_count: None,
        },
        Body::AppendEntriesReply {
            success,
            index,
            hint_term,
            ..
        } => {
            if *success {
                rt::Rpc::AppendEntriesReply {
                    success: true,
                    match_index: Some(*index),
                    hint_index: None,
                    hint_term: None,
                }
            } else {
                rt::Rpc::AppendEntriesReply {
                    success: false,
                    match_index: None,
                    hint_index: Some(*index),
                    // 0: the follower's log ends before the leader's prev.
                    hint_term: (*hint_term > 0).then_some(*hint_term),
                }
            }
        }
        Body::InstallSnapshot {
            meta, offset, done, ..
        } => rt::Rpc::InstallSnapshot {
            last_index: meta.index,
            last_term: meta.term,
            offset: *offset,
            done: *done,
            data: None,
        },
        Body::InstallSnapshotReply { last_index } => rt::Rpc::InstallSnapshotReply {
            last_index: *last_index,
        },
    };
    rt::Message {
        id: m.id,
        from: m.from,
        to: m.to,
        term: m.term,
        rpc,
    }
}
