//! Why a counterexample's last state breaks an always-property, in one line
//! that names the servers, terms and entries involved (printed under the
//! steps). Each function finds the witness that the property's check in
//! [`crate::properties`] rejects; the checks themselves stay plain booleans.

use crate::check::RaftPath;
use crate::explain::{entry, log, op};
use crate::model::{RaftModel, RaftState};
use crate::properties::names::*;
use crate::properties::{holds, known_committed, known_configs, leaders, live_servers, servers};
use crate::rules::membership::is_quorum;
use crate::server::{ghost, Rules, Server};
use crate::state_machine::StateMachine;
use crate::types::{ClientId, Index, Msg, Op, OpResult, Role, Term};

/// One line on why the last state of `path` breaks the always-property
/// `property`; `None` for a sometimes-property, or if the state does not
/// break it.
pub fn why(model: &RaftModel, property: &str, path: &RaftPath) -> Option<String> {
    let state = path.last_state();
    match property {
        ELECTION_SAFETY => election_safety(state),
        LEADER_APPEND_ONLY => leader_append_only(state),
        LOG_MATCHING => pairs(state, log_mismatch),
        LEADER_COMPLETENESS => leader_completeness(state),
        STATE_MACHINE_SAFETY => pairs(state, applied_differently),
        COMMITTED_DURABLE => committed_durable(model, state),
        NO_DOUBLE_APPLY => servers(state).find_map(applied_twice),
        LINEARIZABLE => linearizable(model, path),
        PRE_VOTE_KEEPS_TERMS => pre_vote_disturbed(state),
        LEASE_HOLDS => lease_broken(model, state),
        TRANSFER_TARGET_UP_TO_DATE => transfer_target_behind(state),
        STEPS_DEFINED => step_undefined(state),
        PROGRESS => Some(dead_end(model, state)),
        _ => None,
    }
}

fn name(id: u64) -> String {
    format!("S{id}")
}

