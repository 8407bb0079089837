//! Every key of Java 4.x's `ProducerConfig`, and what this producer does
//! with it: the one table `ProducerConfig::set` is checked against and
//! docs/configuration.md is generated from.

/// What the producer does with a Java key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// The key means here what it means in Java.
    Honoured,
    /// Accepted and validated as Java validates it, with no effect here.
    NoOp,
    /// Refused with [`ConfigError::InvalidValue`](super::ConfigError::InvalidValue):
    /// accepting it would promise what this producer does not do.
    Refused,
    /// Handled with the TLS/SASL keys (`security.*`, `ssl.*`, `sasl.*`).
    TlsSasl,
}

impl Handling {
    /// The word the documentation table shows.
    pub fn label(self) -> &'static str {
        match self {
            Handling::Honoured => "honoured",
            Handling::NoOp => "no-op",
            Handling::Refused => "refused",
            Handling::TlsSasl => "see TLS/SASL",
        }
    }
}

/// One Java producer key.
#[derive(Debug, Clone, Copy)]
pub struct JavaKey {
    /// The key.
    pub key: &'static str,
    /// What is done with it.
    pub handling: Handling,
    /// Why, or how it is honoured.
    pub why: &'static str,
    /// A value Java accepts for it (what the table test sets).
    pub example: &'static str,
}

const fn k(
    key: &'static str,
    handling: Handling,
    example: &'static str,
    why: &'static str,
) -> JavaKey {
    JavaKey {
        key,
        handling,
        why,
        example,
    }
}

use Handling::{Honoured, NoOp, Refused, TlsSasl};

