//! Producer benchmark with the flags and final line of Kafka's
//! `kafka-producer-perf-test`, for side-by-side runs with librdkafka
//! (`tests/interop/rdkafka_perf`, see `tests/interop/bench-compare.sh`).
//!
//! ```text
//! cargo run --release --example producer_perf -- --topic perf --num-records 1000000 \
//!     --record-size 100 --throughput -1 --producer-props acks=all linger.ms=5 \
//!     [-X prop=value]... [--driver blocking|mio] [--partitions P] [--pacing per-record|java]
//! ```
//!
//! - `-X prop=value` sets a producer property (repeatable) as the `produce`
//!   example takes it, after `--producer-props`; e.g. the same broker over TLS:
//!   `-X security.protocol=SSL -X ssl.ca.location=ca.pem`.
//!
//! - `--throughput -1` sends as fast as the producer takes records; `R > 0` is an
//!   open-loop schedule: record `i` is due at `start + i/R` and its latency is
//!   measured from that scheduled time (so a stall shows as latency, not as a
//!   slower schedule). `--pacing java` paces as Kafka's tool does instead:
//!   bursts, a sleep once 2 ms ahead, latency from the send (`support/pacing.rs`).
//! - Without `bootstrap.servers` in `--producer-props`, an in-process
//!   [`MockServer`] with one broker and `--partitions` partitions (default 1) is
//!   started; its CPU and its stored log then count in this process's numbers.
//! - Latency is taken per record by the delivery listener (records are sent
//!   with `send_with_tag`, the tag being the record's due time) into an array
//!   allocated before the run: no per-record allocation, as rdkafka_perf
//!   passes its time as the message opaque.
//! - The values are `--record-size` random uppercase letters shared by every
//!   record (as the Java tool and `rdkafka_perf` do); no key.
//!
//! - `--per-partition` counts the acknowledged records per partition and
//!   prints one stderr line per partition with its count, share and latency
//!   percentiles (to see where a partitioner put the records).
//!
//! stdout: a window line every 5 s, then exactly one final line as Java prints it.
//! stderr: process CPU (user+sys), CPU ns per record and peak RSS.

use std::process::exit;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_sansio::driver::{self, DeliveryResult, Handle};
use kafka_sansio::mock::{MockConfig, MockServer};
use kafka_sansio::producer::{ProducerConfig, ProducerRecord};

#[path = "support/pacing.rs"]
mod pacing;
#[path = "support/props.rs"]
mod props;
#[path = "support/summary.rs"]
mod summary;

fn usage() -> ! {
    eprintln!(
        "usage: producer_perf --topic T --num-records N --record-size S --throughput R \
         --producer-props k=v [k=v ...] [-X k=v]... [--driver blocking|mio] [--partitions P] \
         [--per-partition] [--pacing per-record|java]\n  \
         --throughput -1: unlimited; R>0: open-loop R records/s (latency from the scheduled time)\n  \
         no bootstrap.servers: an in-process mock cluster with P partitions"
    );
    exit(2)
}

