//! The HTTP/JSON client API (axum).
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/kv/{key}` | 200 raw value, 404 absent (linearizable: ReadIndex) |
//! | `PUT /v1/kv/{key}` (body = value) | 204 |
//! | `DELETE /v1/kv/{key}` | 204 |
//! | `POST /v1/kv/{key}/cas` `{"from": str or null, "to": str}` | 204; **412** with `{"current": ...}` when the key does not hold `from` |
//! | `GET /v1/status` | JSON `{id, role, term, leader, commit, applied, last_index, config}`, `config` = `{index, committed, voters, learners}`: the configuration the node uses |
//! | `GET /v1/admin/members` | 200 the configuration (below) as the leader has it: a follower redirects (307) like for writes; `?local` answers with this node's own view |
//! | `POST /v1/admin/members` `{"id": N, "peer_addr": "host:port", "client_addr": "host:port", "learner": false}` | adds node N as a voter (or a learner with `"learner": true`; a learner given as a voter is promoted); 200 with the new configuration once the change is committed and applied on the leader; 400 naming the field of a bad body; 409 `{"error", "code"}` when refused |
//! | `POST /v1/admin/members/{id}/promote` | promotes learner N to voter; as above (404 when N is not a member) |
//! | `DELETE /v1/admin/members/{id}` | removes node N (a voter or a learner, the leader itself too); 200 with the new configuration; 404 `{"error", "code": "not_member"}` when N is not a member; 409 as above |
//! | `POST /v1/admin/transfer?to=N` | 202 `{"from", "to"}`: the leader starts handing leadership to node N (thesis §3.10); 400 unknown node or bad `to`, 409 with `{"error"}` when a transfer is in progress or N already leads; a follower redirects (307) like for writes |
//! | `GET /metrics` | Prometheus text: counters, gauges and the histogram `raftkv_request_duration_seconds{op="get"\|"put"\|"delete"\|"cas"}` of request latencies |
//!
//! Headers `X-Client-Id` and `X-Request-Seq` (both u64) make a write
//! exactly-once across retries: a retry with the same pair is answered from
//! the session table; an older seq gets 409. Without them the request gets a
//! fresh client id. A follower answers 307 with `Location` on the leader's
//! client address, or 503 with `{"error", "leader"}` when it knows none; a
//! request that timed out or lost its place in the log gets 503 (retry), and
//! so does every request still waiting when the node stops.
//!
//! Membership (one change at a time, Raft thesis §4.1): a configuration is
//! JSON `{"node", "leader", "index", "committed", "voters", "learners",
//! "members": [{"id", "role": "voter"|"learner", "peer_addr",
//! "client_addr"}]}` (`index`: of its configuration entry, 0 for the
//! bootstrap configuration). A refused change answers 409 with `code`
//! `pending` (a change is not committed yet), `not_ready` (the leader has
//! not committed an entry of its term yet: retry shortly), `transferring`,
//! `already_voter`, `already_member` or `last_voter`. Every node learns
//! the new member's addresses from the configuration entry.
//!
//! A write registers a ticket in [`Shared::proposals`] and waits for the node
//! loop to complete it once the entry is applied. A read registers in
//! [`Shared::reads`], gets its read index confirmed by the node loop, waits
//! for the [apply notifier](super::applied) to reach it and then reads the
//! shared state machine (as etcd does).

// Early returns of a ready response are the handlers' idiom here.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot};

use super::latency::Op as LatencyOp;
use super::server::{ChangeFailed, Configuration, ReqError, Request, Status};
use super::shared::Shared;
use super::waiters::{Ticket, Waiters};
use crate::bugs::Bug;
use crate::core::{ChangeError, Command, ConfChange, NodeId, Op, TransferError};
use crate::kv::{MemberAddrs, Reply};

/// How long a request may wait for the node.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct AppState {
    tx: mpsc::Sender<Request>,
    client_peers: Arc<BTreeMap<NodeId, String>>,
    shared: Shared,
}

