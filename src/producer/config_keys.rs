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
}

impl Handling {
    /// The word the documentation table shows.
    pub fn label(self) -> &'static str {
        match self {
            Handling::Honoured => "honoured",
            Handling::NoOp => "no-op",
            Handling::Refused => "refused",
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

use Handling::{Honoured, NoOp, Refused};

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
    k("partitioner.adaptive.partitioning.enable", Honoured, "true", "As Java's `BuiltInPartitioner` (KIP-794): a keyless record's next sticky partition is drawn weighted by the inverse of each partition's queue of batches; off, uniformly among partitions with a leader."),
    k("partitioner.availability.timeout.ms", Honoured, "0", "With adaptive partitioning, partitions whose leader had ready batches but took none for this long get no keyless records (0: never)."),
    k("partitioner.ignore.keys", Honoured, "false", "Keyed records are placed as keyless ones."),
    k("partitioner.rack.aware", Honoured, "true", "With `client.rack` set, keyless records go to partitions whose leader's rack (from Metadata) is `client.rack` while the topic has any, to all partitions otherwise."),
    k("client.rack", Honoured, "rack-a", "This client's rack, for `partitioner.rack.aware`."),
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
    k("enable.idempotence", Honoured, "true", "Producer id, epochs and sequence numbers (KIP-98, KIP-360)."),
    k("transaction.timeout.ms", Honoured, "60000", "Sent in InitProducerId: how long the coordinator lets a transaction stay open before it aborts it."),
    k("transactional.id", Honoured, "my-tx", "Makes the producer transactional (`init_transactions`, `begin_transaction`, `commit_transaction`, ...), transactions v1 or v2 (KIP-890) as the cluster's `transaction.version` says; needs idempotence, so `acks=all`, `retries` > 0 and at most 5 requests in flight, and `enable.idempotence=false` is an error."),
    k("transaction.two.phase.commit.enable", NoOp, "false", "Two-phase commit (KIP-939) is not implemented: `false` is accepted, `true` refused."),
    k("metadata.recovery.strategy", Honoured, "rebootstrap", "What to do when the cluster view is lost (KIP-899)."),
    k("metadata.recovery.rebootstrap.trigger.ms", Honoured, "300000", "How long metadata may be wanted before a rebootstrap (KIP-1102)."),
    k("config.providers", NoOp, "", "Java classes; `${provider:key}` values are taken literally."),
    k("bootstrap.resolve.timeout.ms", NoOp, "0", "The core resolves no name and construction never does: drivers resolve `bootstrap.servers` when they connect, and a name that does not resolve is a failed connection, retried with the reconnect backoff within `max.block.ms`, whatever the value."),
    k("buffer.memory.allocation.strategy", NoOp, "incremental", "A batch holds `batch.size` of `buffer.memory` from when it opens (Java's `full`); `incremental` is accepted and allocates the same way."),
    k("metadata.cluster.check.enable", NoOp, "true", "The cluster and node check a Kafka 4.4 broker makes of a connection is not sent, as with brokers before 4.4; a rebootstrap still recovers from a broker of another cluster through Metadata."),
];

/// Java 4.x's TLS and SASL client keys (`SslConfigs`, `SaslConfigs`), all of
/// which its `ProducerConfig` takes too; `kafka_sansio` reads them with the
/// `tls` and `sasl` features, and accepts them without.
pub const SECURITY_KEYS: &[JavaKey] = &[
    k("security.protocol", Honoured, "PLAINTEXT", "`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`; the secured ones need the `tls`/`sasl` features."),
    k("security.providers", NoOp, "", "Java security provider classes; TLS uses rustls with ring."),
    k("ssl.protocol", NoOp, "TLSv1.3", "Validated; the versions offered are `ssl.enabled.protocols`', rustls negotiating the highest, as Java's TLSv1.3 context does."),
    k("ssl.provider", NoOp, "", "A JCA provider name; TLS uses rustls with ring."),
    k("ssl.cipher.suites", Refused, "TLS_AES_128_GCM_SHA256", "Empty (the default) is accepted: rustls' safe default suites are offered. Choosing suites by name is refused; pass a `rustls::ClientConfig` (`SecurityConfig::tls_client_config`) instead."),
    k("ssl.enabled.protocols", Honoured, "TLSv1.3", "`TLSv1.2` and/or `TLSv1.3` (older names are ignored; a list of only those is an error)."),
    k("ssl.keystore.type", Honoured, "PEM", "`PEM` is read; `JKS` and `PKCS12` get an error naming the PEM keys to use."),
    k("ssl.keystore.location", Honoured, "/etc/kafka/client.pem", "PEM file with the client's key and certificate chain."),
    k("ssl.keystore.password", NoOp, "", "JKS/PKCS12 store passwords; PEM stores have none (`ssl.key.password` is the key's)."),
    k("ssl.key.password", Honoured, "", "Passphrase of an encrypted PEM key."),
    k("ssl.keystore.key", Honoured, "", "The client's key as PEM text."),
    k("ssl.keystore.certificate.chain", Honoured, "", "The client's certificate chain as PEM text."),
    k("ssl.truststore.certificates", Honoured, "", "Trusted CA certificates as PEM text."),
    k("ssl.truststore.type", Honoured, "PEM", "`PEM` is read; `JKS` and `PKCS12` get an error naming the PEM keys to use."),
    k("ssl.truststore.location", Honoured, "/etc/kafka/ca.pem", "PEM file of trusted CA certificates (without any truststore: the Mozilla roots from `webpki-roots`)."),
    k("ssl.truststore.password", NoOp, "", "JKS/PKCS12 store passwords; PEM stores have none."),
    k("ssl.keymanager.algorithm", NoOp, "SunX509", "A JCA algorithm name; rustls has no key managers."),
    k("ssl.trustmanager.algorithm", NoOp, "PKIX", "A JCA algorithm name; rustls verifies with webpki."),
    k("ssl.endpoint.identification.algorithm", Honoured, "https", "`https` (default) checks the broker's host name against its certificate; empty turns the check off."),
    k("ssl.secure.random.implementation", NoOp, "", "A JCA name; TLS randomness comes from ring's `SystemRandom`."),
    k("ssl.engine.factory.class", NoOp, "", "A Java class; pass a `rustls::ClientConfig` instead."),
    k("sasl.kerberos.service.name", NoOp, "kafka", "Kerberos: `sasl.mechanism=GSSAPI` is refused, so it is never used."),
    k("sasl.kerberos.kinit.cmd", NoOp, "/usr/bin/kinit", "Kerberos, not supported (see above)."),
    k("sasl.kerberos.ticket.renew.window.factor", NoOp, "0.8", "Kerberos, not supported (see above)."),
    k("sasl.kerberos.ticket.renew.jitter", NoOp, "0.05", "Kerberos, not supported (see above)."),
    k("sasl.kerberos.min.time.before.relogin", NoOp, "60000", "Kerberos, not supported (see above)."),
    k("sasl.login.refresh.window.factor", Honoured, "0.8", "An OAUTHBEARER token is replaced after this share of its lifetime (0.5-1.0)."),
    k("sasl.login.refresh.window.jitter", Honoured, "0.05", "Up to this share of the lifetime is added at random (0-0.25)."),
    k("sasl.login.refresh.min.period.seconds", Honoured, "60", "At least this long between token refreshes (0-900), where the token lives long enough."),
    k("sasl.login.refresh.buffer.seconds", Honoured, "300", "A token is replaced at least this long before it expires (0-3600), where it lives long enough."),
    k("sasl.mechanism", Honoured, "PLAIN", "`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`; `GSSAPI` (Java's default, Kerberos) is refused."),
    k("sasl.jaas.config", Honoured, "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p\";", "`PlainLoginModule`/`ScramLoginModule` `username` and `password`, or `OAuthBearerLoginModule`'s unsecured-token options (test clusters)."),
    k("sasl.client.callback.handler.class", NoOp, "", "A Java class; OAUTHBEARER tokens come from a `TokenProvider`."),
    k("sasl.login.callback.handler.class", NoOp, "", "A Java class; OAUTHBEARER tokens come from a `TokenProvider`."),
    k("sasl.login.class", NoOp, "", "A Java class; OAUTHBEARER tokens come from a `TokenProvider`."),
    k("sasl.login.connect.timeout.ms", NoOp, "10000", "Times Java's HTTP token login; a `TokenProvider` fetches tokens here."),
    k("sasl.login.read.timeout.ms", NoOp, "10000", "Times Java's HTTP token login; a `TokenProvider` fetches tokens here."),
    k("sasl.login.retry.backoff.max.ms", NoOp, "10000", "Times Java's HTTP token login; a `TokenProvider` fetches tokens here."),
    k("sasl.login.retry.backoff.ms", NoOp, "100", "Times Java's HTTP token login; a `TokenProvider` fetches tokens here."),
    k("sasl.oauthbearer.scope.claim.name", NoOp, "scope", "A claim Java's login reads from tokens it fetched; a `TokenProvider` gives the scope itself."),
    k("sasl.oauthbearer.sub.claim.name", NoOp, "sub", "A claim Java's login reads from tokens it fetched; a `TokenProvider` gives the principal itself."),
    k("sasl.oauthbearer.token.endpoint.url", Refused, "https://idp.example.com/token", "Empty is accepted. Fetching tokens over HTTP is not built in: implement `TokenProvider` (refused so that a producer is never left with unsecured tokens in place of the ones it was told to fetch)."),
    k("sasl.oauthbearer.jwks.endpoint.url", NoOp, "", "Validation of fetched tokens, Java's login's."),
    k("sasl.oauthbearer.jwks.endpoint.refresh.ms", NoOp, "3600000", "Validation of fetched tokens, Java's login's."),
    k("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", NoOp, "10000", "Validation of fetched tokens, Java's login's."),
    k("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", NoOp, "100", "Validation of fetched tokens, Java's login's."),
    k("sasl.oauthbearer.clock.skew.seconds", NoOp, "30", "Validation of fetched tokens, Java's login's."),
    k("sasl.oauthbearer.expected.audience", NoOp, "", "Validation of fetched tokens, Java's login's."),
    k("sasl.oauthbearer.expected.issuer", NoOp, "", "Validation of fetched tokens, Java's login's."),
    k("sasl.oauthbearer.allow.unverified.audience", NoOp, "false", "Validation of fetched tokens, Java's login's."),
    k("sasl.oauthbearer.allow.unverified.issuer", NoOp, "false", "Validation of fetched tokens, Java's login's."),
    k("sasl.oauthbearer.header.urlencode", NoOp, "false", "Encoding of Java's HTTP token request."),
    k("sasl.oauthbearer.jwt.retriever.class", NoOp, "", "A Java class; tokens come from a `TokenProvider`."),
    k("sasl.oauthbearer.jwt.validator.class", NoOp, "", "A Java class; tokens come from a `TokenProvider`."),
    k("sasl.oauthbearer.scope", Refused, "kafka", "Part of Java's HTTP token login: refused when set, as `sasl.oauthbearer.token.endpoint.url`."),
    k("sasl.oauthbearer.client.credentials.client.id", Refused, "my-client", "Part of Java's HTTP token login: refused when set, as `sasl.oauthbearer.token.endpoint.url`."),
    k("sasl.oauthbearer.client.credentials.client.secret", Refused, "secret", "Part of Java's HTTP token login: refused when set, as `sasl.oauthbearer.token.endpoint.url`."),
    k("sasl.oauthbearer.assertion.algorithm", NoOp, "RS256", "Builds Java's JWT-bearer assertion (KIP-1139); assertion files are refused."),
    k("sasl.oauthbearer.assertion.claim.aud", NoOp, "", "Builds Java's JWT-bearer assertion (KIP-1139); assertion files are refused."),
    k("sasl.oauthbearer.assertion.claim.exp.seconds", NoOp, "300", "Builds Java's JWT-bearer assertion (KIP-1139); assertion files are refused."),
    k("sasl.oauthbearer.assertion.claim.iss", NoOp, "", "Builds Java's JWT-bearer assertion (KIP-1139); assertion files are refused."),
    k("sasl.oauthbearer.assertion.claim.jti.include", NoOp, "false", "Builds Java's JWT-bearer assertion (KIP-1139); assertion files are refused."),
    k("sasl.oauthbearer.assertion.claim.nbf.seconds", NoOp, "60", "Builds Java's JWT-bearer assertion (KIP-1139); assertion files are refused."),
    k("sasl.oauthbearer.assertion.claim.sub", NoOp, "", "Builds Java's JWT-bearer assertion (KIP-1139); assertion files are refused."),
    k("sasl.oauthbearer.assertion.template.file", NoOp, "", "Builds Java's JWT-bearer assertion (KIP-1139); assertion files are refused."),
    k("sasl.oauthbearer.assertion.file", Refused, "/etc/kafka/assertion.jwt", "Part of Java's HTTP token login: refused when set, as `sasl.oauthbearer.token.endpoint.url`."),
    k("sasl.oauthbearer.assertion.private.key.file", Refused, "/etc/kafka/assertion.key", "Part of Java's HTTP token login: refused when set, as `sasl.oauthbearer.token.endpoint.url`."),
    k("sasl.oauthbearer.assertion.private.key.passphrase", Refused, "secret", "Part of Java's HTTP token login: refused when set, as `sasl.oauthbearer.token.endpoint.url`."),
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
         not do (a refused key's empty or default value is accepted).\n\n\
         Two keys are not Java's: `kafka_sansio.rng.seed`, the seed of the core's jitter \
         generator, and librdkafka's `statistics.interval.ms`, how often the drivers emit \
         librdkafka-style statistics JSON (0, the default: never; needs the `json` feature).\n\n\
         | key | handling | why |\n|---|---|---|\n",
    );
    table(&mut s, JAVA_KEYS);
    s.push_str(
        "\n## TLS and SASL\n\n\
         Java's `SslConfigs` and `SaslConfigs` client keys, which its `ProducerConfig` takes too. \
         They are read with the `tls` and `sasl` features; without them they load, and a secured \
         `security.protocol` is an error naming the missing feature.\n\n\
         | key | handling | why |\n|---|---|---|\n",
    );
    table(&mut s, SECURITY_KEYS);
    s
}

/// Appends `keys` as table rows and a line counting them.
fn table(s: &mut String, keys: &[JavaKey]) {
    for j in keys {
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            j.key,
            j.handling.label(),
            j.why
        ));
    }
    let count = |h: Handling| keys.iter().filter(|j| j.handling == h).count();
    s.push_str(&format!(
        "\n{} keys: {} honoured, {} no-op, {} refused.\n",
        keys.len(),
        count(Honoured),
        count(NoOp),
        count(Refused),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::{ConfigError, ProducerConfig};

    #[test]
    fn every_java_key_is_set_as_its_handling_says() {
        for j in JAVA_KEYS.iter().chain(SECURITY_KEYS) {
            let mut c = ProducerConfig::default();
            let r = c.set(j.key, j.example).map(|_| ());
            match j.handling {
                Honoured | NoOp => assert_eq!(r, Ok(()), "{}={}", j.key, j.example),
                Refused => assert!(
                    matches!(&r, Err(ConfigError::InvalidValue { key, .. }) if key == j.key),
                    "{}: {r:?}",
                    j.key
                ),
            }
        }
    }

    #[test]
    fn keys_are_listed_once() {
        let mut keys: Vec<_> = JAVA_KEYS
            .iter()
            .chain(SECURITY_KEYS)
            .map(|j| j.key)
            .collect();
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