struct Args {
    topic: String,
    num: u64,
    size: usize,
    throughput: f64,
    props: Vec<(String, String)>,
    driver: String,
    pacing: pacing::Pacing,
    partitions: i32,
    per_partition: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        topic: String::new(),
        num: 0,
        size: 0,
        throughput: 0.0,
        props: Vec::new(),
        driver: "blocking".into(),
        pacing: pacing::Pacing::PerRecord,
        partitions: 1,
        per_partition: false,
    };
    let (mut have_num, mut have_size, mut have_tp) = (false, false, false);
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let val = |i: usize| argv.get(i + 1).cloned().unwrap_or_else(|| usage());
    while i < argv.len() {
        match argv[i].as_str() {
            "--topic" => a.topic = val(i),
            "--num-records" => {
                a.num = val(i).parse().unwrap_or_else(|_| usage());
                have_num = true;
            }
            "--record-size" => {
                a.size = val(i).parse().unwrap_or_else(|_| usage());
                have_size = true;
            }
            "--throughput" => {
                a.throughput = val(i).parse().unwrap_or_else(|_| usage());
                have_tp = true;
            }
            "--driver" => a.driver = val(i),
            "--pacing" => a.pacing = pacing::Pacing::parse(&val(i)).unwrap_or_else(|| usage()),
            "--partitions" => a.partitions = val(i).parse().unwrap_or_else(|_| usage()),
            "--producer-props" => {
                while i + 1 < argv.len() && !argv[i + 1].starts_with('-') {
                    i += 1;
                    a.props.push(
                        props::pair(&argv[i], "--producer-props").unwrap_or_else(|e| {
                            eprintln!("producer_perf: {e}");
                            usage()
                        }),
                    );
                }
                i += 1;
                continue;
            }
            "-X" => a.props.push(props::pair(&val(i), "-X").unwrap_or_else(|e| {
                eprintln!("producer_perf: {e}");
                usage()
            })),
            "--per-partition" => {
                a.per_partition = true;
                i += 1;
                continue;
            }
            "-h" | "--help" => usage(),
            other => {
                eprintln!("producer_perf: unknown argument {other}");
                usage()
            }
        }
        i += 2;
    }
    if a.topic.is_empty() || !have_num || !have_size || !have_tp {
        usage();
    }
    if a.driver != "blocking" && a.driver != "mio" {
        usage();
    }
    a
}

/// Written by the delivery callbacks (one driver thread at a time), read by main.
struct Stats {
    /// Read by main on every send, so never on a cache line the callbacks write.
    base: Instant,
    /// Latency of each acknowledged record in µs, in completion order.
    lat_us: Vec<AtomicU32>,
    /// With `--per-partition`: the partition of each acknowledged record,
    /// in the same order as `lat_us`.
    part: Vec<AtomicU32>,
    c: Counters,
}

/// The callbacks' counters, on cache lines of their own: sharing one with
/// `base` made every send miss on a line the callback thread had just written,
/// a cost of the harness that rdkafka_perf, whose callbacks run on its sending
/// thread, does not have. 128: the CPU may fetch lines in adjacent pairs.
#[repr(align(128))]
struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
    lat_sum_us: AtomicU64,
    lat_max_us: AtomicU64,
    win_max_us: AtomicU64,
}

impl Stats {
    fn record(&self, due_ns: u64, r: &DeliveryResult) {
        match r {
            Ok(meta) => {
                let now = self.base.elapsed().as_nanos() as u64;
                let us = now.saturating_sub(due_ns) / 1000;
                // One callback at a time, its turns ordered by the driver's
                // lock: relaxed load/store pairs are enough.
                let n = self.c.ok.load(Ordering::Relaxed);
                if let Some(slot) = self.lat_us.get(n as usize) {
                    slot.store(us.min(u32::MAX as u64) as u32, Ordering::Relaxed);
                }
                if let Some(slot) = self.part.get(n as usize) {
                    slot.store(meta.partition as u32, Ordering::Relaxed);
                }
                self.c.ok.store(n + 1, Ordering::Relaxed);
                // One writer: plain load/store pairs, no locked read-modify-writes
                // (as rdkafka_perf's globals); a lost window-max reset is harmless.
                let sum = self.c.lat_sum_us.load(Ordering::Relaxed);
                self.c.lat_sum_us.store(sum + us, Ordering::Relaxed);
                if us > self.c.lat_max_us.load(Ordering::Relaxed) {
                    self.c.lat_max_us.store(us, Ordering::Relaxed);
                }
                if us > self.c.win_max_us.load(Ordering::Relaxed) {
                    self.c.win_max_us.store(us, Ordering::Relaxed);
                }
            }
            Err(e) => {
                if self.c.failed.fetch_add(1, Ordering::Relaxed) < 10 {
                    eprintln!("producer_perf: delivery failed: {e}");
                }
            }
        }
    }
}

