//! One behavioural suite run against both drivers (blocking and mio).
//!
//! The cluster is a tiny loopback Kafka responder defined below (`loopback`),
//! TO BE REPLACED by `kafka_sansio::mock::MockServer` once it lands: it only
//! needs `start`, `bootstrap_servers` and a per-topic record count.
//! Every wait is bounded, so no case can hang.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use kafka_sansio::driver::{blocking, Error, Handle};
use kafka_sansio::producer::{DeliveryError, ProducerConfig, ProducerRecord, SendError};

const WAIT: Duration = Duration::from_secs(20);

// ---- a loopback broker (to be replaced by kafka_sansio::mock::MockServer) ------------------

mod loopback {
    use std::collections::HashMap;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread;

    use bytes::{Bytes, BytesMut};
    use kafka_sansio::protocol::frame::{encode_response, ApiKey, ApiMessage, RequestHeader};
    use kafka_sansio::protocol::messages::api_versions::{
        ApiVersion, ApiVersionsRequest, ApiVersionsResponse,
    };
    use kafka_sansio::protocol::messages::init_producer_id::{
        InitProducerIdRequest, InitProducerIdResponse,
    };
    use kafka_sansio::protocol::messages::metadata::{
        MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
        MetadataResponseTopic,
    };
    use kafka_sansio::protocol::messages::produce::{
        PartitionProduceResponse, ProduceRequest, ProduceResponse, TopicProduceResponse,
    };

    #[derive(Default)]
    struct Log {
        /// Next offset per (topic, partition).
        next: HashMap<(String, i32), i64>,
        /// Base offset of each appended batch by (producer id, topic, partition, base sequence).
        seen: HashMap<(i64, String, i32, i32), i64>,
        /// Records appended per topic.
        records: HashMap<String, i64>,
    }

    struct State {
        port: u16,
        partitions: i32,
        log: Mutex<Log>,
        /// Produce requests to append and then answer by dropping the connection.
        drop_after_append: AtomicUsize,
        next_pid: AtomicI64,
        stop: AtomicBool,
    }

    /// One broker (node 0) on 127.0.0.1 that auto-creates topics.
    pub struct Broker {
        state: Arc<State>,
    }

