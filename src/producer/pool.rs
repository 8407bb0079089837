//! Freed batch buffers kept for new batches, as Java's `BufferPool` does.
//!
//! A new batch of `batch.size` bytes would otherwise be a fresh allocation
//! that the allocator serves from new or trimmed pages (at 1 MiB, from
//! `mmap`), so every batch page-faults its whole buffer in. A reused buffer
//! is already faulted in.
//!
//! Accounting follows Java: pooled buffers are free memory. They do not count
//! in `buffered_bytes`, and the producer drops them (see `Producer::hold`)
//! whenever in-use plus pooled bytes would exceed `buffer.memory`, so the two
//! together never do.

use bytes::BytesMut;

/// Idle buffers of exactly one capacity, the batch size, reused last in first
/// out (the most recently used buffer is the likeliest still in cache).
#[derive(Debug)]
pub(crate) struct BufferPool {
    size: usize,
    free: Vec<BytesMut>,
}

impl BufferPool {
    /// A pool for buffers of `size` bytes of capacity.
    pub fn new(size: usize) -> Self {
        BufferPool {
            size,
            free: Vec::new(),
        }
    }

    /// The capacity of the buffers this pool keeps.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes held idle by the pool.
    pub fn pooled_bytes(&self) -> usize {
        self.free.len() * self.size
    }

    /// A pooled buffer (empty, capacity `size`), if any.
    pub fn take(&mut self) -> Option<BytesMut> {
        self.free.pop()
    }

    /// Keeps `buf` when its capacity is the pool's size and the pool then
    /// holds at most `room` bytes; drops it otherwise (a batch that grew, a
    /// smaller batch made when memory was short, a compressed batch).
    pub fn put(&mut self, mut buf: BytesMut, room: usize) {
        if buf.capacity() == self.size && self.pooled_bytes() + self.size <= room {
            buf.clear();
            self.free.push(buf);
        }
    }

    /// Frees pooled buffers until the pool holds at most `room` bytes.
    pub fn shrink_to(&mut self, room: usize) {
        while self.pooled_bytes() > room {
            self.free.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_its_size_within_room() {
        let mut p = BufferPool::new(100);
        p.put(BytesMut::with_capacity(50), 1000);
        assert_eq!(p.pooled_bytes(), 0, "other sizes are dropped");
        let mut b = BytesMut::with_capacity(100);
        b.extend_from_slice(b"stale");
        p.put(b, 1000);
        p.put(BytesMut::with_capacity(100), 1000);
        assert_eq!(p.pooled_bytes(), 200);
        p.put(BytesMut::with_capacity(100), 250);
        assert_eq!(p.pooled_bytes(), 200, "never beyond room");
        p.shrink_to(150);
        assert_eq!(p.pooled_bytes(), 100);
        let b = p.take().expect("pooled");
        assert!(b.is_empty() && b.capacity() == 100);
        assert!(p.take().is_none());
    }
}
