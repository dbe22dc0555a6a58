//! loom model checks of the node's shared pieces (`raftkv::node::{waiters,
//! applied, trace_buffer, shutdown}`): the map of requests waiting for their
//! outcome, the apply notifier, the trace buffer with its barrier, and
//! shutdown. Each test explores the interleavings of a few threads (bounded
//! preemptions keep the runs to seconds) and fails on a wrong outcome or on a
//! deadlock (a waiter never woken).
//!
//! Run with: `RUSTFLAGS="--cfg loom" cargo test -p raftkv --release --test loom_node`
#![cfg(loom)]

use std::sync::Arc;

use loom::future::block_on;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Mutex;
use loom::thread;
use raftkv::node::applied::AppliedIndex;
use raftkv::node::shutdown::StopSignal;
use raftkv::node::trace_buffer::TraceBuffer;
use raftkv::node::waiters::Waiters;
use raftkv::node::Stopped;

fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemptions);
    b.check(f);
}

/// Two handlers register and wait while the node loop completes them in the
/// opposite order; one handler registers concurrently with the loop (which
/// learns the id only once it is published, like a request on the channel).
/// Every handler gets exactly its own outcome, whether the completion comes
/// before or after its first poll.
#[test]
fn loom_waiters_each_gets_its_own_outcome() {
    model(3, || {
        let w = Waiters::<u64>::new();
        let a = w.register().unwrap();
        let a_id = a.id();
        let published = Arc::new(AtomicU64::new(0));
        let h_a = thread::spawn(move || block_on(a));
        let h_b = {
            let (w, published) = (w.clone(), published.clone());
            thread::spawn(move || {
                let b = w.register().unwrap();
                published.store(b.id(), Ordering::Release);
                let id = b.id();
                (id, block_on(b))
            })
        };
        // The node loop.
        let b_id = loop {
            match published.load(Ordering::Acquire) {
                0 => thread::yield_now(),
                id => break id,
            }
        };
        assert!(w.complete(b_id, b_id * 100));
        assert!(w.complete(a_id, a_id * 100));
        assert!(!w.complete(a_id, 0), "a second outcome must be refused");
        assert_eq!(h_a.join().unwrap(), Ok(a_id * 100));
        let (id, got) = h_b.join().unwrap();
        assert_eq!((id, got), (b_id, Ok(b_id * 100)));
        assert!(w.is_empty(), "slots leaked");
    });
}

/// Shutdown racing with completions and with a late registration: every
/// waiter returns (none hangs); a completion reported as delivered is the
/// waiter's outcome, any other waiter gets `Stopped`; a registration after
/// the close fails.
#[test]
fn loom_waiters_close_wakes_every_waiter() {
    model(3, || {
        let w = Waiters::<u64>::new();
        let a = w.register().unwrap();
        let b = w.register().unwrap();
        let (a_id, b_id) = (a.id(), b.id());
        let h_a = thread::spawn(move || block_on(a));
        let late = {
            let w = w.clone();
            thread::spawn(move || match w.register() {
                Ok(t) => block_on(t),
                Err(e) => Err(e),
            })
        };
        let completer = {
            let w = w.clone();
            thread::spawn(move || w.complete(a_id, 7))
        };
        w.close();
        let delivered = completer.join().unwrap();
        let got_a = h_a.join().unwrap();
        if delivered {
            assert_eq!(got_a, Ok(7), "a delivered outcome was lost");
        } else {
            assert_eq!(got_a, Err(Stopped));
        }
        assert_eq!(late.join().unwrap(), Err(Stopped));
        // A registered waiter first polled after the close is not left hanging.
        assert_eq!(block_on(b), Err(Stopped));
        assert!(!w.complete(b_id, 1));
        assert!(w.register().is_err());
        assert!(w.is_empty(), "slots leaked");
    });
}

/// A read waits for index 2 while the node loop applies 1 then 2: the
/// waiter's check and its registration are one step, so the advance that
/// satisfies it is never missed (a lost wakeup is a loom deadlock).
#[test]
fn loom_applied_wakeup_is_never_lost() {
    model(3, || {
        let n = AppliedIndex::new(0);
        let readers: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|i| {
                let n = n.clone();
                thread::spawn(move || (i, block_on(n.wait(i))))
            })
            .collect();
        n.advance(1);
        n.advance(2);
        for r in readers {
            let (i, got) = r.join().unwrap();
            let applied = got.expect("not closed");
            assert!(applied >= i, "woken at {applied} for {i}");
        }
        assert_eq!(n.waiting(), 0);
    });
}

