//! Counterexamples as readable steps: which actor did what, and only the
//! state that changed.

use stateright::actor::{ActorModelAction, Id, Network};

use crate::actor::{who, NodeState, Timer, Who, Wire};
use crate::check::{Action, RaftPath};
use crate::model::{RaftModel, RaftState};
use crate::server::{ghost, Log, Server};
use crate::types::{Command, Entry, Msg, Op, OpResult, Role};

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StepReport {
    /// 1-based step number.
    pub step: usize,
    /// The actor that acted (`S1`, `C1`, or `network`).
    pub actor: String,
    /// What it did.
    pub action: String,
    /// What changed, one item per field or message sent.
    pub changes: Vec<String>,
}

/// The name of an actor.
pub fn actor_name(servers: u64, id: Id) -> String {
    match who(servers, id) {
        Who::Server(s) => format!("S{s}"),
        Who::Client(c) => format!("C{c}"),
    }
}

pub(crate) fn op(op: &Op) -> String {
    match op {
        Op::Read => "read".into(),
        Op::Write(v) => format!("write {v}"),
        Op::Cas { from, to } => format!("cas {from}->{to}"),
        Op::Config(m) => format!("config {m}"),
    }
}

pub(crate) fn result(r: &OpResult) -> String {
    match r {
        OpResult::Read(v) => format!("read {v}"),
        OpResult::Write => "write ok".into(),
        OpResult::Cas(ok) => format!("cas {}", if *ok { "ok" } else { "failed" }),
    }
}

fn command(c: &Command) -> String {
    if c.membership().is_some() {
        // The cluster's own entry: no client.
        return op(&c.op);
    }
    format!("C{}#{} {}", c.client, c.seq, op(&c.op))
}

pub(crate) fn entry(index: u64, e: &Entry) -> String {
    format!("{index}@t{} {}", e.term, command(&e.cmd))
}

/// A log as `[snapshot ..=i@tT] 1@t1 C1#1 write 1, ...`.
pub fn log(l: &Log) -> String {
    let mut parts = vec![];
    if l.snapshot_index > 0 {
        parts.push(format!(
            "snapshot ..={}@t{} (value {})",
            l.snapshot_index, l.snapshot_term, l.snapshot_data.value
        ));
    }
    for (k, e) in l.entries.iter().enumerate() {
        parts.push(entry(l.snapshot_index + 1 + k as u64, e));
    }
    format!("[{}]", parts.join(", "))
}

/// A message, briefly.
pub fn message(m: &Msg) -> String {
    let text = message_body(m);
    match m.commit_info() {
        Some(c) => format!(
            "{}, commit {}@t{})",
            text.trim_end_matches(')'),
            c.index,
            c.term
        ),
        None => text,
    }
}