/// Java 4.x `ProducerConfig`'s keys, in the order of its definitions.
pub const JAVA_KEYS: &[JavaKey] = &[
    k("bootstrap.servers", Honoured, "127.0.0.1:9092", "Addresses the first metadata is asked of, and rebootstraps start over from."),
    k("client.dns.lookup", Honoured, "use_all_dns_ips", "Drivers resolve each host and try every address in turn (`use_all_dns_ips`). `resolve_canonical_bootstrap_servers_only` also does that: Java's extra step, a reverse lookup to the canonical name, serves Kerberos (SASL/GSSAPI) only."),
    k("buffer.memory", Honoured, "33554432", "Bytes batches and waiting records may hold; `send` then waits up to `max.block.ms`."),
    k("retries", Honoured, "2147483647", "Attempts of a batch after its first, within `delivery.timeout.ms`."),
    k("acks", Honoured, "all", "Sent in every Produce request; `0` completes a record once written."),
    k("compression.type", Honoured, "lz4", "Codec of every batch (codecs behind the `gzip`/`snappy`/`lz4`/`zstd` features)."),
    k("compression.gzip.level", Honoured, "6", "Level for gzip batches only (-1 = codec default, 1-9)."),
    k("compression.lz4.level", Honoured, "9", "Level for lz4 batches only (1-17)."),
    k("compression.zstd.level", Honoured, "3", "Level for zstd batches only (-131072 to 22)."),
    k("batch.size", Honoured, "16384", "Target size of a batch; 0 is taken as 1 byte (one record per batch)."),
    k("partitioner.adaptive.partitioning.enable", NoOp, "true", "Adaptive partitioning (KIP-794) is not implemented: keyless records go to the sticky partition, which moves on after `batch.size` bytes."),
    k("partitioner.availability.timeout.ms", NoOp, "0", "Part of adaptive partitioning (KIP-794), not implemented."),
    k("partitioner.ignore.keys", Honoured, "false", "Keyed records are placed as keyless ones."),
    k("linger.ms", Honoured, "5", "How long a batch waits for more records."),
    k("delivery.timeout.ms", Honoured, "120000", "Bound from `send` to the record's outcome."),
    k("client.id", Honoured, "my-app", "Sent in every request header."),
    k("send.buffer.bytes", NoOp, "131072", "Validated (-1 = OS default) and kept in `ProducerConfig::send_buffer_bytes`, but the drivers leave SO_SNDBUF to the OS: neither std's nor mio's `TcpStream` can set it without `unsafe` or another dependency."),
    k("receive.buffer.bytes", NoOp, "32768", "Validated (-1 = OS default) and kept in `ProducerConfig::receive_buffer_bytes`, but the drivers leave SO_RCVBUF to the OS: neither std's nor mio's `TcpStream` can set it without `unsafe` or another dependency."),
    k("max.request.size", Honoured, "1048576", "Largest Produce request, and largest record."),
    k("reconnect.backoff.ms", Honoured, "50", "First wait before reconnecting to an address, doubling per failure."),
    k("reconnect.backoff.max.ms", Honoured, "1000", "Cap of the reconnect wait."),
    k("retry.backoff.ms", Honoured, "100", "First wait before a batch is retried, doubling per attempt."),
    k("retry.backoff.max.ms", Honoured, "1000", "Cap of the retry wait."),
    k("enable.metrics.push", NoOp, "true", "Client telemetry (KIP-714) is not implemented: nothing is pushed."),
    k("max.block.ms", Honoured, "60000", "How long records may wait for metadata or memory."),
    k("request.timeout.ms", Honoured, "30000", "A request unanswered this long resets its connection."),
    k("metadata.max.age.ms", Honoured, "300000", "Metadata is refreshed at least this often."),
    k("metadata.max.idle.ms", Honoured, "300000", "A topic no batch was opened for this long is left out of Metadata requests; the next batch for it asks for its metadata again (at least 5000)."),
    k("metrics.sample.window.ms", Honoured, "30000", "Kept as `ProducerConfig::metrics_sample_window` for windowed metrics."),
    k("metrics.num.samples", Honoured, "2", "Kept as `ProducerConfig::metrics_num_samples` for windowed metrics (at least 1)."),
    k("metrics.recording.level", NoOp, "INFO", "Every metric is recorded, at no per-record cost."),
    k("metric.reporters", NoOp, "org.apache.kafka.common.metrics.JmxReporter", "Java classes; metrics are read from the producer instead."),
    k("max.in.flight.requests.per.connection", Honoured, "5", "Requests awaiting answers per connection (at most 5 with idempotence)."),
    k("key.serializer", NoOp, "org.apache.kafka.common.serialization.StringSerializer", "Java classes; records are given as bytes (or through `serialize`)."),
    k("value.serializer", NoOp, "org.apache.kafka.common.serialization.StringSerializer", "Java classes; records are given as bytes (or through `serialize`)."),
    k("socket.connection.setup.timeout.ms", Honoured, "10000", "First connect timeout of an address."),
    k("socket.connection.setup.timeout.max.ms", Honoured, "30000", "The connect timeout doubles with each failed connect to an address (jittered by 20%) up to this, as Java's; a connect that succeeds starts it over."),
    k("connections.max.idle.ms", Honoured, "540000", "A connection with nothing in flight and no traffic this long is closed, and reopened when needed (-1: never)."),
    k("partitioner.class", NoOp, "org.apache.kafka.clients.producer.RoundRobinPartitioner", "Java classes cannot be loaded; install a partitioner with `Producer::set_partitioner`."),
    k("interceptor.classes", NoOp, "", "Java classes cannot be loaded; wrap `send` to intercept records."),
    k("security.protocol", TlsSasl, "PLAINTEXT", "See TLS/SASL."),
    k("security.providers", TlsSasl, "", "See TLS/SASL."),
    k("enable.idempotence", Honoured, "true", "Producer id, epochs and sequence numbers (KIP-98, KIP-360)."),
    k("transaction.timeout.ms", Honoured, "60000", "Sent in InitProducerId: how long the coordinator lets a transaction stay open before it aborts it."),
    k("transactional.id", Honoured, "my-tx", "Makes the producer transactional (`init_transactions`, `begin_transaction`, `commit_transaction`, ...), transactions v1 or v2 (KIP-890) as the cluster's `transaction.version` says; needs idempotence, so `acks=all`, `retries` > 0 and at most 5 requests in flight, and `enable.idempotence=false` is an error."),
    k("transaction.two.phase.commit.enable", NoOp, "false", "Two-phase commit (KIP-939) is not implemented: `false` is accepted, `true` refused."),
    k("metadata.recovery.strategy", Honoured, "rebootstrap", "What to do when the cluster view is lost (KIP-899)."),
    k("metadata.recovery.rebootstrap.trigger.ms", Honoured, "300000", "How long metadata may be wanted before a rebootstrap (KIP-1102)."),
    k("config.providers", NoOp, "", "Java classes; `${provider:key}` values are taken literally."),
];

