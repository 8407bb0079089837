//! RecordBatch v2 codec: external vectors, round trips, stamping, bad input,
//! compression, and the fuzz corpus replay.

use bytes::{Bytes, BytesMut};
use kafka_sansio::fuzz::fuzz_record_batch;
use kafka_sansio::protocol::compression;
use kafka_sansio::protocol::record::RECORD_BATCH_OVERHEAD;
use kafka_sansio::protocol::{
    BatchBuilder, Compression, Header, ProtocolError, Record, RecordBatch,
};
use quickcheck::{quickcheck, TestResult};

fn codecs() -> impl Iterator<Item = Compression> {
    Compression::ALL.into_iter().filter(|c| c.is_available())
}

#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

/// Batch header of the Sarama (Go client) test vectors in record_test.go,
/// `recordBatchTestCases`: FirstTimestamp 1479847795000 ms, MaxTimestamp 0,
/// all producer fields and the leader epoch 0.
fn sarama_header(length: u8, crc: [u8; 4], codec: u8) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, length, 0, 0, 0, 0, 2];
    v.extend_from_slice(&crc);
    v.extend_from_slice(&[0, codec, 0, 0, 0, 0]);
    v.extend_from_slice(&[0, 0, 1, 88, 141, 205, 89, 56]);
    v.extend_from_slice(&[0; 8 + 8 + 2 + 4]);
    v.extend_from_slice(&[0, 0, 0, 1]);
    v
}

/// The single record of those vectors: timestamp delta 5, key 01020304,
/// value 050607, one header "\x08\x09\x0a" = 0b0c.
const SARAMA_RECORD: [u8; 21] = [
    40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12,
];

fn sarama_vectors() -> Vec<(Compression, Vec<u8>)> {
    let mut out = Vec::new();
    let mut none = sarama_header(70, [84, 121, 97, 253], 0);
    none.extend_from_slice(&SARAMA_RECORD);
    out.push((Compression::None, none));
    let mut gzip = sarama_header(95, [231, 74, 206, 165], 1);
    gzip.extend_from_slice(&[
        31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 0, 21, 0, 234, 255, 40, 0, 10, 0, 8, 1, 2, 3, 4, 6,
        5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12, 3, 0, 173, 201, 88, 103, 21, 0, 0, 0,
    ]);
    out.push((Compression::Gzip, gzip));
    // Sarama writes plain raw snappy, as librdkafka does.
    let mut snappy = sarama_header(72, [21, 0, 159, 97], 2);
    snappy.extend_from_slice(&[
        21, 80, 40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12,
    ]);
    out.push((Compression::Snappy, snappy));
    let mut lz4 = sarama_header(89, [169, 74, 119, 197], 3);
    lz4.extend_from_slice(&[
        4, 34, 77, 24, 100, 112, 185, 21, 0, 0, 128, 40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6,
        8, 9, 10, 4, 11, 12, 0, 0, 0, 0, 12, 59, 239, 146,
    ]);
    out.push((Compression::Lz4, lz4));
    out
}

fn sarama_expected_record() -> Record {
    Record {
        attributes: 0,
        timestamp_delta: 5,
        offset_delta: 0,
        key: Some(Bytes::from_static(&[1, 2, 3, 4])),
        value: Some(Bytes::from_static(&[5, 6, 7])),
        headers: vec![Header::new("\x08\x09\x0a", Bytes::from_static(&[11, 12]))],
    }
}

#[test]
fn external_vectors_decode_and_reencode() {
    for (codec, wire) in sarama_vectors() {
        let mut buf = Bytes::from(wire.clone());
        let batch = RecordBatch::decode(&mut buf).unwrap_or_else(|e| panic!("{codec}: {e}"));
        assert!(buf.is_empty());
        assert_eq!(batch.compression(), codec);
        assert_eq!(batch.base_timestamp, 1_479_847_795_000);
        assert_eq!(batch.record_count, 1);
        let mut out = BytesMut::new();
        batch.encode(&mut out);
        assert_eq!(&out[..], &wire[..], "{codec}: decode/encode identity");
        if codec.is_available() {
            assert_eq!(
                batch.records().unwrap(),
                vec![sarama_expected_record()],
                "{codec}"
            );
        } else {
            assert!(matches!(
                batch.records(),
                Err(ProtocolError::Compression(_))
            ));
        }
    }
}

