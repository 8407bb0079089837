//! The mock's transaction coordinator through raw requests: coordinators,
//! fencing, both protocol versions, markers, the last stable offset and
//! read_committed Fetch.

use bytes::Bytes;
use kafka_sansio::mock::MockCluster;
use kafka_sansio::protocol::control::{ControlType, EndTxnMarker};
use kafka_sansio::protocol::messages::add_offsets_to_txn::AddOffsetsToTxnRequest;
use kafka_sansio::protocol::messages::add_partitions_to_txn::*;
use kafka_sansio::protocol::messages::api_versions::ApiVersionsRequest;
use kafka_sansio::protocol::messages::end_txn::{EndTxnRequest, EndTxnResponse};
use kafka_sansio::protocol::messages::fetch::*;
use kafka_sansio::protocol::messages::find_coordinator::*;
use kafka_sansio::protocol::messages::init_producer_id::InitProducerIdRequest;
use kafka_sansio::protocol::messages::list_offsets::*;
use kafka_sansio::protocol::messages::produce::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_sansio::protocol::messages::txn_offset_commit::*;
use kafka_sansio::protocol::{ApiKey, BatchBuilder, Compression, ErrorCode, RecordBatch};

use super::call;

const TX: &str = "tx";

fn cluster(brokers: usize) -> MockCluster {
    let mut c = MockCluster::new(brokers);
    c.create_topic("t", 2).unwrap();
    c
}

/// A transactional batch of `n` records.
fn txn_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let mut b = BatchBuilder::new(1_000, 256);
    for i in 0..n {
        b.append(
            1_000 + i as i64,
            None,
            Some(format!("v{seq}-{i}").as_bytes()),
            &[],
        );
    }
    let mut closed = b.close(Compression::None, None).unwrap();
    closed.stamp(pid, epoch, seq, true);
    closed.bytes()
}

