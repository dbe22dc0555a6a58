//! A bounded multi-producer, single-consumer queue that drops the OLDEST item when full.
//!
//! Used for per-peer outbound message queues. Raft tolerates message loss, and when a peer is
//! slow or unreachable its newest messages (higher terms, larger commit indexes, newer
//! heartbeats) are worth more than the ones queued long ago; so a full queue evicts its oldest
//! item and counts it in [`BoundedQueue::dropped`].
//!
//! The synchronous part (`push`, `try_pop`, `close`, counters) is built on `std::sync` or, under
//! `--cfg loom`, on loom's model-checked replacements, and is tested with loom. The async
//! [`BoundedQueue::pop`] adds a `tokio::sync::Notify` wakeup on top (not compiled under loom).

use std::collections::VecDeque;

#[cfg(loom)]
use loom::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};
#[cfg(not(loom))]
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

/// What happened to a pushed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued; nothing was dropped.
    Queued,
    /// Queued, and the oldest queued item was dropped to make room.
    DroppedOldest,
    /// The queue is closed; the item was discarded.
    Closed,
}

#[derive(Debug)]
struct Inner<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// A bounded drop-oldest queue. See the module docs.
#[derive(Debug)]
pub struct BoundedQueue<T> {
    inner: Mutex<Inner<T>>,
    capacity: usize,
    dropped: AtomicU64,
    pushed: AtomicU64,
    #[cfg(not(loom))]
    notify: tokio::sync::Notify,
}

impl<T> BoundedQueue<T> {
    /// A queue holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        BoundedQueue {
            inner: Mutex::new(Inner {
                items: VecDeque::with_capacity(capacity.min(1024)),
                closed: false,
            }),
            capacity,
            dropped: AtomicU64::new(0),
            pushed: AtomicU64::new(0),
            #[cfg(not(loom))]
            notify: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> impl std::ops::DerefMut<Target = Inner<T>> + '_ {
        // A panic while holding this lock cannot leave `Inner` inconsistent (every critical
        // section is a single VecDeque operation), so poisoning is ignored.
        match self.inner.lock() {
            Ok(g) => g,
            #[cfg(not(loom))]
            Err(p) => p.into_inner(),
            #[cfg(loom)]
            Err(_) => panic!("queue lock poisoned"),
        }
    }

    /// Adds an item, evicting the oldest one if the queue is full.
    pub fn push(&self, item: T) -> PushOutcome {
        let outcome = {
            let mut inner = self.lock();
            if inner.closed {
                return PushOutcome::Closed;
            }
            let outcome = if inner.items.len() >= self.capacity {
                inner.items.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
                PushOutcome::DroppedOldest
            } else {
                PushOutcome::Queued
            };
            inner.items.push_back(item);
            self.pushed.fetch_add(1, Ordering::Relaxed);
            outcome
        };
        #[cfg(not(loom))]
        self.notify.notify_one();
        outcome
    }

    /// Takes the oldest item, if any.
    pub fn try_pop(&self) -> Option<T> {
        self.lock().items.pop_front()
    }

    /// Closes the queue: later pushes are discarded; queued items can still be popped.
    pub fn close(&self) {
        self.lock().closed = true;
        #[cfg(not(loom))]
        self.notify.notify_one();
    }

    /// Whether [`BoundedQueue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Items currently queued.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items evicted because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Items accepted by `push` (including those later evicted).
    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }
}

#[cfg(not(loom))]
impl<T> BoundedQueue<T> {
    /// Waits for the oldest item; `None` once the queue is closed and drained.
    ///
    /// Single consumer. Cancel-safe: an item is removed only when the future completes.
    pub async fn pop(&self) -> Option<T> {
        loop {
            {
                let mut inner = self.lock();
                if let Some(item) = inner.items.pop_front() {
                    return Some(item);
                }
                if inner.closed {
                    return None;
                }
            }
            // `notify_one` stores a permit when no one is waiting, so a push between the check
            // above and this await is not missed.
            self.notify.notified().await;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn drops_the_oldest_and_counts() {
        let q = BoundedQueue::new(3);
        for i in 0..5 {
            let o = q.push(i);
            assert_eq!(
                o,
                if i < 3 {
                    PushOutcome::Queued
                } else {
                    PushOutcome::DroppedOldest
                }
            );
        }
        assert_eq!(q.dropped(), 2);
        assert_eq!(q.pushed(), 5);
        assert_eq!(q.len(), 3);
        assert_eq!(
            (q.try_pop(), q.try_pop(), q.try_pop(), q.try_pop()),
            (Some(2), Some(3), Some(4), None)
        );
        q.close();
        assert_eq!(q.push(9), PushOutcome::Closed);
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn pop_waits_for_push_and_ends_on_close() {
        let q = Arc::new(BoundedQueue::new(2));
        let q2 = q.clone();
        let consumer = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(x) = q2.pop().await {
                got.push(x);
            }
            got
        });
        for i in 0..100 {
            // Keep the queue from overflowing so that nothing is dropped.
            while q.len() >= 2 {
                tokio::task::yield_now().await;
            }
            q.push(i);
        }
        while !q.is_empty() {
            tokio::task::yield_now().await;
        }
        q.close();
        let got = consumer.await.unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }
}
