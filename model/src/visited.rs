//! The depth-first search's visited set: the 64-bit fingerprints of the
//! states (or classes) it has seen, shared by its threads.
//!
//! A fingerprint is already a hash, so it is its own index: the set is 64
//! shards chosen by a fingerprint's top bits, each a mutex over a table of
//! the fingerprints themselves, probed linearly from the slot its low bits
//! name. A probe reads one cache line, where a general hash set of `u64`
//! reads two (its control bytes, then the slot): the insert was the largest
//! single cost of the search (15% of the samples with a `DashSet`, on
//! tables of millions of fingerprints that no cache holds). A slot of 0 is
//! empty; the fingerprint 0 is kept aside. Tables double at 70% full.

use std::sync::Mutex;

/// log2 of the number of shards.
const SHARD_BITS: u32 = 6;
/// Slots of a new shard's table (a power of two).
const FIRST_SLOTS: usize = 1 << 10;

/// A set of fingerprints that threads insert into at once.
pub struct Visited {
    shards: Box<[Mutex<Table>]>,
}

struct Table {
    slots: Vec<u64>,
    /// Fingerprints held in `slots`.
    len: usize,
    /// Whether the fingerprint 0 (the empty slot's value) was inserted.
    zero: bool,
}

impl Default for Visited {
    fn default() -> Self {
        Visited {
            shards: (0..1 << SHARD_BITS)
                .map(|_| {
                    Mutex::new(Table {
                        slots: vec![0; FIRST_SLOTS],
                        len: 0,
                        zero: false,
                    })
                })
                .collect(),
        }
    }
}

impl Visited {
    /// Adds `print`; true if it was not in the set.
    pub fn insert(&self, print: u64) -> bool {
        let shard = &self.shards[(print >> (64 - SHARD_BITS)) as usize];
        // A panic never happens with the lock held (the table's code does
        // not panic), so a poisoned lock's table is whole.
        let mut table = shard.lock().unwrap_or_else(|e| e.into_inner());
        table.insert(print)
    }

    /// How many fingerprints the set holds.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let t = s.lock().unwrap_or_else(|e| e.into_inner());
                t.len + usize::from(t.zero)
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Table {
    fn insert(&mut self, print: u64) -> bool {
        if print == 0 {
            return !std::mem::replace(&mut self.zero, true);
        }
        if (self.len + 1) * 10 > self.slots.len() * 7 {
            let mut bigger = vec![0; self.slots.len() * 2];
            for &p in self.slots.iter().filter(|&&p| p != 0) {
                place(&mut bigger, p);
            }
            self.slots = bigger;
        }
        let added = place(&mut self.slots, print);
        self.len += usize::from(added);
        added
    }
}

/// Puts nonzero `print` in the first slot from its own that holds it or is
/// empty; true if that slot was empty. `slots` has a power-of-two length
/// and at least one empty slot.
fn place(slots: &mut [u64], print: u64) -> bool {
    let mask = slots.len() - 1;
    let mut i = print as usize & mask;
    loop {
        match slots[i] {
            0 => {
                slots[i] = print;
                return true;
            }
            p if p == print => return false,
            _ => i = (i + 1) & mask,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::*;

    /// A fixed xorshift sequence, with small values and collisions in the
    /// low and top bits mixed in.
    fn prints(n: usize, mut x: u64) -> Vec<u64> {
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match i % 5 {
                    0 => x % 3000,         // small: one shard, dense slots
                    1 => x & !0xffff_ffff, // low bits 0: one home slot
                    2 => x | (0x3f << 58), // the last shard
                    _ => x,
                }
            })
            .collect()
    }

    #[test]
    fn it_answers_as_a_hash_set_does() {
        let v = Visited::default();
        let mut h = HashSet::new();
        for p in prints(200_000, 88172645463325252)
            .into_iter()
            .chain([0, 0, 1, u64::MAX, u64::MAX])
        {
            assert_eq!(v.insert(p), h.insert(p), "{p}");
        }
        assert_eq!(v.len(), h.len());
        // Every one is still found after the tables grew.
        for &p in &h {
            assert!(!v.insert(p));
        }
        assert_eq!(v.len(), h.len());
    }

    #[test]
    fn the_empty_set() {
        let v = Visited::default();
        assert!(v.is_empty());
        assert!(v.insert(0));
        assert!(!v.insert(0));
        assert_eq!(v.len(), 1);
    }

    /// Threads inserting overlapping fingerprints at once: each one is new
    /// to exactly one of them.
    #[test]
    fn concurrent_inserts_are_new_once() {
        let v = Arc::new(Visited::default());
        let all = prints(100_000, 2463534242);
        let distinct: HashSet<u64> = all.iter().copied().collect();
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (v, mut mine) = (Arc::clone(&v), all.clone());
                mine.rotate_left(t * 25_000);
                std::thread::spawn(move || mine.into_iter().filter(|&p| v.insert(p)).count())
            })
            .collect();
        let new: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(new, distinct.len());
        assert_eq!(v.len(), distinct.len());
    }
}
