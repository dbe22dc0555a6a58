//! The key-value state machine: get (read), put (write), delete,
//! compare-and-set and append over string keys, with client sessions for
//! exactly-once application, and the cluster's address book (where each
//! member is reached, from the context of configuration entries; see
//! [`members`]). Snapshots hold the data, the sessions and the address book.

pub mod codec;
pub mod members;
pub mod session;

use std::collections::BTreeMap;

use crate::bugs::{Bug, Bugs};
use crate::core::{Command, ConfigEntry, Entry, Index, NodeId, Op, Payload};
pub use codec::CodecError;
pub use members::{ChangeContext, MemberAddrs};
use session::{Check, SessionTable};

/// The answer to a command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// The operation happened (write, delete, append, successful cas).
    Done,
    /// A read's value (`None`: absent).
    Value(Option<String>),
    /// A cas whose precondition failed; holds the current value.
    CasFailed(Option<String>),
    /// The request is older than the client's latest; it was not executed.
    Stale,
}

/// The result of applying one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub index: Index,
    /// The command's client and request, for commands.
    pub command: Option<(u64, u64)>,
    pub reply: Option<Reply>,
    /// The session table recognised a retry and did not execute it.
    pub duplicate: bool,
    /// The command was executed (changed or read the data).
    pub executed: bool,
}

/// The state machine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KvStore {
    pub(crate) data: BTreeMap<String, String>,
    pub(crate) sessions: SessionTable,
    pub(crate) applied: Index,
    /// The address book: the members' addresses as the configuration
    /// entries applied so far recorded them (members of the bootstrap
    /// configuration are in it once a change named their addresses).
    pub(crate) members: BTreeMap<NodeId, MemberAddrs>,
    bugs: Bugs,
}

impl KvStore {
    /// An empty store whose session table holds `session_capacity` clients.
    pub fn new(session_capacity: usize, bugs: Bugs) -> Self {
        KvStore {
            data: BTreeMap::new(),
            sessions: SessionTable::new(session_capacity),
            applied: 0,
            members: BTreeMap::new(),
            bugs,
        }
    }

    pub fn applied(&self) -> Index {
        self.applied
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.data.get(key)
    }

    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// The address book: where each member is reached, as applied.
    pub fn members(&self) -> &BTreeMap<NodeId, MemberAddrs> {
        &self.members
    }

