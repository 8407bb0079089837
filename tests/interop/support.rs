//! Shared pieces of the interop tests: environment, peers (tansu, the
//! librdkafka mock cluster, the confluent-kafka consumer), both drivers behind
//! one type, the record matrix and the read-back checks.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_sansio::driver::{blocking, DeliveryFuture, DeliveryResult, Error, Handle};
use kafka_sansio::producer::{partition_for_key, ProducerConfig, ProducerRecord, RecordMetadata};
use kafka_sansio::protocol::record::Header;

use super::json::{self, Json};

// ---- environment ---------------------------------------------------------------------

pub const TANSU: &str = "KAFKA_SANSIO_TANSU";
pub const TANSU_BIN: &str = "KAFKA_SANSIO_TANSU_BIN";
pub const MOCK_BIN: &str = "KAFKA_SANSIO_RDKAFKA_MOCK_BIN";
/// The same mock linked against the current librdkafka (2.12 or later).
pub const MOCK_CURRENT_BIN: &str = "KAFKA_SANSIO_RDKAFKA_MOCK_CURRENT_BIN";
pub const CONSUMER: &str = "KAFKA_SANSIO_CONSUMER";

/// The values of `vars`, or `None` after printing `SKIPPED: ...` when one is unset.
/// With `CI=true` a missing variable fails the test instead: CI must not skip.
pub fn require(test: &str, vars: &[&str]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for v in vars {
        match std::env::var(v) {
            Ok(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
            _ => {
                if std::env::var("CI").is_ok_and(|c| c == "true") {
                    panic!(
                        "{test}: {v} is unset and CI=true: interop tests must not be skipped in CI \
                         (.ci/run exports it; see tests/interop/README.md)"
                    );
                }
                eprintln!(
                    "SKIPPED: {test}: {v} is unset (run .ci/run, or start the peers by hand: \
                     tests/interop/README.md)"
                );
                return None;
            }
        }
    }
    Some(out)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A topic name no other test or run uses.
pub fn fresh_topic(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An empty scratch directory (tansu reads `./.env` from its working directory).
pub fn scratch_dir(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(fresh_topic(&format!("kafka-sansio-{what}")));
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---- tansu ---------------------------------------------------------------------------

/// `tansu topic create NAME --partitions N --broker tcp://ADDR` in an empty directory.
pub fn tansu_create_topic(bin: &str, addr: &str, topic: &str, partitions: i32) {
    let dir = scratch_dir("topic");
    let out = Command::new(bin)
        .args(["topic", "create", topic, "--partitions"])
        .arg(partitions.to_string())
        .args(["--broker", &format!("tcp://{addr}")])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run tansu topic create");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "tansu topic create {topic} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private tansu broker (memory storage), killed on drop.
pub struct Tansu {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Tansu {
    /// Starts a broker on `listen` that advertises `advertise` in Metadata.
    pub fn start(bin: &str, listen: SocketAddr, advertise: SocketAddr) -> Tansu {
        let dir = scratch_dir("tansu");
        let log = std::fs::File::create(dir.join("tansu.log")).unwrap();
        let child = Command::new(bin)
            .arg("broker")
            .args(["--listener-url", &format!("tcp://{listen}")])
            .args(["--advertised-listener-url", &format!("tcp://{advertise}")])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn tansu");
        let mut t = Tansu {
            child,
            addr: listen,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok() {
                return t;
            }
            if let Ok(Some(st)) = t.child.try_wait() {
                panic!("tansu exited at start-up ({st}); log: {}", t.log());
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {listen}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- librdkafka mock cluster -----------------------------------------------------------

/// `rdkafka_mock` as a child process, controlled over stdin; ended on drop.
pub struct Mock {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub bootstrap: String,
}

impl Mock {
    pub fn start(bin: &str, brokers: u32, topics: &[(&str, i32)]) -> Mock {
        let mut cmd = Command::new(bin);
        cmd.args(["--brokers", &brokers.to_string()]);
        for (t, p) in topics {
            cmd.args(["--topic", &format!("{t}:{p}")]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rdkafka_mock");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read BOOTSTRAP line");
        let bootstrap = line
            .trim()
            .strip_prefix("BOOTSTRAP ")
            .unwrap_or_else(|| panic!("rdkafka_mock said {line:?}"))
            .to_string();
        Mock {
            child,
            stdin,
            stdout,
            bootstrap,
        }
    }

    /// Sends one command; panics unless the answer starts with `OK`.
    pub fn cmd(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read answer");
        let line = line.trim().to_string();
        assert!(line.starts_with("OK"), "rdkafka_mock: {command} -> {line}");
        line
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF: the mock destroys the cluster and exits
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the independent consumer -------------------------------------------------------------

/// One record as confluent-kafka read it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn opt_hex(j: &Json) -> Option<Vec<u8>> {
    match j {
        Json::Null => None,
        Json::Str(s) => Some(unhex(s)),
        other => panic!("expected hex or null, got {other:?}"),
    }
}

/// Runs `$KAFKA_SANSIO_CONSUMER` on every partition of `topic` from offset 0 and
/// parses its JSON lines. Stops 1.5 s after `expect` records (so duplicates beyond
/// show), or after 10 s without records.
pub fn consume(
    consumer: &str,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expect: usize,
) -> Vec<Consumed> {
    consume_isolated(
        consumer,
        bootstrap,
        topic,
        partitions,
        expect,
        "read_committed",
    )
}

/// [`consume`] at `isolation` (`read_committed`, librdkafka's default, or
/// `read_uncommitted`, which returns the records of aborted transactions too).
pub fn consume_isolated(
    consumer: &str,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expect: usize,
    isolation: &str,
) -> Vec<Consumed> {
    let mut parts = consumer.split_whitespace();
    let mut cmd = Command::new(parts.next().expect("consumer command"));
    cmd.args(parts);
    cmd.args(["--bootstrap", bootstrap, "--topic", topic])
        .args(["--partitions", &partitions.to_string()])
        .args(["--expect", &expect.to_string()])
        .args([
            "--grace-ms",
            "1500",
            "--idle-ms",
            "10000",
            "--timeout-ms",
            "90000",
        ])
        .args(["--isolation-level", isolation])
        .stdin(Stdio::null());
    let out = cmd.output().expect("run the consumer");
    assert!(
        out.status.success(),
        "consumer failed ({}) on {topic}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_consumed(&String::from_utf8(out.stdout).unwrap())
}

/// Parses the consumer's JSON lines (one record each, bytes in hex; `consume.py`'s
/// format, also printed by Kafka's console consumer with `kafkasansio.HexJsonFormatter`).
pub fn parse_consumed(stdout: &str) -> Vec<Consumed> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let j = json::parse(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}"));
            Consumed {
                partition: j.get("partition").as_i64() as i32,
                offset: j.get("offset").as_i64(),
                key: opt_hex(j.get("key")),
                value: opt_hex(j.get("value")),
                headers: j
                    .get("headers")
                    .as_array()
                    .iter()
                    .map(|h| {
                        let kv = h.as_array();
                        (kv[0].as_str().to_string(), opt_hex(&kv[1]))
                    })
                    .collect(),
                timestamp: j.get("timestamp").as_i64(),
            }
        })
        .collect()
}

// ---- both drivers behind one type --------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "mio-driver"), allow(dead_code))]
pub enum Driver {
    Blocking,
    Mio,
}

/// A running producer on either driver.
pub struct Client {
    handle: Handle,
    _blocking: Option<blocking::Producer>,
    thread: Option<thread::JoinHandle<std::io::Result<()>>>,
}

pub fn config(bootstrap: &str, props: &[(&str, &str)]) -> ProducerConfig {
    let mut all: Vec<(&str, &str)> = vec![
        ("bootstrap.servers", bootstrap),
        ("request.timeout.ms", "10000"),
        ("delivery.timeout.ms", "60000"),
        ("max.block.ms", "20000"),
    ];
    all.extend_from_slice(props);
    ProducerConfig::from_properties(all).expect("valid config")
}

impl Client {
    pub fn start(driver: Driver, config: ProducerConfig) -> Client {
        match driver {
            Driver::Blocking => {
                let p = blocking::Producer::new(config).expect("start blocking producer");
                Client {
                    handle: p.handle(),
                    _blocking: Some(p),
                    thread: None,
                }
            }
            #[cfg(not(feature = "mio-driver"))]
            Driver::Mio => unreachable!("mio tests need the mio-driver feature"),
            #[cfg(feature = "mio-driver")]
            Driver::Mio => {
                let (handle, t) =
                    kafka_sansio::driver::mio::Driver::spawn(config).expect("start mio driver");
                Client {
                    handle,
                    _blocking: None,
                    thread: Some(t),
                }
            }
        }
    }

    pub fn send(&self, r: ProducerRecord) -> Result<DeliveryFuture, Error> {
        self.handle.send(r)
    }

    /// The producer's counters (connections, requests, retries).
    #[allow(dead_code)] // not every test binary that includes this file reads them
    pub fn metrics(&self) -> kafka_sansio::producer::Metrics {
        self.handle.metrics()
    }

    /// The driver's handle (transactions, metrics).
    #[allow(dead_code)] // not every test binary that includes this file uses it
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Waits until every record sent so far has its outcome.
    pub fn flush(&self) -> Result<(), Error> {
        self.handle.flush_timeout(Duration::from_secs(60))
    }

    pub fn close(mut self) {
        let r = self.handle.close(Duration::from_secs(30));
        if let Some(t) = self.thread.take() {
            t.join().expect("mio thread panicked").expect("mio loop");
        }
        r.expect("close");
    }
}

/// Waits for an outcome, never longer than `limit`.
pub fn outcome(mut f: DeliveryFuture, limit: Duration) -> DeliveryResult {
    match f.wait_timeout(limit) {
        Err(Error::Timeout) => panic!("no outcome within {limit:?}: the producer hangs"),
        r => r,
    }
}

// ---- the record matrix ---------------------------------------------------------------------

/// Records `0..n` for `topic`: keyed, keyless and empty-keyed; some null values;
/// headers with a duplicate key and a null value; explicit timestamps. Header
/// `id` (first) carries the index, which identifies the record when read back.
pub fn records(topic: &str, n: usize, tag: &str) -> Vec<ProducerRecord> {
    let base_ts = 1_700_000_000_000i64;
    (0..n)
        .map(|i| {
            let key = match i % 6 {
                0 | 3 => None,
                1 => Some(Bytes::new()),
                _ => Some(Bytes::from(format!("key-{}", i % 23))),
            };
            let value = if i % 9 == 4 {
                None
            } else {
                let mut v = format!("{tag}-{i}-").into_bytes();
                v.extend((0..(i % 61)).map(|b| (b * 7 + i) as u8));
                Some(Bytes::from(v))
            };
            let mut headers = vec![Header::new("id", i.to_string())];
            if i % 5 != 2 {
                headers.push(Header::new("dup", "first"));
                headers.push(Header {
                    key: "nul".into(),
                    value: None,
                });
                headers.push(Header::new("dup", format!("second-{i}")));
                headers.push(Header::new("empty", ""));
            }
            ProducerRecord {
                topic: topic.into(),
                partition: None,
                key,
                value,
                headers,
                timestamp: Some(base_ts + i as i64),
            }
        })
        .collect()
}

/// Sends `records` in `chunks` chunks with `pause` between them, calling
/// `between(chunk)` before each chunk (fault injection), then waits for every
/// outcome. Returns the metadata per record index; panics on any failure.
pub fn produce(
    client: &Client,
    records: &[ProducerRecord],
    chunks: usize,
    pause: Duration,
    mut between: impl FnMut(usize),
) -> Vec<RecordMetadata> {
    let per = records.len().div_ceil(chunks.max(1));
    let mut futures = Vec::with_capacity(records.len());
    for (c, chunk) in records.chunks(per).enumerate() {
        between(c);
        for r in chunk {
            futures.push(client.send(r.clone()).expect("send accepted"));
        }
        thread::sleep(pause);
    }
    futures
        .into_iter()
        .enumerate()
        .map(|(i, f)| match outcome(f, Duration::from_secs(120)) {
            Ok(md) => md,
            Err(e) => panic!("record {i} failed: {e} ({e:?})"),
        })
        .collect()
}

/// Partitions of every topic the record matrix goes to.
pub const PARTITIONS: i32 = 3;

/// One run of the record matrix: sent by a new producer, then read back by
/// the independent consumer and compared with what was sent and reported.
pub struct RoundTrip<'a> {
    /// The producer's driver.
    pub driver: Driver,
    /// The producer's configuration ([`config`]).
    pub config: ProducerConfig,
    /// The records ([`records`]), all to one topic of [`PARTITIONS`] partitions.
    pub records: &'a [ProducerRecord],
    /// The records go in this many chunks, with `pause` after each: a run
    /// takes several requests, and faults can come between them.
    pub chunks: usize,
    /// The pause after each chunk.
    pub pause: Duration,
    /// The consumer command ([`CONSUMER`]).
    pub consumer: &'a str,
    /// The broker the consumer reads from: not the producer's
    /// `bootstrap.servers` when the producer goes through a proxy.
    pub broker: &'a str,
    /// Copies of a record are counted instead of being problems (see [`check`]).
    pub duplicates_allowed: bool,
}

impl RoundTrip<'_> {
    /// Sends the records and closes the producer once every outcome is in
    /// (any failure panics), then reads the topic back and compares.
    pub fn run(self) -> Check {
        self.run_with_faults(|_| {})
    }

    /// [`RoundTrip::run`], calling `before_chunk(chunk)` before each chunk is sent.
    pub fn run_with_faults(self, before_chunk: impl FnMut(usize)) -> Check {
        let (records, dups) = (self.records, self.duplicates_allowed);
        let (metas, got) = self.produce_and_read(before_chunk);
        check(records, &metas, PARTITIONS, &got, dups)
    }

    /// Sends the records as [`RoundTrip::run_with_faults`] does and returns
    /// their metadata and what the consumer read back, unchecked.
    pub fn produce_and_read(
        self,
        before_chunk: impl FnMut(usize),
    ) -> (Vec<RecordMetadata>, Vec<Consumed>) {
        let client = Client::start(self.driver, self.config);
        let metas = produce(&client, self.records, self.chunks, self.pause, before_chunk);
        client.close();
        let got = consume(
            self.consumer,
            self.broker,
            &self.records[0].topic,
            PARTITIONS,
            self.records.len(),
        );
        (metas, got)
    }
}

/// What the read-back showed.
#[derive(Debug, Default)]
pub struct Check {
    /// Records read back (copies included).
    pub read: usize,
    /// Extra copies of records (0 when each arrived once).
    pub duplicates: usize,
    /// Indices of records never read back.
    pub missing: Vec<usize>,
    /// Records acknowledged with offset -1 (unknown): the broker answered
    /// DUPLICATE_SEQUENCE_NUMBER without the original offset, as tansu does.
    pub unknown_offsets: usize,
    /// Everything else that is wrong, one line each.
    pub problems: Vec<String>,
}

impl Check {
    /// Each record exactly once, intact, in order, at the offset its metadata named.
    pub fn assert_exact(&self, what: &str) {
        assert_eq!(
            self.unknown_offsets, 0,
            "{what}: {} records acknowledged without an offset",
            self.unknown_offsets
        );
        self.assert_exact_offsets_may_be_unknown(what);
    }

    /// Like [`Check::assert_exact`], but records acknowledged by a
    /// DUPLICATE_SEQUENCE_NUMBER answer may carry offset -1 (Java does the same).
    pub fn assert_exact_offsets_may_be_unknown(&self, what: &str) {
        assert!(
            self.duplicates == 0 && self.missing.is_empty() && self.problems.is_empty(),
            "{what}: read {} records, {} duplicates, missing {:?}, problems:\n{}",
            self.read,
            self.duplicates,
            &self.missing[..self.missing.len().min(50)],
            self.problems[..self.problems.len().min(50)].join("\n")
        );
    }
}

fn header_vec(r: &ProducerRecord) -> Vec<(String, Option<Vec<u8>>)> {
    r.headers
        .iter()
        .map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec())))
        .collect()
}

/// Compares what was read back with what was sent and reported:
/// content (key, value, headers, timestamp) intact, keyed records on Java's
/// murmur2 partition, each record on the partition/offset its metadata named,
/// each exactly once, and per partition in send order (index order: every test
/// sends from one thread). With `dups_allowed`, copies are counted instead of
/// being problems (the metadata then names one of the copies).
pub fn check(
    sent: &[ProducerRecord],
    metas: &[RecordMetadata],
    partitions: i32,
    got: &[Consumed],
    dups_allowed: bool,
) -> Check {
    let mut c = Check {
        read: got.len(),
        ..Check::default()
    };
    let mut seen: BTreeMap<usize, Vec<&Consumed>> = BTreeMap::new();
    for r in got {
        let id = match r.headers.first() {
            Some((k, Some(v))) if k == "id" => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<usize>().ok()),
            _ => None,
        };
        match id {
            Some(i) if i < sent.len() => seen.entry(i).or_default().push(r),
            _ => c
                .problems
                .push(format!("foreign record at {}/{}", r.partition, r.offset)),
        }
    }
    for (i, s) in sent.iter().enumerate() {
        let Some(copies) = seen.get(&i) else {
            c.missing.push(i);
            continue;
        };
        c.duplicates += copies.len() - 1;
        if copies.len() > 1 && !dups_allowed {
            c.problems.push(format!(
                "record {i} read {} times at {:?}",
                copies.len(),
                copies
                    .iter()
                    .map(|r| (r.partition, r.offset))
                    .collect::<Vec<_>>()
            ));
        }
        let md = &metas[i];
        for r in copies {
            let want_key = s.key.as_ref().map(|k| k.to_vec());
            let want_value = s.value.as_ref().map(|v| v.to_vec());
            if r.key != want_key || r.value != want_value || r.headers != header_vec(s) {
                c.problems.push(format!(
                    "record {i} changed: sent key {want_key:?} value {want_value:?} headers {:?}, read {r:?}",
                    header_vec(s)
                ));
            }
            if Some(r.timestamp) != s.timestamp {
                c.problems.push(format!(
                    "record {i} timestamp: sent {:?}, read {}",
                    s.timestamp, r.timestamp
                ));
            }
            if let Some(k) = &s.key {
                let want = partition_for_key(k, partitions);
                if r.partition != want {
                    c.problems.push(format!(
                        "record {i} with key {k:?} on partition {}, murmur2 says {want}",
                        r.partition
                    ));
                }
            }
        }
        if md.offset == -1 && md.partition == copies[0].partition {
            c.unknown_offsets += 1;
        } else if md.partition != copies[0].partition
            || !copies
                .iter()
                .any(|r| r.partition == md.partition && r.offset == md.offset)
        {
            c.problems.push(format!(
                "record {i}: metadata says {}/{}, read back at {:?}",
                md.partition,
                md.offset,
                copies
                    .iter()
                    .map(|r| (r.partition, r.offset))
                    .collect::<Vec<_>>()
            ));
        }
    }
    // Send order per partition: first copies' indices grow with the offset.
    if !dups_allowed {
        let mut last: BTreeMap<i32, (usize, i64)> = BTreeMap::new();
        for r in got {
            let Some((_, Some(v))) = r.headers.first() else {
                continue;
            };
            let Some(i) = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            else {
                continue;
            };
            if let Some(&(pi, po)) = last.get(&r.partition) {
                if i < pi {
                    c.problems.push(format!(
                        "partition {}: record {i} at offset {} after record {pi} at offset {po}",
                        r.partition, r.offset
                    ));
                }
            }
            last.insert(r.partition, (i, r.offset));
        }
    }
    c
}

/// The producer settings the record matrix goes through on every peer:
/// acks=1, acks=all, and idempotence (each named for its topic).
pub const ROUND_TRIP_CASES: &[(&str, &[(&str, &str)])] = &[
    ("acks1", &[("acks", "1"), ("enable.idempotence", "false")]),
    (
        "acksall",
        &[("acks", "all"), ("enable.idempotence", "false")],
    ),
    (
        "idem",
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
        ],
    ),
];

// ---- record batches as a broker stores them ------------------------------------------------

/// One record batch read back with Fetch: where it is and its idempotence header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    pub partition: i32,
    pub base_offset: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// The `id` header of each record, in offset order.
    pub ids: Vec<usize>,
}

/// One request of `version` on `conn` and its response (a raw client, for
/// reading and writing what the producer under test does not).
pub fn call<R, M>(conn: &mut TcpStream, version: i16, request: &R) -> M
where
    R: kafka_sansio::protocol::Request,
    M: kafka_sansio::protocol::ApiMessage,
{
    use kafka_sansio::protocol::frame::{decode_response, encode_request};
    use std::io::Read;
    let mut buf = bytes::BytesMut::new();
    encode_request(&mut buf, 1, Some("interop-raw"), version, request).unwrap();
    conn.write_all(&buf).unwrap();
    let mut size = [0u8; 4];
    conn.read_exact(&mut size).unwrap();
    let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
    conn.read_exact(&mut frame).unwrap();
    decode_response::<M>(Bytes::from(frame), version).unwrap().1
}

/// Every batch of `topic`'s partitions `0..partitions`, in offset order per
/// partition, read with Fetch v4 from whichever broker of `bootstrap` leads it.
pub fn stored_batches(bootstrap: &str, topic: &str, partitions: i32) -> Vec<StoredBatch> {
    use kafka_sansio::protocol::messages::fetch::{
        FetchPartition, FetchRequest, FetchResponse, FetchTopic,
    };
    use kafka_sansio::protocol::RecordBatch;

    let mut out = Vec::new();
    for partition in 0..partitions {
        let mut led = false;
        for addr in bootstrap.split(',') {
            let mut conn = TcpStream::connect(addr).expect("connect for Fetch");
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut offset = 0i64;
            loop {
                let req = FetchRequest {
                    replica_id: -1,
                    max_wait_ms: 0,
                    min_bytes: 0,
                    max_bytes: 1 << 20,
                    topics: vec![FetchTopic {
                        topic: topic.into(),
                        partitions: vec![FetchPartition {
                            partition,
                            fetch_offset: offset,
                            partition_max_bytes: 1 << 20,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let resp: FetchResponse = call(&mut conn, 4, &req);
                let p = &resp.responses[0].partitions[0];
                if p.error_code != 0 {
                    break; // not the leader of this partition
                }
                led = true;
                let mut records = p.records.clone().unwrap_or_default();
                let before = out.len();
                while let Ok(b) = RecordBatch::decode(&mut records) {
                    offset = b.base_offset + b.last_offset_delta as i64 + 1;
                    let ids = b
                        .records()
                        .unwrap()
                        .iter()
                        .filter_map(|r| {
                            let h = r.headers.first()?;
                            std::str::from_utf8(h.value.as_ref()?).ok()?.parse().ok()
                        })
                        .collect();
                    out.push(StoredBatch {
                        partition,
                        base_offset: b.base_offset,
                        producer_id: b.producer_id,
                        producer_epoch: b.producer_epoch,
                        base_sequence: b.base_sequence,
                        ids,
                    });
                }
                if out.len() == before {
                    break; // read to the end
                }
            }
            if led {
                break;
            }
        }
        assert!(led, "no broker of {bootstrap} leads {topic}/{partition}");
    }
    out
}

/// What [`drop_resent_batches`] found.
#[derive(Debug, Default)]
pub struct Resent {
    /// The records read back without the copies of re-sent batches.
    pub kept: Vec<Consumed>,
    /// Batches stored again under an earlier batch's producer id, epoch and
    /// base sequence, with the same records.
    pub resent: usize,
    /// What no retry of an identical batch explains, one line each.
    pub problems: Vec<String>,
}

/// For a broker that appends an idempotent producer's retry instead of
/// answering it as a duplicate: removes from `got` all but the last stored
/// copy of each batch that `batches` shows stored more than once under the
/// same (partition, producer id, epoch, base sequence) — the last copy is the
/// one the producer's acknowledged retry appended, so its metadata names it.
/// Whatever Kafka would not have stored is a problem. Replaying the batches
/// in offset order as Kafka's sequence check does, each must carry the next
/// sequence of its producer on its partition (0 after a new id or epoch),
/// repeat an accepted batch exactly, or be one Kafka rejects as out of order
/// (a sequence ahead) whose identical copy is accepted later: the retry of
/// a batch that followed a failed one on the same connection.
pub fn drop_resent_batches(got: &[Consumed], batches: &[StoredBatch]) -> Resent {
    let mut r = Resent::default();
    type Key = (i32, i64, i16, i32);
    let key = |b: &StoredBatch| {
        (
            b.partition,
            b.producer_id,
            b.producer_epoch,
            b.base_sequence,
        )
    };
    let mut last: BTreeMap<Key, &StoredBatch> = BTreeMap::new();
    let mut accepted: BTreeMap<Key, &StoredBatch> = BTreeMap::new();
    // Sequences ahead of the expected one, waiting for their accepted copy.
    let mut rejected: BTreeMap<Key, &StoredBatch> = BTreeMap::new();
    // Per partition: the producer (id, epoch) and the sequence Kafka expects next.
    let mut next: BTreeMap<i32, ((i64, i16), i32)> = BTreeMap::new();
    for b in batches {
        let producer = (b.producer_id, b.producer_epoch);
        if last.contains_key(&key(b)) {
            r.resent += 1;
        }
        last.insert(key(b), b);
        let expected = match next.get(&b.partition) {
            Some(&(p, seq)) if p == producer => seq,
            _ => 0,
        };
        let same_records = |other: &StoredBatch| {
            if other.ids != b.ids {
                Some(format!(
                    "partition {} sequence {} (pid {} epoch {}) stored twice with other records: {:?} at {}, {:?} at {}",
                    b.partition, b.base_sequence, b.producer_id, b.producer_epoch,
                    other.ids, other.base_offset, b.ids, b.base_offset
                ))
            } else {
                None
            }
        };
        if b.base_sequence == expected {
            if let Some(earlier) = rejected.remove(&key(b)) {
                r.problems.extend(same_records(earlier));
            }
            accepted.insert(key(b), b);
            next.insert(
                b.partition,
                (producer, b.base_sequence + b.ids.len() as i32),
            );
        } else if let Some(earlier) = accepted.get(&key(b)) {
            r.problems.extend(same_records(earlier));
        } else if b.base_sequence > expected && !rejected.contains_key(&key(b)) {
            rejected.insert(key(b), b);
        } else {
            r.problems.push(format!(
                "partition {}: batch at {} (pid {} epoch {}) has sequence {}, Kafka expects {expected}",
                b.partition, b.base_offset, b.producer_id, b.producer_epoch, b.base_sequence
            ));
        }
    }
    for b in rejected.values() {
        r.problems.push(format!(
            "partition {}: batch at {} (pid {} epoch {}) has sequence {} ahead of the expected one, and no copy of it follows in order",
            b.partition, b.base_offset, b.producer_id, b.producer_epoch, b.base_sequence
        ));
    }
    let mut distinct: Vec<&StoredBatch> = last.values().copied().collect();
    distinct.sort_by_key(|b| (b.partition, b.base_offset));
    let mut kept_range: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for b in &distinct {
        kept_range
            .entry(b.partition)
            .or_default()
            .push((b.base_offset, b.base_offset + b.ids.len() as i64));
    }
    r.kept = got
        .iter()
        .filter(|c| {
            kept_range
                .get(&c.partition)
                .is_some_and(|rs| rs.iter().any(|&(lo, hi)| c.offset >= lo && c.offset < hi))
        })
        .cloned()
        .collect();
    r
}
