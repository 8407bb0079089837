//! The floor of the producer benchmark: what any client pays on this machine
//! for the records of a `producer_perf` run, with no client logic in between.
//!
//! ```text
//! cargo run --release --example wire_floor -- --topic T --num-records N \
//!     --record-size S --throughput R --producer-props bootstrap.servers=HOST:PORT \
//!     [acks=A] [batch.size=B] [max.in.flight.requests.per.connection=F] [k=v...] \
//!     [--pacing per-record|java]
//! ```
//!
//! Both modes do the benchmark's own work as `producer_perf` and
//! `rdkafka_perf` do (a clock read per record when it is sent and one when
//! its answer is taken, a latency per record), and the work no client can
//! skip: each value copied once into a RecordBatch v2 with its CRC-32C, one
//! Produce request per batch written to the partition's leader, each answer
//! read by a second thread blocked in `read`.
//!
//! - `--throughput R > 0`, the open loop: the same schedule as
//!   `producer_perf` (record `i` due at `start + i/R`, the sending thread
//!   sleeping until then), each record sent when it is due, by the sending
//!   thread itself: a write, a wake-up and a read per record. Only while
//!   `max.in.flight.requests.per.connection` (default 5) requests are
//!   unanswered do records wait, to go with the next one sent (a broker
//!   slower than the rate: Kafka reads one request per connection at a time).
//!   `--pacing java` paces as Kafka's tool does, as in `producer_perf`.
//! - `--throughput -1`: records as fast as the broker takes them, in full
//!   batches of `batch.size` bytes (default 16384), at most that many
//!   requests unanswered.
//!
//! `tests/interop/bench-compare.sh` runs it beside the clients on the same
//! broker so that their CPU per record can be read against this floor.
//! Requests are Produce at the broker's highest version up to 12 (topics by
//! name), partition 0, `acks` from the properties (default -1), no producer id
//! (the broker appends every batch as it comes); no linger, compression or
//! retries. Other properties are accepted and ignored.
//! stdout: one final line as the Java tool prints it.

use std::io::{IoSlice, Read, Write};
use std::net::TcpStream;
use std::process::exit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_sansio::protocol::frame::encode_request_split;
use kafka_sansio::protocol::messages::produce::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_sansio::protocol::{ApiKey, BatchBuilder, Compression};

#[path = "support/pacing.rs"]
mod pacing;
#[path = "support/reader.rs"]
mod reader;
#[path = "support/summary.rs"]
mod summary;

fn usage() -> ! {
    eprintln!(
        "usage: wire_floor --topic T --num-records N --record-size S --throughput R \
         --producer-props bootstrap.servers=HOST:PORT [acks=A] [batch.size=B] \
         [max.in.flight.requests.per.connection=F] [k=v ...] [--pacing per-record|java]"
    );
    exit(2)
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("wire_floor: {what}: {e}");
    exit(1)
}

struct Args {
    topic: String,
    num: usize,
    size: usize,
    rate: f64,
    bootstrap: String,
    acks: i16,
    batch_size: usize,
    in_flight: usize,
    pacing: pacing::Pacing,
}

fn parse_args() -> Args {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut a = Args {
        topic: String::new(),
        num: 0,
        size: 0,
        rate: 0.0,
        bootstrap: String::new(),
        acks: -1,
        batch_size: 16384,
        in_flight: 5,
        pacing: pacing::Pacing::PerRecord,
    };
    let mut have_rate = false;
    let mut i = 0;
    while i < argv.len() {
        let val = || argv.get(i + 1).cloned().unwrap_or_else(|| usage());
        let num = |v: &str| v.parse().unwrap_or_else(|_| usage());
        match argv[i].as_str() {
            "--topic" => a.topic = val(),
            "--num-records" => a.num = num(&val()),
            "--record-size" => a.size = num(&val()),
            "--pacing" => a.pacing = pacing::Pacing::parse(&val()).unwrap_or_else(|| usage()),
            "--throughput" => {
                a.rate = val().parse().unwrap_or_else(|_| usage());
                have_rate = true;
            }
            "--producer-props" | "--command-property" => {
                while i + 1 < argv.len() && !argv[i + 1].starts_with('-') {
                    i += 1;
                    match argv[i].split_once('=') {
                        Some(("bootstrap.servers", v)) => a.bootstrap = v.to_owned(),
                        Some(("acks", "all")) => a.acks = -1,
                        Some(("acks", v)) => a.acks = v.parse().unwrap_or_else(|_| usage()),
                        Some(("batch.size", v)) => a.batch_size = num(v),
                        Some(("max.in.flight.requests.per.connection", v)) => a.in_flight = num(v),
                        Some(_) => {}
                        None => usage(),
                    }
                }
                i += 1;
                continue;
            }
            _ => usage(),
        }
        i += 2;
    }
    if a.topic.is_empty() || a.num == 0 || !have_rate || a.bootstrap.is_empty() || a.in_flight == 0
    {
        usage();
    }
    a
}

