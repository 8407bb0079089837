//! Transactions end to end against the mock cluster: the core driven
//! through [`Pair`] (both protocol versions, fencing, coordinator moves,
//! retried errors, failed records, purge), then both drivers through
//! their blocking calls over real sockets to a [`MockServer`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_sansio::mock::{MockCluster, Pair};
use kafka_sansio::producer::txn::{
    AbortCause, GroupOffsets, TxnCall, TxnError, TxnOutcome, TxnState,
};
use kafka_sansio::producer::{
    ConfigError, DeliveryError, Event, Producer, ProducerConfig, ProducerRecord, SendError,
};
use kafka_sansio::protocol::{ApiKey, ErrorCode, RecordBatch};

const TX: &str = "tx-1";

fn config(tid: &str, extra: &[(&str, &str)]) -> ProducerConfig {
    let mut all = vec![
        ("bootstrap.servers", "localhost:9092"),
        ("transactional.id", tid),
        ("linger.ms", "0"),
    ];
    all.extend_from_slice(extra);
    ProducerConfig::from_properties(all).unwrap()
}

fn cluster(level: i16) -> MockCluster {
    let mut c = MockCluster::new(3);
    c.create_topic("t", 3).unwrap();
    c.set_transaction_version(level);
    c
}

fn pair(level: i16) -> Pair {
    pair_with(level, &[])
}

fn pair_with(level: i16, extra: &[(&str, &str)]) -> Pair {
    let now = Instant::now();
    let producer = Producer::new(config(TX, extra), now, 1_700_000_000_000).unwrap();
    Pair::new(producer, cluster(level), now)
}

/// Runs until the outcome of `call` arrives, and returns it.
fn outcome(p: &mut Pair, call: TxnCall) -> Result<(), TxnError> {
    let found = |p: &Pair| {
        p.events.iter().find_map(|e| match e {
            Event::Transaction(TxnOutcome { call: c, result }) if *c == call => {
                Some(result.clone())
            }
            _ => None,
        })
    };
    assert!(
        p.run_until(|p| found(p).is_some()),
        "no outcome for {call}; state {:?}",
        p.producer.transaction_state()
    );
    let r = found(p).unwrap();
    // Taken, so that a later call of the same kind is found afresh.
    let i = p
        .events
        .iter()
        .position(|e| matches!(e, Event::Transaction(o) if o.call == call))
        .unwrap();
    p.events.remove(i);
    r
}

fn init(p: &mut Pair) {
    p.core(|c, now| c.init_transactions(now)).unwrap();
    outcome(p, TxnCall::InitTransactions).unwrap();
    assert_eq!(p.producer.transaction_state(), Some(TxnState::Ready));
}

fn send(p: &mut Pair, partition: i32, value: &str) {
    p.core(|c, now| {
        c.send(
            ProducerRecord::new("t", value.to_owned()).partition(partition),
            now,
        )
    })
    .unwrap();
}

fn commit(p: &mut Pair) -> Result<(), TxnError> {
    p.core(|c, now| c.commit_transaction(now))?;
    outcome(p, TxnCall::Commit)
}

fn abort(p: &mut Pair) -> Result<(), TxnError> {
    p.core(|c, now| c.abort_transaction(now))?;
    outcome(p, TxnCall::Abort)
}

/// What a read_committed consumer reads of partition `partition`.
fn committed(c: &MockCluster, partition: i32) -> Vec<String> {
    c.committed_records("t", partition)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect()
}

/// Every record of partition `partition`, control batches left out
/// (what read_uncommitted sees).
fn uncommitted(c: &MockCluster, partition: i32) -> Vec<String> {
    let control: Vec<i64> = c
        .batches("t", partition)
        .into_iter()
        .filter(|b| {
            RecordBatch::decode(&mut b.bytes.clone())
                .unwrap()
                .is_control()
        })
        .map(|b| b.base_offset)
        .collect();
    c.records("t", partition)
        .unwrap()
        .into_iter()
        .filter(|r| !control.contains(&r.offset))
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect()
}

fn failures(p: &Pair) -> Vec<DeliveryError> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::Failed(f) => Some(f.error.clone()),
            _ => None,
        })
        .collect()
}

fn delivered(p: &Pair) -> usize {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::Delivered(d) => Some(d.records.len()),
            _ => None,
        })
        .sum()
}

