//! One behavioural suite run against both drivers (blocking and mio).
//!
//! The cluster is the project's mock, `kafka_sansio::mock::MockServer` (real
//! loopback TCP), which also injects the faults (lost responses, error codes,
//! leader moves, brokers down) and shows what it stored, so each case can
//! check the log itself, not only the outcomes the producer reported.
//! Every wait is bounded, so no case can hang.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use kafka_sansio::driver::{blocking, DeliveryFuture, Error, Handle};
use kafka_sansio::mock::{MockRecord, MockServer};
use kafka_sansio::producer::{
    Acks, ConnectionError, DeliveryError, ProducerConfig, ProducerRecord, RecordMetadata, SendError,
};
use kafka_sansio::protocol::{ApiKey, ErrorCode, ProtocolError};

#[path = "drivers/bad_broker.rs"]
mod bad_broker;

use bad_broker::{BadBroker, Misbehaviour};

const WAIT: Duration = Duration::from_secs(20);

// ---- the mock cluster -------------------------------------------------------------------

/// A mock cluster of `brokers` brokers whose auto-created topics get `partitions` partitions.
fn mock(brokers: usize, partitions: i32) -> MockServer {
    let m = MockServer::start(brokers).expect("start the mock cluster");
    m.with_cluster(|c| c.set_default_partitions(partitions));
    m
}

/// Records in the mock's log of `topic`, all partitions together.
fn count(m: &MockServer, topic: &str) -> usize {
    m.with_cluster(|c| {
        (0..c.partition_count(topic).unwrap_or(0))
            .map(|p| c.records(topic, p).expect("decode the mock log").len())
            .sum()
    })
}

/// The records of one partition as the mock stored them, in offset order.
fn log(m: &MockServer, topic: &str, partition: i32) -> Vec<MockRecord> {
    m.with_cluster(|c| c.records(topic, partition).expect("decode the mock log"))
}

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < WAIT, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

// ---- the two drivers behind one small trait ----------------------------------------------

/// Starts a producer on one driver; sends go through the shared [`Handle`] API.
trait Driver {
    fn start(config: ProducerConfig) -> Client;
}

/// A running producer of either driver.
struct Client {
    handle: Handle,
    close: Box<dyn FnMut(Duration) -> Result<(), Error> + Send>,
}

