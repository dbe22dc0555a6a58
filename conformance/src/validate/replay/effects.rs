//! Effects checked as they happen, against the candidate they are checked
//! on: sends (the step's rule's own, or a leader's replication message or
//! heartbeat, or a (pre-)candidate's retried RequestVote or PreVote), a leader's appends (client requests),
//! applies, snapshots and installs.

use raft_model::rules::{clients, elections, membership, replication, snapshots, Step};
use raft_model::server::{Rules, Server};
use raft_model::types::{Change, Command, Membership, Msg, Role};
use raft_trace as rt;

use super::convert;
use super::dispatch::Outcome;
use super::frontier::Cand;
use super::preconditions;
use crate::validate::Violation;

/// A send: one the step's rule made, a leader's replication message, or a
/// candidate's retried RequestVote. Returns the message as sent, in model
/// form.
pub(super) fn send(
    c: &mut Cand,
    m: &rt::Message,
    rule: &'static str,
    rules: &Rules,
) -> Result<Msg, Violation> {
    carried_commit(c, m)?;
    // Feature forward-proposals (etcd-io/raft MsgProp): any node may hand
    // client proposals to the node it takes for the leader. Not a Raft RPC:
    // it changes nothing, and the leader's appends that follow are checked
    // as its own proposals.
    if let rt::Rpc::Propose { .. } = m.rpc {
        if !rules.forward_proposals {
            return Err(Violation::new(
                "ProposeRule",
                "no propose: the trace's features do not include forward-proposals \
                 (in Figure 2 clients send their commands to the leader)",
                sent_text(m),
            ));
        }
        return Ok(convert::message(m));
    }
    // The rule's own sends first: one the message is exactly, else the
    // first it may stand for (an acknowledgement of less than the rule's).
    // Exact first, because a node may send its messages in another order
    // than it queued them (a follower's answer to a heartbeat leaves before
    // its acknowledgement of entries still being written).
    let mut why = None;
    let mut found = None;
    for k in 0..c.pending.len() {
        let (to, ref want, free) = c.pending[k];
        if to != m.to || !convert::same_kind(want, &m.rpc) {
            continue;
        }
        match convert::sent_as(want, m, free) {
            Ok(as_sent) if as_sent == *want => {
                found = Some((k, as_sent));
                break;
            }
            Ok(as_sent) => {
                found.get_or_insert((k, as_sent));
            }
            Err(e) => {
                why.get_or_insert((raft_model::explain::message(want), e));
            }
        }
    }
    if let Some((k, as_sent)) = found {
        c.pending.remove(k);
        return Ok(as_sent);
    }
    // A replication message of an earlier leadership that the node sends
    // only now is checked against the state it had as leader then (its log
    // only grew and its commit index only rose during that term).
    let justified = c.justified;
    let was_ready = c.transfer_ready.0 == m.term && c.transfer_ready.1.contains(&m.to);
    // (A copy: what the check sets in it must not tell candidates apart.)
    let ended = c.s.role != Role::Leader || c.s.term != m.term;
    let mut past = match c.past_leaders.iter().find(|l| l.term == m.term) {
        Some(l) if ended => Some(Server::clone(l)),
        _ => None,
    };
    let old_leadership = past.is_some();
    let then = if old_leadership {
        format!(
            "a message of its ended leadership of term {} carries only what it had as leader \
             then: ",
            m.term
        )
    } else {
        String::new()
    };
    let s = match &mut past {
        Some(l) => l,
        None => &mut c.s,
    };
    // A heartbeat or append built before the leader compacted its log, sent
    // after: its entries are committed ones, which the global invariants
    // check; here only what the leader's state still shows.
    if let (
        rt::Rpc::AppendEntries {
            prev_index, commit, ..
        },
        Role::Leader,
    ) = (&m.rpc, s.role)
    {
        let n = m.rpc.entry_count().unwrap_or(0);
        if *prev_index < s.log.snapshot_index
            && m.term == s.term
            && *commit <= s.commit
            && prev_index + n <= s.log.last_index()
        {
            return Ok(convert::message(m));
        }
    }
    // Likewise a snapshot older than the leader's current one: its contents
    // are those the replay remembers of it, if it does (else an empty
    // stand-in, which the receive marks unknown).
    if let (
        rt::Rpc::InstallSnapshot {
            last_index,
            last_term,
            ..
        },
        Role::Leader,
    ) = (&m.rpc, s.role)
    {
        if *last_index < s.log.snapshot_index && m.term == s.term {
            let mut msg = convert::message(m);
            if let (Msg::InstallSnapshot { data, .. }, Some(old)) =
                (&mut msg, c.snapshot_data(*last_index, *last_term))
            {
                *data = old.clone();
            }
            return Ok(msg);
        }
    }
    // A leader's AppendEntries is rebuilt from nextIndex = prev_index + 1,
    // which must be in its log (or at its snapshot).
    if let (rt::Rpc::AppendEntries { prev_index, .. }, Role::Leader) = (&m.rpc, s.role) {
        preconditions::replication_start(s, m, *prev_index)?;
    }
    let spontaneous = match (&m.rpc, s.role) {
        // Figure 2, Leaders: "send AppendEntries RPC with log entries
        // starting at nextIndex" (nextIndex is the leader's choice between
        // its snapshot and its last index + 1; heartbeats carry none);
        // Figure 13: InstallSnapshot when it is below the snapshot.
        (rt::Rpc::AppendEntries { prev_index, .. }, Role::Leader)
            if *prev_index >= s.log.snapshot_index && *prev_index <= s.log.last_index() =>
        {
            let n = m.rpc.entry_count().unwrap_or(0) as usize;
            s.next_index[(m.to - 1) as usize] = prev_index + 1;
            Some(("ReplicationRule", replication::append_entries(s, m.to, n)))
        }
        (rt::Rpc::InstallSnapshot { .. }, Role::Leader) if s.log.snapshot_index > 0 => {
            s.next_index[(m.to - 1) as usize] = s.log.snapshot_index;
            Some(("ReplicationRule", replication::append_entries(s, m.to, 0)))
        }
        // Feature heartbeat: a leader may send a heartbeat at any time.
        (rt::Rpc::Heartbeat { .. }, Role::Leader) => {
            Some(("HeartbeatRule", replication::heartbeat(s, m.to)))
        }
        // A pre-candidate retries the PreVote of its round.
        (rt::Rpc::PreVote { .. }, Role::PreCandidate) => Some((
            "ElectionTimeoutRule",
            Some(Msg::PreVote {
                term: s.term + 1,
                last_index: s.log.last_index(),
                last_term: s.log.last_term(),
                commit: None,
            }),
        )),
        // Section 5.1: servers retry RPCs that get no timely response; a
        // candidate's retry is the RequestVote of its election.
        (rt::Rpc::RequestVote { .. }, Role::Candidate) => Some((
            if s.transfer_campaign {
                "TimeoutNowRule"
            } else {
                "ElectionTimeoutRule"
            },
            Some(Msg::RequestVote {
                term: s.term,
                last_index: s.log.last_index(),
                last_term: s.log.last_term(),
                transfer: s.transfer_campaign,
                commit: None,
            }),
        )),
        // Feature leader-transfer (thesis 3.10): a leader may send TimeoutNow
        // to a follower whose log matches its own. When it started the
        // transfer is not logged; sending is the leader's choice.
        (rt::Rpc::TimeoutNow {}, _) => {
            let step = elections::timeout_now(s, m.to);
            if !rules.leader_transfer {
                return Err(Violation::new(
                    "LeaderTransferRule",
                    "no timeout_now: the trace's features do not include leader-transfer \
                     (Figure 2 has no leader transfer)",
                    sent_text(m),
                ));
            }
            if was_ready && s.role == Role::Leader && s.term == m.term {
                // The target matched the leader's last index earlier in
                // the term; the leader's log grew before the message left.
                return Ok(convert::message(m));
            }
            if step.sends.is_empty() {
                return Err(Violation::new(
                    "LeaderTransferRule",
                    format!(
                        "a timeout_now only from a leader to a follower whose log matches its \
                         own (thesis 3.10; the leader's last index is {}, node {}'s match \
                         index {})",
                        s.log.last_index(),
                        m.to,
                        s.match_index
                            .get((m.to - 1) as usize)
                            .map_or("unknown".to_string(), |i| i.to_string())
                    ),
                    sent_text(m),
                ));
            }
            Some((
                "LeaderTransferRule",
                step.sends.into_iter().next().map(|(_, m)| m),
            ))
        }
        _ => None,
    };
    if let Some((srule, Some(mut want))) = spontaneous {
        // The leader may tell what it knows to be committed even when
        // the trace does not show it committing (commits unobserved, or
        // a commit index kept across a restart).
        if let Msg::AppendEntries { commit, .. } = &mut want {
            *commit = (*commit).max(justified.min(s.log.last_index()));
        }
        match convert::sent_as(&want, m, false) {
            Ok(as_sent) => return Ok(as_sent),
            Err(e) => {
                // A leader telling followers a commit index it may not
                // have is the commit rule's business.
                let srule = if e.starts_with("commit") {
                    "CommitRule"
                } else {
                    srule
                };
                return Err(Violation::new(
                    srule,
                    format!(
                        "{then}{} ({e} differs)",
                        raft_model::explain::message(&want)
                    ),
                    sent_text(m),
                ));
            }
        }
    }
    // A message of an ended leadership that its state then does not
    // justify: the leader's replication rule is what it breaks.
    let rule = if old_leadership {
        "ReplicationRule"
    } else {
        rule
    };
    match why {
        Some((want, e)) => Err(Violation::new(
            rule,
            format!("{then}{want} ({e} differs)"),
            sent_text(m),
        )),
        None => Err(Violation::new(
            rule,
            format!(
                "{then}no {} from a {:?} in term {} at this point (the step's rule sends: {})",
                m.rpc.name(),
                s.role,
                s.term,
                if c.pending.is_empty() {
                    "nothing more".to_string()
                } else {
                    c.pending
                        .iter()
                        .map(|(to, m, _)| format!("{} to {to}", raft_model::explain::message(m)))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            ),
            sent_text(m),
        )),
    }
}

/// Feature commit-any-message: the commit a message carries must be true
/// of its sender: at most what the sender has committed (or may announce:
/// [`Cand::justified`]), with `commit_term` the term of the sender's entry
/// there. A receiver commits on it, so a false one is the commit rule's
/// business, whichever features the run declares.
fn carried_commit(c: &Cand, m: &rt::Message) -> Outcome {
    let Some(info) = convert::commit_info(m) else {
        return Ok(());
    };
    let bound = c.s.commit.max(c.justified.min(c.s.log.last_index()));
    let term = c.s.log.term_at(info.index);
    let compacted = info.index < c.s.log.snapshot_index;
    if info.index <= bound && (compacted || term == Some(info.term)) {
        return Ok(());
    }
    Err(Violation::new(
        "CommitRule",
        format!(
            "a message's commit and commit_term name an entry its sender has committed \
             (commit index at most {bound}; the sender's entry at {} has term {})",
            info.index,
            term.map_or("none (past its log)".to_string(), |t| t.to_string())
        ),
        format!(
            "commit {} commit_term {} in {}",
            info.index,
            info.term,
            sent_text(m)
        ),
    ))
}

fn sent_text(m: &rt::Message) -> String {
    serde_json::to_string(m).unwrap_or_default()
}

/// An `append` on a leader is a client request (or the leader's no-op):
/// Figure 2, Leaders: "If command received from client: append entry to
/// local log". On other nodes it is an effect of an AppendEntries, compared
/// at the checkpoint.
/// Without `append` events (the header does not declare them), a leader's
/// AppendEntries that carries entries past its log shows entries it
/// appended for clients without an event: they are appended first, as an
/// `append` would have.
pub(super) fn implied_append(c: &mut Cand, m: &rt::Message, rules: &Rules) -> Outcome {
    let rt::Rpc::AppendEntries {
        prev_index,
        entries,
        ..
    } = &m.rpc
    else {
        return Ok(());
    };
    if c.s.role != Role::Leader || m.term != c.s.term {
        return Ok(());
    }
    let last = c.s.log.last_index();
    let end = prev_index + m.rpc.entry_count().unwrap_or(0);
    // Entries taken as appended without their data (from a post) get it
    // from the first AppendEntries that carries them.
    if let Some(es) = entries {
        let snapshot = c.s.log.snapshot_index;
        for (k, e) in es.iter().enumerate() {
            let index = prev_index + 1 + k as u64;
            if index <= snapshot || index > last || e.data.is_none() {
                continue;
            }
            let slot = &mut c.s.log.entries[(index - snapshot - 1) as usize];
            if slot.cmd.client == convert::OPAQUE_CLIENT && slot.term == e.term {
                slot.cmd = convert::command(e.data.as_ref());
            }
        }
    }
    if end <= last || *prev_index > last {
        return Ok(());
    }
    let skip = (last - prev_index) as usize;
    let a = rt::Append {
        index: last + 1,
        entries: entries.as_ref().map(|es| es[skip..].to_vec()),
        entry_count: Some(end - last),
    };
    leader_append(c, &a, rules)
}

/// Without `append` events, a leader's post showing a log longer than its
/// sends did (ending at `last_index`) shows entries it appended for clients
/// without an event: they are taken as appended (checked as an append with
/// no entries listed). Their commands are unknown until an AppendEntries
/// shows them ([`implied_append`]).
pub(super) fn implied_client_entries(c: &mut Cand, last_index: u64, rules: &Rules) -> Outcome {
    let last = c.s.log.last_index();
    if c.s.role != Role::Leader || last_index <= last {
        return Ok(());
    }
    let a = rt::Append {
        index: last + 1,
        entries: None,
        entry_count: Some(last_index - last),
    };
    leader_append(c, &a, rules)
}

/// Without `apply` events, what a node applied shows only in its snapshots:
/// a snapshot at `index` says the node applied up to there. Up to its
/// commit index it advances through the log (the state machine applies the
/// entries, as `apply` events would have); otherwise it is taken to have
/// applied what it committed (as the model does).
pub(super) fn applied_up_to(c: &mut Cand, index: u64, rules: &Rules) {
    if index >= c.applied && index <= c.s.commit {
        let dedup = !rules.bug(raft_model::Bug::NoDedup);
        for i in c.applied + 1..=index {
            match c.s.log.entry(i).copied() {
                Some(e) => {
                    c.applied_sm.apply(&e.cmd, dedup);
                }
                None => {
                    c.applied = c.s.commit;
                    c.applied_sm = c.s.sm.clone();
                    return;
                }
            }
        }
        c.applied = index;
    } else {
        c.applied = c.s.commit;
        c.applied_sm = c.s.sm.clone();
    }
}

/// Without `snapshot` events, a leader's InstallSnapshot of the prefix it
/// has applied shows a snapshot it took without an event: it is taken
/// first, as a `snapshot` would have.
pub(super) fn implied_snapshot(
    c: &mut Cand,
    m: &rt::Message,
    rules: &Rules,
    observes_apply: bool,
) -> Outcome {
    let rt::Rpc::InstallSnapshot {
        last_index,
        last_term,
        ..
    } = &m.rpc
    else {
        return Ok(());
    };
    if c.s.role != Role::Leader || m.term != c.s.term || *last_index <= c.s.log.snapshot_index {
        return Ok(());
    }
    if !observes_apply {
        c.applied = c.s.commit;
        c.applied_sm = c.s.sm.clone();
    }
    if *last_index != c.applied {
        return Ok(());
    }
    let s = rt::SnapshotEvent {
        index: *last_index,
        term: *last_term,
    };
    take_snapshot(c, &s, rules)
}

pub(super) fn leader_append(c: &mut Cand, a: &rt::Append, rules: &Rules) -> Outcome {
    if c.s.role != Role::Leader {
        return Ok(());
    }
    let entries: Vec<rt::Entry> = match (&a.entries, a.entry_count) {
        (Some(es), _) => es.clone(),
        (None, Some(n)) => (0..n)
            .map(|_| rt::Entry {
                term: c.s.term,
                data: None,
            })
            .collect(),
        (None, None) => vec![],
    };
    if a.index != c.s.log.last_index() + 1 {
        return Err(Violation::new(
            "ClientRequestRule",
            format!(
                "a leader appends at the end of its log (index {})",
                c.s.log.last_index() + 1
            ),
            format!("append at index {}", a.index),
        ));
    }
    // An append shows the command went through the log: a read too, so
    // not by ReadIndex (which appends nothing).
    let rules = &Rules {
        read_index: false,
        ..*rules
    };
    for e in &entries {
        if e.term != c.s.term {
            return Err(Violation::new(
                "ClientRequestRule",
                format!("a leader's new entries carry its term {}", c.s.term),
                format!("an entry of term {}", e.term),
            ));
        }
        let cmd = convert::command(e.data.as_ref());
        let step = match cmd.membership() {
            Some(next) if rules.membership => config_change(c, rules, &cmd, next)?,
            _ => clients::handle_request(&c.s, rules, 0, &cmd),
        };
        c.s = step.state;
    }
    // A leader whose own log is a quorum commits what it appends; it may
    // announce that commit later (after its own write).
    c.justified = c.justified.max(c.s.commit);
    Ok(())
}

/// A leader's configuration entry (features membership, config-on-apply):
/// the model's rule for proposing the one-server change it makes from the
/// latest configuration in the leader's log (thesis 4.1).
fn config_change(
    c: &Cand,
    rules: &Rules,
    cmd: &Command,
    next: Membership,
) -> Result<Step, Violation> {
    let current = membership::latest_in_log(&c.s).map_or(rules.initial, |(_, m)| m);
    let violation = |why: String| {
        Violation::new(
            "MembershipChangeRule",
            why,
            format!("a configuration entry with {}", next),
        )
    };
    let Some(change) = Change::between(current, next) else {
        return Err(violation(format!(
            "a leader changes one server at a time (thesis 4.1) or through joint \
             consensus (thesis 4.3): from the latest configuration in its log, {}, only \
             a configuration one server away, a joint one whose outgoing voters are its \
             voters (from a simple configuration) or the joint one's new voters alone \
             (leaving it)",
            current
        )));
    };
    let mut step = membership::propose_change(&c.s, rules, change);
    let appended = step.state.log.last_index() > c.s.log.last_index();
    match step.state.log.entries.last_mut() {
        Some(last) if appended => {
            // The entry as the trace shows it (its data's fingerprint).
            last.cmd = *cmd;
            Ok(step)
        }
        _ => {
            let pending = membership::latest_in_log(&c.s)
                .filter(|&(index, _)| index > c.s.commit)
                .map(|(index, _)| index);
            Err(violation(match pending {
                Some(index) => format!(
                    "no new configuration while the one at index {index} is uncommitted \
                     (thesis 4.1; the leader's commit index is {})",
                    c.s.commit
                ),
                None => format!(
                    "a configuration change only once the leader has committed an entry of \
                     its term {} (Ongaro's 2015 correction to single-server changes; its \
                     commit index {} holds term {})",
                    c.s.term,
                    c.s.commit,
                    c.s.log.term_at(c.s.commit).unwrap_or(0)
                ),
            }))
        }
    }
}

/// Figure 2, All Servers: "If commitIndex > lastApplied: increment
/// lastApplied, apply log[lastApplied] to state machine", through the
/// model's state machine, whose sessions decide whether a retried command is
/// a duplicate.
pub(super) fn apply(c: &mut Cand, a: &rt::Apply, rules: &Rules) -> Outcome {
    if a.index != c.applied + 1 {
        // Out of order: the invariants name it. Nothing to replay.
        return Ok(());
    }
    if a.index <= c.s.log.snapshot_index {
        // This state holds a snapshot past the entry that the node applies
        // from its log: it installed a snapshot the node did not (or the
        // node applies what its snapshot replaced).
        return Err(Violation::new(
            "ApplyRule",
            format!(
                "the next apply, of the snapshot at index {} (the log before it is \
                 compacted)",
                c.s.log.snapshot_index
            ),
            format!("apply of the entry at index {}", a.index),
        ));
    }
    let Some(entry) = c.s.log.entry(a.index).copied() else {
        c.applied = a.index;
        c.sm_known = false;
        c.config_known = false;
        return Ok(());
    };
    if entry.term != a.term {
        return Err(Violation::new(
            "ApplyRule",
            format!(
                "apply of the entry at index {} of term {}",
                a.index, entry.term
            ),
            format!("apply of term {}", a.term),
        ));
    }
    if entry.cmd.client == convert::OPAQUE_CLIENT {
        // A command the trace never showed: whether a later one retries it
        // is unknown from here on, and it may have been a configuration.
        c.sm_known = false;
        c.config_known = false;
    }
    let dedup = !rules.bug(raft_model::Bug::NoDedup);
    let session = c.applied_sm.session(entry.cmd.client).map(|s| s.seq);
    let applied = c.applied_sm.apply(&entry.cmd, dedup);
    c.applied = a.index;
    // The apply names the entry it applies: a command's client and request,
    // nothing for a no-op, a configuration or an opaque entry (SCHEMA.md,
    // `apply`). Unknown contents (entries not logged in full) agree with
    // anything.
    if entry.cmd.client != convert::OPAQUE_CLIENT {
        let want =
            convert::is_client_command(&entry.cmd).then_some((entry.cmd.client, entry.cmd.seq));
        let got = match (a.client, a.req) {
            (None, None) => None,
            (client, req) => Some((client, req)),
        };
        if got != want.map(|(c, r)| (Some(c), Some(r))) {
            return Err(Violation::new(
                "ApplyRule",
                format!(
                    "apply of the entry at index {}: {} of term {}",
                    a.index,
                    convert::describe(&entry.cmd),
                    entry.term
                ),
                match got {
                    None => format!("apply at index {} with no client and request", a.index),
                    Some((client, req)) => format!(
                        "apply at index {} of client {} request {}",
                        a.index,
                        client.map_or("none".into(), |c| c.to_string()),
                        req.map_or("none".into(), |r| r.to_string())
                    ),
                },
            ));
        }
    }
    if c.sm_known && convert::is_client_command(&entry.cmd) && applied.duplicate != a.duplicate {
        return Err(Violation::new(
            "AtMostOnce",
            if applied.duplicate {
                format!(
                    "a duplicate: client {}'s session already covers request {} \
                     (section 8: a retried command is executed at most once)",
                    entry.cmd.client, entry.cmd.seq
                )
            } else {
                format!(
                    "a first execution of client {} request {} (its session was at {:?})",
                    entry.cmd.client, entry.cmd.seq, session
                )
            },
            format!("duplicate {}", a.duplicate),
        ));
    }
    Ok(())
}

/// A node compacts what it has applied (section 7): the model's snapshot
/// rule on the node's state at its applied index.
///
/// The node compacts only entries it committed. When the candidate's commit
/// index is below the snapshot because the node committed late what the
/// rules committed earlier (a `commit` event in this step, which the
/// checkpoint only reconciles at the end of the step), the candidate commits
/// them first: compacting them away from below its commit index would leave
/// a state the model never reaches, from which the late commit could no
/// longer be replayed. A snapshot the rules did not justify leaves the
/// commit index where it is (the commit rule, and the preconditions of a
/// rule that would commit, deal with it).
pub(super) fn take_snapshot(c: &mut Cand, s: &rt::SnapshotEvent, rules: &Rules) -> Outcome {
    if s.index != c.applied {
        return Err(Violation::new(
            "SnapshotRule",
            format!(
                "a snapshot of the applied prefix (index {}; section 7: servers compact \
                 the entries their state machine has applied)",
                c.applied
            ),
            format!("snapshot at index {}", s.index),
        ));
    }
    if s.index <= c.s.log.snapshot_index {
        return Ok(());
    }
    c.commit_late(rules, s.index);
    let mut at = c.s.clone();
    at.commit = s.index;
    at.sm = c.applied_sm.clone();
    let step = snapshots::take_snapshot(&at);
    if step.state.log.snapshot_term != s.term {
        return Err(Violation::new(
            "SnapshotRule",
            format!(
                "a snapshot ending at term {} (the term of entry {})",
                step.state.log.snapshot_term, s.index
            ),
            format!("snapshot term {}", s.term),
        ));
    }
    if c.s.log.snapshot_index > 0 && c.sm_known {
        // The snapshot this one replaces: chunks of it may still leave.
        let log = &c.s.log;
        let old = (
            log.snapshot_index,
            log.snapshot_term,
            std::sync::Arc::new(log.snapshot_data.clone()),
        );
        if c.old_snapshots.len() == super::frontier::MAX_OLD_SNAPSHOTS {
            c.old_snapshots.remove(0);
        }
        c.old_snapshots.push(old);
    }
    c.s.log = step.state.log;
    Ok(())
}

/// An `install` ends the step's InstallSnapshot rule: the candidate must
/// have installed exactly that snapshot; the state machine the node applied
/// is now the snapshot's.
pub(super) fn install(c: &mut Cand, s: &rt::SnapshotEvent) -> Outcome {
    if c.s.log.snapshot_index != s.index || c.s.log.snapshot_term != s.term {
        return Err(Violation::new(
            "InstallSnapshotRule",
            format!(
                "no snapshot installed by this step (the node's snapshot is \
                 index {} term {}; Figure 13: a snapshot covering no more \
                 than the commit index is ignored)",
                c.s.log.snapshot_index, c.s.log.snapshot_term
            ),
            format!("installed snapshot index {} term {}", s.index, s.term),
        ));
    }
    c.applied = s.index;
    c.applied_sm = c.s.log.snapshot_data.clone();
    Ok(())
}
