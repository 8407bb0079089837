//! Producer configuration: Java 4.x keys and defaults, from `key=value`
//! properties or a typed builder, validated the way the Java client does.

use std::time::Duration;

use crate::protocol::compression::Compression;

/// Acknowledgements the leader must gather before answering a Produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no response; a record is complete once written.
    None,
    /// `acks=1`: the leader's own append.
    Leader,
    /// `acks=all` (`-1`): every in-sync replica.
    All,
}

impl Acks {
    /// The value sent in Produce requests.
    pub fn code(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// `metadata.recovery.strategy` (KIP-899): what the producer does when its
/// view of the cluster is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataRecoveryStrategy {
    /// `none`: keep trying the brokers last known.
    None,
    /// `rebootstrap`: forget them and start over from `bootstrap.servers`
    /// (Java's default since 4.0, KIP-1102).
    Rebootstrap,
}

impl MetadataRecoveryStrategy {
    /// The strategy named `name`, in any case (as Java's `forName`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "rebootstrap" => Some(Self::Rebootstrap),
            _ => None,
        }
    }
}

/// `client.dns.lookup`: how host names become addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientDnsLookup {
    /// `use_all_dns_ips`: every address of a name is tried in turn.
    UseAllDnsIps,
    /// `resolve_canonical_bootstrap_servers_only`: as `use_all_dns_ips`
    /// here; Java's reverse lookup to the canonical name serves Kerberos only.
    ResolveCanonicalBootstrapServersOnly,
}

/// A configuration that cannot be used, with the key and the reason.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key this producer does not know.
    #[error("unknown configuration key `{0}`")]
    UnknownKey(String),
    /// A value that does not parse or is out of range.
    #[error("invalid value `{value}` for `{key}`: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Keys whose values do not go together (e.g. idempotence with acks=1).
    #[error("invalid configuration: {0}")]
    Conflict(String),
    /// A setting that needs a cargo feature this build lacks.
    #[error("{setting} needs the `{feature}` feature")]
    FeatureMissing {
        /// The setting, e.g. `security.protocol=SSL`.
        setting: String,
        /// The cargo feature.
        feature: &'static str,
    },
    /// SASL is on but no credentials are set for the mechanism.
    #[error("sasl.mechanism={mechanism} needs credentials: sasl.jaas.config ({module}) or sasl.username and sasl.password")]
    MissingCredentials {
        /// The mechanism.
        mechanism: &'static str,
        /// The login module that gives them.
        module: &'static str,
    },
    /// The `ssl.*` settings do not make a TLS configuration (the reason names the key).
    #[error("TLS settings: {0}")]
    Tls(String),
}

/// The default `kafka_sansio.rng.seed`. The drivers replace it with a seed
/// from the OS (a producer's jitter and SCRAM nonces then differ from
/// another's); a core driven by hand keeps it, and stays deterministic.
pub const DEFAULT_RNG_SEED: u64 = 0x5eed_cafe_f00d_d00d;

