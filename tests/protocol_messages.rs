//! Codec tests of the protocol messages against the public API: quickcheck round
//! trips at every version, truncations, bad lengths, hand-built spec vectors,
//! the ApiVersions fallback and version negotiation.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use quickcheck::{Arbitrary, Gen, QuickCheck};

use kafka_sansio::protocol::frame::{
    decode_response, decode_response_lenient, encode_request, encode_response,
};
use kafka_sansio::protocol::messages::add_offsets_to_txn::*;
use kafka_sansio::protocol::messages::add_partitions_to_txn::*;
use kafka_sansio::protocol::messages::api_versions::*;
use kafka_sansio::protocol::messages::end_txn::*;
use kafka_sansio::protocol::messages::find_coordinator::*;
use kafka_sansio::protocol::messages::init_producer_id::*;
use kafka_sansio::protocol::messages::metadata::*;
use kafka_sansio::protocol::messages::produce::*;
use kafka_sansio::protocol::messages::txn_offset_commit::*;
use kafka_sansio::protocol::primitives::{put_uvarint, TaggedFields};
use kafka_sansio::protocol::{
    negotiate, ApiKey, ApiMessage, ErrorCode, NegotiatedVersions, ProtocolError, RequestHeader,
};

use common::{encode, hex, qc, s, tags, untag, vec_of, vector, Arb, Normalize};

// ---------------------------------------------------------------- generators

fn os(g: &mut Gen) -> Option<String> {
    if bool::arbitrary(g) {
        Some(s(g))
    } else {
        None
    }
}

fn uuid(g: &mut Gen) -> [u8; 16] {
    let mut u = [0u8; 16];
    for b in &mut u {
        *b = u8::arbitrary(g);
    }
    u
}

macro_rules! arb {
    ($t:ty, $g:ident => $e:expr) => {
        impl Arbitrary for Arb<$t> {
            fn arbitrary($g: &mut Gen) -> Self {
                Arb($e)
            }
        }
    };
}

arb!(ApiVersionsRequest, g => ApiVersionsRequest {
    client_software_name: s(g),
    client_software_version: s(g),
    tagged_fields: tags(g),
});

arb!(ApiVersionsResponse, g => ApiVersionsResponse {
    error_code: i16::arbitrary(g),
    api_keys: vec_of(g, 4, |g| ApiVersion {
        api_key: i16::arbitrary(g),
        min_version: i16::arbitrary(g),
        max_version: i16::arbitrary(g),
        tagged_fields: tags(g),
    }),
    throttle_time_ms: i32::arbitrary(g),
    supported_features: vec_of(g, 2, |g| SupportedFeatureKey {
        name: s(g),
        min_version: i16::arbitrary(g),
        max_version: i16::arbitrary(g),
        tagged_fields: tags(g),
    }),
    finalized_features_epoch: if bool::arbitrary(g) { -1 } else { i64::arbitrary(g) },
    finalized_features: vec_of(g, 2, |g| FinalizedFeatureKey {
        name: s(g),
        max_version_level: i16::arbitrary(g),
        min_version_level: i16::arbitrary(g),
        tagged_fields: tags(g),
    }),
    zk_migration_ready: bool::arbitrary(g),
    tagged_fields: tags(g),
});

arb!(MetadataRequest, g => MetadataRequest {
    topics: if bool::arbitrary(g) {
        None
    } else {
        Some(vec_of(g, 3, |g| MetadataRequestTopic {
            topic_id: uuid(g),
            name: os(g),
            tagged_fields: tags(g),
        }))
    },
    allow_auto_topic_creation: bool::arbitrary(g),
    include_cluster_authorized_operations: bool::arbitrary(g),
    include_topic_authorized_operations: bool::arbitrary(g),
    tagged_fields: tags(g),
});

arb!(MetadataResponse, g => MetadataResponse {
    throttle_time_ms: i32::arbitrary(g),
    brokers: vec_of(g, 3, |g| MetadataResponseBroker {
        node_id: i32::arbitrary(g),
        host: s(g),
        port: i32::arbitrary(g),
        rack: os(g),
        tagged_fields: tags(g),
    }),
    cluster_id: os(g),
    controller_id: i32::arbitrary(g),
    topics: vec_of(g, 3, |g| MetadataResponseTopic {
        error_code: i16::arbitrary(g),
        name: os(g),
        topic_id: uuid(g),
        is_internal: bool::arbitrary(g),
        partitions: vec_of(g, 3, |g| MetadataResponsePartition {
            error_code: i16::arbitrary(g),
            partition_index: i32::arbitrary(g),
            leader_id: i32::arbitrary(g),
            leader_epoch: i32::arbitrary(g),
            replica_nodes: vec_of(g, 4, i32::arbitrary),
            isr_nodes: vec_of(g, 4, i32::arbitrary),
            offline_replicas: vec_of(g, 2, i32::arbitrary),
            tagged_fields: tags(g),
        }),
        topic_authorized_operations: i32::arbitrary(g),
        tagged_fields: tags(g),
    }),
    cluster_authorized_operations: i32::arbitrary(g),
    error_code: i16::arbitrary(g),
    tagged_fields: tags(g),
});

arb!(ProduceRequest, g => ProduceRequest {
    transactional_id: os(g),
    acks: *g.choose(&[0, 1, -1]).unwrap(),
    timeout_ms: i32::arbitrary(g),
    topic_data: vec_of(g, 3, |g| TopicProduceData {
        name: s(g),
        topic_id: uuid(g),
        partition_data: vec_of(g, 3, |g| PartitionProduceData {
            index: i32::arbitrary(g),
            records: if bool::arbitrary(g) {
                Some(Bytes::from(vec_of(g, 40, u8::arbitrary)))
            } else {
                None
            },
            tagged_fields: tags(g),
        }),
        tagged_fields: tags(g),
    }),
    tagged_fields: tags(g),
});

fn leader(g: &mut Gen) -> LeaderIdAndEpoch {
    if bool::arbitrary(g) {
        LeaderIdAndEpoch::default()
    } else {
        LeaderIdAndEpoch {
            leader_id: i32::arbitrary(g),
            leader_epoch: i32::arbitrary(g),
            tagged_fields: tags(g),
        }
    }
}

arb!(ProduceResponse, g => ProduceResponse {
    responses: vec_of(g, 3, |g| TopicProduceResponse {
        name: s(g),
        topic_id: uuid(g),
        partition_responses: vec_of(g, 3, |g| PartitionProduceResponse {
            index: i32::arbitrary(g),
            error_code: i16::arbitrary(g),
            base_offset: i64::arbitrary(g),
            log_append_time_ms: i64::arbitrary(g),
            log_start_offset: i64::arbitrary(g),
            record_errors: vec_of(g, 2, |g| BatchIndexAndErrorMessage {
                batch_index: i32::arbitrary(g),
                batch_index_error_message: os(g),
                tagged_fields: tags(g),
            }),
            error_message: os(g),
            current_leader: leader(g),
            tagged_fields: tags(g),
        }),
        tagged_fields: tags(g),
    }),
    throttle_time_ms: i32::arbitrary(g),
    node_endpoints: vec_of(g, 2, |g| NodeEndpoint {
        node_id: i32::arbitrary(g),
        host: s(g),
        port: i32::arbitrary(g),
        rack: os(g),
        tagged_fields: tags(g),
    }),
    tagged_fields: tags(g),
});

arb!(InitProducerIdRequest, g => InitProducerIdRequest {
    transactional_id: os(g),
    transaction_timeout_ms: i32::arbitrary(g),
    producer_id: i64::arbitrary(g),
    producer_epoch: i16::arbitrary(g),
    enable_2pc: bool::arbitrary(g),
    keep_prepared_txn: bool::arbitrary(g),
    tagged_fields: tags(g),
});

arb!(InitProducerIdResponse, g => InitProducerIdResponse {
    throttle_time_ms: i32::arbitrary(g),
    error_code: i16::arbitrary(g),
    producer_id: i64::arbitrary(g),
    producer_epoch: i16::arbitrary(g),
    ongoing_txn_producer_id: i64::arbitrary(g),
    ongoing_txn_producer_epoch: i16::arbitrary(g),
    tagged_fields: tags(g),
});

arb!(FindCoordinatorRequest, g => FindCoordinatorRequest {
    key: s(g),
    key_type: i8::arbitrary(g),
    coordinator_keys: vec_of(g, 3, s),
    tagged_fields: tags(g),
});

arb!(FindCoordinatorResponse, g => FindCoordinatorResponse {
    throttle_time_ms: i32::arbitrary(g),
    error_code: i16::arbitrary(g),
    error_message: os(g),
    node_id: i32::arbitrary(g),
    host: s(g),
    port: i32::arbitrary(g),
    coordinators: vec_of(g, 3, |g| Coordinator {
        key: s(g),
        node_id: i32::arbitrary(g),
        host: s(g),
        port: i32::arbitrary(g),
        error_code: i16::arbitrary(g),
        error_message: os(g),
        tagged_fields: tags(g),
    }),
    tagged_fields: tags(g),
});

