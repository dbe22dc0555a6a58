//! loom model checks of the per-peer outbound queue (`transport::queue::BoundedQueue`).
//!
//! Run with: `RUSTFLAGS="--cfg loom" cargo test -p raftkv --release loom`
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use raftkv::transport::queue::{BoundedQueue, PushOutcome};

/// Two producers push two items each into a queue of capacity 2 while a consumer pops.
/// In every interleaving: each item is popped at most once, every pushed item is either
/// popped, still queued, or counted as dropped, the drop count matches the producers'
/// `DroppedOldest` outcomes, and each producer's items come out in the order pushed.
#[test]
fn loom_queue_accounts_for_every_item() {
    let mut model = loom::model::Builder::new();
    // Bounding preemptions keeps the run to seconds; bugs in practice need few preemptions.
    model.preemption_bound = Some(3);
    model.check(|| {
        let q = Arc::new(BoundedQueue::new(2));
        let producers: Vec<_> = (0..2u8)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut drops = 0u64;
                    for i in 0..2u8 {
                        match q.push((p, i)) {
                            PushOutcome::Queued => {}
                            PushOutcome::DroppedOldest => drops += 1,
                            PushOutcome::Closed => panic!("queue is not closed"),
                        }
                    }
                    drops
                })
            })
            .collect();
        let consumer = {
            let q = q.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                for _ in 0..2 {
                    if let Some(x) = q.try_pop() {
                        got.push(x);
                    }
                }
                got
            })
        };
        let drops: u64 = producers.into_iter().map(|h| h.join().unwrap()).sum();
        let mut got = consumer.join().unwrap();
        assert!(q.len() <= 2, "capacity exceeded");
        while let Some(x) = q.try_pop() {
            got.push(x);
        }
        assert_eq!(q.dropped(), drops);
        assert_eq!(q.pushed(), 4);
        assert_eq!(
            got.len() as u64 + drops,
            4,
            "items lost or duplicated: {got:?}, {drops} dropped"
        );
        for p in 0..2u8 {
            let mine: Vec<u8> = got
                .iter()
                .filter(|(q, _)| *q == p)
                .map(|(_, i)| *i)
                .collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "producer {p} out of order: {got:?}"
            );
        }
    });
}

/// A push racing with `close`: a push that reports `Queued` must be poppable after the close,
/// and a push after the close must report `Closed`.
#[test]
fn loom_queue_close_races_with_push() {
    loom::model(|| {
        let q = Arc::new(BoundedQueue::new(4));
        let pusher = {
            let q = q.clone();
            thread::spawn(move || q.push(1u32))
        };
        let closer = {
            let q = q.clone();
            thread::spawn(move || q.close())
        };
        let outcome = pusher.join().unwrap();
        closer.join().unwrap();
        assert!(q.is_closed());
        assert_eq!(q.push(2), PushOutcome::Closed);
        match outcome {
            PushOutcome::Queued => assert_eq!(q.try_pop(), Some(1)),
            PushOutcome::Closed => assert_eq!(q.try_pop(), None),
            PushOutcome::DroppedOldest => panic!("nothing to drop"),
        }
        assert_eq!(q.try_pop(), None);
    });
}
