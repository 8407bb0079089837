//! The final line of Kafka's `kafka-producer-perf-test`, as the perf
//! examples print it (MB = 1024 x 1024 bytes, whole-millisecond percentiles,
//! as the Java tool prints them).
//!
//! Examples include it with `#[path = "support/summary.rs"] mod summary;`.

/// The line for `n` records of `record_size` bytes over `secs`, with the
/// mean and largest latency and the latencies in ms, sorted.
pub fn final_line(
    n: u64,
    record_size: usize,
    secs: f64,
    avg_ms: f64,
    max_ms: f64,
    sorted_ms: &[u32],
) -> String {
    let pct = |p: f64| -> u32 {
        if sorted_ms.is_empty() {
            return 0;
        }
        sorted_ms[((sorted_ms.len() as f64 * p) as usize).min(sorted_ms.len() - 1)]
    };
    let per_sec = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
    format!(
        "{n} records sent, {:.1} records/sec ({:.2} MB/sec), {avg_ms:.2} ms avg latency, \
         {max_ms:.2} ms max latency, {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
        per_sec(n as f64),
        per_sec(n as f64 * record_size as f64 / 1024.0 / 1024.0),
        pct(0.5),
        pct(0.95),
        pct(0.99),
        pct(0.999),
    )
}
