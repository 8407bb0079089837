//! Transactions against Apache Kafka 4.4.0 itself (the three-node cluster of
//! tests/interop/kafka/kafka-cluster.sh), both drivers, both transaction
//! protocols: committed transactions read back by `read_committed` consumers
//! (Kafka's console consumer and confluent-kafka), aborted ones invisible to
//! them and visible at `read_uncommitted`; a second producer with the same
//! transactional id fencing the first; the transaction coordinator SIGKILLed
//! mid-transaction. The brokers' request logs show which protocol was spoken:
//! v1 sends AddPartitionsToTxn and EndTxn v4 or lower; v2 (KIP-890) adds
//! partitions through Produce v12+ and ends with EndTxn v5.
//!
//! Peers come from `KAFKA_SANSIO_KAFKA`, `KAFKA_SANSIO_KAFKA_CTL` and
//! `KAFKA_SANSIO_CONSUMER` (tests/interop/README.md); when one is unset a test
//! prints `SKIPPED: ...` and passes, except under `CI=true`.
//!
//! The protocol is the cluster's finalized `transaction.version`, a
//! cluster-wide feature: the tests of this binary (run in parallel) share the
//! cluster through [`lease`], at one level at a time, and the level goes back
//! to 2 (what the format finalizes) when the last lease ends, so the other
//! Kafka binaries (run one binary at a time by `cargo test`) find the default.

#[path = "interop/json.rs"]
mod json;
#[allow(dead_code)]
#[path = "interop/kafka_peer.rs"]
mod kafka_peer;
#[allow(dead_code)]
#[path = "interop/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use kafka_peer::{kafka_config, logged_values, Kafka, Killed};
use kafka_sansio::driver::Error;
use kafka_sansio::producer::txn::TxnError;
use kafka_sansio::producer::{ProducerRecord, RecordMetadata};
use kafka_sansio::protocol::error_code::ErrorCode;
use support::*;

/// What `kafka-storage format` finalizes; restored after the tests.
const DEFAULT_LEVEL: i16 = 2;

/// How long a transaction call may take (a coordinator move included).
const TXN_TIMEOUT: Duration = Duration::from_secs(120);

/// Who holds the cluster, and at which `transaction.version`.
struct GateState {
    /// The finalized level, once known.
    level: Option<i16>,
    /// Tests holding a lease.
    holders: usize,
    /// The one holder needs the cluster alone (it kills nodes).
    exclusive: bool,
}

static GATE: Mutex<GateState> = Mutex::new(GateState {
    level: None,
    holders: 0,
    exclusive: false,
});
static GATE_FREED: Condvar = Condvar::new();

/// The cluster at one `transaction.version` while it lives.
struct Lease {
    ctl: String,
}

/// Waits until the cluster can be had at `level` (shared with tests at the
/// same level, or alone when `exclusive`), setting the level when no test
/// holds the cluster.
fn lease(k: &Kafka, level: i16, exclusive: bool) -> Lease {
    let mut g = GATE.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if g.holders == 0 {
            let current = match g.level {
                Some(l) => l,
                None => k
                    .ctl(&["txn-version"])
                    .trim()
                    .parse()
                    .expect("txn-version prints a number"),
            };
            if current != level {
                k.ctl(&["set-txn-version", &level.to_string()]);
            }
            g.level = Some(level);
            g.holders = 1;
            g.exclusive = exclusive;
            return Lease { ctl: k.ctl.clone() };
        }
        if !exclusive && !g.exclusive && g.level == Some(level) {
            g.holders += 1;
            return Lease { ctl: k.ctl.clone() };
        }
        g = GATE_FREED.wait(g).unwrap_or_else(|e| e.into_inner());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut g = GATE.lock().unwrap_or_else(|e| e.into_inner());
        g.holders -= 1;
        if g.holders == 0 {
            g.exclusive = false;
            if g.level != Some(DEFAULT_LEVEL) {
                // No panic in a drop: an unknown level is read again by the next lease.
                let ok = Command::new(&self.ctl)
                    .args(["set-txn-version", &DEFAULT_LEVEL.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                g.level = ok.then_some(DEFAULT_LEVEL);
            }
            GATE_FREED.notify_all();
        }
    }
}

/// A transactional producer's configuration: `transactional.id` and
/// `client.id` (by which the request logs are searched), then `props`.
fn txn_config(
    k: &Kafka,
    transactional_id: &str,
    client_id: &str,
    props: &[(&str, &str)],
) -> kafka_sansio::producer::ProducerConfig {
    let mut all = vec![
        ("transactional.id", transactional_id),
        ("client.id", client_id),
        ("transaction.timeout.ms", "60000"),
        ("linger.ms", "5"),
    ];
    all.extend_from_slice(props);
    kafka_config(k, &all)
}

/// Sends `recs` inside the open transaction and waits for every outcome;
/// with `abort`, flushes them into the log first and aborts, else commits.
/// Returns each record's metadata: aborted records are in the log too.
fn transaction(
    test: &str,
    client: &Client,
    recs: &[ProducerRecord],
    abort: bool,
) -> Vec<RecordMetadata> {
    let h = client.handle();
    h.begin_transaction()
        .unwrap_or_else(|e| panic!("{test}: begin_transaction: {e}"));
    let futures: Vec<_> = recs
        .iter()
        .map(|r| client.send(r.clone()).expect("send accepted"))
        .collect();
    if abort {
        // An abort drops what is still buffered: flush so the records reach
        // the log, where read_uncommitted sees them.
        client.flush().expect("flush before the abort");
        h.abort_transaction(TXN_TIMEOUT)
            .unwrap_or_else(|e| panic!("{test}: abort_transaction: {e} ({e:?})"));
    } else {
        h.commit_transaction(TXN_TIMEOUT)
            .unwrap_or_else(|e| panic!("{test}: commit_transaction: {e} ({e:?})"));
    }
    futures
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            outcome(f, Duration::from_secs(60)).unwrap_or_else(|e| {
                panic!("{test}: record {i} of a transaction that ended well: {e} ({e:?})")
            })
        })
        .collect()
}

