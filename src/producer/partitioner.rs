//! Choosing a partition: explicit, keyed by Java's murmur2, sticky for keyless
//! records (adaptive to the partitions' queues, KIP-794), or a user [`Partitioner`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::rng::Rng;

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), byte-compatible with Java.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        if rest.len() >= 3 {
            h ^= (rest[2] as u32) << 16;
        }
        if rest.len() >= 2 {
            h ^= (rest[1] as u32) << 8;
        }
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Java's default partitioner gives a key: `(murmur2(key) & 0x7fffffff) % n`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// A user partitioner, asked for every record that has no explicit partition.
pub trait Partitioner: Send {
    /// The partition for a record, in `0..partition_count`; `None` falls back
    /// to the built-in rule (keyed murmur2, else sticky).
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partition_count: i32,
    ) -> Option<i32>;
}

/// Sticky choice for keyless records of one topic, as Java's
/// `BuiltInPartitioner` (KIP-480, KIP-794): records stay on one partition
/// until `batch.size` bytes went to it and its batch is complete (or twice
/// `batch.size` went to it), then the next partition is drawn: uniformly
/// among those with a leader, or, with adaptive partitioning, weighted by
/// the inverse of each partition's queue of batches.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sticky {
    current: Option<i32>,
    /// Bytes appended to `current` since it was chosen.
    produced: usize,
    /// Scratch for [`LoadTable`], kept so that a switch allocates nothing.
    table: LoadTable,
}

impl Sticky {
    /// The current partition, unless the topic has fewer partitions now or
    /// enough was produced to it and `all_full(p)` says its batches are
    /// complete: Java completes a switch it deferred for an incomplete batch
    /// at the next record (`RecordAccumulator.partitionChanged`).
    pub(crate) fn current(
        &self,
        partitions: i32,
        batch_size: usize,
        all_full: impl FnOnce(i32) -> bool,
    ) -> Option<i32> {
        let p = self.current.filter(|&p| p < partitions)?;
        (self.produced < batch_size || !all_full(p)).then_some(p)
    }

    /// Draws the next partition (Java's `nextPartition`) and sticks to it.
    ///
    /// `available` lists the partitions with a leader (empty: use all);
    /// `loads` gives, per partition of the topic in order, its queue size
    /// (batches not yet sent, the open one included) when it has a leader
    /// and is not excluded, or `None`; it is `None` as a whole when adaptive
    /// partitioning is off or not every partition has had a batch yet.
    pub(crate) fn switch(
        &mut self,
        partitions: i32,
        available: &[i32],
        loads: Option<&mut dyn Iterator<Item = Option<u32>>>,
        rng: &mut Rng,
    ) -> i32 {
        let weighted = loads.is_some_and(|l| self.table.build(l, partitions as usize));
        let p = if weighted {
            self.table.draw(rng)
        } else if available.is_empty() {
            rng.below(partitions as u64) as i32
        } else {
            available[rng.below(available.len() as u64) as usize]
        };
        self.current = Some(p);
        self.produced = 0;
        p
    }

    /// Counts `size` bytes appended to the current partition; `all_full`
    /// says whether its batches are complete after the append. Enough
    /// produced, the next record draws a new partition (Java's
    /// `updatePartitionInfo`: a switch waits for the batch to be complete,
    /// up to twice `batch.size`, so that switching leaves no small batch).
    pub(crate) fn appended(&mut self, size: usize, batch_size: usize, all_full: bool) {
        self.produced += size;
        if (self.produced >= batch_size && all_full) || self.produced >= batch_size * 2 {
            self.current = None;
        }
    }
}

/// Java's cumulative frequency table of a topic's partitions for adaptive
/// partitioning (`BuiltInPartitioner.updatePartitionLoadStats`): each
/// eligible partition is weighted by the largest queue size plus one minus
/// its own, so shorter queues draw more records.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadTable {
    cumulative: Vec<u32>,
    ids: Vec<i32>,
}

impl LoadTable {
    /// Builds the table from per-partition loads (see [`Sticky::switch`]);
    /// false when a uniform draw applies instead: no partition is eligible,
    /// the topic has one partition, or every partition is eligible with the
    /// same queue size.
    pub(crate) fn build(
        &mut self,
        loads: &mut dyn Iterator<Item = Option<u32>>,
        partitions: usize,
    ) -> bool {
        self.cumulative.clear();
        self.ids.clear();
        for (p, load) in loads.enumerate() {
            if let Some(q) = load {
                self.ids.push(p as i32);
                self.cumulative.push(q);
            }
        }
        let n = self.cumulative.len();
        if n < 1 || partitions < 2 {
            return false;
        }
        let max = *self.cumulative.iter().max().expect("not empty");
        let all_equal = self.cumulative.iter().all(|&q| q == max);
        if all_equal && n == partitions {
            return false;
        }
        let top = max + 1;
        let mut sum = 0u32;
        for q in &mut self.cumulative {
            sum = sum.saturating_add(top - *q);
            *q = sum;
        }
        true
    }