/// `S1`, `S1 and S2`, `S1, S2 and S3`.
fn names(ids: &[u64]) -> String {
    let v: Vec<String> = ids.iter().map(|&i| name(i)).collect();
    match v.split_last() {
        None => "none".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// The entry at index `k` of `s`'s log, also when it is the last entry of
/// the snapshot (whose command is compacted).
fn entry_at(s: &Server, k: Index) -> String {
    match (s.log.entry(k), s.log.term_at(k)) {
        (Some(e), _) => entry(k, e),
        (None, Some(t)) => format!("{k}@t{t} (in its snapshot)"),
        (None, None) => format!("{k} (in its snapshot)"),
    }
}

/// The first reason any two servers give.
fn pairs(state: &RaftState, f: fn(&Server, &Server) -> Option<String>) -> Option<String> {
    let all: Vec<&Server> = servers(state).collect();
    all.iter()
        .enumerate()
        .find_map(|(x, a)| all[x + 1..].iter().find_map(|b| f(a, b)))
}

fn election_safety(state: &RaftState) -> Option<String> {
    let mut terms: Vec<Term> = leaders(state).map(|s| s.term).collect();
    terms.sort_unstable();
    let term = terms.windows(2).find(|w| w[0] == w[1])?[0];
    let ids: Vec<u64> = leaders(state)
        .filter(|s| s.term == term)
        .map(|s| s.id)
        .collect();
    let all = if ids.len() > 2 { "all" } else { "both" };
    Some(format!("{} {all} lead term {term}", names(&ids)))
}

fn leader_append_only(state: &RaftState) -> Option<String> {
    let s = servers(state).find(|s| s.has(ghost::LEADER_OVERWROTE))?;
    Some(format!(
        "{} removed or overwrote an entry of its own log while leader (its log is now {})",
        name(s.id),
        log(&s.log)
    ))
}

fn step_undefined(state: &RaftState) -> Option<String> {
    let s = servers(state).find(|s| s.has(ghost::RULE_FAILED))?;
    Some(format!(
        "{}'s last step reached a state a rule does not handle: the rule panicked \
         (its message and place are on stderr); the step was dropped",
        name(s.id)
    ))
}

/// Two logs that hold an entry with the same index and term but differ at
/// or below it.
fn log_mismatch(a: &Server, b: &Server) -> Option<String> {
    let top = a.log.last_index().min(b.log.last_index());
    let mut matched: Option<(Index, Term)> = None;
    for k in (1..=top).rev() {
        let differ = match (a.log.term_at(k), b.log.term_at(k)) {
            (Some(x), Some(y)) if x != y => matched.is_some(),
            (Some(x), Some(_)) => {
                matched.get_or_insert((k, x));
                a.log
                    .entry(k)
                    .zip(b.log.entry(k))
                    .is_some_and(|(x, y)| x != y)
            }
            _ => false,
        };
        if !differ {
            continue;
        }
        let (m, t) = matched.expect("set before a difference counts");
        let pair = format!(
            "{} on {} vs {} on {}",
            entry_at(a, k),
            name(a.id),
            entry_at(b, k),
            name(b.id)
        );
        return Some(if m == k {
            format!(
                "{} and {} both hold an entry at index {k} of term {t}, but different ones: {pair}",
                name(a.id),
                name(b.id)
            )
        } else {
            format!(
                "{} and {} both hold an entry at index {m} of term {t}, but differ at index {k}: {pair}",
                name(a.id),
                name(b.id)
            )
        });
    }
    None
}

fn leader_completeness(state: &RaftState) -> Option<String> {
    servers(state).find_map(|s| {
        known_committed(s).find_map(|(k, t)| {
            let l = leaders(state).find(|l| l.term >= s.term && !holds(l, k, t))?;
            Some(format!(
                "{} (term {}) has committed entry {k}@t{t}, but {}, leader of term {}, \
                 does not hold it (its log is {})",
                name(s.id),
                s.term,
                name(l.id),
                l.term,
                log(&l.log)
            ))
        })
    })
}

/// A state machine, briefly: `register 1, sessions C1#2`.
fn machine(sm: &StateMachine) -> String {
    let sessions: Vec<String> = sm
        .sessions
        .iter()
        .map(|s| format!("C{}#{}", s.client, s.seq))
        .collect();
    format!("register {}, sessions [{}]", sm.value, sessions.join(", "))
}

/// Two servers that committed different entries at an index, or applied
/// the same prefix into different state machines.
fn applied_differently(a: &Server, b: &Server) -> Option<String> {
    let upto = a.commit.min(b.commit);
    for (k, t) in known_committed(a).take_while(|(k, _)| *k <= upto) {
        let Some(tb) = b.log.term_at(k) else { continue };
        let differ = tb != t
            || a.log
                .entry(k)
                .zip(b.log.entry(k))
                .is_some_and(|(x, y)| x != y);
        if differ {
            return Some(format!(
                "{} and {} both committed index {k}, with different entries: {} on {} vs {} on {}",
                name(a.id),
                name(b.id),
                entry_at(a, k),
                name(a.id),
                entry_at(b, k),
                name(b.id)
            ));
        }
    }
    if a.commit == b.commit && a.sm != b.sm {
        return Some(format!(
            "{} and {} both applied entries up to index {}, but their state machines differ: {} vs {}",
            name(a.id),
            name(b.id),
            a.commit,
            machine(&a.sm),
            machine(&b.sm)
        ));
    }
    None
}

/// The entry the property finds on no quorum, by the property's own rule
/// (a majority of some configuration the state knows, with membership).
fn committed_durable(model: &RaftModel, state: &RaftState) -> Option<String> {
    let rules = Rules {
        bug: None,
        ..model.cfg.rules()
    };
    let configs = known_configs(&rules, state);
    let quorum = (model.cfg.servers / 2 + 1) as usize;
    servers(state).find_map(|s| {
        known_committed(s).find_map(|(k, t)| {
            let on: Vec<u64> = servers(state)
                .filter(|j| j.log.snapshot_index >= k || j.log.term_at(k) == Some(t))
                .map(|j| j.id)
                .collect();
            if configs
                .iter()
                .any(|m| is_quorum(m, &rules, |j| on.contains(&j)))
            {
                return None;
            }
            let why = if rules.membership {
                let configs: Vec<String> = configs.iter().map(|m| m.to_string()).collect();
                format!(
                    "a majority of none of the configurations the state holds ({})",
                    configs.join("; ")
                )
            } else {
                format!(
                    "{} of {} servers, fewer than a quorum of {quorum}",
                    on.len(),
                    model.cfg.servers
                )
            };
            Some(format!(
                "entry {k}@t{t}, which {} has committed, is stored on {} only: {why}",
                name(s.id),
                names(&on),
            ))
        })
    })
}

/// A server whose state machine (or snapshot) executed a command twice,
/// naming the command when it sits twice in the applied part of the log.
fn applied_twice(s: &Server) -> Option<String> {
    if !s.sm.reexecuted && !s.log.snapshot_data.reexecuted {
        return None;
    }
    let applied: Vec<(Index, _)> = (s.log.snapshot_index + 1..=s.commit)
        .filter_map(|k| s.log.entry(k).map(|e| (k, e.cmd)))
        .collect();
    let twice = applied.iter().enumerate().find_map(|(x, (i, c))| {
        applied[x + 1..]
            .iter()
            .find(|(_, d)| d.client == c.client && d.seq == c.seq)
            .map(|(j, _)| (*i, *j, c))
    });
    Some(match twice {
        Some((i, j, c)) => format!(
            "{} executed C{}#{} {} twice: it is at indexes {i} and {j} of its log, \
             and its session table did not skip the second",
            name(s.id),
            c.client,
            c.seq,
            op(&c.op)
        ),
        None => format!(
            "{}'s state machine executed a command a second time (a retry its session \
             table had already recorded)",
            name(s.id)
        ),
    })
}

fn pre_vote_disturbed(state: &RaftState) -> Option<String> {
    let s = servers(state).find(|s| s.has(ghost::PRE_VOTE_DISTURBED))?;
    let vote = s.voted_for.map_or("no one".into(), name);
    Some(format!(
        "a PreVote request changed {}'s term or vote (it is now in term {}, voted for {vote})",
        name(s.id),
        s.term
    ))
}

fn lease_broken(model: &RaftModel, state: &RaftState) -> Option<String> {
    let quorum = model.actors[0].rules.quorum();
    live_servers(state)
        .filter(|l| {
            l.role == Role::Leader && l.lease_acks.len() + 1 >= quorum && !l.sent_timeout_now
        })
        .find_map(|l| {
            let other = servers(state).find(|s| s.role == Role::Leader && s.term > l.term)?;
            Some(format!(
                "{}, leader of term {}, holds a lease (acknowledged by {}) and may serve reads \
                 from it, while {} leads term {}",
                name(l.id),
                l.term,
                names(&l.lease_acks),
                name(other.id),
                other.term
            ))
        })
}

fn transfer_target_behind(state: &RaftState) -> Option<String> {
    let all: Vec<&Server> = servers(state).collect();
    let by_actor = |id: stateright::actor::Id| {
        all.iter()
            .find(|s| crate::actor::server_actor(s.id) == id)
            .copied()
    };
    state.network.iter_deliverable().find_map(|env| {
        let Msg::TimeoutNow { term } = crate::actor::unwire(env.msg) else {
            return None;
        };
        let (l, t) = (by_actor(env.src)?, by_actor(env.dst)?);
        let transferring = l.role == Role::Leader
            && l.term == *term
            && l.transfer.is_some_and(|x| x.to == t.id && x.sent);
        if !transferring || t.term != *term {
            return None;
        }
        let k = (1..=l.log.last_index()).find(|&k| match l.log.term_at(k) {
            Some(lt) => !holds(t, k, lt),
            None => !t.log.holds(k),
        })?;
        Some(format!(
            "{}, leader of term {term}, sent TimeoutNow to {} to hand over leadership, but \
             {}'s log lacks the leader's entry {} (its log is {})",
            name(l.id),
            name(t.id),
            name(t.id),
            entry_at(l, k),
            log(&t.log)
        ))
    })
}

/// The clients' operations along the path, with their results, when no
/// sequential order of them explains the results.
fn linearizable(model: &RaftModel, path: &RaftPath) -> Option<String> {
    if path.last_state().history.linearizable() {
        return None;
    }
    struct Call {
        client: ClientId,
        op: Op,
        invoked: usize,
        returned: Option<(OpResult, usize)>,
    }
    let steps = path.clone().into_vec();
    // Requests sent in the initial state (step 0) are invoked from the start.
    let mut calls: Vec<Call> = vec![];
    let first = &steps[0].0.history;
    for (c, &n) in first.invoked.iter().enumerate() {
        let client = c as ClientId + 1;
        calls.extend((1..=n).map(|seq| Call {
            client,
            op: model.cfg.op(client, seq - 1),
            invoked: 0,
            returned: None,
        }));
    }
    for (i, pair) in steps.windows(2).enumerate() {
        let (before, after) = (&pair[0].0.history, &pair[1].0.history);
        for c in 0..before.invoked.len() {
            let client = c as ClientId + 1;
            // A client takes a reply and sends its next request in one step.
            if after.returned[c] > before.returned[c] {
                if let Some(Msg::Reply { result, .. }) =
                    pair[0].1.as_ref().and_then(crate::check::delivered)
                {
                    if let Some(call) = calls
                        .iter_mut()
                        .find(|x| x.client == client && x.returned.is_none())
                    {
                        call.returned = Some((*result, i + 1));
                    }
                }
            }
            if after.invoked[c] > before.invoked[c] {
                calls.push(Call {
                    client,
                    op: model.cfg.op(client, after.invoked[c] - 1),
                    invoked: i + 1,
                    returned: None,
                });
            }
        }
    }
    let said: Vec<String> = calls
        .iter()
        .map(|x| {
            let what = format!("C{} {}", x.client, op(&x.op));
            let from = match x.invoked {
                0 => "from the start".to_string(),
                i => format!("from step {i}"),
            };
            match x.returned {
                Some((r, at)) => {
                    let r = match r {
                        OpResult::Read(v) => v.to_string(),
                        OpResult::Write => "ok".into(),
                        OpResult::Cas(ok) => if ok { "ok" } else { "failed" }.into(),
                    };
                    format!("{what} -> {r} ({from} to step {at})")
                }
                None => format!("{what} -> no answer yet ({from})"),
            }
        })
        .collect();
    Some(format!(
        "no sequential order of the clients' operations gives their results: {}",
        said.join(", ")
    ))
}

/// Progress: the last state is a dead end (the whole bounded graph was
/// searched from it); what every server holds there.
fn dead_end(model: &RaftModel, state: &RaftState) -> String {
    let each: Vec<String> = servers(state)
        .map(|s| {
            let vote = match s.voted_for {
                Some(v) => format!("voted for {}", name(v)),
                None => "has not voted".into(),
            };
            format!("{} is in term {} and {vote}", name(s.id), s.term)
        })
        .collect();
    format!(
        "no leader, every term below the bound {} and room to campaign, yet no schedule from here elects one: {}",
        model.cfg.max_term,
        each.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Command, Entry};

    fn server(id: u64, terms: &[Term]) -> Server {
        let mut s = Server::new(id);
        s.log.entries = terms
            .iter()
            .enumerate()
            .map(|(k, &term)| Entry {
                term,
                cmd: Command {
                    client: 1,
                    seq: k as u64 + 1,
                    op: Op::Write(k as u64 + 1),
                },
            })
            .collect();
        s
    }

    #[test]
    fn logs_that_agree_have_no_mismatch() {
        assert_eq!(
            log_mismatch(&server(1, &[1, 2]), &server(2, &[1, 2, 2])),
            None
        );
        assert_eq!(log_mismatch(&server(1, &[1, 2]), &server(2, &[1, 3])), None);
    }

    #[test]
    fn a_log_mismatch_names_the_matching_entry_and_the_difference() {
        let why = log_mismatch(&server(1, &[1, 2]), &server(2, &[2, 2])).unwrap();
        assert_eq!(
            why,
            "S1 and S2 both hold an entry at index 2 of term 2, but differ at index 1: \
             1@t1 C1#1 write 1 on S1 vs 1@t2 C1#1 write 1 on S2"
        );
    }

    #[test]
    fn names_read_as_a_list() {
        assert_eq!(names(&[1]), "S1");
        assert_eq!(names(&[1, 3]), "S1 and S3");
        assert_eq!(names(&[1, 2, 3]), "S1, S2 and S3");
    }
}