fn main() {
    let a = parse_args();
    let conn = reader::PartitionReader::connect(&a.bootstrap, &a.topic, 0)
        .unwrap_or_else(|e| fail("connect", e));
    let (stream, versions) = conn.into_parts();
    let Some(version) = versions.get(ApiKey::Produce) else {
        fail("Produce", "the broker speaks no version this crate knows")
    };
    // v13 names topics by id; v12 and earlier by name, which is all this needs.
    let request = Framer {
        topic: a.topic.clone(),
        acks: a.acks,
        version: version.min(12),
    };
    let value = vec![b'A'; a.size];
    let base = Instant::now();
    let clock = move || base.elapsed().as_nanos() as u64;
    // Each record's send time, as the tools keep it (preallocated: no
    // allocation per record), and its latency once answered.
    let sent: Arc<[AtomicU64]> = (0..a.num).map(|_| AtomicU64::new(0)).collect();
    let (tx, rx) = channel::<usize>();
    let in_flight = Arc::new(InFlight::new(a.in_flight));
    let rx_stream = stream
        .try_clone()
        .unwrap_or_else(|e| fail("clone the socket", e));
    let answers = {
        let (sent, in_flight) = (sent.clone(), in_flight.clone());
        std::thread::spawn(move || read_answers(rx_stream, rx, &sent, &in_flight, clock))
    };
    let mut out = Writer {
        stream,
        pieces: Vec::new(),
    };
    // Sends a batch of `records` records; the reader learns the count first.
    let mut send = |batch: BatchBuilder, records: usize| {
        // The reader takes every count before it returns: it cannot be gone.
        tx.send(records)
            .expect("the reader thread takes the counts");
        out.write(&request.frame(&[close(batch)]));
    };
    let mut pacer = (a.rate > 0.0).then(|| pacing::Pacer::new(a.pacing, a.rate, 0));
    let mut batch: Option<BatchBuilder> = None;
    let mut held = 0;
    for (i, at) in sent.iter().enumerate() {
        let from = match &mut pacer {
            Some(p) => p.wait(i as u64, clock),
            None => clock(),
        };
        at.store(from, Ordering::Relaxed);
        let ts = unix_ms();
        if let Some(b) = &batch {
            if b.len() + b.next_record_size(ts, None, Some(&value), &[]) > a.batch_size {
                in_flight.acquire();
                send(batch.take().expect("a batch"), held);
                held = 0;
            }
        }
        batch
            .get_or_insert_with(|| BatchBuilder::new(ts, a.batch_size))
            .append(ts, None, Some(&value), &[]);
        held += 1;
        if pacer.is_some() && in_flight.try_acquire() {
            send(batch.take().expect("a batch"), held);
            held = 0;
        }
    }
    if let Some(last) = batch {
        in_flight.acquire();
        send(last, held);
    }
    drop(tx);
    let lat_us = answers.join().expect("reader thread");
    let secs = clock() as f64 / 1e9;
    let n = lat_us.len() as u64;
    let avg_ms = lat_us.iter().sum::<u64>() as f64 / n as f64 / 1000.0;
    let max_ms = lat_us.iter().max().copied().unwrap_or(0) as f64 / 1000.0;
    let mut lat_ms: Vec<u32> = lat_us.iter().map(|us| (us / 1000) as u32).collect();
    lat_ms.sort_unstable();
    println!(
        "{}",
        summary::final_line(n, a.size, secs, avg_ms, max_ms, &lat_ms)
    );
}