fn txn_topics(g: &mut Gen) -> Vec<AddPartitionsToTxnTopic> {
    vec_of(g, 3, |g| AddPartitionsToTxnTopic {
        name: s(g),
        partitions: vec_of(g, 4, i32::arbitrary),
        tagged_fields: tags(g),
    })
}

fn txn_topic_results(g: &mut Gen) -> Vec<AddPartitionsToTxnTopicResult> {
    vec_of(g, 3, |g| AddPartitionsToTxnTopicResult {
        name: s(g),
        results_by_partition: vec_of(g, 3, |g| AddPartitionsToTxnPartitionResult {
            partition_index: i32::arbitrary(g),
            partition_error_code: i16::arbitrary(g),
            tagged_fields: tags(g),
        }),
        tagged_fields: tags(g),
    })
}

arb!(AddPartitionsToTxnRequest, g => AddPartitionsToTxnRequest {
    transactions: vec_of(g, 2, |g| AddPartitionsToTxnTransaction {
        transactional_id: s(g),
        producer_id: i64::arbitrary(g),
        producer_epoch: i16::arbitrary(g),
        verify_only: bool::arbitrary(g),
        topics: txn_topics(g),
        tagged_fields: tags(g),
    }),
    v3_and_below_transactional_id: s(g),
    v3_and_below_producer_id: i64::arbitrary(g),
    v3_and_below_producer_epoch: i16::arbitrary(g),
    v3_and_below_topics: txn_topics(g),
    tagged_fields: tags(g),
});

arb!(AddPartitionsToTxnResponse, g => AddPartitionsToTxnResponse {
    throttle_time_ms: i32::arbitrary(g),
    error_code: i16::arbitrary(g),
    results_by_transaction: vec_of(g, 2, |g| AddPartitionsToTxnResult {
        transactional_id: s(g),
        topic_results: txn_topic_results(g),
        tagged_fields: tags(g),
    }),
    results_by_topic_v3_and_below: txn_topic_results(g),
    tagged_fields: tags(g),
});

arb!(AddOffsetsToTxnRequest, g => AddOffsetsToTxnRequest {
    transactional_id: s(g),
    producer_id: i64::arbitrary(g),
    producer_epoch: i16::arbitrary(g),
    group_id: s(g),
    tagged_fields: tags(g),
});

arb!(AddOffsetsToTxnResponse, g => AddOffsetsToTxnResponse {
    throttle_time_ms: i32::arbitrary(g),
    error_code: i16::arbitrary(g),
    tagged_fields: tags(g),
});

arb!(EndTxnRequest, g => EndTxnRequest {
    transactional_id: s(g),
    producer_id: i64::arbitrary(g),
    producer_epoch: i16::arbitrary(g),
    committed: bool::arbitrary(g),
    tagged_fields: tags(g),
});

arb!(EndTxnResponse, g => EndTxnResponse {
    throttle_time_ms: i32::arbitrary(g),
    error_code: i16::arbitrary(g),
    producer_id: i64::arbitrary(g),
    producer_epoch: i16::arbitrary(g),
    tagged_fields: tags(g),
});

arb!(TxnOffsetCommitRequest, g => TxnOffsetCommitRequest {
    transactional_id: s(g),
    group_id: s(g),
    producer_id: i64::arbitrary(g),
    producer_epoch: i16::arbitrary(g),
    generation_id_or_member_epoch: i32::arbitrary(g),
    member_id: s(g),
    group_instance_id: os(g),
    topics: vec_of(g, 3, |g| TxnOffsetCommitRequestTopic {
        name: s(g),
        partitions: vec_of(g, 3, |g| TxnOffsetCommitRequestPartition {
            partition_index: i32::arbitrary(g),
            committed_offset: i64::arbitrary(g),
            committed_leader_epoch: i32::arbitrary(g),
            committed_metadata: os(g),
            tagged_fields: tags(g),
        }),
        tagged_fields: tags(g),
    }),
    tagged_fields: tags(g),
});

arb!(TxnOffsetCommitResponse, g => TxnOffsetCommitResponse {
    throttle_time_ms: i32::arbitrary(g),
    topics: vec_of(g, 3, |g| TxnOffsetCommitResponseTopic {
        name: s(g),
        partitions: vec_of(g, 3, |g| TxnOffsetCommitResponsePartition {
            partition_index: i32::arbitrary(g),
            error_code: i16::arbitrary(g),
            tagged_fields: tags(g),
        }),
        tagged_fields: tags(g),
    }),
    tagged_fields: tags(g),
});

// ------------------------------------------------------------- normalizers
// What each version cannot carry (see `common::Normalize`).

impl Normalize for ApiVersionsRequest {
    fn normalize(&mut self, v: i16) {
        if v < 3 {
            *self = ApiVersionsRequest::default();
        }
    }
}

impl Normalize for ApiVersionsResponse {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 3;
        if v < 1 {
            self.throttle_time_ms = 0;
        }
        for k in &mut self.api_keys {
            untag(&mut k.tagged_fields, flex);
        }
        if !flex {
            let d = ApiVersionsResponse::default();
            self.supported_features = d.supported_features;
            self.finalized_features_epoch = d.finalized_features_epoch;
            self.finalized_features = d.finalized_features;
            self.zk_migration_ready = d.zk_migration_ready;
            self.tagged_fields = d.tagged_fields;
        }
    }
}

impl Normalize for MetadataRequest {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 9;
        if let Some(topics) = &mut self.topics {
            for t in topics {
                if v < 10 {
                    t.topic_id = [0; 16];
                    t.name.get_or_insert_with(String::new);
                }
                untag(&mut t.tagged_fields, flex);
            }
        }
        if v < 4 {
            self.allow_auto_topic_creation = true;
        }
        if !(8..=10).contains(&v) {
            self.include_cluster_authorized_operations = false;
        }
        if v < 8 {
            self.include_topic_authorized_operations = false;
        }
        untag(&mut self.tagged_fields, flex);
    }
}

impl Normalize for MetadataResponse {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 9;
        if v < 3 {
            self.throttle_time_ms = 0;
        }
        for b in &mut self.brokers {
            untag(&mut b.tagged_fields, flex);
        }
        if v < 2 {
            self.cluster_id = None;
        }
        for t in &mut self.topics {
            if v < 12 {
                t.name.get_or_insert_with(String::new);
            }
            if v < 10 {
                t.topic_id = [0; 16];
            }
            if v < 8 {
                t.topic_authorized_operations = AUTHORIZED_OPERATIONS_UNKNOWN;
            }
            for p in &mut t.partitions {
                if v < 7 {
                    p.leader_epoch = -1;
                }
                if v < 5 {
                    p.offline_replicas.clear();
                }
                untag(&mut p.tagged_fields, flex);
            }
            untag(&mut t.tagged_fields, flex);
        }
        if !(8..=10).contains(&v) {
            self.cluster_authorized_operations = AUTHORIZED_OPERATIONS_UNKNOWN;
        }
        if v < 13 {
            self.error_code = 0;
        }
        untag(&mut self.tagged_fields, flex);
    }
}

/// Produce names a topic by `Name` up to v12 and by `TopicId` from v13.
fn topic_key(name: &mut String, id: &mut [u8; 16], v: i16) {
    if v >= 13 {
        name.clear();
    } else {
        *id = [0; 16];
    }
}

impl Normalize for ProduceRequest {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 9;
        for t in &mut self.topic_data {
            topic_key(&mut t.name, &mut t.topic_id, v);
            for p in &mut t.partition_data {
                untag(&mut p.tagged_fields, flex);
            }
            untag(&mut t.tagged_fields, flex);
        }
        untag(&mut self.tagged_fields, flex);
    }
}

impl Normalize for ProduceResponse {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 9;
        for t in &mut self.responses {
            topic_key(&mut t.name, &mut t.topic_id, v);
            for p in &mut t.partition_responses {
                if v < 5 {
                    p.log_start_offset = -1;
                }
                if v < 8 {
                    p.record_errors.clear();
                    p.error_message = None;
                }
                for e in &mut p.record_errors {
                    untag(&mut e.tagged_fields, flex);
                }
                if v < 10 {
                    p.current_leader = LeaderIdAndEpoch::default();
                }
                untag(&mut p.tagged_fields, flex);
            }
            untag(&mut t.tagged_fields, flex);
        }
        if v < 10 {
            self.node_endpoints.clear();
        }
        untag(&mut self.tagged_fields, flex);
    }
}

impl Normalize for InitProducerIdRequest {
    fn normalize(&mut self, v: i16) {
        if v < 3 {
            self.producer_id = -1;
            self.producer_epoch = -1;
        }
        if v < 6 {
            self.enable_2pc = false;
            self.keep_prepared_txn = false;
        }
        untag(&mut self.tagged_fields, v >= 2);
    }
}

