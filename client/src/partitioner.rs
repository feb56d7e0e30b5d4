//! Choosing a partition for a record, as the Java client's default does:
//! keyed records by `toPositive(murmur2(key)) % partitions`; keyless records
//! stick to one partition until its batch is sent, then move on round-robin.

use crate::murmur2::{murmur2, to_positive};

/// Partition for a keyed record.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    to_positive(murmur2(key)) % partitions
}

/// The sticky choice for keyless records of one topic.
#[derive(Debug, Clone, Default)]
pub struct StickyPartitioner {
    current: Option<i32>,
    next: u32,
}

impl StickyPartitioner {
    /// Starts round-robin at `seed` (pass something varying, e.g. the time, so
    /// many producers do not all pile onto partition 0).
    pub fn new(seed: u32) -> Self {
        Self {
            current: None,
            next: seed,
        }
    }

    /// The partition keyless records go to now.
    pub fn partition(&mut self, partitions: i32) -> i32 {
        if partitions <= 0 {
            return 0;
        }
        match self.current {
            Some(p) if p < partitions => p,
            _ => {
                let p = (self.next % partitions as u32) as i32;
                self.next = self.next.wrapping_add(1);
                self.current = Some(p);
                p
            }
        }
    }

    /// Called when the sticky partition's batch is closed: move to the next one.
    pub fn on_batch_closed(&mut self, partition: i32) {
        if self.current == Some(partition) {
            self.current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_partitioning_is_stable_and_in_range() {
        // toPositive(murmur2("foobar")) = 1357151166; % 10 = 6.
        assert_eq!(partition_for_key(b"foobar", 10), 6);
        for n in 1..20 {
            let p = partition_for_key(b"some-key", n);
            assert!((0..n).contains(&p));
            assert_eq!(p, partition_for_key(b"some-key", n));
        }
    }

    #[test]
    fn sticky_holds_until_batch_closes_then_rotates() {
        let mut s = StickyPartitioner::new(0);
        assert_eq!(s.partition(3), 0);
        assert_eq!(s.partition(3), 0);
        s.on_batch_closed(0);
        assert_eq!(s.partition(3), 1);
        s.on_batch_closed(2); // not the current one: no change
        assert_eq!(s.partition(3), 1);
        s.on_batch_closed(1);
        assert_eq!(s.partition(3), 2);
        s.on_batch_closed(2);
        assert_eq!(s.partition(3), 0);
    }
}
