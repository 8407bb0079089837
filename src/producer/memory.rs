//! `buffer.memory` accounting: one `hold` takes bytes into use, one
//! `release` gives them back; freed batch buffers are pooled within it.

use std::collections::VecDeque;

use bytes::BytesMut;

use super::record::{ProducerRecord, SendError};
use super::topics::PendingRecord;
use super::Producer;

/// Bytes of `buffer.memory` each accepted record holds besides its bytes in
/// the batch: its timestamp kept for its outcome, and a driver's waiter slot.
/// Counting them keeps a producer's memory within `buffer.memory` plus a
/// constant however small the records (Java counts batch buffers only).
pub const RECORD_OVERHEAD: usize = 32;

impl Producer {
    /// Takes `n` more bytes of `buffer.memory` into use. Pooled buffers are
    /// free memory: as many are dropped as needed for in-use and pooled bytes
    /// to stay within `buffer.memory` together (Java's `BufferPool` frees
    /// pooled buffers the same way when non-pooled memory runs short).
    pub(super) fn hold(&mut self, n: usize) {
        self.buffered_bytes += n;
        self.pool.shrink_to(
            self.config
                .buffer_memory
                .saturating_sub(self.buffered_bytes),
        );
        self.check_memory();
    }

    /// Gives `n` bytes of `buffer.memory` back: the only way memory leaves
    /// use, so that what `hold` took and what is released balance.
    #[inline]
    pub(super) fn release(&mut self, n: usize) {
        self.buffered_bytes -= n;
    }

    /// Takes the records waiting for the metadata of the topic at position
    /// `i`, and gives back the memory they held; returns them and that memory.
    pub(super) fn take_pending(&mut self, i: usize) -> (VecDeque<PendingRecord>, usize) {
        let t = self.topics.at_mut(i);
        let held = std::mem::take(&mut t.pending_held);
        let pending = std::mem::take(&mut t.pending);
        self.release(held);
        (pending, held)
    }

    /// In-use and pooled bytes stay within `buffer.memory` together.
    fn check_memory(&self) {
        debug_assert!(
            self.pool.pooled_bytes()
                <= self
                    .config
                    .buffer_memory
                    .saturating_sub(self.buffered_bytes),
            "pooled {} + in use {} > buffer.memory {}",
            self.pool.pooled_bytes(),
            self.buffered_bytes,
            self.config.buffer_memory
        );
    }

    /// Keeps the buffer of a finished batch (its memory already released)
    /// for a new batch, when it has the pooled size and memory allows.
    pub(super) fn recycle(&mut self, buf: BytesMut) {
        let room = self
            .config
            .buffer_memory
            .saturating_sub(self.buffered_bytes);
        self.pool.put(buf, room);
        self.check_memory();
    }

    pub(super) fn buffer_full(&self, record: ProducerRecord) -> SendError {
        SendError::BufferFull {
            record: Box::new(record),
            buffered: self.buffered_bytes,
            limit: self.config.buffer_memory,
        }
    }
}
