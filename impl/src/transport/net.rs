//! The TCP transport: one outbound connection per peer (with reconnect and backoff) fed by a
//! bounded drop-oldest queue, and an accept loop whose readers deliver decoded messages.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::frame::{encode_frame, read_frame, FrameError};
use super::queue::{BoundedQueue, PushOutcome};
use super::NodeId;

/// The stream of received messages: `(sender, message)`.
pub type Inbound<M> = mpsc::Receiver<(NodeId, M)>;

/// Tuning of the transport.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Largest accepted (and sent) message payload in bytes.
    pub max_frame: u32,
    /// Outbound frames queued per peer; when full the oldest is dropped and counted.
    pub queue_capacity: usize,
    /// Capacity of the channel of received messages. When the consumer lags, readers stop
    /// reading and TCP flow control pushes back on the senders.
    pub inbound_capacity: usize,
    /// First reconnect delay; doubled after each failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Time allowed for one connection attempt.
    pub connect_timeout: Duration,
    /// Once the first byte of a frame arrived, the whole frame must arrive within this time,
    /// or the connection is closed (a stalled or malicious sender cannot hold a reader).
    pub frame_timeout: Duration,
    /// Incoming connections open at once; more are closed at once and counted.
    pub max_inbound_connections: usize,
    /// Accept frames from any sender id (other than this node's own and 0), not only from
    /// the peers the transport knows. A cluster whose membership changes needs it: a node
    /// that joins hears from the leader before it knows the leader's address, and the leader
    /// hears the new node's replies. Off by default: a fixed cluster rejects strangers.
    pub accept_unknown_senders: bool,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            max_frame: 16 << 20,
            queue_capacity: 4096,
            inbound_capacity: 4096,
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            frame_timeout: Duration::from_secs(10),
            max_inbound_connections: 64,
            accept_unknown_senders: false,
        }
    }
}

/// Errors from starting the transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Any other socket error at start-up.
    #[error("transport I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Errors from [`Transport::send`]. A message that was queued may still be lost later (Raft
/// tolerates loss); these errors mean it was not even queued.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The destination is not a configured peer.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
    /// The message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(#[from] postcard::Error),
    /// The encoded message exceeds the maximum frame size.
    #[error("message of {len} bytes exceeds the maximum frame size {max}")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// Configured maximum.
        max: u32,
    },
    /// The transport was shut down.
    #[error("transport shut down")]
    Closed,
}

#[derive(Debug, Default)]
struct PeerCounters {
    sent: AtomicU64,
    connects: AtomicU64,
    write_errors: AtomicU64,
    lost_in_flight: AtomicU64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    rejected_connections: AtomicU64,
    rejected_frames: AtomicU64,
    accepted_connections: AtomicU64,
}

#[derive(Debug)]
struct Peer {
    addr: SocketAddr,
    queue: Arc<BoundedQueue<Vec<u8>>>,
    counters: Arc<PeerCounters>,
}

/// Per-peer outbound statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerStats {
    /// Frames waiting in the queue.
    pub queued: usize,
    /// Frames evicted from a full queue (drop-oldest).
    pub dropped: u64,
    /// Frames written to a connection.
    pub sent: u64,
    /// Successful connections made.
    pub connects: u64,
    /// Connections lost on a write error.
    pub write_errors: u64,
    /// Frames taken from the queue but lost with a failed connection.
    pub lost_in_flight: u64,
}

/// Transport statistics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransportStats {
    /// Outbound statistics per peer.
    pub peers: BTreeMap<NodeId, PeerStats>,
    /// Messages received and delivered.
    pub received: u64,
    /// Incoming frames rejected (garbage, bad version, unknown sender, oversized, undecodable);
    /// each closed its connection.
    pub rejected_frames: u64,
    /// Incoming connections accepted.
    pub accepted_connections: u64,
    /// Incoming connections closed at once because `max_inbound_connections` were open.
    pub rejected_connections: u64,
}

