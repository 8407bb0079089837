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

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::checksum::{self, crc32c, crc32c_concat};
use super::compression::{self, Compression};
use super::error::{ProtocolError, Result};
use super::primitives::{varint_len, varlong_len};

/// Bytes of a batch before its records: the fixed header.
pub const RECORD_BATCH_OVERHEAD: usize = 61;

/// The magic byte (message format version) of RecordBatch v2.
pub const MAGIC: i8 = 2;

/// Default bound on the decompressed records section of one batch, used by
/// [`RecordBatch::records`]. Larger output is refused as a likely decompression bomb.
pub const DEFAULT_MAX_RECORDS_SIZE: usize = 128 << 20;

/// `batchLength` counts the bytes after its own field: header minus baseOffset and itself.
const LENGTH_OVERHEAD: usize = RECORD_BATCH_OVERHEAD - 12;

/// Smallest possible record: length, attributes, timestamp delta, offset delta,
/// key length, value length and header count of one byte each.
const MIN_RECORD_SIZE: usize = 7;

// Field offsets in the batch header.
const OFF_LENGTH: usize = 8;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_PRODUCER_ID: usize = 43;
/// A builder hashes its records as they are appended, this many bytes at a
/// time: the CRC reads them while they are still in this core's L2 (512 KiB
/// here), not back from memory once a 1 MiB batch has pushed them out, and
/// closing a large batch no longer hashes all of it inside one producer
/// turn. Large enough that the codec benchmark, which never leaves its core,
/// loses nothing beyond its noise (64 KiB chunks cost it 3-5 %); smaller
/// batches are hashed at close in one pass, as before.
const CRC_CHUNK: usize = 256 * 1024;

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

impl Record {
    /// Appends this record's wire form to `out`; returns the bytes written.
    pub fn encode(&self, out: &mut BytesMut) -> usize {
        encode_record(
            out,
            self.body_len(),
            self.attributes,
            self.timestamp_delta,
            self.offset_delta,
            self.key.as_deref(),
            self.value.as_deref(),
            &self.headers,
        )
    }

    /// Bytes [`Record::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        record_len(self.body_len())
    }

    fn body_len(&self) -> usize {
        body_len(
            self.timestamp_delta,
            self.offset_delta,
            self.key.as_deref(),
            self.value.as_deref(),
            &self.headers,
        )
    }
}

#[inline(always)]
fn nullable_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

#[inline]
fn headers_len(headers: &[Header]) -> usize {
    let mut n = varint_len(headers.len() as i32);
    for h in headers {
        n += varint_len(h.key.len() as i32) + h.key.len() + nullable_len(h.value.as_deref());
    }
    n
}

/// Bytes of a record after its length varint.
#[inline(always)]
fn body_len(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let h = if headers.is_empty() {
        1
    } else {
        headers_len(headers)
    };
    1 + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + nullable_len(key)
        + nullable_len(value)
        + h
}

/// Bytes of a record whose body is `body` bytes: the length varint and the body.
#[inline(always)]
fn record_len(body: usize) -> usize {
    varint_len(body as i32) + body
}

/// Writes `v` as an unsigned LEB128 varint into `b` at `n`; returns the new end.
///
/// Indices are masked to the array size so that no bounds check is emitted;
/// callers never write more than 32 bytes before flushing (at most 26 here).
#[inline(always)]
fn scratch_uvarint(b: &mut [u8; 32], mut n: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        b[n & 31] = v as u8 | 0x80;
        n += 1;
        v >>= 7;
    }
    b[n & 31] = v as u8;
    n + 1
}

#[inline(always)]
fn scratch_varint(b: &mut [u8; 32], n: usize, v: i32) -> usize {
    scratch_uvarint(b, n, ((v << 1) ^ (v >> 31)) as u32 as u64)
}

#[inline(always)]
fn scratch_varlong(b: &mut [u8; 32], n: usize, v: i64) -> usize {
    scratch_uvarint(b, n, ((v << 1) ^ (v >> 63)) as u64)
}

#[inline(always)]
fn scratch_len(b: &mut [u8; 32], n: usize, field: Option<&[u8]>) -> usize {
    scratch_varint(b, n, field.map_or(-1, |f| f.len() as i32))
}

