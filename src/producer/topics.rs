//! The topics a producer has seen: their states in first-use order, found by name.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crate::protocol::error_code::ErrorCode;

use super::partitioner;
use super::record::ProducerRecord;

/// Topic states in first-use order, so that walks over them are
/// deterministic, found by name. Topics are never removed: a topic's
/// position is stable for the producer's life.
#[derive(Default)]
pub(super) struct Topics {
    /// The core's own copies of the names, not the application's `Arc`s:
    /// outcomes clone a name on the driver's loop thread while application
    /// threads clone theirs per record, and one shared reference count would
    /// bounce between their cores on every record.
    names: Vec<Arc<str>>,
    states: Vec<TopicState>,
    /// Positions by name: a `BTreeMap` because std's `HashMap` seeds its
    /// hash from the OS, and the core reads no entropy (it is off the
    /// per-record path, see `last`).
    index: BTreeMap<Arc<str>, usize>,
    /// The position `send` found last. Records mostly come in runs to one
    /// topic; comparing the name with this one's is a few instructions where
    /// hashing it and probing the map is a hundred.
    last: usize,
}

impl Topics {
    /// Topics seen.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True before the first topic.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names, in first-use order.
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// The state of the topic at position `i`.
    pub fn at(&self, i: usize) -> &TopicState {
        &self.states[i]
    }

    /// The state of the topic at position `i`, to change.
    pub fn at_mut(&mut self, i: usize) -> &mut TopicState {
        &mut self.states[i]
    }

    /// The states, in first-use order.
    pub fn values(&self) -> impl Iterator<Item = &TopicState> {
        self.states.iter()
    }

    /// The position of `name`, if seen.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The position of `name` for a record being sent: the last one found
    /// when the name is the same, the map's answer otherwise.
    #[inline]
    pub fn position_for_send(&mut self, name: &str) -> Option<usize> {
        if self.names.get(self.last).is_some_and(|n| **n == *name) {
            return Some(self.last);
        }
        let i = self.position(name)?;
        self.last = i;
        Some(i)
    }

    /// The state of `name`, if seen.
    pub fn get(&self, name: &str) -> Option<&TopicState> {
        self.position(name).map(|i| &self.states[i])
    }

    /// The state of `name` to change, a new one when not seen before.
    pub fn entry(&mut self, name: &str) -> &mut TopicState {
        let i = match self.position(name) {
            Some(i) => i,
            None => {
                let own: Arc<str> = Arc::from(name);
                self.names.push(own.clone());
                self.states.push(TopicState::default());
                self.index.insert(own, self.states.len() - 1);
                self.states.len() - 1
            }
        };
        &mut self.states[i]
    }
}

#[cfg(test)]
mod tests {
    use super::Topics;

    #[test]
    fn send_lookups_follow_the_name_not_the_last_answer() {
        let mut t = Topics::default();
        assert_eq!(t.position_for_send("a"), None);
        t.entry("a").id = [1; 16];
        t.entry("b").id = [2; 16];
        assert_eq!(t.position_for_send("a"), Some(0));
        assert_eq!(t.position_for_send("a"), Some(0));
        assert_eq!(t.position_for_send("b"), Some(1));
        assert_eq!(t.position_for_send("a"), Some(0));
        assert_eq!(t.position_for_send("c"), None);
        assert_eq!(t.position_for_send("b"), Some(1));
        assert_eq!(t.names().len(), t.len());
        assert_eq!(t.get("b").map(|s| s.id), Some([2; 16]));
        assert_eq!(t.entry("a").id, [1; 16], "entry finds, not replaces");
        assert_eq!(t.len(), 2);
    }
}

/// A record waiting for its topic's metadata.
#[derive(Debug)]
pub(super) struct PendingRecord {
    pub(super) id: u64,
    pub(super) record: ProducerRecord,
    pub(super) size: usize,
    pub(super) since: Instant,
}

/// What the core knows of a topic.
#[derive(Debug)]
pub(super) struct TopicState {
    /// Partition indices into `Producer::parts`, by partition number; empty while unknown.
    pub(super) parts: Vec<usize>,
    /// Partitions that have a leader now.
    pub(super) available: Vec<i32>,
    /// Of those, the ones led by a broker in `client.rack` (with
    /// `partitioner.rack.aware`; empty otherwise).
    pub(super) in_rack: Vec<i32>,
    /// Records sent before the topic's metadata was known.
    pub(super) pending: VecDeque<PendingRecord>,
    /// Bytes of `buffer.memory` the `pending` records hold together: the sum
    /// of their sizes, or less when memory was short as they went back to
    /// waiting (see `place_pending`).
    pub(super) pending_held: usize,
    pub(super) sticky: partitioner::Sticky,
    /// Estimated compressed/uncompressed size of this topic's batches, so that
    /// compressed batches fill up to about `batch.size` on the wire.
    pub(super) compression_ratio: f64,
    /// A topic-level error from the last metadata answer.
    pub(super) error: Option<ErrorCode>,
    /// The topic id from the last metadata answer (Metadata v10+); zero while
    /// unknown, and then Produce names the topic (v12 at most) instead.
    pub(super) id: [u8; 16],
    /// When a batch was last opened for it or a record last waited for it:
    /// per batch, not per record, to keep `send` lean (`metadata.max.idle.ms`
    /// is 5 s at least, and a batch lives `linger.ms`).
    pub(super) last_used: Option<Instant>,
    /// Left out of Metadata requests for being idle past
    /// `metadata.max.idle.ms`; its next batch asks for metadata again.
    pub(super) forgotten: bool,
}

impl Default for TopicState {
    fn default() -> Self {
        TopicState {
            parts: Vec::new(),
            available: Vec::new(),
            in_rack: Vec::new(),
            pending: VecDeque::new(),
            pending_held: 0,
            sticky: partitioner::Sticky::default(),
            error: None,
            compression_ratio: 1.0,
            id: [0; 16],
            last_used: None,
            forgotten: false,
        }
    }
}