#[test]
fn builder_writes_the_external_record_bytes() {
    let base = 1_479_847_795_000;
    let r = sarama_expected_record();
    let mut b = BatchBuilder::new(base, 0);
    let predicted =
        BatchBuilder::record_size(5, 0, Some(&[1, 2, 3, 4]), Some(&[5, 6, 7]), &r.headers);
    let n = b.append(base + 5, r.key.as_deref(), r.value.as_deref(), &r.headers);
    assert_eq!((n, predicted), (21, 21));
    let mut closed = b.close(Compression::None, None).unwrap();
    closed.stamp(0, 0, 0, false);
    let ours = closed.bytes();
    // Records section byte-identical to Sarama's.
    assert_eq!(&ours[RECORD_BATCH_OVERHEAD..], &SARAMA_RECORD[..]);
    // Header identical except the fields a Java-style producer sets differently:
    // partition leader epoch -1 (Sarama 0), max timestamp = largest record
    // timestamp (Sarama 0), and hence the CRC.
    let (_, sarama) = &sarama_vectors()[0];
    let mut expected = sarama.clone();
    expected[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    expected[35..43].copy_from_slice(&(base + 5).to_be_bytes());
    let crc = crc32c::crc32c(&expected[21..]);
    expected[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(&ours[..], &expected[..]);
}

/// try_append writes what append writes, and past its limit writes nothing
/// and says how many bytes the record needed.
#[test]
fn try_append_matches_append_and_respects_the_limit() {
    let base = 1_700_000_000_000;
    let r = sarama_expected_record();
    let (mut a, mut b) = (BatchBuilder::new(base, 0), BatchBuilder::new(base, 0));
    for i in 0..50i64 {
        let ts = base + i * 3;
        let n = a.append(ts, r.key.as_deref(), r.value.as_deref(), &r.headers);
        let m = b.try_append(
            ts,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
            usize::MAX,
        );
        assert_eq!(Ok(n), m);
    }
    let len = b.len();
    let need = b.next_record_size(base + 200, r.key.as_deref(), r.value.as_deref(), &r.headers);
    let refused = b.try_append(
        base + 200,
        r.key.as_deref(),
        r.value.as_deref(),
        &r.headers,
        len + need - 1,
    );
    assert_eq!(refused, Err(need));
    assert_eq!((b.len(), b.record_count()), (len, 50));
    assert_eq!(
        b.try_append(
            base + 200,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
            len + need
        ),
        Ok(need)
    );
    a.append(base + 200, r.key.as_deref(), r.value.as_deref(), &r.headers);
    let (a, b) = (
        a.close(Compression::None, None).unwrap(),
        b.close(Compression::None, None).unwrap(),
    );
    assert_eq!(a.bytes(), b.bytes());
}

/// The records field of a captured Produce request (any version: v7
/// against librdkafka's mock, flexible v10 against tansu), read with the
/// crate's Produce codec (itself checked byte-exact on the same captures).
fn records_field(frame: &Bytes) -> Option<Bytes> {
    use kafka_sansio::protocol::messages::produce::ProduceRequest;
    use kafka_sansio::protocol::{ApiMessage, RequestHeader};
    let mut body = frame.clone();
    let header = RequestHeader::decode(&mut body).ok()?;
    let req = ProduceRequest::decode(&mut body, header.api_version).ok()?;
    req.topic_data
        .into_iter()
        .flat_map(|t| t.partition_data)
        .find_map(|p| p.records)
}

/// librdkafka 2.0.2 (kcat) and 2.16.0 Produce requests captured against
/// librdkafka's mock cluster (v7, each codec) and tansu (v10)
/// (tests/vectors/README.md).
#[test]
fn librdkafka_vectors_roundtrip() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut seen = std::collections::BTreeSet::new();
    let mut batches = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if !path.to_string_lossy().contains("_req_Produce_") {
            continue;
        }
        let frame = Bytes::from(std::fs::read(&path).unwrap());
        let field =
            records_field(&frame).unwrap_or_else(|| panic!("no batch in {}", path.display()));
        let mut out = BytesMut::new();
        for batch in RecordBatch::decode_all(field.clone()).unwrap() {
            batches += 1;
            batch.encode(&mut out);
            let codec = batch.compression();
            seen.insert(codec.name());
            if !codec.is_available() {
                continue;
            }
            let records = batch.records().unwrap();
            assert_eq!(records.len(), batch.record_count as usize);
            // Rebuild from the same fields with our builder and stamp.
            let mut b = BatchBuilder::new(batch.base_timestamp, 0);
            for r in &records {
                b.append(
                    batch.base_timestamp + r.timestamp_delta,
                    r.key.as_deref(),
                    r.value.as_deref(),
                    &r.headers,
                );
            }
            let mut c = b.close(codec, None).unwrap();
            c.stamp(
                batch.producer_id,
                batch.producer_epoch,
                batch.base_sequence,
                batch.is_transactional(),
            );
            let mut rebuilt = RecordBatch::decode(&mut c.bytes()).unwrap();
            assert_eq!(rebuilt.records().unwrap(), records, "{}", path.display());
            if codec == Compression::None {
                // Same bytes but for the leader epoch (librdkafka leaves it 0, Java -1).
                rebuilt.partition_leader_epoch = batch.partition_leader_epoch;
                rebuilt.crc = rebuilt.compute_crc();
                assert_eq!(rebuilt, batch, "{}", path.display());
            } else {
                // Compressed bytes differ between compressors; every other field agrees.
                rebuilt.partition_leader_epoch = batch.partition_leader_epoch;
                rebuilt.crc = batch.crc;
                rebuilt.records = batch.records.clone();
                assert_eq!(rebuilt, batch, "{}", path.display());
            }
        }
        assert_eq!(
            &out[..],
            &field[..],
            "decode/encode identity: {}",
            path.display()
        );
    }
    assert!(batches >= 6, "only {batches} captured batches");
    assert_eq!(seen.len(), 5, "codecs seen: {seen:?}");
}

