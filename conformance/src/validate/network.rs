//! Message identity: every receive must deliver a message that was sent,
//! with identical fields, and the network may lose, duplicate or reorder
//! messages only as far as the trace's header declares.

use std::collections::BTreeMap;

use raft_trace::{Message, Network, NodeId};

use super::Violation;

/// What is known about one sent message.
struct Sent {
    /// The message, while it may still be received: without duplication
    /// only its identity is kept once it has been (a table of every message
    /// of a long run would hold each entry it carried). Boxed, so that the
    /// identity left is small.
    msg: Option<Box<Message>>,
    /// Position among the messages `from` sent to `to` (0, 1, 2, ...).
    position: u64,
    /// How many times it has been received.
    received: u32,
}

/// The messages of one run, as seen by the sends and receives replayed so far.
pub struct NetworkCheck {
    allowed: Network,
    /// Whether the header declares `send` events. Without them a receive
    /// is the first sight of its message (nothing to match it against),
    /// and a second receive of it is checked as a duplicate.
    observes_send: bool,
    sent: ahash::AHashMap<(NodeId, u64), Sent>,
    /// Per (from, to): how many messages were sent, and the position of the
    /// last one received.
    channels: BTreeMap<(NodeId, NodeId), Channel>,
    /// Messages sent and never received so far.
    undelivered: usize,
}

#[derive(Default)]
struct Channel {
    sent: u64,
    last_received: Option<u64>,
}

impl NetworkCheck {
    pub fn new(allowed: Network, observes_send: bool) -> Self {
        NetworkCheck {
            allowed,
            observes_send,
            sent: ahash::AHashMap::new(),
            channels: BTreeMap::new(),
            undelivered: 0,
        }
    }

    /// Whether a message with this identity has been sent (used to merge
    /// per-node files: a receive waits until its send has been replayed).
    pub fn was_sent(&self, from: NodeId, id: u64) -> bool {
        self.sent.contains_key(&(from, id))
    }

    /// Records a send.
    pub fn send(&mut self, msg: &Message) -> Result<(), Violation> {
        let key = (msg.from, msg.id);
        if let Some(prev) = self.sent.get(&key) {
            return Err(Violation::new(
                "MessageIdentity",
                format!("a new message id from node {}", msg.from),
                format!(
                    "id {} was already used by {}",
                    msg.id,
                    prev.msg.as_deref().map_or_else(
                        || format!("message {} from {} (received)", msg.id, msg.from),
                        describe
                    )
                ),
            ));
        }
        let channel = self.channels.entry((msg.from, msg.to)).or_default();
        let position = channel.sent;
        channel.sent += 1;
        self.undelivered += 1;
        self.sent.insert(
            key,
            Sent {
                msg: Some(Box::new(msg.clone())),
                position,
                received: 0,
            },
        );
        Ok(())
    }

    /// Records a receive; it must match a send.
    pub fn receive(&mut self, msg: &Message) -> Result<(), Violation> {
        if !self.observes_send && !self.sent.contains_key(&(msg.from, msg.id)) {
            self.send(msg)?;
        }
        let Some(sent) = self.sent.get_mut(&(msg.from, msg.id)) else {
            return Err(Violation::new(
                "MessageNeverSent",
                format!(
                    "a send of message {} by node {} before its receive",
                    msg.id, msg.from
                ),
                format!("no such send: {}", describe(msg)),
            ));
        };
        if let Some(sent_msg) = sent.msg.as_deref().filter(|m| *m != msg) {
            return Err(Violation::new(
                "MessageAltered",
                describe(sent_msg),
                describe(msg),
            ));
        }
        if sent.received > 0 && !self.allowed.duplication {
            return Err(Violation::new(
                "MessageDuplicated",
                "each message received at most once (the header does not declare duplication)",
                format!("{} received a second time", describe(msg)),
            ));
        }
        if sent.received == 0 {
            self.undelivered -= 1;
        }
        sent.received = sent.received.saturating_add(1);
        if !self.allowed.duplication {
            // Never received again (that would be MessageDuplicated).
            sent.msg = None;
        }
        let position = sent.position;
        let channel = self.channels.entry((msg.from, msg.to)).or_default();
        if let Some(last) = channel.last_received {
            let in_order = position > last || (position == last && self.allowed.duplication);
            if !in_order && !self.allowed.reorder {
                return Err(Violation::new(
                    "MessageReordered",
                    format!(
                        "messages from {} to {} delivered in the order sent (the header does not declare reorder)",
                        msg.from, msg.to
                    ),
                    format!(
                        "message #{} of that channel delivered after #{}",
                        position + 1,
                        last + 1
                    ),
                ));
            }
        }
        let skipped = match channel.last_received {
            Some(last) => position > last + 1,
            None => position > 0,
        };
        if skipped && !self.allowed.loss && !self.allowed.reorder {
            return Err(Violation::new(
                "MessageLost",
                format!(
                    "every message from {} to {} delivered (the header does not declare loss)",
                    msg.from, msg.to
                ),
                format!(
                    "message #{} delivered while an earlier one never was",
                    position + 1
                ),
            ));
        }
        channel.last_received = Some(channel.last_received.map_or(position, |l| l.max(position)));
        Ok(())
    }

    /// Messages sent and never received (in flight or lost when the trace ends).
    pub fn undelivered(&self) -> usize {
        self.undelivered
    }
}

/// A one-line description of a message for reports.
pub fn describe(m: &Message) -> String {
    format!(
        "message {} from {} to {} (term {}, {})",
        m.id,
        m.from,
        m.to,
        m.term,
        m.rpc.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_trace::Rpc;

    fn vote(id: u64) -> Message {
        Message {
            id,
            from: 1,
            to: 2,
            term: 1,
            rpc: Rpc::RequestVoteReply { granted: true },
            commit: None,
            commit_term: None,
        }
    }

    fn network(duplication: bool) -> Network {
        Network {
            loss: true,
            duplication,
            reorder: true,
        }
    }

    fn rule(r: Result<(), Violation>) -> &'static str {
        r.expect_err("a violation").rule
    }

    #[test]
    fn a_received_message_is_forgotten_but_not_its_identity() {
        let mut n = NetworkCheck::new(network(false), true);
        n.send(&vote(7)).unwrap();
        n.receive(&vote(7)).unwrap();
        assert!(n.sent[&(1, 7)].msg.is_none(), "the message is dropped");
        assert_eq!(rule(n.receive(&vote(7))), "MessageDuplicated");
        assert_eq!(rule(n.send(&vote(7))), "MessageIdentity");
        assert_eq!(n.undelivered(), 0);
        let mut altered = vote(8);
        n.send(&vote(8)).unwrap();
        altered.term = 2;
        assert_eq!(rule(n.receive(&altered)), "MessageAltered");
    }

    #[test]
    fn with_duplication_a_message_is_kept_for_its_next_delivery() {
        let mut n = NetworkCheck::new(network(true), true);
        n.send(&vote(7)).unwrap();
        n.receive(&vote(7)).unwrap();
        n.receive(&vote(7)).unwrap();
        let mut altered = vote(7);
        altered.term = 2;
        assert_eq!(rule(n.receive(&altered)), "MessageAltered");
    }
}
