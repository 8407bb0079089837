//! What the producer's metrics cost: the sensors behind
//! [`Producer::metrics_snapshot`] are recorded per batch, request and read,
//! never per record, so a record costs the same whether anyone reads them or
//! not; reading them (or building the statistics JSON) is a bounded walk
//! over the sensors, topics and partitions.
//!
//! The cases are ignored benchmarks that print figures:
//! `cargo test --release --features json --test metrics_cost -- --ignored --nocapture --test-threads 1`
//! (`METRICS_COST_RUNS=N` alternated runs of each reading, default 5;
//! `METRICS_COST_WORKLOAD=batched|single` one workload only).
//! They drive the core against the in-memory [`MockCluster`] through a
//! [`Pair`] whose meter times only the core's own calls, so the mock
//! broker's decoding and storing of the batches is left out.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_sansio::mock::{MockCluster, Pair};
use kafka_sansio::producer::{Event, Producer, ProducerConfig, ProducerRecord};

thread_local! {
    static ENTERED: Cell<Option<Instant>> = const { Cell::new(None) };
    static CORE_NS: Cell<u64> = const { Cell::new(0) };
}

/// The meter: adds the time spent inside each call into the core.
fn meter(inside: bool) {
    if inside {
        ENTERED.with(|e| e.set(Some(Instant::now())));
    } else if let Some(t) = ENTERED.with(Cell::take) {
        let ns = t.elapsed().as_nanos() as u64;
        CORE_NS.with(|c| c.set(c.get() + ns));
    }
}

fn core_ns() -> u64 {
    CORE_NS.with(Cell::get)
}

/// A producer wired to a one-broker mock whose answers are due at once.
fn pair(props: &[(&str, &str)], topics: &[(&str, i32)]) -> Pair {
    let mut all = vec![("bootstrap.servers", "localhost:9092")];
    all.extend_from_slice(props);
    let config = ProducerConfig::from_properties(all).unwrap();
    let now = Instant::now();
    let mut mock = MockCluster::new(1);
    for &(t, n) in topics {
        mock.create_topic(t, n).unwrap();
    }
    let producer = Producer::new(config, now, 1_700_000_000_000).unwrap();
    let mut pair = Pair::new(producer, mock, now);
    pair.set_meter(meter);
    pair
}

/// Runs until idle and counts the records delivered; any failure ends the bench.
fn pump(pair: &mut Pair) -> u64 {
    pair.run_until_idle();
    let mut n = 0;
    for ev in pair.events.drain(..) {
        match ev {
            Event::Delivered(d) => n += d.records.len() as u64,
            other => panic!("unexpected event {other:?}"),
        }
    }
    n
}

/// A workload: the producer's properties and how often the pair is pumped.
struct Workload {
    key: &'static str,
    name: &'static str,
    props: &'static [(&'static str, &'static str)],
    /// Sends between pumps; 1 with `linger.ms=0` makes every record its own
    /// batch and request, the case where per-batch work is per-record work.
    pump_every: u64,
    records: u64,
}

/// How the metrics are read during a run.
#[derive(Clone, Copy, PartialEq)]
enum Reading {
    /// Never.
    Never,
    /// `metrics_snapshot()` once a second of wall-clock time, as a dashboard scrapes.
    EverySecond,
}

/// One run: core nanoseconds per record, wall nanoseconds per record, and
/// records per batch.
fn run(w: &Workload, reading: Reading) -> (f64, f64, f64) {
    let mut p = pair(w.props, &[("t", 4)]);
    let topic: Arc<str> = "t".into();
    let value = Bytes::from_static(&[b'x'; 100]);
    let send = |p: &mut Pair, n: u64| {
        let mut delivered = 0;
        for i in 0..n {
            let record = ProducerRecord::new(topic.clone(), value.clone());
            p.now += Duration::from_micros(1);
            p.core(|c, now| c.send(record, now)).expect("accepted");
            if i % w.pump_every == w.pump_every - 1 {
                delivered += pump(p);
            }
        }
        p.core(|c, now| c.flush(now));
        delivered + pump(p)
    };
    // Warm-up: metadata, producer id, connection, the first batches.
    assert_eq!(send(&mut p, 20_000), 20_000);
    let batches0 = p.producer.metrics().batches_sent;
    let (core0, wall0) = (core_ns(), Instant::now());
    let mut last_read = wall0;
    let mut snapshots = 0;
    let mut delivered = 0;
    let chunk = 1024;
    let mut left = w.records;
    while left > 0 {
        let n = left.min(chunk);
        delivered += send(&mut p, n);
        left -= n;
        if reading == Reading::EverySecond && last_read.elapsed() >= Duration::from_secs(1) {
            let m = p.core(|c, now| c.metrics_snapshot(now));
            assert!(m
                .iter()
                .any(|m| m.name == "record-send-rate" && m.value > 0.0));
            last_read = Instant::now();
            snapshots += 1;
        }
    }
    let wall = wall0.elapsed().as_nanos() as f64;
    let core = (core_ns() - core0) as f64;
    assert_eq!(delivered, w.records);
    if reading == Reading::EverySecond && wall > 1.5e9 {
        assert!(snapshots > 0);
    }
    let batches = p.producer.metrics().batches_sent - batches0;
    let n = w.records as f64;
    (core / n, wall / n, n / batches.max(1) as f64)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore = "a benchmark: prints figures, run with --ignored --nocapture"]
