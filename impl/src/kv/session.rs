//! Client sessions: exactly-once application of retried commands.
//!
//! Each client numbers its requests (`req`), runs one at a time and retries
//! a request with the same number. The table keeps, per client, the highest
//! request applied and its reply:
//! - `req` > last: a new request, executed;
//! - `req` == last: a retry, answered with the cached reply, not executed;
//! - `req` < last: an old request the client has moved past; not executed,
//!   answered with [`Reply::Stale`].
//!
//! **Expiry rule.** The table holds at most `capacity` sessions. When a new
//! session would exceed it, the session least recently active (smallest log
//! index of its last command; ties: smallest client id) is dropped. Every
//! replica applies the same log, so every replica evicts the same session.
//! A client whose session was dropped is treated as new: a retry arriving
//! after its session expired would execute again, so `capacity` must exceed
//! the number of clients active at once (the default is 4096).

use std::collections::BTreeMap;

use super::Reply;
use crate::core::Index;

/// One client's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub last_req: u64,
    pub reply: Reply,
    pub last_index: Index,
}

/// What the table says about a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Execute it.
    New,
    /// A retry of the last request: answer with this reply.
    Duplicate(Reply),
    /// Older than the last request.
    Stale,
}

/// The session table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTable {
    pub(crate) map: BTreeMap<u64, Session>,
    pub(crate) capacity: usize,
}

impl Default for SessionTable {
    fn default() -> Self {
        SessionTable::new(4096)
    }
}

impl SessionTable {
    pub fn new(capacity: usize) -> Self {
        SessionTable {
            map: BTreeMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, client: u64) -> Option<&Session> {
        self.map.get(&client)
    }

    pub fn check(&self, client: u64, req: u64) -> Check {
        match self.map.get(&client) {
            None => Check::New,
            Some(s) if req > s.last_req => Check::New,
            Some(s) if req == s.last_req => Check::Duplicate(s.reply.clone()),
            Some(_) => Check::Stale,
        }
    }

    /// Records the reply of an executed command applied at `index`.
    pub fn record(&mut self, client: u64, req: u64, reply: Reply, index: Index) {
        let fresh = match self.map.get_mut(&client) {
            Some(s) => {
                s.last_req = req;
                s.reply = reply;
                s.last_index = index;
                false
            }
            None => {
                self.map.insert(
                    client,
                    Session {
                        last_req: req,
                        reply,
                        last_index: index,
                    },
                );
                true
            }
        };
        if fresh && self.map.len() > self.capacity {
            let victim = self
                .map
                .iter()
                .filter(|(c, _)| **c != client)
                .min_by_key(|(c, s)| (s.last_index, **c))
                .map(|(c, _)| *c);
            if let Some(v) = victim {
                self.map.remove(&v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn retry_gets_cached_reply() {
        let mut t = SessionTable::new(8);
        assert_eq!(t.check(1, 1), Check::New);
        t.record(1, 1, Reply::Value(Some("a".into())), 5);
        assert_eq!(
            t.check(1, 1),
            Check::Duplicate(Reply::Value(Some("a".into())))
        );
        assert_eq!(t.check(1, 0), Check::Stale);
        assert_eq!(t.check(1, 2), Check::New);
    }

    #[test]
    fn least_recently_active_session_expires() {
        let mut t = SessionTable::new(2);
        t.record(1, 1, Reply::Done, 10);
        t.record(2, 1, Reply::Done, 5);
        t.record(1, 2, Reply::Done, 11);
        t.record(3, 1, Reply::Done, 12);
        assert_eq!(t.len(), 2);
        assert!(t.get(2).is_none(), "client 2 was least recently active");
        assert!(t.get(1).is_some() && t.get(3).is_some());
    }

    proptest! {
        /// Against a reference model without capacity limit: a request is
        /// executed at most once, and a duplicate gets the reply recorded for
        /// it.
        #[test]
        fn at_most_once(ops in proptest::collection::vec((0u64..4, 1u64..6), 0..60)) {
            let mut t = SessionTable::new(16);
            let mut executed = std::collections::BTreeSet::new();
            for (i, (c, r)) in ops.into_iter().enumerate() {
                match t.check(c, r) {
                    Check::New => {
                        prop_assert!(executed.insert((c, r)), "executed twice");
                        t.record(c, r, Reply::Value(Some(format!("{c}-{r}"))), i as u64);
                    }
                    Check::Duplicate(reply) => {
                        prop_assert!(executed.contains(&(c, r)));
                        prop_assert_eq!(reply, Reply::Value(Some(format!("{c}-{r}"))));
                    }
                    Check::Stale => {
                        prop_assert!(t.get(c).unwrap().last_req > r);
                    }
                }
            }
        }
    }
}
