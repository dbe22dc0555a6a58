//! Shutdown of a node: a one-way stop signal, and the order in which the
//! node's shared pieces are closed.
//!
//! [`StopSignal::stop`] is called by the process's signal handler (Ctrl-C,
//! SIGTERM) or by the node loop itself when it stops on a fatal error. The
//! node loop and the HTTP server await [`StopSignal::wait`]; threads can
//! [`StopSignal::wait_blocking`]. A stop is never missed: a waiter checks the
//! flag and leaves its waker in one critical section.
//!
//! When the node loop ends (for whatever reason) it closes, in this order:
//! the [`Waiters`](super::waiters::Waiters) of proposals and reads and the
//! [`AppliedIndex`](super::applied::AppliedIndex) (every HTTP handler still
//! waiting gets "node stopping", none hangs and none is told that a write
//! succeeded unless it was applied), then the
//! [`TraceBuffer`](super::trace_buffer::TraceBuffer) after a last barrier
//! (the writer drains every event and exits), and it joins the writer.
//!
//! Checked by loom in `impl/tests/loom_node.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::sync::{lock, wait, Condvar, Mutex};

struct Inner {
    stopped: bool,
    next_id: u64,
    wakers: BTreeMap<u64, Waker>,
}

struct Shared {
    inner: Mutex<Inner>,
    cv: Condvar,
}

/// A one-way stop flag with async and blocking waits. Clones share the flag.
#[derive(Clone)]
pub struct StopSignal(Arc<Shared>);

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal(Arc::new(Shared {
            inner: Mutex::new(Inner {
                stopped: false,
                next_id: 0,
                wakers: BTreeMap::new(),
            }),
            cv: Condvar::new(),
        }))
    }
}

impl StopSignal {
    /// A signal not yet given.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives the signal (idempotent) and wakes every waiter.
    pub fn stop(&self) {
        let wakers = {
            let mut g = lock(&self.0.inner);
            g.stopped = true;
            std::mem::take(&mut g.wakers)
        };
        self.0.cv.notify_all();
        for w in wakers.into_values() {
            w.wake();
        }
    }

    /// Whether the signal was given.
    pub fn is_stopped(&self) -> bool {
        lock(&self.0.inner).stopped
    }

    /// Resolves once the signal is given.
    pub fn wait(&self) -> Stop {
        let id = {
            let mut g = lock(&self.0.inner);
            g.next_id += 1;
            g.next_id
        };
        Stop {
            signal: self.clone(),
            id,
        }
    }

    /// Blocks the calling thread until the signal is given.
    pub fn wait_blocking(&self) {
        let mut g = lock(&self.0.inner);
        while !g.stopped {
            g = wait(&self.0.cv, g);
        }
    }
}

/// The future of [`StopSignal::wait`].
pub struct Stop {
    signal: StopSignal,
    id: u64,
}

impl Future for Stop {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = lock(&self.signal.0.inner);
        if g.stopped {
            return Poll::Ready(());
        }
        g.wakers.insert(self.id, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        lock(&self.signal.0.inner).wakers.remove(&self.id);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_async_and_blocking_waiters() {
        let s = StopSignal::new();
        let a = tokio::spawn(s.wait());
        let s2 = s.clone();
        let b = std::thread::spawn(move || s2.wait_blocking());
        tokio::task::yield_now().await;
        assert!(!s.is_stopped());
        s.stop();
        a.await.unwrap();
        b.join().unwrap();
        s.wait().await; // already given: at once
    }
}