fn message_body(m: &Msg) -> String {
    match m {
        Msg::RequestVote {
            term,
            last_index,
            last_term,
            transfer,
            ..
        } => format!(
            "RequestVote(term {term}, last log {last_index}@t{last_term}{})",
            if *transfer { ", transfer" } else { "" }
        ),
        Msg::TimeoutNow { term } => format!("TimeoutNow(term {term})"),
        Msg::RequestVoteReply { term, granted, .. } => format!(
            "VoteReply(term {term}, {})",
            if *granted { "granted" } else { "denied" }
        ),
        Msg::AppendEntries {
            term,
            prev_index,
            prev_term,
            entries,
            commit,
        } => {
            let es: Vec<String> = entries
                .iter()
                .enumerate()
                .map(|(k, e)| entry(prev_index + 1 + k as u64, e))
                .collect();
            format!(
                "AppendEntries(term {term}, prev {prev_index}@t{prev_term}, [{}], commit {commit})",
                es.join(", ")
            )
        }
        Msg::AppendEntriesReply {
            term,
            success,
            index,
        } => {
            if *success {
                format!("AppendReply(term {term}, ok, match {index})")
            } else {
                format!("AppendReply(term {term}, rejected, retry from {index})")
            }
        }
        Msg::InstallSnapshot {
            term,
            last_index,
            last_term,
            data,
        } => format!(
            "InstallSnapshot(term {term}, up to {last_index}@t{last_term}, value {})",
            data.value
        ),
        Msg::InstallSnapshotReply { term, last_index } => {
            format!("SnapshotReply(term {term}, up to {last_index})")
        }
        Msg::PreVote {
            term,
            last_index,
            last_term,
            ..
        } => format!("PreVote(term {term}, last log {last_index}@t{last_term})"),
        Msg::PreVoteReply { term, granted, .. } => format!(
            "PreVoteReply(term {term}, {})",
            if *granted { "granted" } else { "denied" }
        ),
        Msg::Heartbeat { term, commit, ctx } => match ctx {
            Some(c) => format!("Heartbeat(term {term}, commit {commit}, read {})", read(*c)),
            None => format!("Heartbeat(term {term}, commit {commit})"),
        },
        Msg::HeartbeatReply { term, ctx } => match ctx {
            Some(c) => format!("HeartbeatReply(term {term}, read {})", read(*c)),
            None => format!("HeartbeatReply(term {term})"),
        },
        Msg::Request(c) => format!("Request({})", command(c)),
        Msg::Reply { seq, result: r } => format!("Reply(#{seq} {})", result(r)),
        Msg::NotLeader { seq, hint } => match hint {
            Some(h) => format!("NotLeader(#{seq}, leader is S{h})"),
            None => format!("NotLeader(#{seq}, leader unknown)"),
        },
    }
}

/// A read's heartbeat context as `C<client>#<seq>`.
pub(crate) fn read(ctx: u64) -> String {
    format!("C{}#{}", ctx >> 32, ctx & 0xffff_ffff)
}