impl Normalize for InitProducerIdResponse {
    fn normalize(&mut self, v: i16) {
        if v < 6 {
            self.ongoing_txn_producer_id = -1;
            self.ongoing_txn_producer_epoch = -1;
        }
        untag(&mut self.tagged_fields, v >= 2);
    }
}

impl Normalize for FindCoordinatorRequest {
    fn normalize(&mut self, v: i16) {
        if v >= 4 {
            self.key.clear();
        } else {
            self.coordinator_keys.clear();
        }
        if v < 1 {
            self.key_type = 0;
        }
        untag(&mut self.tagged_fields, v >= 3);
    }
}

impl Normalize for FindCoordinatorResponse {
    fn normalize(&mut self, v: i16) {
        if v < 1 {
            self.throttle_time_ms = 0;
            self.error_message = None;
        }
        if v >= 4 {
            self.error_code = 0;
            self.error_message = None;
            self.node_id = 0;
            self.host.clear();
            self.port = 0;
        } else {
            self.coordinators.clear();
        }
        untag(&mut self.tagged_fields, v >= 3);
    }
}

fn untag_txn_topics(topics: &mut [AddPartitionsToTxnTopic], flex: bool) {
    for t in topics {
        untag(&mut t.tagged_fields, flex);
    }
}

fn untag_txn_topic_results(topics: &mut [AddPartitionsToTxnTopicResult], flex: bool) {
    for t in topics {
        for p in &mut t.results_by_partition {
            untag(&mut p.tagged_fields, flex);
        }
        untag(&mut t.tagged_fields, flex);
    }
}

impl Normalize for AddPartitionsToTxnRequest {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 3;
        if v >= 4 {
            self.v3_and_below_transactional_id.clear();
            self.v3_and_below_producer_id = 0;
            self.v3_and_below_producer_epoch = 0;
            self.v3_and_below_topics.clear();
        } else {
            self.transactions.clear();
        }
        untag_txn_topics(&mut self.v3_and_below_topics, flex);
        untag(&mut self.tagged_fields, flex);
    }
}

impl Normalize for AddPartitionsToTxnResponse {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 3;
        if v >= 4 {
            self.results_by_topic_v3_and_below.clear();
        } else {
            self.error_code = 0;
            self.results_by_transaction.clear();
        }
        untag_txn_topic_results(&mut self.results_by_topic_v3_and_below, flex);
        untag(&mut self.tagged_fields, flex);
    }
}

impl Normalize for AddOffsetsToTxnRequest {
    fn normalize(&mut self, v: i16) {
        untag(&mut self.tagged_fields, v >= 3);
    }
}

impl Normalize for AddOffsetsToTxnResponse {
    fn normalize(&mut self, v: i16) {
        untag(&mut self.tagged_fields, v >= 3);
    }
}

impl Normalize for EndTxnRequest {
    fn normalize(&mut self, v: i16) {
        untag(&mut self.tagged_fields, v >= 3);
    }
}

impl Normalize for EndTxnResponse {
    fn normalize(&mut self, v: i16) {
        if v < 5 {
            self.producer_id = -1;
            self.producer_epoch = -1;
        }
        untag(&mut self.tagged_fields, v >= 3);
    }
}

impl Normalize for TxnOffsetCommitRequest {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 3;
        if v < 3 {
            self.generation_id_or_member_epoch = -1;
            self.member_id.clear();
            self.group_instance_id = None;
        }
        for t in &mut self.topics {
            for p in &mut t.partitions {
                if v < 2 {
                    p.committed_leader_epoch = -1;
                }
                untag(&mut p.tagged_fields, flex);
            }
            untag(&mut t.tagged_fields, flex);
        }
        untag(&mut self.tagged_fields, flex);
    }
}

impl Normalize for TxnOffsetCommitResponse {
    fn normalize(&mut self, v: i16) {
        let flex = v >= 3;
        for t in &mut self.topics {
            for p in &mut t.partitions {
                untag(&mut p.tagged_fields, flex);
            }
            untag(&mut t.tagged_fields, flex);
        }
        untag(&mut self.tagged_fields, flex);
    }
}

// ---------------------------------------------------------------- checks

#[test]
fn qc_api_versions_request() {
    qc::<ApiVersionsRequest>();
}
#[test]
fn qc_api_versions_response() {
    qc::<ApiVersionsResponse>();
}
#[test]
fn qc_metadata_request() {
    qc::<MetadataRequest>();
}
#[test]
fn qc_metadata_response() {
    qc::<MetadataResponse>();
}
#[test]
fn qc_produce_request() {
    qc::<ProduceRequest>();
}
/// The pieces of a split request frame, concatenated, are the one-buffer
/// encoding; every non-empty records field is a piece of its own that shares
/// the request's memory (not a copy).
fn check_split<R: ApiMessage + kafka_sansio::protocol::Request>(
    m: &R,
    v: i16,
    records: &[Bytes],
) -> bool {
    let mut whole = BytesMut::new();
    encode_request(&mut whole, 7, Some("client"), v, m).unwrap();
    let mut pieces = Vec::new();
    let total =
        kafka_sansio::protocol::frame::encode_request_split(7, Some("client"), v, m, &mut pieces)
            .unwrap();
    assert_eq!(total, whole.len(), "v{v}: total");
    assert!(pieces.iter().all(|p| !p.is_empty()), "v{v}: empty piece");
    assert_eq!(pieces.concat(), whole.to_vec(), "v{v}: bytes differ");
    for r in records.iter().filter(|r| !r.is_empty()) {
        assert!(
            pieces
                .iter()
                .any(|p| p.as_ptr() == r.as_ptr() && p.len() == r.len()),
            "v{v}: records copied"
        );
    }
    true
}

fn records_of(m: &ProduceRequest) -> Vec<Bytes> {
    m.topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.clone())
        .collect()
}

#[test]
fn qc_produce_request_split_equals_one_buffer() {
    fn prop(a: Arb<ProduceRequest>) -> bool {
        let (lo, hi) = ApiKey::Produce.versions();
        (lo..=hi).all(|v| {
            let mut m = a.0.clone();
            m.normalize(v);
            check_split(&m, v, &records_of(&m))
        })
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Arb<ProduceRequest>) -> bool);
}