/// Writes one record whose [`body_len`] is `body`, taken from the caller, who
/// needs it anyway (for a limit check, or for the size it returns); returns
/// the bytes written. The varints around key and value go through a stack
/// buffer so that a record costs a handful of `extend_from_slice` calls.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn encode_record(
    out: &mut BytesMut,
    body: usize,
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let total = record_len(body);
    let mut s = [0u8; 32];
    let mut n = scratch_varint(&mut s, 0, body as i32);
    s[n & 31] = attributes as u8;
    n = scratch_varlong(&mut s, n + 1, timestamp_delta);
    n = scratch_varint(&mut s, n, offset_delta);
    n = scratch_len(&mut s, n, key);
    if let Some(k) = key {
        out.extend_from_slice(&s[..n]);
        out.extend_from_slice(k);
        n = 0;
    }
    n = scratch_len(&mut s, n, value);
    out.extend_from_slice(&s[..n]);
    if let Some(v) = value {
        out.extend_from_slice(v);
    }
    if headers.is_empty() {
        out.put_u8(0);
    } else {
        encode_headers(out, headers);
    }
    total
}

#[inline(never)]
fn encode_headers(out: &mut BytesMut, headers: &[Header]) {
    let mut s = [0u8; 32];
    let n = scratch_varint(&mut s, 0, headers.len() as i32);
    out.extend_from_slice(&s[..n]);
    for h in headers {
        let n = scratch_varint(&mut s, 0, h.key.len() as i32);
        out.extend_from_slice(&s[..n]);
        out.extend_from_slice(h.key.as_bytes());
        let n = scratch_len(&mut s, 0, h.value.as_deref());
        out.extend_from_slice(&s[..n]);
        if let Some(v) = &h.value {
            out.extend_from_slice(v);
        }
    }
}

/// Incremental RecordBatch v2 builder: records are written once, directly into one buffer.
///
/// The buffer starts with room for the 61-byte header, which [`BatchBuilder::close`]
/// fills in. Record `i` gets offset delta `i`. A large batch's records are
/// hashed in 256 KiB chunks as they are appended, the rest at close (all of
/// it at close after [`BatchBuilder::hash_at_close`]).
#[derive(Debug)]
pub struct BatchBuilder {
    buf: BytesMut,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
    /// CRC-32C of `buf[OFF_ATTRIBUTES..hashed]`, taken while the header
    /// bytes were still zero (0, the CRC of no bytes, while none are).
    crc: u32,
    /// End of the bytes `crc` covers; `OFF_ATTRIBUTES` while none are.
    hashed: usize,
    /// Buffer length at which the bytes since `hashed` get hashed
    /// (`usize::MAX`: all at close).
    next_hash: usize,
}

impl BatchBuilder {
    /// A builder whose buffer has room for `capacity` bytes (header included) before growing.
    pub fn new(base_timestamp: i64, capacity: usize) -> Self {
        Self::with_buffer(
            BytesMut::with_capacity(capacity.max(RECORD_BATCH_OVERHEAD)),
            base_timestamp,
        )
    }

    /// A builder reusing the allocation of `buf` (its contents are cleared).
    pub fn with_buffer(mut buf: BytesMut, base_timestamp: i64) -> Self {
        buf.clear();
        buf.extend_from_slice(&[0u8; RECORD_BATCH_OVERHEAD]);
        BatchBuilder {
            buf,
            base_timestamp,
            max_timestamp: i64::MIN,
            count: 0,
            crc: 0,
            hashed: OFF_ATTRIBUTES,
            next_hash: OFF_ATTRIBUTES + CRC_CHUNK,
        }
    }

    /// Leaves the whole CRC to [`BatchBuilder::close`], for a batch that will
    /// be compressed: its CRC covers the compressed bytes, so hashing the
    /// records as they come would be wasted.
    pub fn hash_at_close(mut self) -> Self {
        self.next_hash = usize::MAX;
        self
    }

    /// Exact bytes [`BatchBuilder::append`] would add for this record, length varint included.
    #[inline]
    pub fn record_size(
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        record_len(body_len(timestamp_delta, offset_delta, key, value, headers))
    }

