//! Fetch (v4-12) and ListOffsets (v1-7): quickcheck round trips at every
//! version, byte-exact vectors built by hand from Kafka's JSON specs, the
//! fields a version cannot carry. The mock cluster's answers to both are
//! tested with the other mock-cluster tests (tests/mock_cluster/fetch.rs).

mod common;

use bytes::{Bytes, BytesMut};
use quickcheck::{Arbitrary, Gen};

use kafka_sansio::protocol::messages::fetch::*;
use kafka_sansio::protocol::messages::list_offsets::*;
use kafka_sansio::protocol::messages::produce::LeaderIdAndEpoch;
use kafka_sansio::protocol::{ApiKey, ApiMessage, ProtocolError};

use common::{encode, qc, s, tags, untag, vec_of, vector, Arb, Normalize};

// ---------------------------------------------------------------- generators

fn maybe<T>(g: &mut Gen, default: T, f: impl FnOnce(&mut Gen) -> T) -> T {
    if bool::arbitrary(g) {
        default
    } else {
        f(g)
    }
}

impl Arbitrary for Arb<FetchRequest> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(FetchRequest {
            cluster_id: maybe(g, None, |g| Some(s(g))),
            replica_id: i32::arbitrary(g),
            max_wait_ms: i32::arbitrary(g),
            min_bytes: i32::arbitrary(g),
            max_bytes: i32::arbitrary(g),
            isolation_level: i8::arbitrary(g),
            session_id: i32::arbitrary(g),
            session_epoch: i32::arbitrary(g),
            topics: vec_of(g, 3, |g| FetchTopic {
                topic: s(g),
                partitions: vec_of(g, 3, |g| FetchPartition {
                    partition: i32::arbitrary(g),
                    current_leader_epoch: i32::arbitrary(g),
                    fetch_offset: i64::arbitrary(g),
                    last_fetched_epoch: maybe(g, -1, i32::arbitrary),
                    log_start_offset: i64::arbitrary(g),
                    partition_max_bytes: i32::arbitrary(g),
                    tagged_fields: tags(g),
                }),
                tagged_fields: tags(g),
            }),
            forgotten_topics_data: vec_of(g, 2, |g| ForgottenTopic {
                topic: s(g),
                partitions: vec_of(g, 3, i32::arbitrary),
                tagged_fields: tags(g),
            }),
            rack_id: s(g),
            tagged_fields: tags(g),
        })
    }
}

impl Arbitrary for Arb<FetchResponse> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(FetchResponse {
            throttle_time_ms: i32::arbitrary(g),
            error_code: i16::arbitrary(g),
            session_id: i32::arbitrary(g),
            responses: vec_of(g, 3, |g| FetchableTopicResponse {
                topic: s(g),
                partitions: vec_of(g, 3, |g| PartitionData {
                    partition_index: i32::arbitrary(g),
                    error_code: i16::arbitrary(g),
                    high_watermark: i64::arbitrary(g),
                    last_stable_offset: i64::arbitrary(g),
                    log_start_offset: i64::arbitrary(g),
                    diverging_epoch: maybe(g, EpochEndOffset::default(), |g| EpochEndOffset {
                        epoch: i32::arbitrary(g),
                        end_offset: i64::arbitrary(g),
                        tagged_fields: tags(g),
                    }),
                    current_leader: maybe(g, LeaderIdAndEpoch::default(), |g| LeaderIdAndEpoch {
                        leader_id: i32::arbitrary(g),
                        leader_epoch: i32::arbitrary(g),
                        tagged_fields: tags(g),
                    }),
                    snapshot_id: maybe(g, SnapshotId::default(), |g| SnapshotId {
                        end_offset: i64::arbitrary(g),
                        epoch: i32::arbitrary(g),
                        tagged_fields: tags(g),
                    }),
                    aborted_transactions: maybe(g, None, |g| {
                        Some(vec_of(g, 3, |g| AbortedTransaction {
                            producer_id: i64::arbitrary(g),
                            first_offset: i64::arbitrary(g),
                            tagged_fields: tags(g),
                        }))
                    }),
                    preferred_read_replica: i32::arbitrary(g),
                    records: maybe(g, None, |g| Some(Bytes::from(vec_of(g, 40, u8::arbitrary)))),
                    tagged_fields: tags(g),
                }),
                tagged_fields: tags(g),
            }),
            tagged_fields: tags(g),
        })
    }
}