fn bench_records_cost_the_same_with_the_metrics_read() {
    let runs: usize = std::env::var("METRICS_COST_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let workloads = [
        Workload {
            key: "batched",
            name: "batched (linger.ms=5, batch.size=16384, 100 B)",
            props: &[("linger.ms", "5"), ("batch.size", "16384")],
            pump_every: 1000,
            records: 2_000_000,
        },
        Workload {
            key: "single",
            name: "one record per batch and request (linger.ms=0, pumped per send)",
            props: &[("linger.ms", "0")],
            pump_every: 1,
            records: 200_000,
        },
    ];
    // METRICS_COST_WORKLOAD=batched|single runs one of them (e.g. under a profiler).
    let only = std::env::var("METRICS_COST_WORKLOAD").ok();
    for w in workloads
        .iter()
        .filter(|w| only.as_deref().is_none_or(|o| w.key == o))
    {
        let mut results: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
        let mut per_batch = 0.0;
        // Alternated, so that a change in the machine's load falls on both.
        for _ in 0..runs {
            for (i, reading) in [Reading::Never, Reading::EverySecond]
                .into_iter()
                .enumerate()
            {
                let (core, wall, rpb) = run(w, reading);
                results[i].push((core, wall));
                per_batch = rpb;
            }
        }
        eprintln!(
            "{} ({:.1} records per batch), {runs} alternated runs of {} records:",
            w.name, per_batch, w.records
        );
        for (i, label) in ["(a) never read", "(b) metrics_snapshot() every 1 s"]
            .iter()
            .enumerate()
        {
            let mut core: Vec<f64> = results[i].iter().map(|r| r.0).collect();
            let mut wall: Vec<f64> = results[i].iter().map(|r| r.1).collect();
            let (cmin, cmax) = (
                core.iter().copied().fold(f64::MAX, f64::min),
                core.iter().copied().fold(0.0, f64::max),
            );
            let (wmin, wmax) = (
                wall.iter().copied().fold(f64::MAX, f64::min),
                wall.iter().copied().fold(0.0, f64::max),
            );
            eprintln!(
                "  {label}: core {:.1} ns/record (min {cmin:.1}, max {cmax:.1}), \
                 with the mock {:.1} ns/record (min {wmin:.1}, max {wmax:.1})",
                median(&mut core),
                median(&mut wall),
            );
        }
    }
}

/// Median wall time of `f` over `n` calls, in microseconds.
fn time_us(n: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64 / 1000.0
        })
        .collect();
    median(&mut v)
}

#[test]
#[ignore = "a benchmark: prints figures, run with --ignored --nocapture"]
fn bench_one_snapshot_and_one_statistics_json() {
    // (topics, partitions each): 1, 100 and 1,000 partitions in one topic,
    // and 1,000 over 100 topics (the snapshot has a group per topic).
    for (topics, parts) in [(1usize, 1i32), (1, 100), (1, 1000), (100, 10)] {
        let names: Vec<String> = (0..topics).map(|i| format!("t{i}")).collect();
        let spec: Vec<(&str, i32)> = names.iter().map(|n| (n.as_str(), parts)).collect();
        let mut p = pair(&[("linger.ms", "0")], &spec);
        let value = Bytes::from_static(&[b'x'; 100]);
        // A record to every partition, so that each has its state and counters.
        let mut sent = 0;
        for n in &names {
            for part in 0..parts {
                let mut r = ProducerRecord::new(n.as_str(), value.clone());
                r.partition = Some(part);
                p.core(|c, now| c.send(r, now)).expect("accepted");
                sent += 1;
            }
            p.now += Duration::from_millis(1);
            pump(&mut p);
        }
        let mut delivered = 0;
        for _ in 0..100 {
            p.now += Duration::from_millis(10);
            p.core(|c, now| c.handle_timeout(now));
            delivered += pump(&mut p);
            if p.producer.is_idle() {
                break;
            }
        }
        assert!(p.producer.is_idle(), "{delivered} of {sent} delivered");
        let now = p.now;
        let mut len = 0;
        let snap = time_us(201, || {
            len = std::hint::black_box(p.producer.metrics_snapshot(now)).len()
        });
        #[cfg(feature = "json")]
        let json = {
            let mut bytes = 0;
            let us = time_us(51, || {
                bytes = std::hint::black_box(p.producer.statistics_json(now)).len()
            });
            format!("statistics_json() {us:.1} µs ({bytes} bytes)")
        };
        #[cfg(not(feature = "json"))]
        let json = "statistics_json() needs --features json".to_string();
        eprintln!(
            "{topics} topic(s) x {parts} partition(s): metrics_snapshot() {snap:.1} µs ({len} metrics), {json}"
        );
    }
}
