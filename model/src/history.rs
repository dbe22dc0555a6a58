//! The clients' history (an auxiliary variable of the model): every
//! operation's invocation and return, fed to stateright's
//! `LinearizabilityTester` against a sequential register.

use stateright::actor::Envelope;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

use crate::actor::{unwire, who, Who, Wire};
use crate::config::Config;
use crate::types::{ClientId, Msg, Op, OpResult, Seq, Value};

/// The sequential specification: one register, initially 0.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct RegisterSpec(pub Value);

impl SequentialSpec for RegisterSpec {
    type Op = Op;
    type Ret = OpResult;
    fn invoke(&mut self, op: &Op) -> OpResult {
        match *op {
            Op::Read => OpResult::Read(self.0),
            Op::Write(v) => {
                self.0 = v;
                OpResult::Write
            }
            Op::Cas { from, to } => {
                let ok = self.0 == from;
                if ok {
                    self.0 = to;
                }
                OpResult::Cas(ok)
            }
            // Never a client's operation; the register is unchanged.
            Op::Config(_) => OpResult::Write,
        }
    }
}

/// What clients did so far.
#[derive(Clone, Debug, Hash, PartialEq)]
pub struct History {
    pub tester: LinearizabilityTester<ClientId, RegisterSpec>,
    /// Per client (index id - 1): the last request number invoked.
    pub invoked: Vec<Seq>,
    /// Per client: the last request number that returned.
    pub returned: Vec<Seq>,
}

impl History {
    pub fn new(clients: u64) -> History {
        History {
            tester: LinearizabilityTester::new(RegisterSpec::default()),
            invoked: vec![0; clients as usize],
            returned: vec![0; clients as usize],
        }
    }

    /// Whether the history is linearizable.
    pub fn linearizable(&self) -> bool {
        self.tester.serialized_history().is_some()
    }
}

/// A client's first send of a request is its invocation (a retry is not).
pub fn record_out(cfg: &Config, h: &History, env: Envelope<&Wire>) -> Option<History> {
    let (Who::Client(c), Msg::Request(cmd)) = (who(cfg.servers, env.src), unwire(env.msg)) else {
        return None;
    };
    let i = (c - 1) as usize;
    if cmd.seq <= h.invoked[i] {
        return None;
    }
    let mut h = h.clone();
    h.invoked[i] = cmd.seq;
    let _ = h.tester.on_invoke(c, cmd.op);
    Some(h)
}

/// A client accepting the reply to its current request is the return.
pub fn record_in(cfg: &Config, h: &History, env: Envelope<&Wire>) -> Option<History> {
    let (Who::Client(c), Msg::Reply { seq, result }) = (who(cfg.servers, env.dst), unwire(env.msg))
    else {
        return None;
    };
    let i = (c - 1) as usize;
    if *seq != h.invoked[i] || *seq <= h.returned[i] {
        return None;
    }
    let mut h = h.clone();
    h.returned[i] = *seq;
    let _ = h.tester.on_return(c, *result);
    Some(h)
}
