//! The mock cluster through its public API, with raw encoded requests: one
//! request helper, [`call`] (or [`frame`] and [`decode`] where a test looks
//! at the connection's fate), for every module.

#[cfg(feature = "tls")]
#[path = "../certs/mod.rs"]
mod certs;
mod fetch;
#[cfg(feature = "sasl")]
mod sasl;
#[cfg(feature = "tls")]
mod tls;
mod txn;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_sansio::mock::{HandleResult, MockCluster, MockServer, FIRST_PRODUCER_ID};
use kafka_sansio::protocol::frame::{decode_response, encode_request, Request, RequestHeader};
use kafka_sansio::protocol::messages::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_sansio::protocol::messages::init_producer_id::{
    InitProducerIdRequest, InitProducerIdResponse,
};
use kafka_sansio::protocol::messages::metadata::{
    MetadataRequest, MetadataRequestTopic, MetadataResponse,
};
use kafka_sansio::protocol::messages::produce::{
    PartitionProduceData, PartitionProduceResponse, ProduceRequest, ProduceResponse,
    TopicProduceData,
};
use kafka_sansio::protocol::primitives::{put_varint, put_varlong};
use kafka_sansio::protocol::{ApiKey, BatchBuilder, Compression, ErrorCode};

// ---- helpers ---------------------------------------------------------------