impl std::ops::Deref for Client {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Client {
    fn close(&mut self, timeout: Duration) -> Result<(), Error> {
        (self.close)(timeout)
    }
}

struct Blocking;
impl Driver for Blocking {
    fn start(config: ProducerConfig) -> Client {
        let p = blocking::Producer::new(config).expect("start blocking producer");
        let handle = p.handle();
        Client {
            handle,
            close: Box::new(move |t| p.close(t)),
        }
    }
}

#[cfg(feature = "mio-driver")]
struct Mio;
#[cfg(feature = "mio-driver")]
impl Driver for Mio {
    fn start(config: ProducerConfig) -> Client {
        let (handle, thread) =
            kafka_sansio::driver::mio::Driver::spawn(config).expect("start mio driver");
        let h = handle.clone();
        let mut thread = Some(thread);
        Client {
            handle,
            close: Box::new(move |t| {
                let r = h.close(t);
                if let Some(j) = thread.take() {
                    j.join().expect("loop thread").expect("loop io");
                }
                r
            }),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = (self.close)(Duration::from_secs(5));
    }
}

/// A producer on `b` that retries quickly, for the fault cases.
fn start_fast_retry<D: Driver>(b: &MockServer) -> Client {
    D::start(
        config(&b.bootstrap_servers())
            .retry_backoff(Duration::from_millis(20))
            .build()
            .unwrap(),
    )
}

fn config(bootstrap: &str) -> kafka_sansio::producer::config::ProducerConfigBuilder {
    ProducerConfig::builder()
        .bootstrap_servers(bootstrap)
        .linger(Duration::from_millis(5))
        .request_timeout(Duration::from_secs(3))
        .delivery_timeout(Duration::from_secs(10))
        .max_block(Duration::from_secs(3))
}

fn rec(topic: &str, i: usize) -> ProducerRecord {
    ProducerRecord::new(topic, format!("value-{i}"))
}

// ---- the cases -------------------------------------------------------------------------------

/// A synchronous send returns metadata, offsets increase, and waiting skips linger.
fn sync_send<D: Driver>() {
    let b = mock(1, 1);
    // A long linger: wait() must expedite, or each send would take 2 s.
    let mut p = D::start(
        config(&b.bootstrap_servers())
            .linger(Duration::from_secs(2))
            .build()
            .unwrap(),
    );
    let t0 = Instant::now();
    let mut last = -1;
    for i in 0..5 {
        let md = p.send(rec("sync", i)).unwrap().wait_timeout(WAIT).unwrap();
        assert_eq!(&*md.topic, "sync");
        assert_eq!(md.partition, 0);
        assert!(md.offset > last, "offset {} after {last}", md.offset);
        assert!(md.timestamp > 0);
        last = md.offset;
    }
    assert_eq!(last, 4);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "sync sends lingered: {:?}",
        t0.elapsed()
    );
    // Each synchronous send went alone: one batch, one request.
    let m = p.metrics();
    assert_eq!(m.records_delivered, 5);
    assert_eq!(
        (m.batches_sent, m.produce_requests, m.records_failed),
        (5, 5, 0)
    );
    p.close(WAIT).unwrap();
}

/// Callbacks get every outcome, on the loop thread.
fn callback_send<D: Driver>() {
    let b = mock(1, 3);
    let mut p = D::start(config(&b.bootstrap_servers()).build().unwrap());
    let (tx, rx) = mpsc::channel();
    let n = 300;
    // Explicit timestamps, equal in threes: each callback must get its own
    // record's, wherever runs of equal ones start and end in a batch.
    let ts = |i: usize| 1_700_000_000_000 + (i / 3) as i64;
    for i in 0..n {
        let tx = tx.clone();
        let r = rec("callbacks", i).key(format!("k{i}")).timestamp(ts(i));
        p.send_with_callback(r, move |r| {
            let _ = tx.send((i, r));
        })
        .unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..n {
        let (i, r) = rx.recv_timeout(WAIT).expect("callback in time");
        let md = r.unwrap();
        assert!(seen.insert((md.partition, md.offset)), "offset reused");
        assert!(i < n);
        assert_eq!(md.timestamp, ts(i), "record {i}");
    }
    assert_eq!(count(&b, "callbacks") as i64, n as i64);
    p.close(WAIT).unwrap();
}

/// Callbacks run one at a time, whichever driver thread takes the loop's turn
/// (the blocking driver's reader threads take turns too), and per partition
/// in offset order: three brokers, so three connections answer at once.
fn callbacks_one_at_a_time<D: Driver>() {
    /// What the callbacks saw.
    #[derive(Default)]
    struct Seen {
        /// Callbacks running now.
        active: AtomicUsize,
        /// Callbacks that started while another ran.
        overlaps: AtomicUsize,
        /// Offsets at or below the last one of their partition.
        disorder: AtomicUsize,
        done: AtomicUsize,
        /// The last offset of each partition.
        last: std::sync::Mutex<std::collections::HashMap<i32, i64>>,
    }
    let b = mock(3, 6);
    let mut p = D::start(
        config(&b.bootstrap_servers())
            .linger(Duration::ZERO)
            .batch_size(512)
            .build()
            .unwrap(),
    );
    let seen = Arc::new(Seen::default());
    let (threads, per) = (3, 1000);
    thread::scope(|s| {
        for t in 0..threads {
            let h: Handle = p.handle.clone();
            let seen = seen.clone();
            s.spawn(move || {
                for i in 0..per {
                    let seen = seen.clone();
                    // About two records per batch: many answers, many turns.
                    let value = tagged_value(t, i, 200);
                    let record = ProducerRecord::new("one-at-a-time", value);
                    h.send_with_callback(record, move |r| {
                        if seen.active.fetch_add(1, Ordering::SeqCst) != 0 {
                            seen.overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                        let md = r.expect("delivered");
                        let prev = seen
                            .last
                            .lock()
                            .unwrap()
                            .insert(md.partition, md.offset)
                            .unwrap_or(-1);
                        if md.offset <= prev {
                            seen.disorder.fetch_add(1, Ordering::SeqCst);
                        }
                        // Long enough for another thread's turn to overlap.
                        let t0 = Instant::now();
                        while t0.elapsed() < Duration::from_micros(20) {
                            std::hint::spin_loop();
                        }
                        seen.active.fetch_sub(1, Ordering::SeqCst);
                        seen.done.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                    // Pauses let the loop go idle, so that answers are
                    // taken by readers as well as by the loop.
                    if i % 10 == 9 {
                        thread::sleep(Duration::from_micros(200));
                    }
                }
            });
        }
    });
    p.flush().unwrap();
    assert_eq!(seen.done.load(Ordering::SeqCst), threads * per);
    assert_eq!(
        seen.overlaps.load(Ordering::SeqCst),
        0,
        "callbacks overlapped"
    );
    assert_eq!(
        seen.disorder.load(Ordering::SeqCst),
        0,
        "callbacks out of offset order"
    );
    // Every partition (on every broker) took records.
    assert_eq!(seen.last.lock().unwrap().len(), 6);
    assert_eq!(count(&b, "one-at-a-time"), threads * per);
    p.close(WAIT).unwrap();
}

/// Tagged sends: the listener hears every tag once, and per partition the
/// offsets follow the send order.
fn tagged_send<D: Driver>() {
    let b = mock(1, 3);
    let mut p = D::start(config(&b.bootstrap_servers()).build().unwrap());
    let (tx, rx) = mpsc::channel();
    p.on_delivery(move |tag, r| {
        let _ = tx.send((tag, r.as_ref().map_err(|e| e.to_string()).cloned()));
    });
    let n = 600u64;
    for i in 0..n {
        let r = rec("tagged", i as usize).key(format!("k{}", i % 7));
        p.send_with_tag(r, i).unwrap();
    }
    let mut outcomes = Vec::new();
    for _ in 0..n {
        let (tag, r) = rx.recv_timeout(WAIT).expect("listener called in time");
        outcomes.push((tag, r.unwrap()));
    }
    outcomes.sort_by_key(|(tag, _)| *tag);
    outcomes.dedup_by_key(|(tag, _)| *tag);
    assert_eq!(outcomes.len() as u64, n, "a tag was heard twice");
    let mut last: HashMap<i32, i64> = HashMap::new();
    for (tag, md) in &outcomes {
        let prev = last.insert(md.partition, md.offset);
        assert!(prev.is_none_or(|o| o < md.offset), "tag {tag} out of order");
        // The offset and timestamp reported are those of this record in the log.
        let stored = b.with_cluster(|c| c.records("tagged", md.partition).unwrap());
        let r = stored
            .iter()
            .find(|r| r.offset == md.offset)
            .expect("offset in the log");
        assert_eq!(r.value.as_deref(), Some(format!("value-{tag}").as_bytes()));
        assert_eq!(r.timestamp, md.timestamp, "tag {tag}");
    }
    assert_eq!(count(&b, "tagged") as u64, n);
    p.close(WAIT).unwrap();
}

/// A tagged send before a listener is set is refused with the record handed
/// back (its outcome would reach no one); once one is set, it is sent.
fn tagged_send_needs_listener<D: Driver>() {
    let b = mock(1, 1);
    let mut p = D::start(config(&b.bootstrap_servers()).build().unwrap());
    let err = p.send_with_tag(rec("nolistener", 1), 7).unwrap_err();
    assert!(matches!(err, Error::NoListener(_)), "{err:?}");
    let back = err.into_record().expect("the record is handed back");
    assert_eq!(back.value.as_deref(), Some(&b"value-1"[..]));
    let (tx, rx) = mpsc::channel();
    p.on_delivery(move |tag, r| {
        let _ = tx.send((tag, r.is_ok()));
    });
    p.send_with_tag(back, 7).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (7, true));
    assert_eq!(count(&b, "nolistener"), 1);
    p.close(WAIT).unwrap();
}

/// `flush` returns only after the callbacks and listener calls of the records
/// sent before it have run (as Java's flush does).
fn flush_waits_for_callbacks<D: Driver>() {
    let b = mock(1, 2);
    let mut p = D::start(config(&b.bootstrap_servers()).build().unwrap());
    let heard = Arc::new(AtomicUsize::new(0));
    let h = heard.clone();
    p.on_delivery(move |_, r| {
        r.as_ref().unwrap();
        h.fetch_add(1, Ordering::SeqCst);
    });
    for round in 0..3 {
        let n = 5000;
        for i in 0..n {
            if i % 2 == 0 {
                let h = heard.clone();
                p.send_with_callback(rec("flushed", i), move |r| {
                    r.unwrap();
                    // Slow callbacks widen the window a flush could slip through.
                    if i % 1000 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            } else {
                p.send_with_tag(rec("flushed", i), i as u64).unwrap();
            }
        }
        p.flush_timeout(WAIT).unwrap();
        assert_eq!(
            heard.load(Ordering::SeqCst),
            (round + 1) * n,
            "round {round}"
        );
    }
    p.close(WAIT).unwrap();
}

/// A send blocked on a full `buffer.memory` goes on as memory frees; `close`
/// wakes one still blocked with `Closed` at once, not after `max.block.ms`.
fn blocked_send_resumes_and_close_wakes<D: Driver>() {
    let b = mock(1, 1);
    b.with_cluster(|c| c.set_latency(0, Duration::from_millis(20)));
    let mut p = D::start(
        config(&b.bootstrap_servers())
            .batch_size(2048)
            .buffer_memory(8192)
            .max_block(Duration::from_secs(20))
            .build()
            .unwrap(),
    );
    // Many times the buffer: senders block and resume as batches complete.
    let value = vec![3u8; 500];
    let futures: Vec<_> = (0..200)
        .map(|_| {
            p.send(ProducerRecord::new("blocked", value.clone()))
                .unwrap()
        })
        .collect();
    for f in futures {
        f.wait().unwrap();
    }
    assert_eq!(count(&b, "blocked"), 200);
    // The handle's metrics saw the waits and the broker's latency.
    let m = p.handle.metrics_snapshot();
    let get = |name: &str| {
        m.iter()
            .find(|m| m.group == "producer-metrics" && m.name == name)
            .unwrap_or_else(|| panic!("{name}"))
            .value
    };
    assert!(get("bufferpool-wait-time-ns-total") > 0.0);
    assert_eq!(get("waiting-threads"), 0.0);
    assert!(
        get("request-latency-avg") >= 20.0,
        "{}",
        get("request-latency-avg")
    );
    assert_eq!(get("record-send-total"), 200.0);

    // Now nothing completes: the broker is down, memory fills, a sender blocks.
    b.set_broker_down(0, true);
    let h = p.handle.clone();
    let sender = std::thread::spawn(move || {
        let mut last = None;
        for _ in 0..100 {
            match h.send(ProducerRecord::new("blocked", vec![4u8; 500])) {
                Ok(f) => drop(f),
                Err(e) => {
                    last = Some((e, Instant::now()));
                    break;
                }
            }
        }
        last
    });
    std::thread::sleep(Duration::from_millis(500));
    let closed_at = Instant::now();
    let _ = p.close(Duration::from_millis(200));
    let (err, at) = sender.join().unwrap().expect("a send was refused");
    assert!(matches!(err, Error::Send(SendError::Closed(_))), "{err:?}");
    assert!(
        at.saturating_duration_since(closed_at) < Duration::from_secs(3),
        "the blocked sender waited {:?} after close",
        at.saturating_duration_since(closed_at)
    );
}

/// Fire-and-forget sends (dropped futures and send_and_forget) are all delivered by flush.
fn fire_and_forget_flush<D: Driver>() {
    let b = mock(1, 2);
    let mut p = D::start(config(&b.bootstrap_servers()).build().unwrap());
    for i in 0..1000 {
        if i % 2 == 0 {
            drop(p.send(rec("forget", i)).unwrap());
        } else {
            p.send_and_forget(rec("forget", i)).unwrap();
        }
    }
    p.flush_timeout(WAIT).unwrap();
    assert_eq!(count(&b, "forget") as i64, 1000);
    p.close(WAIT).unwrap();
}

/// Many threads sending at once all get their outcomes.
fn concurrent_senders<D: Driver>() {
    let b = mock(1, 4);
    let mut p = D::start(config(&b.bootstrap_servers()).build().unwrap());
    let threads = 8;
    let per = 500;
    let ok = Arc::new(AtomicUsize::new(0));
    thread::scope(|s| {
        for t in 0..threads {
            let h: Handle = p.handle.clone();
            let ok = ok.clone();
            s.spawn(move || {
                let futures: Vec<_> = (0..per)
                    .map(|i| h.send(rec("concurrent", t * per + i)).unwrap())
                    .collect();
                for mut f in futures {
                    f.wait_timeout(WAIT).unwrap();
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(ok.load(Ordering::Relaxed), threads * per);
    assert_eq!(count(&b, "concurrent") as i64, (threads * per) as i64);
    p.close(WAIT).unwrap();
}

/// close(timeout) delivers what was sent, then refuses sends with the record back.
fn close_delivers<D: Driver>() {
    let b = mock(1, 2);
    let mut p = D::start(
        config(&b.bootstrap_servers())
            .linger(Duration::from_millis(200))
            // Long: a loop thread that slept to the next request deadline
            // after another thread's turn finished the close would hold
            // `close` that long.
            .request_timeout(Duration::from_secs(60))
            .delivery_timeout(Duration::from_secs(120))
            .build()
            .unwrap(),
    );
    let mut futures = Vec::new();
    for i in 0..200 {
        futures.push(p.send(rec("close", i)).unwrap());
    }
    // Answers come late, when the loop sleeps: the last one may be taken
    // by another thread than the loop's (the blocking driver's readers).
    p.send(rec("close", 200))
        .unwrap()
        .wait_timeout(WAIT)
        .unwrap();
    b.with_cluster(|c| c.set_latency(0, Duration::from_millis(100)));
    for i in 201..300 {
        futures.push(p.send(rec("close", i)).unwrap());
    }
    let t0 = Instant::now();
    p.close(WAIT).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "close took {:?}",
        t0.elapsed()
    );
    assert!(p.is_closed());
    assert_eq!(count(&b, "close") as i64, 300);
    for mut f in futures {
        f.wait_timeout(Duration::from_millis(100)).unwrap();
    }
    match p.send(rec("close", 0)) {
        Err(Error::Send(SendError::Closed(r))) => {
            assert_eq!(r.value.as_deref(), Some(&b"value-0"[..]))
        }
        other => panic!("send after close: {other:?}"),
    }
}

fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a.to_string()
}

/// A dead bootstrap address fails records after max.block.ms instead of hanging.
fn dead_bootstrap_times_out<D: Driver>() {
    let dead = dead_address();
    let mut p = D::start(
        config(&dead)
            .max_block(Duration::from_millis(500))
            .build()
            .unwrap(),
    );
    let t0 = Instant::now();
    let r = p.send(rec("nowhere", 0)).unwrap().wait_timeout(WAIT);
    // The error names the cause: the connection that failed, not the topic.
    match r {
        Err(Error::Delivery(DeliveryError::BrokerUnavailable {
            waited_ms: 500,
            cause: ConnectionError::ConnectFailed { addr },
        })) => assert_eq!(addr, dead),
        other => panic!("expected BrokerUnavailable(ConnectFailed), got {other:?}"),
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    // flush and close do not hang either.
    p.flush_timeout(WAIT).unwrap();
    p.close(Duration::from_secs(2)).unwrap();
}

/// try_send hands the record back with BufferFull when buffer.memory is used up;
/// a blocking send gives up after max.block.ms.
fn try_send_buffer_full<D: Driver>() {
    // Nothing is ever delivered: records pile up waiting for metadata.
    let mut p = D::start(
        config(&dead_address())
            .batch_size(1024)
            .buffer_memory(4096)
            .max_block(Duration::from_millis(800))
            .build()
            .unwrap(),
    );
    let value = vec![7u8; 300];
    let mut full = None;
    let mut futures = Vec::new();
    for _ in 0..100 {
        match p.try_send(ProducerRecord::new("full", value.clone())) {
            Ok(f) => futures.push(f),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    // Refused either at once or (when the loop found the buffer full) as the future's outcome.
    let err = full.unwrap_or_else(|| {
        futures
            .iter_mut()
            .find_map(|f| match f.wait_timeout(Duration::from_millis(50)) {
                Err(e) if e.is_buffer_full() => Some(e),
                _ => None,
            })
            .expect("some try_send reported BufferFull")
    });
    assert!(err.is_buffer_full(), "{err:?}");
    assert_eq!(
        err.into_record().unwrap().value.as_deref(),
        Some(&value[..])
    );
    // A blocking send while full waits at most about max.block.ms.
    let t0 = Instant::now();
    let r = p
        .send(ProducerRecord::new("full", value.clone()))
        .and_then(|mut f| f.wait_timeout(WAIT));
    assert!(r.is_err(), "{r:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    p.close(Duration::from_secs(2)).ok();
}

/// A broker connection dropped after appending: records are retried and delivered once.
fn dropped_connection_retries<D: Driver>() {
    let b = mock(1, 1);
    let mut p = start_fast_retry::<D>(&b);
    // Warm up (metadata, producer id), then break the next two Produce answers.
    p.send(rec("drop", 0)).unwrap().wait_timeout(WAIT).unwrap();
    b.with_cluster(|c| c.fail_after_append(2));
    let futures: Vec<_> = (1..50).map(|i| p.send(rec("drop", i)).unwrap()).collect();
    let mut offsets = Vec::new();
    for mut f in futures {
        offsets.push(f.wait_timeout(WAIT).unwrap().offset);
    }
    let mut sorted = offsets.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), offsets.len(), "offsets reused: {offsets:?}");
    assert_eq!(
        count(&b, "drop") as i64,
        50,
        "idempotent retry must not duplicate"
    );
    p.close(WAIT).unwrap();
}

/// Checks one partition's log against what the producer reported: each record
/// exactly once, in send order, at the offset its outcome named, and (with
/// idempotence) sequences contiguous within each producer epoch.
fn check_partition(m: &MockServer, topic: &str, partition: i32, sent: &[(usize, RecordMetadata)]) {
    let stored = log(m, topic, partition);
    let mine: Vec<&(usize, RecordMetadata)> = sent
        .iter()
        .filter(|(_, md)| md.partition == partition)
        .collect();
    let values: Vec<String> = stored
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    let expected: Vec<String> = mine.iter().map(|(i, _)| format!("value-{i}")).collect();
    assert_eq!(
        values, expected,
        "{topic}-{partition}: log differs from send order"
    );
    for (r, (i, md)) in stored.iter().zip(&mine) {
        assert_eq!(
            r.offset, md.offset,
            "record {i}: reported offset differs from the log"
        );
    }
    for w in stored.windows(2) {
        if w[0].producer_id == w[1].producer_id && w[0].producer_epoch == w[1].producer_epoch {
            assert_eq!(
                w[1].sequence,
                w[0].sequence + 1,
                "sequence gap in {topic}-{partition}"
            );
        }
    }
}

/// acks=0: outcomes come on write (offset -1), and everything reaches the log.
fn acks_zero<D: Driver>() {
    let b = mock(1, 2);
    let mut p = D::start(
        config(&b.bootstrap_servers())
            .acks(Acks::None)
            .enable_idempotence(false)
            .build()
            .unwrap(),
    );
    let futures: Vec<_> = (0..200).map(|i| p.send(rec("acks0", i)).unwrap()).collect();
    for mut f in futures {
        let md = f.wait_timeout(WAIT).unwrap();
        assert_eq!(md.offset, -1, "acks=0 has no offset");
    }
    p.flush_timeout(WAIT).unwrap();
    // Completed on write: the mock may still be reading the last bytes.
    eventually("200 records in the mock log", || count(&b, "acks0") == 200);
    p.close(WAIT).unwrap();
}

/// Three brokers; every partition's leader moves while records are in flight:
/// the old leader answers NOT_LEADER_OR_FOLLOWER, the producer refreshes
/// metadata and resends to the new leader, in order and without duplicates.
fn leader_move_mid_stream<D: Driver>() {
    let b = mock(3, 1);
    b.with_cluster(|c| c.create_topic("moving", 3)).unwrap();
    let mut p = start_fast_retry::<D>(&b);
    let send = |range: std::ops::Range<usize>| -> Vec<_> {
        range
            .map(|i| {
                (
                    i,
                    p.send(rec("moving", i).key(format!("k{}", i % 7))).unwrap(),
                )
            })
            .collect()
    };
    let wait_all = |futures: Vec<(usize, DeliveryFuture)>| -> Vec<(usize, RecordMetadata)> {
        futures
            .into_iter()
            .map(|(i, mut f)| (i, f.wait_timeout(WAIT).unwrap()))
            .collect()
    };
    // Warm up: metadata, producer id, a connection to each leader.
    let mut sent = wait_all(send(0..30));
    // In flight while the leaders move, and after.
    let mut futures = send(30..150);
    b.with_cluster(|c| {
        for part in 0..3 {
            assert_eq!(c.leader("moving", part), Some(part));
            c.set_leader("moving", part, (part + 1) % 3).unwrap();
        }
    });
    futures.extend(send(150..300));
    sent.extend(wait_all(futures));
    assert_eq!(count(&b, "moving"), 300);
    for part in 0..3 {
        check_partition(&b, "moving", part, &sent);
    }
    p.close(WAIT).unwrap();
}

/// Responses lost after the broker appended (the connection closes instead of
/// answering): with idempotence the resent batches are recognised as
/// duplicates, so every record is in the log exactly once, in order.
fn lost_response_after_append_exactly_once<D: Driver>() {
    let b = mock(3, 3);
    let mut p = start_fast_retry::<D>(&b);
    // In waves, each waited for, so there are at least as many Produce
    // requests as waves: all four armed faults fire (on first sends or on
    // resends; a resend is answered as a duplicate once it gets through).
    let mut sent = Vec::new();
    for wave in 0..10 {
        if wave == 1 {
            b.with_cluster(|c| c.fail_after_append(4));
        }
        let futures: Vec<_> = (wave * 40..wave * 40 + 40)
            .map(|i| (i, p.send(rec("lost", i).key(format!("k{i}"))).unwrap()))
            .collect();
        sent.extend(
            futures
                .into_iter()
                .map(|(i, mut f)| (i, f.wait_timeout(WAIT).unwrap())),
        );
    }
    assert_eq!(
        count(&b, "lost"),
        400,
        "idempotent resends must not duplicate"
    );
    for part in 0..3 {
        check_partition(&b, "lost", part, &sent);
    }
    p.close(WAIT).unwrap();
}

/// Retriable error codes (queued in the mock, nothing appended) are retried.
fn retriable_errors_retried<D: Driver>() {
    let b = mock(1, 1);
    let mut p = start_fast_retry::<D>(&b);
    let first = p.send(rec("retry", 0)).unwrap().wait_timeout(WAIT).unwrap();
    b.with_cluster(|c| {
        c.push_errors(
            ApiKey::Produce,
            vec![
                ErrorCode::NotEnoughReplicas,
                ErrorCode::NotLeaderOrFollower,
                ErrorCode::RequestTimedOut,
            ],
        )
    });
    let mut sent = vec![(0, first)];
    let futures: Vec<_> = (1..50)
        .map(|i| (i, p.send(rec("retry", i)).unwrap()))
        .collect();
    sent.extend(
        futures
            .into_iter()
            .map(|(i, mut f)| (i, f.wait_timeout(WAIT).unwrap())),
    );
    assert_eq!(b.with_cluster(|c| c.pending_errors(ApiKey::Produce)), 0);
    check_partition(&b, "retry", 0, &sent);
    p.close(WAIT).unwrap();
}

/// A broker taken down (connections cut, new ones refused) and brought back:
/// records sent meanwhile are delivered once it is up, exactly once.
fn broker_down_and_back<D: Driver>() {
    let b = mock(1, 1);
    let mut p = start_fast_retry::<D>(&b);
    let first = p.send(rec("down", 0)).unwrap().wait_timeout(WAIT).unwrap();
    b.set_broker_down(0, true);
    let futures: Vec<_> = (1..40)
        .map(|i| (i, p.send(rec("down", i)).unwrap()))
        .collect();
    thread::sleep(Duration::from_millis(300));
    b.drop_connections(0);
    b.set_broker_down(0, false);
    let mut sent = vec![(0, first)];
    sent.extend(
        futures
            .into_iter()
            .map(|(i, mut f)| (i, f.wait_timeout(WAIT).unwrap())),
    );
    check_partition(&b, "down", 0, &sent);
    p.close(WAIT).unwrap();
}

/// Kafka 4.1 (Produce v13, KIP-516): the producer names topics by id. A topic
/// deleted and created again has a new id: the stale one is answered
/// UNKNOWN_TOPIC_ID, the producer refreshes metadata and resends by the new
/// id; every record later sent is in the new topic once, in order.
fn topic_recreated_mid_stream<D: Driver>() {
    let b = mock(1, 1);
    b.with_cluster(|c| c.create_topic("again", 1)).unwrap();
    let mut p = start_fast_retry::<D>(&b);
    p.send(rec("again", 0)).unwrap().wait_timeout(WAIT).unwrap();
    let old = b.with_cluster(|c| {
        let old = c.topic_id("again").unwrap();
        c.delete_topic("again").unwrap();
        c.create_topic("again", 1).unwrap();
        old
    });
    assert_ne!(b.with_cluster(|c| c.topic_id("again")), Some(old));
    let futures: Vec<_> = (1..40)
        .map(|i| (i, p.send(rec("again", i)).unwrap()))
        .collect();
    let sent: Vec<_> = futures
        .into_iter()
        .map(|(i, mut f)| (i, f.wait_timeout(WAIT).unwrap()))
        .collect();
    check_partition(&b, "again", 0, &sent);
    p.close(WAIT).unwrap();
}

// ---- many senders, one socket: every record once, in each sender's order -------------------

/// Thread `t`'s `i`-th value: `t-i:` then `pad` bytes.
fn tagged_value(t: usize, i: usize, pad: usize) -> Vec<u8> {
    let mut v = format!("{t}-{i}:").into_bytes();
    v.resize(v.len() + pad, b'x');
    v
}

/// The thread and index a [`tagged_value`] names; `None` for a warm-up record.
fn parse_value(v: &[u8]) -> Option<(usize, usize)> {
    if v.starts_with(b"warm-up:") {
        return None;
    }
    let s = std::str::from_utf8(v).expect("utf-8 prefix");
    let head = &s[..s.find(':').expect("prefix")];
    let (t, i) = head.split_once('-').expect("t-i");
    Some((t.parse().unwrap(), i.parse().unwrap()))
}

/// Several threads sending at once: `threads` threads each send `per`
/// records (values padded by `pad` bytes), thread `t` to partition
/// `t % partitions`, tagged, waiting for every `wait_every`-th record's
/// outcome and `pause` after each (paced so, the connection often has room
/// for a request at once; in between, bursts fill it).
struct Load {
    threads: usize,
    per: usize,
    partitions: usize,
    pad: usize,
    wait_every: usize,
    pause: Duration,
}

impl Load {
    /// Sends the load while `during` runs, given the count of records
    /// delivered so far. Returns once every outcome is in, panicking on a
    /// failed one. A first record per partition (not in the log check)
    /// opens the connection beforehand.
    fn send(&self, p: &Handle, topic: &str, during: impl FnOnce(&AtomicUsize) + Send) {
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (o, f) = (ok.clone(), failed.clone());
        p.on_delivery(move |tag, r| match r {
            Ok(_) => {
                o.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => f.lock().unwrap().push(format!("record {tag}: {e}")),
        });
        let topic: Arc<str> = topic.into();
        for partition in 0..self.partitions {
            let warm_up =
                ProducerRecord::new(topic.clone(), "warm-up:").partition(partition as i32);
            p.send(warm_up).unwrap().wait_timeout(WAIT).unwrap();
        }
        thread::scope(|s| {
            for t in 0..self.threads {
                let (h, topic, ok) = (p.clone(), topic.clone(), &ok);
                s.spawn(move || self.send_one_thread(&h, &topic, t, ok));
            }
            s.spawn(|| during(&ok));
        });
        p.flush_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(*failed.lock().unwrap(), Vec::<String>::new());
        assert_eq!(ok.load(Ordering::Relaxed), self.threads * self.per);
    }

    /// Thread `t`'s records; waited ones count in `ok` (the others in the listener).
    fn send_one_thread(&self, h: &Handle, topic: &Arc<str>, t: usize, ok: &AtomicUsize) {
        for i in 0..self.per {
            let r = ProducerRecord::new(topic.clone(), tagged_value(t, i, self.pad))
                .partition((t % self.partitions) as i32);
            if i % self.wait_every == self.wait_every - 1 {
                h.send(r).unwrap().wait_timeout(WAIT).unwrap();
                ok.fetch_add(1, Ordering::Relaxed);
            } else {
                h.send_with_tag(r, (t * self.per + i) as u64).unwrap();
            }
            thread::sleep(self.pause);
        }
    }

    /// Every thread's records are in the log of its partition exactly once
    /// and in the order it sent them.
    fn check(&self, m: &MockServer, topic: &str) {
        let mut next = vec![0usize; self.threads];
        for partition in 0..self.partitions {
            for r in log(m, topic, partition as i32) {
                let Some((t, i)) = parse_value(r.value.as_deref().expect("value")) else {
                    continue;
                };
                assert_eq!(
                    t % self.partitions,
                    partition,
                    "record {t}-{i} in the wrong partition"
                );
                assert_eq!(
                    i, next[t],
                    "{topic}-{partition}: thread {t}'s record {i} where {} was due (reordered, duplicated or lost)",
                    next[t]
                );
                next[t] += 1;
            }
        }
        assert_eq!(
            next,
            vec![self.per; self.threads],
            "records missing from the log"
        );
    }
}

/// Config for the many-senders cases: every record makes a request ready
/// (linger 0), acks=all with idempotence, so a reordered request shows as a
/// sequence error (and a retry), not only in the log.
fn eager_config(b: &MockServer, batch_size: usize) -> ProducerConfig {
    config(&b.bootstrap_servers())
        .linger(Duration::ZERO)
        .batch_size(batch_size)
        .acks(Acks::All)
        .enable_idempotence(true)
        .request_timeout(Duration::from_secs(10))
        .delivery_timeout(Duration::from_secs(60))
        .retry_backoff(Duration::from_millis(20))
        .build()
        .unwrap()
}

/// A healthy run: no record retried, no epoch bumped, no connection lost (a
/// request written out of order would show as a retry).
fn assert_nothing_retried(m: &kafka_sansio::producer::Metrics) {
    assert_eq!(
        (m.records_retried, m.epoch_bumps, m.disconnects),
        (0, 0, 0),
        "a healthy run retries nothing: {m:?}"
    );
}

/// Several threads, linger 0, one connection, each record a batch of its
/// own, so requests follow each other closely on one socket: the log holds
/// each record once and in send order, with no retry at all.
fn many_senders_linger_zero<D: Driver>() {
    let b = mock(1, 4);
    b.with_cluster(|c| c.create_topic("eager", 4)).unwrap();
    // Every record a batch of its own.
    let mut p = D::start(eager_config(&b, 1));
    let load = Load {
        threads: 6,
        per: 8000,
        partitions: 4,
        pad: 0,
        wait_every: 8,
        pause: Duration::ZERO,
    };
    load.send(&p, "eager", |_| {});
    load.check(&b, "eager");
    assert_nothing_retried(&p.metrics());
    p.close(WAIT).unwrap();
}

/// A TCP proxy in front of broker 0 of a mock (which then advertises the
/// proxy) that stops reading from its clients while `stalled` is set: their
/// sockets' buffers fill, and their writes are partial.
struct StallingProxy {
    addr: std::net::SocketAddr,
    stalled: Arc<std::sync::atomic::AtomicBool>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl StallingProxy {
    fn start(m: &MockServer) -> StallingProxy {
        use std::sync::atomic::AtomicBool;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        m.with_cluster(|c| c.set_broker_address(0, "127.0.0.1", addr.port()));
        let upstream = m.addresses()[0];
        let stalled = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (stalled.clone(), stop.clone());
        thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => Self::serve(client, upstream, st.clone(), sp.clone()),
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        StallingProxy {
            addr,
            stalled,
            stop,
        }
    }

    /// Stalls for `stalled`, then reads for `open`, again and again until
    /// `delivered` reaches `enough` (bounded by [`WAIT`]).
    fn stall_until(
        &self,
        delivered: &AtomicUsize,
        enough: usize,
        stalled: Duration,
        open: Duration,
    ) {
        let t0 = Instant::now();
        while delivered.load(Ordering::Relaxed) < enough && t0.elapsed() < WAIT {
            self.stalled.store(true, Ordering::SeqCst);
            thread::sleep(stalled);
            self.stalled.store(false, Ordering::SeqCst);
            thread::sleep(open);
        }
    }

    /// Forwards one client: broker to client freely, client to broker unless stalled.
    fn serve(
        client: std::net::TcpStream,
        upstream: std::net::SocketAddr,
        stalled: Arc<std::sync::atomic::AtomicBool>,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) {
        use std::io::{Read, Write};
        client.set_nonblocking(false).unwrap();
        let broker = std::net::TcpStream::connect(upstream).unwrap();
        let (mut from_broker, mut to_client) =
            (broker.try_clone().unwrap(), client.try_clone().unwrap());
        thread::spawn(move || {
            let _ = std::io::copy(&mut from_broker, &mut to_client);
            let _ = to_client.shutdown(std::net::Shutdown::Both);
        });
        let (mut from_client, mut to_broker) = (client, broker);
        from_client
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while !stop.load(Ordering::SeqCst) {
                if stalled.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(1));
                    continue;
                }
                match from_client.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if to_broker.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            let _ = to_broker.shutdown(std::net::Shutdown::Both);
        });
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Large records from several threads through a broker that stops reading
/// now and then: writes fill the socket's buffer and are partial, and the
/// driver must finish each request before it writes the next.
fn large_records_fill_the_socket<D: Driver>() {
    let b = mock(1, 4);
    b.with_cluster(|c| c.create_topic("large", 4)).unwrap();
    let proxy = StallingProxy::start(&b);
    let mut p = D::start(
        config(&proxy.addr.to_string())
            .linger(Duration::ZERO)
            .acks(Acks::All)
            .enable_idempotence(true)
            .request_timeout(Duration::from_secs(10))
            .delivery_timeout(Duration::from_secs(60))
            .max_request_size(8 << 20)
            .build()
            .unwrap(),
    );
    let load = Load {
        threads: 3,
        per: 8,
        partitions: 4,
        pad: 6 << 20,
        wait_every: usize::MAX,
        pause: Duration::from_millis(60),
    };
    let total = load.threads * load.per;
    let stalls = |delivered: &AtomicUsize| {
        proxy.stall_until(
            delivered,
            total * 9 / 10,
            Duration::from_millis(30),
            Duration::from_millis(10),
        );
    };
    load.send(&p, "large", stalls);
    load.check(&b, "large");
    assert_nothing_retried(&p.metrics());
    p.close(WAIT).unwrap();
}

/// The broker drops its connections again and again while threads send:
/// idempotent retries still put each record in the log once, in order.
fn connections_dropped_while_sending<D: Driver>() {
    let b = mock(1, 4);
    b.with_cluster(|c| c.create_topic("dropped", 4)).unwrap();
    let mut p = D::start(eager_config(&b, 1));
    let load = Load {
        threads: 4,
        per: 3000,
        partitions: 4,
        pad: 0,
        wait_every: 4,
        pause: Duration::ZERO,
    };
    let drops = AtomicUsize::new(0);
    let dropper = |delivered: &AtomicUsize| {
        // Every 5 ms, 40 times at most, until nearly all is delivered (the
        // rest then goes through without a drop).
        while delivered.load(Ordering::Relaxed) < load.threads * load.per * 9 / 10
            && drops.load(Ordering::Relaxed) < 40
        {
            thread::sleep(Duration::from_millis(5));
            b.drop_connections(0);
            drops.fetch_add(1, Ordering::Relaxed);
        }
    };
    load.send(&p, "dropped", dropper);
    load.check(&b, "dropped");
    let m = p.metrics();
    assert!(
        m.disconnects > 1,
        "{} drops, {m:?}",
        drops.load(Ordering::Relaxed)
    );
    p.close(WAIT).unwrap();
}

/// Paced sends from a few threads (each record its own request, so the
/// sending threads mostly write their requests themselves) while the broker
/// drops its connections now and then: each record in the log once, in order.
fn paced_sends_while_connections_drop<D: Driver>() {
    let b = mock(1, 2);
    b.with_cluster(|c| c.create_topic("paced", 2)).unwrap();
    let mut p = D::start(eager_config(&b, 1));
    let load = Load {
        threads: 3,
        per: 400,
        partitions: 2,
        pad: 0,
        wait_every: 5,
        pause: Duration::from_micros(200),
    };
    let dropper = |delivered: &AtomicUsize| {
        for _ in 0..10 {
            if delivered.load(Ordering::Relaxed) >= load.threads * load.per * 9 / 10 {
                break;
            }
            thread::sleep(Duration::from_millis(20));
            b.drop_connections(0);
        }
    };
    load.send(&p, "paced", dropper);
    load.check(&b, "paced");
    p.close(WAIT).unwrap();
}

/// The log of `topic`-`partition` as one idempotent producer's: one
/// producer id and epoch, sequences 0, 1, 2, ... in offset order (a request
/// written out of order, twice or not at all breaks the run).
fn check_sequences(m: &MockServer, topic: &str, partition: i32) {
    let records = log(m, topic, partition);
    let first = records.first().expect("records in the log");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            (r.producer_id, r.producer_epoch, r.sequence),
            (first.producer_id, first.producer_epoch, i as i32),
            "{topic}-{partition}: offset {} out of sequence",
            r.offset
        );
    }
}

/// Many threads, one partition, every record its own request, paced so that
/// the connection is often idle when a record comes (its sender then writes
/// the request itself) and often busy (the request goes to the loop):
/// with `in_flight` requests allowed, the broker gets every sequence once, in order.
fn one_partition_many_senders(b: &MockServer, p: &Client, topic: &str) {
    let load = Load {
        threads: 8,
        per: 600,
        partitions: 1,
        pad: 100,
        wait_every: 3,
        pause: Duration::from_micros(50),
    };
    load.send(p, topic, |_| {});
    load.check(b, topic);
    check_sequences(b, topic, 0);
    assert_nothing_retried(&p.metrics());
}

fn one_partition_in_flight_1<D: Driver>() {
    let b = mock(1, 1);
    b.with_cluster(|c| c.create_topic("one-in-flight", 1))
        .unwrap();
    let mut config = eager_config(&b, 1);
    config.max_in_flight = 1;
    let mut p = D::start(config);
    one_partition_many_senders(&b, &p, "one-in-flight");
    p.close(WAIT).unwrap();
}

fn one_partition_in_flight_5<D: Driver>() {
    let b = mock(1, 1);
    b.with_cluster(|c| c.create_topic("five-in-flight", 1))
        .unwrap();
    let mut p = D::start(eager_config(&b, 1));
    one_partition_many_senders(&b, &p, "five-in-flight");
    p.close(WAIT).unwrap();
}

/// Requests small enough for a sender to write itself (tens of KiB) through
/// a broker that stops reading now and then, with many requests in flight
/// (more than the socket's buffers hold): a sender finds the connection idle
/// but the socket full, writes part of a request or none, and leaves the
/// rest to the loop, which must write it before anything newer. Without
/// idempotence (which allows 5 in flight, too few to fill the buffers) a
/// reordered or lost request shows in the log, and a healthy run retries nothing.
fn direct_writes_into_a_full_socket<D: Driver>() {
    let b = mock(1, 1);
    b.with_cluster(|c| c.create_topic("full-socket", 1))
        .unwrap();
    let proxy = StallingProxy::start(&b);
    let mut p = D::start(
        config(&proxy.addr.to_string())
            .linger(Duration::ZERO)
            .acks(Acks::Leader)
            .enable_idempotence(false)
            .max_in_flight(200)
            .request_timeout(Duration::from_secs(10))
            .delivery_timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
    );
    let load = Load {
        threads: 4,
        per: 400,
        partitions: 1,
        pad: 60 << 10,
        wait_every: usize::MAX,
        pause: Duration::from_micros(100),
    };
    let total = load.threads * load.per;
    let stalls = |delivered: &AtomicUsize| {
        proxy.stall_until(
            delivered,
            total * 9 / 10,
            Duration::from_millis(20),
            Duration::from_millis(10),
        );
    };
    load.send(&p, "full-socket", stalls);
    load.check(&b, "full-socket");
    assert_nothing_retried(&p.metrics());
    p.close(WAIT).unwrap();
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod blocking_driver {
            $(#[test] fn $case() { super::$case::<super::Blocking>() })*
        }
        #[cfg(feature = "mio-driver")]
        mod mio_driver {
            $(#[test] fn $case() { super::$case::<super::Mio>() })*
        }
    };
}

// Against the mock's SASL and TLS listeners.
#[cfg(all(feature = "sasl", feature = "tls"))]
#[path = "drivers/secured.rs"]
mod secured;

suite!(
    sync_send,
    callback_send,
    callbacks_one_at_a_time,
    tagged_send,
    tagged_send_needs_listener,
    flush_waits_for_callbacks,
    blocked_send_resumes_and_close_wakes,
    fire_and_forget_flush,
    concurrent_senders,
    close_delivers,
    dead_bootstrap_times_out,
    try_send_buffer_full,
    dropped_connection_retries,
    acks_zero,
    leader_move_mid_stream,
    lost_response_after_append_exactly_once,
    retriable_errors_retried,
    broker_down_and_back,
    topic_recreated_mid_stream,
    many_senders_linger_zero,
    large_records_fill_the_socket,
    connections_dropped_while_sending,
    paced_sends_while_connections_drop,
    one_partition_in_flight_1,
    one_partition_in_flight_5,
    direct_writes_into_a_full_socket,
);

// ---- statistics ------------------------------------------------------------------------------

/// librdkafka-style statistics JSON every `statistics.interval.ms`: known
/// traffic shows in its counts, every answer in exactly one rtt window, the
/// slow broker's latency in its rtt, and the emissions keep the interval.
#[cfg(feature = "json")]
fn statistics<D: Driver>() {
    use serde_json::Value;
    let b = mock(3, 3);
    let slow = Duration::from_millis(30);
    b.with_cluster(|c| c.set_latency(1, slow));
    let interval = Duration::from_millis(100);
    // Before the start: the emissions are an interval apart from it.
    let t0 = Instant::now();
    let p = D::start(
        config(&b.bootstrap_servers())
            .client_id("stats-test")
            .statistics_interval(interval)
            .build()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel::<String>();
    let tx = std::sync::Mutex::new(tx);
    p.on_statistics(move |json| {
        let _ = tx.lock().unwrap().send(json.to_string());
    });
    // 10 synchronous sends to each partition: one batch and one Produce
    // request each.
    for i in 0..30 {
        let r = rec("stats", i).partition((i % 3) as i32);
        p.send(r).unwrap().wait_timeout(WAIT).unwrap();
    }
    p.flush().unwrap();
    let sent = Instant::now();
    // The emissions up to one made after the sends were all answered and
    // no request was left out.
    let mut all: Vec<Value> = Vec::new();
    let last = loop {
        let json = rx.recv_timeout(WAIT).expect("statistics keep coming");
        let v: Value = serde_json::from_str(&json).expect("statistics are JSON");
        all.push(v.clone());
        let idle = v["brokers"]
            .as_object()
            .unwrap()
            .values()
            .all(|b| b["outbuf_cnt"] == 0 && b["waitresp_cnt"] == 0);
        if all.len() > 1 && idle && Instant::now() >= sent + interval {
            break v;
        }
    };
    let elapsed = t0.elapsed();
    assert_eq!(last["type"], "producer");
    assert_eq!(last["client_id"], "stats-test");
    assert_eq!(last["name"], "stats-test#producer");
    assert_eq!(last["msg_cnt"], 0, "{last}");
    assert_eq!(last["msg_size"], 0);
    assert_eq!(last["msg_size_max"], 33_554_432);
    assert_eq!(last["txmsgs"], 30);
    assert_eq!(last["metadata_cache_cnt"], 1);
    let parts = &last["topics"]["stats"]["partitions"];
    let mut batch_bytes = 0;
    for partition in 0..3 {
        let q = &parts[partition.to_string()];
        assert_eq!(q["partition"], partition);
        assert_eq!(q["txmsgs"], 10, "{q}");
        assert_eq!(q["msgq_cnt"], 0);
        assert_eq!(q["msgs_inflight"], 0);
        let leader = b.with_cluster(|c| c.leader("stats", partition)).unwrap();
        assert_eq!(q["leader"], leader);
        let stored: u64 = b.with_cluster(|c| c.batches("stats", partition).len()) as u64;
        assert_eq!(stored, 10);
        batch_bytes += q["txbytes"].as_u64().unwrap();
        let broker = last["brokers"]
            .as_object()
            .unwrap()
            .values()
            .find(|x| x["nodeid"] == leader)
            .expect("leader listed");
        assert!(broker["toppars"][format!("stats-{partition}")].is_object());
    }
    assert_eq!(last["txmsg_bytes"].as_u64(), Some(batch_bytes));
    // Per broker: every request answered, counted once; the totals are the sums.
    let brokers = last["brokers"].as_object().unwrap();
    let sum = |k: &str| {
        brokers
            .values()
            .map(|x| x[k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(last["tx"].as_u64(), Some(sum("tx")));
    assert_eq!(last["tx_bytes"].as_u64(), Some(sum("txbytes")));
    assert_eq!(last["rx"].as_u64(), Some(sum("rx")));
    assert_eq!(last["rx_bytes"].as_u64(), Some(sum("rxbytes")));
    for x in brokers.values() {
        assert_eq!(x["tx"], x["rx"], "{x}");
        let n = x["nodeid"].as_i64().unwrap();
        if n >= 0 {
            assert_eq!(x["state"], "UP", "{x}");
            assert_eq!(
                x["name"],
                format!("{}/{n}", x["nodename"].as_str().unwrap())
            );
            // ApiVersions, Metadata (maybe) and 10 Produce requests at least.
            assert!(x["tx"].as_u64().unwrap() >= 11, "{x}");
            assert!(x["connects"].as_u64().unwrap() >= 1);
        } else {
            assert_eq!(x["source"], "configured");
        }
        // Each answer's round trip is in exactly one emission's window.
        let name = x["name"].as_str().unwrap();
        let windows: u64 = all
            .iter()
            .filter_map(|v| v["brokers"][name]["rtt"]["cnt"].as_u64())
            .sum();
        assert_eq!(windows, x["rx"].as_u64().unwrap(), "{name}");
    }
    // The slow broker's round trips all took its latency.
    let slow_broker = brokers.values().find(|x| x["nodeid"] == 1).unwrap();
    let min_rtt = all
        .iter()
        .map(|v| &v["brokers"][slow_broker["name"].as_str().unwrap()]["rtt"])
        .filter(|r| r["cnt"].as_u64() > Some(0))
        .map(|r| r["min"].as_u64().unwrap())
        .min()
        .unwrap();
    assert!(min_rtt >= slow.as_micros() as u64, "{min_rtt} us");
    // The interval: the k-th emission no earlier than k intervals in, and
    // about one per interval.
    for (k, v) in all.iter().enumerate() {
        let ts = v["ts"].as_u64().unwrap();
        assert!(
            ts >= (k as u64 + 1) * interval.as_micros() as u64,
            "{k}: {ts}"
        );
        assert_eq!(v["age"], v["ts"]);
    }
    let most = (elapsed.as_millis() / interval.as_millis()) as usize;
    assert!(
        all.len() <= most && all.len() * 3 >= most,
        "{} in {elapsed:?}",
        all.len()
    );
}

#[cfg(feature = "json")]
mod statistics_json {
    #[test]
    fn blocking_driver() {
        super::statistics::<super::Blocking>()
    }
    #[cfg(feature = "mio-driver")]
    #[test]
    fn mio_driver() {
        super::statistics::<super::Mio>()
    }
}

// ---- brokers that misbehave ------------------------------------------------------------------

/// `reconnect.backoff.ms` and `reconnect.backoff.max.ms` of these cases.
const BACKOFF_MS: (u64, u64) = (50, 400);
/// `max.block.ms` of these cases.
const BLOCK_MS: u64 = 3000;

/// The most connections the reconnect backoff allows within `elapsed`: the
/// first at once, the k-th after min(base * 2^(k-2), max) less its 20 %
/// jitter. (Reset at each connect, the backoff would allow one per base.)
fn connections_allowed(elapsed: Duration) -> usize {
    let (base, max) = BACKOFF_MS;
    let (mut t, mut n) = (0.0, 1);
    loop {
        let wait = 0.8 * (base as f64 * 2f64.powi(n - 1)).min(max as f64);
        if t + wait > elapsed.as_secs_f64() * 1000.0 {
            return n as usize;
        }
        t += wait;
        n += 1;
    }
}

/// A producer for the misbehaving brokers: short backoffs and timeouts.
fn start_against_bad<D: Driver>(b: &BadBroker) -> Client {
    D::start(
        config(&b.addr)
            .request_timeout(Duration::from_millis(500))
            .max_block(Duration::from_millis(BLOCK_MS))
            .set("reconnect.backoff.ms", &BACKOFF_MS.0.to_string())
            .unwrap()
            .set("reconnect.backoff.max.ms", &BACKOFF_MS.1.to_string())
            .unwrap()
            .build()
            .unwrap(),
    )
}

/// Against a broker that misbehaves as `how`, records fail after
/// max.block.ms with an error naming the cause `expected` accepts, and the
/// producer dials no more often than its backoff allows.
fn fails_naming_the_cause<D: Driver>(how: Misbehaviour, expected: fn(&ConnectionError) -> bool) {
    let b = BadBroker::start(how);
    let t0 = Instant::now();
    let mut p = start_against_bad::<D>(&b);
    let futures: Vec<_> = (0..3).map(|i| p.send(rec("bad", i)).unwrap()).collect();
    for mut f in futures {
        match f.wait_timeout(WAIT) {
            Err(Error::Delivery(DeliveryError::BrokerUnavailable { waited_ms, cause })) => {
                assert_eq!(waited_ms, BLOCK_MS);
                assert!(expected(&cause), "{how:?}: the cause named is {cause:?}");
                assert!(cause.to_string().contains(&b.addr), "{how:?}: {cause}");
            }
            other => panic!("{how:?}: expected BrokerUnavailable, got {other:?}"),
        }
    }
    let elapsed = t0.elapsed();
    assert!(
        elapsed < Duration::from_millis(BLOCK_MS + 2000),
        "{how:?}: failed after {elapsed:?}"
    );
    let (made, allowed) = (b.connections(), connections_allowed(elapsed));
    eprintln!("{how:?}: {made} connections in {elapsed:?} (backoff allows {allowed})");
    assert!(made >= 2, "{how:?}: the producer gave up dialing ({made})");
    assert!(
        made <= allowed,
        "{how:?}: {made} connections in {elapsed:?}, backoff allows {allowed}"
    );
    // Nothing is left waiting: flush and close return at once.
    p.flush_timeout(Duration::from_secs(1)).unwrap();
    p.close(Duration::from_secs(2)).unwrap();
}

fn broker_closes_at_once<D: Driver>() {
    fails_naming_the_cause::<D>(Misbehaviour::CloseAtOnce, |c| {
        matches!(c, ConnectionError::ClosedBeforeReady { .. })
    });
}

fn broker_speaks_tls<D: Driver>() {
    // Recognised as a TLS listener, not read as a 350 MB frame.
    fails_naming_the_cause::<D>(Misbehaviour::TlsAlert, |c| {
        matches!(c, ConnectionError::TlsListener { .. })
    });
}

fn broker_sends_huge_frame<D: Driver>() {
    fails_naming_the_cause::<D>(Misbehaviour::HugeFrame, |c| {
        matches!(
            c,
            ConnectionError::Frame {
                error: ProtocolError::FrameTooLarge { .. },
                ..
            }
        )
    });
}

fn broker_sends_negative_frame<D: Driver>() {
    fails_naming_the_cause::<D>(Misbehaviour::NegativeFrame, |c| {
        matches!(c, ConnectionError::Frame { .. })
    });
}

fn broker_sends_random_bytes<D: Driver>() {
    fails_naming_the_cause::<D>(
        Misbehaviour::RandomFrames,
        ConnectionError::is_protocol_error,
    );
}

fn broker_answers_wrong_correlation<D: Driver>() {
    fails_naming_the_cause::<D>(Misbehaviour::WrongCorrelation, |c| {
        matches!(c, ConnectionError::CorrelationMismatch { .. })
    });
}

fn broker_truncates_answers<D: Driver>() {
    fails_naming_the_cause::<D>(Misbehaviour::Truncated, |c| {
        matches!(
            c,
            ConnectionError::Decode {
                api: ApiKey::ApiVersions,
                ..
            }
        )
    });
}

fn broker_truncates_metadata<D: Driver>() {
    // Usable connections (ApiVersions answered) reset for unusable bytes
    // keep the backoff growing all the same.
    fails_naming_the_cause::<D>(Misbehaviour::TruncatedMetadata, |c| {
        matches!(
            c,
            ConnectionError::Decode {
                api: ApiKey::Metadata,
                ..
            }
        )
    });
}

fn broker_never_answers<D: Driver>() {
    fails_naming_the_cause::<D>(Misbehaviour::NeverAnswers, |c| {
        matches!(
            c,
            ConnectionError::RequestTimeout {
                api: ApiKey::ApiVersions,
                ms: 500,
                ..
            }
        )
    });
}

/// A broker whose answers are good but odd in form (bytes after the last
/// field, one byte per write) gets every record, and no connection is reset.
fn delivers_despite<D: Driver>(how: Misbehaviour) {
    let b = BadBroker::start(how);
    let mut p = start_against_bad::<D>(&b);
    let futures: Vec<_> = (0..20).map(|i| p.send(rec("odd", i)).unwrap()).collect();
    for (i, mut f) in futures.into_iter().enumerate() {
        let md = f
            .wait_timeout(WAIT)
            .unwrap_or_else(|e| panic!("{how:?}: {e}"));
        assert_eq!((md.partition, md.offset), (0, i as i64), "{how:?}");
    }
    let stored = b.cluster.lock().unwrap().records("odd", 0).unwrap();
    assert_eq!(stored.len(), 20, "{how:?}");
    let skipped = p.metrics().response_bytes_skipped;
    if how == Misbehaviour::TrailingBytes {
        // Two bytes after each answer: ApiVersions, Metadata, InitProducerId, Produce.
        assert!(skipped >= 8, "{how:?}: skipped {skipped}");
    } else {
        assert_eq!(skipped, 0);
    }
    // The bootstrap connection and the leader's: none reset.
    assert_eq!(b.connections(), 2, "{how:?}");
    p.close(WAIT).unwrap();
}

fn broker_appends_trailing_bytes<D: Driver>() {
    delivers_despite::<D>(Misbehaviour::TrailingBytes);
}

fn broker_answers_one_byte_at_a_time<D: Driver>() {
    delivers_despite::<D>(Misbehaviour::OneByteAtATime);
}

/// The misbehaving-broker cases, beside the main suite's modules.
mod misbehaving {
    use super::*;

    suite!(
        broker_closes_at_once,
        broker_speaks_tls,
        broker_sends_huge_frame,
        broker_sends_negative_frame,
        broker_sends_random_bytes,
        broker_answers_wrong_correlation,
        broker_truncates_answers,
        broker_truncates_metadata,
        broker_never_answers,
        broker_appends_trailing_bytes,
        broker_answers_one_byte_at_a_time,
    );
}

/// The mio driver embedded in the application's own poll loop.
#[cfg(feature = "mio-driver")]
#[test]
fn mio_embedded_in_application_poll() {
    use kafka_sansio::driver::mio::Driver as MioDriver;
    use mio::{Events, Poll, Token};

    let b = mock(1, 1);
    let mut poll = Poll::new().unwrap();
    let mut driver = MioDriver::with_registry(
        config(&b.bootstrap_servers()).build().unwrap(),
        poll.registry(),
        Token(100),
    )
    .unwrap();
    let handle = driver.handle();
    let sender = thread::spawn(move || {
        let md = handle
            .send(rec("embedded", 0))
            .unwrap()
            .wait_timeout(WAIT)
            .unwrap();
        handle.close(WAIT).unwrap();
        md
    });
    let mut events = Events::with_capacity(64);
    let t0 = Instant::now();
    while !driver.is_closed() {
        assert!(t0.elapsed() < WAIT, "embedded loop did not finish");
        let timeout = driver
            .next_timeout()
            .map_or(Duration::from_millis(100), |t| {
                t.min(Duration::from_millis(100))
            });
        poll.poll(&mut events, Some(timeout)).unwrap();
        for ev in events.iter() {
            assert!(driver.owns(ev.token()));
            driver.handle_event(ev);
        }
        driver.handle_timeout();
    }
    let md = sender.join().unwrap();
    assert_eq!(md.offset, 0);
    assert_eq!(count(&b, "embedded") as i64, 1);
}