/// The record indices `range` as a set.
fn ids(range: std::ops::Range<usize>) -> BTreeSet<usize> {
    range.collect()
}

/// A reader of a topic at an isolation level, by name.
type Reader<'a> = Box<dyn Fn(&str) -> Vec<Consumed> + 'a>;
/// Reads `topic` at both isolation levels with Kafka's console consumer and
/// with confluent-kafka: at read_uncommitted every record of `recs` exactly
/// once, in order, where its metadata says; at read_committed the same for
/// every record but those of `aborted`, which must be absent.
fn read_back(
    test: &str,
    k: &Kafka,
    consumer: &str,
    recs: &[ProducerRecord],
    metas: &[RecordMetadata],
    aborted: &BTreeSet<usize>,
) {
    let topic = &recs[0].topic;
    let committed = recs.len() - aborted.len();
    let readers: [(&str, Reader); 2] = [
        (
            "Kafka console consumer",
            Box::new(|iso: &str| k.consume_isolated(topic, iso)),
        ),
        (
            "confluent-kafka",
            Box::new(|iso: &str| {
                let expect = if iso == "read_committed" {
                    committed
                } else {
                    recs.len()
                };
                consume_isolated(consumer, &k.bootstrap, topic, PARTITIONS, expect, iso)
            }),
        ),
    ];
    for (reader, read) in &readers {
        check(recs, metas, PARTITIONS, &read("read_uncommitted"), false)
            .assert_exact(&format!("{test}: {reader} at read_uncommitted"));
        let c = check(recs, metas, PARTITIONS, &read("read_committed"), false);
        let missing: BTreeSet<usize> = c.missing.iter().copied().collect();
        assert!(
            c.duplicates == 0 && c.problems.is_empty() && c.unknown_offsets == 0,
            "{test}: {reader} at read_committed: {} duplicates, problems:\n{}",
            c.duplicates,
            c.problems[..c.problems.len().min(50)].join("\n")
        );
        let shown: Vec<_> = aborted.difference(&missing).take(20).collect();
        let lost: Vec<_> = missing.difference(aborted).take(20).collect();
        assert!(
            shown.is_empty() && lost.is_empty(),
            "{test}: {reader} at read_committed: aborted records returned {shown:?}, \
             committed records missing {lost:?}"
        );
        eprintln!(
            "{test}: {reader}: read_committed {} records (every committed one, no aborted one), \
             read_uncommitted all {}",
            c.read,
            recs.len()
        );
    }
}