/// The router of the client API.
pub fn router(
    tx: mpsc::Sender<Request>,
    client_peers: BTreeMap<NodeId, String>,
    shared: Shared,
) -> Router {
    Router::new()
        .route("/v1/kv/{key}", get(get_key).put(put_key).delete(delete_key))
        .route("/v1/kv/{key}/cas", post(cas_key))
        .route("/v1/status", get(status))
        .route("/v1/admin/transfer", post(transfer))
        .route("/v1/admin/members", get(list_members).post(add_member))
        .route("/v1/admin/members/{id}", delete(remove_member))
        .route("/v1/admin/members/{id}/promote", post(promote_member))
        .route("/metrics", get(metrics))
        .with_state(AppState {
            tx,
            client_peers: Arc::new(client_peers),
            shared,
        })
}

fn unavailable(msg: &str, leader: Option<NodeId>) -> Response {
    let body = serde_json::json!({ "error": msg, "leader": leader }).to_string();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}

/// The client API address of node `id`: `--client-peers`, or else the
/// address book.
fn client_addr(st: &AppState, id: NodeId) -> Option<String> {
    st.client_peers.get(&id).cloned().or_else(|| {
        st.shared
            .kv()
            .members()
            .get(&id)
            .map(|a| a.client_addr.clone())
    })
}

fn not_leader(st: &AppState, leader: Option<NodeId>, uri: &Uri) -> Response {
    match leader.and_then(|l| client_addr(st, l)) {
        Some(addr) => {
            let pq = uri.path_and_query().map_or("/", |p| p.as_str());
            let location = format!("http://{addr}{pq}");
            (
                StatusCode::TEMPORARY_REDIRECT,
                [
                    ("location", location),
                    ("x-raft-leader", leader.unwrap_or(0).to_string()),
                ],
            )
                .into_response()
        }
        None => unavailable("no known leader", leader),
    }
}

async fn call<T>(
    st: &AppState,
    make: impl FnOnce(oneshot::Sender<T>) -> Request,
) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    if st.tx.send(make(tx)).await.is_err() {
        return Err(unavailable("node stopping", None));
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) => Err(unavailable("node stopping", None)),
        Err(_) => Err(unavailable("timeout", None)),
    }
}

/// Hands a request to the node loop and waits (until `deadline`) for the
/// node loop to complete its ticket in `waiters`.
async fn submit<T>(
    st: &AppState,
    waiters: &Arc<Waiters<T>>,
    deadline: Instant,
    make: impl FnOnce(u64) -> Request,
) -> Result<T, Response> {
    let ticket: Ticket<T> = waiters
        .register()
        .map_err(|_| unavailable("node stopping", None))?;
    if st.tx.send(make(ticket.id())).await.is_err() {
        return Err(unavailable("node stopping", None));
    }
    match tokio::time::timeout_at(deadline, ticket).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) => Err(unavailable("node stopping", None)),
        Err(_) => Err(unavailable("timeout", None)),
    }
}

/// Runs a request's handler and records its latency under `op`.
async fn timed(
    st: &AppState,
    op: LatencyOp,
    f: impl std::future::Future<Output = Response>,
) -> Response {
    let start = Instant::now();
    let r = f.await;
    st.shared.latency.record(op, start.elapsed());
    r
}

async fn get_key(State(st): State<AppState>, Path(key): Path<String>, uri: Uri) -> Response {
    timed(&st, LatencyOp::Get, read(&st, key, uri)).await
}

