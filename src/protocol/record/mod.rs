//! Kafka's RecordBatch v2 (magic 2): an incremental builder for producers, a
//! zero-copy decoder, and the record codec.
//!
//! Layout of a batch (big-endian; the CRC-32C covers `attributes` to the end):
//!
//! ```text
//! offset  field                 type
//!      0  baseOffset            i64   (0 from a producer)
//!      8  batchLength           i32   (bytes after this field)
//!     12  partitionLeaderEpoch  i32   (-1 from a producer)
//!     16  magic                 i8    (2)
//!     17  crc                   u32   (CRC-32C of bytes 21..)
//!     21  attributes            i16   (bits 0-2 codec, 3 timestamp type, 4 transactional,
//!                                      5 control, 6 delete horizon)
//!     23  lastOffsetDelta       i32
//!     27  baseTimestamp         i64
//!     35  maxTimestamp          i64
//!     43  producerId            i64
//!     51  producerEpoch         i16
//!     53  baseSequence          i32
//!     57  recordCount           i32
//!     61  records               (compressed as a whole when the codec is not none)
//! ```
//!
//! A record: `length varint` (bytes after it), `attributes i8` (0),
//! `timestampDelta varlong`, `offsetDelta varint`, `keyLength varint` (-1 is
//! null) + key, `valueLength varint` (-1 is null) + value, `headerCount varint`,
//! then per header `keyLength varint` + UTF-8 key, `valueLength varint` (-1 is
//! null) + value. Varints are zigzag-encoded.

mod builder;
mod decode;
mod encode;

pub use builder::{BatchBuilder, ClosedBatch};
pub use decode::{decode_records, RecordBatch};

use bytes::Bytes;

/// Bytes of a batch before its records: the fixed header.
pub const RECORD_BATCH_OVERHEAD: usize = 61;

/// The magic byte (message format version) of RecordBatch v2.
pub const MAGIC: i8 = 2;

/// Default bound on the decompressed records section of one batch, used by
/// [`RecordBatch::records`]. Larger output is refused as a likely decompression bomb.
pub const DEFAULT_MAX_RECORDS_SIZE: usize = 128 << 20;

/// `batchLength` counts the bytes after its own field: header minus baseOffset and itself.
pub(crate) const LENGTH_OVERHEAD: usize = RECORD_BATCH_OVERHEAD - 12;

/// Smallest possible record: length, attributes, timestamp delta, offset delta,
/// key length, value length and header count of one byte each.
pub(crate) const MIN_RECORD_SIZE: usize = 7;

// Field offsets in the batch header.
pub(crate) const OFF_LENGTH: usize = 8;
pub(crate) const OFF_MAGIC: usize = 16;
pub(crate) const OFF_CRC: usize = 17;
pub(crate) const OFF_ATTRIBUTES: usize = 21;
pub(crate) const OFF_PRODUCER_ID: usize = 43;

/// Batch attribute bits.
pub mod attributes {
    /// Bits 0-2: the compression codec.
    pub const COMPRESSION_MASK: i16 = 0x07;
    /// Bit 3: timestamps are log append time (set by brokers) rather than create time.
    pub const TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;
    /// Bit 4: the batch is part of a transaction.
    pub const TRANSACTIONAL: i16 = 0x10;
    /// Bit 5: the batch holds control records (transaction markers).
    pub const CONTROL: i16 = 0x20;
    /// Bit 6: the base timestamp is a delete horizon (compacted topics).
    pub const DELETE_HORIZON: i16 = 0x40;
}

/// One record header: a UTF-8 key and a nullable value (duplicate keys allowed, order kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key.
    pub key: String,
    /// Header value; `None` is null.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Header {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// One decoded record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record attributes (unused by Kafka so far, 0).
    pub attributes: i8,
    /// Timestamp minus the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Offset minus the batch's base offset.
    pub offset_delta: i32,
    /// Key; `None` is null.
    pub key: Option<Bytes>,
    /// Value; `None` is null.
    pub value: Option<Bytes>,
    /// Headers in wire order.
    pub headers: Vec<Header>,
}

/// `seq + delta` in Kafka's sequence space, which wraps from `i32::MAX` to 0
/// (Kafka's `DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

/// The `N` bytes of `b` at `at`, for a big-endian field the caller checked is there.
pub(crate) fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b[at..at + N].try_into().expect("length checked by caller")
}

#[cfg(test)]
mod tests {
    use super::increment_sequence;

    #[test]
    fn sequence_wraps_like_kafka() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 4, 5), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 5), 3);
    }
}
