//! The trace buffer between the node loop and the trace writer thread.
//!
//! The node loop [`TraceBuffer::push`]es events (never blocking on I/O); the
//! writer thread takes them in batches with [`TraceBuffer::next_batch`],
//! writes them and reports with [`TraceBuffer::written`]. Before a Ready's
//! messages leave the node, the loop awaits [`TraceBuffer::barrier`], which
//! resolves only once every event pushed before it is written: a receive in
//! another node's trace never lacks its send in this node's trace.
//!
//! Shutdown: [`TraceBuffer::close`] refuses further events; the writer still
//! drains what was pushed before, then `next_batch` returns `None`. When the
//! writer is gone ([`WriterGuard`] dropped, even by a panic) every barrier
//! resolves, so the node never hangs on a dead writer.
//!
//! Checked by loom in `impl/tests/loom_node.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::sync::{lock, wait, Condvar, Mutex};

struct Inner<E> {
    queue: Vec<E>,
    /// Events pushed so far (the sequence number of the last one).
    pushed: u64,
    /// Events the writer has written (a prefix of the pushed ones).
    written: u64,
    closed: bool,
    writer_gone: bool,
    /// Barriers by (target, id).
    barriers: Vec<(u64, u64, Waker)>,
    next_barrier: u64,
}

/// The buffer. See the module docs.
pub struct TraceBuffer<E> {
    inner: Mutex<Inner<E>>,
    /// Signalled when events arrive or the buffer closes.
    work: Condvar,
}

impl<E> TraceBuffer<E> {
    /// An empty, open buffer.
    pub fn new() -> Arc<Self> {
        Arc::new(TraceBuffer {
            inner: Mutex::new(Inner {
                queue: Vec::new(),
                pushed: 0,
                written: 0,
                closed: false,
                writer_gone: false,
                barriers: Vec::new(),
                next_barrier: 0,
            }),
            work: Condvar::new(),
        })
    }

    /// Queues an event for the writer. Returns false (dropping it) once the
    /// buffer is closed or the writer is gone.
    pub fn push(&self, event: E) -> bool {
        let mut g = lock(&self.inner);
        if g.closed || g.writer_gone {
            return false;
        }
        g.queue.push(event);
        g.pushed += 1;
        let first = g.queue.len() == 1;
        drop(g);
        if first {
            self.work.notify_one();
        }
        true
    }

    /// Resolves once every event pushed before this call is written (or the
    /// writer is gone).
    pub fn barrier(self: &Arc<Self>) -> Barrier<E> {
        let mut g = lock(&self.inner);
        g.next_barrier += 1;
        Barrier {
            buffer: self.clone(),
            target: g.pushed,
            id: g.next_barrier,
        }
    }

    /// Refuses further events and lets the writer finish once it has drained
    /// the queue.
    pub fn close(&self) {
        lock(&self.inner).closed = true;
        self.work.notify_all();
    }

    /// Writer side: waits for events and moves them all into `batch` (which
    /// must be empty). Returns the sequence number of the last one, to be
    /// passed to [`TraceBuffer::written`] once they are written; `None` once
    /// the buffer is closed and drained.
    pub fn next_batch(&self, batch: &mut Vec<E>) -> Option<u64> {
        let mut g = lock(&self.inner);
        while g.queue.is_empty() {
            if g.closed {
                return None;
            }
            g = wait(&self.work, g);
        }
        std::mem::swap(&mut g.queue, batch);
        // The queue holds exactly the events after `written`, so the batch
        // ends at `pushed` as seen under this lock.
        Some(g.pushed)
    }

    /// Writer side: every event up to sequence number `upto` is written.
    pub fn written(&self, upto: u64) {
        let woken = {
            let mut g = lock(&self.inner);
            g.written = g.written.max(upto);
            let written = g.written;
            take_barriers(&mut g.barriers, |t| t <= written)
        };
        for w in woken {
            w.wake();
        }
    }

    /// Writer side: a guard that marks the writer gone when dropped.
    pub fn writer_guard(self: &Arc<Self>) -> WriterGuard<E> {
        WriterGuard(self.clone())
    }

    /// Events pushed and events written so far.
    pub fn counts(&self) -> (u64, u64) {
        let g = lock(&self.inner);
        (g.pushed, g.written)
    }
}

fn take_barriers(b: &mut Vec<(u64, u64, Waker)>, done: impl Fn(u64) -> bool) -> Vec<Waker> {
    let mut woken = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if done(b[i].0) {
            woken.push(b.swap_remove(i).2);
        } else {
            i += 1;
        }
    }
    woken
}

/// Marks the writer gone when dropped: pending and later barriers resolve,
/// later events are refused.
pub struct WriterGuard<E>(Arc<TraceBuffer<E>>);

impl<E> Drop for WriterGuard<E> {
    fn drop(&mut self) {
        let woken = {
            let mut g = lock(&self.0.inner);
            g.writer_gone = true;
            g.queue.clear();
            std::mem::take(&mut g.barriers)
        };
        for (_, _, w) in woken {
            w.wake();
        }
    }
}

/// The future of [`TraceBuffer::barrier`].
pub struct Barrier<E> {
    buffer: Arc<TraceBuffer<E>>,
    target: u64,
    id: u64,
}

impl<E> Future for Barrier<E> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = lock(&self.buffer.inner);
        let id = self.id;
        g.barriers.retain(|b| b.1 != id);
        if g.written >= self.target || g.writer_gone {
            return Poll::Ready(());
        }
        g.barriers.push((self.target, id, cx.waker().clone()));
        Poll::Pending
    }
}

impl<E> Drop for Barrier<E> {
    fn drop(&mut self) {
        let id = self.id;
        lock(&self.buffer.inner).barriers.retain(|b| b.1 != id);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn barrier_waits_for_earlier_events_only() {
        let b = TraceBuffer::<u32>::new();
        b.push(1);
        b.push(2);
        let bar = b.barrier();
        b.push(3);
        let mut batch = Vec::new();
        assert_eq!(b.next_batch(&mut batch), Some(3));
        assert_eq!(batch, vec![1, 2, 3]);
        let h = tokio::spawn(bar);
        tokio::task::yield_now().await;
        assert!(!h.is_finished());
        b.written(3);
        h.await.unwrap();
        b.close();
        assert!(!b.push(4));
        assert_eq!(b.next_batch(&mut Vec::new()), None);
    }

    #[tokio::test]
    async fn a_dead_writer_releases_barriers() {
        let b = TraceBuffer::<u32>::new();
        let guard = b.writer_guard();
        b.push(1);
        let bar = b.barrier();
        drop(guard);
        bar.await;
        assert!(!b.push(2));
    }
}