    /// Exact bytes the next [`BatchBuilder::append`] of this record would add.
    #[inline]
    pub fn next_record_size(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        Self::record_size(
            timestamp.wrapping_sub(self.base_timestamp),
            self.count,
            key,
            value,
            headers,
        )
    }

    /// Appends a record; returns the bytes added. Its offset delta is its index.
    #[inline]
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let delta = timestamp.wrapping_sub(self.base_timestamp);
        let body = body_len(delta, self.count, key, value, headers);
        self.write(timestamp, delta, body, key, value, headers)
    }

    /// Appends a record if the batch stays within `limit` bytes; returns the
    /// bytes added, or `Err` with the bytes it would have added (nothing is
    /// written). The record's size is computed once, for the check and the write.
    #[inline]
    pub fn try_append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        limit: usize,
    ) -> std::result::Result<usize, usize> {
        let delta = timestamp.wrapping_sub(self.base_timestamp);
        let body = body_len(delta, self.count, key, value, headers);
        let total = record_len(body);
        if self.buf.len() + total > limit {
            return Err(total);
        }
        Ok(self.write(timestamp, delta, body, key, value, headers))
    }

    /// Writes the next record, measured by the caller at `delta` from the base
    /// timestamp; returns the bytes added.
    #[inline(always)]
    fn write(
        &mut self,
        timestamp: i64,
        delta: i64,
        body: usize,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let n = encode_record(
            &mut self.buf,
            body,
            0,
            delta,
            self.count,
            key,
            value,
            headers,
        );
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        if self.buf.len() >= self.next_hash {
            self.hash_ahead();
        }
        n
    }

    /// Folds the bytes appended since the last call into `crc`.
    #[cold]
    #[inline(never)]
    fn hash_ahead(&mut self) {
        self.crc = checksum::crc32c_append(self.crc, &self.buf[self.hashed..]);
        self.hashed = self.buf.len();
        self.next_hash = self.hashed + CRC_CHUNK;
    }

    /// Bytes so far, the 61-byte header included (the uncompressed batch size).
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Gives up the batch, returning its buffer for reuse
    /// ([`BatchBuilder::with_buffer`]).
    pub fn into_buffer(self) -> BytesMut {
        self.buf
    }

    /// Records appended so far.
    #[inline]
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// True before the first record.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The batch's base timestamp.
    #[inline]
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp
    }

    /// Finishes the batch: fills the header, compresses the records section with
    /// `compression` at `level` (`None`: the codec's default), computes the CRC.
    ///
    /// Producer id, epoch and base sequence are -1 until [`ClosedBatch::stamp`].
    /// Fails on an empty batch, a codec that is not compiled in or a bad level.
    pub fn close(self, compression: Compression, level: Option<i32>) -> Result<ClosedBatch> {
        if self.count == 0 {
            return Err(ProtocolError::Invalid("cannot close an empty record batch"));
        }
        let mut buf = self.buf;
        if compression != Compression::None {
            let records = &buf[RECORD_BATCH_OVERHEAD..];
            let mut out = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + records.len() / 2 + 64);
            out.extend_from_slice(&[0u8; RECORD_BATCH_OVERHEAD]);
            compression::compress(compression, level, records, &mut out)?;
            buf = out;
        }
        let length = buf.len() - 12;
        if length > i32::MAX as usize {
            return Err(ProtocolError::Invalid("record batch larger than 2 GiB"));
        }
        {
            let mut h = &mut buf[..RECORD_BATCH_OVERHEAD];
            h.put_i64(0); // base offset
            h.put_i32(length as i32);
            h.put_i32(-1); // partition leader epoch
            h.put_i8(MAGIC);
            h.put_u32(0); // crc, below
            h.put_i16(compression.attribute_bits());
            h.put_i32(self.count - 1);
            h.put_i64(self.base_timestamp);
            h.put_i64(self.max_timestamp);
            h.put_i64(-1); // producer id
            h.put_i16(-1); // producer epoch
            h.put_i32(-1); // base sequence
            h.put_i32(self.count);
        }
        let crc = if compression == Compression::None && self.hashed > OFF_ATTRIBUTES {
            // Records hashed ahead, under a zeroed header: hash the rest,
            // then put the real header under the CRC.
            let crc = checksum::crc32c_append(self.crc, &buf[self.hashed..]);
            checksum::replace_prefix(
                crc,
                &[0u8; RECORD_BATCH_OVERHEAD - OFF_ATTRIBUTES],
                &buf[OFF_ATTRIBUTES..RECORD_BATCH_OVERHEAD],
                buf.len() - RECORD_BATCH_OVERHEAD,
            )
        } else {
            crc32c(&buf[OFF_ATTRIBUTES..])
        };
        buf[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(ClosedBatch {
            buf: buf.freeze(),
            record_count: self.count,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            compression,
        })
    }
}

