//! Control batches: the commit and abort markers a transaction coordinator
//! writes into each partition of a transaction (Kafka's `ControlRecordType`
//! and `EndTransactionMarker`). A control batch has the control and
//! transactional attribute bits, the transaction's producer id and epoch,
//! no sequence, and one record whose key is `version: i16, type: i16` and
//! whose value is `version: i16, coordinator_epoch: i32`.

use bytes::{Bytes, BytesMut};

use super::compression::Compression;
use super::error::{ProtocolError, Result};
use super::record::{attributes, BatchBuilder, Record, RecordBatch};

/// Version of the control record key this codec writes.
pub const CONTROL_KEY_VERSION: i16 = 0;
/// Version of the end-transaction marker value this codec writes.
pub const MARKER_VALUE_VERSION: i16 = 0;

/// What a control record marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlType {
    /// The transaction was aborted (type 0).
    Abort,
    /// The transaction was committed (type 1).
    Commit,
}

impl ControlType {
    /// Kafka's numeric type.
    pub const fn code(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
        }
    }
}

/// An end-transaction marker as read from or written to a control batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndTxnMarker {
    /// Commit or abort.
    pub control_type: ControlType,
    /// The epoch of the coordinator that wrote the marker.
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// The marker's record key (`version`, `type`).
    pub fn key(&self) -> [u8; 4] {
        let mut k = [0u8; 4];
        k[..2].copy_from_slice(&CONTROL_KEY_VERSION.to_be_bytes());
        k[2..].copy_from_slice(&self.control_type.code().to_be_bytes());
        k
    }

    /// The marker's record value (`version`, `coordinator_epoch`).
    pub fn value(&self) -> [u8; 6] {
        let mut v = [0u8; 6];
        v[..2].copy_from_slice(&MARKER_VALUE_VERSION.to_be_bytes());
        v[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        v
    }

    /// The whole control batch (at base offset 0) for the transaction of
    /// `producer_id` and `producer_epoch`, timestamped `timestamp_ms`.
    pub fn encode_batch(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        timestamp_ms: i64,
    ) -> Result<Bytes> {
        let mut b = BatchBuilder::new(timestamp_ms, 64);
        b.append(timestamp_ms, Some(&self.key()), Some(&self.value()), &[]);
        let mut closed = b.close(Compression::None, None)?;
        closed.stamp(producer_id, producer_epoch, -1, true);
        // The builder has no control bit: set it and hash the header again.
        let mut batch = RecordBatch::decode(&mut closed.bytes())?;
        batch.attributes |= attributes::CONTROL;
        batch.crc = batch.compute_crc();
        let mut out = BytesMut::with_capacity(closed.len());
        batch.encode(&mut out);
        Ok(out.freeze())
    }

    /// Reads the marker of a control record.
    pub fn from_record(record: &Record) -> Result<EndTxnMarker> {
        let key = record
            .key
            .as_ref()
            .ok_or(ProtocolError::Invalid("control record without a key"))?;
        if key.len() < 4 {
            return Err(ProtocolError::Invalid(
                "control record key shorter than 4 bytes",
            ));
        }
        let version = i16::from_be_bytes([key[0], key[1]]);
        if version < 0 {
            return Err(ProtocolError::Invalid(
                "negative control record key version",
            ));
        }
        let control_type = match i16::from_be_bytes([key[2], key[3]]) {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            _ => {
                return Err(ProtocolError::Invalid(
                    "control record is not a transaction marker",
                ))
            }
        };
        let value = record
            .value
            .as_ref()
            .ok_or(ProtocolError::Invalid("transaction marker without a value"))?;
        if value.len() < 6 {
            return Err(ProtocolError::Invalid(
                "transaction marker value shorter than 6 bytes",
            ));
        }
        if i16::from_be_bytes([value[0], value[1]]) < 0 {
            return Err(ProtocolError::Invalid(
                "negative transaction marker version",
            ));
        }
        Ok(EndTxnMarker {
            control_type,
            coordinator_epoch: i32::from_be_bytes([value[2], value[3], value[4], value[5]]),
        })
    }

    /// Reads the marker of a control batch (its first record).
    pub fn from_batch(batch: &RecordBatch) -> Result<EndTxnMarker> {
        if !batch.is_control() {
            return Err(ProtocolError::Invalid("not a control batch"));
        }
        let records = batch.records()?;
        let first = records
            .first()
            .ok_or(ProtocolError::Invalid("control batch without a record"))?;
        Self::from_record(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_batch_round_trips_with_both_flags() {
        for control_type in [ControlType::Commit, ControlType::Abort] {
            let m = EndTxnMarker {
                control_type,
                coordinator_epoch: 7,
            };
            let bytes = m.encode_batch(42, 3, 1_700_000_000_000).unwrap();
            let mut buf = bytes.clone();
            let batch = RecordBatch::decode(&mut buf).unwrap();
            assert!(buf.is_empty());
            assert!(batch.is_control());
            assert!(batch.is_transactional());
            assert_eq!(batch.producer_id, 42);
            assert_eq!(batch.producer_epoch, 3);
            assert_eq!(batch.base_sequence, -1);
            assert_eq!(batch.record_count, 1);
            assert_eq!(batch.crc, batch.compute_crc());
            assert_eq!(EndTxnMarker::from_batch(&batch).unwrap(), m);
        }
    }

    #[test]
    fn marker_key_and_value_bytes() {
        let m = EndTxnMarker {
            control_type: ControlType::Commit,
            coordinator_epoch: 0x0102_0304,
        };
        assert_eq!(m.key(), [0, 0, 0, 1]);
        assert_eq!(m.value(), [0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn bad_markers_are_typed_errors() {
        let rec = |key: Option<&'static [u8]>, value: Option<&'static [u8]>| Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: key.map(Bytes::from_static),
            value: value.map(Bytes::from_static),
            headers: Vec::new(),
        };
        for r in [
            rec(None, Some(&[0, 0, 0, 0, 0, 0])),
            rec(Some(&[0, 0, 0]), Some(&[0, 0, 0, 0, 0, 0])),
            rec(Some(&[0, 0, 0, 5]), Some(&[0, 0, 0, 0, 0, 0])),
            rec(Some(&[0, 0, 0, 1]), None),
            rec(Some(&[0, 0, 0, 1]), Some(&[0, 0, 0])),
            rec(Some(&[0xff, 0xff, 0, 1]), Some(&[0, 0, 0, 0, 0, 0])),
        ] {
            assert!(matches!(
                EndTxnMarker::from_record(&r),
                Err(ProtocolError::Invalid(_))
            ));
        }
        // A data batch is not a control batch.
        let mut b = BatchBuilder::new(0, 64);
        b.append(0, None, Some(b"v"), &[]);
        let closed = b.close(Compression::None, None).unwrap();
        let batch = RecordBatch::decode(&mut closed.bytes()).unwrap();
        assert!(EndTxnMarker::from_batch(&batch).is_err());
    }
}