/// Api key and version of every transaction request `client_id` sent, and the
/// versions of its Produce requests, from the brokers' request logs. Waits up
/// to 10 s for `end_txns` EndTxn requests (a line is logged once its answer
/// is on the wire, which may be after the client has it).
fn logged_protocol(k: &Kafka, client_id: &str, end_txns: usize) -> (Vec<(i32, i32)>, Vec<i32>) {
    let key_version = |l: &String| -> (i32, i32) {
        let n = |f: &str| logged_values(l, f)[0].parse().unwrap_or(-1);
        (n("requestApiKey"), n("requestApiVersion"))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let txn: Vec<_> = k
            .logged_requests("txn-requests.log", client_id)
            .iter()
            .map(key_version)
            .collect();
        if txn.iter().filter(|(key, _)| *key == 26).count() >= end_txns || Instant::now() > deadline
        {
            let produce = k
                .logged_requests("produce-requests.log", client_id)
                .iter()
                .map(|l| key_version(l).1)
                .collect();
            return (txn, produce);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asserts that `client_id` spoke transaction protocol `level` (see the
/// module doc) in at least `end_txns` transactions.
fn assert_protocol(test: &str, k: &Kafka, client_id: &str, level: i16, end_txns: usize) {
    let (txn, produce) = logged_protocol(k, client_id, end_txns);
    let end: Vec<i32> = txn.iter().filter(|(a, _)| *a == 26).map(|x| x.1).collect();
    let add: Vec<i32> = txn.iter().filter(|(a, _)| *a == 24).map(|x| x.1).collect();
    assert!(
        end.len() >= end_txns,
        "{test}: {} EndTxn requests from {client_id} logged, want {end_txns} (requests {txn:?})",
        end.len()
    );
    assert!(
        !produce.is_empty(),
        "{test}: no Produce from {client_id} logged"
    );
    if level >= 2 {
        assert!(
            add.is_empty() && end.iter().all(|v| *v >= 5) && produce.iter().all(|v| *v >= 12),
            "{test}: transactions v2: AddPartitionsToTxn versions {add:?} (want none), EndTxn {end:?} \
             (want 5+), Produce {produce:?} (want 12+)"
        );
    } else {
        assert!(
            !add.is_empty() && end.iter().all(|v| *v <= 4),
            "{test}: transactions v1: AddPartitionsToTxn versions {add:?} (want some), EndTxn {end:?} \
             (want 4 or lower)"
        );
    }
    eprintln!(
        "{test}: transaction.version={level}: AddPartitionsToTxn {add:?}, EndTxn {end:?}, Produce v{:?}",
        produce.iter().collect::<BTreeSet<_>>()
    );
}

// ---- 1. committed and aborted transactions, read back at both isolation levels -----------------

fn commit_abort(test: &str, driver: Driver, level: i16) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let Some(py) = require(test, &[CONSUMER]) else {
        return;
    };
    let _l = lease(&k, level, false);
    let topic = fresh_topic(&format!("txn-v{level}"));
    k.create_topic(&topic, PARTITIONS, &[]);
    let recs = records(&topic, 600, "txn");
    let id = fresh_topic("txn-id");
    let client_id = fresh_topic("txn-client");
    let client = Client::start(driver, txn_config(&k, &id, &client_id, &[]));
    client
        .handle()
        .init_transactions(TXN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{test}: init_transactions: {e} ({e:?})"));
    // Six transactions of 100 records over three partitions; the 2nd, 4th and 6th aborted.
    let mut metas = Vec::new();
    let mut aborted = BTreeSet::new();
    for (t, chunk) in recs.chunks(100).enumerate() {
        let abort = t % 2 == 1;
        metas.extend(transaction(test, &client, chunk, abort));
        if abort {
            aborted.extend(ids(t * 100..(t + 1) * 100));
        }
    }
    client.close();
    read_back(test, &k, &py[0], &recs, &metas, &aborted);
    assert_protocol(test, &k, &client_id, level, 6);
}

// ---- 2. a second producer with the same transactional id fences the first ------------------------

/// True for the fatal error of a fenced producer (INVALID_PRODUCER_EPOCH is
/// how a v1 coordinator or a partition leader says it).
fn is_fenced(e: &Error) -> bool {
    matches!(
        e,
        Error::Transaction(TxnError::Fatal(
            ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch
        ))
    )
}

fn fenced(test: &str, driver: Driver, level: i16) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let Some(py) = require(test, &[CONSUMER]) else {
        return;
    };
    let _l = lease(&k, level, false);
    let topic = fresh_topic(&format!("fence-v{level}"));
    k.create_topic(&topic, PARTITIONS, &[]);
    let recs = records(&topic, 150, "fence");
    let id = fresh_topic("fence-id");
    let first_id = fresh_topic("fence-first");
    let first = Client::start(driver, txn_config(&k, &id, &first_id, &[]));
    first
        .handle()
        .init_transactions(TXN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{test}: first init_transactions: {e}"));
    let mut metas = transaction(test, &first, &recs[..50], false);
    // The first producer's second transaction is in the log, open, when the
    // second producer takes the id over: the coordinator aborts it.
    first.handle().begin_transaction().expect("begin");
    let open: Vec<_> = recs[50..100]
        .iter()
        .map(|r| first.send(r.clone()).expect("send accepted"))
        .collect();
    first.flush().expect("flush the open transaction");
    for f in open {
        metas.push(outcome(f, Duration::from_secs(60)).expect("in the log, uncommitted"));
    }
    let second_id = fresh_topic("fence-second");
    let second = Client::start(driver, txn_config(&k, &id, &second_id, &[]));
    second
        .handle()
        .init_transactions(TXN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{test}: second init_transactions: {e}"));
    metas.extend(transaction(test, &second, &recs[100..], false));
    let commit = first.handle().commit_transaction(TXN_TIMEOUT);
    match &commit {
        Err(e) if is_fenced(e) => {}
        other => panic!("{test}: the fenced producer's commit: want a fatal fence, got {other:?}"),
    }
    // Fatal: every later call fails the same way; the second producer goes on.
    let begin = first.handle().begin_transaction();
    assert!(
        matches!(&begin, Err(e) if is_fenced(e)),
        "{test}: begin_transaction after the fence: {begin:?}"
    );
    let later = first.handle().init_transactions(Duration::from_secs(10));
    assert!(
        matches!(&later, Err(e) if is_fenced(e)),
        "{test}: init_transactions after the fence: {later:?}"
    );
    first.close();
    second.close();
    read_back(test, &k, &py[0], &recs, &metas, &ids(50..100));
    assert_protocol(test, &k, &second_id, level, 1);
    eprintln!(
        "{test}: the second producer fenced the first: commit failed with {}, later calls too",
        commit.unwrap_err()
    );
}

// ---- 3. the transaction coordinator SIGKILLed mid-transaction -------------------------------------

fn coordinator_killed(test: &str, driver: Driver, level: i16) {
    let Some(k) = Kafka::get(test) else {
        return;
    };
    let Some(py) = require(test, &[CONSUMER]) else {
        return;
    };
    let _l = lease(&k, level, true);
    let topic = fresh_topic(&format!("txn-kill-v{level}"));
    k.create_topic(&topic, PARTITIONS, &["min.insync.replicas=2"]);
    let recs = records(&topic, 800, "kill");
    let id = fresh_topic("kill-id");
    let client_id = fresh_topic("kill-client");
    let client = Client::start(driver, txn_config(&k, &id, &client_id, &[]));
    let h = client.handle();
    h.init_transactions(TXN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{test}: init_transactions: {e}"));
    let mut metas = transaction(test, &client, &recs[..200], false);
    let coordinator = k.txn_coordinator(&id);
    // Half of a transaction's records are sent, the coordinator dies, the
    // other half is sent and the transaction committed; one more is aborted
    // while the node is down, one committed after it is back.
    h.begin_transaction().expect("begin");
    let mut futures: Vec<_> = recs[200..300]
        .iter()
        .map(|r| client.send(r.clone()).expect("send accepted"))
        .collect();
    client.flush().expect("flush the first half");
    let mut killed = Killed::new(&k);
    killed.kill(coordinator);
    eprintln!("{test}: node {coordinator} (the transaction coordinator) SIGKILLed");
    let start = Instant::now();
    futures.extend(
        recs[300..400]
            .iter()
            .map(|r| client.send(r.clone()).expect("send accepted")),
    );
    h.commit_transaction(TXN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{test}: commit after the coordinator died: {e} ({e:?})"));
    let commit_took = start.elapsed();
    for (i, f) in futures.into_iter().enumerate() {
        metas.push(
            outcome(f, Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("{test}: record {} of the commit: {e}", i + 200)),
        );
    }
    metas.extend(transaction(test, &client, &recs[400..600], true));
    let moved = k.txn_coordinator(&id);
    assert_ne!(moved, coordinator, "{test}: the coordinator did not move");
    killed.restart_all();
    metas.extend(transaction(test, &client, &recs[600..], false));
    client.close();
    read_back(test, &k, &py[0], &recs, &metas, &ids(400..600));
    assert_protocol(test, &k, &client_id, level, 4);
    eprintln!(
        "{test}: coordinator {coordinator} killed mid-transaction, moved to {moved}: the commit took \
         {commit_took:?}; an abort while it was down and a commit after its restart"
    );
}

/// Each case with both drivers at both transaction versions:
/// `<case>::v1::blocking`, `<case>::v2::mio`, ...
macro_rules! on_both_drivers_and_versions {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            mod v1 {
                use crate::Driver;
                #[test]
                fn blocking() {
                    crate::$case(concat!("kafka_txn_", stringify!($case), "_v1_blocking"), Driver::Blocking, 1);
                }
                #[test]
                #[cfg(feature = "mio-driver")]
                fn mio() {
                    crate::$case(concat!("kafka_txn_", stringify!($case), "_v1_mio"), Driver::Mio, 1);
                }
            }
            mod v2 {
                use crate::Driver;
                #[test]
                fn blocking() {
                    crate::$case(concat!("kafka_txn_", stringify!($case), "_v2_blocking"), Driver::Blocking, 2);
                }
                #[test]
                #[cfg(feature = "mio-driver")]
                fn mio() {
                    crate::$case(concat!("kafka_txn_", stringify!($case), "_v2_mio"), Driver::Mio, 2);
                }
            }
        }
    )*};
}

on_both_drivers_and_versions!(commit_abort, fenced, coordinator_killed);
