//! Choosing a partition: explicit, keyed by Java's murmur2, sticky for keyless
//! records, or a user [`Partitioner`].

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

/// Sticky choice for keyless records of one topic (KIP-480/KIP-794): stay on
/// one partition until `batch.size` bytes went to it, then pick another at
/// random among those with a leader.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sticky {
    current: Option<i32>,
    bytes: usize,
}

impl Sticky {
    /// The partition for the next keyless record of `size` bytes.
    ///
    /// `available` lists partitions that have a leader now (empty: use all).
    pub(crate) fn choose(
        &mut self,
        size: usize,
        batch_size: usize,
        partitions: i32,
        available: &[i32],
        rng: &mut Rng,
    ) -> i32 {
        let cur = match self.current {
            Some(p) if p < partitions && self.bytes < batch_size => p,
            prev => {
                let pick = |rng: &mut Rng| {
                    if available.is_empty() {
                        rng.below(partitions as u64) as i32
                    } else {
                        available[rng.below(available.len() as u64) as usize]
                    }
                };
                let mut p = pick(rng);
                // Prefer a different partition when there is a choice.
                let choices = if available.is_empty() {
                    partitions as usize
                } else {
                    available.len()
                };
                if choices > 1 && Some(p) == prev {
                    p = pick(rng);
                }
                self.bytes = 0;
                self.current = Some(p);
                p
            }
        };
        self.bytes += size;
        cur
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
    fn sticky_switches_after_batch_size() {
        let mut rng = Rng::new(7);
        let mut s = Sticky::default();
        let first = s.choose(100, 250, 4, &[], &mut rng);
        assert_eq!(s.choose(100, 250, 4, &[], &mut rng), first);
        assert_eq!(s.choose(100, 250, 4, &[], &mut rng), first);
        // 300 bytes >= 250: the next record moves on to another partition.
        let next = s.choose(100, 250, 4, &[], &mut rng);
        assert_ne!(next, first);
        // Only available partitions are chosen.
        let mut s = Sticky::default();
        for _ in 0..50 {
            let p = s.choose(1000, 10, 8, &[3, 5], &mut rng);
            assert!(p == 3 || p == 5);
        }
    }
}