#[test]
fn produce_request_split_with_topics_partitions_and_edge_records() {
    let batch = |n: usize| Bytes::from((0..n).map(|i| i as u8).collect::<Vec<u8>>());
    let req = |acks: i16| ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 30_000,
        topic_data: vec![
            TopicProduceData {
                name: "alpha".into(),
                partition_data: vec![
                    PartitionProduceData {
                        index: 0,
                        records: Some(batch(70)),
                        ..Default::default()
                    },
                    PartitionProduceData {
                        index: 3,
                        records: Some(batch(200_000)),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            TopicProduceData {
                name: "beta".into(),
                partition_data: vec![
                    // Null and empty records: no piece of their own.
                    PartitionProduceData {
                        index: 1,
                        records: None,
                        ..Default::default()
                    },
                    PartitionProduceData {
                        index: 2,
                        records: Some(Bytes::new()),
                        ..Default::default()
                    },
                    PartitionProduceData {
                        index: 5,
                        records: Some(batch(61)),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let (lo, hi) = ApiKey::Produce.versions();
    for v in lo..=hi {
        for acks in [0, 1, -1] {
            let m = req(acks);
            check_split(&m, v, &records_of(&m));
        }
    }
    // Messages without split fields come out as one piece.
    let md = MetadataRequest::default();
    let mut pieces = Vec::new();
    kafka_sansio::protocol::frame::encode_request_split(1, None, 12, &md, &mut pieces).unwrap();
    assert_eq!(pieces.len(), 1);
    check_split(&md, 12, &[]);
}

#[test]
fn qc_produce_response() {
    qc::<ProduceResponse>();
}
#[test]
fn qc_init_producer_id_request() {
    qc::<InitProducerIdRequest>();
}
#[test]
fn qc_init_producer_id_response() {
    qc::<InitProducerIdResponse>();
}
#[test]
fn qc_find_coordinator_request() {
    qc::<FindCoordinatorRequest>();
}
#[test]
fn qc_find_coordinator_response() {
    qc::<FindCoordinatorResponse>();
}
#[test]
fn qc_add_partitions_to_txn_request() {
    qc::<AddPartitionsToTxnRequest>();
}
#[test]
fn qc_add_partitions_to_txn_response() {
    qc::<AddPartitionsToTxnResponse>();
}
#[test]
fn qc_add_offsets_to_txn_request() {
    qc::<AddOffsetsToTxnRequest>();
}
#[test]
fn qc_add_offsets_to_txn_response() {
    qc::<AddOffsetsToTxnResponse>();
}
#[test]
fn qc_end_txn_request() {
    qc::<EndTxnRequest>();
}
#[test]
fn qc_end_txn_response() {
    qc::<EndTxnResponse>();
}
#[test]
fn qc_txn_offset_commit_request() {
    qc::<TxnOffsetCommitRequest>();
}
#[test]
fn qc_txn_offset_commit_response() {
    qc::<TxnOffsetCommitResponse>();
}

// ------------------------------------------------------- typed errors, limits

#[test]
fn huge_and_negative_lengths_are_typed_errors() {
    // Produce v3: null transactional id, acks, timeout, then a topic array claiming i32::MAX.
    let mut b = BytesMut::new();
    b.put_i16(-1);
    b.put_i16(1);
    b.put_i32(1000);
    b.put_i32(i32::MAX);
    b.put_u8(0);
    assert!(matches!(
        ProduceRequest::decode(&mut b.clone().freeze(), 3),
        Err(ProtocolError::Truncated { .. })
    ));
    // Negative array length other than -1.
    let mut b = BytesMut::new();
    b.put_i16(-1);
    b.put_i16(1);
    b.put_i32(1000);
    b.put_i32(-7);
    assert_eq!(
        ProduceRequest::decode(&mut b.freeze(), 3),
        Err(ProtocolError::BadLength(-7))
    );
    // Null for a non-nullable array.
    let mut b = BytesMut::new();
    b.put_i16(-1);
    b.put_i16(1);
    b.put_i32(1000);
    b.put_i32(-1);
    assert_eq!(
        ProduceRequest::decode(&mut b.freeze(), 3),
        Err(ProtocolError::BadLength(-1))
    );
    // Records with a huge length.
    let mut b = BytesMut::new();
    b.put_i16(-1);
    b.put_i16(1);
    b.put_i32(1000);
    b.put_i32(1);
    b.put_i16(1);
    b.put_u8(b't');
    b.put_i32(1);
    b.put_i32(0);
    b.put_i32(0x7fff_fff0);
    b.put_slice(&[0; 8]);
    assert!(matches!(
        ProduceRequest::decode(&mut b.freeze(), 3),
        Err(ProtocolError::Truncated { .. })
    ));
    // Compact (v9) topic array whose uvarint length is ~2^32 and overlong varints.
    let mut b = BytesMut::new();
    b.put_u8(0); // null transactional id
    b.put_i16(1);
    b.put_i32(1000);
    b.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(matches!(
        ProduceRequest::decode(&mut b.freeze(), 9),
        Err(ProtocolError::Truncated { .. })
    ));
    let mut b = Bytes::from_static(&[
        0x00, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    assert_eq!(
        ProduceRequest::decode(&mut b, 9),
        Err(ProtocolError::BadVarint(5))
    );
    // A tagged-field section claiming more fields than there are bytes.
    let mut b = BytesMut::new();
    b.put_i32(0);
    b.put_i16(0);
    b.put_i64(1);
    b.put_i16(2);
    b.put_slice(&[0xff, 0xff, 0xff, 0x7f]);
    assert!(matches!(
        InitProducerIdResponse::decode(&mut b.freeze(), 2),
        Err(ProtocolError::Truncated { .. })
    ));
    // A metadata response whose partition claims 2^31-1 replicas.
    let mut b = BytesMut::new();
    b.put_i32(0); // brokers
    b.put_i32(-1); // controller
    b.put_i32(1); // topics
    b.put_i16(0);
    b.put_i16(1);
    b.put_u8(b't');
    b.put_u8(0);
    b.put_i32(1); // partitions
    b.put_i16(0);
    b.put_i32(0);
    b.put_i32(1);
    b.put_i32(i32::MAX);
    assert!(matches!(
        MetadataResponse::decode(&mut b.freeze(), 1),
        Err(ProtocolError::Truncated { .. })
    ));
}

#[test]
fn strings_are_held_to_32767_bytes_as_kafka_does() {
    // ApiVersions v3 request: two compact strings, then tagged fields.
    let body = |name_len: usize| {
        let mut b = BytesMut::new();
        put_uvarint(&mut b, name_len as u32 + 1);
        b.put_slice(&vec![b'n'; name_len]);
        b.put_slice(&hex("02 76 00")); // version "v", no tagged fields
        b.freeze()
    };
    let ok = ApiVersionsRequest::decode(&mut body(32767), 3).unwrap();
    assert_eq!(ok.client_software_name.len(), 32767);
    assert_eq!(encode(&ok, 3), body(32767));
    assert_eq!(
        ApiVersionsRequest::decode(&mut body(32768), 3),
        Err(ProtocolError::BadLength(32768))
    );

    // Encoding a longer string fails instead of writing a wrong length.
    let long = ApiVersionsRequest {
        client_software_name: "n".repeat(32768),
        ..ok.clone()
    };
    let mut b = BytesMut::new();
    assert!(matches!(
        long.encode(&mut b, 3),
        Err(ProtocolError::Invalid(_))
    ));

    // The classic client id of a request header: an i16 cannot say 32768
    // (its bytes read as -32768), and a longer id is not written.
    let mut h = BytesMut::new();
    h.put_slice(&hex("0012 0003 00000001 8000"));
    h.put_slice(&vec![b'c'; 32768]);
    assert_eq!(
        RequestHeader::decode(&mut h.freeze()),
        Err(ProtocolError::BadLength(-32768))
    );
    let mut frame = BytesMut::from(&b"kept"[..]);
    let id = "c".repeat(32768);
    assert!(matches!(
        encode_request(&mut frame, 1, Some(&id), 3, &ok),
        Err(ProtocolError::Invalid(_))
    ));
    assert_eq!(
        &frame[..],
        b"kept",
        "a failed request leaves the buffer as it was"
    );
    encode_request(&mut frame, 1, Some(&id[1..]), 3, &ok).unwrap();
}

#[test]
fn random_bytes_never_panic() {
    fn p(data: Vec<u8>) -> bool {
        let b = Bytes::from(data);
        for v in 0..=13 {
            let _ = ApiVersionsRequest::decode(&mut b.clone(), v);
            let _ = ApiVersionsResponse::decode(&mut b.clone(), v);
            let _ = ApiVersionsResponse::decode_fallback(&mut b.clone(), v);
            let _ = MetadataRequest::decode(&mut b.clone(), v);
            let _ = MetadataResponse::decode(&mut b.clone(), v);
            let _ = ProduceRequest::decode(&mut b.clone(), v);
            let _ = ProduceResponse::decode(&mut b.clone(), v);
            let _ = InitProducerIdRequest::decode(&mut b.clone(), v);
            let _ = InitProducerIdResponse::decode(&mut b.clone(), v);
        }
        true
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(p as fn(Vec<u8>) -> bool);
}

#[test]
fn versions_outside_the_range_are_rejected() {
    let mut b = BytesMut::new();
    assert_eq!(
        ProduceRequest::default().encode(&mut b, 2),
        Err(ProtocolError::UnsupportedVersion {
            api_key: 0,
            version: 2
        })
    );
    assert!(MetadataRequest::default().encode(&mut b, 14).is_err());
    assert!(ProduceRequest::default().encode(&mut b, 14).is_err());
    assert!(ApiVersionsRequest::decode(&mut Bytes::new(), 5).is_err());
    assert!(InitProducerIdRequest::decode(&mut Bytes::new(), -1).is_err());
}

#[test]
fn values_a_version_cannot_carry_are_rejected() {
    let mut b = BytesMut::new();
    let ipr = InitProducerIdRequest {
        producer_id: 7,
        ..Default::default()
    };
    assert!(matches!(
        ipr.encode(&mut b, 2),
        Err(ProtocolError::Invalid(_))
    ));
    assert!(ipr.encode(&mut b, 3).is_ok());

    // Fields a transactional version cannot carry (none is ignorable).
    let invalid = |r: Result<(), ProtocolError>| matches!(r, Err(ProtocolError::Invalid(_)));
    let two_pc = InitProducerIdRequest {
        enable_2pc: true,
        ..Default::default()
    };
    assert!(invalid(two_pc.encode(&mut b, 5)));
    assert!(two_pc.encode(&mut b, 6).is_ok());
    let batched = FindCoordinatorRequest {
        coordinator_keys: vec!["tx".into()],
        ..Default::default()
    };
    assert!(invalid(batched.encode(&mut b, 3)));
    let single = FindCoordinatorRequest {
        key: "tx".into(),
        ..Default::default()
    };
    assert!(invalid(single.encode(&mut b, 4)));
    let typed = FindCoordinatorRequest {
        key_type: KEY_TYPE_TRANSACTION,
        ..Default::default()
    };
    assert!(invalid(typed.encode(&mut b, 0)));
    let old_form = AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: "tx".into(),
        ..Default::default()
    };
    assert!(invalid(old_form.encode(&mut b, 4)));
    let new_form = AddPartitionsToTxnRequest {
        transactions: vec![AddPartitionsToTxnTransaction::default()],
        ..Default::default()
    };
    assert!(invalid(new_form.encode(&mut b, 3)));
    let member = TxnOffsetCommitRequest {
        member_id: "m".into(),
        ..Default::default()
    };
    assert!(invalid(member.encode(&mut b, 2)));
    assert!(member.encode(&mut b, 3).is_ok());

    let mr = MetadataRequest {
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    assert!(matches!(
        mr.encode(&mut b, 3),
        Err(ProtocolError::Invalid(_))
    ));
    assert!(mr.encode(&mut b, 4).is_ok());

    let by_id = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            topic_id: [1; 16],
            name: None,
            tagged_fields: TaggedFields::default(),
        }]),
        ..Default::default()
    };
    assert!(by_id.encode(&mut b, 9).is_err());
    assert!(by_id.encode(&mut b, 12).is_ok());

    let unnamed = MetadataResponse {
        topics: vec![MetadataResponseTopic {
            name: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(unnamed.encode(&mut b, 11).is_err());
    assert!(unnamed.encode(&mut b, 12).is_ok());

    let tagged = InitProducerIdResponse {
        tagged_fields: TaggedFields(vec![(5, Bytes::from_static(b"x"))]),
        ..Default::default()
    };
    assert!(tagged.encode(&mut b, 1).is_err());
    assert!(tagged.encode(&mut b, 2).is_ok());

    let clash = ProduceResponse {
        tagged_fields: TaggedFields(vec![(0, Bytes::from_static(b"x"))]),
        node_endpoints: vec![NodeEndpoint::default()],
        ..Default::default()
    };
    assert!(clash.encode(&mut b, 10).is_err());

    let leader = ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "t".into(),
            partition_responses: vec![PartitionProduceResponse {
                current_leader: LeaderIdAndEpoch {
                    leader_id: 2,
                    leader_epoch: 3,
                    tagged_fields: TaggedFields::default(),
                },
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(leader.encode(&mut b, 9).is_err());
    assert!(leader.encode(&mut b, 10).is_ok());

    let long = ProduceRequest {
        transactional_id: Some("x".repeat(40_000)),
        ..Default::default()
    };
    assert!(matches!(
        long.encode(&mut b, 3),
        Err(ProtocolError::Invalid(_))
    ));
}

// ------------------------------------------------------------ spec vectors
// Hand-assembled from the JSON field lists, field by field.

#[test]
fn api_versions_vectors() {
    let req = ApiVersionsRequest {
        client_software_name: "rdkafka".into(),
        client_software_version: "2.3.0".into(),
        tagged_fields: TaggedFields::default(),
    };
    // compact strings: length + 1 as uvarint, then the bytes; empty tag section.
    vector(&req, 3, "08 72646b61666b61  06 322e332e30  00");
    vector(&ApiVersionsRequest::default(), 0, "");

    let resp = ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![ApiVersion {
            api_key: 0,
            min_version: 3,
            max_version: 11,
            tagged_fields: TaggedFields::default(),
        }],
        throttle_time_ms: 0,
        finalized_features_epoch: 5,
        zk_migration_ready: true,
        ..Default::default()
    };
    vector(
        &resp,
        3,
        "0000 02 0000 0003 000b 00 00000000 \
         02 01 08 0000000000000005 03 01 01",
    );
    // v0 drops the ignorable tagged fields.
    let mut v0 = resp.clone();
    v0.finalized_features_epoch = -1;
    v0.zk_migration_ready = false;
    vector(&v0, 0, "0000 00000001 0000 0003 000b");
}

#[test]
fn metadata_vectors() {
    let req = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            topic_id: [0; 16],
            name: Some("t".into()),
            tagged_fields: TaggedFields::default(),
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    vector(&req, 4, "00000001 0001 74 00");
    // v13's request is laid out as v12's.
    for version in [12, 13] {
        vector(
            &req,
            version,
            "02 00000000000000000000000000000000 02 74 00 00 00 00",
        );
    }
    let all = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    vector(&all, 1, "ffffffff");
    vector(&all, 9, "00 01 00 00 00");
}

#[test]
fn produce_vectors() {
    let req = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Bytes::from_static(&[0xaa, 0xbb])),
                tagged_fields: TaggedFields::default(),
            }],
            ..Default::default()
        }],
        tagged_fields: TaggedFields::default(),
    };
    vector(
        &req,
        3,
        "ffff ffff 00007530 00000001 0001 74 00000001 00000000 00000002 aabb",
    );
    vector(
        &req,
        9,
        "00 ffff 00007530 02 02 74 02 00000000 03 aabb 00 00 00",
    );

    let resp = ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "t".into(),
            partition_responses: vec![PartitionProduceResponse {
                index: 0,
                error_code: 6,
                base_offset: -1,
                current_leader: LeaderIdAndEpoch {
                    leader_id: 2,
                    leader_epoch: 7,
                    tagged_fields: TaggedFields::default(),
                },
                ..Default::default()
            }],
            ..Default::default()
        }],
        throttle_time_ms: 0,
        node_endpoints: vec![NodeEndpoint {
            node_id: 2,
            host: "h".into(),
            port: 9092,
            rack: None,
            tagged_fields: TaggedFields::default(),
        }],
        tagged_fields: TaggedFields::default(),
    };
    vector(
        &resp,
        10,
        "02 02 74 02 00000000 0006 ffffffffffffffff ffffffffffffffff ffffffffffffffff \
         01 00 \
         01 00 09 00000002 00000007 00 \
         00 00000000 \
         01 00 0d 02 00000002 02 68 00002384 00 00",
    );
}

/// Produce v13 (Kafka 4.1, KIP-516), from `ProduceRequest.json` and
/// `ProduceResponse.json`: `Name` is versions 0-12 and `TopicId` (uuid, 16
/// raw bytes) 13+, in its place; everything else is v9-v12's flexible layout.
#[test]
fn produce_v13_vectors() {
    let id: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    let req = |name: &str, topic_id: [u8; 16]| ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30000,
        topic_data: vec![TopicProduceData {
            name: name.into(),
            topic_id,
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Bytes::from_static(&[0xaa, 0xbb])),
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        }],
        tagged_fields: TaggedFields::default(),
    };
    // TransactionalId null (compact nullable string); Acks -1; TimeoutMs
    // 30000; TopicData: compact array of 1: TopicId, PartitionData: 1 of
    // Index 0, Records (compact bytes, length 2), no tags; the topic's tags;
    // the request's tags.
    vector(
        &req("", id),
        13,
        "00 ffff 00007530 \
         02 00112233445566778899aabbccddeeff \
         02 00000000 03 aabb 00 \
         00 \
         00",
    );
    // v12 is v11's layout: the name, no id (both fields are ignorable, so
    // each version leaves the other out).
    vector(
        &req("t", [0; 16]),
        12,
        "00 ffff 00007530 02 02 74 02 00000000 03 aabb 00 00 00",
    );
    assert_eq!(encode(&req("t", id), 12), encode(&req("t", [0; 16]), 12));
    assert_eq!(encode(&req("t", id), 13), encode(&req("", id), 13));

    let resp = ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: String::new(),
            topic_id: id,
            partition_responses: vec![PartitionProduceResponse {
                index: 0,
                error_code: ErrorCode::UnknownTopicId.code(),
                base_offset: -1,
                ..Default::default()
            }],
            tagged_fields: TaggedFields::default(),
        }],
        ..Default::default()
    };
    vector(
        &resp,
        13,
        // Responses: 1; TopicId; PartitionResponses: 1 of Index 0,
        // ErrorCode 100 (UNKNOWN_TOPIC_ID), BaseOffset -1, LogAppendTimeMs -1,
        // LogStartOffset -1, RecordErrors empty, ErrorMessage null, no tags
        // (CurrentLeader at its default is not written); topic tags;
        // ThrottleTimeMs 0; no tags (NodeEndpoints empty).
        "02 00112233445566778899aabbccddeeff \
         02 00000000 0064 ffffffffffffffff ffffffffffffffff ffffffffffffffff 01 00 00 \
         00 \
         00000000 00",
    );
}