pub(crate) fn role(r: Role) -> &'static str {
    match r {
        Role::Follower => "follower",
        Role::PreCandidate => "pre-candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

pub(crate) fn opt_node(n: Option<u64>) -> String {
    n.map_or("none".into(), |n| format!("S{n}"))
}

/// The fields of a server that differ between `a` and `b`.
pub fn server_diff(a: &Server, b: &Server) -> Vec<String> {
    let mut out = vec![];
    if a.role != b.role {
        out.push(format!("role {} -> {}", role(a.role), role(b.role)));
    }
    if a.term != b.term {
        out.push(format!("term {} -> {}", a.term, b.term));
    }
    if a.voted_for != b.voted_for {
        out.push(format!(
            "votedFor {} -> {}",
            opt_node(a.voted_for),
            opt_node(b.voted_for)
        ));
    }
    if a.log != b.log {
        out.push(format!("log {} -> {}", log(&a.log), log(&b.log)));
    }
    if a.commit != b.commit {
        out.push(format!("commit {} -> {}", a.commit, b.commit));
    }
    if a.sm.value != b.sm.value {
        out.push(format!("register {} -> {}", a.sm.value, b.sm.value));
    }
    if a.leader != b.leader {
        out.push(format!(
            "known leader {} -> {}",
            opt_node(a.leader),
            opt_node(b.leader)
        ));
    }
    if a.votes != b.votes && b.role == Role::Candidate {
        let v: Vec<String> = b.votes.iter().map(|v| format!("S{v}")).collect();
        out.push(format!("votes from {}", v.join(", ")));
    }
    if a.match_index != b.match_index && b.role == Role::Leader {
        out.push(format!("matchIndex {:?}", b.match_index));
    }
    if a.next_index != b.next_index && b.role == Role::Leader {
        out.push(format!("nextIndex {:?}", b.next_index));
    }
    let new_bits = b.ghost & !a.ghost;
    for (bit, what) in [
        (ghost::TRUNCATED, "truncated a conflicting suffix"),
        (ghost::INSTALLED_SNAPSHOT, "installed the leader's snapshot"),
        (ghost::DEDUPLICATED, "skipped a retried command (session)"),
        (ghost::STEPPED_DOWN, "stepped down as leader"),
        (ghost::LEADER_OVERWROTE, "LEADER OVERWROTE ITS OWN LOG"),
        (
            ghost::STALE_APPEND_ACKED,
            "acknowledged a stale append at its commit index",
        ),
        (ghost::LOST_ELECTION, "gave up a lost election"),
        (
            ghost::STALE_TERM_STEP_DOWN,
            "stepped down in its own term on a reply's higher term",
        ),
        (
            ghost::COMPACTED_PREV_REFUSED,
            "refused an append whose previous entry it compacted",
        ),
        (
            ghost::COMMIT_BOUNDED_BY_BATCH,
            "committed up to the batch's last entry, short of the leader's commit",
        ),
    ] {
        if new_bits & bit != 0 {
            out.push(what.into());
        }
    }
    if b.sm.reexecuted && !a.sm.reexecuted {
        out.push("EXECUTED A COMMAND A SECOND TIME".into());
    }
    out
}

fn actor_diff(a: &NodeState, b: &NodeState) -> Vec<String> {
    match (a, b) {
        (NodeState::Server(a), NodeState::Server(b)) => server_diff(a, b),
        (NodeState::Client(a), NodeState::Client(b)) => {
            let mut out = vec![];
            if a.seq != b.seq {
                out.push(format!("now on request #{}", b.seq));
            }
            if a.target != b.target {
                out.push(format!("talks to S{} -> S{}", a.target, b.target));
            }
            out
        }
        _ => vec![],
    }
}

/// The envelopes of a state's network, sorted.
fn envelopes(s: &RaftState) -> Vec<(Id, Id, Msg)> {
    network_envelopes(&s.network)
}

/// Every message in flight, once per copy, sorted.
pub(crate) fn network_envelopes(network: &Network<Wire>) -> Vec<(Id, Id, Msg)> {
    let mut v: Vec<_> = network
        .iter_all()
        .map(|e| (e.src, e.dst, Msg::clone(e.msg)))
        .collect();
    v.sort();
    // stateright 0.31's `iter_all` on an unordered non-duplicating network
    // yields a message held `n > 1` times `n + 1` times (its counter is
    // decremented after the first copy was already yielded); a message held
    // once is yielded once. Undo that, so that identical messages in flight
    // are counted right (`envelopes_count_identical_messages_once_each`
    // pins the upstream behaviour).
    let mut out: Vec<(Id, Id, Msg)> = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let run = v[i..].iter().take_while(|e| **e == v[i]).count();
        let copies = if run > 1 && matches!(network, Network::UnorderedNonDuplicating(_)) {
            run - 1
        } else {
            run
        };
        out.extend(std::iter::repeat_n(v[i].clone(), copies));
        i += run;
    }
    out
}

/// The messages in `b`'s network but not in `a`'s (as a multiset).
pub fn new_messages(a: &RaftState, b: &RaftState) -> Vec<(Id, Id, Msg)> {
    let mut old = envelopes(a);
    let mut out = vec![];
    for e in envelopes(b) {
        if let Some(i) = old.iter().position(|o| *o == e) {
            old.remove(i);
        } else {
            out.push(e);
        }
    }
    out
}

/// Who acted in `action` (`S1`, `C1`, or `network`), what it did, and the
/// actor whose state the action may change.
pub fn describe_action(n: u64, action: &Action) -> (String, String, Option<Id>) {
    match action {
        ActorModelAction::Deliver { src, dst, msg } => (
            actor_name(n, *dst),
            format!("receives {} from {}", message(msg), actor_name(n, *src)),
            Some(*dst),
        ),
        ActorModelAction::Drop(env) => (
            "network".to_string(),
            format!(
                "loses {} from {} to {}",
                message(&env.msg),
                actor_name(n, env.src),
                actor_name(n, env.dst)
            ),
            None,
        ),
        ActorModelAction::Timeout(id, t) => (actor_name(n, *id), timer_fires(t), Some(*id)),
        ActorModelAction::Crash(id) => (
            actor_name(n, *id),
            "crashes (volatile state lost)".into(),
            None,
        ),
        ActorModelAction::Recover(id) => (
            actor_name(n, *id),
            "restarts from its persistent state".into(),
            Some(*id),
        ),
        ActorModelAction::SelectRandom { actor, .. } => {
            (actor_name(n, *actor), "random choice".into(), Some(*actor))
        }
    }
}

