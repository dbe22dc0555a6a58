//! The apply notifier: wakes the tasks waiting for the state machine to
//! reach an index.
//!
//! A linearizable read is served once the node has applied at least its read
//! index: the HTTP handler gets the read index confirmed by the node loop,
//! then awaits [`AppliedIndex::wait`] and reads the shared state machine. The
//! node loop calls [`AppliedIndex::advance`] after each batch it applies (or
//! snapshot it installs). A waiter checks the applied index and leaves its
//! waker in one critical section, so an `advance` racing with a new waiter is
//! never missed. [`AppliedIndex::close`] (shutdown) wakes every waiter with
//! [`Stopped`].
//!
//! Checked by loom in `impl/tests/loom_node.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::sync::{lock, Mutex, Stopped};

struct Inner {
    applied: u64,
    closed: bool,
    next_id: u64,
    /// Waiters by (index awaited, waiter id).
    waiters: BTreeMap<(u64, u64), Waker>,
}

/// The applied index, with waiters. See the module docs.
pub struct AppliedIndex {
    inner: Mutex<Inner>,
}

impl AppliedIndex {
    /// A notifier starting at `applied`.
    pub fn new(applied: u64) -> Arc<Self> {
        Arc::new(AppliedIndex {
            inner: Mutex::new(Inner {
                applied,
                closed: false,
                next_id: 0,
                waiters: BTreeMap::new(),
            }),
        })
    }

    /// The applied index.
    pub fn get(&self) -> u64 {
        lock(&self.inner).applied
    }

    /// Records that everything up to `index` is applied (an index lower than
    /// the current one is ignored) and wakes the waiters it satisfies.
    pub fn advance(&self, index: u64) {
        let woken = {
            let mut g = lock(&self.inner);
            if index <= g.applied {
                return;
            }
            g.applied = index;
            let rest = g.waiters.split_off(&(index + 1, 0));
            std::mem::replace(&mut g.waiters, rest)
        };
        for (_, w) in woken {
            w.wake();
        }
    }

    /// Wakes every waiter with [`Stopped`]; later waits fail at once unless
    /// already satisfied.
    pub fn close(&self) {
        let woken = {
            let mut g = lock(&self.inner);
            g.closed = true;
            std::mem::take(&mut g.waiters)
        };
        for (_, w) in woken {
            w.wake();
        }
    }

    /// Resolves with the applied index once it is at least `index`.
    pub fn wait(self: &Arc<Self>, index: u64) -> WaitApplied {
        let id = {
            let mut g = lock(&self.inner);
            g.next_id += 1;
            g.next_id
        };
        WaitApplied {
            notifier: self.clone(),
            index,
            id,
        }
    }

    /// Tasks currently waiting.
    pub fn waiting(&self) -> usize {
        lock(&self.inner).waiters.len()
    }
}

/// The future of [`AppliedIndex::wait`].
pub struct WaitApplied {
    notifier: Arc<AppliedIndex>,
    index: u64,
    id: u64,
}

impl Future for WaitApplied {
    type Output = Result<u64, Stopped>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let key = (self.index, self.id);
        let mut g = lock(&self.notifier.inner);
        if g.applied >= self.index {
            g.waiters.remove(&key);
            return Poll::Ready(Ok(g.applied));
        }
        if g.closed {
            return Poll::Ready(Err(Stopped));
        }
        // Still under the lock that saw `applied < index`: an `advance`
        // cannot slip in between and miss this waker.
        g.waiters.insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for WaitApplied {
    fn drop(&mut self) {
        lock(&self.notifier.inner)
            .waiters
            .remove(&(self.index, self.id));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_waiters_in_order_of_index() {
        let n = AppliedIndex::new(3);
        assert_eq!(n.wait(2).await, Ok(3));
        let n2 = n.clone();
        let a = tokio::spawn(async move { n2.wait(5).await });
        let n3 = n.clone();
        let b = tokio::spawn(async move { n3.wait(9).await });
        while n.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        n.advance(6);
        assert_eq!(a.await.unwrap(), Ok(6));
        assert_eq!(n.waiting(), 1);
        n.advance(4); // lower: ignored
        assert_eq!(n.get(), 6);
        n.close();
        assert_eq!(b.await.unwrap(), Err(Stopped));
        assert_eq!(n.waiting(), 0);
    }
}