/// Metadata v13 (Kafka 4.0, KIP-1102), from `MetadataResponse.json`: the
/// top-level `ErrorCode` (int16, 13+) comes after `Topics` (and after
/// `ClusterAuthorizedOperations`, 8-10 only, so absent here), before the
/// tagged fields. The v13 request is v12's.
#[test]
fn metadata_v13_vectors() {
    let id: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    let resp = |error_code: i16| MetadataResponse {
        throttle_time_ms: 0,
        brokers: vec![MetadataResponseBroker {
            node_id: 1,
            host: "h".into(),
            port: 9092,
            rack: None,
            tagged_fields: TaggedFields::default(),
        }],
        cluster_id: Some("c".into()),
        controller_id: 1,
        topics: vec![MetadataResponseTopic {
            error_code: 0,
            name: Some("t".into()),
            topic_id: id,
            is_internal: false,
            partitions: vec![MetadataResponsePartition {
                error_code: 0,
                partition_index: 0,
                leader_id: 1,
                leader_epoch: 5,
                replica_nodes: vec![1],
                isr_nodes: vec![1],
                offline_replicas: vec![],
                tagged_fields: TaggedFields::default(),
            }],
            topic_authorized_operations: AUTHORIZED_OPERATIONS_UNKNOWN,
            tagged_fields: TaggedFields::default(),
        }],
        cluster_authorized_operations: AUTHORIZED_OPERATIONS_UNKNOWN,
        error_code,
        tagged_fields: TaggedFields::default(),
    };
    // ThrottleTimeMs; Brokers: 1 of NodeId 1, Host "h", Port 9092, Rack null,
    // no tags; ClusterId "c"; ControllerId 1; Topics: 1 of ErrorCode 0, Name
    // "t", TopicId, IsInternal false, Partitions: 1 of ErrorCode 0, Index 0,
    // LeaderId 1, LeaderEpoch 5, ReplicaNodes [1], IsrNodes [1],
    // OfflineReplicas [], no tags; TopicAuthorizedOperations INT32_MIN, no tags.
    let body = "00000000 \
                02 00000001 02 68 00002384 00 00 \
                02 63 \
                00000001 \
                02 0000 02 74 00112233445566778899aabbccddeeff 00 \
                02 0000 00000000 00000001 00000005 02 00000001 02 00000001 01 00 \
                80000000 00";
    // v13: then ErrorCode 129 (REBOOTSTRAP_REQUIRED), then no tags.
    vector(&resp(129), 13, &format!("{body} 0081 00"));
    vector(&resp(0), 13, &format!("{body} 0000 00"));
    // v12 has no top-level error code.
    vector(&resp(0), 12, &format!("{body} 00"));
    assert_eq!(encode(&resp(129), 12), encode(&resp(0), 12));
}