/// All producer settings. Field names follow the Java keys.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerConfig {
    /// `bootstrap.servers`: `host:port` pairs to fetch metadata from.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`.
    pub client_id: String,
    /// `acks`.
    pub acks: Acks,
    /// `enable.idempotence`.
    pub enable_idempotence: bool,
    /// Whether `enable.idempotence` was set explicitly (an explicit `true`
    /// conflicting with other keys is an error; the default is dropped
    /// silently, as in Java).
    pub idempotence_explicit: bool,
    /// `linger.ms`.
    pub linger: Duration,
    /// `batch.size` in bytes.
    pub batch_size: usize,
    /// `buffer.memory` in bytes: batch buffers, plus [`RECORD_OVERHEAD`](super::RECORD_OVERHEAD) per buffered record.
    pub buffer_memory: usize,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight: usize,
    /// `delivery.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `request.timeout.ms`.
    pub request_timeout: Duration,
    /// `retries`.
    pub retries: u32,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`.
    pub retry_backoff_max: Duration,
    /// `max.request.size` in bytes.
    pub max_request_size: usize,
    /// `compression.type`.
    pub compression: Compression,
    /// `compression.gzip.level` (`None` for the codec's default).
    pub compression_gzip_level: Option<i32>,
    /// `compression.lz4.level` (`None` for the codec's default).
    pub compression_lz4_level: Option<i32>,
    /// `compression.zstd.level` (`None` for the codec's default).
    pub compression_zstd_level: Option<i32>,
    /// `metadata.max.age.ms`.
    pub metadata_max_age: Duration,
    /// `max.block.ms`: how long records may wait for metadata or memory.
    pub max_block: Duration,
    /// `reconnect.backoff.ms`.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`.
    pub reconnect_backoff_max: Duration,
    /// `metadata.recovery.strategy`.
    pub metadata_recovery_strategy: MetadataRecoveryStrategy,
    /// `metadata.recovery.rebootstrap.trigger.ms`: how long metadata may be
    /// wanted without an answer before the producer rebootstraps (KIP-1102).
    pub metadata_recovery_rebootstrap_trigger: Duration,
    /// `socket.connection.setup.timeout.ms`: the first connect timeout of an address.
    pub connect_timeout: Duration,
    /// `socket.connection.setup.timeout.max.ms`: the connect timeout doubles
    /// per failed connect to an address up to this.
    pub connect_timeout_max: Duration,
    /// `connections.max.idle.ms`: idle connections are closed after this
    /// (`None` for -1 or any negative value: never).
    pub connections_max_idle: Option<Duration>,
    /// `metadata.max.idle.ms`: a topic unused this long is left out of Metadata requests.
    pub metadata_max_idle: Duration,
    /// `client.dns.lookup`.
    pub client_dns_lookup: ClientDnsLookup,
    /// `send.buffer.bytes` (-1: the OS default); see docs/configuration.md.
    pub send_buffer_bytes: i32,
    /// `receive.buffer.bytes` (-1: the OS default); see docs/configuration.md.
    pub receive_buffer_bytes: i32,
    /// `enable.metrics.push` (no telemetry is pushed either way).
    pub enable_metrics_push: bool,
    /// `metrics.sample.window.ms`: the length of one sample of a windowed metric.
    pub metrics_sample_window: Duration,
    /// `metrics.num.samples`: how many samples a windowed metric spans.
    pub metrics_num_samples: usize,
    /// `partitioner.ignore.keys`.
    pub partitioner_ignore_keys: bool,
    /// `partitioner.adaptive.partitioning.enable`: keyless records switch to
    /// partitions with shorter queues more often (KIP-794).
    pub partitioner_adaptive: bool,
    /// `partitioner.availability.timeout.ms`: with adaptive partitioning, a
    /// partition whose leader could take no ready batch for this long gets
    /// no keyless records (zero: never excluded).
    pub partitioner_availability_timeout: Duration,
    /// `partitioner.rack.aware`: keyless records go to partitions whose
    /// leader is in `client.rack`'s rack while there are any.
    pub partitioner_rack_aware: bool,
    /// `client.rack`: the rack this client runs in (empty: none).
    pub client_rack: String,
    /// `statistics.interval.ms` (librdkafka's key): how often the drivers
    /// emit statistics JSON; zero for never. Needs the `json` feature.
    pub statistics_interval: Duration,
    /// Largest response frame accepted (bytes).
    pub max_response_size: usize,
    /// Seed of the core's generator (not a Java key: determinism): retry and
    /// reconnect jitter, re-authentication points, SCRAM nonces (hashed).
    pub rng_seed: u64,
    /// `security.protocol`, `sasl.*` and `ssl.*`.
    pub security: crate::producer::security::SecurityConfig,
    /// `transactional.id`: set, the producer is transactional (needs idempotence).
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long the coordinator lets a transaction run.
    pub transaction_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            bootstrap_servers: Vec::new(),
            client_id: "kafka-sansio".into(),
            acks: Acks::All,
            enable_idempotence: true,
            idempotence_explicit: false,
            linger: Duration::from_millis(5),
            batch_size: 16384,
            buffer_memory: 33_554_432,
            max_in_flight: 5,
            delivery_timeout: Duration::from_millis(120_000),
            request_timeout: Duration::from_millis(30_000),
            retries: i32::MAX as u32,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1000),
            max_request_size: 1_048_576,
            compression: Compression::None,
            compression_gzip_level: None,
            compression_lz4_level: None,
            compression_zstd_level: None,
            metadata_max_age: Duration::from_millis(300_000),
            max_block: Duration::from_millis(60_000),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1000),
            metadata_recovery_strategy: MetadataRecoveryStrategy::Rebootstrap,
            metadata_recovery_rebootstrap_trigger: Duration::from_millis(300_000),
            connect_timeout: Duration::from_millis(10_000),
            connect_timeout_max: Duration::from_millis(30_000),
            connections_max_idle: Some(Duration::from_millis(540_000)),
            metadata_max_idle: Duration::from_millis(300_000),
            client_dns_lookup: ClientDnsLookup::UseAllDnsIps,
            send_buffer_bytes: 128 * 1024,
            receive_buffer_bytes: 32 * 1024,
            enable_metrics_push: true,
            metrics_sample_window: Duration::from_millis(30_000),
            metrics_num_samples: 2,
            partitioner_ignore_keys: false,
            partitioner_adaptive: true,
            partitioner_availability_timeout: Duration::ZERO,
            partitioner_rack_aware: false,
            client_rack: String::new(),
            statistics_interval: Duration::ZERO,
            max_response_size: 100 * 1024 * 1024,
            rng_seed: DEFAULT_RNG_SEED,
            security: Default::default(),
            transactional_id: None,
            transaction_timeout: Duration::from_millis(60_000),
        }
    }
}

impl ConfigError {
    /// [`ConfigError::InvalidValue`]: `value` of `key` is refused for `reason`.
    pub(crate) fn invalid(key: &str, value: impl Into<String>, reason: &str) -> Self {
        ConfigError::InvalidValue {
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::invalid(key, value, "not a number in range"))
}

/// A whole number of zero or more; a negative one is refused as such, not as
/// out of range.
fn parse_non_negative(key: &str, value: &str) -> Result<u64, ConfigError> {
    let n: i64 = parse_num(key, value)?;
    u64::try_from(n).map_err(|_| ConfigError::invalid(key, value, "must not be negative"))
}

fn parse_ms(key: &str, value: &str) -> Result<Duration, ConfigError> {
    parse_non_negative(key, value).map(Duration::from_millis)
}

/// A compression level within the codec's range, as Java's level validators.
fn parse_level(
    key: &str,
    value: &str,
    range: std::ops::RangeInclusive<i32>,
) -> Result<i32, ConfigError> {
    let level: i32 = parse_num(key, value)?;
    if !range.contains(&level) {
        let why = format!("outside {}..={}", range.start(), range.end());
        return Err(ConfigError::invalid(key, value, &why));
    }
    Ok(level)
}

/// A socket buffer size: -1 for the OS default, or zero or more bytes.
fn parse_buffer_bytes(key: &str, value: &str) -> Result<i32, ConfigError> {
    let n: i32 = parse_num(key, value)?;
    if n < -1 {
        return Err(ConfigError::invalid(
            key,
            value,
            "must be -1 (OS default) or more",
        ));
    }
    Ok(n)
}

/// A number within `lo..=hi`, as Java's `Range.between`.
fn parse_range(key: &str, value: &str, lo: f64, hi: f64) -> Result<f64, ConfigError> {
    let v: f64 = parse_num(key, value)?;
    if !(lo..=hi).contains(&v) {
        return Err(ConfigError::invalid(
            key,
            value,
            &format!("must be between {lo} and {hi}"),
        ));
    }
    Ok(v)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::invalid(key, value, "expected true or false")),
    }
}

