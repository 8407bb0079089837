//! The `record_batch` target: RecordBatch v2 decoding, re-encoding and
//! rebuilding on arbitrary bytes.

use bytes::{Bytes, BytesMut};

use crate::protocol::checksum::crc32c;
use crate::protocol::compression::Compression;
use crate::protocol::error::Result;
use crate::protocol::record::{
    be, decode_records, BatchBuilder, RecordBatch, LENGTH_OVERHEAD, OFF_ATTRIBUTES, OFF_CRC,
    OFF_LENGTH, RECORD_BATCH_OVERHEAD,
};

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