#[test]
fn init_producer_id_vectors() {
    vector(
        &InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60000,
            ..Default::default()
        },
        0,
        "ffff 0000ea60",
    );
    vector(
        &InitProducerIdRequest {
            transactional_id: Some("tx".into()),
            transaction_timeout_ms: 60000,
            producer_id: 1000,
            producer_epoch: 5,
            ..Default::default()
        },
        4,
        "03 7478 0000ea60 00000000000003e8 0005 00",
    );
    vector(
        &InitProducerIdRequest {
            transactional_id: Some("tx".into()),
            transaction_timeout_ms: 60000,
            enable_2pc: true,
            ..Default::default()
        },
        6,
        "03 7478 0000ea60 ffffffffffffffff ffff 01 00 00",
    );
    vector(
        &InitProducerIdResponse {
            producer_id: 7,
            producer_epoch: 2,
            ..Default::default()
        },
        6,
        "00000000 0000 0000000000000007 0002 ffffffffffffffff ffff 00",
    );
    vector(
        &InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: 4000,
            producer_epoch: 0,
            ..Default::default()
        },
        2,
        "00000000 0000 0000000000000fa0 0000 00",
    );
}

#[test]
fn find_coordinator_vectors() {
    // v1: key "tx", key type transaction.
    vector(
        &FindCoordinatorRequest {
            key: "tx".into(),
            key_type: KEY_TYPE_TRANSACTION,
            ..Default::default()
        },
        1,
        "0002 7478 01",
    );
    // v4: batched keys, compact array of compact strings.
    vector(
        &FindCoordinatorRequest {
            key_type: KEY_TYPE_GROUP,
            coordinator_keys: vec!["g".into()],
            ..Default::default()
        },
        4,
        "00 02 02 67 00",
    );
    // v2 response: node 1 at "h":9092, no error message.
    vector(
        &FindCoordinatorResponse {
            node_id: 1,
            host: "h".into(),
            port: 9092,
            ..Default::default()
        },
        2,
        "00000000 0000 ffff 00000001 0001 68 00002384",
    );
    let v6 = FindCoordinatorResponse {
        coordinators: vec![Coordinator {
            key: "tx".into(),
            node_id: 2,
            host: "h".into(),
            port: 9092,
            error_code: ErrorCode::CoordinatorLoadInProgress.code(),
            ..Default::default()
        }],
        ..Default::default()
    };
    vector(
        &v6,
        6,
        "00000000 02 03 7478 00000002 02 68 00002384 000e 00 00 00",
    );
    assert_eq!(v6.coordinators_for("tx", 6), v6.coordinators);
    let v2 = FindCoordinatorResponse {
        node_id: 2,
        host: "h".into(),
        port: 9092,
        error_code: 14,
        ..Default::default()
    };
    assert_eq!(v2.coordinators_for("tx", 2), v6.coordinators);
}

#[test]
fn add_partitions_to_txn_vectors() {
    let topics = vec![AddPartitionsToTxnTopic {
        name: "t".into(),
        partitions: vec![0, 3],
        tagged_fields: TaggedFields::default(),
    }];
    vector(
        &AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: "tx".into(),
            v3_and_below_producer_id: 9,
            v3_and_below_producer_epoch: 1,
            v3_and_below_topics: topics.clone(),
            ..Default::default()
        },
        2,
        "0002 7478 0000000000000009 0001 00000001 0001 74 00000002 00000000 00000003",
    );
    vector(
        &AddPartitionsToTxnRequest {
            transactions: vec![AddPartitionsToTxnTransaction {
                transactional_id: "tx".into(),
                producer_id: 9,
                producer_epoch: 1,
                verify_only: true,
                topics,
                tagged_fields: TaggedFields::default(),
            }],
            ..Default::default()
        },
        5,
        "02 03 7478 0000000000000009 0001 01 02 02 74 03 00000000 00000003 00 00 00",
    );
    let result = vec![AddPartitionsToTxnTopicResult {
        name: "t".into(),
        results_by_partition: vec![AddPartitionsToTxnPartitionResult {
            partition_index: 3,
            partition_error_code: ErrorCode::ConcurrentTransactions.code(),
            tagged_fields: TaggedFields::default(),
        }],
        tagged_fields: TaggedFields::default(),
    }];
    vector(
        &AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: result.clone(),
            ..Default::default()
        },
        3,
        "00000000 02 02 74 02 00000003 0033 00 00 00",
    );
    vector(
        &AddPartitionsToTxnResponse {
            results_by_transaction: vec![AddPartitionsToTxnResult {
                transactional_id: "tx".into(),
                topic_results: result,
                tagged_fields: TaggedFields::default(),
            }],
            ..Default::default()
        },
        4,
        "00000000 0000 02 03 7478 02 02 74 02 00000003 0033 00 00 00 00",
    );
}

#[test]
fn add_offsets_end_txn_and_txn_offset_commit_vectors() {
    vector(
        &AddOffsetsToTxnRequest {
            transactional_id: "tx".into(),
            producer_id: 9,
            producer_epoch: 1,
            group_id: "g".into(),
            ..Default::default()
        },
        3,
        "03 7478 0000000000000009 0001 02 67 00",
    );
    vector(
        &AddOffsetsToTxnResponse {
            error_code: ErrorCode::ProducerFenced.code(),
            ..Default::default()
        },
        2,
        "00000000 005a",
    );
    vector(
        &EndTxnRequest {
            transactional_id: "tx".into(),
            producer_id: 9,
            producer_epoch: 1,
            committed: true,
            ..Default::default()
        },
        0,
        "0002 7478 0000000000000009 0001 01",
    );
    // v5 (KIP-890): the epoch for the next transaction.
    vector(
        &EndTxnResponse {
            producer_id: 9,
            producer_epoch: 2,
            ..Default::default()
        },
        5,
        "00000000 0000 0000000000000009 0002 00",
    );
    vector(&EndTxnResponse::default(), 4, "00000000 0000 00");
    vector(
        &TxnOffsetCommitRequest {
            transactional_id: "tx".into(),
            group_id: "g".into(),
            producer_id: 9,
            producer_epoch: 1,
            topics: vec![TxnOffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![TxnOffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 42,
                    ..Default::default()
                }],
                tagged_fields: TaggedFields::default(),
            }],
            ..Default::default()
        },
        3,
        "03 7478 02 67 0000000000000009 0001 ffffffff 01 00 02 02 74 02 00000000 000000000000002a ffffffff 00 00 00 00",
    );
    vector(
        &TxnOffsetCommitResponse {
            topics: vec![TxnOffsetCommitResponseTopic {
                name: "t".into(),
                partitions: vec![TxnOffsetCommitResponsePartition::default()],
                tagged_fields: TaggedFields::default(),
            }],
            ..Default::default()
        },
        1,
        "00000000 00000001 0001 74 00000001 00000000 0000",
    );
}

#[test]
fn transaction_version_is_read_from_the_finalized_features() {
    let mut r = ApiVersionsResponse::default();
    assert_eq!(r.transaction_version(), 0);
    r.finalized_features.push(FinalizedFeatureKey {
        name: TRANSACTION_VERSION_FEATURE.into(),
        max_version_level: 2,
        min_version_level: 0,
        tagged_fields: TaggedFields::default(),
    });
    assert_eq!(r.transaction_version(), 2);
    assert_eq!(r.finalized_feature_level("metadata.version"), None);
    // Read back from the wire (tag 2 of a v3 body).
    let bytes = encode(&r, 3);
    let back = ApiVersionsResponse::decode(&mut bytes.clone(), 3).unwrap();
    assert_eq!(back.transaction_version(), 2);
}