/// A finished batch ready to be sent; producer fields can be (re)stamped.
#[derive(Debug, Clone)]
pub struct ClosedBatch {
    buf: Bytes,
    record_count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    compression: Compression,
}

impl ClosedBatch {
    /// Sets producer id, epoch, base sequence and the transactional bit, and
    /// updates the CRC-32C. The records are not hashed again: the CRC of the
    /// header change is shifted over the records' length and folded in (CRC is
    /// linear), so a restamp costs the same for 1 KiB and 1 MiB batches.
    ///
    /// In place when no clone of [`ClosedBatch::bytes`] is alive; otherwise the
    /// batch is copied once, and the clones keep the old bytes.
    pub fn stamp(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        transactional: bool,
    ) {
        let mut buf = match std::mem::take(&mut self.buf).try_into_mut() {
            Ok(m) => m,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        let old_header: [u8; RECORD_BATCH_OVERHEAD - OFF_ATTRIBUTES] = be(&buf, OFF_ATTRIBUTES);
        let attrs = i16::from_be_bytes([buf[OFF_ATTRIBUTES], buf[OFF_ATTRIBUTES + 1]]);
        let attrs = if transactional {
            attrs | attributes::TRANSACTIONAL
        } else {
            attrs & !attributes::TRANSACTIONAL
        };
        buf[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attrs.to_be_bytes());
        {
            let mut h = &mut buf[OFF_PRODUCER_ID..RECORD_BATCH_OVERHEAD - 4];
            h.put_i64(producer_id);
            h.put_i16(producer_epoch);
            h.put_i32(base_sequence);
        }
        let old_crc = u32::from_be_bytes(be(&buf, OFF_CRC));
        let crc = checksum::replace_prefix(
            old_crc,
            &old_header,
            &buf[OFF_ATTRIBUTES..RECORD_BATCH_OVERHEAD],
            buf.len() - RECORD_BATCH_OVERHEAD,
        );
        buf[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self.transactional = transactional;
        self.buf = buf.freeze();
    }

    /// The wire bytes of the whole batch (a cheap reference-counted clone).
    #[inline]
    pub fn bytes(&self) -> Bytes {
        self.buf.clone()
    }

    /// Gives up the batch, returning its buffer for reuse
    /// ([`BatchBuilder::with_buffer`]) when no clone of
    /// [`ClosedBatch::bytes`] is alive; `None` otherwise (whoever holds a
    /// clone may still be reading it, e.g. a driver writing it out).
    pub fn into_buffer(self) -> Option<BytesMut> {
        self.buf.try_into_mut().ok()
    }

    /// Wire size of the batch.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Always false: a closed batch holds at least a header and one record.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Number of records.
    #[inline]
    pub fn record_count(&self) -> i32 {
        self.record_count
    }

    /// Base sequence (-1 until stamped).
    #[inline]
    pub fn base_sequence(&self) -> i32 {
        self.base_sequence
    }

    /// Producer id (-1 until stamped).
    #[inline]
    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }

    /// Producer epoch (-1 until stamped).
    #[inline]
    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch
    }

    /// Whether the transactional bit is set.
    #[inline]
    pub fn is_transactional(&self) -> bool {
        self.transactional
    }

    /// Largest record timestamp.
    #[inline]
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// Base timestamp.
    #[inline]
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp
    }

    /// Codec of the records section.
    #[inline]
    pub fn compression(&self) -> Compression {
        self.compression
    }
}

