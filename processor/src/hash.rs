//! A fast keyed hasher for the state maps (group keys are short byte strings).
//!
//! SipHash (std's default) cost ~3% of a tumbling count, and its per-byte work dominates for
//! 10-20 byte keys. This hasher reads 8 bytes at a time and mixes them with a folded 64x64->128
//! multiply (the construction of foldhash/wyhash). Each map gets a random seed from std's
//! `RandomState`, so bucket placement is not predictable from outside the process; it is not a
//! cryptographic guarantee against crafted collisions, which SipHash would give at ~3x the cost.
//!
//! Iteration order of these maps is arbitrary: nothing that reaches an output may depend on it.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// A `HashMap` with [`FastState`].
pub type FastMap<K, V> = HashMap<K, V, FastState>;

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
const MUL2: u64 = 0xa076_1d64_78bd_642f;

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a).wrapping_mul(u128::from(b));
    (p as u64) ^ ((p >> 64) as u64)
}

/// Builds [`FastHasher`]s with a per-map random seed.
#[derive(Debug, Clone, Copy)]
pub struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> FastState {
        FastState {
            seed: RandomState::new().hash_one(0x6d69_6c6c_7261_6365_u64),
        }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { h: self.seed }
    }
}

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct FastHasher {
    h: u64,
}

impl FastHasher {
    #[inline]
    fn mix(&mut self, v: u64) {
        self.h = fold_mul(self.h ^ v, MUL);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length in the top byte keeps "a" and "a\0" apart.
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.mix(i as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold_mul(self.h, MUL2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_near_keys_differ() {
        let s = FastState::default();
        assert_eq!(
            s.hash_one(b"user-17".as_slice()),
            s.hash_one(b"user-17".to_vec())
        );
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            seen.insert(s.hash_one(format!("user-{i}").as_bytes()));
        }
        assert_eq!(seen.len(), 10_000);
        assert_ne!(s.hash_one(b"a".as_slice()), s.hash_one(b"a\0".as_slice()));
    }
}