impl Arbitrary for Arb<ListOffsetsRequest> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(ListOffsetsRequest {
            replica_id: i32::arbitrary(g),
            isolation_level: i8::arbitrary(g),
            topics: vec_of(g, 3, |g| ListOffsetsTopic {
                name: s(g),
                partitions: vec_of(g, 3, |g| ListOffsetsPartition {
                    partition_index: i32::arbitrary(g),
                    current_leader_epoch: i32::arbitrary(g),
                    timestamp: i64::arbitrary(g),
                    tagged_fields: tags(g),
                }),
                tagged_fields: tags(g),
            }),
            tagged_fields: tags(g),
        })
    }
}

impl Arbitrary for Arb<ListOffsetsResponse> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(ListOffsetsResponse {
            throttle_time_ms: i32::arbitrary(g),
            topics: vec_of(g, 3, |g| ListOffsetsTopicResponse {
                name: s(g),
                partitions: vec_of(g, 3, |g| ListOffsetsPartitionResponse {
                    partition_index: i32::arbitrary(g),
                    error_code: i16::arbitrary(g),
                    timestamp: i64::arbitrary(g),
                    offset: i64::arbitrary(g),
                    leader_epoch: i32::arbitrary(g),
                    tagged_fields: tags(g),
                }),
                tagged_fields: tags(g),
            }),
            tagged_fields: tags(g),
        })
    }
}

// ---------------------------------------------------------------- per-version normalization

impl Normalize for FetchRequest {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 12;
        if !flex {
            self.cluster_id = None;
        }
        if v < 7 {
            self.session_id = 0;
            self.session_epoch = -1;
            self.forgotten_topics_data.clear();
        }
        if v < 11 {
            self.rack_id.clear();
        }
        for t in &mut self.topics {
            for p in &mut t.partitions {
                if v < 9 {
                    p.current_leader_epoch = -1;
                }
                if v < 12 {
                    p.last_fetched_epoch = -1;
                }
                if v < 5 {
                    p.log_start_offset = -1;
                }
                untag(&mut p.tagged_fields, flex);
            }
            untag(&mut t.tagged_fields, flex);
        }
        for f in &mut self.forgotten_topics_data {
            untag(&mut f.tagged_fields, flex);
        }
        untag(&mut self.tagged_fields, flex);
    }
}

impl Normalize for FetchResponse {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 12;
        if v < 7 {
            self.error_code = 0;
            self.session_id = 0;
        }
        for t in &mut self.responses {
            for p in &mut t.partitions {
                if v < 5 {
                    p.log_start_offset = -1;
                }
                if v < 11 {
                    p.preferred_read_replica = -1;
                }
                if !flex {
                    p.diverging_epoch = EpochEndOffset::default();
                    p.current_leader = LeaderIdAndEpoch::default();
                    p.snapshot_id = SnapshotId::default();
                }
                for a in p.aborted_transactions.iter_mut().flatten() {
                    untag(&mut a.tagged_fields, flex);
                }
                untag(&mut p.tagged_fields, flex);
            }
            untag(&mut t.tagged_fields, flex);
        }
        untag(&mut self.tagged_fields, flex);
    }
}