fn produce_txn(
    c: &mut MockCluster,
    version: i16,
    tid: Option<&str>,
    partition: i32,
    records: Bytes,
) -> i16 {
    let node = c.leader("t", partition).unwrap();
    let req = ProduceRequest {
        transactional_id: tid.map(str::to_owned),
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = call(c, node, version, &req);
    r.responses[0].partition_responses[0].error_code
}

fn init(c: &mut MockCluster, tid: &str, pid: i64, epoch: i16) -> (i16, i64, i16) {
    let node = c.coordinator_of(tid);
    let req = InitProducerIdRequest {
        transactional_id: Some(tid.into()),
        transaction_timeout_ms: 60_000,
        producer_id: pid,
        producer_epoch: epoch,
        ..Default::default()
    };
    let r = call(c, node, 4, &req);
    (r.error_code, r.producer_id, r.producer_epoch)
}

fn add(c: &mut MockCluster, pid: i64, epoch: i16, partitions: &[i32]) -> Vec<i16> {
    let node = c.coordinator_of(TX);
    let req = AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: TX.into(),
        v3_and_below_producer_id: pid,
        v3_and_below_producer_epoch: epoch,
        v3_and_below_topics: vec![AddPartitionsToTxnTopic {
            name: "t".into(),
            partitions: partitions.to_vec(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = call(c, node, 3, &req);
    r.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect()
}

fn end(c: &mut MockCluster, version: i16, pid: i64, epoch: i16, commit: bool) -> EndTxnResponse {
    let node = c.coordinator_of(TX);
    let req = EndTxnRequest {
        transactional_id: TX.into(),
        producer_id: pid,
        producer_epoch: epoch,
        committed: commit,
        ..Default::default()
    };
    call(c, node, version, &req)
}

fn fetch(c: &mut MockCluster, partition: i32, isolation: i8) -> PartitionData {
    let node = c.leader("t", partition).unwrap();
    let req = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1 << 20,
        isolation_level: isolation,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut r = call(c, node, 11, &req);
    r.responses.remove(0).partitions.remove(0)
}

/// ListOffsets LATEST at an isolation level.
fn latest(c: &mut MockCluster, partition: i32, isolation: i8) -> i64 {
    let node = c.leader("t", partition).unwrap();
    let req = ListOffsetsRequest {
        isolation_level: isolation,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: partition,
                timestamp: LATEST_TIMESTAMP,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    call(c, node, 5, &req).topics[0].partitions[0].offset
}

fn values(c: &MockCluster, partition: i32) -> Vec<String> {
    c.committed_records("t", partition)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect()
}

#[test]
fn find_coordinator_at_every_version_and_both_key_types() {
    let mut c = cluster(3);
    let expected = c.coordinator_of(TX);
    for v in 0..=6 {
        for (key_type, key) in [(KEY_TYPE_TRANSACTION, TX), (KEY_TYPE_GROUP, "g")] {
            if v == 0 && key_type != KEY_TYPE_GROUP {
                continue;
            }
            let req =
                kafka_sansio::producer::txn::TxnManager::find_coordinator_request(key_type, key, v);
            let r = call(&mut c, 1, v, &req);
            let found = r.coordinators_for(key, v);
            assert_eq!(found.len(), 1, "v{v}");
            assert_eq!(found[0].error_code, 0, "v{v}");
            assert_eq!(found[0].node_id, c.coordinator_of(key), "v{v}");
            assert_eq!(found[0].port, 9092 + found[0].node_id, "v{v}");
        }
    }
    // Moved, then its broker down.
    let other = (expected + 1) % 3;
    c.move_coordinator(TX, other);
    let req = kafka_sansio::producer::txn::TxnManager::find_coordinator_request(
        KEY_TYPE_TRANSACTION,
        TX,
        4,
    );
    assert_eq!(call(&mut c, 0, 4, &req).coordinators[0].node_id, other);
    c.set_broker_down(other, true);
    let live = (other + 1) % 3;
    assert_eq!(
        call(&mut c, live, 4, &req).coordinators[0].error_code,
        ErrorCode::CoordinatorNotAvailable.code()
    );
    let bad = FindCoordinatorRequest {
        key_type: 9,
        coordinator_keys: vec![TX.into()],
        ..Default::default()
    };
    assert_eq!(
        call(&mut c, live, 4, &bad).coordinators[0].error_code,
        ErrorCode::InvalidRequest.code()
    );
}

#[test]
fn requests_to_another_broker_are_not_coordinator() {
    let mut c = cluster(3);
    let elsewhere = (c.coordinator_of(TX) + 1) % 3;
    let req = InitProducerIdRequest {
        transactional_id: Some(TX.into()),
        transaction_timeout_ms: 60_000,
        ..Default::default()
    };
    assert_eq!(
        call(&mut c, elsewhere, 4, &req).error_code,
        ErrorCode::NotCoordinator.code()
    );
    let too_long = InitProducerIdRequest {
        transaction_timeout_ms: kafka_sansio::mock::MAX_TRANSACTION_TIMEOUT_MS + 1,
        ..req
    };
    let node = c.coordinator_of(TX);
    assert_eq!(
        call(&mut c, node, 4, &too_long).error_code,
        ErrorCode::InvalidTransactionTimeout.code()
    );
}

#[test]
fn v1_commit_writes_markers_and_moves_the_last_stable_offset() {
    let mut c = cluster(2);
    let (e, pid, epoch) = init(&mut c, TX, -1, -1);
    assert_eq!((e, epoch), (0, 0));
    // Not added yet: refused.
    assert_eq!(
        produce_txn(&mut c, 9, Some(TX), 0, txn_batch(pid, epoch, 0, 2)),
        ErrorCode::InvalidTxnState.code()
    );
    assert_eq!(add(&mut c, pid, epoch, &[0, 1]), vec![0, 0]);
    assert_eq!(c.transaction_partitions(TX).len(), 2);
    assert_eq!(
        produce_txn(&mut c, 9, Some(TX), 0, txn_batch(pid, epoch, 0, 2)),
        0
    );
    assert_eq!(
        produce_txn(&mut c, 9, Some(TX), 1, txn_batch(pid, epoch, 0, 1)),
        0
    );
    // Open: the LSO stays at the transaction's first offset.
    assert_eq!(c.last_stable_offset("t", 0), Some(0));
    let rc = fetch(&mut c, 0, READ_COMMITTED);
    assert_eq!((rc.high_watermark, rc.last_stable_offset), (2, 0));
    assert!(rc.records.unwrap().is_empty());
    assert!(!fetch(&mut c, 0, READ_UNCOMMITTED)
        .records
        .unwrap()
        .is_empty());
    assert!(values(&c, 0).is_empty());
    assert_eq!(latest(&mut c, 0, READ_COMMITTED), 0);
    assert_eq!(latest(&mut c, 0, READ_UNCOMMITTED), 2);

    let r = end(&mut c, 4, pid, epoch, true);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.producer_epoch, -1, "no epoch before v5");
    assert_eq!(c.markers_written(), 2);
    assert_eq!(c.log_end_offset("t", 0), Some(3));
    assert_eq!(c.last_stable_offset("t", 0), Some(3));
    assert_eq!(values(&c, 0), vec!["v0-0", "v0-1"]);
    assert_eq!(values(&c, 1), vec!["v0-0"]);
    // The marker is a control batch at offset 2.
    let marker = &c.batches("t", 0)[1];
    let b = RecordBatch::decode(&mut marker.bytes.clone()).unwrap();
    assert_eq!(b.base_offset, 2);
    assert_eq!(
        EndTxnMarker::from_batch(&b).unwrap().control_type,
        ControlType::Commit
    );
    let rc = fetch(&mut c, 0, READ_COMMITTED);
    assert_eq!(rc.last_stable_offset, 3);
    assert_eq!(rc.aborted_transactions, Some(Vec::new()));
    assert_eq!(
        RecordBatch::decode_all(rc.records.unwrap()).unwrap().len(),
        2
    );
    // A retried EndTxn gets the same answer; the opposite one does not.
    assert_eq!(end(&mut c, 4, pid, epoch, true).error_code, 0);
    assert_eq!(
        end(&mut c, 4, pid, epoch, false).error_code,
        ErrorCode::InvalidTxnState.code()
    );
    // The next transaction of the same epoch.
    assert_eq!(add(&mut c, pid, epoch, &[0]), vec![0]);
    assert_eq!(
        produce_txn(&mut c, 9, Some(TX), 0, txn_batch(pid, epoch, 2, 1)),
        0
    );
    assert_eq!(end(&mut c, 4, pid, epoch, true).error_code, 0);
    assert_eq!(values(&c, 0), vec!["v0-0", "v0-1", "v2-0"]);
}

#[test]
fn aborted_records_are_reported_and_hidden_from_read_committed() {
    let mut c = cluster(1);
    let (_, pid, epoch) = init(&mut c, TX, -1, -1);
    add(&mut c, pid, epoch, &[0]);
    assert_eq!(
        produce_txn(&mut c, 9, Some(TX), 0, txn_batch(pid, epoch, 0, 3)),
        0
    );
    assert_eq!(end(&mut c, 3, pid, epoch, false).error_code, 0);
    add(&mut c, pid, epoch, &[0]);
    assert_eq!(
        produce_txn(&mut c, 9, Some(TX), 0, txn_batch(pid, epoch, 3, 1)),
        0
    );
    assert_eq!(end(&mut c, 3, pid, epoch, true).error_code, 0);
    assert_eq!(values(&c, 0), vec!["v3-0"]);
    let rc = fetch(&mut c, 0, READ_COMMITTED);
    assert_eq!(rc.last_stable_offset, 6);
    let aborted = rc.aborted_transactions.unwrap();
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].producer_id, aborted[0].first_offset), (pid, 0));
    // read_uncommitted sees every batch and no aborted list.
    let ru = fetch(&mut c, 0, READ_UNCOMMITTED);
    assert_eq!(ru.aborted_transactions, None);
    assert_eq!(
        RecordBatch::decode_all(ru.records.unwrap()).unwrap().len(),
        4
    );
}

#[test]
fn a_second_instance_fences_the_first_and_aborts_its_transaction() {
    let mut c = cluster(1);
    let (_, pid, epoch) = init(&mut c, TX, -1, -1);
    add(&mut c, pid, epoch, &[0]);
    assert_eq!(
        produce_txn(&mut c, 9, Some(TX), 0, txn_batch(pid, epoch, 0, 2)),
        0
    );
    let (e, pid2, epoch2) = init(&mut c, TX, -1, -1);
    assert_eq!((e, pid2, epoch2), (0, pid, 1));
    // The open transaction was aborted with the new epoch.
    assert_eq!(c.last_stable_offset("t", 0), Some(3));
    assert!(values(&c, 0).is_empty());
    // The first instance is fenced everywhere.
    assert_eq!(
        produce_txn(&mut c, 9, Some(TX), 0, txn_batch(pid, epoch, 2, 1)),
        ErrorCode::InvalidProducerEpoch.code()
    );
    assert_eq!(
        add(&mut c, pid, epoch, &[0]),
        vec![ErrorCode::ProducerFenced.code()]
    );
    assert_eq!(
        end(&mut c, 3, pid, epoch, true).error_code,
        ErrorCode::ProducerFenced.code()
    );
    // KIP-360: an InitProducerId naming the old epoch is fenced too.
    assert_eq!(
        init(&mut c, TX, pid, epoch).0,
        ErrorCode::ProducerFenced.code()
    );
    // The new one bumps its own epoch.
    assert_eq!(init(&mut c, TX, pid, 1), (0, pid, 2));
}

#[test]
fn v2_partitions_join_through_produce_and_end_txn_bumps_the_epoch() {
    let mut c = cluster(1);
    c.set_transaction_version(2);
    let av = call(&mut c, 0, 3, &ApiVersionsRequest::default());
    assert_eq!(av.transaction_version(), 2);
    assert!(c.transaction_version() == 2);
    let (_, pid, epoch) = init(&mut c, TX, -1, -1);
    // Produce v11 cannot add a partition.
    assert_eq!(
        produce_txn(&mut c, 11, Some(TX), 0, txn_batch(pid, epoch, 0, 1)),
        ErrorCode::InvalidTxnState.code()
    );
    assert_eq!(
        produce_txn(&mut c, 12, Some(TX), 0, txn_batch(pid, epoch, 0, 1)),
        0
    );
    assert_eq!(c.transaction_partitions(TX), vec![("t".to_string(), 0)]);
    let r = end(&mut c, 5, pid, epoch, true);
    assert_eq!((r.error_code, r.producer_id, r.producer_epoch), (0, pid, 1));
    assert_eq!(c.transactional_producer(TX), Some((pid, 1)));
    // A retry with the old epoch is answered as the first.
    let again = end(&mut c, 5, pid, epoch, true);
    assert_eq!((again.error_code, again.producer_epoch), (0, 1));
    // The ended transaction's epoch is fenced; the new one starts at sequence 0.
    assert_eq!(
        produce_txn(&mut c, 12, Some(TX), 0, txn_batch(pid, 0, 1, 1)),
        ErrorCode::InvalidProducerEpoch.code()
    );
    assert_eq!(
        produce_txn(&mut c, 12, Some(TX), 0, txn_batch(pid, 1, 0, 1)),
        0
    );
    let r = end(&mut c, 5, pid, 1, false);
    assert_eq!((r.error_code, r.producer_epoch), (0, 2));
    assert_eq!(values(&c, 0), vec!["v0-0"]);
    // Under v2 an empty transaction may end too (the epoch still moves).
    assert_eq!(end(&mut c, 5, pid, 2, true).producer_epoch, 3);
}

#[test]
fn offsets_commit_with_the_transaction() {
    for level in [1, 2] {
        let mut c = cluster(3);
        c.set_transaction_version(level);
        let (_, pid, epoch) = init(&mut c, TX, -1, -1);
        let group_node = c.coordinator_of("g");
        let commit = |c: &mut MockCluster, version: i16, offset: i64| {
            let req = TxnOffsetCommitRequest {
                transactional_id: TX.into(),
                group_id: "g".into(),
                producer_id: pid,
                producer_epoch: epoch,
                topics: vec![TxnOffsetCommitRequestTopic {
                    name: "in".into(),
                    partitions: vec![TxnOffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: offset,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            call(c, group_node, version, &req).topics[0].partitions[0].error_code
        };
        if level == 1 {
            // Before AddOffsetsToTxn the group is not in the transaction.
            assert_eq!(commit(&mut c, 3, 5), ErrorCode::InvalidTxnState.code());
            let node = c.coordinator_of(TX);
            let req = AddOffsetsToTxnRequest {
                transactional_id: TX.into(),
                producer_id: pid,
                producer_epoch: epoch,
                group_id: "g".into(),
                ..Default::default()
            };
            assert_eq!(call(&mut c, node, 3, &req).error_code, 0);
            assert_eq!(commit(&mut c, 3, 5), 0);
        } else {
            assert_eq!(commit(&mut c, 5, 5), 0);
        }
        assert_eq!(c.committed_offset("g", "in", 0), None, "not before EndTxn");
        let version = if level == 2 { 5 } else { 4 };
        assert_eq!(end(&mut c, version, pid, epoch, true).error_code, 0);
        assert_eq!(c.committed_offset("g", "in", 0), Some(5));
    }
}

#[test]
fn queued_coordinator_errors_are_answered_then_cleared() {
    let mut c = cluster(1);
    let (_, pid, epoch) = init(&mut c, TX, -1, -1);
    add(&mut c, pid, epoch, &[0]);
    c.push_errors(
        ApiKey::EndTxn,
        vec![
            ErrorCode::ConcurrentTransactions,
            ErrorCode::CoordinatorLoadInProgress,
        ],
    );
    c.push_errors(ApiKey::AddPartitionsToTxn, vec![ErrorCode::NotCoordinator]);
    assert_eq!(
        add(&mut c, pid, epoch, &[1]),
        vec![ErrorCode::NotCoordinator.code()]
    );
    assert_eq!(
        end(&mut c, 3, pid, epoch, true).error_code,
        ErrorCode::ConcurrentTransactions.code()
    );
    assert_eq!(
        end(&mut c, 3, pid, epoch, true).error_code,
        ErrorCode::CoordinatorLoadInProgress.code()
    );
    assert_eq!(end(&mut c, 3, pid, epoch, true).error_code, 0);
    assert_eq!(c.markers_written(), 1);
}

#[test]
fn transactional_batches_need_their_transactional_id() {
    let mut c = cluster(1);
    let (_, pid, epoch) = init(&mut c, TX, -1, -1);
    add(&mut c, pid, epoch, &[0]);
    assert_eq!(
        produce_txn(&mut c, 9, None, 0, txn_batch(pid, epoch, 0, 1)),
        ErrorCode::InvalidRecord.code()
    );
    // An unknown transactional id.
    assert_eq!(
        produce_txn(&mut c, 9, Some("other"), 0, txn_batch(pid, epoch, 0, 1)),
        ErrorCode::InvalidProducerIdMapping.code()
    );
}