impl ProducerConfig {
    /// A configuration with Java's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one `key=value` property by its Java name.
    ///
    /// Keys that only matter to the Java runtime (serializers by class name,
    /// `security.protocol=PLAINTEXT`, ...) are accepted where harmless;
    /// anything else unknown is an error rather than silently ignored.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, ConfigError> {
        let k = key.trim();
        match k {
            "bootstrap.servers" => {
                self.bootstrap_servers = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "client.id" => self.client_id = value.trim().into(),
            "acks" => {
                self.acks = match value.trim() {
                    "0" => Acks::None,
                    "1" => Acks::Leader,
                    "all" | "-1" => Acks::All,
                    _ => return Err(ConfigError::invalid(k, value, "expected 0, 1, all or -1")),
                }
            }
            "enable.idempotence" => {
                self.enable_idempotence = parse_bool(k, value)?;
                self.idempotence_explicit = true;
            }
            "linger.ms" => self.linger = parse_ms(k, value)?,
            "batch.size" => self.batch_size = parse_num(k, value)?,
            "buffer.memory" => self.buffer_memory = parse_num(k, value)?,
            "max.in.flight.requests.per.connection" => self.max_in_flight = parse_num(k, value)?,
            "delivery.timeout.ms" => self.delivery_timeout = parse_ms(k, value)?,
            "request.timeout.ms" => self.request_timeout = parse_ms(k, value)?,
            "retries" => self.retries = parse_non_negative(k, value)?.min(i32::MAX as u64) as u32,
            "retry.backoff.ms" => self.retry_backoff = parse_ms(k, value)?,
            "retry.backoff.max.ms" => self.retry_backoff_max = parse_ms(k, value)?,
            "max.request.size" => self.max_request_size = parse_num(k, value)?,
            "compression.type" => {
                self.compression = Compression::from_name(value.trim()).ok_or_else(|| {
                    ConfigError::invalid(k, value, "expected none, gzip, snappy, lz4 or zstd")
                })?
            }
            "metadata.max.age.ms" => self.metadata_max_age = parse_ms(k, value)?,
            "max.block.ms" => self.max_block = parse_ms(k, value)?,
            "reconnect.backoff.ms" => self.reconnect_backoff = parse_ms(k, value)?,
            "reconnect.backoff.max.ms" => self.reconnect_backoff_max = parse_ms(k, value)?,
            "metadata.recovery.strategy" => {
                self.metadata_recovery_strategy = MetadataRecoveryStrategy::from_name(value)
                    .ok_or_else(|| ConfigError::invalid(k, value, "expected none or rebootstrap"))?
            }
            "metadata.recovery.rebootstrap.trigger.ms" => {
                self.metadata_recovery_rebootstrap_trigger = parse_ms(k, value)?
            }
            "socket.connection.setup.timeout.ms" => self.connect_timeout = parse_ms(k, value)?,
            "partitioner.ignore.keys" => self.partitioner_ignore_keys = parse_bool(k, value)?,
            "kafka_sansio.rng.seed" => self.rng_seed = parse_num(k, value)?,
            // The rest of Java's keys; docs/configuration.md (from
            // `config_keys::JAVA_KEYS`) says why each is honoured or not.
            "compression.gzip.level" => {
                let level = parse_level(k, value, -1..=9)?;
                self.compression_gzip_level = (level != -1).then_some(level)
            }
            "compression.lz4.level" => {
                self.compression_lz4_level = Some(parse_level(k, value, 1..=17)?)
            }
            "compression.zstd.level" => {
                self.compression_zstd_level = Some(parse_level(k, value, -131_072..=22)?)
            }
            "socket.connection.setup.timeout.max.ms" => {
                self.connect_timeout_max = parse_ms(k, value)?
            }
            "connections.max.idle.ms" => {
                let ms: i64 = parse_num(k, value)?;
                self.connections_max_idle = u64::try_from(ms).ok().map(Duration::from_millis)
            }
            "metadata.max.idle.ms" => {
                let d = parse_ms(k, value)?;
                if d < Duration::from_millis(5000) {
                    return Err(ConfigError::invalid(k, value, "must be at least 5000"));
                }
                self.metadata_max_idle = d
            }
            "client.dns.lookup" => {
                self.client_dns_lookup =
                    match value.trim() {
                        "use_all_dns_ips" => ClientDnsLookup::UseAllDnsIps,
                        "resolve_canonical_bootstrap_servers_only" => {
                            ClientDnsLookup::ResolveCanonicalBootstrapServersOnly
                        }
                        _ => return Err(ConfigError::invalid(
                            k,
                            value,
                            "expected use_all_dns_ips or resolve_canonical_bootstrap_servers_only",
                        )),
                    }
            }
            "send.buffer.bytes" => self.send_buffer_bytes = parse_buffer_bytes(k, value)?,
            "receive.buffer.bytes" => self.receive_buffer_bytes = parse_buffer_bytes(k, value)?,
            "enable.metrics.push" => self.enable_metrics_push = parse_bool(k, value)?,
            "metrics.sample.window.ms" => self.metrics_sample_window = parse_ms(k, value)?,
            "metrics.num.samples" => {
                let n = parse_non_negative(k, value)?;
                if n == 0 {
                    return Err(ConfigError::invalid(k, value, "must be at least 1"));
                }
                self.metrics_num_samples = n.min(i32::MAX as u64) as usize
            }
            "metrics.recording.level" => {
                if !["INFO", "DEBUG", "TRACE"].contains(&value.trim()) {
                    return Err(ConfigError::invalid(
                        k,
                        value,
                        "expected INFO, DEBUG or TRACE",
                    ));
                }
            }
            "partitioner.adaptive.partitioning.enable" => {
                self.partitioner_adaptive = parse_bool(k, value)?
            }
            "partitioner.availability.timeout.ms" => {
                self.partitioner_availability_timeout = parse_ms(k, value)?
            }
            "partitioner.rack.aware" => self.partitioner_rack_aware = parse_bool(k, value)?,
            "client.rack" => self.client_rack = value.trim().to_string(),
            "bootstrap.resolve.timeout.ms" => {
                parse_ms(k, value)?;
            }
            "buffer.memory.allocation.strategy" => {
                if !["full", "incremental"].contains(&value.trim().to_ascii_lowercase().as_str()) {
                    return Err(ConfigError::invalid(
                        k,
                        value,
                        "expected full or incremental",
                    ));
                }
            }
            "metadata.cluster.check.enable" => {
                parse_bool(k, value)?;
            }
            "statistics.interval.ms" => {
                let d = parse_ms(k, value)?;
                if d > Duration::from_millis(86_400_000) {
                    return Err(ConfigError::invalid(k, value, "must be at most 86400000"));
                }
                self.statistics_interval = d
            }
            "transaction.two.phase.commit.enable" => {
                if parse_bool(k, value)? {
                    return Err(ConfigError::invalid(
                        k,
                        value,
                        "two-phase commit (KIP-939) is not supported",
                    ));
                }
            }
            "transaction.timeout.ms" => {
                let ms: i32 = parse_num(k, value)?;
                if ms < 0 {
                    return Err(ConfigError::invalid(k, value, "must not be negative"));
                }
                self.transaction_timeout = Duration::from_millis(ms as u64);
            }
            "key.serializer"
            | "value.serializer"
            | "partitioner.class"
            | "interceptor.classes"
            | "metric.reporters"
            | "config.providers" => {}
            // Java takes the value as given; an empty one means none.
            "transactional.id" => {
                self.transactional_id = Some(value.to_owned()).filter(|v| !v.is_empty())
            }
            _ if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") => {
                self.set_security(k, value)?
            }
            _ => return Err(ConfigError::UnknownKey(k.into())),
        }
        Ok(self)
    }

    /// Sets a `security.protocol`, `sasl.*` or `ssl.*` key. Secret values
    /// (passwords, keys, the JAAS text) never appear in the errors.
    fn set_security(&mut self, k: &str, value: &str) -> Result<(), ConfigError> {
        use crate::producer::security::jaas::JaasConfig;
        use crate::producer::security::{Password, SaslMechanism, SecurityProtocol};
        let sec = &mut self.security;
        let opt = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
        match k {
            "security.protocol" => {
                sec.protocol = SecurityProtocol::parse(value).ok_or_else(|| {
                    ConfigError::invalid(
                        k,
                        value,
                        "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                    )
                })?
            }
            "sasl.mechanism" => {
                sec.sasl_mechanism = Some(SaslMechanism::parse(value).ok_or_else(|| {
                    ConfigError::invalid(
                        k,
                        value,
                        "expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
                    )
                })?)
            }
            // Empty, as a property file writes Java's default: none.
            "sasl.jaas.config" if value.trim().is_empty() => sec.sasl_jaas_config = None,
            "sasl.jaas.config" => {
                sec.sasl_jaas_config = Some(
                    JaasConfig::parse(value)
                        .map_err(|e| ConfigError::invalid(k, "[redacted]", &e.to_string()))?,
                )
            }
            "sasl.username" => sec.sasl_username = Some(value.to_string()),
            "sasl.password" => sec.sasl_password = Some(Password::new(value)),
            "sasl.oauthbearer.extensions" => {
                sec.sasl_oauthbearer_extensions = value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        p.split_once('=')
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .ok_or_else(|| {
                                ConfigError::invalid(k, "[redacted]", "expected key=value pairs")
                            })
                    })
                    .collect::<Result<_, _>>()?
            }
            "ssl.truststore.type" => sec.tls.truststore_type = opt(value),
            "ssl.truststore.location" => sec.tls.truststore_location = opt(value),
            "ssl.truststore.certificates" => sec.tls.truststore_certificates = opt(value),
            "ssl.ca.location" => sec.tls.ca_location = opt(value),
            "ssl.keystore.type" => sec.tls.keystore_type = opt(value),
            "ssl.keystore.location" => sec.tls.keystore_location = opt(value),
            "ssl.keystore.key" => sec.tls.keystore_key = opt(value).map(Password::new),
            "ssl.keystore.certificate.chain" => sec.tls.keystore_certificate_chain = opt(value),
            "ssl.key.password" => sec.tls.key_password = opt(value).map(Password::new),
            // Store passwords belong to JKS/PKCS12 stores, which get their
            // own error from the store type; PEM stores have none.
            "ssl.keystore.password" | "ssl.truststore.password" => {}
            "ssl.certificate.location" => sec.tls.certificate_location = opt(value),
            "ssl.key.location" => sec.tls.key_location = opt(value),
            "ssl.enabled.protocols" => {
                let mut tls12 = false;
                let mut tls13 = false;
                for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                    match v {
                        "TLSv1.2" => tls12 = true,
                        "TLSv1.3" => tls13 = true,
                        // Java accepts them; rustls speaks neither, and a list
                        // of them alone is refused below.
                        "TLSv1" | "TLSv1.1" | "SSLv3" => {}
                        _ => {
                            return Err(ConfigError::invalid(
                                k,
                                value,
                                "expected TLSv1.2 and/or TLSv1.3",
                            ))
                        }
                    }
                }
                if !tls12 && !tls13 {
                    return Err(ConfigError::invalid(
                        k,
                        value,
                        "names neither TLSv1.2 nor TLSv1.3, the versions rustls speaks",
                    ));
                }
                sec.tls.enabled_protocols = (tls12, tls13);
            }
            "ssl.protocol" => {
                if !["TLS", "TLSv1.2", "TLSv1.3"].contains(&value.trim()) {
                    return Err(ConfigError::invalid(
                        k,
                        value,
                        "expected TLSv1.3, TLSv1.2 or TLS",
                    ));
                }
            }
            "ssl.cipher.suites" => {
                if !value.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        k,
                        value,
                        "choosing cipher suites by name is not supported: rustls' safe defaults are used; pass a rustls::ClientConfig (SecurityConfig::tls_client_config) to choose",
                    ));
                }
            }
            // Java's JCA and class names: nothing to load here.
            "ssl.provider"
            | "ssl.keymanager.algorithm"
            | "ssl.trustmanager.algorithm"
            | "ssl.secure.random.implementation"
            | "ssl.engine.factory.class"
            | "security.providers"
            | "sasl.client.callback.handler.class"
            | "sasl.login.callback.handler.class"
            | "sasl.login.class"
            | "sasl.oauthbearer.jwt.retriever.class"
            | "sasl.oauthbearer.jwt.validator.class" => {}
            // Kerberos (GSSAPI) is not a mechanism here: sasl.mechanism=GSSAPI is refused.
            "sasl.kerberos.service.name" | "sasl.kerberos.kinit.cmd" => {}
            "sasl.kerberos.ticket.renew.window.factor" | "sasl.kerberos.ticket.renew.jitter" => {
                parse_num::<f64>(k, value)?;
            }
            "sasl.kerberos.min.time.before.relogin" => {
                parse_num::<i64>(k, value)?;
            }
            "sasl.login.refresh.window.factor" => {
                sec.sasl_login_refresh.window_factor = parse_range(k, value, 0.5, 1.0)?
            }
            "sasl.login.refresh.window.jitter" => {
                sec.sasl_login_refresh.window_jitter = parse_range(k, value, 0.0, 0.25)?
            }
            "sasl.login.refresh.min.period.seconds" => {
                sec.sasl_login_refresh.min_period_s = parse_range(k, value, 0.0, 900.0)? as u64
            }
            "sasl.login.refresh.buffer.seconds" => {
                sec.sasl_login_refresh.buffer_s = parse_range(k, value, 0.0, 3600.0)? as u64
            }
            // They time Java's HTTP token login; tokens come from a TokenProvider here.
            "sasl.login.connect.timeout.ms"
            | "sasl.login.read.timeout.ms"
            | "sasl.login.retry.backoff.ms"
            | "sasl.login.retry.backoff.max.ms"
            | "sasl.oauthbearer.jwks.endpoint.refresh.ms"
            | "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms"
            | "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms"
            | "sasl.oauthbearer.clock.skew.seconds"
            | "sasl.oauthbearer.assertion.claim.exp.seconds"
            | "sasl.oauthbearer.assertion.claim.nbf.seconds" => {
                if !value.trim().is_empty() {
                    parse_num::<i64>(k, value)?;
                }
            }
            "sasl.oauthbearer.allow.unverified.audience"
            | "sasl.oauthbearer.allow.unverified.issuer"
            | "sasl.oauthbearer.header.urlencode"
            | "sasl.oauthbearer.assertion.claim.jti.include" => {
                parse_bool(k, value)?;
            }
            // Claims of tokens Java's login validates or builds itself.
            "sasl.oauthbearer.scope.claim.name"
            | "sasl.oauthbearer.sub.claim.name"
            | "sasl.oauthbearer.expected.audience"
            | "sasl.oauthbearer.expected.issuer"
            | "sasl.oauthbearer.jwks.endpoint.url"
            | "sasl.oauthbearer.assertion.algorithm"
            | "sasl.oauthbearer.assertion.claim.aud"
            | "sasl.oauthbearer.assertion.claim.iss"
            | "sasl.oauthbearer.assertion.claim.sub"
            | "sasl.oauthbearer.assertion.template.file" => {}
            // Fetching tokens over HTTP is Java's login; accepting these would
            // leave a producer without the tokens it was told to fetch.
            "sasl.oauthbearer.token.endpoint.url"
            | "sasl.oauthbearer.scope"
            | "sasl.oauthbearer.client.credentials.client.id"
            | "sasl.oauthbearer.client.credentials.client.secret"
            | "sasl.oauthbearer.assertion.file"
            | "sasl.oauthbearer.assertion.private.key.file"
            | "sasl.oauthbearer.assertion.private.key.passphrase" => {
                if !value.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        k,
                        "[redacted]",
                        "fetching OAuth tokens over HTTP is not built in: implement TokenProvider and set SecurityConfig::sasl_oauthbearer_token_provider",
                    ));
                }
            }
            "ssl.endpoint.identification.algorithm" => {
                sec.tls.endpoint_identification = match value.trim().to_ascii_lowercase().as_str() {
                    "https" => true,
                    "" | "none" => false,
                    _ => return Err(ConfigError::invalid(k, value, "expected https or empty")),
                }
            }
            _ => return Err(ConfigError::UnknownKey(k.into())),
        }
        Ok(())
    }

    /// Checks `security.protocol` against the features built in and the
    /// `sasl.*`/`ssl.*` settings it needs.
    fn validate_security(&self) -> Result<(), ConfigError> {
        use crate::producer::security::jaas::LoginModule;
        use crate::producer::security::SaslMechanism;
        let sec = &self.security;
        let setting = || format!("security.protocol={}", sec.protocol.name());
        if sec.protocol.uses_tls() && !cfg!(feature = "tls") {
            return Err(ConfigError::FeatureMissing {
                setting: setting(),
                feature: "tls",
            });
        }
        if sec.protocol.uses_sasl() {
            if !cfg!(feature = "sasl") {
                return Err(ConfigError::FeatureMissing {
                    setting: setting(),
                    feature: "sasl",
                });
            }
            let Some(mechanism) = sec.sasl_mechanism else {
                return Err(ConfigError::invalid(
                    "sasl.mechanism",
                    "GSSAPI",
                    "Java's default GSSAPI (Kerberos) is not supported: set PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
                ));
            };
            match mechanism {
                SaslMechanism::OAuthBearer => {
                    if let Some(j) = &sec.sasl_jaas_config {
                        if j.module != LoginModule::OAuthBearer {
                            return Err(ConfigError::Conflict(
                                "sasl.mechanism=OAUTHBEARER needs sasl.jaas.config with OAuthBearerLoginModule".into(),
                            ));
                        }
                    }
                    #[cfg(feature = "sasl")]
                    if sec.sasl_jaas_config.is_none()
                        && sec.sasl_oauthbearer_token_provider.is_none()
                    {
                        return Err(crate::producer::authenticate::oauthbearer_unset());
                    }
                }
                m => {
                    if sec.credentials().is_none() {
                        return Err(ConfigError::MissingCredentials {
                            mechanism: m.name(),
                            module: if m == SaslMechanism::Plain {
                                "PlainLoginModule"
                            } else {
                                "ScramLoginModule"
                            },
                        });
                    }
                }
            }
        }
        #[cfg(feature = "tls")]
        if sec.protocol.uses_tls() && sec.tls_client_config.is_none() {
            // Reads the PEM files now, so a bad path fails at start-up.
            let clock = crate::producer::security::tls::TlsClock::default();
            crate::producer::security::tls::client_config(&sec.tls, &clock)
                .map_err(|e| ConfigError::Tls(e.to_string()))?;
        }
        Ok(())
    }

    /// Builds a configuration from `key=value` pairs, then validates it.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        for (k, v) in props {
            c.set(k, v)?;
        }
        c.validate()?;
        Ok(c)
    }

    /// Parses a Java `.properties`-style text (`key=value` lines, `#` comments).
    pub fn from_properties_text(text: &str) -> Result<Self, ConfigError> {
        let mut pairs = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| ConfigError::invalid(line, "", "expected key=value"))?;
            pairs.push((k, v));
        }
        Self::from_properties(pairs)
    }

    /// Checks the combination of settings, as the Java client does at start-up.
    ///
    /// With idempotence at its default, a conflicting `acks`, `retries` or
    /// in-flight limit turns idempotence off (Java 3.2+ behaviour); set
    /// explicitly, the conflict is an error.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        self.validate_security()?;
        if !self.statistics_interval.is_zero() && !cfg!(feature = "json") {
            return Err(ConfigError::FeatureMissing {
                setting: format!(
                    "statistics.interval.ms={}",
                    self.statistics_interval.as_millis()
                ),
                feature: "json",
            });
        }
        if self.batch_size == 0 {
            // Java allows 0 (no batching); we need room for one record per batch.
            self.batch_size = 1;
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::invalid(
                "max.in.flight.requests.per.connection",
                "0",
                "must be at least 1",
            ));
        }
        if self.enable_idempotence {
            let conflict = if self.acks != Acks::All {
                Some("idempotence requires acks=all")
            } else if self.max_in_flight > 5 {
                Some("idempotence requires max.in.flight.requests.per.connection <= 5")
            } else if self.retries == 0 {
                Some("idempotence requires retries > 0")
            } else {
                None
            };
            if let Some(msg) = conflict {
                if self.idempotence_explicit {
                    return Err(ConfigError::Conflict(format!(
                        "{msg} (enable.idempotence=true was set explicitly)"
                    )));
                }
                self.enable_idempotence = false;
            }
            // A transactional id makes idempotence explicit, as in Java:
            // a conflict is then an error, not a reason to turn it off.
            if let (Some(msg), Some(_)) = (conflict, &self.transactional_id) {
                return Err(ConfigError::Conflict(format!(
                    "{msg} (transactional.id is set, which needs idempotence)"
                )));
            }
        }
        if self.transactional_id.is_some() && !self.enable_idempotence {
            return Err(ConfigError::Conflict(
                "cannot set a transactional.id without also enabling idempotence".into(),
            ));
        }
        if let Some(id) = &self.transactional_id {
            if id.len() > crate::protocol::primitives::MAX_STRING_LEN {
                return Err(ConfigError::invalid(
                    "transactional.id",
                    format!("({} bytes)", id.len()),
                    "longer than 32767 bytes",
                ));
            }
        }
        if self.delivery_timeout < self.linger + self.request_timeout {
            return Err(ConfigError::Conflict(format!(
                "delivery.timeout.ms ({} ms) must be at least linger.ms + request.timeout.ms ({} ms)",
                self.delivery_timeout.as_millis(),
                (self.linger + self.request_timeout).as_millis()
            )));
        }
        if self.client_id.len() > crate::protocol::primitives::MAX_STRING_LEN {
            // It is a protocol string in every request header: longer, no
            // request could be encoded, so refuse it here rather than at
            // the first send.
            return Err(ConfigError::invalid(
                "client.id",
                format!("({} bytes)", self.client_id.len()),
                "longer than 32767 bytes",
            ));
        }
        if self.max_request_size < 128 {
            return Err(ConfigError::invalid(
                "max.request.size",
                self.max_request_size.to_string(),
                "too small for one record batch",
            ));
        }
        if self.connect_timeout_max < self.connect_timeout {
            self.connect_timeout_max = self.connect_timeout;
        }
        if self.retry_backoff_max < self.retry_backoff {
            self.retry_backoff_max = self.retry_backoff;
        }
        Ok(())
    }

    /// The level for batches of the configured codec (`None`: its default).
    pub fn compression_level(&self) -> Option<i32> {
        match self.compression {
            Compression::Gzip => self.compression_gzip_level,
            Compression::Lz4 => self.compression_lz4_level,
            Compression::Zstd => self.compression_zstd_level,
            Compression::None | Compression::Snappy => None,
        }
    }

    /// A typed builder starting from the defaults.
    pub fn builder() -> ProducerConfigBuilder {
        ProducerConfigBuilder(Self::default())
    }
}