/// A RecordBatch v2 (uncompressed) with `records` (key, value), CRC-32C set.
fn batch(pid: i64, epoch: i16, seq: i32, records: &[(&str, &str)]) -> Bytes {
    let mut recs = BytesMut::new();
    for (i, (k, v)) in records.iter().enumerate() {
        let mut r = BytesMut::new();
        r.put_i8(0);
        put_varlong(&mut r, i as i64); // timestamp delta
        put_varint(&mut r, i as i32); // offset delta
        put_varint(&mut r, k.len() as i32);
        r.put_slice(k.as_bytes());
        put_varint(&mut r, v.len() as i32);
        r.put_slice(v.as_bytes());
        put_varint(&mut r, 1); // one header
        put_varint(&mut r, 1);
        r.put_slice(b"h");
        put_varint(&mut r, -1); // null header value
        put_varint(&mut recs, r.len() as i32);
        recs.put_slice(&r);
    }
    let n = records.len() as i32;
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32((61 - 12 + recs.len()) as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0); // crc, patched below
    b.put_i16(0);
    b.put_i32(n - 1);
    b.put_i64(1_000);
    b.put_i64(1_000 + n as i64 - 1);
    b.put_i64(pid);
    b.put_i16(epoch);
    b.put_i32(seq);
    b.put_i32(n);
    b.put_slice(&recs);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

fn recs(n: usize) -> Vec<(&'static str, &'static str)> {
    vec![("k", "v"); n]
}

/// A request frame without its size prefix, as handle_request wants it.
fn frame<R: Request>(version: i16, req: &R) -> Bytes {
    let mut buf = BytesMut::new();
    encode_request(&mut buf, 7, Some("test"), version, req).unwrap();
    Bytes::from(buf).slice(4..)
}

fn decode<M: kafka_sansio::protocol::ApiMessage>(r: &HandleResult, version: i16) -> M {
    let resp = r.response.clone().expect("a response");
    let size = i32::from_be_bytes(resp[..4].try_into().unwrap()) as usize;
    assert_eq!(size, resp.len() - 4, "size prefix");
    let (h, m) = decode_response::<M>(resp.slice(4..), version).unwrap();
    assert_eq!(h.correlation_id, 7);
    assert!(!r.close);
    m
}

/// Sends one request to broker `node` and decodes its answer.
fn call<R: Request>(c: &mut MockCluster, node: i32, version: i16, req: &R) -> R::Response {
    let r = c.handle_request(node, frame(version, req), Instant::now());
    decode(&r, version)
}

fn produce_req(acks: i16, topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn produce_v(
    c: &mut MockCluster,
    node: i32,
    version: i16,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    let mut req = produce_req(-1, topic, partition, records);
    // v13 names the topic by id (the name is left out). A topic the mock
    // does not know has none: the zero id is then what an unknown topic is
    // asked for by (produce_to_unknown_topic_or_partition).
    req.topic_data[0].topic_id = c.topic_id(topic).unwrap_or_default();
    let r = c.handle_request(node, frame(version, &req), Instant::now());
    let mut resp: ProduceResponse = decode(&r, version);
    resp.responses.remove(0).partition_responses.remove(0)
}

/// Produce v9 to partition 0 of "t", led by node 0.
fn produce(c: &mut MockCluster, records: Bytes) -> PartitionProduceResponse {
    produce_v(c, 0, 9, "t", 0, records)
}

fn ok_at(p: &PartitionProduceResponse, offset: i64) {
    assert_eq!(ErrorCode::from_code(p.error_code), ErrorCode::None, "{p:?}");
    assert_eq!(p.base_offset, offset);
}

fn err(p: &PartitionProduceResponse, e: ErrorCode) {
    assert_eq!(ErrorCode::from_code(p.error_code), e, "{p:?}");
}

fn cluster() -> MockCluster {
    let mut c = MockCluster::new(3);
    c.create_topic("t", 3).unwrap();
    c
}

fn metadata(
    c: &mut MockCluster,
    node: i32,
    version: i16,
    topics: Option<&[&str]>,
) -> MetadataResponse {
    let req = MetadataRequest {
        topics: topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic {
                    name: Some(t.to_string()),
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    };
    let r = c.handle_request(node, frame(version, &req), Instant::now());
    decode(&r, version)
}

// ---- ApiVersions -----------------------------------------------------------

#[test]
fn api_versions_lists_the_codec_ranges_at_every_version() {
    let mut c = cluster();
    for v in 0..=4 {
        let r = c.handle_request(0, frame(v, &ApiVersionsRequest::default()), Instant::now());
        let resp: ApiVersionsResponse = decode(&r, v);
        assert_eq!(resp.error_code, 0);
        // Every API but SASL, which the mock does not serve.
        let sasl = |k: &ApiKey| matches!(k, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
        assert_eq!(resp.api_keys.len(), ApiKey::ALL.len() - 2);
        for k in ApiKey::ALL {
            let a = resp.api_version(k);
            if sasl(&k) {
                assert!(a.is_none(), "{k:?}");
            } else {
                let a = a.unwrap();
                assert_eq!((a.min_version, a.max_version), k.versions());
            }
        }
    }
}

#[test]
fn api_versions_too_new_falls_back_to_v0_unsupported_version() {
    let mut c = cluster();
    let mut buf = BytesMut::new();
    RequestHeader {
        api_key: 18,
        api_version: 9,
        correlation_id: 7,
        client_id: Some("x".into()),
        ..Default::default()
    }
    .encode(&mut buf, 2)
    .unwrap();
    buf.put_u8(0); // empty tagged fields of a would-be flexible body
    let r = c.handle_request(0, buf.freeze(), Instant::now());
    let resp: ApiVersionsResponse = decode(&r, 0);
    assert_eq!(resp.error_code, ErrorCode::UnsupportedVersion.code());
    let a = resp.api_version(ApiKey::ApiVersions).unwrap();
    assert_eq!((a.min_version, a.max_version), (0, 4));
}

#[test]
fn fetch_is_advertised_so_librdkafka_produces_record_batch_v2() {
    // librdkafka only produces RecordBatch v2 (MsgVer2) when a broker
    // advertises Fetch v4 or later.
    let mut c = cluster();
    let r = c.handle_request(0, frame(3, &ApiVersionsRequest::default()), Instant::now());
    let resp: ApiVersionsResponse = decode(&r, 3);
    let fetch = resp.api_version(ApiKey::Fetch).expect("Fetch advertised");
    assert!(fetch.max_version >= 4);
}

#[test]
fn unknown_api_key_or_version_or_garbage_closes_the_connection() {
    let mut c = cluster();
    let mut buf = BytesMut::new();
    RequestHeader {
        api_key: 1, // Fetch
        api_version: 4,
        correlation_id: 1,
        ..Default::default()
    }
    .encode(&mut buf, 1)
    .unwrap();
    let r = c.handle_request(0, buf.freeze(), Instant::now());
    assert!(r.close && r.response.is_none());

    let mut buf = BytesMut::new();
    RequestHeader {
        api_key: 0,
        api_version: 2, // below Produce v3
        correlation_id: 1,
        ..Default::default()
    }
    .encode(&mut buf, 1)
    .unwrap();
    let r = c.handle_request(0, buf.freeze(), Instant::now());
    assert!(r.close && r.response.is_none());

    let r = c.handle_request(0, Bytes::from_static(&[0, 3, 0]), Instant::now());
    assert!(r.close && r.response.is_none());
}

/// `frame` with `extra` bytes after its body.
fn with_trailing(frame: Bytes, extra: &[u8]) -> Bytes {
    let mut b = BytesMut::from(&frame[..]);
    b.put_slice(extra);
    b.freeze()
}

#[test]
fn bytes_after_a_requests_last_field_are_skipped_as_kafka_does() {
    let mut c = cluster();
    let extra = [0xde, 0xad];
    let now = Instant::now();
    // Flexible and classic versions alike: answered as without the extra bytes.
    for v in [0, 3, 4] {
        let f = with_trailing(frame(v, &ApiVersionsRequest::default()), &extra);
        let a: ApiVersionsResponse = decode(&c.handle_request(0, f, now), v);
        assert_eq!(a.error_code, 0, "ApiVersions v{v}");
    }
    for v in [1, 9, 12, 13] {
        let req = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some("t".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let f = with_trailing(frame(v, &req), &extra);
        let m: MetadataResponse = decode(&c.handle_request(0, f, now), v);
        assert_eq!(m.topics.len(), 1, "Metadata v{v}");
        assert_eq!(m.topics[0].error_code, 0, "Metadata v{v}");
    }
    let f = with_trailing(
        frame(
            4,
            &InitProducerIdRequest {
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            },
        ),
        &extra,
    );
    let p: InitProducerIdResponse = decode(&c.handle_request(0, f, now), 4);
    assert_eq!((p.error_code, p.producer_id), (0, FIRST_PRODUCER_ID));
    for (i, v) in [3, 9, 12].into_iter().enumerate() {
        let req = produce_req(-1, "t", 0, batch(-1, -1, -1, &recs(1)));
        let f = with_trailing(frame(v, &req), &extra);
        let mut r: ProduceResponse = decode(&c.handle_request(0, f, now), v);
        ok_at(
            &r.responses.remove(0).partition_responses.remove(0),
            i as i64,
        );
    }
    assert_eq!(c.log_end_offset("t", 0), Some(3));
}

#[test]
fn a_request_short_of_its_fields_or_out_of_range_still_closes_the_connection() {
    let mut c = cluster();
    let now = Instant::now();
    let req = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some("t".into()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    for v in [1, 9, 12] {
        // One byte short: the last topic name (v1) or the tagged fields (v9+).
        let f = frame(v, &req);
        let r = c.handle_request(0, f.slice(..f.len() - 1), now);
        assert!(r.close && r.response.is_none(), "Metadata v{v}");
    }
    // Metadata v1 with the topic name's length at -2, the two bytes after it
    // still there: out of range, whatever follows.
    let f = frame(1, &req);
    let mut b = BytesMut::from(&f[..]);
    let at = b.len() - 3;
    b[at..at + 2].copy_from_slice(&(-2i16).to_be_bytes());
    let r = c.handle_request(0, b.freeze(), now);
    assert!(r.close && r.response.is_none());
    // A produce short of its records closes too, and appends nothing.
    let f = frame(9, &produce_req(-1, "t", 0, batch(-1, -1, -1, &recs(1))));
    let r = c.handle_request(0, f.slice(..f.len() - 10), now);
    assert!(r.close && r.response.is_none());
    assert_eq!(c.log_end_offset("t", 0), Some(0));
}

// ---- Metadata --------------------------------------------------------------

#[test]
fn metadata_at_every_version_lists_brokers_and_leaders() {
    let mut c = cluster();
    c.set_broker_address(1, "b1.example", 19092);
    for v in 1..=13 {
        let m = metadata(&mut c, 0, v, Some(&["t"]));
        // No top-level error (KIP-1102, v13).
        assert_eq!(m.error_code, 0);
        assert_eq!(m.brokers.len(), 3);
        assert_eq!(m.brokers[1].host, "b1.example");
        assert_eq!(m.brokers[1].port, 19092);
        assert_eq!(m.topics.len(), 1);
        let t = &m.topics[0];
        assert_eq!(t.error_code, 0);
        assert_eq!(t.name.as_deref(), Some("t"));
        let leaders: Vec<i32> = t.partitions.iter().map(|p| p.leader_id).collect();
        assert_eq!(leaders, vec![0, 1, 2], "round robin");
        if v >= 2 {
            assert_eq!(m.cluster_id.as_deref(), Some("kafka-sansio-mock"));
        }
        if v >= 10 {
            assert_ne!(t.topic_id, [0; 16]);
            assert_eq!(Some(t.topic_id), c.topic_id("t"));
        }
    }
}

#[test]
fn metadata_all_topics_unknown_topics_and_auto_create() {
    let mut c = cluster();
    c.create_topic("a", 1).unwrap();
    let m = metadata(&mut c, 0, 12, None);
    let names: Vec<_> = m.topics.iter().map(|t| t.name.clone().unwrap()).collect();
    assert_eq!(names, vec!["a", "t"]);

    c.set_auto_create_topics(false);
    let m = metadata(&mut c, 0, 12, Some(&["nope"]));
    assert_eq!(
        m.topics[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    assert_eq!(c.partition_count("nope"), None);

    c.set_auto_create_topics(true);
    c.set_default_partitions(4);
    let m = metadata(&mut c, 0, 12, Some(&["new"]));
    assert_eq!(m.topics[0].error_code, 0);
    assert_eq!(m.topics[0].partitions.len(), 4);
    assert_eq!(c.partition_count("new"), Some(4));

    // The request may forbid auto-creation (v4+).
    let req = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some("forbidden".into()),
            ..Default::default()
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let r = c.handle_request(0, frame(12, &req), Instant::now());
    let m: MetadataResponse = decode(&r, 12);
    assert_eq!(
        m.topics[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );

    let m = metadata(&mut c, 0, 12, Some(&["bad name!"]));
    assert_eq!(
        m.topics[0].error_code,
        ErrorCode::InvalidTopicException.code()
    );
}

// ---- InitProducerId --------------------------------------------------------

fn init_pid(c: &mut MockCluster, version: i16, pid: i64, epoch: i16) -> InitProducerIdResponse {
    let req = InitProducerIdRequest {
        producer_id: pid,
        producer_epoch: epoch,
        ..Default::default()
    };
    let r = c.handle_request(0, frame(version, &req), Instant::now());
    decode(&r, version)
}

#[test]
fn init_producer_id_allocates_and_bumps() {
    let mut c = cluster();
    for v in 0..=5 {
        let r = init_pid(&mut c, v, -1, -1);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.producer_id, FIRST_PRODUCER_ID + v as i64);
        assert_eq!(r.producer_epoch, 0);
    }
    let r = init_pid(&mut c, 4, 1000, 0);
    assert_eq!(
        (r.error_code, r.producer_id, r.producer_epoch),
        (0, 1000, 1)
    );
    // A stale epoch or an id the mock never issued.
    let r = init_pid(&mut c, 4, 1000, 0);
    assert_eq!(r.error_code, ErrorCode::InvalidProducerEpoch.code());
    let r = init_pid(&mut c, 4, 5, 0);
    assert_eq!(r.error_code, ErrorCode::InvalidProducerEpoch.code());
    // A transactional id needs a transaction timeout (see txn.rs for the rest).
    let req = InitProducerIdRequest {
        transactional_id: Some("tx".into()),
        ..Default::default()
    };
    let node = c.coordinator_of("tx");
    let r: InitProducerIdResponse =
        decode(&c.handle_request(node, frame(4, &req), Instant::now()), 4);
    assert_eq!(r.error_code, ErrorCode::InvalidTransactionTimeout.code());
}

// ---- Produce ---------------------------------------------------------------

#[test]
fn produce_appends_and_returns_base_offsets_at_every_version() {
    let mut c = cluster();
    let mut next = 0;
    for v in 3..=13 {
        let p = produce_v(&mut c, 0, v, "t", 0, batch(-1, -1, -1, &recs(3)));
        ok_at(&p, next);
        assert_eq!(p.log_append_time_ms, -1);
        next += 3;
    }
    assert_eq!(c.log_end_offset("t", 0), Some(next));
    assert_eq!(c.log_start_offset("t", 0), Some(0));
    let batches = c.batches("t", 0);
    assert_eq!(batches.len(), 11);
    assert_eq!(batches[1].base_offset, 3);
    assert_eq!(
        &batches[1].bytes[..8],
        &3i64.to_be_bytes(),
        "base offset rewritten"
    );
    assert_eq!(c.produced_batches(), 11);
    assert_eq!(c.produced_records(), 33);
}

/// Produce v13 request naming `topic_id`, to partition `partition`.
fn produce_by_id(
    c: &mut MockCluster,
    node: i32,
    topic_id: [u8; 16],
    partition: i32,
) -> ProduceResponse {
    let mut req = produce_req(-1, "", partition, batch(-1, -1, -1, &recs(1)));
    req.topic_data[0].topic_id = topic_id;
    let r = c.handle_request(node, frame(13, &req), Instant::now());
    decode(&r, 13)
}

#[test]
fn produce_v13_resolves_topics_by_id_and_answers_by_id() {
    let mut c = cluster();
    let id = c.topic_id("t").unwrap();
    let r = produce_by_id(&mut c, 0, id, 0);
    assert_eq!(r.responses.len(), 1);
    assert_eq!(r.responses[0].topic_id, id);
    assert_eq!(r.responses[0].name, "", "v13 carries no name");
    ok_at(&r.responses[0].partition_responses[0], 0);
    assert_eq!(c.log_end_offset("t", 0), Some(1));

    // Not the leader: the new leader is named, as at v10-12.
    let r = produce_by_id(&mut c, 0, id, 1);
    let p = &r.responses[0].partition_responses[0];
    err(p, ErrorCode::NotLeaderOrFollower);
    assert_eq!(p.current_leader.leader_id, 1);
    assert_eq!(r.node_endpoints.len(), 1);

    // An id of no topic (or the zero id): UNKNOWN_TOPIC_ID, echoing the id,
    // nothing appended and no topic created (even with auto-creation on).
    for unknown in [[7u8; 16], [0; 16]] {
        let r = produce_by_id(&mut c, 0, unknown, 0);
        assert_eq!(r.responses[0].topic_id, unknown);
        err(
            &r.responses[0].partition_responses[0],
            ErrorCode::UnknownTopicId,
        );
    }
    assert_eq!(c.topics(), vec!["t".to_string()]);
    assert_eq!(c.produced_batches(), 1);

    // A topic deleted and created again has a new id; the old one is unknown.
    c.delete_topic("t").unwrap();
    assert_eq!(c.delete_topic("t"), Err(ErrorCode::UnknownTopicOrPartition));
    c.create_topic("t", 3).unwrap();
    let new_id = c.topic_id("t").unwrap();
    assert_ne!(new_id, id);
    let m = metadata(&mut c, 0, 13, Some(&["t"]));
    assert_eq!(m.topics[0].topic_id, new_id);
    let r = produce_by_id(&mut c, 0, id, 0);
    err(
        &r.responses[0].partition_responses[0],
        ErrorCode::UnknownTopicId,
    );
    let r = produce_by_id(&mut c, 0, new_id, 0);
    ok_at(&r.responses[0].partition_responses[0], 0);
}

#[test]
fn records_are_read_back_decoded() {
    let mut c = cluster();
    ok_at(
        &produce(&mut c, batch(-1, -1, -1, &[("a", "1"), ("b", "2")])),
        0,
    );
    ok_at(&produce(&mut c, batch(1000, 0, 0, &[("c", "3")])), 2);
    let r = c.records("t", 0).unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(r[1].offset, 1);
    assert_eq!(r[1].key.as_deref(), Some(&b"b"[..]));
    assert_eq!(r[1].value.as_deref(), Some(&b"2"[..]));
    assert_eq!(r[1].timestamp, 1_001);
    assert_eq!(r[1].headers, vec![("h".to_string(), None)]);
    assert_eq!((r[2].offset, r[2].producer_id, r[2].sequence), (2, 1000, 0));
}

/// Every available codec is stored as received and read back decompressed.
#[test]
fn compressed_records_are_read_back_decoded() {
    let mut c = cluster();
    let mut next = 0;
    for codec in Compression::ALL.into_iter().filter(|c| c.is_available()) {
        let mut b = BatchBuilder::new(5_000, 0);
        for i in 0..3u8 {
            b.append(5_000 + i as i64, Some(&[i][..]), Some(&[i; 100][..]), &[]);
        }
        let mut closed = b.close(codec, None).unwrap();
        closed.stamp(-1, -1, -1, false);
        ok_at(&produce(&mut c, closed.bytes()), next);
        let r = c.records("t", 0).unwrap();
        assert_eq!(r.len() as i64, next + 3, "{codec}");
        for (i, rec) in r[next as usize..].iter().enumerate() {
            assert_eq!(rec.offset, next + i as i64, "{codec}");
            assert_eq!(rec.timestamp, 5_000 + i as i64, "{codec}");
            assert_eq!(rec.key.as_deref(), Some(&[i as u8][..]), "{codec}");
            assert_eq!(rec.value.as_deref(), Some(&[i as u8; 100][..]), "{codec}");
        }
        next += 3;
    }
}

/// Codec ids 5..=7 do not exist: the batch is corrupt, nothing is appended.
#[test]
fn an_unknown_codec_is_corrupt() {
    let mut c = cluster();
    let mut b = BytesMut::from(&batch(-1, -1, -1, &recs(1))[..]);
    b[22] |= 5;
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    err(&produce(&mut c, b.freeze()), ErrorCode::CorruptMessage);
    assert_eq!(c.log_end_offset("t", 0), Some(0));
}

#[test]
fn produce_to_a_follower_is_not_leader_with_the_current_leader_from_v10() {
    let mut c = cluster();
    let p = produce_v(&mut c, 0, 9, "t", 1, batch(-1, -1, -1, &recs(1)));
    err(&p, ErrorCode::NotLeaderOrFollower);
    let r = c.handle_request(
        0,
        frame(11, &produce_req(-1, "t", 1, batch(-1, -1, -1, &recs(1)))),
        Instant::now(),
    );
    let resp: ProduceResponse = decode(&r, 11);
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ErrorCode::NotLeaderOrFollower.code());
    assert_eq!(p.current_leader.leader_id, 1);
    assert_eq!(resp.node_endpoints.len(), 1);
    assert_eq!(resp.node_endpoints[0].node_id, 1);
    assert_eq!(c.log_end_offset("t", 1), Some(0));
}

#[test]
fn produce_to_unknown_topic_or_partition() {
    let mut c = cluster();
    c.set_auto_create_topics(false);
    err(
        &produce_v(&mut c, 0, 9, "nope", 0, batch(-1, -1, -1, &recs(1))),
        ErrorCode::UnknownTopicOrPartition,
    );
    err(
        &produce_v(&mut c, 0, 9, "t", 3, batch(-1, -1, -1, &recs(1))),
        ErrorCode::UnknownTopicOrPartition,
    );
    c.set_auto_create_topics(true);
    ok_at(
        &produce_v(&mut c, 0, 9, "auto", 0, batch(-1, -1, -1, &recs(1))),
        0,
    );
}

#[test]
fn produce_rejects_corrupt_and_invalid_batches() {
    let mut c = cluster();
    let good = batch(-1, -1, -1, &recs(2));
    let mut bad_crc = BytesMut::from(&good[..]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    err(
        &produce(&mut c, bad_crc.freeze()),
        ErrorCode::CorruptMessage,
    );
    let truncated = good.slice(..good.len() - 1);
    err(&produce(&mut c, truncated), ErrorCode::CorruptMessage);
    let mut magic1 = BytesMut::from(&good[..]);
    magic1[16] = 1;
    err(&produce(&mut c, magic1.freeze()), ErrorCode::InvalidRecord);
    let mut two = BytesMut::from(&good[..]);
    two.extend_from_slice(&good);
    err(&produce(&mut c, two.freeze()), ErrorCode::InvalidRecord);
    assert_eq!(c.log_end_offset("t", 0), Some(0));
}

#[test]
fn produce_acks_0_has_no_response_but_appends() {
    let mut c = cluster();
    let r = c.handle_request(
        0,
        frame(9, &produce_req(0, "t", 0, batch(-1, -1, -1, &recs(2)))),
        Instant::now(),
    );
    assert_eq!(r.response, None);
    assert!(!r.close);
    assert_eq!(c.log_end_offset("t", 0), Some(2));
}

#[test]
fn non_idempotent_batches_are_always_appended() {
    let mut c = cluster();
    let b = batch(-1, -1, -1, &recs(2));
    ok_at(&produce(&mut c, b.clone()), 0);
    ok_at(&produce(&mut c, b), 2);
}

// ---- idempotence -----------------------------------------------------------

#[test]
fn duplicate_answers_the_original_offset_without_appending() {
    let mut c = cluster();
    ok_at(&produce(&mut c, batch(1000, 0, 0, &recs(2))), 0);
    ok_at(&produce(&mut c, batch(1000, 0, 2, &recs(3))), 2);
    ok_at(&produce(&mut c, batch(1000, 0, 0, &recs(2))), 0);
    ok_at(&produce(&mut c, batch(1000, 0, 2, &recs(3))), 2);
    assert_eq!(c.log_end_offset("t", 0), Some(5));
    assert_eq!(c.producer_state("t", 0, 1000), Some((0, 4)));
}

#[test]
fn only_the_last_five_batches_are_remembered() {
    let mut c = cluster();
    for i in 0..6 {
        ok_at(&produce(&mut c, batch(1000, 0, i, &recs(1))), i as i64);
    }
    // seq 0 fell out of the window: no longer a duplicate, and out of order.
    err(
        &produce(&mut c, batch(1000, 0, 0, &recs(1))),
        ErrorCode::OutOfOrderSequenceNumber,
    );
    ok_at(&produce(&mut c, batch(1000, 0, 1, &recs(1))), 1);
}

#[test]
fn a_gap_is_out_of_order() {
    let mut c = cluster();
    ok_at(&produce(&mut c, batch(1000, 0, 0, &recs(2))), 0);
    err(
        &produce(&mut c, batch(1000, 0, 3, &recs(1))),
        ErrorCode::OutOfOrderSequenceNumber,
    );
    // A batch overlapping but not equal to a stored one is out of order too.
    err(
        &produce(&mut c, batch(1000, 0, 1, &recs(1))),
        ErrorCode::OutOfOrderSequenceNumber,
    );
    ok_at(&produce(&mut c, batch(1000, 0, 2, &recs(1))), 2);
}

#[test]
fn an_old_epoch_is_invalid_producer_epoch() {
    let mut c = cluster();
    ok_at(&produce(&mut c, batch(1000, 1, 0, &recs(1))), 0);
    err(
        &produce(&mut c, batch(1000, 0, 1, &recs(1))),
        ErrorCode::InvalidProducerEpoch,
    );
    err(
        &produce(&mut c, batch(1000, 0, 0, &recs(1))),
        ErrorCode::InvalidProducerEpoch,
    );
}

#[test]
fn a_new_epoch_must_start_at_sequence_zero() {
    let mut c = cluster();
    ok_at(&produce(&mut c, batch(1000, 0, 0, &recs(3))), 0);
    err(
        &produce(&mut c, batch(1000, 1, 3, &recs(1))),
        ErrorCode::OutOfOrderSequenceNumber,
    );
    ok_at(&produce(&mut c, batch(1000, 1, 0, &recs(1))), 3);
    assert_eq!(c.producer_state("t", 0, 1000), Some((1, 0)));
    // The old epoch's batches are forgotten: its duplicate is now fenced.
    err(
        &produce(&mut c, batch(1000, 0, 0, &recs(3))),
        ErrorCode::InvalidProducerEpoch,
    );
}

#[test]
fn sequences_wrap_after_i32_max() {
    let mut c = cluster();
    // An unknown producer may start anywhere (Kafka 2.5+).
    ok_at(&produce(&mut c, batch(1000, 0, i32::MAX - 1, &recs(2))), 0);
    assert_eq!(c.producer_state("t", 0, 1000), Some((0, i32::MAX)));
    ok_at(&produce(&mut c, batch(1000, 0, 0, &recs(2))), 2);
    ok_at(&produce(&mut c, batch(1000, 0, 2, &recs(1))), 4);
    // A batch that itself crosses the wrap.
    let mut c = cluster();
    ok_at(&produce(&mut c, batch(7, 0, i32::MAX, &recs(3))), 0);
    assert_eq!(c.producer_state("t", 0, 7), Some((0, 1)));
    ok_at(&produce(&mut c, batch(7, 0, i32::MAX, &recs(3))), 0);
    ok_at(&produce(&mut c, batch(7, 0, 2, &recs(1))), 3);
}

#[test]
fn an_unknown_producer_is_accepted_at_any_sequence() {
    let mut c = cluster();
    ok_at(&produce(&mut c, batch(1000, 3, 42, &recs(1))), 0);
    ok_at(&produce(&mut c, batch(1000, 3, 43, &recs(1))), 1);
    // State is per partition: partition 0 of another topic knows nothing.
    c.create_topic("u", 1).unwrap();
    ok_at(
        &produce_v(&mut c, 0, 9, "u", 0, batch(1000, 3, 7, &recs(1))),
        0,
    );
}

// ---- faults ----------------------------------------------------------------

#[test]
fn pushed_produce_errors_apply_to_every_partition_and_append_nothing() {
    let mut c = cluster();
    c.create_topic("u", 1).unwrap();
    c.push_errors(
        ApiKey::Produce,
        vec![ErrorCode::NotEnoughReplicas, ErrorCode::RequestTimedOut],
    );
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![
            TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch(-1, -1, -1, &recs(1))),
                    ..Default::default()
                }],
                ..Default::default()
            },
            TopicProduceData {
                name: "u".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch(-1, -1, -1, &recs(1))),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let r: ProduceResponse = decode(&c.handle_request(0, frame(9, &req), Instant::now()), 9);
    for t in &r.responses {
        err(&t.partition_responses[0], ErrorCode::NotEnoughReplicas);
    }
    assert_eq!(c.pending_errors(ApiKey::Produce), 1);
    err(
        &produce(&mut c, batch(-1, -1, -1, &recs(1))),
        ErrorCode::RequestTimedOut,
    );
    ok_at(&produce(&mut c, batch(-1, -1, -1, &recs(1))), 0);
    assert_eq!(c.log_end_offset("u", 0), Some(0));
}

#[test]
fn pushed_errors_for_other_apis() {
    let mut c = cluster();
    c.push_errors(
        ApiKey::InitProducerId,
        vec![ErrorCode::CoordinatorLoadInProgress],
    );
    c.push_errors(ApiKey::Metadata, vec![ErrorCode::LeaderNotAvailable]);
    c.push_errors(ApiKey::ApiVersions, vec![ErrorCode::UnknownServerError]);
    let r = init_pid(&mut c, 4, -1, -1);
    assert_eq!(r.error_code, ErrorCode::CoordinatorLoadInProgress.code());
    assert_eq!(init_pid(&mut c, 4, -1, -1).producer_id, FIRST_PRODUCER_ID);
    let m = metadata(&mut c, 0, 12, Some(&["t"]));
    assert_eq!(m.topics[0].error_code, ErrorCode::LeaderNotAvailable.code());
    assert_eq!(
        metadata(&mut c, 0, 12, Some(&["t"])).topics[0].error_code,
        0
    );
    let r = c.handle_request(0, frame(3, &ApiVersionsRequest::default()), Instant::now());
    let a: ApiVersionsResponse = decode(&r, 3);
    assert_eq!(a.error_code, ErrorCode::UnknownServerError.code());
}

#[test]
fn pushed_metadata_top_level_errors_answer_with_nothing_else() {
    let mut c = cluster();
    c.push_metadata_top_level_errors(vec![
        ErrorCode::RebootstrapRequired,
        ErrorCode::RebootstrapRequired,
    ]);
    let m = metadata(&mut c, 0, 13, Some(&["t"]));
    assert_eq!(m.error_code, ErrorCode::RebootstrapRequired.code());
    assert!(m.brokers.is_empty() && m.topics.is_empty());
    // Before v13 there is no field for it: the answer lists nothing.
    let m = metadata(&mut c, 0, 12, Some(&["t"]));
    assert_eq!(m.error_code, 0);
    assert!(m.brokers.is_empty() && m.topics.is_empty());
    let m = metadata(&mut c, 0, 13, Some(&["t"]));
    assert_eq!(m.error_code, 0);
    assert_eq!(m.brokers.len(), 3);
    assert_eq!(m.topics[0].error_code, 0);
}

#[test]
fn a_lost_response_after_append_then_the_retry_is_a_duplicate() {
    let mut c = cluster();
    c.fail_after_append(1);
    let b = batch(1000, 0, 0, &recs(4));
    let r = c.handle_request(
        0,
        frame(9, &produce_req(-1, "t", 0, b.clone())),
        Instant::now(),
    );
    assert!(r.close && r.response.is_none());
    assert_eq!(
        c.log_end_offset("t", 0),
        Some(4),
        "appended although unanswered"
    );
    // The producer retries the same batch on a new connection: same offset, no copy.
    ok_at(&produce(&mut c, b), 0);
    assert_eq!(c.log_end_offset("t", 0), Some(4));
    ok_at(&produce(&mut c, batch(1000, 0, 4, &recs(1))), 4);
}

#[test]
fn set_leader_moves_leadership_and_bumps_the_leader_epoch() {
    let mut c = cluster();
    ok_at(&produce(&mut c, batch(-1, -1, -1, &recs(1))), 0);
    c.set_leader("t", 0, 2).unwrap();
    err(
        &produce(&mut c, batch(-1, -1, -1, &recs(1))),
        ErrorCode::NotLeaderOrFollower,
    );
    ok_at(
        &produce_v(&mut c, 2, 9, "t", 0, batch(-1, -1, -1, &recs(1))),
        1,
    );
    let m = metadata(&mut c, 1, 12, Some(&["t"]));
    assert_eq!(m.topics[0].partitions[0].leader_id, 2);
    assert_eq!(m.topics[0].partitions[0].leader_epoch, 1);
    assert_eq!(
        c.set_leader("t", 9, 0),
        Err(ErrorCode::UnknownTopicOrPartition)
    );
    assert_eq!(c.set_leader("t", 0, 9), Err(ErrorCode::BrokerNotAvailable));
}

#[test]
fn a_down_broker_closes_connections_but_stays_in_metadata() {
    let mut c = cluster();
    c.set_broker_down(1, true);
    let r = c.handle_request(1, frame(3, &ApiVersionsRequest::default()), Instant::now());
    assert!(r.close && r.response.is_none());
    let m = metadata(&mut c, 0, 12, Some(&["t"]));
    assert_eq!(m.brokers.len(), 3);
    assert_eq!(m.topics[0].partitions[1].leader_id, 1);
    c.set_broker_down(1, false);
    ok_at(
        &produce_v(&mut c, 1, 9, "t", 1, batch(-1, -1, -1, &recs(1))),
        0,
    );
}

#[test]
fn latency_sets_the_due_time_and_throttle_the_field() {
    let mut c = cluster();
    c.set_latency(0, Duration::from_millis(250));
    c.throttle(0, 100);
    let now = Instant::now();
    let r = c.handle_request(
        0,
        frame(9, &produce_req(-1, "t", 0, batch(-1, -1, -1, &recs(1)))),
        now,
    );
    assert_eq!(r.due, now + Duration::from_millis(250));
    let resp: ProduceResponse = decode(&r, 9);
    assert_eq!(resp.throttle_time_ms, 100);
    let r = c.handle_request(1, frame(3, &ApiVersionsRequest::default()), now);
    assert_eq!(r.due, now);
    assert_eq!(decode::<ApiVersionsResponse>(&r, 3).throttle_time_ms, 0);
}

#[test]
fn create_topic_validates() {
    let mut c = cluster();
    assert_eq!(c.create_topic("t", 1), Err(ErrorCode::TopicAlreadyExists));
    assert_eq!(c.create_topic("x", 0), Err(ErrorCode::InvalidPartitions));
    assert_eq!(
        c.create_topic("..", 1),
        Err(ErrorCode::InvalidTopicException)
    );
    assert_eq!(c.topics(), vec!["t".to_string()]);
    assert_eq!(c.leader("t", 2), Some(2));
}

// ---- TCP -------------------------------------------------------------------

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn roundtrip<R: Request>(s: &mut TcpStream, version: i16, req: &R) -> Option<R::Response> {
    let mut buf = BytesMut::new();
    encode_request(&mut buf, 7, Some("tcp"), version, req).unwrap();
    s.write_all(&buf).unwrap();
    let mut size = [0u8; 4];
    match s.read_exact(&mut size) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        Err(e) => panic!("read: {e}"),
    }
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    let (h, m) = decode_response::<R::Response>(Bytes::from(body), version).unwrap();
    assert_eq!(h.correlation_id, 7);
    Some(m)
}

#[test]
fn tcp_server_speaks_kafka_on_loopback() {
    let mut server = MockServer::start(2).unwrap();
    server.cluster().create_topic("t", 2).unwrap();
    let bootstrap = server.bootstrap_servers();
    assert_eq!(bootstrap.split(',').count(), 2);
    let addrs = server.addresses().to_vec();

    let mut s0 = connect(addrs[0]);
    let a = roundtrip(&mut s0, 3, &ApiVersionsRequest::default()).unwrap();
    assert_eq!(a.error_code, 0);
    let m = roundtrip(
        &mut s0,
        12,
        &MetadataRequest {
            topics: None,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(m.brokers[1].port as u16, addrs[1].port());
    assert_eq!(m.brokers[1].host, "127.0.0.1");

    let r = roundtrip(
        &mut s0,
        9,
        &produce_req(-1, "t", 0, batch(1000, 0, 0, &recs(2))),
    )
    .unwrap();
    assert_eq!(r.responses[0].partition_responses[0].base_offset, 0);

    // A lost response: the connection closes, the batch is in the log.
    server.cluster().fail_after_append(1);
    let b = batch(1000, 0, 2, &recs(1));
    assert!(roundtrip(&mut s0, 9, &produce_req(-1, "t", 0, b.clone())).is_none());
    assert_eq!(server.cluster().log_end_offset("t", 0), Some(3));
    let mut s0 = connect(addrs[0]);
    let r = roundtrip(&mut s0, 9, &produce_req(-1, "t", 0, b)).unwrap();
    assert_eq!(r.responses[0].partition_responses[0].base_offset, 2);

    // Latency is honoured by the server.
    server.cluster().set_latency(1, Duration::from_millis(100));
    let mut s1 = connect(addrs[1]);
    let t0 = Instant::now();
    roundtrip(&mut s1, 3, &ApiVersionsRequest::default()).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(100));

    // drop_connections and broker down.
    server.drop_connections(1);
    let mut one = [0u8; 1];
    assert_eq!(s1.read(&mut one).unwrap_or(0), 0, "closed by the server");
    server.set_broker_down(0, true);
    let mut s0b = connect(addrs[0]);
    assert!(roundtrip(&mut s0b, 3, &ApiVersionsRequest::default()).is_none());
    server.set_broker_down(0, false);
    let mut s0c = connect(addrs[0]);
    assert!(roundtrip(&mut s0c, 3, &ApiVersionsRequest::default()).is_some());

    server.shutdown();
    assert_eq!(s0c.read(&mut one).unwrap_or(0), 0, "closed on shutdown");
    assert!(TcpStream::connect_timeout(&addrs[0], Duration::from_secs(1)).is_err());
}

#[test]
fn tcp_requests_split_across_writes_and_pipelined() {
    let server = MockServer::start(1).unwrap();
    let mut s = connect(server.addresses()[0]);
    let mut buf = BytesMut::new();
    for _ in 0..3 {
        encode_request(&mut buf, 7, None, 3, &ApiVersionsRequest::default()).unwrap();
    }
    for chunk in buf.chunks(5) {
        s.write_all(chunk).unwrap();
        s.flush().unwrap();
    }
    for _ in 0..3 {
        let mut size = [0u8; 4];
        s.read_exact(&mut size).unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        s.read_exact(&mut body).unwrap();
        decode_response::<ApiVersionsResponse>(Bytes::from(body), 3).unwrap();
    }
}