struct Shared {
    my_id: NodeId,
    max_frame: u32,
    frame_timeout: Duration,
    max_inbound: usize,
    accept_unknown: bool,
    /// The peers messages can be sent to; [`Transport::add_peer`] adds more at run time.
    peers: RwLock<BTreeMap<NodeId, Peer>>,
    counters: Counters,
}

impl Shared {
    fn peers(&self) -> RwLockReadGuard<'_, BTreeMap<NodeId, Peer>> {
        self.peers.read().unwrap_or_else(|p| p.into_inner())
    }

    fn peers_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<NodeId, Peer>> {
        self.peers.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running transport. Messages are sent with [`Transport::send`] and arrive on the receiver
/// returned by [`Transport::start`]. Dropping the transport stops its tasks;
/// [`Transport::shutdown`] does so and waits for them.
pub struct Transport<M> {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tasks: JoinSet<()>,
    config: TransportConfig,
    _msg: PhantomData<fn(M) -> M>,
}

/// A cheap, cloneable handle for sending through a [`Transport`] from other tasks.
pub struct TransportHandle<M> {
    shared: Arc<Shared>,
    _msg: PhantomData<fn(M) -> M>,
}

impl<M> Clone for TransportHandle<M> {
    fn clone(&self) -> Self {
        TransportHandle {
            shared: self.shared.clone(),
            _msg: PhantomData,
        }
    }
}

impl<M: Serialize> TransportHandle<M> {
    /// Encodes `msg` and queues it for `to`. Never blocks; see [`Transport::send`].
    pub fn send(&self, to: NodeId, msg: &M) -> Result<(), SendError> {
        send(&self.shared, to, msg)
    }
}

fn send<M: Serialize>(shared: &Shared, to: NodeId, msg: &M) -> Result<(), SendError> {
    let queue = shared
        .peers()
        .get(&to)
        .map(|p| p.queue.clone())
        .ok_or(SendError::UnknownPeer(to))?;
    let payload = postcard::to_stdvec(msg)?;
    if payload.len() > shared.max_frame as usize {
        return Err(SendError::TooLarge {
            len: payload.len(),
            max: shared.max_frame,
        });
    }
    match queue.push(encode_frame(shared.my_id, &payload)) {
        PushOutcome::Queued => Ok(()),
        PushOutcome::DroppedOldest => {
            tracing::debug!(peer = to, "outbound queue full: dropped the oldest message");
            Ok(())
        }
        PushOutcome::Closed => Err(SendError::Closed),
    }
}

impl<M> Transport<M>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    /// Binds `listen` and starts the transport for node `my_id`. `peers` maps every node id to
    /// its peer address (an entry for `my_id` itself is ignored). Must be called inside a tokio
    /// runtime. Returns the transport and the stream of `(sender, message)`.
    pub async fn start(
        my_id: NodeId,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
        config: TransportConfig,
    ) -> Result<(Transport<M>, Inbound<M>), TransportError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| TransportError::Bind {
                addr: listen,
                source,
            })?;
        Transport::start_with_listener(my_id, listener, peers, config)
    }

    /// Like [`Transport::start`] with an already bound listener (useful with port 0).
    pub fn start_with_listener(
        my_id: NodeId,
        listener: TcpListener,
        peers: BTreeMap<NodeId, SocketAddr>,
        config: TransportConfig,
    ) -> Result<(Transport<M>, Inbound<M>), TransportError> {
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            my_id,
            max_frame: config.max_frame,
            frame_timeout: config.frame_timeout,
            max_inbound: config.max_inbound_connections.max(1),
            accept_unknown: config.accept_unknown_senders,
            peers: RwLock::new(BTreeMap::new()),
            counters: Counters::default(),
        });
        let (tx, rx) = mpsc::channel(config.inbound_capacity.max(1));
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop::<M>(listener, shared.clone(), tx));
        let mut t = Transport {
            shared,
            local_addr,
            tasks,
            config,
            _msg: PhantomData,
        };
        for (id, addr) in peers {
            t.add_peer(id, addr);
        }
        tracing::info!(node = my_id, addr = %local_addr, peers = t.shared.peers().len(), "transport started");
        Ok((t, rx))
    }

    /// Adds peer `id` at `addr` (a node that joined the cluster), or moves it to `addr`.
    /// Returns whether anything changed: false for this node's own id, for 0, and for a
    /// peer already at `addr`. Frames queued for a peer that moves are dropped with its old
    /// connection (Raft tolerates loss).
    pub fn add_peer(&mut self, id: NodeId, addr: SocketAddr) -> bool {
        if id == self.shared.my_id || id == 0 {
            return false;
        }
        let mut peers = self.shared.peers_mut();
        if let Some(old) = peers.get(&id) {
            if old.addr == addr {
                return false;
            }
            old.queue.close();
            tracing::info!(node = self.shared.my_id, peer = id, old = %old.addr, new = %addr, "peer moved");
        }
        let peer = Peer {
            addr,
            queue: Arc::new(BoundedQueue::new(self.config.queue_capacity)),
            counters: Arc::new(PeerCounters::default()),
        };
        self.tasks.spawn(outbound_loop(
            self.shared.my_id,
            id,
            addr,
            peer.queue.clone(),
            peer.counters.clone(),
            self.config.clone(),
        ));
        peers.insert(id, peer);
        true
    }

    /// The address each peer is sent to.
    pub fn peers(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.shared
            .peers()
            .iter()
            .map(|(&id, p)| (id, p.addr))
            .collect()
    }

    /// The address the transport listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.my_id
    }

    /// Encodes `msg` and queues it for `to`. Never blocks: when the peer's queue is full the
    /// oldest queued message is dropped (and counted in [`PeerStats::dropped`]).
    pub fn send(&self, to: NodeId, msg: &M) -> Result<(), SendError> {
        send(&self.shared, to, msg)
    }

    /// A cloneable sending handle.
    pub fn handle(&self) -> TransportHandle<M> {
        TransportHandle {
            shared: self.shared.clone(),
            _msg: PhantomData,
        }
    }

    /// Current counters.
    pub fn stats(&self) -> TransportStats {
        let c = &self.shared.counters;
        TransportStats {
            peers: self
                .shared
                .peers()
                .iter()
                .map(|(&id, p)| {
                    let pc = &p.counters;
                    let s = PeerStats {
                        queued: p.queue.len(),
                        dropped: p.queue.dropped(),
                        sent: pc.sent.load(Ordering::Relaxed),
                        connects: pc.connects.load(Ordering::Relaxed),
                        write_errors: pc.write_errors.load(Ordering::Relaxed),
                        lost_in_flight: pc.lost_in_flight.load(Ordering::Relaxed),
                    };
                    (id, s)
                })
                .collect(),
            received: c.received.load(Ordering::Relaxed),
            rejected_frames: c.rejected_frames.load(Ordering::Relaxed),
            accepted_connections: c.accepted_connections.load(Ordering::Relaxed),
            rejected_connections: c.rejected_connections.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting, closes all connections and waits for every task to end. Queued,
    /// unsent messages are discarded. The listening port is free when this returns.
    pub async fn shutdown(mut self) {
        for p in self.shared.peers().values() {
            p.queue.close();
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        tracing::info!(node = self.shared.my_id, "transport stopped");
    }
}

/// Accepts peer connections; each gets a reader task (owned here, so aborting this task
/// closes them all).
async fn accept_loop<M>(listener: TcpListener, shared: Arc<Shared>, tx: mpsc::Sender<(NodeId, M)>)
where
    M: DeserializeOwned + Send + 'static,
{
    let mut readers = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) if readers.len() >= shared.max_inbound => {
                    shared.counters.rejected_connections.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%remote, open = readers.len(), "too many incoming connections; closing the new one");
                    drop(stream);
                }
                Ok((stream, remote)) => {
                    shared.counters.accepted_connections.fetch_add(1, Ordering::Relaxed);
                    readers.spawn(read_loop(stream, remote, shared.clone(), tx.clone()));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = readers.join_next(), if !readers.is_empty() => {}
        }
    }
}

