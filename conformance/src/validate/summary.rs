//! One short line per trace event, for reports: what a reader needs to
//! follow a node's steps (`receive append_entries from 1, term 23, prev
//! 3@22, 1 entry (term 22), commit 3`), without the raw JSON.

use raft_trace as rt;

/// The event in one line, without its node or post state.
pub fn event(e: &rt::NodeEvent) -> String {
    use rt::Event as E;
    match &e.event {
        E::Init(i) => format!(
            "init ({}), term {}, log ends {}@{}{}",
            match i.reason {
                rt::InitReason::Boot => "boot",
                rt::InitReason::Restart => "restart",
            },
            i.term,
            i.last_index,
            i.last_term,
            i.snapshot.as_ref().map_or(String::new(), |s| format!(
                ", snapshot {}@{}",
                s.index, s.term
            ))
        ),
        E::Crash(_) => "crash".to_string(),
        E::Role(r) => format!(
            "becomes {} in term {} ({})",
            role(r.role),
            r.term,
            snake(&r.reason)
        ),
        E::Timeout(t) => match t.timer {
            rt::TimerKind::Election => "election timeout".to_string(),
            rt::TimerKind::Heartbeat => "heartbeat timeout".to_string(),
        },
        E::Send(m) => format!(
            "send {} to {}, {}",
            m.msg.rpc.name(),
            m.msg.to,
            message(&m.msg)
        ),
        E::Receive(m) => format!(
            "receive {} from {}, {}",
            m.msg.rpc.name(),
            m.msg.from,
            message(&m.msg)
        ),
        E::Append(a) => format!(
            "append at {}: {}",
            a.index,
            entries(a.entries.as_deref(), a.entry_count)
        ),
        E::Truncate(t) => format!("truncate from {}", t.from),
        E::Persist(p) => format!(
            "persist term {}, vote {}, log up to {}",
            p.term,
            p.vote.map_or("none".to_string(), |v| v.to_string()),
            p.last_index
        ),
        E::Commit(c) => format!("commit {}", c.index),
        E::Apply(a) => format!(
            "apply {}@{}{}",
            a.index,
            a.term,
            if a.duplicate { " (duplicate)" } else { "" }
        ),
        E::Snapshot(s) => format!("snapshot up to {}@{}", s.index, s.term),
        E::Install(s) => format!("install snapshot {}@{}", s.index, s.term),
        E::Read(r) => format!("read at {} ({})", r.index, snake(&r.via)),
        E::Gap(g) => match &g.reason {
            Some(why) => format!("gap: {why}"),
            None => "gap".to_string(),
        },
    }
}

fn message(m: &rt::Message) -> String {
    let mut s = format!("term {}", m.term);
    match &m.rpc {
        rt::Rpc::RequestVote {
            last_index,
            last_term,
            transfer,
        } => {
            s += &format!(", last {last_index}@{last_term}");
            if *transfer {
                s += ", transfer";
            }
        }
        rt::Rpc::PreVote {
            last_index,
            last_term,
        } => s += &format!(", last {last_index}@{last_term}"),
        rt::Rpc::RequestVoteReply { granted } | rt::Rpc::PreVoteReply { granted } => {
            s += if *granted { ", granted" } else { ", refused" }
        }
        rt::Rpc::AppendEntries {
            prev_index,
            prev_term,
            commit,
            entries: es,
            entry_count,
            ..
        } => {
            s += &format!(
                ", prev {prev_index}@{prev_term}, {}, commit {commit}",
                entries(es.as_deref(), *entry_count)
            )
        }
        rt::Rpc::AppendEntriesReply {
            success,
            match_index,
            hint_index,
            ..
        } => {
            s += if *success { ", success" } else { ", failure" };
            if let Some(i) = match_index {
                s += &format!(", match {i}");
            }
            if let Some(i) = hint_index {
                s += &format!(", hint {i}");
            }
        }
        rt::Rpc::InstallSnapshot {
            last_index,
            last_term,
            offset,
            done,
            ..
        } => {
            s += &format!(", snapshot {last_index}@{last_term}");
            if *offset > 0 || !*done {
                s += &format!(", chunk at {offset}{}", if *done { ", last" } else { "" });
            }
        }
        rt::Rpc::InstallSnapshotReply { last_index } => s += &format!(", last {last_index}"),
        rt::Rpc::Heartbeat { commit, .. } => s += &format!(", commit {commit}"),
        rt::Rpc::HeartbeatReply { .. } | rt::Rpc::TimeoutNow {} => {}
        rt::Rpc::Propose { entries } => {
            if let Some(es) = entries {
                s += &format!(", {} command{}", es.len(), plural(es.len()));
            }
        }
    }
    if let (Some(c), Some(t)) = (m.commit, m.commit_term) {
        s += &format!(", commit {c}@{t}");
    }
    s
}

/// `no entries`, `1 entry (term 22)`, `3 entries (terms 2, 2, 3)`.
fn entries(es: Option<&[rt::Entry]>, count: Option<u64>) -> String {
    match (es, count) {
        (Some([]), _) | (None, Some(0)) => "no entries".to_string(),
        (Some(es), _) => {
            let terms: Vec<String> = es.iter().map(|e| e.term.to_string()).collect();
            let shown = if terms.len() > 6 {
                format!(
                    "{}, ..., {}",
                    terms[..3].join(", "),
                    terms[terms.len() - 2..].join(", ")
                )
            } else {
                terms.join(", ")
            };
            format!(
                "{} entr{} (term{} {shown})",
                es.len(),
                if es.len() == 1 { "y" } else { "ies" },
                plural(es.len())
            )
        }
        (None, Some(n)) => format!("{n} entr{}", if n == 1 { "y" } else { "ies" }),
        (None, None) => "entries not logged".to_string(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn role(r: rt::Role) -> &'static str {
    match r {
        rt::Role::Follower => "follower",
        rt::Role::PreCandidate => "pre-candidate",
        rt::Role::Candidate => "candidate",
        rt::Role::Leader => "leader",
    }
}

/// A unit enum as the trace spells it.
fn snake<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
