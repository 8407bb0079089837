//! The open-loop schedules of the perf examples (`--throughput R > 0`), as
//! `--pacing per-record|java` chooses them; `tests/interop/rdkafka_perf.c`
//! has the same two.
//!
//! Examples include it with `#[path = "support/pacing.rs"] mod pacing;`.

#![allow(dead_code)] // each includer uses a part of it

use std::time::Duration;

/// How an open loop spaces its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Record `i` is due at `start + i/R`; the sender sleeps until then, so
    /// every record is sent on its own (a sleep per record), and its latency
    /// counts from that time.
    PerRecord,
    /// Kafka's `ThroughputThrottler`, as `kafka-producer-perf-test` paces:
    /// while ahead of the rate, each record adds `1/R` to a sleep deficit,
    /// slept once it reaches 2 ms, so records go in bursts; latency counts
    /// from the send.
    Java,
}

impl Pacing {
    /// Parses `per-record` or `java`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "per-record" => Some(Pacing::PerRecord),
            "java" => Some(Pacing::Java),
            _ => None,
        }
    }
}

/// Java's `MIN_SLEEP_NS`: the least deficit it sleeps.
const MIN_SLEEP_NS: u64 = 2_000_000;

/// Paces an open loop of `rate` records a second on a nanosecond clock.
pub struct Pacer {
    pacing: Pacing,
    rate: f64,
    interval_ns: f64,
    start_ns: u64,
    deficit_ns: u64,
}

impl Pacer {
    /// A pacer starting at `start_ns`.
    pub fn new(pacing: Pacing, rate: f64, start_ns: u64) -> Self {
        Pacer {
            pacing,
            rate,
            interval_ns: 1e9 / rate,
            start_ns,
            deficit_ns: 0,
        }
    }

    /// Waits until record `i` may be sent; returns the time its latency
    /// counts from. Sleeps, never spins: a spinning sender would take a core
    /// from the producer's own threads (and the broker) on a small machine.
    pub fn wait(&mut self, i: u64, clock: impl Fn() -> u64) -> u64 {
        match self.pacing {
            Pacing::PerRecord => {
                let due = self.start_ns + (i as f64 * self.interval_ns) as u64;
                loop {
                    let now = clock();
                    if now >= due {
                        return due;
                    }
                    std::thread::sleep(Duration::from_nanos(due - now));
                }
            }
            Pacing::Java => {
                let now = clock();
                // Java asks after sending record i-1 whether i-1 records in
                // the time since the start are ahead of the rate.
                let elapsed_s = now.saturating_sub(self.start_ns) as f64 / 1e9;
                if i == 0 || elapsed_s <= 0.0 || (i - 1) as f64 / elapsed_s <= self.rate {
                    return now;
                }
                self.deficit_ns += self.interval_ns as u64;
                if self.deficit_ns < MIN_SLEEP_NS {
                    return now;
                }
                let until = now + self.deficit_ns;
                let mut t = now;
                while t < until {
                    std::thread::sleep(Duration::from_nanos(until - t));
                    t = clock();
                }
                self.deficit_ns = 0;
                t
            }
        }
    }
}