/// Reads frames from one incoming connection until it closes or sends something invalid.
async fn read_loop<M: DeserializeOwned>(
    stream: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    tx: mpsc::Sender<(NodeId, M)>,
) {
    let mut r = BufReader::new(stream);
    let mut first: Option<NodeId> = None;
    let known = |id: NodeId| {
        id != shared.my_id && id != 0 && (shared.accept_unknown || shared.peers().contains_key(&id))
    };
    loop {
        let res = match read_frame(&mut r, shared.max_frame, shared.frame_timeout, known).await {
            Ok(None) => return,
            Ok(Some((from, payload))) => match first {
                Some(f) if f != from => Err(FrameError::SenderChanged {
                    first: f,
                    got: from,
                }),
                _ => {
                    first = Some(from);
                    postcard::from_bytes::<M>(&payload)
                        .map(|m| (from, m))
                        .map_err(|source| FrameError::Decode { from, source })
                }
            },
            Err(e) => Err(e),
        };
        match res {
            Ok((from, msg)) => {
                shared.counters.received.fetch_add(1, Ordering::Relaxed);
                if tx.send((from, msg)).await.is_err() {
                    return; // the receiver is gone: nobody is listening any more
                }
            }
            Err(FrameError::Io(e)) => {
                tracing::debug!(%remote, error = %e, "peer connection closed mid-frame");
                return;
            }
            Err(e) => {
                shared
                    .counters
                    .rejected_frames
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%remote, error = %e, "rejected frame; closing the connection");
                return;
            }
        }
    }
}