    /// A configuration entry: its context's addresses enter the address
    /// book, and members it no longer names leave it. An undecodable
    /// context (not written by raftkv) changes only the latter.
    fn apply_config(&mut self, index: Index, c: &ConfigEntry) {
        match ChangeContext::decode(&c.context) {
            Ok(ctx) => {
                for (id, a) in ctx.addrs {
                    if c.membership.is_member(id) {
                        self.members.insert(id, a);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(index, error = %e, "configuration entry with an undecodable context: no addresses taken from it");
            }
        }
        self.members.retain(|id, _| c.membership.is_member(*id));
    }

    /// Applies a committed entry (entries must come in index order).
    pub fn apply(&mut self, e: &Entry) -> Applied {
        debug_assert!(e.index > self.applied, "applying out of order");
        self.applied = e.index;
        if let Payload::Config(c) = &e.payload {
            self.apply_config(e.index, c);
        }
        let Payload::Command(cmd) = &e.payload else {
            return Applied {
                index: e.index,
                command: None,
                reply: None,
                duplicate: false,
                executed: false,
            };
        };
        let check = if self.bugs.has(Bug::NoDedup) {
            // BUG (planted): the session table is not consulted.
            Check::New
        } else {
            self.sessions.check(cmd.client, cmd.req)
        };
        let (reply, duplicate, executed) = match check {
            Check::New => {
                let reply = self.execute(cmd);
                self.sessions
                    .record(cmd.client, cmd.req, reply.clone(), e.index);
                (reply, false, true)
            }
            Check::Duplicate(reply) => (reply, true, false),
            Check::Stale => (Reply::Stale, true, false),
        };
        Applied {
            index: e.index,
            command: Some((cmd.client, cmd.req)),
            reply: Some(reply),
            duplicate,
            executed,
        }
    }

    fn execute(&mut self, cmd: &Command) -> Reply {
        match &cmd.op {
            Op::Read { key } => Reply::Value(self.data.get(key).cloned()),
            Op::Write { key, value } => {
                self.set(key, value);
                Reply::Done
            }
            Op::Delete { key } => {
                self.data.remove(key);
                Reply::Done
            }
            Op::Append { key, value } => {
                self.data.entry(key.clone()).or_default().push_str(value);
                Reply::Done
            }
            Op::Cas { key, from, to } => {
                let cur = self.data.get(key);
                if cur == from.as_ref() {
                    self.set(key, to);
                    Reply::Done
                } else {
                    Reply::CasFailed(cur.cloned())
                }
            }
        }
    }

    /// Sets `key` to `value`, reusing the key's allocation when present.
    fn set(&mut self, key: &str, value: &str) {
        match self.data.get_mut(key) {
            Some(v) => {
                v.clear();
                v.push_str(value);
            }
            None => {
                self.data.insert(key.to_string(), value.to_string());
            }
        }
    }

    /// Encodes the state (data, sessions and address book) for a snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Restores a store from a snapshot.
    pub fn restore(bytes: &[u8], bugs: Bugs) -> Result<Self, CodecError> {
        let mut kv = codec::decode(bytes)?;
        kv.bugs = bugs;
        Ok(kv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(index: Index, client: u64, req: u64, op: Op) -> Entry {
        Entry {
            index,
            term: 1,
            payload: Payload::Command(std::sync::Arc::new(Command { client, req, op })),
        }
    }

    fn w(k: &str, v: &str) -> Op {
        Op::Write {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn operations() {
        let mut kv = KvStore::new(8, Bugs::NONE);
        kv.apply(&cmd(1, 1, 1, w("x", "a")));
        let r = kv.apply(&cmd(
            2,
            1,
            2,
            Op::Cas {
                key: "x".into(),
                from: Some("b".into()),
                to: "c".into(),
            },
        ));
        assert_eq!(r.reply, Some(Reply::CasFailed(Some("a".into()))));
        kv.apply(&cmd(
            3,
            1,
            3,
            Op::Cas {
                key: "x".into(),
                from: Some("a".into()),
                to: "c".into(),
            },
        ));
        assert_eq!(kv.get("x").map(String::as_str), Some("c"));
        kv.apply(&cmd(
            4,
            1,
            4,
            Op::Append {
                key: "x".into(),
                value: "d".into(),
            },
        ));
        assert_eq!(kv.get("x").map(String::as_str), Some("cd"));
        kv.apply(&cmd(5, 1, 5, Op::Delete { key: "x".into() }));
        assert_eq!(kv.get("x"), None);
        let r = kv.apply(&cmd(6, 1, 6, Op::Read { key: "x".into() }));
        assert_eq!(r.reply, Some(Reply::Value(None)));
    }

    #[test]
    fn retried_command_is_applied_once() {
        let mut kv = KvStore::new(8, Bugs::NONE);
        let a = Op::Append {
            key: "x".into(),
            value: "1".into(),
        };
        assert!(kv.apply(&cmd(1, 7, 1, a.clone())).executed);
        let again = kv.apply(&cmd(2, 7, 1, a.clone()));
        assert!(again.duplicate && !again.executed);
        assert_eq!(again.reply, Some(Reply::Done));
        assert_eq!(kv.get("x").map(String::as_str), Some("1"));
        // With the planted bug the retry runs again.
        let mut bad = KvStore::new(8, Bugs::NONE.with(Bug::NoDedup));
        bad.apply(&cmd(1, 7, 1, a.clone()));
        bad.apply(&cmd(2, 7, 1, a));
        assert_eq!(bad.get("x").map(String::as_str), Some("11"));
    }

    fn config(index: Index, voters: &[NodeId], learners: &[NodeId], ctx: Vec<u8>) -> Entry {
        Entry {
            index,
            term: 1,
            payload: Payload::Config(std::sync::Arc::new(ConfigEntry {
                membership: crate::core::Membership {
                    voters: voters.iter().copied().collect(),
                    learners: learners.iter().copied().collect(),
                },
                context: ctx,
            })),
        }
    }

    fn addrs(n: u64) -> MemberAddrs {
        MemberAddrs {
            peer_addr: format!("127.0.0.1:{}", 7000 + n),
            client_addr: format!("127.0.0.1:{}", 8000 + n),
        }
    }

    fn ctx(ids: &[NodeId]) -> Vec<u8> {
        ChangeContext {
            addrs: ids.iter().map(|&n| (n, addrs(n))).collect(),
        }
        .encode()
    }

    #[test]
    fn configuration_entries_keep_the_address_book() {
        let mut kv = KvStore::new(8, Bugs::NONE);
        // Node 4 added as a learner; the leader named every member.
        let a = kv.apply(&config(1, &[1, 2, 3], &[4], ctx(&[1, 2, 3, 4])));
        assert_eq!((a.command, a.reply, a.executed), (None, None, false));
        assert_eq!(
            kv.members().keys().copied().collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        // Node 4 promoted with a new client address; a context naming a
        // non-member (9) does not put it in the book.
        let mut moved = ChangeContext {
            addrs: [(4, addrs(14)), (9, addrs(9))].into(),
        };
        kv.apply(&config(2, &[1, 2, 3, 4], &[], moved.encode()));
        assert_eq!(kv.members()[&4], addrs(14));
        assert_eq!(kv.members()[&1], addrs(1));
        assert!(!kv.members().contains_key(&9));
        // Node 1 removed: it leaves the book; an undecodable context only
        // removes.
        kv.apply(&config(3, &[2, 3, 4], &[], b"not json".to_vec()));
        assert_eq!(kv.members().keys().copied().collect::<Vec<_>>(), [2, 3, 4]);
        // The book travels in snapshots.
        let back = KvStore::restore(&kv.snapshot(), Bugs::NONE).unwrap();
        assert_eq!(back.members(), kv.members());
        assert_eq!(back, kv);
        moved.addrs.clear();
        assert_eq!(ChangeContext::decode(&moved.encode()).unwrap(), moved);
        assert_eq!(
            ChangeContext::decode(b"").unwrap(),
            ChangeContext::default()
        );
    }

    #[test]
    fn snapshot_keeps_sessions() {
        let mut kv = KvStore::new(8, Bugs::NONE);
        kv.apply(&cmd(1, 3, 9, w("k", "v")));
        let back = KvStore::restore(&kv.snapshot(), Bugs::NONE).unwrap();
        assert_eq!(back, kv);
        let mut back = back;
        assert!(back.apply(&cmd(2, 3, 9, w("k", "zz"))).duplicate);
        assert_eq!(back.get("k").map(String::as_str), Some("v"));
    }
}