/// Process CPU time (user, system) from getrusage(RUSAGE_SELF) and peak RSS in KiB.
fn rusage() -> (f64, f64, i64) {
    #[repr(C)]
    #[derive(Default)]
    struct Timeval {
        sec: i64,
        usec: i64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Rusage {
        utime: Timeval,
        stime: Timeval,
        maxrss: i64,
        rest: [i64; 13],
    }
    extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    let mut r = Rusage::default();
    // SAFETY: `Rusage` has the layout of Linux's `struct rusage` on 64-bit targets.
    if unsafe { getrusage(0, &mut r) } != 0 {
        return (0.0, 0.0, 0);
    }
    let t = |tv: &Timeval| tv.sec as f64 + tv.usec as f64 / 1e6;
    (t(&r.utime), t(&r.stime), r.maxrss)
}

fn main() {
    let args = parse_args();
    let mut config = ProducerConfig::new();
    if let Err(e) = props::apply(&mut config, &args.props) {
        eprintln!("producer_perf: {e}");
        exit(2);
    }
    let _mock = if config.bootstrap_servers.is_empty() {
        let server = MockServer::start_with(MockConfig::default(), None).unwrap_or_else(|e| {
            eprintln!("producer_perf: cannot start the mock cluster: {e}");
            exit(1)
        });
        let _ = server.with_cluster(|c| c.create_topic(&args.topic, args.partitions));
        config.bootstrap_servers = vec![server.bootstrap_servers()];
        Some(server)
    } else {
        None
    };
    if let Err(e) = config.validate() {
        eprintln!("producer_perf: {e}");
        exit(2);
    }

    let (handle, closer): (Handle, Box<dyn FnOnce()>) = match args.driver.as_str() {
        "mio" => {
            let (h, t) = driver::mio::Driver::spawn(config).unwrap_or_else(|e| {
                eprintln!("producer_perf: {e}");
                exit(1)
            });
            let h2 = h.clone();
            (
                h,
                Box::new(move || {
                    let _ = h2.close(Duration::from_secs(60));
                    let _ = t.join();
                }),
            )
        }
        _ => {
            let p = driver::blocking::Producer::new(config).unwrap_or_else(|e| {
                eprintln!("producer_perf: {e}");
                exit(1)
            });
            (
                p.handle(),
                Box::new(move || {
                    let _ = p.close(Duration::from_secs(60));
                }),
            )
        }
    };

    // Payload: random uppercase letters, one buffer shared by every record.
    let mut x: u32 = 1;
    let payload: Vec<u8> = (0..args.size)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            b'A' + ((x >> 16) % 26) as u8
        })
        .collect();
    let payload = Bytes::from_static(Box::leak(payload.into_boxed_slice()));
    let topic: Arc<str> = args.topic.as_str().into();

    let stats: &'static Stats = Box::leak(Box::new(Stats {
        base: Instant::now(),
        lat_us: (0..args.num.max(1)).map(|_| AtomicU32::new(0)).collect(),
        part: (0..if args.per_partition { args.num } else { 0 })
            .map(|_| AtomicU32::new(0))
            .collect(),
        c: Counters {
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            lat_sum_us: AtomicU64::new(0),
            lat_max_us: AtomicU64::new(0),
            win_max_us: AtomicU64::new(0),
        },
    }));
    handle.on_delivery(move |due_ns, r| stats.record(due_ns, r));
    let cpu0 = rusage();

    let start_ns = stats.base.elapsed().as_nanos() as u64;
    let mut pacer =
        (args.throughput > 0.0).then(|| pacing::Pacer::new(args.pacing, args.throughput, start_ns));
    let mut win = Window {
        start: Instant::now(),
        ok: 0,
        sum: 0,
    };
    for i in 0..args.num {
        let due_ns = match &mut pacer {
            Some(p) => p.wait(i, || stats.base.elapsed().as_nanos() as u64),
            None => stats.base.elapsed().as_nanos() as u64,
        };
        let record = ProducerRecord {
            topic: topic.clone(),
            partition: None,
            key: None,
            value: Some(payload.clone()),
            headers: Vec::new(),
            timestamp: None,
        };
        // Tagged with its due time: the listener gets it back, and nothing is
        // allocated per record (rdkafka_perf passes its time as the opaque).
        if let Err(e) = handle.send_with_tag(record, due_ns) {
            eprintln!("producer_perf: send failed: {e}");
            exit(1);
        }
        if i & 1023 == 0 {
            win.maybe_print(stats, args.size);
        }
    }
    if let Err(e) = handle.flush() {
        eprintln!("producer_perf: flush failed: {e}");
    }
    let end_ns = stats.base.elapsed().as_nanos() as u64;
    let cpu1 = rusage();

    let n = stats.c.ok.load(Ordering::Acquire);
    let failed = stats.c.failed.load(Ordering::Acquire);
    let secs = (end_ns - start_ns) as f64 / 1e9;
    let mut lat_ms: Vec<u32> = stats.lat_us[..(n as usize).min(stats.lat_us.len())]
        .iter()
        .map(|l| l.load(Ordering::Relaxed) / 1000)
        .collect();
    lat_ms.sort_unstable();
    let avg_ms = if n > 0 {
        stats.c.lat_sum_us.load(Ordering::Relaxed) as f64 / 1000.0 / n as f64
    } else {
        0.0
    };
    let max_ms = stats.c.lat_max_us.load(Ordering::Relaxed) as f64 / 1000.0;
    println!(
        "{}",
        summary::final_line(n, args.size, secs, avg_ms, max_ms, &lat_ms)
    );
    if args.per_partition {
        per_partition(stats, n as usize);
    }
    let m = handle.metrics();
    closer();
    let (user, sys, maxrss) = rusage();
    let (cu, cs) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
    eprintln!(
        "producer_perf: driver {}, {} broker, user {user:.2} s, sys {sys:.2} s \
         (run: user {cu:.2} s, sys {cs:.2} s), {:.1} ns CPU/record (run), max RSS {maxrss} KiB, failed {failed}",
        args.driver,
        if _mock.is_some() {
            "in-process mock (its CPU included)"
        } else {
            "external"
        },
        if n > 0 { (cu + cs) * 1e9 / n as f64 } else { 0.0 },
    );
    eprintln!(
        "producer_perf: {} Produce requests, {} batches ({:.1} records and {:.0} bytes per batch), \
         {} retried records, {} connections",
        m.produce_requests,
        m.batches_sent,
        n as f64 / m.batches_sent.max(1) as f64,
        m.bytes_sent as f64 / m.batches_sent.max(1) as f64,
        m.records_retried,
        m.connects,
    );
    if failed > 0 {
        exit(1);
    }
}