/// The Markdown docs/configuration.md holds: the table and what its words mean.
pub fn markdown() -> String {
    let mut s = String::from(
        "# Configuration\n\n\
         <!-- Generated from src/producer/config_keys.rs by the test `config_keys::tests::doc_matches_table`; \
         run it with KAFKA_SANSIO_WRITE_DOCS=1 to rewrite this file. -->\n\n\
         Every key of Java 4.x's `ProducerConfig` loads: a Java property file is taken unchanged, \
         and a key that is not Java's is refused with `ConfigError::UnknownKey`. \
         *honoured* keys mean what they mean in Java; *no-op* keys are validated as Java validates \
         them and have no effect, for the reason given; *refused* keys are Java's but fail with \
         `ConfigError::InvalidValue`, since accepting them would promise what this producer does \
         not do. The `ssl.*` and `sasl.*` keys are described with TLS/SASL.\n\n\
         One key is this producer's own: `kafka_sansio.rng.seed`, the seed of the core's jitter \
         generator.\n\n\
         | key | handling | why |\n|---|---|---|\n",
    );
    for j in JAVA_KEYS {
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            j.key,
            j.handling.label(),
            j.why
        ));
    }
    let honoured = JAVA_KEYS.iter().filter(|j| j.handling == Honoured).count();
    let noop = JAVA_KEYS.iter().filter(|j| j.handling == NoOp).count();
    s.push_str(&format!(
        "\n{} keys: {honoured} honoured, {noop} no-op, {} refused, {} with TLS/SASL.\n",
        JAVA_KEYS.len(),
        JAVA_KEYS.iter().filter(|j| j.handling == Refused).count(),
        JAVA_KEYS.iter().filter(|j| j.handling == TlsSasl).count(),
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::{ConfigError, ProducerConfig};

    #[test]
    fn every_java_key_is_set_as_its_handling_says() {
        for j in JAVA_KEYS {
            let mut c = ProducerConfig::default();
            let r = c.set(j.key, j.example).map(|_| ());
            match j.handling {
                Honoured | NoOp => assert_eq!(r, Ok(()), "{}={}", j.key, j.example),
                Refused => assert!(
                    matches!(&r, Err(ConfigError::InvalidValue { key, .. }) if key == j.key),
                    "{}: {r:?}",
                    j.key
                ),
                // Those keys belong to the TLS/SASL table; only the plaintext
                // default is known here.
                TlsSasl => {}
            }
        }
    }

    #[test]
    fn keys_are_listed_once() {
        let mut keys: Vec<_> = JAVA_KEYS.iter().map(|j| j.key).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }

    #[test]
    fn a_key_that_is_not_javas_is_unknown() {
        for key in [
            "compression.level",
            "no.such.key",
            "linger",
            "batch.size.bytes",
        ] {
            assert!(
                matches!(ProducerConfig::new().set(key, "1"), Err(ConfigError::UnknownKey(k)) if k == key),
                "{key}"
            );
        }
    }

    #[test]
    fn doc_matches_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let want = markdown();
        if std::env::var_os("KAFKA_SANSIO_WRITE_DOCS").is_some() {
            std::fs::write(path, &want).expect("write docs/configuration.md");
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/configuration.md differs from src/producer/config_keys.rs; \
             rerun this test with KAFKA_SANSIO_WRITE_DOCS=1"
        );
    }
}