    /// A partition drawn with the table's weights: the first whose running
    /// sum is above a uniform draw below the total.
    pub(crate) fn draw(&self, rng: &mut Rng) -> i32 {
        let total = *self.cumulative.last().expect("built");
        let r = rng.below(u64::from(total)) as u32;
        let i = self.cumulative.partition_point(|&c| c <= r);
        self.ids[i]
    }
}

/// Per node, when it last had batches ready to send and when it last could
/// take them (Java's `NodeLatencyStats`), for `partitioner.availability.timeout.ms`.
#[derive(Debug, Default)]
pub(crate) struct NodeDrains {
    nodes: BTreeMap<i32, (Instant, Instant)>,
}

impl NodeDrains {
    /// `node` had batches ready at `now`; `drained` says whether it could take them.
    pub(crate) fn update(&mut self, node: i32, now: Instant, drained: bool) {
        let e = self.nodes.entry(node).or_insert((now, now));
        e.0 = now;
        if drained {
            e.1 = now;
        }
    }

    /// True when `node` has had batches ready and taken none for over `timeout`.
    pub(crate) fn unavailable(&self, node: i32, timeout: Duration) -> bool {
        self.nodes
            .get(&node)
            .is_some_and(|(ready, drained)| ready.saturating_duration_since(*drained) > timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_java_vectors() {
        // org.apache.kafka.common.utils.UtilsTest.testMurmur2
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (k, h) in cases {
            assert_eq!(murmur2(k), *h, "{}", String::from_utf8_lossy(k));
        }
    }

    #[test]
    fn empty_key_is_hashed() {
        // An empty key is a key (hashed), unlike a null key (sticky).
        assert_eq!(murmur2(b""), 275646681);
        assert_eq!(partition_for_key(b"", 7), (275646681 & 0x7fff_ffff) % 7);
    }

    #[test]
    fn sticky_switches_after_batch_size_once_the_batch_is_complete() {
        let mut rng = Rng::new(7);
        let mut s = Sticky::default();
        assert_eq!(s.current(4, 250, |_| true), None);
        let first = s.switch(4, &[], None, &mut rng);
        s.appended(100, 250, false);
        s.appended(100, 250, false);
        assert_eq!(s.current(4, 250, |_| true), Some(first));
        // 300 bytes >= 250, but the batch is still open: no switch yet ...
        s.appended(100, 250, false);
        assert_eq!(s.current(4, 250, |_| false), Some(first));
        // ... until it is complete (sent or full) ...
        assert_eq!(s.current(4, 250, |_| true), None);
        // ... or twice batch.size went to it.
        s.switch(4, &[], None, &mut rng);
        for _ in 0..4 {
            s.appended(100, 250, false);
        }
        assert!(s.current(4, 250, |_| false).is_some());
        s.appended(100, 250, false);
        assert_eq!(s.current(4, 250, |_| false), None);
        // A complete batch at batch.size switches after the append.
        let p = s.switch(4, &[], None, &mut rng);
        s.appended(300, 250, true);
        assert_eq!(s.current(4, 250, |_| false), None, "{p}");
        // Only available partitions are chosen.
        for _ in 0..50 {
            let p = s.switch(8, &[3, 5], None, &mut rng);
            assert!(p == 3 || p == 5);
        }
    }

    #[test]
    fn load_table_is_javas_cumulative_frequency_table() {
        // BuiltInPartitioner's example: queue sizes 0 3 1 become 4 5 8.
        let mut t = LoadTable::default();
        let mut loads = [Some(0), Some(3), Some(1)].into_iter();
        assert!(t.build(&mut loads, 3));
        assert_eq!(t.cumulative, [4, 5, 8]);
        assert_eq!(t.ids, [0, 1, 2]);
        // Draws 0..4 map to partition 0, 4 to 1, 5..8 to 2: over many draws
        // the shares are near 4/8, 1/8, 3/8.
        let mut rng = Rng::new(3);
        let mut hits = [0u32; 3];
        for _ in 0..8000 {
            hits[t.draw(&mut rng) as usize] += 1;
        }
        for (got, want) in hits.iter().zip([4000, 1000, 3000]) {
            assert!(got.abs_diff(want) < 250, "{hits:?}");
        }
        // Equal queues over every partition: uniform.
        let mut loads = [Some(2), Some(2), Some(2)].into_iter();
        assert!(!t.build(&mut loads, 3));
        // Equal queues, one partition excluded: the table keeps the others.
        let mut loads = [Some(2), None, Some(2)].into_iter();
        assert!(t.build(&mut loads, 3));
        assert_eq!(
            (t.cumulative.as_slice(), t.ids.as_slice()),
            (&[1, 2][..], &[0, 2][..])
        );
        for _ in 0..100 {
            assert_ne!(t.draw(&mut rng), 1);
        }
        // One partition, or none eligible: uniform.
        assert!(!t.build(&mut [Some(5)].into_iter(), 1));
        assert!(!t.build(&mut [None, None].into_iter(), 2));
    }
}