struct Window {
    start: Instant,
    ok: u64,
    sum: u64,
}

impl Window {
    fn maybe_print(&mut self, stats: &Stats, size: usize) {
        let secs = self.start.elapsed().as_secs_f64();
        if secs < 5.0 {
            return;
        }
        let ok = stats.c.ok.load(Ordering::Relaxed);
        let sum = stats.c.lat_sum_us.load(Ordering::Relaxed);
        let max = stats.c.win_max_us.swap(0, Ordering::Relaxed);
        let n = ok - self.ok;
        if n > 0 {
            println!(
                "{n} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
                n as f64 / secs,
                (n * size as u64) as f64 / 1024.0 / 1024.0 / secs,
                (sum - self.sum) as f64 / 1000.0 / n as f64,
                max as f64 / 1000.0
            );
        }
        self.start = Instant::now();
        self.ok = ok;
        self.sum = sum;
    }
}

/// One stderr line per partition: records acknowledged, their share, and
/// their latency percentiles.
fn per_partition(stats: &Stats, n: usize) {
    let mut by_part: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
    for (l, p) in stats.lat_us.iter().zip(&stats.part).take(n) {
        by_part
            .entry(p.load(Ordering::Relaxed))
            .or_default()
            .push(l.load(Ordering::Relaxed));
    }
    for (p, mut lat) in by_part {
        lat.sort_unstable();
        let q = |f: f64| lat[((lat.len() as f64 * f) as usize).min(lat.len() - 1)] as f64 / 1000.0;
        eprintln!(
            "producer_perf: partition {p}: {} records ({:.1}%), {:.1} ms 50th, {:.1} ms 99th",
            lat.len(),
            lat.len() as f64 * 100.0 / n.max(1) as f64,
            q(0.5),
            q(0.99),
        );
    }
}