/// Typed builder for [`ProducerConfig`]; `build()` validates.
#[derive(Debug, Clone)]
pub struct ProducerConfigBuilder(ProducerConfig);

macro_rules! setter {
    ($(#[$doc:meta] $name:ident : $ty:ty => $field:ident),* $(,)?) => {
        $(#[$doc] pub fn $name(mut self, v: $ty) -> Self { self.0.$field = v.into(); self })*
    };
}

impl ProducerConfigBuilder {
    setter! {
        /// `client.id`.
        client_id: &str => client_id,
        /// `acks`.
        acks: Acks => acks,
        /// `linger.ms`.
        linger: Duration => linger,
        /// `batch.size`.
        batch_size: usize => batch_size,
        /// `buffer.memory`.
        buffer_memory: usize => buffer_memory,
        /// `max.in.flight.requests.per.connection`.
        max_in_flight: usize => max_in_flight,
        /// `delivery.timeout.ms`.
        delivery_timeout: Duration => delivery_timeout,
        /// `request.timeout.ms`.
        request_timeout: Duration => request_timeout,
        /// `retries`.
        retries: u32 => retries,
        /// `retry.backoff.ms`.
        retry_backoff: Duration => retry_backoff,
        /// `retry.backoff.max.ms`.
        retry_backoff_max: Duration => retry_backoff_max,
        /// `max.request.size`.
        max_request_size: usize => max_request_size,
        /// `compression.type`.
        compression: Compression => compression,
        /// `metadata.max.age.ms`.
        metadata_max_age: Duration => metadata_max_age,
        /// `max.block.ms`.
        max_block: Duration => max_block,
        /// `metadata.recovery.strategy`.
        metadata_recovery_strategy: MetadataRecoveryStrategy => metadata_recovery_strategy,
        /// `metadata.recovery.rebootstrap.trigger.ms`.
        metadata_recovery_rebootstrap_trigger: Duration => metadata_recovery_rebootstrap_trigger,
        /// `partitioner.adaptive.partitioning.enable`.
        partitioner_adaptive: bool => partitioner_adaptive,
        /// `partitioner.availability.timeout.ms`.
        partitioner_availability_timeout: Duration => partitioner_availability_timeout,
        /// `statistics.interval.ms` (librdkafka's key; needs the `json` feature).
        statistics_interval: Duration => statistics_interval,
        /// Seed of the jitter generator.
        rng_seed: u64 => rng_seed,
        /// `transaction.timeout.ms`.
        transaction_timeout: Duration => transaction_timeout,
    }

    /// `transactional.id`: the producer becomes transactional.
    pub fn transactional_id(mut self, id: &str) -> Self {
        self.0.transactional_id = Some(id.to_owned());
        self
    }

    /// `bootstrap.servers`, comma separated.
    pub fn bootstrap_servers(mut self, servers: &str) -> Self {
        self.0.bootstrap_servers = servers
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        self
    }

    /// `enable.idempotence` (explicit).
    pub fn enable_idempotence(mut self, on: bool) -> Self {
        self.0.enable_idempotence = on;
        self.0.idempotence_explicit = true;
        self
    }

    /// The level of `codec`'s batches (`compression.{gzip,lz4,zstd}.level`;
    /// other codecs have none).
    pub fn compression_level(mut self, codec: Compression, level: i32) -> Self {
        match codec {
            Compression::Gzip => self.0.compression_gzip_level = Some(level),
            Compression::Lz4 => self.0.compression_lz4_level = Some(level),
            Compression::Zstd => self.0.compression_zstd_level = Some(level),
            Compression::None | Compression::Snappy => {}
        }
        self
    }

    /// Any property by its Java key.
    pub fn set(mut self, key: &str, value: &str) -> Result<Self, ConfigError> {
        self.0.set(key, value)?;
        Ok(self)
    }

    /// Validates and returns the configuration.
    pub fn build(self) -> Result<ProducerConfig, ConfigError> {
        let mut c = self.0;
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_interval_needs_the_json_feature() {
        assert_eq!(
            ProducerConfig::default().statistics_interval,
            Duration::ZERO
        );
        let r = ProducerConfig::from_properties([
            ("bootstrap.servers", "a:1"),
            ("statistics.interval.ms", "1000"),
        ]);
        if cfg!(feature = "json") {
            assert_eq!(r.unwrap().statistics_interval, Duration::from_secs(1));
        } else {
            assert_eq!(
                r,
                Err(ConfigError::FeatureMissing {
                    setting: "statistics.interval.ms=1000".into(),
                    feature: "json",
                })
            );
        }
        // Zero (off) needs nothing; librdkafka's range is kept.
        assert!(ProducerConfig::from_properties([("statistics.interval.ms", "0")]).is_ok());
        assert!(matches!(
            ProducerConfig::from_properties([("statistics.interval.ms", "86400001")]),
            Err(ConfigError::InvalidValue { .. })
        ));
    }

    #[test]
    fn java_defaults() {
        let c = ProducerConfig::from_properties([]).unwrap();
        assert_eq!(c.acks, Acks::All);
        assert!(c.enable_idempotence);
        assert_eq!(c.linger, Duration::from_millis(5));
        assert_eq!(c.batch_size, 16384);
        assert_eq!(c.buffer_memory, 33554432);
        assert_eq!(c.max_in_flight, 5);
        assert_eq!(c.delivery_timeout, Duration::from_secs(120));
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.retry_backoff, Duration::from_millis(100));
        assert_eq!(c.retry_backoff_max, Duration::from_millis(1000));
        assert_eq!(c.max_request_size, 1048576);
        assert_eq!(c.compression, Compression::None);
        assert_eq!(
            c.metadata_recovery_strategy,
            MetadataRecoveryStrategy::Rebootstrap
        );
        assert_eq!(
            c.metadata_recovery_rebootstrap_trigger,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn metadata_recovery_strategy_is_none_or_rebootstrap_in_any_case() {
        let c = ProducerConfig::from_properties([("metadata.recovery.strategy", "NONE")]).unwrap();
        assert_eq!(c.metadata_recovery_strategy, MetadataRecoveryStrategy::None);
        let c = ProducerConfig::from_properties([("metadata.recovery.strategy", " Rebootstrap")])
            .unwrap();
        assert_eq!(
            c.metadata_recovery_strategy,
            MetadataRecoveryStrategy::Rebootstrap
        );
        for (k, v) in [
            ("metadata.recovery.strategy", "reboot"),
            ("metadata.recovery.rebootstrap.trigger.ms", "-1"),
        ] {
            assert!(
                matches!(
                    ProducerConfig::from_properties([(k, v)]),
                    Err(ConfigError::InvalidValue { key, .. }) if key == k
                ),
                "{k}={v}"
            );
        }
    }

    #[test]
    fn explicit_idempotence_conflicts_are_errors() {
        for (k, v) in [
            ("acks", "1"),
            ("max.in.flight.requests.per.connection", "6"),
            ("retries", "0"),
        ] {
            let r = ProducerConfig::from_properties([("enable.idempotence", "true"), (k, v)]);
            assert!(matches!(r, Err(ConfigError::Conflict(_))), "{k}={v}: {r:?}");
            // With idempotence at its default, Java turns it off instead.
            let c = ProducerConfig::from_properties([(k, v)]).unwrap();
            assert!(!c.enable_idempotence);
        }
    }

    #[test]
    fn bad_values_are_typed_errors() {
        assert!(matches!(
            ProducerConfig::from_properties([("acks", "2")]),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            ProducerConfig::from_properties([("linger.ms", "-1")]),
            Err(ConfigError::InvalidValue { .. })
        ));
        let long = "c".repeat(32768);
        assert!(matches!(
            ProducerConfig::from_properties([("client.id", long.as_str())]),
            Err(ConfigError::InvalidValue { key, .. }) if key == "client.id"
        ));
        assert!(ProducerConfig::from_properties([("client.id", &long[1..])]).is_ok());
        assert!(matches!(
            ProducerConfig::from_properties([("no.such.key", "1")]),
            Err(ConfigError::UnknownKey(_))
        ));
        assert!(matches!(
            ProducerConfig::from_properties([("delivery.timeout.ms", "1000")]),
            Err(ConfigError::Conflict(_))
        ));
    }

    #[test]
    fn properties_text_and_builder_agree() {
        let a = ProducerConfig::from_properties_text(
            "# comment\nbootstrap.servers=a:1, b:2\nacks=1\nlinger.ms=0\nenable.idempotence=false\n",
        )
        .unwrap();
        let b = ProducerConfig::builder()
            .bootstrap_servers("a:1,b:2")
            .acks(Acks::Leader)
            .linger(Duration::ZERO)
            .enable_idempotence(false)
            .build()
            .unwrap();
        assert_eq!(a, b);
    }

    const PLAIN_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cr3t-pw";"#;

    #[test]
    fn security_keys_parse_and_hide_secrets() {
        use crate::producer::security::{SaslMechanism, SecurityProtocol};
        let mut c = ProducerConfig::default();
        assert_eq!(c.security.protocol, SecurityProtocol::Plaintext);
        assert!(c.security.tls.endpoint_identification);
        c.set("security.protocol", "sasl_plaintext").unwrap();
        c.set("sasl.mechanism", "SCRAM-SHA-512").unwrap();
        c.set("sasl.jaas.config", PLAIN_JAAS).unwrap();
        c.set("sasl.oauthbearer.extensions", "a=1, b=2").unwrap();
        c.set("ssl.endpoint.identification.algorithm", "").unwrap();
        c.set("ssl.key.password", "keypass-x").unwrap();
        assert_eq!(c.security.sasl_mechanism, Some(SaslMechanism::ScramSha512));
        assert_eq!(c.security.credentials().unwrap().username, "alice");
        assert_eq!(c.security.sasl_oauthbearer_extensions.len(), 2);
        assert!(!c.security.tls.endpoint_identification);
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("s3cr3t-pw") && !debug.contains("keypass-x"),
            "{debug}"
        );

        for (k, v) in [
            ("security.protocol", "TLS"),
            ("sasl.mechanism", "GSSAPI"),
            ("ssl.endpoint.identification.algorithm", "ldap"),
        ] {
            assert!(matches!(
                c.clone().set(k, v),
                Err(ConfigError::InvalidValue { .. })
            ));
        }
        let e = c
            .set(
                "sasl.jaas.config",
                "PlainLoginModule required password=\"hunter2\"",
            )
            .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(matches!(
            c.set("ssl.nope", "1"),
            Err(ConfigError::UnknownKey(_))
        ));
    }

    #[test]
    fn security_validation() {
        let base = [("security.protocol", "SASL_SSL")];
        let r = ProducerConfig::from_properties(base);
        #[cfg(not(feature = "tls"))]
        assert_eq!(
            r.unwrap_err().to_string(),
            "security.protocol=SASL_SSL needs the `tls` feature"
        );
        #[cfg(all(feature = "tls", not(feature = "sasl")))]
        assert!(matches!(
            r,
            Err(ConfigError::FeatureMissing {
                feature: "sasl",
                ..
            })
        ));
        #[cfg(all(feature = "tls", feature = "sasl"))]
        {
            // Java's default mechanism is GSSAPI, which is not spoken.
            assert!(
                matches!(r, Err(ConfigError::InvalidValue { key, .. }) if key == "sasl.mechanism")
            );
            let r = ProducerConfig::from_properties([
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
            ]);
            assert_eq!(
                r,
                Err(ConfigError::MissingCredentials {
                    mechanism: "SCRAM-SHA-256",
                    module: "ScramLoginModule"
                })
            );
            let ok = ProducerConfig::from_properties([
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.username", "u"),
                ("sasl.password", "p"),
            ]);
            assert!(ok.is_ok(), "{ok:?}");
            let ok = ProducerConfig::from_properties([
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.jaas.config", PLAIN_JAAS),
            ]);
            assert!(ok.is_ok(), "{ok:?}");
            let r = ProducerConfig::from_properties([
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "OAUTHBEARER"),
                ("sasl.jaas.config", PLAIN_JAAS),
            ]);
            assert!(matches!(r, Err(ConfigError::Conflict(_))));
            let r = ProducerConfig::from_properties([
                ("security.protocol", "SSL"),
                ("ssl.truststore.type", "JKS"),
            ]);
            assert!(
                matches!(&r, Err(ConfigError::Tls(m)) if m.contains("ssl.truststore.type=PEM")),
                "{r:?}"
            );
            let r = ProducerConfig::from_properties([
                ("security.protocol", "SSL"),
                ("ssl.ca.location", "/nonexistent/ca.pem"),
            ]);
            assert!(matches!(r, Err(ConfigError::Tls(_))));
        }
        #[cfg(not(feature = "sasl"))]
        assert_eq!(
            ProducerConfig::from_properties([("security.protocol", "SASL_PLAINTEXT")])
                .unwrap_err()
                .to_string(),
            "security.protocol=SASL_PLAINTEXT needs the `sasl` feature"
        );
        assert!(ProducerConfig::from_properties([("security.protocol", "PLAINTEXT")]).is_ok());
    }
}