/// A decoded RecordBatch v2; `records` is the records section as on the wire
/// (compressed when the codec is not none), a zero-copy slice of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record (0 from a producer).
    pub base_offset: i64,
    /// Leader epoch stamped by the broker (-1 from a producer).
    pub partition_leader_epoch: i32,
    /// Magic byte, always 2.
    pub magic: i8,
    /// CRC-32C stored in the batch (checked on decode).
    pub crc: u32,
    /// Attribute bits, see [`attributes`].
    pub attributes: i16,
    /// Offset delta of the last record.
    pub last_offset_delta: i32,
    /// Timestamp the record deltas are relative to.
    pub base_timestamp: i64,
    /// Largest record timestamp.
    pub max_timestamp: i64,
    /// Producer id, -1 without idempotence.
    pub producer_id: i64,
    /// Producer epoch, -1 without idempotence.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 without idempotence.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
    /// Records section as on the wire.
    pub records: Bytes,
}

impl RecordBatch {
    /// Decodes one batch from the front of `buf`, checking its length, magic 2
    /// and CRC-32C. On error `buf` is left as it was.
    pub fn decode(buf: &mut Bytes) -> Result<RecordBatch> {
        let b: &[u8] = buf;
        if b.len() < RECORD_BATCH_OVERHEAD {
            return Err(ProtocolError::Truncated {
                needed: RECORD_BATCH_OVERHEAD - b.len(),
            });
        }
        let length = i32::from_be_bytes(be(b, OFF_LENGTH));
        if length < LENGTH_OVERHEAD as i32 {
            return Err(ProtocolError::BadLength(length as i64));
        }
        let total = 12 + length as usize;
        if b.len() < total {
            return Err(ProtocolError::Truncated {
                needed: total - b.len(),
            });
        }
        let magic = b[OFF_MAGIC] as i8;
        if magic != MAGIC {
            return Err(ProtocolError::BadMagic(magic));
        }
        let crc = u32::from_be_bytes(be(b, OFF_CRC));
        let computed = crc32c(&b[OFF_ATTRIBUTES..total]);
        if crc != computed {
            return Err(ProtocolError::BadCrc {
                expected: crc,
                computed,
            });
        }
        let attributes = i16::from_be_bytes(be(b, OFF_ATTRIBUTES));
        if Compression::from_attributes(attributes).is_none() {
            return Err(ProtocolError::Invalid(
                "unknown compression codec in batch attributes",
            ));
        }
        let batch = RecordBatch {
            base_offset: i64::from_be_bytes(be(b, 0)),
            partition_leader_epoch: i32::from_be_bytes(be(b, 12)),
            magic,
            crc,
            attributes,
            last_offset_delta: i32::from_be_bytes(be(b, 23)),
            base_timestamp: i64::from_be_bytes(be(b, 27)),
            max_timestamp: i64::from_be_bytes(be(b, 35)),
            producer_id: i64::from_be_bytes(be(b, 43)),
            producer_epoch: i16::from_be_bytes(be(b, 51)),
            base_sequence: i32::from_be_bytes(be(b, 53)),
            record_count: i32::from_be_bytes(be(b, 57)),
            records: buf.slice(RECORD_BATCH_OVERHEAD..total),
        };
        let _ = buf.split_to(total);
        Ok(batch)
    }

