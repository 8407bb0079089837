//! The counters a producer keeps.

/// Counters kept by the core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Records acknowledged.
    pub records_delivered: u64,
    /// Records failed for good.
    pub records_failed: u64,
    /// Record attempts retried.
    pub records_retried: u64,
    /// Batches sent (attempts).
    pub batches_sent: u64,
    /// Batch bytes sent.
    pub bytes_sent: u64,
    /// Produce requests sent.
    pub produce_requests: u64,
    /// Produce responses received.
    pub produce_responses: u64,
    /// Sum of Produce request latencies in microseconds.
    pub request_latency_us_sum: u64,
    /// Largest Produce request latency in microseconds.
    pub request_latency_us_max: u64,
    /// Metadata requests sent.
    pub metadata_requests: u64,
    /// Connections opened.
    pub connects: u64,
    /// Connections lost or reset.
    pub disconnects: u64,
    /// Producer epoch bumps (KIP-360).
    pub epoch_bumps: u64,
    /// Rebootstraps: the cluster view given up for `bootstrap.servers`
    /// (`metadata.recovery.strategy`).
    pub rebootstraps: u64,
    /// Bytes of responses after the last field of their version, skipped as
    /// Java skips them (a broker newer than its version, or a buggy one).
    pub response_bytes_skipped: u64,
}

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One value of [`Producer::metrics_snapshot`](super::Producer::metrics_snapshot),
/// named as the Java producer names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Java's metric group: `producer-metrics`, `producer-topic-metrics`
    /// or `producer-node-metrics`.
    pub group: &'static str,
    /// Java's metric name, e.g. `record-send-rate`.
    pub name: &'static str,
    /// Java's tags: `client-id`, and `topic` or `node-id` in their groups.
    pub tags: Vec<(&'static str, String)>,
    /// The value; `NaN` for an average or maximum of no samples, as in Java.
    pub value: f64,
}

/// One sample of a windowed statistic.
#[derive(Debug, Clone, Copy)]
struct Sample {
    start: Instant,
    sum: f64,
    count: u64,
    max: f64,
}

/// A statistic over `metrics.num.samples` samples of
/// `metrics.sample.window.ms` each, as Java's `SampledStat`: a record goes
/// into the current sample, or starts the next one (reusing the oldest)
/// once the current one is a window old; samples older than all windows
/// together are left out of every measure.
#[derive(Debug, Clone, Default)]
pub(super) struct Windowed {
    samples: Vec<Sample>,
    current: usize,
    /// Until when the current sample takes records, so that a record
    /// compares two instants instead of taking a duration.
    until: Until,
}

/// The end of the current sample.
#[derive(Debug, Clone, Copy, Default)]
enum Until {
    /// None yet, or a zero window: the next record starts a sample.
    #[default]
    Now,
    /// Records before this instant go into the current sample.
    At(Instant),
    /// The window does not fit an `Instant`: the sample never ends.
    Never,
}

impl Windowed {
    pub fn record(&mut self, value: f64, now: Instant, cfg: &WindowCfg) {
        let open = match self.until {
            Until::Now => false,
            Until::At(t) => now < t,
            Until::Never => true,
        };
        if !open {
            self.next_sample(now, cfg);
        }
        let s = &mut self.samples[self.current];
        s.sum += value;
        s.count += 1;
        s.max = s.max.max(value);
    }

    /// Starts a sample at `now` in the next slot (the oldest once all are used).
    #[cold]
    fn next_sample(&mut self, now: Instant, cfg: &WindowCfg) {
        let fresh = Sample {
            start: now,
            sum: 0.0,
            count: 0,
            max: f64::NEG_INFINITY,
        };
        if self.samples.is_empty() {
            self.samples.push(fresh);
        } else {
            self.current = (self.current + 1) % cfg.samples;
            match self.samples.get_mut(self.current) {
                Some(s) => *s = fresh,
                None => self.samples.push(fresh),
            }
        }
        self.until = if cfg.window.is_zero() {
            Until::Now
        } else {
            now.checked_add(cfg.window).map_or(Until::Never, Until::At)
        };
    }

    fn live<'a>(&'a self, now: Instant, cfg: &'a WindowCfg) -> impl Iterator<Item = &'a Sample> {
        let span = cfg.window * cfg.samples as u32;
        self.samples
            .iter()
            .filter(move |s| now.saturating_duration_since(s.start) < span)
    }

    /// Mean of the values recorded (`NaN` without any).
    pub fn avg(&self, now: Instant, cfg: &WindowCfg) -> f64 {
        let (sum, n) = self
            .live(now, cfg)
            .fold((0.0, 0u64), |(s, n), x| (s + x.sum, n + x.count));
        if n == 0 {
            f64::NAN
        } else {
            sum / n as f64
        }
    }

    /// Largest value recorded (`NaN` without any).
    pub fn max(&self, now: Instant, cfg: &WindowCfg) -> f64 {
        let m = self.live(now, cfg).filter(|s| s.count > 0).map(|s| s.max);
        m.reduce(f64::max).unwrap_or(f64::NAN)
    }

