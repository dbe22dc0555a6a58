//! The replicated state machine: one register plus client sessions, so that a
//! retried command (same client and sequence number) is executed at most once.

use crate::types::{ClientId, Command, Membership, Op, OpResult, Seq, Value};

/// The last command a client had executed, and its result (returned again
/// to a retry instead of executing the command a second time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Session {
    pub client: ClientId,
    pub seq: Seq,
    pub result: OpResult,
}

/// The register and the session table. Part of every snapshot.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StateMachine {
    pub value: Value,
    /// Sorted by client id, at most one per client.
    pub sessions: Vec<Session>,
    /// History variable (not part of Raft): set when a command whose
    /// (client, seq) the session table had already recorded was executed
    /// again. Property "No Command Applied Twice" requires it false.
    pub reexecuted: bool,
    /// The configuration of the last configuration entry applied (feature
    /// membership; `None`: the initial one). Part of every snapshot, as in
    /// etcd-io/raft's snapshot metadata (`ConfState`).
    pub config: Option<Membership>,
}

/// What applying one command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    pub result: OpResult,
    /// The session table recognised a retry and did not execute it again.
    pub duplicate: bool,
}

impl StateMachine {
    /// The session of `client`, if it has executed anything.
    pub fn session(&self, client: ClientId) -> Option<&Session> {
        self.sessions.iter().find(|s| s.client == client)
    }

    /// Applies `cmd`. With `dedup` (the correct behaviour) a command whose
    /// sequence number the client's session already covers is not executed
    /// again; its recorded result is returned.
    pub fn apply(&mut self, cmd: &Command, dedup: bool) -> Applied {
        if let Op::Config(m) = cmd.op {
            // The cluster's own entry: no client session.
            self.config = Some(m);
            return Applied {
                result: OpResult::Write,
                duplicate: false,
            };
        }
        let seen = self
            .session(cmd.client)
            .filter(|s| s.seq >= cmd.seq)
            .copied();
        if let Some(s) = seen {
            if dedup {
                // A client runs one command at a time, so an older seq cannot
                // be outstanding; answer with the latest result for its seq.
                return Applied {
                    result: s.result,
                    duplicate: true,
                };
            }
            self.reexecuted = true;
        }
        let result = match cmd.op {
            Op::Read => OpResult::Read(self.value),
            Op::Write(v) => {
                self.value = v;
                OpResult::Write
            }
            Op::Cas { from, to } => {
                let ok = self.value == from;
                if ok {
                    self.value = to;
                }
                OpResult::Cas(ok)
            }
            // Returned above: a configuration entry has no session.
            Op::Config(_) => OpResult::Write,
        };
        let session = Session {
            client: cmd.client,
            seq: cmd.seq.max(seen.map_or(0, |s| s.seq)),
            result,
        };
        match self
            .sessions
            .binary_search_by_key(&cmd.client, |s| s.client)
        {
            Ok(i) => self.sessions[i] = session,
            Err(i) => self.sessions.insert(i, session),
        }
        Applied {
            result,
            duplicate: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(client: ClientId, seq: Seq, op: Op) -> Command {
        Command { client, seq, op }
    }

    #[test]
    fn retry_is_not_executed_twice() {
        let mut sm = StateMachine::default();
        let w = cmd(1, 1, Op::Cas { from: 0, to: 5 });
        assert_eq!(sm.apply(&w, true).result, OpResult::Cas(true));
        let again = sm.apply(&w, true);
        assert!(again.duplicate);
        assert_eq!(again.result, OpResult::Cas(true));
        assert_eq!(sm.value, 5);
        assert!(!sm.reexecuted);
    }

    #[test]
    fn without_dedup_a_retry_is_flagged() {
        let mut sm = StateMachine::default();
        let w = cmd(1, 1, Op::Cas { from: 0, to: 5 });
        sm.apply(&w, false);
        assert_eq!(sm.apply(&w, false).result, OpResult::Cas(false));
        assert!(sm.reexecuted);
    }
}