    /// Decodes every batch of `bytes` (the records field of a Produce request or
    /// a Fetch response partition). A trailing partial batch is an error.
    pub fn decode_all(mut bytes: Bytes) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            out.push(Self::decode(&mut bytes)?);
        }
        Ok(out)
    }

    /// Codec of the records section.
    pub fn compression(&self) -> Compression {
        // `decode` rejects codecs 5..=7; a batch built by hand with one reads as none.
        Compression::from_attributes(self.attributes).unwrap_or(Compression::None)
    }

    /// Whether the transactional bit is set.
    pub fn is_transactional(&self) -> bool {
        self.attributes & attributes::TRANSACTIONAL != 0
    }

    /// Whether this is a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & attributes::CONTROL != 0
    }

    /// Decompresses (at most [`DEFAULT_MAX_RECORDS_SIZE`] bytes) and decodes the records.
    pub fn records(&self) -> Result<Vec<Record>> {
        self.records_with_limit(DEFAULT_MAX_RECORDS_SIZE)
    }

    /// Like [`RecordBatch::records`] with an explicit bound on the decompressed size.
    pub fn records_with_limit(&self, max_decompressed: usize) -> Result<Vec<Record>> {
        if self.record_count < 0 {
            return Err(ProtocolError::BadLength(self.record_count as i64));
        }
        let codec = Compression::from_attributes(self.attributes).ok_or(ProtocolError::Invalid(
            "unknown compression codec in batch attributes",
        ))?;
        let data = match codec {
            Compression::None => self.records.clone(),
            c => compression::decompress(c, &self.records, max_decompressed)?,
        };
        decode_records(&data, self.record_count)
    }

    /// Appends the batch's wire form, exactly as decoded (stored CRC included).
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(RECORD_BATCH_OVERHEAD + self.records.len());
        out.put_i64(self.base_offset);
        out.put_i32((LENGTH_OVERHEAD + self.records.len()) as i32);
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(self.magic);
        out.put_u32(self.crc);
        out.put_i16(self.attributes);
        out.put_i32(self.last_offset_delta);
        out.put_i64(self.base_timestamp);
        out.put_i64(self.max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(self.record_count);
        out.put_slice(&self.records);
    }

    /// The CRC-32C the batch's current fields and records give (what `crc` should be).
    pub fn compute_crc(&self) -> u32 {
        let mut h = [0u8; RECORD_BATCH_OVERHEAD - OFF_ATTRIBUTES];
        {
            let mut w = &mut h[..];
            w.put_i16(self.attributes);
            w.put_i32(self.last_offset_delta);
            w.put_i64(self.base_timestamp);
            w.put_i64(self.max_timestamp);
            w.put_i64(self.producer_id);
            w.put_i16(self.producer_epoch);
            w.put_i32(self.base_sequence);
            w.put_i32(self.record_count);
        }
        crc32c_concat(&h, &self.records)
    }
}

fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b[at..at + N].try_into().expect("length checked by caller")
}

/// A bounds-checked reader over a records section.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    #[inline(always)]
    fn truncated() -> ProtocolError {
        ProtocolError::Truncated { needed: 1 }
    }
    #[inline(always)]
    fn u8(&mut self) -> Result<u8> {
        let v = *self.b.get(self.pos).ok_or_else(Self::truncated)?;
        self.pos += 1;
        Ok(v)
    }
    #[inline(always)]
    fn uvarlong(&mut self, max_bytes: usize) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..max_bytes {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtocolError::BadVarint(max_bytes))
    }
    #[inline(always)]
    fn varint(&mut self) -> Result<i32> {
        let u = self.uvarlong(5)? as u32;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
    }
    #[inline(always)]
    fn varlong(&mut self) -> Result<i64> {
        let u = self.uvarlong(10)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    /// A length-prefixed field: `Ok(None)` for -1, the byte range otherwise.
    #[inline(always)]
    fn nullable(&mut self) -> Result<Option<Range<usize>>> {
        let len = self.varint()?;
        if len < 0 {
            return if len == -1 {
                Ok(None)
            } else {
                Err(ProtocolError::BadLength(len as i64))
            };
        }
        self.take(len as usize).map(Some)
    }
    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<Range<usize>> {
        let left = self.b.len() - self.pos;
        if n > left {
            return Err(ProtocolError::Truncated { needed: n - left });
        }
        let r = self.pos..self.pos + n;
        self.pos += n;
        Ok(r)
    }
}