    impl Broker {
        pub fn start(partitions: i32) -> Broker {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = listener.local_addr().unwrap().port();
            let state = Arc::new(State {
                port,
                partitions,
                log: Mutex::default(),
                drop_after_append: AtomicUsize::new(0),
                next_pid: AtomicI64::new(1000),
                stop: AtomicBool::new(false),
            });
            let s = state.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if s.stop.load(Ordering::Acquire) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        let s = s.clone();
                        thread::spawn(move || serve(s, stream));
                    }
                }
            });
            Broker { state }
        }

        pub fn bootstrap_servers(&self) -> String {
            format!("127.0.0.1:{}", self.state.port)
        }

        /// Records appended to `topic` (duplicates excluded).
        pub fn record_count(&self, topic: &str) -> i64 {
            *self
                .state
                .log
                .lock()
                .unwrap()
                .records
                .get(topic)
                .unwrap_or(&0)
        }

        /// The next `n` Produce requests are appended, then their connection is dropped unanswered.
        pub fn drop_after_append(&self, n: usize) {
            self.state.drop_after_append.store(n, Ordering::Release);
        }
    }

    impl Drop for Broker {
        fn drop(&mut self) {
            self.state.stop.store(true, Ordering::Release);
            let _ = TcpStream::connect(("127.0.0.1", self.state.port));
        }
    }

    fn serve(s: Arc<State>, mut stream: TcpStream) {
        loop {
            let mut len = [0u8; 4];
            if stream.read_exact(&mut len).is_err() || s.stop.load(Ordering::Acquire) {
                return;
            }
            let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
            if stream.read_exact(&mut body).is_err() {
                return;
            }
            let mut body = Bytes::from(body);
            let Ok(h) = RequestHeader::decode(&mut body) else {
                return;
            };
            let mut out = BytesMut::new();
            let v = h.api_version;
            let c = h.correlation_id;
            let ok = match ApiKey::from_code(h.api_key) {
                Some(ApiKey::ApiVersions) => {
                    let _ = ApiVersionsRequest::decode(&mut body, v);
                    let resp = ApiVersionsResponse {
                        api_keys: ApiKey::ALL
                            .iter()
                            .map(|k| ApiVersion {
                                api_key: k.code(),
                                min_version: k.versions().0,
                                max_version: k.versions().1,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    };
                    encode_response(&mut out, c, v, &resp).is_ok()
                }
                Some(ApiKey::Metadata) => {
                    let Ok(req) = MetadataRequest::decode(&mut body, v) else {
                        return;
                    };
                    let topics = req
                        .topics
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|t| t.name)
                        .map(|name| MetadataResponseTopic {
                            name: Some(name),
                            partitions: (0..s.partitions)
                                .map(|p| MetadataResponsePartition {
                                    partition_index: p,
                                    leader_id: 0,
                                    leader_epoch: 0,
                                    replica_nodes: vec![0],
                                    isr_nodes: vec![0],
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect();
                    let resp = MetadataResponse {
                        brokers: vec![MetadataResponseBroker {
                            node_id: 0,
                            host: "127.0.0.1".into(),
                            port: s.port as i32,
                            ..Default::default()
                        }],
                        cluster_id: Some("loopback".into()),
                        controller_id: 0,
                        topics,
                        ..Default::default()
                    };
                    encode_response(&mut out, c, v, &resp).is_ok()
                }
                Some(ApiKey::InitProducerId) => {
                    let _ = InitProducerIdRequest::decode(&mut body, v);
                    let resp = InitProducerIdResponse {
                        producer_id: s.next_pid.fetch_add(1, Ordering::AcqRel),
                        producer_epoch: 0,
                        ..Default::default()
                    };
                    encode_response(&mut out, c, v, &resp).is_ok()
                }
                Some(ApiKey::Produce) => {
                    let Ok(req) = ProduceRequest::decode(&mut body, v) else {
                        return;
                    };
                    let resp = produce(&s, &req);
                    let drop_it = s
                        .drop_after_append
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok();
                    if drop_it {
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    if req.acks == 0 {
                        continue;
                    }
                    encode_response(&mut out, c, v, &resp).is_ok()
                }
                _ => false,
            };
            if !ok || stream.write_all(&out).is_err() {
                return;
            }
        }
    }

    fn be_i32(b: &[u8], at: usize) -> i32 {
        i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn produce(s: &State, req: &ProduceRequest) -> ProduceResponse {
        let mut log = s.log.lock().unwrap();
        let mut responses = Vec::new();
        for t in &req.topic_data {
            let mut parts = Vec::new();
            for p in &t.partition_data {
                let records = p.records.clone().unwrap_or_default();
                let mut at = 0;
                let mut base = -1;
                // Walk the batches: batchLength @8, lastOffsetDelta @23, producerId @43, baseSequence @53.
                while records.len() >= at + 61 {
                    let b = &records[at..];
                    let len = be_i32(b, 8) as usize + 12;
                    let count = be_i32(b, 23) as i64 + 1;
                    let pid = i64::from_be_bytes(b[43..51].try_into().unwrap());
                    let seq = be_i32(b, 53);
                    let key = (pid, t.name.clone(), p.index, seq);
                    let offset = match (pid >= 0).then(|| log.seen.get(&key).copied()).flatten() {
                        Some(o) => o, // duplicate of an appended batch
                        None => {
                            let next = log.next.entry((t.name.clone(), p.index)).or_insert(0);
                            let o = *next;
                            *next += count;
                            *log.records.entry(t.name.clone()).or_insert(0) += count;
                            if pid >= 0 {
                                log.seen.insert(key, o);
                            }
                            o
                        }
                    };
                    if base < 0 {
                        base = offset;
                    }
                    at += len;
                }
                parts.push(PartitionProduceResponse {
                    index: p.index,
                    base_offset: base,
                    ..Default::default()
                });
            }
            responses.push(TopicProduceResponse {
                name: t.name.clone(),
                partition_responses: parts,
                ..Default::default()
            });
        }
        ProduceResponse {
            responses,
            ..Default::default()
        }
    }
}

use loopback::Broker;

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
    let b = Broker::start(1);
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
    p.close(WAIT).unwrap();
}

/// Callbacks get every outcome, on the loop thread.
fn callback_send<D: Driver>() {
    let b = Broker::start(3);
    let mut p = D::start(config(&b.bootstrap_servers()).build().unwrap());
    let (tx, rx) = mpsc::channel();
    let n = 300;
    for i in 0..n {
        let tx = tx.clone();
        p.send_with_callback(rec("callbacks", i).key(format!("k{i}")), move |r| {
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
    }
    assert_eq!(b.record_count("callbacks"), n as i64);
    p.close(WAIT).unwrap();
}

/// Fire-and-forget sends (dropped futures and send_and_forget) are all delivered by flush.
fn fire_and_forget_flush<D: Driver>() {
    let b = Broker::start(2);
    let mut p = D::start(config(&b.bootstrap_servers()).build().unwrap());
    for i in 0..1000 {
        if i % 2 == 0 {
            drop(p.send(rec("forget", i)).unwrap());
        } else {
            p.send_and_forget(rec("forget", i)).unwrap();
        }
    }
    p.flush_timeout(WAIT).unwrap();
    assert_eq!(b.record_count("forget"), 1000);
    p.close(WAIT).unwrap();
}

/// Many threads sending at once all get their outcomes.
fn concurrent_senders<D: Driver>() {
    let b = Broker::start(4);
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
    assert_eq!(b.record_count("concurrent"), (threads * per) as i64);
    p.close(WAIT).unwrap();
}

/// close(timeout) delivers what was sent, then refuses sends with the record back.
fn close_delivers<D: Driver>() {
    let b = Broker::start(2);
    let mut p = D::start(
        config(&b.bootstrap_servers())
            .linger(Duration::from_millis(200))
            .build()
            .unwrap(),
    );
    let mut futures = Vec::new();
    for i in 0..200 {
        futures.push(p.send(rec("close", i)).unwrap());
    }
    p.close(WAIT).unwrap();
    assert!(p.is_closed());
    assert_eq!(b.record_count("close"), 200);
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
    let mut p = D::start(
        config(&dead_address())
            .max_block(Duration::from_millis(500))
            .build()
            .unwrap(),
    );
    let t0 = Instant::now();
    let r = p.send(rec("nowhere", 0)).unwrap().wait_timeout(WAIT);
    match r {
        Err(Error::Delivery(DeliveryError::TopicNotFound(_) | DeliveryError::Timeout { .. })) => {}
        other => panic!("expected a timeout error, got {other:?}"),
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
    let b = Broker::start(1);
    let mut p = D::start(
        config(&b.bootstrap_servers())
            .retry_backoff(Duration::from_millis(20))
            .build()
            .unwrap(),
    );
    // Warm up (metadata, producer id), then break the next two Produce answers.
    p.send(rec("drop", 0)).unwrap().wait_timeout(WAIT).unwrap();
    b.drop_after_append(2);
    let futures: Vec<_> = (1..50).map(|i| p.send(rec("drop", i)).unwrap()).collect();
    let mut offsets = Vec::new();
    for mut f in futures {
        offsets.push(f.wait_timeout(WAIT).unwrap().offset);
    }
    let mut sorted = offsets.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), offsets.len(), "offsets reused: {offsets:?}");
    assert_eq!(
        b.record_count("drop"),
        50,
        "idempotent retry must not duplicate"
    );
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

suite!(
    sync_send,
    callback_send,
    fire_and_forget_flush,
    concurrent_senders,
    close_delivers,
    dead_bootstrap_times_out,
    try_send_buffer_full,
    dropped_connection_retries,
);

/// The mio driver embedded in the application's own poll loop.
#[cfg(feature = "mio-driver")]
#[test]
fn mio_embedded_in_application_poll() {
    use kafka_sansio::driver::mio::Driver as MioDriver;
    use mio::{Events, Poll, Token};

    let b = Broker::start(1);
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
    assert_eq!(b.record_count("embedded"), 1);
}