    /// Sum of the values per second, over Java's `Rate` window: from the
    /// oldest live sample's start, but never less than all windows but one.
    pub fn rate(&self, now: Instant, cfg: &WindowCfg) -> f64 {
        self.per_second(now, cfg, |s| s.sum)
    }

    /// Values recorded per second (Java's `Rate(WindowedCount)`).
    pub fn count_rate(&self, now: Instant, cfg: &WindowCfg) -> f64 {
        self.per_second(now, cfg, |s| s.count as f64)
    }

    fn per_second(&self, now: Instant, cfg: &WindowCfg, f: impl Fn(&Sample) -> f64) -> f64 {
        let total: f64 = self.live(now, cfg).map(&f).sum();
        let Some(oldest) = self.live(now, cfg).map(|s| s.start).min() else {
            return 0.0;
        };
        let mut elapsed = now.saturating_duration_since(oldest);
        let full = if cfg.window.is_zero() {
            0
        } else {
            (elapsed.as_nanos() / cfg.window.as_nanos()) as u32
        };
        let min_full = cfg.samples as u32 - 1;
        if full < min_full {
            elapsed += cfg.window * (min_full - full);
        }
        if elapsed.is_zero() {
            return 0.0;
        }
        total / elapsed.as_secs_f64()
    }
}

/// `metrics.sample.window.ms` and `metrics.num.samples`.
#[derive(Debug, Clone, Copy)]
pub(super) struct WindowCfg {
    pub window: Duration,
    pub samples: usize,
}

/// The statistics behind Java's producer metrics, each recorded per batch,
/// request, read or connection, never per record.
#[derive(Debug, Default)]
pub(super) struct Sensors {
    pub record_send: Windowed,
    pub record_send_total: u64,
    pub record_error: Windowed,
    pub record_retry: Windowed,
    /// A batch's mean record size (uncompressed bytes over records).
    pub record_size: Windowed,
    pub batch_size: Windowed,
    pub compression_rate: Windowed,
    pub records_per_request: Windowed,
    /// Milliseconds from a batch's creation to its request.
    pub queue_time: Windowed,
    /// Milliseconds from a Produce request to its answer.
    pub request_latency: Windowed,
    /// Bytes of each request (every API).
    pub requests: Windowed,
    /// Bytes of each read handed to the core.
    pub incoming: Windowed,
    pub throttle: Windowed,
    pub connection_creation: Windowed,
    /// Nanoseconds senders waited for `buffer.memory`, reported by drivers.
    pub buffer_wait_ns_total: u64,
    /// Senders waiting for `buffer.memory` now, reported by drivers.
    pub waiting_threads: usize,
    /// `record-send-rate` per topic, by topic position.
    pub topic_send: Vec<Windowed>,
    /// `request-latency-*` per node.
    pub node_latency: BTreeMap<i32, Windowed>,
    /// When the producer was made (the statistics' `age`).
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pub started: Option<Instant>,
    /// Per-broker counters of the statistics JSON.
    pub peers: super::statistics::Peers,
}

impl super::Producer {
    pub(super) fn window(&self) -> WindowCfg {
        WindowCfg {
            window: self.config.metrics_sample_window,
            samples: self.config.metrics_num_samples.max(1),
        }
    }