/// Decodes exactly `count` records filling all of `data` (an uncompressed
/// records section); keys, values and header values are zero-copy slices of it.
pub fn decode_records(data: &Bytes, count: i32) -> Result<Vec<Record>> {
    if count < 0 || count as usize > data.len() / MIN_RECORD_SIZE {
        return Err(ProtocolError::BadLength(count as i64));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut c = Cursor { b: data, pos: 0 };
    for _ in 0..count {
        out.push(decode_record(data, &mut c)?);
    }
    if c.pos != data.len() {
        return Err(ProtocolError::TrailingBytes(data.len() - c.pos));
    }
    Ok(out)
}

#[inline]
fn decode_record(data: &Bytes, outer: &mut Cursor<'_>) -> Result<Record> {
    let len = outer.varint()?;
    if len < 0 {
        return Err(ProtocolError::BadLength(len as i64));
    }
    let range = outer.take(len as usize)?;
    let mut c = Cursor {
        b: &data[..range.end],
        pos: range.start,
    };
    let attributes = c.u8()? as i8;
    let timestamp_delta = c.varlong()?;
    let offset_delta = c.varint()?;
    let key = c.nullable()?.map(|r| data.slice(r));
    let value = c.nullable()?.map(|r| data.slice(r));
    let n = c.varint()?;
    // Each header takes at least two bytes.
    if n < 0 || n as usize > (range.end - c.pos) / 2 {
        return Err(ProtocolError::BadLength(n as i64));
    }
    let mut headers = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let klen = c.varint()?;
        if klen < 0 {
            return Err(ProtocolError::BadLength(klen as i64));
        }
        let k = c.take(klen as usize)?;
        let key = std::str::from_utf8(&data[k])
            .map_err(|_| ProtocolError::BadString)?
            .to_owned();
        let value = c.nullable()?.map(|r| data.slice(r));
        headers.push(Header { key, value });
    }
    if c.pos != range.end {
        return Err(ProtocolError::TrailingBytes(range.end - c.pos));
    }
    Ok(Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

/// Rewrites the CRC of every whole batch found in `data` so that it matches,
/// stopping at the first thing that is not a plausible batch. Lets fuzzing
/// reach past the CRC check.
fn fix_crcs(data: &mut [u8]) {
    let mut at = 0;
    while data.len() - at >= RECORD_BATCH_OVERHEAD {
        let length = i32::from_be_bytes(be(data, at + OFF_LENGTH));
        if length < LENGTH_OVERHEAD as i32 || data.len() - at - 12 < length as usize {
            return;
        }
        let end = at + 12 + length as usize;
        let crc = crc32c(&data[at + OFF_ATTRIBUTES..end]);
        data[at + OFF_CRC..at + OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}

/// The record-batch fuzz target, shared by `fuzz/` and the corpus replay test.
///
/// Decodes `data` as batches (as given, and again with every CRC fixed so that
/// the record decoder is reached); must never panic. A successful decode must
/// re-encode to identical bytes; decoded records must re-encode to the same
/// records, and a batch rebuilt from them with [`BatchBuilder`] must decode to them.
pub fn fuzz_record_batch(data: &[u8]) {
    let _ = check_batches(data);
    let mut fixed = data.to_vec();
    fix_crcs(&mut fixed);
    if let Ok(batches) = check_batches(&fixed) {
        for b in &batches {
            check_records(b);
        }
    }
}

fn check_batches(data: &[u8]) -> Result<Vec<RecordBatch>> {
    let batches = RecordBatch::decode_all(Bytes::copy_from_slice(data))?;
    let mut out = BytesMut::with_capacity(data.len());
    for b in &batches {
        assert_eq!(b.compute_crc(), b.crc, "decoded batch with a wrong CRC");
        b.encode(&mut out);
    }
    assert_eq!(&out[..], data, "decode/encode is not the identity");
    Ok(batches)
}

fn check_records(batch: &RecordBatch) {
    let Ok(records) = batch.records_with_limit(1 << 20) else {
        return;
    };
    assert_eq!(records.len(), batch.record_count as usize);
    let mut again = BytesMut::new();
    for r in &records {
        let n = r.encode(&mut again);
        assert_eq!(n, r.encoded_len());
    }
    let again = again.freeze();
    let decoded = decode_records(&again, records.len() as i32).expect("re-encoded records decode");
    assert_eq!(decoded, records);
    if records.is_empty() {
        return;
    }
    let mut builder = BatchBuilder::new(batch.base_timestamp, 0);
    for r in &records {
        let ts = batch.base_timestamp.wrapping_add(r.timestamp_delta);
        let predicted =
            builder.next_record_size(ts, r.key.as_deref(), r.value.as_deref(), &r.headers);
        let n = builder.append(ts, r.key.as_deref(), r.value.as_deref(), &r.headers);
        assert_eq!(n, predicted);
    }
    let mut closed = builder
        .close(Compression::None, None)
        .expect("non-empty batch");
    closed.stamp(
        batch.producer_id,
        batch.producer_epoch,
        batch.base_sequence,
        batch.is_transactional(),
    );
    let rebuilt = RecordBatch::decode(&mut closed.bytes()).expect("built batch decodes");
    let rebuilt_records = rebuilt.records().expect("built records decode");
    assert_eq!(rebuilt_records.len(), records.len());
    for (i, (a, b)) in rebuilt_records.iter().zip(&records).enumerate() {
        assert_eq!(a.offset_delta, i as i32);
        assert_eq!(a.timestamp_delta, b.timestamp_delta);
        assert_eq!(
            (&a.key, &a.value, &a.headers),
            (&b.key, &b.value, &b.headers)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn header_layout() {
        let mut b = BatchBuilder::new(1000, 0);
        assert_eq!(b.len(), RECORD_BATCH_OVERHEAD);
        b.append(1005, None, Some(b"v"), &[]);
        b.append(999, Some(b"k"), None, &[]);
        let c = b.close(Compression::None, None).unwrap();
        let w = c.bytes();
        assert_eq!(&w[0..8], &[0; 8]);
        assert_eq!(i32::from_be_bytes(be(&w, 8)) as usize, w.len() - 12);
        assert_eq!(&w[12..16], &[0xff; 4]);
        assert_eq!(w[16], 2);
        assert_eq!(u32::from_be_bytes(be(&w, 17)), crc32c::crc32c(&w[21..]));
        assert_eq!(i16::from_be_bytes(be(&w, 21)), 0);
        assert_eq!(i32::from_be_bytes(be(&w, 23)), 1);
        assert_eq!(i64::from_be_bytes(be(&w, 27)), 1000);
        assert_eq!(i64::from_be_bytes(be(&w, 35)), 1005);
        assert_eq!(i64::from_be_bytes(be(&w, 43)), -1);
        assert_eq!(i16::from_be_bytes(be(&w, 51)), -1);
        assert_eq!(i32::from_be_bytes(be(&w, 53)), -1);
        assert_eq!(i32::from_be_bytes(be(&w, 57)), 2);
        // Record 0: body length 7 (zigzag 14), attrs 0, ts delta 5 (zigzag 10),
        // offset 0, key null (zigzag -1 = 1), value len 1 (zigzag 2), 'v', no headers.
        assert_eq!(&w[61..69], &[14, 0, 10, 0, 1, 2, b'v', 0]);
        // Record 1: ts delta -1 (zigzag 1), offset 1 (zigzag 2), key "k", value null.
        assert_eq!(&w[69..], &[14, 0, 1, 2, 2, b'k', 1, 0]);
    }

    #[test]
    fn records_hashed_ahead_give_the_one_pass_crc() {
        // Sizes either side of the chunk, so batches close with nothing,
        // one and several chunks hashed ahead, and a remainder of any length.
        let values: Vec<Vec<u8>> = [1, 100, 1000, 5000, 33_000]
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        for total in [10_000, CRC_CHUNK - 200, CRC_CHUNK + 1, 3 * CRC_CHUNK + 999] {
            for codec in Compression::ALL.into_iter().filter(|c| c.is_available()) {
                for at_close in [false, true] {
                    let mut b = BatchBuilder::new(1000, total);
                    if at_close {
                        b = b.hash_at_close();
                    }
                    let mut i = 0;
                    while b.len() < total {
                        let v = &values[i % values.len()];
                        let h = [Header::new("h", vec![i as u8])];
                        b.append(1000 + i as i64, Some(b"key"), Some(v), &h[..i % 2]);
                        i += 1;
                    }
                    let mut c = b.close(codec, None).unwrap();
                    let w = c.bytes();
                    let crc = u32::from_be_bytes(be(&w, OFF_CRC));
                    assert_eq!(
                        crc,
                        crc32c::crc32c(&w[21..]),
                        "{total} {codec:?} {at_close}"
                    );
                    // Restamping keeps it right too.
                    c.stamp(7, 1, 42, false);
                    let mut w = c.bytes();
                    let decoded = RecordBatch::decode(&mut w).expect("valid CRC");
                    assert_eq!(decoded.records().unwrap().len(), i);
                }
            }
        }
    }

    #[test]
    fn empty_batch_does_not_close() {
        assert!(BatchBuilder::new(0, 0)
            .close(Compression::None, None)
            .is_err());
    }
}