/// Keeps a connection to one peer and writes its queued frames, reconnecting with
/// exponential backoff.
async fn outbound_loop(
    my_id: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    queue: Arc<BoundedQueue<Vec<u8>>>,
    counters: Arc<PeerCounters>,
    config: TransportConfig,
) {
    let mut backoff = config.backoff_initial;
    loop {
        if queue.is_closed() {
            return;
        }
        let stream = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(node = my_id, peer, %addr, error = %e, ?backoff, "connect failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.backoff_max);
                continue;
            }
            Err(_) => {
                tracing::debug!(node = my_id, peer, %addr, ?backoff, "connect timed out");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.backoff_max);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        counters.connects.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(node = my_id, peer, %addr, "connected");
        let (mut rd, wr) = stream.into_split();
        let mut w = BufWriter::new(wr);
        let mut probe = [0u8; 64];
        let failure = loop {
            tokio::select! {
                frame = queue.pop() => {
                    let Some(frame) = frame else { return };
                    // Write this frame and whatever else is queued, then flush once.
                    let mut batch = 1u64;
                    let mut res = w.write_all(&frame).await;
                    while res.is_ok() && batch < 256 {
                        let Some(next) = queue.try_pop() else { break };
                        batch += 1;
                        res = w.write_all(&next).await;
                    }
                    if let Err(e) = res.and(w.flush().await) {
                        counters.lost_in_flight.fetch_add(batch, Ordering::Relaxed);
                        break e.to_string();
                    }
                    counters.sent.fetch_add(batch, Ordering::Relaxed);
                }
                // The peer never writes on this connection: a readable socket means it
                // closed (or misbehaves). Either way, reconnect.
                r = rd.read(&mut probe) => {
                    break match r {
                        Ok(0) => "closed by peer".to_string(),
                        Ok(_) => "unexpected data from peer".to_string(),
                        Err(e) => e.to_string(),
                    };
                }
            }
        };
        counters.write_errors.fetch_add(1, Ordering::Relaxed);
        tracing::info!(node = my_id, peer, %addr, error = %failure, "connection lost; reconnecting");
        backoff = config.backoff_initial;
        tokio::time::sleep(backoff).await;
    }
}