type Arb = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
    i64,
);

/// Records from arbitrary input, kept small (debug builds, five codecs).
fn to_records(items: &[Arb]) -> Vec<Record> {
    let cap = |b: &Option<Vec<u8>>| {
        b.as_ref()
            .map(|b| Bytes::copy_from_slice(&b[..b.len().min(64)]))
    };
    items
        .iter()
        .take(16)
        .enumerate()
        .map(|(i, (k, v, h, dt))| Record {
            attributes: 0,
            timestamp_delta: *dt,
            offset_delta: i as i32,
            key: cap(k),
            value: cap(v),
            headers: h
                .iter()
                .take(4)
                .map(|(k, v)| Header {
                    key: k.chars().take(16).collect(),
                    value: cap(v),
                })
                .collect(),
        })
        .collect()
}

fn build(base: i64, records: &[Record], codec: Compression) -> kafka_sansio::protocol::ClosedBatch {
    let mut b = BatchBuilder::new(base, 64);
    let mut total = RECORD_BATCH_OVERHEAD;
    for r in records {
        let ts = base.wrapping_add(r.timestamp_delta);
        let predicted = b.next_record_size(ts, r.key.as_deref(), r.value.as_deref(), &r.headers);
        total += b.append(ts, r.key.as_deref(), r.value.as_deref(), &r.headers);
        assert_eq!(total - b.len() + predicted, predicted);
    }
    assert_eq!(b.len(), total);
    b.close(codec, None).unwrap()
}

