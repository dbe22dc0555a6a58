//! The synchronization primitives of the node's shared pieces: `std::sync`
//! normally, loom's model-checked replacements under `--cfg loom` (see
//! `impl/tests/loom_node.rs`).

#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks `m`. Every critical section of the node's pieces leaves its state
/// consistent at each step, so a panic elsewhere cannot corrupt it: poisoning
/// is ignored (under loom a poisoned lock is a test failure).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        #[cfg(not(loom))]
        Err(p) => p.into_inner(),
        #[cfg(loom)]
        Err(_) => panic!("lock poisoned"),
    }
}

/// Waits on `cv`, with the same poisoning policy as [`lock`].
pub(crate) fn wait<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    match cv.wait(g) {
        Ok(g) => g,
        #[cfg(not(loom))]
        Err(p) => p.into_inner(),
        #[cfg(loom)]
        Err(_) => panic!("lock poisoned"),
    }
}

/// The node (or the piece) is stopping: the awaited outcome will never come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node is stopping")]
pub struct Stopped;
