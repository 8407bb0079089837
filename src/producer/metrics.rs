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