quickcheck! {
    fn roundtrip_every_codec(base: i64, items: Vec<Arb>, pid: i64, epoch: i16, seq: i32, txn: bool) -> TestResult {
        if items.is_empty() {
            return TestResult::discard();
        }
        // Make duplicate header keys likely.
        let mut items = items;
        if let Some((_, _, h, _)) = items.first_mut() {
            if let Some(first) = h.first().cloned() {
                h.insert(1, first);
            }
        }
        let records = to_records(&items);
        for codec in codecs() {
            let mut closed = build(base, &records, codec);
            closed.stamp(pid, epoch, seq, txn);
            let batch = RecordBatch::decode(&mut closed.bytes()).unwrap();
            assert_eq!(batch.compression(), codec);
            assert_eq!((batch.producer_id, batch.producer_epoch, batch.base_sequence), (pid, epoch, seq));
            assert_eq!(batch.is_transactional(), txn);
            assert_eq!(batch.last_offset_delta, records.len() as i32 - 1);
            let max = records.iter().map(|r| base.wrapping_add(r.timestamp_delta)).max().unwrap();
            assert_eq!(batch.max_timestamp, max);
            assert_eq!(closed.max_timestamp(), max);
            assert_eq!(batch.records().unwrap(), records);
        }
        TestResult::passed()
    }

    fn restamp_with_and_without_live_clone(items: Vec<Arb>, a: (i64, i16, i32, bool), b: (i64, i16, i32, bool)) -> TestResult {
        if items.is_empty() {
            return TestResult::discard();
        }
        let records = to_records(&items);
        let mut closed = build(0, &records, Compression::None);
        // In place: no clone alive, the allocation is reused.
        let ptr = closed.bytes().as_ptr();
        closed.stamp(a.0, a.1, a.2, a.3);
        assert_eq!(closed.bytes().as_ptr(), ptr);
        let first = closed.bytes();
        // With a live clone: copied; the clone keeps the first stamp.
        closed.stamp(b.0, b.1, b.2, b.3);
        let second = closed.bytes();
        for (wire, s) in [(&first, a), (&second, b)] {
            let batch = RecordBatch::decode(&mut wire.clone()).unwrap();
            assert_eq!(batch.crc, crc32c::crc32c(&wire[21..]));
            assert_eq!((batch.producer_id, batch.producer_epoch, batch.base_sequence, batch.is_transactional()), s);
            assert_eq!(batch.records().unwrap(), records);
        }
        assert_eq!(closed.base_sequence(), b.2);
        TestResult::passed()
    }

    fn compression_roundtrip(data: Vec<u8>, repeat: u8) -> bool {
        let mut input = Vec::new();
        for _ in 0..=repeat % 8 {
            input.extend_from_slice(&data);
        }
        codecs().all(|c| {
            let mut out = BytesMut::new();
            compression::compress(c, None, &input, &mut out).unwrap();
            compression::decompress(c, &out, input.len()).unwrap() == input
        })
    }

    fn fuzz_target_never_panics(data: Vec<u8>) -> bool {
        fuzz_record_batch(&data);
        true
    }
}

fn sample_batch(codec: Compression) -> Bytes {
    let mut b = BatchBuilder::new(1_700_000_000_000, 0);
    for i in 0..20u8 {
        let headers = [
            Header::new("h", vec![i]),
            Header {
                key: "h".into(),
                value: None,
            },
        ];
        b.append(
            1_700_000_000_000 + i as i64,
            (i % 3 != 0).then_some(&[i; 3][..]),
            Some(&[i; 40][..]),
            &headers,
        );
    }
    let mut c = b.close(codec, None).unwrap();
    c.stamp(7, 1, 100, false);
    c.bytes()
}

#[test]
fn every_truncation_is_an_error() {
    for codec in codecs() {
        let wire = sample_batch(codec);
        for n in 0..wire.len() {
            let r = RecordBatch::decode(&mut wire.slice(..n));
            assert!(
                matches!(r, Err(ProtocolError::Truncated { .. })),
                "{codec} {n}: {r:?}"
            );
            assert_eq!(RecordBatch::decode_all(wire.slice(..n)).is_err(), n > 0);
        }
        // Two batches, the second cut short.
        let mut two = BytesMut::from(&wire[..]);
        two.extend_from_slice(&wire[..wire.len() - 1]);
        assert!(RecordBatch::decode_all(two.freeze()).is_err());
    }
}

#[test]
fn flipped_bytes_fail_the_crc() {
    let wire = sample_batch(Compression::None);
    for i in 21..wire.len() {
        let mut w = wire.to_vec();
        w[i] ^= 0x01;
        let r = RecordBatch::decode(&mut Bytes::from(w));
        assert!(
            matches!(r, Err(ProtocolError::BadCrc { .. })),
            "byte {i}: {r:?}"
        );
    }
}

#[test]
fn wrong_magic() {
    let mut w = sample_batch(Compression::None).to_vec();
    w[16] = 1;
    assert_eq!(
        RecordBatch::decode(&mut Bytes::from(w)),
        Err(ProtocolError::BadMagic(1))
    );
}