#[test]
fn config_follows_java() {
    let c = config(TX, &[]);
    assert_eq!(c.transactional_id.as_deref(), Some(TX));
    assert_eq!(c.transaction_timeout, Duration::from_millis(60_000));
    let c = config(TX, &[("transaction.timeout.ms", "5000")]);
    assert_eq!(c.transaction_timeout, Duration::from_millis(5000));
    for bad in [
        &[("enable.idempotence", "false")][..],
        &[("acks", "1")],
        &[("max.in.flight.requests.per.connection", "6")],
        &[("retries", "0")],
    ] {
        let mut all = vec![
            ("bootstrap.servers", "localhost:9092"),
            ("transactional.id", TX),
        ];
        all.extend_from_slice(bad);
        let r = ProducerConfig::from_properties(all);
        assert!(matches!(r, Err(ConfigError::Conflict(_))), "{bad:?}: {r:?}");
    }
    let r = ProducerConfig::from_properties([("transaction.timeout.ms", "-1")]);
    assert!(matches!(r, Err(ConfigError::InvalidValue { .. })), "{r:?}");
    let r = ProducerConfig::from_properties([("transaction.two.phase.commit.enable", "true")]);
    assert!(matches!(r, Err(ConfigError::InvalidValue { .. })), "{r:?}");
}

#[test]
fn calls_are_refused_at_once_with_typed_errors() {
    let mut p = pair(2);
    // Not initialized: no transaction, no send.
    let r = p.core(|c, now| c.begin_transaction(now));
    assert_eq!(
        r,
        Err(TxnError::InvalidState {
            call: TxnCall::BeginTransaction,
            state: TxnState::Uninitialized
        })
    );
    let r = p.core(|c, now| c.send(ProducerRecord::new("t", "x"), now));
    assert!(matches!(r, Err(SendError::Transaction { .. })), "{r:?}");
    init(&mut p);
    // Outside a transaction a record is refused, and given back.
    let r = p.core(|c, now| c.send(ProducerRecord::new("t", "x"), now));
    let Err(e) = r else { panic!("accepted") };
    assert_eq!(&*e.into_record().value.unwrap(), b"x");
    // A producer without transactional.id has no transactions.
    let now = Instant::now();
    let mut plain = Producer::new(
        ProducerConfig::from_properties([("bootstrap.servers", "localhost:9092")]).unwrap(),
        now,
        0,
    )
    .unwrap();
    assert_eq!(
        plain.init_transactions(now),
        Err(TxnError::NotTransactional {
            call: TxnCall::InitTransactions
        })
    );
}

fn commit_is_read_committed_and_abort_is_not(level: i16) {
    let mut p = pair(level);
    init(&mut p);
    p.core(|c, now| c.begin_transaction(now)).unwrap();
    send(&mut p, 0, "a");
    send(&mut p, 1, "b");
    commit(&mut p).unwrap();
    assert_eq!(delivered(&p), 2);
    p.core(|c, now| c.begin_transaction(now)).unwrap();
    send(&mut p, 0, "x");
    send(&mut p, 2, "y");
    // Sent before the abort: the records reach the log, then the marker.
    assert!(p.run_until(|p| delivered(p) == 4));
    abort(&mut p).unwrap();
    p.core(|c, now| c.begin_transaction(now)).unwrap();
    send(&mut p, 0, "c");
    commit(&mut p).unwrap();
    let c = &p.broker;
    assert_eq!(committed(c, 0), ["a", "c"], "v{level}");
    assert_eq!(committed(c, 1), ["b"], "v{level}");
    assert!(committed(c, 2).is_empty(), "v{level}");
    assert_eq!(uncommitted(c, 0), ["a", "x", "c"], "v{level}");
    assert_eq!(c.last_stable_offset("t", 0), c.log_end_offset("t", 0));
    // Three transactions with data ended by a marker each per partition.
    assert_eq!(c.markers_written(), 5, "v{level}");
    let (_, epoch) = c.transactional_producer(TX).unwrap();
    // v2 bumps the epoch at every EndTxn; v1 keeps it.
    assert_eq!(epoch, if level >= 2 { 3 } else { 0 }, "v{level}");
    assert!(failures(&p).is_empty(), "{:?}", failures(&p));
}

#[test]
fn v1_commit_is_read_committed_and_abort_is_not() {
    commit_is_read_committed_and_abort_is_not(1);
}

#[test]
fn v2_commit_is_read_committed_and_abort_is_not() {
    commit_is_read_committed_and_abort_is_not(2);
}