/// What an actor does when `timer` fires.
fn timer_fires(t: &Timer) -> String {
    match t {
        Timer::Election => "election timeout".into(),
        Timer::Heartbeat => "heartbeat: replicates to followers".into(),
        Timer::Batch(1) => "replicates to followers, at most 1 entry each".into(),
        Timer::Batch(n) => format!("replicates to followers, at most {n} entries each"),
        Timer::CheckQuorum => "check-quorum: heard from a quorum?".into(),
        Timer::Transfer(j) => format!("transfer leadership to S{j} (or give it up)"),
        Timer::Retry => "gives up waiting and retries".into(),
        Timer::Lease => "lease ends (minimum election timeout passed)".into(),
        Timer::Change(c) => format!("proposes membership change {c}"),
    }
}

/// What changed from `before` to `after` when `actor` acted: its fields,
/// then every message sent.
pub fn step_changes(
    n: u64,
    actor: Option<Id>,
    before: &RaftState,
    after: &RaftState,
) -> Vec<String> {
    let mut changes = vec![];
    if let Some(id) = actor {
        let ix = usize::from(id);
        changes.extend(actor_diff(
            &before.actor_states[ix],
            &after.actor_states[ix],
        ));
    }
    for (src, dst, msg) in new_messages(before, after) {
        changes.push(format!(
            "{} sends {} to {}",
            actor_name(n, src),
            message(&msg),
            actor_name(n, dst)
        ));
    }
    changes
}

/// Describes every step of `path`.
pub fn explain(model: &RaftModel, path: &RaftPath) -> Vec<StepReport> {
    let n = model.cfg.servers;
    let steps = path.clone().into_vec();
    let mut reports = vec![];
    for (i, pair) in steps.windows(2).enumerate() {
        let (before, action) = (&pair[0].0, pair[0].1.clone());
        let after = &pair[1].0;
        let Some(action) = action else { continue };
        let (actor, what, id) = describe_action(n, &action);
        reports.push(StepReport {
            step: i + 1,
            actor,
            action: what,
            changes: step_changes(n, id, before, after),
        });
    }
    reports
}

/// The explorer URL that opens `path`. Its query names the configuration
/// (`?config=` and the flags of `raftcheck explore`), so that an explorer
/// started with other flags can say that the path is not its own.
pub fn explorer_url(model: &RaftModel, path: &RaftPath, addr: &str) -> String {
    format!(
        "http://{addr}/?{}={}#/steps/{}",
        crate::explorer::CONFIG_PARAM,
        crate::explorer::query_encode(&model.cfg.to_flags()),
        path.encode(model)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::actor::Envelope;

    #[test]
    fn envelopes_count_identical_messages_once_each() {
        let (a, b) = (Id::from(0), Id::from(1));
        let env = |msg: Msg| Envelope {
            src: a,
            dst: b,
            msg: crate::actor::wire(msg),
        };
        let twice = Msg::NotLeader { seq: 1, hint: None };
        let once = Msg::NotLeader { seq: 2, hint: None };
        let net = Network::new_unordered_nonduplicating([
            env(twice.clone()),
            env(twice.clone()),
            env(once.clone()),
        ]);
        // The upstream behaviour the correction undoes: 3 copies of a
        // message held twice. If stateright fixes it, this fails and the
        // correction in `network_envelopes` must go.
        assert_eq!(net.iter_all().filter(|e| ***e.msg == twice).count(), 3);
        let v = network_envelopes(&net);
        assert_eq!(v.iter().filter(|e| e.2 == twice).count(), 2);
        assert_eq!(v.iter().filter(|e| e.2 == once).count(), 1);
    }
}
