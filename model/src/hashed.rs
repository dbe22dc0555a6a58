//! A value with its hash computed once, when it is built.
//!
//! stateright fingerprints every state it generates by hashing all of it:
//! every actor's state and every actor's storage. A step changes one actor,
//! so hashing the others again is wasted work. Actor states and storages are
//! therefore kept as [`Hashed`] values: `Hash` writes the value's own 64-bit
//! hash, computed once with a fixed-key hasher (the same in every run, so
//! paths replay), and equality is the value's.
//!
//! Messages in flight are [`Hashed`] too ([`crate::actor::Wire`]), and
//! shared: stateright copies and hashes its whole network for every state
//! it generates.
//!
//! This is a speed device only: two states are told apart exactly as well as
//! by hashing the value in place (64 bits either way), and nothing else
//! about the model changes. The value cannot be changed in place, so the
//! cached hash cannot go stale: build a new [`Hashed`] instead.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::Deref;

/// A value and its hash. See the module documentation.
#[derive(Clone)]
pub struct Hashed<T> {
    hash: u64,
    value: T,
}

/// The fixed keys of the hasher (any constants do; they only have to be
/// the same in every run).
fn hasher() -> ahash::AHasher {
    ahash::RandomState::with_seeds(
        0x5241_4654_4348_4543,
        0x4b5f_4841_5348_4544,
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
    )
    .build_hasher()
}

impl<T: Hash> Hashed<T> {
    pub fn new(value: T) -> Hashed<T> {
        let mut h = hasher();
        value.hash(&mut h);
        Hashed {
            hash: h.finish(),
            value,
        }
    }
}

impl<T> Hashed<T> {
    /// The value's hash.
    pub fn hash_value(&self) -> u64 {
        self.hash
    }

    /// The value, to change it (then build a new `Hashed`).
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Hashed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Hash for Hashed<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<T: PartialEq> PartialEq for Hashed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.value == other.value
    }
}

impl<T: Eq> Eq for Hashed<T> {}

/// Ordered by value, as the value itself: stateright sorts the actions it
/// enabled (deliveries name their messages), and that order, hence the
/// order of exploration, stays what it was without the cached hash.
impl<T: PartialOrd> PartialOrd for Hashed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl<T: Ord> Ord for Hashed<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Hashed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint<T: Hash>(t: &T) -> u64 {
        let mut h = hasher();
        t.hash(&mut h);
        h.finish()
    }

    #[test]
    fn equal_values_hash_alike_and_different_ones_differ() {
        let a = Hashed::new((1u64, vec![2u64, 3]));
        let b = Hashed::new((1u64, vec![2u64, 3]));
        let c = Hashed::new((1u64, vec![3u64, 2]));
        assert_eq!(a, b);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(a, c);
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert_eq!(format!("{a:?}"), "(1, [2, 3])");
        assert_eq!(a.into_inner(), (1, vec![2, 3]));
    }

    #[test]
    fn order_is_the_values_whatever_the_hashes() {
        // stateright sorts enabled actions, which name their messages: the
        // order, and so the order of exploration, must not depend on hashes.
        let values: Vec<u64> = (0..64).collect();
        let mut hashed: Vec<Hashed<u64>> = values.iter().rev().map(|&v| Hashed::new(v)).collect();
        hashed.sort();
        assert_eq!(hashed.iter().map(|h| **h).collect::<Vec<_>>(), values);
        let by_hash = {
            let mut h = hashed.clone();
            h.sort_by_key(|x| x.hash_value());
            h
        };
        assert_ne!(
            by_hash, hashed,
            "some hashes out of value order, else the test shows nothing"
        );
    }
}
