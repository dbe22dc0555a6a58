//! The map of requests waiting for their outcome (proposals waiting for
//! commit, reads waiting for their read index).
//!
//! An HTTP handler [`Waiters::register`]s a [`Ticket`] *before* it hands its
//! request (carrying [`Ticket::id`]) to the node loop, then awaits the ticket.
//! The node loop [`Waiters::complete`]s the id with the outcome once it is
//! known. The completion may come before the handler first polls its ticket
//! (the handler was descheduled after sending): the outcome is kept in the
//! slot, never lost. On shutdown [`Waiters::close`] wakes every waiter with
//! [`Stopped`]; registering after that fails at once. Dropping a ticket (the
//! handler timed out) removes its slot, and a later completion of that id is
//! ignored.
//!
//! Checked by loom in `impl/tests/loom_node.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::sync::{lock, Mutex, Stopped};

enum Slot<T> {
    /// No outcome yet; the waker of the last poll.
    Waiting(Option<Waker>),
    /// The outcome, not yet taken by the ticket.
    Done(T),
}

struct Inner<T> {
    next_id: u64,
    /// Ordered (not hashed) so that wakeups happen in a deterministic order,
    /// which loom requires.
    slots: BTreeMap<u64, Slot<T>>,
    closed: bool,
}

/// Requests waiting for an outcome of type `T`, keyed by an id. See the
/// module docs.
pub struct Waiters<T> {
    inner: Mutex<Inner<T>>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            inner: Mutex::new(Inner {
                next_id: 0,
                slots: BTreeMap::new(),
                closed: false,
            }),
        }
    }
}

impl<T> Waiters<T> {
    /// An empty, open map.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a waiter; fails once [`Waiters::close`] was called.
    pub fn register(self: &Arc<Self>) -> Result<Ticket<T>, Stopped> {
        let mut g = lock(&self.inner);
        if g.closed {
            return Err(Stopped);
        }
        g.next_id += 1;
        let id = g.next_id;
        g.slots.insert(id, Slot::Waiting(None));
        Ok(Ticket {
            id,
            waiters: self.clone(),
        })
    }

    /// Delivers `outcome` to the waiter `id`. Returns false (and drops the
    /// outcome) when there is no such waiter (its ticket was dropped) or it
    /// already has an outcome: a waiter gets exactly one, the first.
    pub fn complete(&self, id: u64, outcome: T) -> bool {
        let waker = {
            let mut g = lock(&self.inner);
            match g.slots.get_mut(&id) {
                Some(slot @ Slot::Waiting(_)) => {
                    match std::mem::replace(slot, Slot::Done(outcome)) {
                        Slot::Waiting(w) => w,
                        Slot::Done(_) => unreachable!("matched Waiting"),
                    }
                }
                _ => return false,
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Stops the map: every waiter without an outcome is woken and gets
    /// [`Stopped`]; outcomes already delivered are still handed out.
    pub fn close(&self) {
        let wakers: Vec<Waker> = {
            let mut g = lock(&self.inner);
            g.closed = true;
            g.slots
                .values_mut()
                .filter_map(|s| match s {
                    Slot::Waiting(w) => w.take(),
                    Slot::Done(_) => None,
                })
                .collect()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Whether [`Waiters::close`] was called.
    pub fn is_closed(&self) -> bool {
        lock(&self.inner).closed
    }

    /// Registered waiters whose ticket is still alive.
    pub fn len(&self) -> usize {
        lock(&self.inner).slots.len()
    }

    /// Whether no ticket is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A registered waiter: a future of its outcome, or [`Stopped`].
pub struct Ticket<T> {
    id: u64,
    waiters: Arc<Waiters<T>>,
}

impl<T> Ticket<T> {
    /// The id the node loop completes.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<T> Future for Ticket<T> {
    type Output = Result<T, Stopped>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut g = lock(&self.waiters.inner);
        let closed = g.closed;
        // Checking for the outcome and leaving the waker happen under one
        // lock: a completion in between would otherwise wake nobody.
        match g.slots.get_mut(&self.id) {
            Some(Slot::Waiting(w)) if !closed => {
                if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *w = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Some(Slot::Waiting(_)) | None => {
                g.slots.remove(&self.id);
                Poll::Ready(Err(Stopped))
            }
            Some(Slot::Done(_)) => match g.slots.remove(&self.id) {
                Some(Slot::Done(v)) => Poll::Ready(Ok(v)),
                _ => unreachable!("matched Done"),
            },
        }
    }
}

impl<T> Drop for Ticket<T> {
    fn drop(&mut self) {
        lock(&self.waiters.inner).slots.remove(&self.id);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outcome_before_the_first_poll_is_kept() {
        let w = Waiters::<u32>::new();
        let a = w.register().unwrap();
        let b = w.register().unwrap();
        assert!(w.complete(b.id(), 2));
        assert!(!w.complete(b.id(), 3), "a second outcome is refused");
        assert!(w.complete(a.id(), 1));
        assert_eq!((a.await, b.await), (Ok(1), Ok(2)));
        assert!(w.is_empty());
    }

    #[tokio::test]
    async fn dropped_ticket_frees_its_slot_and_close_stops_the_rest() {
        let w = Waiters::<u32>::new();
        let a = w.register().unwrap();
        let id = a.id();
        drop(a);
        assert!(w.is_empty());
        assert!(!w.complete(id, 1));
        let b = w.register().unwrap();
        let c = w.register().unwrap();
        w.complete(c.id(), 7);
        let h = tokio::spawn(b);
        tokio::task::yield_now().await;
        w.close();
        assert_eq!(h.await.unwrap(), Err(Stopped));
        assert_eq!(c.await, Ok(7), "an outcome delivered before close is kept");
        assert!(w.register().is_err());
    }
}