async fn read(st: &AppState, key: String, uri: Uri) -> Response {
    if st.shared.bugs.has(Bug::LocalRead) {
        // Planted bug: whatever this node has applied, leader or not.
        return match st.shared.kv().get(&key).cloned() {
            Some(v) => (StatusCode::OK, v).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let index = match submit(st, &st.shared.reads, deadline, |id| Request::Read { id }).await {
        Ok(Ok(index)) => index,
        Ok(Err(ReqError::NotLeader(l))) => return not_leader(st, l, &uri),
        Ok(Err(ReqError::Lost)) => return unavailable("lost leadership, retry", None),
        Err(r) => return r,
    };
    match tokio::time::timeout_at(deadline, st.shared.applied.wait(index)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return unavailable("node stopping", None),
        Err(_) => return unavailable("timeout", None),
    }
    // The state machine has applied at least the read index: any state from
    // now on reflects every write acknowledged before this read began.
    match st.shared.kv().get(&key).cloned() {
        Some(v) => (StatusCode::OK, v).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The session identity of a request: from the headers, or a fresh one.
fn session(headers: &HeaderMap) -> Result<(u64, u64), Response> {
    let num = |name: &str| -> Result<Option<u64>, Response> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| {
                    (
                        StatusCode::BAD_REQUEST,
                        format!("{name}: expected an unsigned integer"),
                    )
                        .into_response()
                }),
        }
    };
    match (num("x-client-id")?, num("x-request-seq")?) {
        (Some(c), Some(s)) => Ok((c, s)),
        (None, None) => Ok((rand::random::<u64>() | 1 << 63, 1)),
        _ => Err((
            StatusCode::BAD_REQUEST,
            "X-Client-Id and X-Request-Seq go together",
        )
            .into_response()),
    }
}

async fn write(st: &AppState, headers: &HeaderMap, uri: &Uri, op: Op) -> Response {
    let kind = match op {
        // (The HTTP API has no append; a write is a put.)
        Op::Write { .. } | Op::Append { .. } => LatencyOp::Put,
        Op::Delete { .. } => LatencyOp::Delete,
        Op::Cas { .. } => LatencyOp::Cas,
        Op::Read { .. } => LatencyOp::Get,
    };
    timed(st, kind, propose(st, headers, uri, op)).await
}

async fn propose(st: &AppState, headers: &HeaderMap, uri: &Uri, op: Op) -> Response {
    let (client, req) = match session(headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let cmd = Command { client, req, op };
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let make = |id| Request::Propose { cmd, id };
    match submit(st, &st.shared.proposals, deadline, make).await {
        Ok(Ok(Reply::Done)) | Ok(Ok(Reply::Value(_))) => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(Reply::CasFailed(cur))) => (
            StatusCode::PRECONDITION_FAILED,
            [("content-type", "application/json")],
            serde_json::json!({ "current": cur }).to_string(),
        )
            .into_response(),
        Ok(Ok(Reply::Stale)) => (
            StatusCode::CONFLICT,
            "stale request: the client has a newer request seq",
        )
            .into_response(),
        Ok(Err(ReqError::NotLeader(l))) => not_leader(st, l, uri),
        Ok(Err(ReqError::Lost)) => unavailable("lost leadership, retry", None),
        Err(r) => r,
    }
}

fn utf8(body: Bytes) -> Result<String, Response> {
    String::from_utf8(body.to_vec())
        .map_err(|_| (StatusCode::BAD_REQUEST, "the value must be UTF-8").into_response())
}

async fn put_key(
    State(st): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    match utf8(body) {
        Ok(value) => write(&st, &headers, &uri, Op::Write { key, value }).await,
        Err(r) => r,
    }
}

async fn delete_key(
    State(st): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    write(&st, &headers, &uri, Op::Delete { key }).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CasBody {
    from: Option<String>,
    to: String,
}

async fn cas_key(
    State(st): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let b: CasBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"from\": string or null, \"to\": string}}: {e}"),
            )
                .into_response()
        }
    };
    let op = Op::Cas {
        key,
        from: b.from,
        to: b.to,
    };
    write(&st, &headers, &uri, op).await
}

#[derive(serde::Deserialize)]
struct TransferQuery {
    to: Option<String>,
}

fn json_error(code: StatusCode, msg: &str) -> Response {
    let body = serde_json::json!({ "error": msg }).to_string();
    (code, [("content-type", "application/json")], body).into_response()
}