#[test]
fn unknown_tags_are_kept_and_merged_in_tag_order() {
    // ApiVersions v3 body with tags 1 (known) and 7 (unknown) and 2 (known, empty array).
    let wire = hex("0023 01 00000000 03 01 08 0000000000000009 02 01 01 07 02 abcd");
    let mut r = Bytes::from(wire.clone());
    let resp = ApiVersionsResponse::decode(&mut r, 3).unwrap();
    assert!(r.is_empty());
    assert_eq!(resp.finalized_features_epoch, 9);
    assert!(resp.finalized_features.is_empty());
    // Tag 2 carries its default (an empty array): Kafka would not write it,
    // some brokers do (tansu); it is kept raw so re-encoding is byte-exact.
    assert_eq!(
        resp.tagged_fields,
        TaggedFields(vec![
            (2, Bytes::from_static(&[0x01])),
            (7, Bytes::from_static(&[0xab, 0xcd]))
        ])
    );
    assert_eq!(&encode(&resp, 3)[..], &wire[..]);
    // A known tag whose value is shorter than its declared size is an error.
    let mut r = Bytes::from(hex("0000 01 00000000 01 01 09 000000000000000900"));
    assert!(ApiVersionsResponse::decode(&mut r, 3).is_err());
}

// ------------------------------------------------------ ApiVersions fallback

fn v0_unsupported_body() -> Bytes {
    // error 35, one entry: ApiVersions 0..=3 (what the broker supports).
    Bytes::from(hex("0023 00000001 0012 0000 0003"))
}

#[test]
fn api_versions_fallback_to_v0() {
    for requested in [1, 2, 3, 4] {
        let mut b = v0_unsupported_body();
        let r = ApiVersionsResponse::decode_fallback(&mut b, requested).unwrap();
        assert!(b.is_empty());
        assert_eq!(
            ErrorCode::from_code(r.error_code),
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(
            r.api_keys,
            vec![ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 3,
                tagged_fields: TaggedFields::default(),
            }]
        );
        assert_eq!(r.throttle_time_ms, 0);
    }
    // A normal answer at the requested version is decoded at that version.
    let ok = ApiVersionsResponse {
        api_keys: vec![ApiVersion {
            api_key: 0,
            min_version: 0,
            max_version: 11,
            tagged_fields: TaggedFields::default(),
        }],
        throttle_time_ms: 12,
        finalized_features_epoch: 3,
        ..Default::default()
    };
    for v in 0..=4 {
        let mut expected = ok.clone();
        expected.normalize(v);
        let mut b = encode(&expected, v);
        assert_eq!(
            ApiVersionsResponse::decode_fallback(&mut b, v).unwrap(),
            expected
        );
        assert!(b.is_empty());
    }
    // Garbage stays an error.
    assert!(ApiVersionsResponse::decode_fallback(&mut Bytes::from_static(&[0, 0, 0]), 3).is_err());
}

/// Responses are read as Java reads them: the fields of the version, and
/// bytes after the last one skipped (counted); a short body stays an error.
#[test]
fn lenient_decoding_skips_only_what_follows_the_last_field() {
    let m = MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: 1,
            host: "127.0.0.1".into(),
            port: 9092,
            ..Default::default()
        }],
        cluster_id: Some("c".into()),
        ..Default::default()
    };
    for v in [1, 8, 9, 12, 13] {
        let mut expected = m.clone();
        expected.normalize(v);
        let mut frame = BytesMut::new();
        encode_response(&mut frame, 5, v, &expected).unwrap();
        let whole = frame.freeze().slice(4..);
        let mut longer = BytesMut::from(&whole[..]);
        longer.put_slice(&[0, 0]);
        let longer = longer.freeze();
        let (h, got, skipped) = decode_response_lenient::<MetadataResponse>(longer.clone(), v)
            .unwrap_or_else(|e| panic!("v{v}: {e}"));
        assert_eq!((h.correlation_id, skipped), (5, 2), "v{v}");
        assert_eq!(got, expected, "v{v}");
        // The strict form refuses the same bytes; both read the exact frame.
        assert!(decode_response::<MetadataResponse>(longer, v).is_err());
        let (_, exact, none) =
            decode_response_lenient::<MetadataResponse>(whole.clone(), v).unwrap();
        assert_eq!((exact, none), (expected, 0));
        // A body cut short is still an error.
        let short = whole.slice(..whole.len() - 3);
        assert!(
            decode_response_lenient::<MetadataResponse>(short, v).is_err(),
            "v{v}"
        );
    }
    // ApiVersions: the requested version's fields, with what follows skipped.
    let ok = ApiVersionsResponse {
        api_keys: vec![ApiVersion {
            api_key: 3,
            min_version: 0,
            max_version: 12,
            tagged_fields: TaggedFields::default(),
        }],
        ..Default::default()
    };
    for v in 0..=4 {
        let mut expected = ok.clone();
        expected.normalize(v);
        let mut b = BytesMut::from(&encode(&expected, v)[..]);
        b.put_slice(&[0, 0]);
        let mut b = b.freeze();
        let (got, skipped) = ApiVersionsResponse::decode_fallback_counted(&mut b, v).unwrap();
        assert_eq!((got, skipped), (expected, 2), "v{v}");
        assert!(b.is_empty());
    }
}

#[test]
fn api_versions_fallback_through_a_whole_frame() {
    // Header v0 (correlation id 7), then the v0 body, as a broker sends it.
    let mut frame = BytesMut::new();
    frame.put_i32(7);
    frame.put_slice(&v0_unsupported_body());
    let frame = frame.freeze();
    // Strict decoding at v3 fails (or misreads); the fallback gets the v0 answer.
    let strict = decode_response::<ApiVersionsResponse>(frame.clone(), 3);
    assert!(strict.map(|(_, r)| r.error_code == 35).unwrap_or(true));
    let mut body = frame.slice(4..);
    let r = ApiVersionsResponse::decode_fallback(&mut body, 3).unwrap();
    assert_eq!(r.error_code, 35);
    let broker = r.api_version(ApiKey::ApiVersions).unwrap();
    assert_eq!(negotiate(ApiKey::ApiVersions.versions(), broker), Some(3));
}

// ------------------------------------------------------------- negotiation

fn entry(key: i16, min: i16, max: i16) -> ApiVersion {
    ApiVersion {
        api_key: key,
        min_version: min,
        max_version: max,
        tagged_fields: TaggedFields::default(),
    }
}

#[test]
fn negotiate_picks_the_highest_common_version() {
    assert_eq!(negotiate((3, 11), &entry(0, 0, 12)), Some(11));
    assert_eq!(negotiate((3, 11), &entry(0, 0, 8)), Some(8));
    assert_eq!(negotiate((3, 11), &entry(0, 3, 3)), Some(3));
    assert_eq!(negotiate((3, 11), &entry(0, 0, 2)), None);
    assert_eq!(negotiate((3, 11), &entry(0, 12, 13)), None);
    assert_eq!(negotiate((3, 11), &entry(0, 5, 4)), None);
}

#[test]
fn negotiated_versions_per_api() {
    let resp = ApiVersionsResponse {
        api_keys: vec![
            entry(0, 0, 12), // Produce: Kafka 4.0 lists 0-12
            entry(3, 0, 13), // Metadata
            entry(18, 0, 4), // ApiVersions
            entry(1, 4, 17), // Fetch: not ours
            entry(22, 7, 9), // InitProducerId: no overlap with 0-6
        ],
        ..Default::default()
    };
    let n = NegotiatedVersions::from_response(&resp);
    assert_eq!(n.get(ApiKey::Produce), Some(12));
    assert_eq!(n.get(ApiKey::Metadata), Some(13));
    assert_eq!(n.get(ApiKey::ApiVersions), Some(4));
    assert_eq!(n.get(ApiKey::InitProducerId), None);

    let missing = ApiVersionsResponse {
        api_keys: vec![entry(18, 0, 3)],
        ..Default::default()
    };
    let n = NegotiatedVersions::from_response(&missing);
    assert_eq!(n.get(ApiKey::Produce), None);
    assert_eq!(n.get(ApiKey::ApiVersions), Some(3));

    let capped = NegotiatedVersions::with_ranges(&resp, |k| match k {
        ApiKey::Produce => (3, 9),
        k => k.versions(),
    });
    assert_eq!(capped.get(ApiKey::Produce), Some(9));
}

// ------------------------------------------------------------ whole frames

#[test]
fn requests_and_responses_frame_with_their_header_versions() {
    let req = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    for v in 1..=12 {
        let mut buf = BytesMut::new();
        encode_request(&mut buf, 42, Some("c"), v, &req).unwrap();
        let mut frame = buf.freeze().slice(4..);
        let h = RequestHeader::decode(&mut frame).unwrap();
        assert_eq!((h.api_key, h.api_version, h.correlation_id), (3, v, 42));
        let back = MetadataRequest::decode(&mut frame, v).unwrap();
        assert_eq!(back, req);
        assert!(frame.is_empty());
    }
    let resp = InitProducerIdResponse {
        producer_id: 9,
        producer_epoch: 1,
        ..Default::default()
    };
    for v in 0..=5 {
        let mut buf = BytesMut::new();
        encode_response(&mut buf, 5, v, &resp).unwrap();
        let (h, back) =
            decode_response::<InitProducerIdResponse>(buf.freeze().slice(4..), v).unwrap();
        assert_eq!(h.correlation_id, 5);
        assert_eq!(back, resp);
    }
}