/// Closing the notifier wakes a waiter that the applied index will never
/// reach, whether it registered before or after the close.
#[test]
fn loom_applied_close_wakes_waiters() {
    model(3, || {
        let n = AppliedIndex::new(0);
        let r = {
            let n = n.clone();
            thread::spawn(move || block_on(n.wait(5)))
        };
        n.advance(1);
        n.close();
        assert_eq!(r.join().unwrap(), Err(Stopped));
        assert_eq!(n.waiting(), 0);
    });
}

/// The node loop pushes events and awaits a barrier while the writer thread
/// writes batches: when the barrier returns every event pushed before it is
/// in the file. On close the writer drains the rest and exits.
#[test]
fn loom_trace_barrier_waits_for_earlier_events() {
    model(3, || {
        let buf = TraceBuffer::<u32>::new();
        let file = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let (buf, file) = (buf.clone(), file.clone());
            thread::spawn(move || {
                let _gone = buf.writer_guard();
                let mut batch = Vec::new();
                while let Some(upto) = buf.next_batch(&mut batch) {
                    file.lock().unwrap().append(&mut batch);
                    buf.written(upto);
                }
            })
        };
        buf.push(1);
        buf.push(2);
        block_on(buf.barrier());
        assert_eq!(
            *file.lock().unwrap(),
            vec![1, 2],
            "barrier returned before its events were written"
        );
        buf.push(3);
        buf.close();
        assert!(!buf.push(4), "closed buffer accepted an event");
        writer.join().unwrap();
        assert_eq!(*file.lock().unwrap(), vec![1, 2, 3], "events lost at close");
        assert_eq!(buf.counts(), (3, 3));
    });
}

/// A barrier pending when the writer dies is released (the node does not
/// hang on a dead writer).
#[test]
fn loom_trace_barrier_released_by_dead_writer() {
    model(3, || {
        let buf = TraceBuffer::<u32>::new();
        let guard = buf.writer_guard();
        buf.push(1);
        let bar = buf.barrier();
        let dies = thread::spawn(move || drop(guard));
        block_on(bar);
        dies.join().unwrap();
        assert!(!buf.push(2));
    });
}

/// The whole shutdown: a stop signal from outside while handlers wait for a
/// proposal and for a read's index to be applied, and the node loop (waiting
/// on the stop signal) completes one proposal. The loop then closes the
/// waiters and the notifier, as `node::server::run` does. Nobody hangs; the
/// completed proposal keeps its outcome; the others get `Stopped`.
#[test]
fn loom_shutdown_wakes_every_waiter() {
    model(2, || {
        let stop = StopSignal::new();
        let proposals = Waiters::<u64>::new();
        let applied = AppliedIndex::new(0);
        let done = proposals.register().unwrap();
        let pending = proposals.register().unwrap();
        let done_id = done.id();
        let node_loop = {
            let (stop, proposals, applied) = (stop.clone(), proposals.clone(), applied.clone());
            thread::spawn(move || {
                assert!(proposals.complete(done_id, 42));
                applied.advance(1);
                block_on(stop.wait());
                proposals.close();
                applied.close();
            })
        };
        let handlers = {
            let applied = applied.clone();
            thread::spawn(move || {
                let read = block_on(applied.wait(3));
                (block_on(pending), read)
            })
        };
        stop.stop();
        assert_eq!(block_on(done), Ok(42));
        let (p, r) = handlers.join().unwrap();
        assert_eq!((p, r), (Err(Stopped), Err(Stopped)));
        node_loop.join().unwrap();
        assert!(stop.is_stopped());
        assert!(proposals.is_empty());
    });
}

/// A stop given concurrently with async and blocking waits wakes both.
#[test]
fn loom_stop_signal_is_never_missed() {
    model(3, || {
        let stop = StopSignal::new();
        let a = {
            let s = stop.clone();
            thread::spawn(move || block_on(s.wait()))
        };
        let b = {
            let s = stop.clone();
            thread::spawn(move || s.wait_blocking())
        };
        stop.stop();
        a.join().unwrap();
        b.join().unwrap();
    });
}