/// A structurally valid batch around `records` with the given count and a correct CRC.
fn forged(records: &[u8], count: i32, attributes: i16) -> Bytes {
    let b = RecordBatch {
        base_offset: 0,
        partition_leader_epoch: -1,
        magic: 2,
        crc: 0,
        attributes,
        last_offset_delta: 0,
        base_timestamp: 0,
        max_timestamp: 0,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: count,
        records: Bytes::copy_from_slice(records),
    };
    let b = RecordBatch {
        crc: b.compute_crc(),
        ..b
    };
    let mut out = BytesMut::new();
    b.encode(&mut out);
    out.freeze()
}

fn records_of(wire: Bytes) -> Result<Vec<Record>, ProtocolError> {
    RecordBatch::decode(&mut wire.clone())?.records()
}

#[test]
fn bad_lengths_and_counts_are_typed_errors() {
    // Batch length below the header size, negative, and huge.
    for len in [0i32, 48, -1, i32::MIN] {
        let mut w = sample_batch(Compression::None).to_vec();
        w[8..12].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            RecordBatch::decode(&mut Bytes::from(w)),
            Err(ProtocolError::BadLength(len as i64))
        );
    }
    let mut w = sample_batch(Compression::None).to_vec();
    w[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        RecordBatch::decode(&mut Bytes::from(w)),
        Err(ProtocolError::Truncated { .. })
    ));

    let one = &SARAMA_RECORD[..];
    // Record counts: negative, huge, one too many, one too few.
    assert_eq!(
        records_of(forged(one, -1, 0)),
        Err(ProtocolError::BadLength(-1))
    );
    assert_eq!(
        records_of(forged(one, i32::MAX, 0)),
        Err(ProtocolError::BadLength(i32::MAX as i64))
    );
    assert!(matches!(
        records_of(forged(one, 2, 0)),
        Err(ProtocolError::Truncated { .. })
    ));
    let mut two = one.to_vec();
    two.extend_from_slice(one);
    assert!(matches!(records_of(forged(&two, 2, 0)), Ok(r) if r.len() == 2));
    assert_eq!(
        records_of(forged(&two, 1, 0)),
        Err(ProtocolError::TrailingBytes(21))
    );
    // Record length negative, and larger than what is there.
    let mut r = one.to_vec();
    r[0] = 1; // zigzag -1
    assert_eq!(
        records_of(forged(&r, 1, 0)),
        Err(ProtocolError::BadLength(-1))
    );
    r[0] = 0xfe; // 0x7ffffff as a 5-byte varint follows
    r.splice(1..1, [0xff, 0xff, 0xff, 0x0f]);
    assert!(matches!(
        records_of(forged(&r, 1, 0)),
        Err(ProtocolError::Truncated { .. })
    ));
    // Key length -2, value length huge, header count huge and negative.
    let mut r = one.to_vec();
    r[4] = 3; // zigzag -2
    assert_eq!(
        records_of(forged(&r, 1, 0)),
        Err(ProtocolError::BadLength(-2))
    );
    let mut r = one.to_vec();
    r[9] = 0x7e; // value length 63 > remaining
    assert!(matches!(
        records_of(forged(&r, 1, 0)),
        Err(ProtocolError::Truncated { .. })
    ));
    let mut r = one.to_vec();
    r[13] = 0x7e; // 63 headers
    assert_eq!(
        records_of(forged(&r, 1, 0)),
        Err(ProtocolError::BadLength(63))
    );
    r[13] = 1; // -1 headers
    assert_eq!(
        records_of(forged(&r, 1, 0)),
        Err(ProtocolError::BadLength(-1))
    );
    // Header key not UTF-8.
    let mut r = one.to_vec();
    r[15] = 0xff;
    assert_eq!(records_of(forged(&r, 1, 0)), Err(ProtocolError::BadString));
    // Unknown codec 5..=7.
    let w = forged(one, 1, 5);
    assert!(matches!(
        RecordBatch::decode(&mut w.clone()),
        Err(ProtocolError::Invalid(_))
    ));
    // Compressed garbage.
    for c in codecs().filter(|c| *c != Compression::None) {
        let r = records_of(forged(
            b"definitely not compressed data",
            1,
            c.attribute_bits(),
        ));
        assert!(
            matches!(
                r,
                Err(ProtocolError::Compression(_)) | Err(ProtocolError::BadLength(_))
            ),
            "{c}: {r:?}"
        );
    }
}