// ------------------------------------------------ real captures (tests/vectors)
// Frames librdkafka (2.0.2 via kcat, 2.16.0 via confluent-kafka) sent to
// librdkafka's mock cluster and what it answered; see tests/vectors/README.md.

struct Capture {
    name: String,
    request: bool,
    api: String,
    version: i16,
    frame: Bytes,
}

fn captures() -> Vec<Capture> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/vectors") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".bin") else {
            continue;
        };
        let (request, rest) = if let Some(i) = stem.find("_req_") {
            (true, &stem[i + 5..])
        } else if let Some(i) = stem.find("_resp_") {
            (false, &stem[i + 6..])
        } else {
            panic!("unexpected vector name {name}");
        };
        let mut parts = rest.split('_');
        let api = parts.next().unwrap().to_owned();
        let version: i16 = parts
            .next()
            .unwrap()
            .strip_prefix('v')
            .unwrap()
            .parse()
            .unwrap();
        out.push(Capture {
            name,
            request,
            api,
            version,
            frame: Bytes::from(std::fs::read(&path).unwrap()),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Decodes a captured request body and re-encodes header and body to the same bytes.
fn request_round_trip<M: ApiMessage + std::fmt::Debug>(c: &Capture) -> M {
    let mut frame = c.frame.clone();
    let header = RequestHeader::decode(&mut frame).unwrap();
    assert_eq!(header.api_key, M::API_KEY.code(), "{}", c.name);
    assert_eq!(header.api_version, c.version, "{}", c.name);
    let body = M::decode(&mut frame, c.version).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    assert!(
        frame.is_empty(),
        "{}: {} trailing bytes",
        c.name,
        frame.len()
    );
    let mut again = BytesMut::new();
    header
        .encode(&mut again, M::API_KEY.request_header_version(c.version))
        .unwrap();
    body.encode(&mut again, c.version).unwrap();
    assert_eq!(&again[..], &c.frame[..], "{}: re-encoding differs", c.name);
    body
}

/// Decodes a captured response frame and re-encodes it to the same bytes.
fn response_round_trip<M: ApiMessage + std::fmt::Debug>(c: &Capture) -> M {
    let (header, body) = decode_response::<M>(c.frame.clone(), c.version)
        .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    let mut again = BytesMut::new();
    encode_response(&mut again, header.correlation_id, c.version, &body).unwrap();
    assert_eq!(&again[4..], &c.frame[..], "{}: re-encoding differs", c.name);
    body
}

#[test]
fn captured_frames_decode_and_reencode_byte_exact() {
    let all = captures();
    assert!(all.len() >= 100, "only {} captures found", all.len());
    let mut checked = 0;
    for c in &all {
        match (c.request, c.api.as_str()) {
            (true, "ApiVersions") => {
                let r: ApiVersionsRequest = request_round_trip(c);
                if c.version >= 3 {
                    assert!(!r.client_software_name.is_empty(), "{}", c.name);
                }
            }
            (true, "Metadata") => {
                let r: MetadataRequest = request_round_trip(c);
                let topics = r.topics.expect("librdkafka asks for named topics");
                assert!(topics.iter().all(|t| t.name.is_some()), "{}", c.name);
            }
            (true, "InitProducerId") => {
                let r: InitProducerIdRequest = request_round_trip(c);
                assert_eq!(r.transactional_id, None, "{}", c.name);
            }
            (true, "Produce") => {
                let r: ProduceRequest = request_round_trip(c);
                assert_eq!(r.acks, -1, "{}", c.name);
                assert_eq!(r.topic_data[0].name, "vectors", "{}", c.name);
                for p in &r.topic_data[0].partition_data {
                    let records = p.records.as_ref().expect("records");
                    // RecordBatch v2: the magic byte follows baseOffset, length, epoch.
                    assert_eq!(records[16], 2, "{}", c.name);
                    // Zero-copy: the records are a slice of the frame.
                    let frame = c.frame.as_ptr_range();
                    assert!(frame.contains(&records.as_ptr()), "{}", c.name);
                }
            }
            (false, "ApiVersions") if c.version >= 3 && c.name.contains("_to_tansu") => {
                // tansu speaks v3: a flexible answer that round-trips byte for byte.
                let r: ApiVersionsResponse = response_round_trip(c);
                assert_eq!(r.error_code, 0, "{}", c.name);
                let n = NegotiatedVersions::from_response(&r);
                // Every API but EndTxn, which tansu 0.6 does not list.
                for key in ApiKey::ALL {
                    let listed = n.get(key).is_some();
                    assert_eq!(listed, key != ApiKey::EndTxn, "{}: {key:?}", c.name);
                }
            }
            // An API this codec does not implement (librdkafka 2.16 asks tansu
            // for telemetry subscriptions): only the header is ours to read.
            (_, "GetTelemetrySubscriptions") => {
                let mut frame = c.frame.clone();
                if c.request {
                    let h = kafka_sansio::protocol::RequestHeader::decode(&mut frame).unwrap();
                    assert_eq!(h.api_key, 71, "{}", c.name);
                }
            }
            (false, "ApiVersions") if c.version >= 3 => {
                // The mock does not speak v3: error 35 with a malformed body.
                let mut frame = c.frame.clone();
                let header = kafka_sansio::protocol::ResponseHeader::decode(&mut frame, 0).unwrap();
                assert_eq!(header.correlation_id, 1);
                let r = ApiVersionsResponse::decode_fallback(&mut frame, c.version).unwrap();
                assert_eq!(
                    ErrorCode::from_code(r.error_code),
                    ErrorCode::UnsupportedVersion,
                    "{}",
                    c.name
                );
                assert!(frame.is_empty());
                assert_eq!(r.api_version(ApiKey::ApiVersions), None);
            }
            (false, "ApiVersions") => {
                let r: ApiVersionsResponse = response_round_trip(c);
                assert_eq!(r.error_code, 0, "{}", c.name);
                let n = NegotiatedVersions::from_response(&r);
                for key in ApiKey::ALL {
                    assert!(n.get(key).is_some(), "{}: {key:?}", c.name);
                }
                // The mock's own ranges: what librdkafka negotiated, within ours.
                assert_eq!(n.get(ApiKey::ApiVersions), Some(2), "{}", c.name);
                // decode_fallback takes a good v0 answer as it is.
                let mut body = c.frame.slice(4..);
                assert_eq!(
                    ApiVersionsResponse::decode_fallback(&mut body, 0).unwrap(),
                    r
                );
            }
            (false, "Metadata") => {
                let r: MetadataResponse = response_round_trip(c);
                assert!(!r.brokers.is_empty(), "{}", c.name);
                // Brokers-only requests (no topics) come first; then the topic.
                for t in &r.topics {
                    assert_eq!(t.name.as_deref(), Some("vectors"), "{}", c.name);
                    assert_eq!(t.error_code, 0, "{}", c.name);
                }
            }
            (false, "InitProducerId") => {
                let r: InitProducerIdResponse = response_round_trip(c);
                assert_eq!(r.error_code, 0, "{}", c.name);
                assert!(r.producer_id >= 0, "{}", c.name);
            }
            (false, "Produce") => {
                let r: ProduceResponse = response_round_trip(c);
                let p = &r.responses[0].partition_responses[0];
                assert_eq!(p.error_code, 0, "{}", c.name);
                assert!(p.base_offset >= 0, "{}", c.name);
            }
            (_, api) => panic!("{}: unexpected API {api}", c.name),
        }
        checked += 1;
    }
    assert_eq!(checked, all.len());
}

#[test]
fn captured_mock_api_versions_v3_answer_is_error_35_only() {
    // Header (corr 1), error 35, compact array "0 entries", then a classic
    // entry and throttle time that no version reads cleanly.
    let frame = hex("00000001 0023 01 0012 0000 0002 00000000");
    let c = captures()
        .into_iter()
        .find(|c| c.name == "rdkafka-2.16.0_to_rdkafka-mock-2.0.2_resp_ApiVersions_v3_corr1.bin")
        .unwrap();
    assert_eq!(&c.frame[..], &frame[..]);
    let mut body = c.frame.slice(4..);
    let r = ApiVersionsResponse::decode_fallback(&mut body, 3).unwrap();
    assert_eq!(
        r,
        ApiVersionsResponse {
            error_code: 35,
            ..Default::default()
        }
    );
    // Without an ApiVersions entry the client retries at version 0.
    assert_eq!(
        r.api_version(ApiKey::ApiVersions)
            .and_then(|b| negotiate(ApiKey::ApiVersions.versions(), b))
            .unwrap_or(0),
        0
    );
}