impl Normalize for ListOffsetsRequest {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 6;
        if v < 2 {
            self.isolation_level = 0;
        }
        for t in &mut self.topics {
            for p in &mut t.partitions {
                if v < 4 {
                    p.current_leader_epoch = -1;
                }
                untag(&mut p.tagged_fields, flex);
            }
            untag(&mut t.tagged_fields, flex);
        }
        untag(&mut self.tagged_fields, flex);
    }
}

impl Normalize for ListOffsetsResponse {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 6;
        if v < 2 {
            self.throttle_time_ms = 0;
        }
        for t in &mut self.topics {
            for p in &mut t.partitions {
                if v < 4 {
                    p.leader_epoch = -1;
                }
                untag(&mut p.tagged_fields, flex);
            }
            untag(&mut t.tagged_fields, flex);
        }
        untag(&mut self.tagged_fields, flex);
    }
}

// ---------------------------------------------------------------- round trips

#[test]
fn qc_fetch_request() {
    qc::<FetchRequest>();
}

#[test]
fn qc_fetch_response() {
    qc::<FetchResponse>();
}

#[test]
fn qc_list_offsets_request() {
    qc::<ListOffsetsRequest>();
}

#[test]
fn qc_list_offsets_response() {
    qc::<ListOffsetsResponse>();
}

#[test]
fn registered_versions() {
    assert_eq!(ApiKey::Fetch.code(), 1);
    assert_eq!(ApiKey::ListOffsets.code(), 2);
    assert_eq!(ApiKey::from_code(1), Some(ApiKey::Fetch));
    assert_eq!(ApiKey::from_code(2), Some(ApiKey::ListOffsets));
    assert_eq!(ApiKey::Fetch.versions(), (4, 12));
    assert_eq!(ApiKey::ListOffsets.versions(), (1, 7));
    assert!(!ApiKey::Fetch.is_flexible(11) && ApiKey::Fetch.is_flexible(12));
    assert!(!ApiKey::ListOffsets.is_flexible(5) && ApiKey::ListOffsets.is_flexible(6));
    assert!(ApiKey::ALL.contains(&ApiKey::Fetch) && ApiKey::ALL.contains(&ApiKey::ListOffsets));
    for v in [3, 13] {
        let mut b = BytesMut::new();
        assert!(matches!(
            FetchRequest::default().encode(&mut b, v),
            Err(ProtocolError::UnsupportedVersion { api_key: 1, .. })
        ));
    }
}

// ---------------------------------------------------------------- byte-exact vectors

