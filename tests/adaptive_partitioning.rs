//! Adaptive partitioning (KIP-794, `partitioner.adaptive.partitioning.enable`
//! and `partitioner.availability.timeout.ms`) against a cluster with one slow
//! broker: keyless records lean away from its partitions, so the records'
//! delivery latency drops while the throughput holds.
//!
//! The tests run the core against the in-process mock over the simulated
//! network and clock of [`Pair`] (deterministic, no wall-clock timing). The
//! ignored `bench_*` case measures the same over loopback TCP with the
//! blocking driver and prints the figures:
//! `cargo test --release --all-features --test adaptive_partitioning -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use kafka_sansio::mock::{MockCluster, Pair};
use kafka_sansio::producer::{Event, Producer, ProducerConfig, ProducerRecord};

const TOPIC: &str = "adaptive";
const PARTITIONS: i32 = 6;
const SLOW: i32 = 1;

/// What one simulated run gave.
#[derive(Debug)]
struct Run {
    sent: usize,
    refused: usize,
    delivered: usize,
    /// Delivery latency of the records sent after the warm-up.
    p50: Duration,
    p99: Duration,
    /// From the first send to the last delivery.
    elapsed: Duration,
    /// Share of the records that went to the slow broker's partitions.
    slow_share: f64,
    /// Send indices, after the warm-up, of the records in the slow broker's partitions.
    slow_after_warmup: usize,
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// A core for the mock cluster with `base` settings, then `props`.
fn core(base: &[(&str, &str)], props: &[(&str, &str)], start: Instant) -> Producer {
    let mut all = vec![("bootstrap.servers", "localhost:9092")];
    all.extend_from_slice(base);
    all.extend_from_slice(props);
    let config = ProducerConfig::from_properties(all).unwrap();
    Producer::new(config, start, 1_700_000_000_000).unwrap()
}

/// Sends a 512-byte keyless record every `every` for `span`, then waits for
/// every outcome; `slow` makes broker [`SLOW`] slow.
fn simulate(
    props: &[(&str, &str)],
    every: Duration,
    span: Duration,
    slow: fn(&mut MockCluster),
) -> Run {
    let start = Instant::now();
    let producer = core(
        &[("linger.ms", "10"), ("kafka_sansio.rng.seed", "7")],
        props,
        start,
    );
    let mut cluster = MockCluster::new(3);
    cluster.create_topic(TOPIC, PARTITIONS).unwrap();
    slow(&mut cluster);
    let mut pair = Pair::new(producer, cluster, start);
    let warmup = start + Duration::from_millis(500);
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut latencies = Vec::new();
    let mut refused = 0;
    let mut delivered = 0;
    let mut last_delivery = start;
    let value = vec![b'x'; 512];
    let mut collect = |pair: &mut Pair, sent_at: &[Instant]| {
        for e in std::mem::take(&mut pair.events) {
            match e {
                Event::Delivered(d) => {
                    delivered += d.records.len();
                    last_delivery = pair.now;
                    for id in d.records.iter() {
                        let t = sent_at[id.0 as usize];
                        if t >= warmup {
                            latencies.push(pair.now - t);
                        }
                    }
                }
                Event::Failed(f) => panic!("{} records failed: {}", f.records.len(), f.error),
                _ => {}
            }
        }
    };
    while pair.now < start + span {
        let r = ProducerRecord::new(TOPIC, value.clone()).header("i", sent_at.len().to_string());
        match pair.core(|c, now| c.send(r, now)) {
            Ok(id) => {
                assert_eq!(id.0 as usize, sent_at.len());
                sent_at.push(pair.now);
            }
            Err(_) => refused += 1,
        }
        pair.advance(every);
        collect(&mut pair, &sent_at);
    }
    for _ in 0..600_000 {
        if pair.producer.is_idle() {
            break;
        }
        pair.advance(Duration::from_millis(1));
        collect(&mut pair, &sent_at);
    }
    assert!(pair.producer.is_idle(), "every record has its outcome");
    latencies.sort_unstable();
    let slow_parts: Vec<i32> = (0..PARTITIONS)
        .filter(|&p| pair.broker.leader(TOPIC, p) == Some(SLOW))
        .collect();
    assert!(!slow_parts.is_empty());
    let mut on_slow = 0;
    let mut slow_after_warmup = 0;
    for &p in &slow_parts {
        for r in pair.broker.records(TOPIC, p).unwrap() {
            on_slow += 1;
            let i: usize = std::str::from_utf8(r.headers[0].1.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            if sent_at[i] >= warmup {
                slow_after_warmup += 1;
            }
        }
    }
    Run {
        sent: sent_at.len(),
        refused,
        delivered,
        p50: quantile(&latencies, 0.5),
        p99: quantile(&latencies, 0.99),
        elapsed: last_delivery - start,
        slow_share: on_slow as f64 / sent_at.len() as f64,
        slow_after_warmup,
    }
}

/// Broker 1 serves one request per 50 ms: below the third of the batches
/// that uniform sticky partitioning gives it, so its queue grows.
fn slow_disk(c: &mut MockCluster) {
    c.set_service_time(SLOW, Duration::from_millis(50));
}

#[test]
fn adaptive_partitioning_leans_away_from_a_slow_broker() {
    let every = Duration::from_micros(200);
    let span = Duration::from_secs(3);
    let uniform = simulate(
        &[("partitioner.adaptive.partitioning.enable", "false")],
        every,
        span,
        slow_disk,
    );
    let adaptive = simulate(
        &[("partitioner.adaptive.partitioning.enable", "true")],
        every,
        span,
        slow_disk,
    );
    eprintln!("uniform:  {uniform:?}\nadaptive: {adaptive:?}");
    for r in [&uniform, &adaptive] {
        assert_eq!(r.refused, 0);
        assert_eq!(r.delivered, r.sent);
    }
    // Uniform: about a third to the slow broker, which falls behind.
    assert!(uniform.slow_share > 0.25, "{uniform:?}");
    assert!(
        adaptive.slow_share < uniform.slow_share * 0.8,
        "{adaptive:?}"
    );
    assert!(
        adaptive.p99 * 2 < uniform.p99,
        "{adaptive:?} vs {uniform:?}"
    );
    assert!(adaptive.p50 <= uniform.p50);
    // The same records, delivered no later.
    assert!(adaptive.elapsed <= uniform.elapsed);
}

/// Broker 1 answers after 3 s: with `partitioner.availability.timeout.ms`
/// its partitions, whose batches wait while it takes none, get no keyless
/// records once the timeout passed; adaptive alone still gives them some.
fn stalled(c: &mut MockCluster) {
    c.set_latency(SLOW, Duration::from_secs(3));
}

#[test]
fn availability_timeout_leaves_out_a_leader_that_takes_nothing() {
    let every = Duration::from_micros(500);
    let span = Duration::from_secs(2);
    let weighted = simulate(&[], every, span, stalled);
    let excluded = simulate(
        &[("partitioner.availability.timeout.ms", "100")],
        every,
        span,
        stalled,
    );
    eprintln!("weighted: {weighted:?}\nexcluded: {excluded:?}");
    assert!(weighted.slow_after_warmup > 0, "{weighted:?}");
    assert_eq!(excluded.slow_after_warmup, 0, "{excluded:?}");
    assert!(excluded.p99 < weighted.p99);
    for r in [&weighted, &excluded] {
        assert_eq!(r.delivered, r.sent);
    }
}

/// What one run over TCP gave.
#[derive(Debug)]
struct TcpRun {
    sent: usize,
    delivered: usize,
    /// Records and MB delivered per second, first send to last delivery.
    records_per_s: f64,
    mb_per_s: f64,
    p50: Duration,
    p99: Duration,
    slow_share: f64,
}

/// Offers `rate` 512-byte keyless records a second for `span` to a 3-broker
/// mock over loopback TCP whose broker [`SLOW`] takes `service` per request,
/// through the blocking driver; latency is send to callback.
fn tcp_run(props: &[(&str, &str)], rate: u64, span: Duration, service: Duration) -> TcpRun {
    use kafka_sansio::driver::blocking;
    use kafka_sansio::mock::MockServer;
    use std::sync::{Arc, Mutex};

    let server = MockServer::start(3).expect("mock cluster");
    server.with_cluster(|c| {
        c.create_topic(TOPIC, PARTITIONS).unwrap();
        c.set_service_time(SLOW, service);
    });
    let slow_parts: Vec<i32> = (0..PARTITIONS)
        .filter(|&p| server.with_cluster(|c| c.leader(TOPIC, p)) == Some(SLOW))
        .collect();
    let mut config = ProducerConfig::builder()
        .bootstrap_servers(&server.bootstrap_servers())
        .linger(Duration::from_millis(10));
    for (k, v) in props {
        config = config.set(k, v).unwrap();
    }
    let producer = blocking::Producer::new(config.build().unwrap()).unwrap();
    // (latency, partition) per delivered record.
    let seen: Arc<Mutex<Vec<(Duration, i32)>>> = Arc::default();
    let value = vec![b'x'; 512];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < span {
        // Paced by the clock: whatever is due by now goes out.
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let t = Instant::now();
            let seen = seen.clone();
            producer
                .send_with_callback(ProducerRecord::new(TOPIC, value.clone()), move |r| {
                    let md = r.expect("delivered");
                    seen.lock().unwrap().push((t.elapsed(), md.partition));
                })
                .unwrap();
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    producer.flush().unwrap();
    let elapsed = start.elapsed();
    producer.close(Duration::from_secs(30)).unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let mut lat: Vec<Duration> = seen.iter().map(|(d, _)| *d).collect();
    lat.sort_unstable();
    let slow = seen.iter().filter(|(_, p)| slow_parts.contains(p)).count();
    let delivered = seen.len();
    TcpRun {
        sent: sent as usize,
        delivered,
        records_per_s: delivered as f64 / elapsed.as_secs_f64(),
        mb_per_s: (delivered * value.len()) as f64 / elapsed.as_secs_f64() / 1e6,
        p50: quantile(&lat, 0.5),
        p99: quantile(&lat, 0.99),
        slow_share: slow as f64 / delivered as f64,
    }
}

/// The figures over TCP: uniform sticky, adaptive, and adaptive with the
/// availability timeout, with one broker slowed to 20 ms a request.
#[test]
#[ignore = "a benchmark: prints figures, run with --ignored --nocapture"]
fn bench_adaptive_partitioning_over_tcp() {
    let rate = 20_000;
    let span = Duration::from_secs(5);
    let service = Duration::from_millis(20);
    println!(
        "3 brokers, {PARTITIONS} partitions, broker {SLOW} serving a request per {service:?}; \
         {rate} keyless 512-byte records/s offered for {span:?}, linger.ms=10"
    );
    let none = Duration::ZERO;
    for (name, props, service) in [
        (
            "no slow broker, uniform",
            &[("partitioner.adaptive.partitioning.enable", "false")][..],
            none,
        ),
        ("no slow broker, adaptive", &[][..], none),
        (
            "uniform",
            &[("partitioner.adaptive.partitioning.enable", "false")][..],
            service,
        ),
        ("adaptive", &[][..], service),
        (
            "adaptive+availability 100ms",
            &[("partitioner.availability.timeout.ms", "100")][..],
            service,
        ),
    ] {
        let r = tcp_run(props, rate, span, service);
        assert_eq!(r.delivered, r.sent);
        println!(
            "{name:>28}: {:.0} records/s ({:.2} MB/s), p50 {:.1} ms, p99 {:.1} ms, {:.1}% to broker {SLOW}",
            r.records_per_s,
            r.mb_per_s,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.slow_share * 100.0
        );
    }
}

/// Partition counts per broker of `TOPIC` after `n` keyless records through
/// a cluster whose brokers 0, 1, 2 are in racks a, b, c.
fn spread_by_rack(props: &[(&str, &str)], n: usize) -> [usize; 3] {
    let start = Instant::now();
    let base = [
        ("linger.ms", "1"),
        ("batch.size", "1024"),
        ("kafka_sansio.rng.seed", "11"),
    ];
    let producer = core(&base, props, start);
    let mut cluster = MockCluster::new(3);
    cluster.create_topic(TOPIC, PARTITIONS).unwrap();
    for (node, rack) in ["a", "b", "c"].into_iter().enumerate() {
        cluster.set_rack(node as i32, Some(rack));
    }
    let mut pair = Pair::new(producer, cluster, start);
    for i in 0..n {
        let r = ProducerRecord::new(TOPIC, vec![b'x'; 200]).header("i", i.to_string());
        pair.core(|c, now| c.send(r, now)).unwrap();
        pair.advance(Duration::from_micros(500));
    }
    pair.core(|c, now| c.flush(now));
    pair.run_until_idle();
    let mut per_broker = [0; 3];
    for p in 0..PARTITIONS {
        let leader = pair.broker.leader(TOPIC, p).unwrap();
        per_broker[leader as usize] += pair.broker.records(TOPIC, p).unwrap().len();
    }
    assert_eq!(
        per_broker.iter().sum::<usize>(),
        n,
        "every record delivered"
    );
    per_broker
}

#[test]
fn rack_aware_partitioning_keeps_keyless_records_in_the_clients_rack() {
    let n = 2000;
    let rack = |r| spread_by_rack(&[("partitioner.rack.aware", "true"), ("client.rack", r)], n);
    // Only broker 1 is in rack b: every keyless record goes to its partitions.
    assert_eq!(rack("b"), [0, n, 0]);
    // No broker in rack z: all partitions, as without rack awareness.
    for spread in [
        rack("z"),
        spread_by_rack(&[("client.rack", "b")], n),
        spread_by_rack(&[("partitioner.rack.aware", "true")], n),
    ] {
        assert!(spread.iter().all(|&c| c > n / 10), "{spread:?}");
    }
}