/// Takes the answers in request order: for each, the record count the
/// sender queued, and a latency per record from its send time.
fn read_answers(
    mut rx: TcpStream,
    counts: Receiver<usize>,
    sent: &[AtomicU64],
    in_flight: &InFlight,
    clock: impl Fn() -> u64,
) -> Vec<u64> {
    let mut lat_us = Vec::with_capacity(sent.len());
    let mut buf = vec![0u8; 1 << 16];
    let mut have = 0;
    while lat_us.len() < sent.len() {
        match rx.read(&mut buf[have..]) {
            Ok(0) => fail("read", "the broker closed the connection"),
            Ok(n) => have += n,
            Err(e) => fail("read", e),
        }
        let mut at = 0;
        while have - at >= 4 {
            let len = i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
            if len + 4 > buf.len() {
                fail("read", format!("an answer of {len} bytes"));
            }
            if have - at < 4 + len {
                break;
            }
            at += 4 + len;
            let records = counts.recv().unwrap_or_else(|e| fail("answer", e));
            in_flight.release();
            for _ in 0..records {
                let i = lat_us.len();
                lat_us.push(clock().saturating_sub(sent[i].load(Ordering::Relaxed)) / 1000);
            }
        }
        buf.copy_within(at..have, 0);
        have -= at;
    }
    lat_us
}

/// The count of unanswered requests, at most `max`.
struct InFlight {
    /// Unanswered requests, and whether the sender waits for a place.
    n: Mutex<(usize, bool)>,
    room: Condvar,
    max: usize,
}

impl InFlight {
    fn new(max: usize) -> Self {
        InFlight {
            n: Mutex::new((0, false)),
            room: Condvar::new(),
            max,
        }
    }

    /// Takes a place, waiting for one.
    fn acquire(&self) {
        let mut n = self.n.lock().expect("in-flight lock");
        while n.0 >= self.max {
            n.1 = true;
            n = self.room.wait(n).expect("in-flight lock");
        }
        *n = (n.0 + 1, false);
    }

    /// Takes a place if one is free.
    fn try_acquire(&self) -> bool {
        let mut n = self.n.lock().expect("in-flight lock");
        let free = n.0 < self.max;
        if free {
            n.0 += 1;
        }
        free
    }

    /// Gives a place back (an answer was read); a wake-up only when the
    /// sender waits, as a client's loop would not signal an idle sender.
    fn release(&self) {
        let mut n = self.n.lock().expect("in-flight lock");
        n.0 -= 1;
        if n.1 {
            self.room.notify_one();
        }
    }
}

/// The Produce request around one or more closed batches.
struct Framer {
    topic: String,
    acks: i16,
    version: i16,
}

impl Framer {
    /// The frame's pieces: header and fields, then each batch as it is (not copied).
    fn frame(&self, batches: &[Bytes]) -> Vec<Bytes> {
        let request = ProduceRequest {
            transactional_id: None,
            acks: self.acks,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: self.topic.clone(),
                partition_data: batches
                    .iter()
                    .map(|b| PartitionProduceData {
                        index: 0,
                        records: Some(b.clone()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut pieces = Vec::new();
        encode_request_split(1, Some("wire-floor"), self.version, &request, &mut pieces)
            .unwrap_or_else(|e| fail("encode Produce", e));
        pieces
    }
}

/// Writes a frame's pieces with vectored writes, as the clients do.
struct Writer {
    stream: TcpStream,
    pieces: Vec<Bytes>,
}

impl Writer {
    fn write(&mut self, frame: &[Bytes]) {
        self.pieces.clear();
        self.pieces.extend_from_slice(frame);
        let mut first = 0;
        while first < self.pieces.len() {
            let slices: Vec<IoSlice> = self.pieces[first..]
                .iter()
                .map(|p| IoSlice::new(p))
                .collect();
            let mut n = self
                .stream
                .write_vectored(&slices)
                .unwrap_or_else(|e| fail("write", e));
            if n == 0 {
                fail("write", "the socket took nothing");
            }
            while first < self.pieces.len() && n >= self.pieces[first].len() {
                n -= self.pieces[first].len();
                first += 1;
            }
            if n > 0 {
                let rest = self.pieces[first].slice(n..);
                self.pieces[first] = rest;
            }
        }
    }
}

fn close(b: BatchBuilder) -> Bytes {
    b.close(Compression::None, None)
        .unwrap_or_else(|e| fail("close a batch", e))
        .bytes()
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
