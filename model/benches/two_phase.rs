//! The baseline row of the table: two-phase commit (Gray and Lamport's
//! TwoPhase specification, as in stateright's own examples), a small model
//! whose states cost little to copy and hash, so its unique states per second
//! show what the checker itself can do on this machine.

use std::collections::BTreeSet;

use stateright::{Model, Property};

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rm {
    Working,
    Prepared,
    Committed,
    Aborted,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tm {
    Init,
    Committed,
    Aborted,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Msg {
    Prepared(usize),
    Commit,
    Abort,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct State {
    rm: Vec<Rm>,
    tm: Tm,
    tm_prepared: Vec<bool>,
    msgs: BTreeSet<Msg>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    TmRcvPrepared(usize),
    TmCommit,
    TmAbort,
    RmPrepare(usize),
    RmChooseToAbort(usize),
    RmRcvCommit(usize),
    RmRcvAbort(usize),
}

/// Two-phase commit with `rms` resource managers.
pub struct TwoPhase {
    pub rms: usize,
}

impl Model for TwoPhase {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            rm: vec![Rm::Working; self.rms],
            tm: Tm::Init,
            tm_prepared: vec![false; self.rms],
            msgs: BTreeSet::new(),
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        if s.tm == Tm::Init {
            if s.tm_prepared.iter().all(|&p| p) {
                actions.push(Action::TmCommit);
            }
            actions.push(Action::TmAbort);
        }
        for rm in 0..self.rms {
            if s.tm == Tm::Init && s.msgs.contains(&Msg::Prepared(rm)) {
                actions.push(Action::TmRcvPrepared(rm));
            }
            if s.rm[rm] == Rm::Working {
                actions.push(Action::RmPrepare(rm));
                actions.push(Action::RmChooseToAbort(rm));
            }
            if s.msgs.contains(&Msg::Commit) {
                actions.push(Action::RmRcvCommit(rm));
            }
            if s.msgs.contains(&Msg::Abort) {
                actions.push(Action::RmRcvAbort(rm));
            }
        }
    }

    fn next_state(&self, s: &State, action: Action) -> Option<State> {
        let mut n = s.clone();
        match action {
            Action::TmRcvPrepared(rm) => n.tm_prepared[rm] = true,
            Action::TmCommit => {
                n.tm = Tm::Committed;
                n.msgs.insert(Msg::Commit);
            }
            Action::TmAbort => {
                n.tm = Tm::Aborted;
                n.msgs.insert(Msg::Abort);
            }
            Action::RmPrepare(rm) => {
                n.rm[rm] = Rm::Prepared;
                n.msgs.insert(Msg::Prepared(rm));
            }
            Action::RmChooseToAbort(rm) => n.rm[rm] = Rm::Aborted,
            Action::RmRcvCommit(rm) => n.rm[rm] = Rm::Committed,
            Action::RmRcvAbort(rm) => n.rm[rm] = Rm::Aborted,
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::always("consistent", |_, s: &State| {
            !(s.rm.contains(&Rm::Committed) && s.rm.contains(&Rm::Aborted))
        })]
    }
}