/// `POST /v1/admin/transfer?to=N`: leader transfer to node N.
async fn transfer(
    State(st): State<AppState>,
    Query(q): Query<TransferQuery>,
    uri: Uri,
) -> Response {
    let Some(to) =
        q.to.as_deref()
            .and_then(|t| t.trim().parse::<NodeId>().ok())
    else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "expected ?to=N with N the id of a node of the cluster",
        );
    };
    let r = match call(&st, |reply| Request::Transfer { to, reply }).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    match r {
        Ok(()) => {
            let from = match fetch_status(&st).await {
                Ok(s) => Some(s.id),
                Err(_) => None,
            };
            let body = serde_json::json!({ "from": from, "to": to }).to_string();
            (
                StatusCode::ACCEPTED,
                [("content-type", "application/json")],
                body,
            )
                .into_response()
        }
        Err(TransferError::NotLeader { leader }) => match leader {
            Some(_) => not_leader(&st, leader, &uri),
            None => unavailable("not the leader, and no known leader", None),
        },
        Err(e @ TransferError::UnknownNode(_)) => {
            json_error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e @ (TransferError::InProgress(_) | TransferError::ToSelf(_))) => {
            json_error(StatusCode::CONFLICT, &e.to_string())
        }
        Err(e @ TransferError::Disabled) => json_error(StatusCode::CONFLICT, &e.to_string()),
    }
}

async fn fetch_status(st: &AppState) -> Result<Status, Response> {
    call(st, |reply| Request::Status { reply }).await
}

async fn status(State(st): State<AppState>) -> Response {
    match fetch_status(&st).await {
        Ok(s) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            serde_json::to_string(&s).expect("status encodes"),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    let s = match fetch_status(&st).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let m = s.metrics;
    let mut out = String::new();
    let mut line = |name: &str, kind: &str, help: &str, v: u64| {
        out.push_str(&format!(
            "# HELP raftkv_{name} {help}\n# TYPE raftkv_{name} {kind}\nraftkv_{name} {v}\n"
        ));
    };
    line("term", "gauge", "Current Raft term.", s.term);
    line(
        "is_leader",
        "gauge",
        "1 if this node leads.",
        u64::from(s.role == "leader"),
    );
    line("commit_index", "gauge", "Commit index.", s.commit);
    line("applied_index", "gauge", "Applied index.", s.applied);
    line("last_index", "gauge", "Last log index.", s.last_index);
    line(
        "proposals_total",
        "counter",
        "Write proposals received.",
        m.proposals,
    );
    line("reads_total", "counter", "Reads received.", m.reads);
    line(
        "readies_total",
        "counter",
        "Ready batches handled.",
        m.readies,
    );
    line(
        "wal_syncs_total",
        "counter",
        "WAL group commits (one fdatasync each).",
        m.wal_syncs,
    );
    line(
        "entries_applied_total",
        "counter",
        "Entries applied.",
        m.entries_applied,
    );
    line(
        "snapshots_taken_total",
        "counter",
        "Snapshots taken.",
        m.snapshots_taken,
    );
    line(
        "snapshots_installed_total",
        "counter",
        "Snapshots installed from the leader.",
        m.snapshots_installed,
    );
    line(
        "messages_sent_total",
        "counter",
        "Raft messages sent.",
        m.messages_sent,
    );
    line(
        "messages_received_total",
        "counter",
        "Raft messages received.",
        m.messages_received,
    );
    st.shared.latency.render(&mut out);
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        out,
    )
        .into_response()
}

/// The body of `POST /v1/admin/members`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMember {
    id: NodeId,
    peer_addr: String,
    client_addr: String,
    #[serde(default)]
    learner: bool,
}

const ADD_MEMBER_SHAPE: &str =
    r#"{"id": N, "peer_addr": "host:port", "client_addr": "host:port", "learner": false}"#;

/// Parses `POST /v1/admin/members`' body; the error names the field.
fn parse_add_member(body: &[u8]) -> Result<(ConfChange, MemberAddrs), String> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let b: AddMember = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            format!("invalid body: {inner}; expected {ADD_MEMBER_SHAPE}")
        } else {
            format!("invalid body: field \"{path}\": {inner}; expected {ADD_MEMBER_SHAPE}")
        }
    })?;
    if b.id == 0 {
        return Err("field \"id\": node ids are positive".into());
    }
    if b.peer_addr.parse::<std::net::SocketAddr>().is_err() {
        return Err(format!(
            "field \"peer_addr\": {:?} is not an IP address and port (e.g. 127.0.0.1:7004)",
            b.peer_addr
        ));
    }
    let host_port = b
        .client_addr
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
    if !host_port {
        return Err(format!(
            "field \"client_addr\": {:?} is not host:port (e.g. 127.0.0.1:8004)",
            b.client_addr
        ));
    }
    let change = if b.learner {
        ConfChange::AddLearner(b.id)
    } else {
        ConfChange::AddVoter(b.id)
    };
    let addrs = MemberAddrs {
        peer_addr: b.peer_addr,
        client_addr: b.client_addr,
    };
    Ok((change, addrs))
}