    /// Java's producer metrics at `now` (see [`Metric`]).
    pub(super) fn snapshot(&self, now: Instant) -> Vec<Metric> {
        let w = self.window();
        let s = &self.sensors;
        let client = || vec![("client-id", self.config.client_id.clone())];
        let mut out = Vec::with_capacity(32);
        let mut push = |name, value| {
            out.push(Metric {
                group: "producer-metrics",
                name,
                tags: client(),
                value,
            })
        };
        push("record-send-rate", s.record_send.rate(now, &w));
        push("record-send-total", s.record_send_total as f64);
        push("record-error-rate", s.record_error.rate(now, &w));
        push("record-retry-rate", s.record_retry.rate(now, &w));
        push("record-size-avg", s.record_size.avg(now, &w));
        push("record-size-max", s.record_size.max(now, &w));
        push("batch-size-avg", s.batch_size.avg(now, &w));
        push("batch-size-max", s.batch_size.max(now, &w));
        push(
            "records-per-request-avg",
            s.records_per_request.avg(now, &w),
        );
        push("compression-rate-avg", s.compression_rate.avg(now, &w));
        push("record-queue-time-avg", s.queue_time.avg(now, &w));
        push("record-queue-time-max", s.queue_time.max(now, &w));
        push("request-latency-avg", s.request_latency.avg(now, &w));
        push("request-latency-max", s.request_latency.max(now, &w));
        push("request-rate", s.requests.count_rate(now, &w));
        push("request-size-avg", s.requests.avg(now, &w));
        push("outgoing-byte-rate", s.requests.rate(now, &w));
        push("incoming-byte-rate", s.incoming.rate(now, &w));
        push("produce-throttle-time-avg", s.throttle.avg(now, &w));
        push("produce-throttle-time-max", s.throttle.max(now, &w));
        let total = self.config.buffer_memory;
        push("buffer-total-bytes", total as f64);
        push(
            "buffer-available-bytes",
            total.saturating_sub(self.memory.buffered) as f64,
        );
        push(
            "bufferpool-wait-time-ns-total",
            s.buffer_wait_ns_total as f64,
        );
        // The name before KIP-773 (also nanoseconds), which dashboards still read.
        push("bufferpool-wait-time-total", s.buffer_wait_ns_total as f64);
        push("waiting-threads", s.waiting_threads as f64);
        push("connection-count", self.net.conns.len() as f64);
        push(
            "connection-creation-rate",
            s.connection_creation.count_rate(now, &w),
        );
        // Seconds since the last usable Metadata answer, as Java's gauge.
        let age = self
            .cluster
            .metadata_last
            .map_or(f64::NAN, |t| now.saturating_duration_since(t).as_secs_f64());
        push("metadata-age", age);
        for (i, t) in s.topic_send.iter().enumerate() {
            let mut tags = client();
            tags.push(("topic", self.topics.names()[i].to_string()));
            out.push(Metric {
                group: "producer-topic-metrics",
                name: "record-send-rate",
                tags,
                value: t.rate(now, &w),
            });
        }
        for (node, l) in &s.node_latency {
            for (name, value) in [
                ("request-latency-avg", l.avg(now, &w)),
                ("request-latency-max", l.max(now, &w)),
            ] {
                let mut tags = client();
                tags.push(("node-id", format!("node-{node}")));
                out.push(Metric {
                    group: "producer-node-metrics",
                    name,
                    tags,
                    value,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{WindowCfg, Windowed};

    fn cfg(window_ms: u64) -> WindowCfg {
        WindowCfg {
            window: Duration::from_millis(window_ms),
            samples: 2,
        }
    }

    #[test]
    fn a_sample_takes_records_for_one_window_then_the_oldest_is_reused() {
        let c = cfg(1000);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut w = Windowed::default();
        assert!(w.avg(t0, &c).is_nan());
        w.record(1.0, ms(0), &c);
        w.record(3.0, ms(999), &c);
        // One sample so far: [0, 1000).
        assert_eq!(w.samples.len(), 1);
        assert_eq!((w.avg(ms(999), &c), w.max(ms(999), &c)), (2.0, 3.0));
        // At the window's end a second sample starts.
        w.record(10.0, ms(1000), &c);
        assert_eq!(w.samples.len(), 2);
        assert_eq!(w.avg(ms(1000), &c), 14.0 / 3.0);
        // Past both windows the first sample's slot is reused, from that record on.
        w.record(20.0, ms(2500), &c);
        assert_eq!((w.samples.len(), w.current), (2, 0));
        assert_eq!(w.avg(ms(2500), &c), 15.0);
        assert_eq!(w.max(ms(2500), &c), 20.0);
        w.record(30.0, ms(3499), &c);
        assert_eq!(w.current, 0, "[2500, 3500) still takes records");
        assert_eq!(w.avg(ms(3499), &c), 25.0, "the sample at 1000 aged out");
        // A record before a sample's start (a driver's clock is not ours)
        // stays in the current sample.
        w.record(40.0, ms(2000), &c);
        assert_eq!((w.current, w.samples[0].count), (0, 3));
    }

    #[test]
    fn a_zero_window_starts_a_sample_per_record_and_a_huge_one_never_ends() {
        let t0 = Instant::now();
        let mut w = Windowed::default();
        for i in 0..3 {
            w.record(f64::from(i), t0, &cfg(0));
            assert_eq!(w.current, i as usize % 2);
        }
        let forever = WindowCfg {
            window: Duration::MAX,
            samples: 2,
        };
        let mut w = Windowed::default();
        w.record(1.0, t0, &forever);
        w.record(2.0, t0 + Duration::from_secs(1 << 40), &forever);
        assert_eq!((w.samples.len(), w.samples[0].count), (1, 2));
    }

    /// What one `Windowed::record` costs, the unit of the sensor work a
    /// batch carries (about a dozen: three when it closes, three when it is
    /// sent, two per request, four per answer); tests/metrics_cost.rs sets
    /// that against the cost of a record.
    /// `cargo test --release --lib producer::metrics -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: prints figures, run with --ignored --nocapture"]
    fn bench_windowed_record() {
        let cfg = WindowCfg {
            window: Duration::from_secs(30),
            samples: 2,
        };
        let start = Instant::now();
        let n = 20_000_000u64;
        let mut runs = Vec::new();
        for _ in 0..5 {
            let mut w = Windowed::default();
            let mut now = start;
            let t = Instant::now();
            for i in 0..n {
                // A microsecond apart: a sample rolls over every 30 s, as in a busy producer.
                now += Duration::from_micros(1);
                w.record(std::hint::black_box(i as f64), now, &cfg);
            }
            std::hint::black_box(&w);
            runs.push(t.elapsed().as_nanos() as f64 / n as f64);
        }
        runs.sort_by(f64::total_cmp);
        eprintln!(
            "Windowed::record: {:.2} ns/call (median of 5; min {:.2}, max {:.2})",
            runs[2], runs[0], runs[4]
        );
    }
}