#[test]
fn v1_adds_partitions_before_producing_and_v2_does_not() {
    for level in [1, 2] {
        let mut p = pair(level);
        p.record_sends();
        init(&mut p);
        p.core(|c, now| c.begin_transaction(now)).unwrap();
        send(&mut p, 0, "a");
        commit(&mut p).unwrap();
        let apis: Vec<i16> = p
            .sent()
            .iter()
            .filter(|(_, b)| b.len() >= 8)
            .map(|(_, b)| i16::from_be_bytes([b[4], b[5]]))
            .collect();
        let adds = apis
            .iter()
            .filter(|&&a| a == ApiKey::AddPartitionsToTxn.code())
            .count();
        assert_eq!(adds, usize::from(level == 1), "v{level}: {apis:?}");
        assert_eq!(committed(&p.broker, 0), ["a"]);
    }
}

#[test]
fn offsets_commit_with_the_transaction() {
    for level in [1, 2] {
        let mut p = pair(level);
        init(&mut p);
        p.core(|c, now| c.begin_transaction(now)).unwrap();
        send(&mut p, 0, "a");
        let offsets = GroupOffsets {
            group_id: "g".into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            offsets: BTreeMap::from([(("in".to_owned(), 0), 42)]),
        };
        p.core(|c, now| c.send_offsets_to_transaction(offsets, now))
            .unwrap();
        outcome(&mut p, TxnCall::SendOffsets).unwrap();
        assert_eq!(
            p.broker.committed_offset("g", "in", 0),
            None,
            "not before commit"
        );
        commit(&mut p).unwrap();
        assert_eq!(
            p.broker.committed_offset("g", "in", 0),
            Some(42),
            "v{level}"
        );
    }
}

#[test]
fn a_second_producer_fences_the_first_which_fails_fatally() {
    for level in [1, 2] {
        let mut p = pair(level);
        init(&mut p);
        p.core(|c, now| c.begin_transaction(now)).unwrap();
        send(&mut p, 0, "old");
        assert!(p.run_until(|p| delivered(p) == 1));
        // A new instance with the same id, on the same cluster.
        let now = p.now;
        let second = Producer::new(config(TX, &[]), now, 1_700_000_000_000).unwrap();
        let cluster = std::mem::replace(&mut p.broker, MockCluster::new(1));
        let mut q = Pair::new(second, cluster, now);
        init(&mut q);
        q.core(|c, now| c.begin_transaction(now)).unwrap();
        send(&mut q, 0, "new");
        commit(&mut q).unwrap();
        p.broker = std::mem::replace(&mut q.broker, MockCluster::new(1));
        // The old one: its next record fails, and so does the transaction.
        send(&mut p, 0, "late");
        let r = commit(&mut p);
        assert!(r.is_err(), "v{level}: {r:?}");
        if let Err(TxnError::Abortable { .. }) = r {
            // KIP-588: a stale epoch on Produce is abortable; the abort
            // then meets the fence.
            assert_eq!(
                abort(&mut p),
                Err(TxnError::Fatal(ErrorCode::ProducerFenced))
            );
        }
        assert_eq!(
            p.producer.transaction_state(),
            Some(TxnState::FatalError),
            "v{level}"
        );
        // Every later call and send fails with the fatal error.
        let fatal = TxnError::Fatal(ErrorCode::ProducerFenced);
        assert_eq!(
            p.core(|c, now| c.begin_transaction(now)),
            Err(fatal.clone())
        );
        assert_eq!(p.core(|c, now| c.abort_transaction(now)), Err(fatal));
        let r = p.core(|c, now| c.send(ProducerRecord::new("t", "z"), now));
        assert!(
            matches!(
                r,
                Err(SendError::Fatal {
                    code: ErrorCode::ProducerFenced,
                    ..
                })
            ),
            "{r:?}"
        );
        let c = &p.broker;
        assert_eq!(committed(c, 0), ["new"], "v{level}");
    }
}

#[test]
fn coordinator_moves_are_followed() {
    for level in [1, 2] {
        let mut p = pair(level);
        init(&mut p);
        let first = p.broker.coordinator_of(TX);
        for (round, value) in ["a", "b", "c"].into_iter().enumerate() {
            let to = (first + 1 + round as i32) % 3;
            p.broker.move_coordinator(TX, to);
            p.core(|c, now| c.begin_transaction(now)).unwrap();
            send(&mut p, round as i32, value);
            commit(&mut p).unwrap();
        }
        let all: Vec<String> = (0..3).flat_map(|i| committed(&p.broker, i)).collect();
        assert_eq!(all, ["a", "b", "c"], "v{level}");
    }
}