fn configuration_response(c: &Configuration) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        serde_json::to_string(c).expect("a configuration encodes"),
    )
        .into_response()
}

/// The code of a refused change, in the JSON error (`code`).
fn change_code(e: &ChangeError) -> &'static str {
    match e {
        ChangeError::NotLeader(_) => "not_leader",
        ChangeError::Transferring => "transferring",
        ChangeError::Pending(_) => "pending",
        ChangeError::NotReady => "not_ready",
        ChangeError::AlreadyVoter(_) => "already_voter",
        ChangeError::AlreadyMember(_) => "already_member",
        ChangeError::NotMember(_) => "not_member",
        ChangeError::LastVoter(_) => "last_voter",
        ChangeError::ZeroId => "zero_id",
        ChangeError::Disabled => "disabled",
    }
}

/// Proposes a membership change and answers once it is applied.
async fn change(
    st: &AppState,
    uri: &Uri,
    change: ConfChange,
    addrs: Option<MemberAddrs>,
) -> Response {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let make = |id| Request::Change { change, addrs, id };
    match submit(st, &st.shared.changes, deadline, make).await {
        Ok(Ok(c)) => configuration_response(&c),
        Ok(Err(ChangeFailed::Req(ReqError::NotLeader(l)))) => not_leader(st, l, uri),
        Ok(Err(ChangeFailed::Req(ReqError::Lost))) => unavailable("lost leadership, retry", None),
        Ok(Err(ChangeFailed::Refused(e))) => {
            let code = match e {
                ChangeError::NotMember(_) => StatusCode::NOT_FOUND,
                ChangeError::ZeroId => StatusCode::BAD_REQUEST,
                _ => StatusCode::CONFLICT,
            };
            let body = serde_json::json!({ "error": e.to_string(), "code": change_code(&e) });
            (
                code,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Err(r) => r,
    }
}

/// The `{id}` of a members path.
fn member_id(id: &str) -> Result<NodeId, Response> {
    match id.trim().parse::<NodeId>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(json_error(
            StatusCode::BAD_REQUEST,
            &format!("member id {id:?}: expected a positive node id"),
        )),
    }
}

/// `POST /v1/admin/members`.
async fn add_member(State(st): State<AppState>, uri: Uri, body: Bytes) -> Response {
    match parse_add_member(&body) {
        Ok((c, addrs)) => change(&st, &uri, c, Some(addrs)).await,
        Err(msg) => json_error(StatusCode::BAD_REQUEST, &msg),
    }
}

/// `POST /v1/admin/members/{id}/promote`.
async fn promote_member(State(st): State<AppState>, Path(id): Path<String>, uri: Uri) -> Response {
    let id = match member_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    change(&st, &uri, ConfChange::AddVoter(id), None).await
}

/// `DELETE /v1/admin/members/{id}`.
async fn remove_member(State(st): State<AppState>, Path(id): Path<String>, uri: Uri) -> Response {
    match member_id(&id) {
        Ok(id) => change(&st, &uri, ConfChange::Remove(id), None).await,
        Err(r) => r,
    }
}

async fn fetch_members(st: &AppState) -> Result<Configuration, Response> {
    call(st, |reply| Request::Members { reply }).await
}

#[derive(serde::Deserialize)]
struct MembersQuery {
    local: Option<String>,
}

/// `GET /v1/admin/members[?local]`.
async fn list_members(
    State(st): State<AppState>,
    Query(q): Query<MembersQuery>,
    uri: Uri,
) -> Response {
    let c = match fetch_members(&st).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let local = q.local.is_some_and(|v| v != "false" && v != "0");
    if !local && c.leader != Some(c.node) {
        return not_leader(&st, c.leader, &uri);
    }
    configuration_response(&c)
}