fn fetch_request() -> FetchRequest {
    FetchRequest {
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 52_428_800,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 5,
                partition_max_bytes: 1_048_576,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn fetch_request_v4_bytes() {
    vector(
        &fetch_request(),
        4,
        "ffffffff 000001f4 00000001 03200000 00
         00000001 0001 74 00000001 00000000 0000000000000005 00100000",
    );
}

#[test]
fn fetch_request_v7_bytes() {
    // Session fields and an (empty) forgotten-topics array from v7;
    // LogStartOffset from v5.
    vector(
        &fetch_request(),
        7,
        "ffffffff 000001f4 00000001 03200000 00 00000000 ffffffff
         00000001 0001 74 00000001 00000000 0000000000000005 ffffffffffffffff 00100000
         00000000",
    );
}

#[test]
fn fetch_request_v12_bytes() {
    let mut r = fetch_request();
    r.cluster_id = Some("c".into());
    r.rack_id = "r1".into();
    let p = &mut r.topics[0].partitions[0];
    p.current_leader_epoch = 3;
    p.last_fetched_epoch = 2;
    vector(
        &r,
        12,
        "ffffffff 000001f4 00000001 03200000 00 00000000 ffffffff
         02 0274 02 00000000 00000003 0000000000000005 00000002 ffffffffffffffff 00100000 00 00
         01 03 7231
         01 00 02 0263",
    );
}

fn fetch_response(version: i16) -> FetchResponse {
    FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: "t".into(),
            partitions: vec![PartitionData {
                high_watermark: 10,
                last_stable_offset: 10,
                log_start_offset: if version >= 5 { 0 } else { -1 },
                aborted_transactions: if version >= 12 { Some(vec![]) } else { None },
                current_leader: if version >= 12 {
                    LeaderIdAndEpoch {
                        leader_id: 1,
                        leader_epoch: 7,
                        ..Default::default()
                    }
                } else {
                    LeaderIdAndEpoch::default()
                },
                records: Some(Bytes::from_static(&[1, 2, 3])),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn fetch_response_v4_bytes() {
    vector(
        &fetch_response(4),
        4,
        "00000000 00000001 0001 74 00000001
         00000000 0000 000000000000000a 000000000000000a ffffffff 00000003 010203",
    );
}

#[test]
fn fetch_response_v12_bytes() {
    vector(
        &fetch_response(12),
        12,
        "00000000 0000 00000000 02 0274 02
         00000000 0000 000000000000000a 000000000000000a 0000000000000000 01 ffffffff 04 010203
         01 01 09 00000001 00000007 00
         00 00",
    );
}

#[test]
fn list_offsets_vectors() {
    let req = |ts: i64| ListOffsetsRequest {
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                timestamp: ts,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    vector(
        &req(LATEST_TIMESTAMP),
        1,
        "ffffffff 00000001 0001 74 00000001 00000000 ffffffffffffffff",
    );
    vector(
        &req(EARLIEST_TIMESTAMP),
        6,
        "ffffffff 00 02 0274 02 00000000 ffffffff fffffffffffffffe 00 00 00",
    );
    let resp = |leader_epoch: i32| ListOffsetsResponse {
        topics: vec![ListOffsetsTopicResponse {
            name: "t".into(),
            partitions: vec![ListOffsetsPartitionResponse {
                partition_index: 0,
                offset: 42,
                leader_epoch,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    vector(
        &resp(-1),
        1,
        "00000001 0001 74 00000001 00000000 0000 ffffffffffffffff 000000000000002a",
    );
    vector(
        &resp(0),
        6,
        "00000000 02 0274 02 00000000 0000 ffffffffffffffff 000000000000002a 00000000 00 00 00",
    );
}

#[test]
fn fields_a_version_cannot_carry() {
    let enc = |m: &dyn Fn(&mut BytesMut) -> Result<(), ProtocolError>| {
        let mut b = BytesMut::new();
        m(&mut b)
    };
    // Non-ignorable fields with a non-default value are refused.
    let mut r = fetch_request();
    r.topics[0].partitions[0].last_fetched_epoch = 1;
    assert!(enc(&|b| r.encode(b, 11)).is_err());
    assert!(enc(&|b| r.encode(b, 12)).is_ok());
    let mut r = fetch_request();
    r.forgotten_topics_data.push(ForgottenTopic::default());
    assert!(enc(&|b| r.encode(b, 6)).is_err());
    assert!(enc(&|b| r.encode(b, 7)).is_ok());
    let mut p = fetch_response(12);
    assert!(
        enc(&|b| p.encode(b, 11)).is_err(),
        "current_leader before v12"
    );
    p.responses[0].partitions[0].current_leader = LeaderIdAndEpoch::default();
    p.responses[0].partitions[0].preferred_read_replica = 2;
    assert!(enc(&|b| p.encode(b, 10)).is_err());
    assert!(enc(&|b| p.encode(b, 11)).is_ok());
    let lo = ListOffsetsRequest {
        isolation_level: 1,
        ..Default::default()
    };
    assert!(enc(&|b| lo.encode(b, 1)).is_err());
    assert!(enc(&|b| lo.encode(b, 2)).is_ok());
    // Ignorable ones are left out: a rack id before v11, a cluster id before v12.
    let mut r = fetch_request();
    r.rack_id = "r".into();
    r.cluster_id = Some("c".into());
    r.session_epoch = 3;
    assert_eq!(encode(&r, 4), encode(&fetch_request(), 4));
}
