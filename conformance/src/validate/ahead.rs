//! The first stage of a validation, on a thread of its own: the run's
//! events in replay order (merging the files, which waits on the sends
//! seen), each with its message identity checked ([`NetworkCheck`]) and,
//! where that holds, the global invariants ([`Invariants`]), a few batches
//! ahead of the replay that consumes them.
//!
//! The checks of an event depend only on the events before it, so checking
//! ahead changes no verdict: the consumer stops at the first event any
//! check rejects, and what the stage did past it is thrown away with it.

use std::sync::mpsc;

use raft_trace::{Event, NodeEvent};

use super::input::Item;
use super::invariants::{Invariants, Stop};
use super::network::NetworkCheck;
use super::InputError;

/// Events per batch handed to the consumer.
const BATCH: usize = 256;
/// Batches the stage may be ahead (bounded memory).
const BATCHES_AHEAD: usize = 8;

/// One event of the stream with its message identity and the global
/// invariants checked.
pub(super) struct Checked {
    pub item: Item,
    /// The message identity check of a send or receive, then, if it holds,
    /// the invariants' check of a node event (`Ok` for client events);
    /// boxed, as checks rarely fail and events move in batches.
    pub checks: Result<(), Box<Stop>>,
    /// Messages sent and not yet received, after this event.
    pub undelivered: usize,
}

type Batch = Vec<Result<Checked, InputError>>;

/// Events the consumer is done with, handed back to be freed on the stage's
/// thread: freeing an event is as much work as a small check, and the
/// consumer's replay is the slowest part of a validation.
type Discarded = Vec<Box<NodeEvent>>;

/// The consumer's end of the stage.
pub(super) struct Ahead {
    batches: mpsc::Receiver<Batch>,
    batch: std::vec::IntoIter<Result<Checked, InputError>>,
    discard: mpsc::Sender<Discarded>,
    discarded: Discarded,
}

impl Ahead {
    /// Starts the stage on a thread of `scope`: `next` gives the events in
    /// replay order (it may consult the messages sent so far). The stage
    /// ends at the stream's end, after its first error, or once the
    /// consumer is dropped.
    pub fn start<'scope, 'env, F>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        mut network: NetworkCheck,
        mut invariants: Invariants,
        mut next: F,
    ) -> Ahead
    where
        F: FnMut(&NetworkCheck) -> Result<Option<Item>, InputError> + Send + 'scope,
    {
        let (tx, batches) = mpsc::sync_channel::<Batch>(BATCHES_AHEAD);
        let (discard, discarded) = mpsc::channel::<Discarded>();
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                let (checked, end) = match next(&network) {
                    Ok(Some(item)) => {
                        let result = match &item {
                            Item::Node(_, e) => match &e.event {
                                Event::Send(m) => network.send(&m.msg),
                                Event::Receive(m) => network.receive(&m.msg),
                                _ => Ok(()),
                            }
                            .map_err(Stop::Violation)
                            .and_then(|()| invariants.step(e))
                            .map_err(Box::new),
                            Item::Client(..) => Ok(()),
                        };
                        let undelivered = network.undelivered();
                        (
                            Some(Ok(Checked {
                                item,
                                checks: result,
                                undelivered,
                            })),
                            false,
                        )
                    }
                    Ok(None) => (None, true),
                    Err(e) => (Some(Err(e)), true),
                };
                batch.extend(checked);
                if batch.len() == BATCH || end {
                    // Events come back at the pace they go out (each
                    // discarded batch is dropped here).
                    while discarded.try_recv().is_ok() {}
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if (!full.is_empty() && tx.send(full).is_err()) || end {
                        // The message table is freed here, on this thread,
                        // while the consumer finishes.
                        return;
                    }
                }
            }
        });
        Ahead {
            batches,
            batch: Vec::new().into_iter(),
            discard,
            discarded: Vec::with_capacity(BATCH),
        }
    }

    /// Frees `event` on the stage's thread, once a batch of them is
    /// together (on this one if the stage has ended).
    pub fn discard(&mut self, event: Box<NodeEvent>) {
        self.discarded.push(event);
        if self.discarded.len() == BATCH {
            let full = std::mem::replace(&mut self.discarded, Vec::with_capacity(BATCH));
            // A stage that has ended hands the batch back, dropped here.
            let _ = self.discard.send(full);
        }
    }

    /// The next event, `None` at the end of the stream.
    pub fn next(&mut self) -> Result<Option<Checked>, InputError> {
        loop {
            if let Some(c) = self.batch.next() {
                return c.map(Some);
            }
            match self.batches.recv() {
                Ok(b) => self.batch = b.into_iter(),
                // The stage ended: nothing more.
                Err(_) => return Ok(None),
            }
        }
    }
}
