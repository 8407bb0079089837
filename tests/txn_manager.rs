//! The transaction manager as a state machine: every allowed transition,
//! every refusal, the request order of both protocols, and how each
//! coordinator answer moves it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_sansio::producer::txn::*;
use kafka_sansio::protocol::messages::add_offsets_to_txn::AddOffsetsToTxnResponse;
use kafka_sansio::protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnTopicResult,
};
use kafka_sansio::protocol::messages::end_txn::{EndTxnRequest, EndTxnResponse};
use kafka_sansio::protocol::messages::find_coordinator::{
    Coordinator, FindCoordinatorResponse, KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION,
};
use kafka_sansio::protocol::messages::init_producer_id::InitProducerIdResponse;
use kafka_sansio::protocol::messages::txn_offset_commit::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_sansio::protocol::ErrorCode;

const BACKOFF: Duration = Duration::from_millis(100);

fn t0() -> Instant {
    Instant::now()
}

fn manager() -> TxnManager {
    TxnManager::new("tx", 60_000, BACKOFF)
}

fn found(key: &str, node: i32, error: ErrorCode) -> FindCoordinatorResponse {
    FindCoordinatorResponse {
        coordinators: vec![Coordinator {
            key: key.into(),
            node_id: node,
            host: "127.0.0.1".into(),
            port: 9092,
            error_code: error.code(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn pid(id: i64, epoch: i16, error: ErrorCode) -> InitProducerIdResponse {
    InitProducerIdResponse {
        error_code: error.code(),
        producer_id: id,
        producer_epoch: epoch,
        ..Default::default()
    }
}

fn added(parts: &[(&str, i32, ErrorCode)]) -> AddPartitionsToTxnResponse {
    AddPartitionsToTxnResponse {
        results_by_topic_v3_and_below: parts
            .iter()
            .map(|(t, p, e)| AddPartitionsToTxnTopicResult {
                name: (*t).into(),
                results_by_partition: vec![AddPartitionsToTxnPartitionResult {
                    partition_index: *p,
                    partition_error_code: e.code(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn end(error: ErrorCode) -> EndTxnResponse {
    EndTxnResponse {
        error_code: error.code(),
        ..Default::default()
    }
}

fn kind(s: &TxnSend) -> &'static str {
    match &s.request {
        TxnRequest::FindCoordinator { key_type, .. } if *key_type == KEY_TYPE_GROUP => {
            "FindGroupCoordinator"
        }
        TxnRequest::FindCoordinator { .. } => "FindCoordinator",
        TxnRequest::InitProducerId(_) => "InitProducerId",
        TxnRequest::AddPartitionsToTxn(_) => "AddPartitionsToTxn",
        TxnRequest::AddOffsetsToTxn(_) => "AddOffsetsToTxn",
        TxnRequest::TxnOffsetCommit(_) => "TxnOffsetCommit",
        TxnRequest::EndTxn(_) => "EndTxn",
    }
}

fn next(m: &mut TxnManager, now: Instant) -> TxnSend {
    m.next_request(now, false).expect("a request is due")
}

/// A manager through init_transactions (coordinator 1, producer 7 epoch 0).
fn ready(protocol_level: i16) -> TxnManager {
    let mut m = manager();
    m.set_transaction_version(protocol_level);
    let now = t0();
    m.init_transactions().unwrap();
    assert_eq!(m.state(), TxnState::Initializing);
    let s = next(&mut m, now);
    assert_eq!(s.target, TxnTarget::AnyBroker);
    assert_eq!(kind(&s), "FindCoordinator");
    m.on_find_coordinator(&found("tx", 1, ErrorCode::None), 4, now);
    let s = next(&mut m, now);
    assert_eq!(s.target, TxnTarget::TxnCoordinator(1));
    let TxnRequest::InitProducerId(r) = &s.request else {
        panic!("{s:?}")
    };
    assert_eq!(r.transactional_id.as_deref(), Some("tx"));
    assert_eq!(r.transaction_timeout_ms, 60_000);
    m.on_init_producer_id(&pid(7, 0, ErrorCode::None), now);
    assert_eq!(m.state(), TxnState::Ready);
    assert_eq!(m.producer_id_and_epoch(), (7, 0));
    assert_eq!(
        m.poll_outcome(),
        Some(TxnOutcome {
            call: TxnCall::InitTransactions,
            result: Ok(())
        })
    );
    m
}

/// The outcome of `call` finished without error.
fn succeeded(call: TxnCall) -> TxnOutcome {
    TxnOutcome {
        call,
        result: Ok(()),
    }
}

fn offsets(group: &str) -> GroupOffsets {
    GroupOffsets {
        group_id: group.into(),
        generation_id: 3,
        member_id: "m".into(),
        group_instance_id: None,
        offsets: BTreeMap::from([(("in".to_string(), 0), 42)]),
    }
}

#[test]
fn java_transitions() {
    use TxnState::*;
    let all = [
        Uninitialized,
        Initializing,
        Ready,
        InTransaction,
        CommittingTransaction,
        AbortingTransaction,
        AbortableError,
        FatalError,
    ];
    let allowed = [
        (Uninitialized, Uninitialized),
        (Uninitialized, Initializing),
        (AbortingTransaction, Initializing),
        (Initializing, Ready),
        (CommittingTransaction, Ready),
        (AbortingTransaction, Ready),
        (Ready, InTransaction),
        (InTransaction, CommittingTransaction),
        (InTransaction, AbortingTransaction),
        (AbortableError, AbortingTransaction),
        (InTransaction, AbortableError),
        (CommittingTransaction, AbortableError),
        (AbortableError, AbortableError),
        (Initializing, AbortableError),
    ];
    for from in all {
        for to in all {
            let expected = to == FatalError || allowed.contains(&(from, to));
            assert_eq!(to.may_follow(from), expected, "{from:?} -> {to:?}");
        }
    }
}

#[test]
fn calls_before_init_are_refused() {
    let mut m = manager();
    let refused = |call| TxnError::InvalidState {
        call,
        state: TxnState::Uninitialized,
    };
    assert_eq!(
        m.begin_transaction(),
        Err(refused(TxnCall::BeginTransaction))
    );
    assert_eq!(m.add_partition("t", 0), Err(refused(TxnCall::Send)));
    assert_eq!(
        m.send_offsets(offsets("g")),
        Err(refused(TxnCall::SendOffsets))
    );
    assert_eq!(m.commit_transaction(), Err(refused(TxnCall::Commit)));
    assert_eq!(m.abort_transaction(), Err(refused(TxnCall::Abort)));
    assert!(m.next_request(t0(), false).is_none());
}

#[test]
fn calls_while_initializing_wait_for_init() {
    let mut m = manager();
    m.init_transactions().unwrap();
    let pending = |call| TxnError::Pending {
        call,
        pending: TxnCall::InitTransactions,
    };
    assert_eq!(
        m.init_transactions(),
        Err(pending(TxnCall::InitTransactions))
    );
    assert_eq!(
        m.begin_transaction(),
        Err(pending(TxnCall::BeginTransaction))
    );
    assert_eq!(m.commit_transaction(), Err(pending(TxnCall::Commit)));
    assert_eq!(
        m.add_partition("t", 0),
        Err(TxnError::InvalidState {
            call: TxnCall::Send,
            state: TxnState::Initializing
        })
    );
}

#[test]
fn calls_in_ready_state() {
    let mut m = ready(0);
    let refused = |call| TxnError::InvalidState {
        call,
        state: TxnState::Ready,
    };
    assert_eq!(
        m.init_transactions(),
        Err(refused(TxnCall::InitTransactions))
    );
    assert_eq!(m.add_partition("t", 0), Err(refused(TxnCall::Send)));
    assert_eq!(
        m.send_offsets(offsets("g")),
        Err(refused(TxnCall::SendOffsets))
    );
    assert_eq!(m.commit_transaction(), Err(refused(TxnCall::Commit)));
    assert_eq!(m.abort_transaction(), Err(refused(TxnCall::Abort)));
    m.begin_transaction().unwrap();
    assert_eq!(m.state(), TxnState::InTransaction);
    assert_eq!(
        m.begin_transaction(),
        Err(TxnError::InvalidState {
            call: TxnCall::BeginTransaction,
            state: TxnState::InTransaction
        })
    );
    assert!(m.next_request(t0(), false).is_none(), "begin sends nothing");
}

#[test]
fn v1_adds_partitions_before_produce_then_commits() {
    let mut m = ready(1);
    let now = t0();
    m.begin_transaction().unwrap();
    m.add_partition("t", 0).unwrap();
    m.add_partition("t", 1).unwrap();
    m.add_partition("t", 0).unwrap();
    assert!(!m.may_produce("t", 0), "not before AddPartitionsToTxn");
    let s = next(&mut m, now);
    let TxnRequest::AddPartitionsToTxn(r) = &s.request else {
        panic!("{s:?}")
    };
    assert_eq!(r.v3_and_below_transactional_id, "tx");
    assert_eq!(r.v3_and_below_producer_id, 7);
    assert_eq!(r.v3_and_below_topics.len(), 1);
    assert_eq!(r.v3_and_below_topics[0].partitions, vec![0, 1]);
    assert!(
        m.next_request(now, false).is_none(),
        "one request in flight"
    );
    m.on_add_partitions(
        &added(&[("t", 0, ErrorCode::None), ("t", 1, ErrorCode::None)]),
        now,
    );
    assert!(m.may_produce("t", 0) && m.may_produce("t", 1));
    assert!(!m.may_produce("t", 2));
    // Already added: no second request.
    m.add_partition("t", 1).unwrap();
    assert!(m.next_request(now, false).is_none());
    m.commit_transaction().unwrap();
    assert_eq!(m.state(), TxnState::CommittingTransaction);
    assert!(
        m.may_produce("t", 0),
        "records of a committing transaction still flush"
    );
    assert!(
        m.next_request(now, true).is_none(),
        "EndTxn waits for the records"
    );
    let s = next(&mut m, now);
    let TxnRequest::EndTxn(r) = &s.request else {
        panic!("{s:?}")
    };
    assert!(r.committed);
    assert_eq!((r.producer_id, r.producer_epoch), (7, 0));
    m.on_end_txn(&end(ErrorCode::None), 4, now);
    assert_eq!(m.state(), TxnState::Ready);
    assert!(m.partitions().is_empty());
    assert_eq!(
        m.poll_outcome(),
        Some(TxnOutcome {
            call: TxnCall::Commit,
            result: Ok(())
        })
    );
}

#[test]
fn v2_adds_partitions_through_produce_and_end_txn_bumps_the_epoch() {
    let mut m = ready(2);
    assert_eq!(m.protocol(), TxnProtocol::V2);
    let now = t0();
    m.begin_transaction().unwrap();
    m.add_partition("t", 0).unwrap();
    assert!(m.may_produce("t", 0), "Produce v12+ adds the partition");
    m.commit_transaction().unwrap();
    let s = next(&mut m, now);
    assert_eq!(kind(&s), "EndTxn");
    m.on_end_txn(
        &EndTxnResponse {
            producer_id: 7,
            producer_epoch: 1,
            ..Default::default()
        },
        5,
        now,
    );
    assert_eq!(m.producer_id_and_epoch(), (7, 1));
    assert_eq!(m.state(), TxnState::Ready);
}

#[test]
fn empty_transactions_end_without_a_request() {
    let mut m = ready(1);
    m.begin_transaction().unwrap();
    m.commit_transaction().unwrap();
    assert_eq!(m.state(), TxnState::Ready);
    assert_eq!(m.poll_outcome().unwrap().call, TxnCall::Commit);
    m.begin_transaction().unwrap();
    m.abort_transaction().unwrap();
    assert_eq!(m.state(), TxnState::Ready);
    assert_eq!(m.poll_outcome().unwrap().call, TxnCall::Abort);
    assert!(m.next_request(t0(), false).is_none());
}

#[test]
fn v1_offsets_add_then_commit_to_the_group_coordinator() {
    let mut m = ready(1);
    let now = t0();
    m.begin_transaction().unwrap();
    m.send_offsets(offsets("g")).unwrap();
    assert_eq!(
        m.send_offsets(offsets("g")),
        Err(TxnError::Pending {
            call: TxnCall::SendOffsets,
            pending: TxnCall::SendOffsets
        })
    );
    let s = next(&mut m, now);
    let TxnRequest::AddOffsetsToTxn(r) = &s.request else {
        panic!("{s:?}")
    };
    assert_eq!(r.group_id, "g");
    m.on_add_offsets(&AddOffsetsToTxnResponse::default(), now);
    let s = next(&mut m, now);
    assert_eq!(kind(&s), "FindGroupCoordinator");
    m.on_find_coordinator(&found("g", 3, ErrorCode::None), 4, now);
    let s = next(&mut m, now);
    assert_eq!(s.target, TxnTarget::GroupCoordinator(3));
    let TxnRequest::TxnOffsetCommit(r) = &s.request else {
        panic!("{s:?}")
    };
    assert_eq!(r.generation_id_or_member_epoch, 3);
    assert_eq!(r.topics[0].partitions[0].committed_offset, 42);
    m.on_txn_offset_commit(&commit_answer(ErrorCode::None), now);
    assert_eq!(m.poll_outcome().unwrap().call, TxnCall::SendOffsets);
    m.commit_transaction().unwrap();
    assert_eq!(kind(&next(&mut m, now)), "EndTxn");
}

fn commit_answer(e: ErrorCode) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse {
        topics: vec![TxnOffsetCommitResponseTopic {
            name: "in".into(),
            partitions: vec![TxnOffsetCommitResponsePartition {
                partition_index: 0,
                error_code: e.code(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn v2_offsets_skip_add_offsets() {
    let mut m = ready(2);
    let now = t0();
    m.begin_transaction().unwrap();
    m.send_offsets(offsets("g")).unwrap();
    assert_eq!(kind(&next(&mut m, now)), "FindGroupCoordinator");
    m.on_find_coordinator(&found("g", 3, ErrorCode::None), 4, now);
    assert_eq!(kind(&next(&mut m, now)), "TxnOffsetCommit");
    // The group coordinator moved: found again, then retried.
    m.on_txn_offset_commit(&commit_answer(ErrorCode::NotCoordinator), now);
    assert!(m.next_request(now, false).is_none(), "backoff");
    assert_eq!(kind(&next(&mut m, now + BACKOFF)), "FindGroupCoordinator");
}

/// A TxnOffsetCommit answered after its transaction failed (a record
/// failed while it was in flight) finishes nothing: the call failed
/// already, and the abort goes on.
#[test]
fn offsets_answered_after_the_transaction_failed_finish_nothing() {
    let mut m = ready(2);
    let now = t0();
    m.begin_transaction().unwrap();
    m.add_partition("t", 0).unwrap();
    m.send_offsets(offsets("g")).unwrap();
    assert_eq!(kind(&next(&mut m, now)), "FindGroupCoordinator");
    m.on_find_coordinator(&found("g", 3, ErrorCode::None), 4, now);
    assert_eq!(kind(&next(&mut m, now)), "TxnOffsetCommit");
    m.on_record_failed(ErrorCode::MessageTooLarge);
    let failed = m.poll_outcome().unwrap();
    assert_eq!(failed.call, TxnCall::SendOffsets);
    assert!(
        matches!(failed.result, Err(TxnError::Abortable { .. })),
        "{failed:?}"
    );
    m.abort_transaction().unwrap();
    m.on_txn_offset_commit(&commit_answer(ErrorCode::None), now);
    assert_eq!(m.poll_outcome(), None, "a second outcome for send_offsets");
    assert_eq!(kind(&next(&mut m, now)), "EndTxn");
    m.on_end_txn(&end(ErrorCode::None), 5, now);
    assert_eq!(m.poll_outcome(), Some(succeeded(TxnCall::Abort)));
}

/// An abort while AddPartitionsToTxn is in flight, the coordinator then
/// answering that it added nothing (it moved): the coordinator has no
/// transaction, so no EndTxn goes (Kafka would answer INVALID_TXN_STATE,
/// taking the previous transaction's end for this one's), and the abort
/// is over.
#[test]
fn abort_after_partitions_were_refused_sends_no_end_txn() {
    let mut m = ready(1);
    let now = t0();
    m.begin_transaction().unwrap();
    m.add_partition("t", 0).unwrap();
    assert_eq!(kind(&next(&mut m, now)), "AddPartitionsToTxn");
    m.abort_transaction().unwrap();
    m.on_add_partitions(&added(&[("t", 0, ErrorCode::NotCoordinator)]), now);
    assert_eq!(m.next_request(now + BACKOFF, false), None);
    assert_eq!(m.poll_outcome(), Some(succeeded(TxnCall::Abort)));
    assert_eq!(m.state(), TxnState::Ready);
}

#[test]
fn coordinator_moves_and_loads_are_retried() {
    let mut m = ready(1);
    let now = t0();
    m.begin_transaction().unwrap();
    m.add_partition("t", 0).unwrap();
    next(&mut m, now);
    // NOT_COORDINATOR: find the coordinator again, then add again.
    m.on_add_partitions(&added(&[("t", 0, ErrorCode::NotCoordinator)]), now);
    assert!(m.next_request(now, false).is_none(), "backoff");
    assert_eq!(m.coordinator(), None);
    let later = now + BACKOFF;
    assert_eq!(kind(&next(&mut m, later)), "FindCoordinator");
    m.on_find_coordinator(&found("tx", 2, ErrorCode::None), 4, later);
    let s = next(&mut m, later);
    assert_eq!(s.target, TxnTarget::TxnCoordinator(2));
    assert_eq!(kind(&s), "AddPartitionsToTxn");
    // CONCURRENT_TRANSACTIONS: retried sooner than the general backoff.
    m.on_add_partitions(
        &added(&[("t", 0, ErrorCode::ConcurrentTransactions)]),
        later,
    );
    assert_eq!(m.coordinator(), Some(2));
    let soon = later + Duration::from_millis(20);
    assert_eq!(kind(&next(&mut m, soon)), "AddPartitionsToTxn");
    // COORDINATOR_LOAD_IN_PROGRESS: same coordinator, after the backoff.
    m.on_add_partitions(
        &added(&[("t", 0, ErrorCode::CoordinatorLoadInProgress)]),
        soon,
    );
    assert!(m
        .next_request(soon + Duration::from_millis(20), false)
        .is_none());
    let s = next(&mut m, soon + BACKOFF);
    assert_eq!(s.target, TxnTarget::TxnCoordinator(2));
    m.on_add_partitions(&added(&[("t", 0, ErrorCode::None)]), soon + BACKOFF);
    assert!(m.may_produce("t", 0));
    // A lost EndTxn: found again and resent.
    m.commit_transaction().unwrap();
    let at = soon + BACKOFF;
    assert_eq!(kind(&next(&mut m, at)), "EndTxn");
    m.on_request_failed(at);
    assert_eq!(kind(&next(&mut m, at + BACKOFF)), "FindCoordinator");
    m.on_find_coordinator(&found("tx", 2, ErrorCode::None), 4, at + BACKOFF);
    assert_eq!(kind(&next(&mut m, at + BACKOFF)), "EndTxn");
    m.on_end_txn(&end(ErrorCode::ConcurrentTransactions), 4, at + BACKOFF);
    assert_eq!(kind(&next(&mut m, at + BACKOFF * 2)), "EndTxn");
    m.on_end_txn(&end(ErrorCode::None), 4, at + BACKOFF * 2);
    assert_eq!(m.state(), TxnState::Ready);
}

#[test]
fn find_coordinator_errors() {
    let now = t0();
    let mut m = manager();
    m.init_transactions().unwrap();
    next(&mut m, now);
    m.on_find_coordinator(&found("tx", -1, ErrorCode::CoordinatorNotAvailable), 4, now);
    assert!(m.next_request(now, false).is_none());
    assert_eq!(kind(&next(&mut m, now + BACKOFF)), "FindCoordinator");
    m.on_find_coordinator(
        &found("tx", -1, ErrorCode::TransactionalIdAuthorizationFailed),
        4,
        now,
    );
    assert_eq!(m.state(), TxnState::FatalError);
    let fatal = TxnError::Fatal(ErrorCode::TransactionalIdAuthorizationFailed);
    assert_eq!(
        m.poll_outcome(),
        Some(TxnOutcome {
            call: TxnCall::InitTransactions,
            result: Err(fatal.clone())
        })
    );
    // Every later call fails with the fatal error.
    assert_eq!(m.begin_transaction(), Err(fatal.clone()));
    assert_eq!(m.abort_transaction(), Err(fatal.clone()));
    assert_eq!(m.add_partition("t", 0), Err(fatal));
    assert!(m.next_request(now + BACKOFF * 10, false).is_none());
}

#[test]
fn fenced_and_epoch_errors_are_fatal() {
    for code in [
        ErrorCode::ProducerFenced,
        ErrorCode::InvalidProducerEpoch,
        ErrorCode::TransactionalIdAuthorizationFailed,
        ErrorCode::InvalidTxnState,
        ErrorCode::UnsupportedVersion,
    ] {
        // On AddPartitionsToTxn.
        let mut m = ready(1);
        let now = t0();
        m.begin_transaction().unwrap();
        m.add_partition("t", 0).unwrap();
        next(&mut m, now);
        m.on_add_partitions(&added(&[("t", 0, code)]), now);
        assert_eq!(m.state(), TxnState::FatalError, "{code}");
        assert_eq!(m.error(), Some(&TxnError::Fatal(code)));
        // On EndTxn: the commit fails with it.
        let mut m = ready(2);
        m.begin_transaction().unwrap();
        m.add_partition("t", 0).unwrap();
        m.commit_transaction().unwrap();
        next(&mut m, now);
        m.on_end_txn(&end(code), 5, now);
        assert_eq!(m.state(), TxnState::FatalError, "{code}");
        assert_eq!(
            m.poll_outcome(),
            Some(TxnOutcome {
                call: TxnCall::Commit,
                result: Err(TxnError::Fatal(code))
            })
        );
    }
    // On InitProducerId: another producer holds the id.
    let mut m = manager();
    let now = t0();
    m.init_transactions().unwrap();
    next(&mut m, now);
    m.on_find_coordinator(&found("tx", 1, ErrorCode::None), 4, now);
    next(&mut m, now);
    m.on_init_producer_id(&pid(-1, -1, ErrorCode::InvalidProducerEpoch), now);
    assert_eq!(m.state(), TxnState::FatalError);
}

#[test]
fn init_retries_while_the_coordinator_loads() {
    let mut m = manager();
    let now = t0();
    m.init_transactions().unwrap();
    next(&mut m, now);
    m.on_find_coordinator(&found("tx", 1, ErrorCode::None), 4, now);
    next(&mut m, now);
    m.on_init_producer_id(&pid(-1, -1, ErrorCode::CoordinatorLoadInProgress), now);
    assert_eq!(m.state(), TxnState::Initializing);
    assert_eq!(kind(&next(&mut m, now + BACKOFF)), "InitProducerId");
    m.on_init_producer_id(&pid(-1, -1, ErrorCode::NotCoordinator), now + BACKOFF);
    assert_eq!(kind(&next(&mut m, now + BACKOFF * 2)), "FindCoordinator");
}

#[test]
fn a_failed_record_makes_the_transaction_abortable() {
    let mut m = ready(2);
    let now = t0();
    m.begin_transaction().unwrap();
    m.add_partition("t", 0).unwrap();
    m.on_record_failed(ErrorCode::MessageTooLarge);
    assert_eq!(m.state(), TxnState::AbortableError);
    let e = TxnError::Abortable {
        cause: AbortCause::RecordFailed(ErrorCode::MessageTooLarge),
    };
    // Commit and send are refused with the error; abort is allowed.
    assert_eq!(m.commit_transaction(), Err(e.clone()));
    assert_eq!(m.add_partition("t", 1), Err(e.clone()));
    assert_eq!(m.send_offsets(offsets("g")), Err(e.clone()));
    assert_eq!(m.begin_transaction(), Err(e));
    assert!(!m.may_produce("t", 0));
    m.abort_transaction().unwrap();
    assert_eq!(m.state(), TxnState::AbortingTransaction);
    let TxnRequest::EndTxn(r) = next(&mut m, now).request else {
        panic!()
    };
    assert!(!r.committed);
    m.on_end_txn(&end(ErrorCode::None), 5, now);
    assert_eq!(m.state(), TxnState::Ready);
    assert_eq!(m.error(), None);
    m.begin_transaction().unwrap();
}

#[test]
fn a_record_failing_during_commit_fails_the_commit() {
    let mut m = ready(2);
    let now = t0();
    m.begin_transaction().unwrap();
    m.add_partition("t", 0).unwrap();
    m.commit_transaction().unwrap();
    assert!(m.next_request(now, true).is_none());
    m.on_record_timeout();
    assert_eq!(m.state(), TxnState::AbortableError);
    assert_eq!(
        m.poll_outcome(),
        Some(TxnOutcome {
            call: TxnCall::Commit,
            result: Err(TxnError::Abortable {
                cause: AbortCause::Timeout
            })
        })
    );
    assert!(m.next_request(now, false).is_none(), "no EndTxn(commit)");
    m.abort_transaction().unwrap();
    assert!(
        m.next_request(now, true).is_none(),
        "EndTxn(abort) waits for in-flight records"
    );
    assert!(matches!(
        next(&mut m, now).request,
        TxnRequest::EndTxn(EndTxnRequest {
            committed: false,
            ..
        })
    ));
}

#[test]
fn fatal_record_errors_close_the_producer() {
    for code in [
        ErrorCode::ProducerFenced,
        ErrorCode::TransactionalIdAuthorizationFailed,
        ErrorCode::UnsupportedVersion,
    ] {
        assert!(record_failure_is_fatal(code));
        let mut m = ready(2);
        m.begin_transaction().unwrap();
        m.on_record_failed(code);
        assert_eq!(m.state(), TxnState::FatalError);
        assert_eq!(m.abort_transaction(), Err(TxnError::Fatal(code)));
    }
    assert!(!record_failure_is_fatal(ErrorCode::InvalidProducerEpoch));
}

#[test]
fn unknown_producer_id_aborts_then_bumps_the_epoch_under_v1() {
    let mut m = ready(1);
    let now = t0();
    m.begin_transaction().unwrap();
    m.add_partition("t", 0).unwrap();
    next(&mut m, now);
    m.on_add_partitions(&added(&[("t", 0, ErrorCode::None)]), now);
    m.send_offsets(offsets("g")).unwrap();
    next(&mut m, now);
    m.on_add_offsets(
        &AddOffsetsToTxnResponse {
            error_code: ErrorCode::UnknownProducerId.code(),
            ..Default::default()
        },
        now,
    );
    assert_eq!(m.state(), TxnState::AbortableError);
    assert_eq!(m.poll_outcome().unwrap().call, TxnCall::SendOffsets);
    m.abort_transaction().unwrap();
    assert_eq!(kind(&next(&mut m, now)), "EndTxn");
    m.on_end_txn(&end(ErrorCode::None), 4, now);
    // KIP-360: InitProducerId with the current id and epoch.
    assert_eq!(m.state(), TxnState::Initializing);
    let TxnRequest::InitProducerId(r) = next(&mut m, now).request else {
        panic!()
    };
    assert_eq!((r.producer_id, r.producer_epoch), (7, 0));
    m.on_init_producer_id(&pid(7, 1, ErrorCode::None), now);
    assert_eq!(m.state(), TxnState::Ready);
    assert_eq!(m.producer_id_and_epoch(), (7, 1));
    assert_eq!(
        m.poll_outcome(),
        Some(TxnOutcome {
            call: TxnCall::Abort,
            result: Ok(())
        })
    );
}

#[test]
fn abort_drops_partitions_not_yet_added() {
    let mut m = ready(1);
    let now = t0();
    m.begin_transaction().unwrap();
    m.add_partition("t", 0).unwrap();
    // Nothing reached the coordinator: the abort needs no EndTxn.
    m.abort_transaction().unwrap();
    assert_eq!(m.state(), TxnState::Ready);
    assert!(m.next_request(now, false).is_none());
    // With an AddPartitionsToTxn in flight, EndTxn(abort) follows it.
    m.begin_transaction().unwrap();
    m.add_partition("t", 0).unwrap();
    next(&mut m, now);
    m.abort_transaction().unwrap();
    m.on_add_partitions(&added(&[("t", 0, ErrorCode::None)]), now);
    assert_eq!(m.state(), TxnState::AbortingTransaction);
    assert!(!m.may_produce("t", 0));
    assert_eq!(kind(&next(&mut m, now)), "EndTxn");
}

#[test]
fn transaction_version_changes_only_between_transactions() {
    let mut m = ready(1);
    m.begin_transaction().unwrap();
    m.set_transaction_version(2);
    assert_eq!(m.protocol(), TxnProtocol::V1);
    m.commit_transaction().unwrap();
    m.set_transaction_version(2);
    assert_eq!(m.protocol(), TxnProtocol::V2);
    assert_eq!(TxnProtocol::from_feature_level(0), TxnProtocol::V1);
    assert_eq!(TxnProtocol::from_feature_level(3), TxnProtocol::V2);
}

#[test]
fn find_coordinator_request_by_version() {
    let old = TxnManager::find_coordinator_request(KEY_TYPE_TRANSACTION, "tx", 3);
    assert_eq!(
        (old.key.as_str(), old.key_type),
        ("tx", KEY_TYPE_TRANSACTION)
    );
    assert!(old.coordinator_keys.is_empty());
    let new = TxnManager::find_coordinator_request(KEY_TYPE_GROUP, "g", 4);
    assert_eq!(new.coordinator_keys, vec!["g".to_string()]);
    assert!(new.key.is_empty());
    // A v0-3 answer is read for the key asked.
    let mut m = manager();
    let now = t0();
    m.init_transactions().unwrap();
    next(&mut m, now);
    let v2 = FindCoordinatorResponse {
        node_id: 5,
        host: "h".into(),
        port: 1,
        ..Default::default()
    };
    m.on_find_coordinator(&v2, 2, now);
    assert_eq!(m.coordinator(), Some(5));
}

// ------------------------------------------------- against the mock cluster

mod against_the_mock {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_sansio::mock::MockCluster;
    use kafka_sansio::protocol::frame::{decode_response, encode_request, Request};
    use kafka_sansio::protocol::messages::produce::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    use kafka_sansio::protocol::{BatchBuilder, Compression};

    fn call<R: Request>(c: &mut MockCluster, node: i32, v: i16, req: &R) -> R::Response {
        let mut buf = BytesMut::new();
        encode_request(&mut buf, 1, Some("txn"), v, req).unwrap();
        let r = c.handle_request(node, Bytes::from(buf).slice(4..), Instant::now());
        decode_response::<R::Response>(r.response.expect("answer").slice(4..), v)
            .unwrap()
            .1
    }

    /// Sends every request the manager wants until it has none.
    fn pump(m: &mut TxnManager, c: &mut MockCluster, v2: bool) {
        for _ in 0..20 {
            let Some(s) = m.next_request(Instant::now() + Duration::from_secs(60), false) else {
                return;
            };
            let node = match s.target {
                TxnTarget::AnyBroker => 0,
                TxnTarget::TxnCoordinator(n) | TxnTarget::GroupCoordinator(n) => n,
            };
            let now = Instant::now();
            match &s.request {
                TxnRequest::FindCoordinator { key_type, key } => {
                    let req = TxnManager::find_coordinator_request(*key_type, key, 6);
                    let r = call(c, node, 6, &req);
                    m.on_find_coordinator(&r, 6, now);
                }
                TxnRequest::InitProducerId(req) => {
                    let r = call(c, node, 5, req);
                    m.on_init_producer_id(&r, now);
                }
                TxnRequest::AddPartitionsToTxn(req) => {
                    let r = call(c, node, 3, req);
                    m.on_add_partitions(&r, now);
                }
                TxnRequest::AddOffsetsToTxn(req) => {
                    let r = call(c, node, 4, req);
                    m.on_add_offsets(&r, now);
                }
                TxnRequest::TxnOffsetCommit(req) => {
                    let v = if v2 { 5 } else { 4 };
                    let r = call(c, node, v, req);
                    m.on_txn_offset_commit(&r, now);
                }
                TxnRequest::EndTxn(req) => {
                    let v = if v2 { 5 } else { 4 };
                    let r = call(c, node, v, req);
                    m.on_end_txn(&r, v, now);
                }
            }
        }
        panic!("the manager never settled");
    }

    fn produce(
        m: &mut TxnManager,
        c: &mut MockCluster,
        seq: &mut i32,
        partition: i32,
        value: &str,
    ) {
        m.add_partition("t", partition).unwrap();
        pump(m, c, m.protocol() == TxnProtocol::V2);
        assert!(m.may_produce("t", partition));
        let (pid, epoch) = m.producer_id_and_epoch();
        let mut b = BatchBuilder::new(0, 64);
        b.append(0, None, Some(value.as_bytes()), &[]);
        let mut closed = b.close(Compression::None, None).unwrap();
        closed.stamp(pid, epoch, *seq, true);
        *seq += 1;
        let req = ProduceRequest {
            transactional_id: Some("tx".into()),
            acks: -1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(closed.bytes()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let node = c.leader("t", partition).unwrap();
        let r = call(c, node, 12, &req);
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }

    fn values(c: &MockCluster, partition: i32) -> Vec<String> {
        c.committed_records("t", partition)
            .unwrap()
            .into_iter()
            .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn commits_and_aborts_on_both_protocols() {
        for level in [1, 2] {
            let mut c = MockCluster::new(3);
            c.create_topic("t", 2).unwrap();
            c.set_transaction_version(level);
            let mut m = manager();
            m.set_transaction_version(c.transaction_version());
            m.init_transactions().unwrap();
            pump(&mut m, &mut c, level >= 2);
            assert_eq!(m.state(), TxnState::Ready, "v{level}");
            let mut seqs = [0, 0];
            // Committed: both partitions and the group's offsets.
            m.begin_transaction().unwrap();
            produce(&mut m, &mut c, &mut seqs[0], 0, "a");
            produce(&mut m, &mut c, &mut seqs[1], 1, "b");
            m.send_offsets(offsets("g")).unwrap();
            pump(&mut m, &mut c, level >= 2);
            m.commit_transaction().unwrap();
            pump(&mut m, &mut c, level >= 2);
            assert_eq!(m.state(), TxnState::Ready, "v{level}");
            assert_eq!(c.committed_offset("g", "in", 0), Some(42));
            if level >= 2 {
                // The epoch moved: sequences restart.
                assert_eq!(m.producer_id_and_epoch().1, 1);
                seqs = [0, 0];
            }
            // Aborted after a failed record.
            m.begin_transaction().unwrap();
            produce(&mut m, &mut c, &mut seqs[0], 0, "x");
            m.on_record_failed(ErrorCode::MessageTooLarge);
            assert!(m.commit_transaction().is_err());
            m.abort_transaction().unwrap();
            pump(&mut m, &mut c, level >= 2);
            assert_eq!(m.state(), TxnState::Ready, "v{level}");
            assert_eq!(values(&c, 0), vec!["a"], "v{level}");
            assert_eq!(values(&c, 1), vec!["b"], "v{level}");
            assert_eq!(c.last_stable_offset("t", 0), c.log_end_offset("t", 0));
            // A second instance fences this one.
            let mut other = manager();
            other.set_transaction_version(level);
            other.init_transactions().unwrap();
            pump(&mut other, &mut c, level >= 2);
            m.begin_transaction().unwrap();
            m.add_partition("t", 0).unwrap();
            m.commit_transaction().unwrap();
            pump(&mut m, &mut c, level >= 2);
            assert_eq!(m.state(), TxnState::FatalError, "v{level}");
            assert_eq!(m.error(), Some(&TxnError::Fatal(ErrorCode::ProducerFenced)));
        }
    }
}
