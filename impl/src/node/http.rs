//! The HTTP/JSON client API (axum).
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/kv/{key}` | 200 raw value, 404 absent (linearizable: ReadIndex) |
//! | `PUT /v1/kv/{key}` (body = value) | 204 |
//! | `DELETE /v1/kv/{key}` | 204 |
//! | `POST /v1/kv/{key}/cas` `{"from": str or null, "to": str}` | 204; **412** with `{"current": ...}` when the key does not hold `from` |
//! | `GET /v1/status` | JSON `{id, role, term, leader, commit, applied, last_index}` |
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
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot};

use super::latency::Op as LatencyOp;
use super::server::{ReqError, Request, Status};
use super::shared::Shared;
use super::waiters::{Ticket, Waiters};
use crate::bugs::Bug;
use crate::core::{Command, NodeId, Op, TransferError};
use crate::kv::Reply;

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

fn not_leader(st: &AppState, leader: Option<NodeId>, uri: &Uri) -> Response {
    match leader.and_then(|l| st.client_peers.get(&l)) {
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