#[test]
fn decompression_is_bounded() {
    let zeros = vec![0u8; 2 << 20];
    for c in codecs().filter(|c| *c != Compression::None) {
        let mut out = BytesMut::new();
        compression::compress(c, None, &zeros, &mut out).unwrap();
        assert!(out.len() < 256 << 10, "{c} compresses zeros");
        let r = compression::decompress(c, &out, 256 << 10);
        assert!(
            matches!(&r, Err(ProtocolError::Compression(m)) if m.contains("exceeds")),
            "{c}: {r:?}"
        );
        assert_eq!(
            compression::decompress(c, &out, 2 << 20).unwrap().len(),
            2 << 20
        );
        // Through a batch: a record count that fits, records far larger than the limit.
        let mut rec = BytesMut::new();
        let big = Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: None,
            value: Some(Bytes::from(zeros.clone())),
            headers: vec![],
        };
        big.encode(&mut rec);
        let mut comp = BytesMut::new();
        compression::compress(c, None, &rec, &mut comp).unwrap();
        let batch = RecordBatch::decode(&mut forged(&comp, 1, c.attribute_bits())).unwrap();
        assert!(matches!(
            batch.records_with_limit(256 << 10),
            Err(ProtocolError::Compression(_))
        ));
        assert_eq!(
            batch.records().unwrap()[0].value.as_ref().unwrap().len(),
            2 << 20
        );
    }
}

#[cfg(feature = "snappy")]
#[test]
fn snappy_is_xerial_framed_and_reads_both_forms() {
    use kafka_sansio::protocol::compression::XERIAL_SNAPPY_HEADER;
    let input: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut out = BytesMut::new();
    compression::compress(Compression::Snappy, None, &input, &mut out).unwrap();
    assert_eq!(&out[..16], &XERIAL_SNAPPY_HEADER);
    // 100 000 bytes in 32 KiB chunks: 4 chunks, each [i32 len][raw block].
    let mut rest = &out[16..];
    let mut chunks = 0;
    while !rest.is_empty() {
        let n = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        rest = &rest[4 + n..];
        chunks += 1;
    }
    assert_eq!(chunks, 4);
    assert_eq!(
        compression::decompress(Compression::Snappy, &out, input.len()).unwrap(),
        input
    );
    // Plain raw snappy (librdkafka, Sarama).
    let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
    assert_eq!(
        compression::decompress(Compression::Snappy, &raw, input.len()).unwrap(),
        input
    );
    // Two concatenated xerial streams.
    let mut two = out.to_vec();
    two.extend_from_slice(&out);
    assert_eq!(
        compression::decompress(Compression::Snappy, &two, 2 * input.len())
            .unwrap()
            .len(),
        2 * input.len()
    );
    // Truncated xerial chunk.
    assert!(
        compression::decompress(Compression::Snappy, &out[..out.len() - 1], input.len()).is_err()
    );
}

#[cfg(feature = "zstd")]
#[test]
fn zstd_levels_are_respected() {
    let input: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(i) >> 7) as u8)
        .collect();
    let size = |l| {
        let mut out = BytesMut::new();
        compression::compress(Compression::Zstd, Some(l), &input, &mut out).unwrap();
        assert_eq!(
            compression::decompress(Compression::Zstd, &out, input.len()).unwrap(),
            input
        );
        out.len()
    };
    assert!(size(19) < size(1));
    assert!(
        compression::compress(Compression::Zstd, Some(99), &input, &mut BytesMut::new()).is_err()
    );
}

#[cfg(feature = "lz4")]
#[test]
fn lz4_is_a_standard_frame() {
    let mut out = BytesMut::new();
    compression::compress(Compression::Lz4, None, b"hello hello hello hello", &mut out).unwrap();
    // LZ4 frame magic, FLG version 01 + block independence, BD 64 KiB.
    assert_eq!(&out[..6], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40]);
}

#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/record_batch");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        fuzz_record_batch(&data);
        n += 1;
    }
    assert!(n >= 5, "seed corpus missing: {}", dir.display());
}