#[test]
fn concurrent_transactions_and_coordinator_loading_are_retried() {
    let mut p = pair(1);
    p.broker.push_errors(
        ApiKey::InitProducerId,
        vec![ErrorCode::CoordinatorLoadInProgress],
    );
    init(&mut p);
    p.broker.push_errors(
        ApiKey::AddPartitionsToTxn,
        vec![ErrorCode::ConcurrentTransactions; 3],
    );
    p.broker
        .push_errors(ApiKey::EndTxn, vec![ErrorCode::NotCoordinator]);
    p.core(|c, now| c.begin_transaction(now)).unwrap();
    send(&mut p, 0, "a");
    commit(&mut p).unwrap();
    assert_eq!(p.broker.pending_errors(ApiKey::AddPartitionsToTxn), 0);
    assert_eq!(p.broker.pending_errors(ApiKey::EndTxn), 0);
    assert_eq!(committed(&p.broker, 0), ["a"]);
}

#[test]
fn a_failed_record_makes_commit_fail_and_abort_recovers() {
    for level in [1, 2] {
        let mut p = pair(level);
        init(&mut p);
        p.core(|c, now| c.begin_transaction(now)).unwrap();
        send(&mut p, 0, "ok");
        assert!(p.run_until(|p| delivered(p) == 1));
        p.broker
            .push_errors(ApiKey::Produce, vec![ErrorCode::InvalidRecord]);
        send(&mut p, 1, "bad");
        let r = commit(&mut p);
        assert_eq!(
            r,
            Err(TxnError::Abortable {
                cause: AbortCause::RecordFailed(ErrorCode::InvalidRecord)
            }),
            "v{level}"
        );
        assert_eq!(
            p.producer.transaction_state(),
            Some(TxnState::AbortableError)
        );
        // Commit stays refused; sends too; abort is allowed.
        assert!(p.core(|c, now| c.commit_transaction(now)).is_err());
        abort(&mut p).unwrap();
        p.core(|c, now| c.begin_transaction(now)).unwrap();
        send(&mut p, 2, "after");
        commit(&mut p).unwrap();
        let all: Vec<String> = (0..3).flat_map(|i| committed(&p.broker, i)).collect();
        assert_eq!(all, ["after"], "v{level}");
    }
}

#[test]
fn abort_fails_unsent_records_with_a_typed_error() {
    // Lingering: nothing goes out before the abort.
    let mut p = pair_with(1, &[("linger.ms", "60000")]);
    init(&mut p);
    p.core(|c, now| c.begin_transaction(now)).unwrap();
    send(&mut p, 0, "a");
    send(&mut p, 1, "b");
    p.run_until_idle();
    p.core(|c, now| c.abort_transaction(now)).unwrap();
    outcome(&mut p, TxnCall::Abort).unwrap();
    let f = failures(&p);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(
        f.iter().all(|e| *e == DeliveryError::TransactionAborted),
        "{f:?}"
    );
    assert!(uncommitted(&p.broker, 0).is_empty());
    assert_eq!(p.producer.pending_records(), 0);
}

#[test]
fn purge_drops_unsent_records_and_the_producer_goes_on() {
    // Without transactions.
    let now = Instant::now();
    let config = ProducerConfig::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        ("linger.ms", "60000"),
    ])
    .unwrap();
    let mut c = cluster(0);
    c.create_topic("u", 1).unwrap();
    let mut p = Pair::new(Producer::new(config, now, 0).unwrap(), c, now);
    p.core(|c, now| c.send(ProducerRecord::new("u", "a"), now))
        .unwrap();
    p.run_until_idle();
    assert_eq!(p.core(|c, now| c.purge(now)), 1);
    p.core(|c, now| c.send(ProducerRecord::new("u", "b"), now))
        .unwrap();
    p.core(|c, now| c.flush(now));
    assert!(p.run_until(|p| p.producer.is_idle()));
    assert_eq!(failures(&p), [DeliveryError::Purged]);
    assert_eq!(delivered(&p), 1);
    assert_eq!(p.broker.records("u", 0).unwrap().len(), 1);

    // Inside a transaction: the transaction can no longer commit.
    let mut p = pair_with(2, &[("linger.ms", "60000")]);
    init(&mut p);
    p.core(|c, now| c.begin_transaction(now)).unwrap();
    send(&mut p, 0, "a");
    p.run_until_idle();
    assert_eq!(p.core(|c, now| c.purge(now)), 1);
    assert_eq!(
        commit(&mut p),
        Err(TxnError::Abortable {
            cause: AbortCause::Purged
        })
    );
    abort(&mut p).unwrap();
}
