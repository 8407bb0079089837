//! `buffer.memory` accounting: one `hold` takes bytes into use, one
//! `release` gives them back; freed batch buffers are pooled within it.

use std::collections::VecDeque;

use bytes::BytesMut;

use super::pool::BufferPool;
use super::record::{ProducerRecord, SendError};
use super::topics::PendingRecord;
use super::Producer;

/// Bytes of `buffer.memory` each accepted record holds besides its bytes in
/// the batch: its timestamp kept for its outcome, and a driver's waiter slot.
/// Counting them keeps a producer's memory within `buffer.memory` plus a
/// constant however small the records (Java counts batch buffers only).
pub const RECORD_OVERHEAD: usize = 32;

/// `buffer.memory` in use, and the pool of freed batch buffers kept within it.
#[derive(Debug)]
pub(super) struct Memory {
    /// `buffer.memory`.
    limit: usize,
    /// Bytes in use: batches' buffers and records' overhead, records
    /// waiting for metadata.
    pub buffered: usize,
    /// Freed batch buffers for new batches; free memory for accounting.
    pub pool: BufferPool,
}

impl Memory {
    /// Nothing in use, `limit` bytes in all, pooling buffers of `poolable` bytes.
    pub fn new(limit: usize, poolable: usize) -> Self {
        Memory {
            limit,
            buffered: 0,
            pool: BufferPool::new(poolable),
        }
    }

    /// Bytes not in use (pooled buffers count as free).
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.buffered)
    }

    /// Takes `n` more bytes of `buffer.memory` into use. Pooled buffers are
    /// free memory: as many are dropped as needed for in-use and pooled bytes
    /// to stay within `buffer.memory` together (Java's `BufferPool` frees
    /// pooled buffers the same way when non-pooled memory runs short).
    pub fn hold(&mut self, n: usize) {
        self.buffered += n;
        self.pool.shrink_to(self.room());
        self.check();
    }

    /// Gives `n` bytes of `buffer.memory` back: the only way memory leaves
    /// use, so that what `hold` took and what is released balance.
    #[inline]
    pub fn release(&mut self, n: usize) {
        self.buffered -= n;
    }

    /// Keeps the buffer of a finished batch (its memory already released)
    /// for a new batch, when it has the pooled size and memory allows.
    pub fn recycle(&mut self, buf: BytesMut) {
        let room = self.room();
        self.pool.put(buf, room);
        self.check();
    }

    /// In-use and pooled bytes stay within `buffer.memory` together.
    fn check(&self) {
        debug_assert!(
            self.pool.pooled_bytes() <= self.room(),
            "pooled {} + in use {} > buffer.memory {}",
            self.pool.pooled_bytes(),
            self.buffered,
            self.limit
        );
    }
}

impl Producer {
    /// Takes the records waiting for the metadata of the topic at position
    /// `i`, and gives back the memory they held; returns them and that memory.
    pub(super) fn take_pending(&mut self, i: usize) -> (VecDeque<PendingRecord>, usize) {
        let t = self.topics.at_mut(i);
        let held = std::mem::take(&mut t.pending_held);
        let pending = std::mem::take(&mut t.pending);
        self.memory.release(held);
        (pending, held)
    }

    /// The error for a record refused for want of memory.
    pub(super) fn buffer_full(&self, record: ProducerRecord) -> SendError {
        SendError::BufferFull {
            record: Box::new(record),
            buffered: self.memory.buffered,
            limit: self.config.buffer_memory,
        }
    }
}
