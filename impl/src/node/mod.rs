//! The networked key-value store: a node process (the core driven by a
//! tokio task, the WAL, the TCP transport, the state machine), its HTTP/JSON
//! client API and a small blocking client library.
//!
//! - [`server`]: the node loop and recovery;
//! - [`http`]: the client API (axum);
//! - [`client`]: an HTTP client with leader discovery and retries;
//! - [`http_client`]: the blocking keep-alive HTTP/1.1 client under it (also
//!   used by `raftcheck bench`);
//! - [`wire`]: postcard encodings of messages and WAL entries;
//! - [`trace_file`]: `--trace FILE` through a writer thread.
//!
//! The pieces shared between the node loop, the HTTP handlers and the trace
//! writer thread have their own synchronization, written against [`sync`]
//! (std, or loom under `--cfg loom`, the only part compiled then):
//!
//! - [`waiters`]: requests waiting for their outcome (proposals waiting for
//!   commit, reads waiting for their read index);
//! - [`applied`]: the apply notifier (reads wait for their read index to be
//!   applied);
//! - [`trace_buffer`]: the trace events on their way to the writer thread,
//!   with the barrier before messages leave;
//! - [`shutdown`]: the stop signal and the order of closing;
//! - [`shared`]: those pieces bundled for the node loop and the client API.

pub mod applied;
#[cfg(not(loom))]
pub mod client;
#[cfg(not(loom))]
pub mod http;
#[cfg(not(loom))]
pub mod http_client;
#[cfg(not(loom))]
pub mod latency;
#[cfg(not(loom))]
pub mod server;
#[cfg(not(loom))]
pub mod shared;
pub mod shutdown;
pub mod sync;
pub mod trace_buffer;
#[cfg(not(loom))]
pub mod trace_file;
pub mod waiters;
#[cfg(not(loom))]
pub mod wire;

#[cfg(not(loom))]
pub use server::{run, NodeConfig, NodeError};
#[cfg(not(loom))]
pub use shared::Shared;
pub use sync::Stopped;

#[cfg(not(loom))]
/// Runs a node process: the node loop and the HTTP API, until Ctrl-C or
/// SIGTERM (clean stop) or a fatal error.
///
/// `worker_threads` 0 runs everything on this thread (a current-thread
/// runtime; WAL writes still go to a blocking thread): the node loop, the
/// HTTP handlers and the transport then hand requests to each other without
/// cross-thread wake-ups. More threads parse HTTP in parallel on a bigger
/// machine.
pub fn run_process(cfg: NodeConfig, worker_threads: usize) -> Result<(), NodeError> {
    let rt = if worker_threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .enable_all()
            .build()?
    };
    rt.block_on(async move {
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let mut shared = Shared::new();
        shared.bugs = cfg.bugs;
        let listener = tokio::net::TcpListener::bind(cfg.client_addr).await?;
        let app = http::router(tx, cfg.client_peers.clone(), shared.clone());
        let stop = shared.stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(stop.wait());
            if let Err(e) = served.await {
                tracing::error!(error = %e, "client API stopped");
            }
        });
        let stop = shared.stop.clone();
        tokio::spawn(async move {
            stop_signal().await;
            stop.stop();
        });
        run(cfg, rx, shared).await
    })
}

#[cfg(not(loom))]
/// Resolves on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

#[cfg(not(loom))]
/// Blocks until Ctrl-C or SIGTERM (for `raftcheck cluster`).
pub fn wait_for_stop_signal() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(stop_signal());
    Ok(())
}
