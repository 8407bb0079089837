//! The producer core against the mock cluster's SASL and TLS listeners over
//! the in-memory [`Pair`], deterministic (simulated clock): records delivered
//! over SASL_PLAINTEXT, SSL and SASL_SSL; KIP-368 re-authentication with
//! records flowing (none lost, duplicated or reordered), OAUTHBEARER tokens
//! refreshed before the sessions they bound run out; every refusal a
//! typed error, with the connections the core opened for it counted.
#![cfg(all(feature = "sasl", feature = "tls"))]

#[path = "certs/mod.rs"]
mod certs;
#[path = "security/counting.rs"]
mod counting;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_sansio::mock::{MockCluster, MockTls, Pair};
use kafka_sansio::producer::security::sasl::UnsecuredJwsProvider;
use kafka_sansio::producer::security::TlsError;
use kafka_sansio::producer::security::{
    SaslMechanism, SecurityConfig, SecurityProtocol, SharedTokenProvider,
};
use kafka_sansio::producer::{
    ConnectionError, DeliveryError, Event, Producer, ProducerConfig, ProducerRecord,
};
use kafka_sansio::protocol::ErrorCode;

use certs::Ca;
use counting::Counting;

/// The core's wall clock: 2027-01-15, inside rcgen's default validity.
const WALL_MS: i64 = 1_800_000_000_000;

const SCRAM: SaslMechanism = SaslMechanism::ScramSha512;

fn sasl_cluster(mechanisms: &[SaslMechanism]) -> MockCluster {
    let mut c = MockCluster::new(1);
    c.enable_sasl(mechanisms).unwrap();
    for m in mechanisms {
        c.add_sasl_user(*m, "alice", "alice-secret").unwrap();
    }
    c.create_topic("t", 2).unwrap();
    c
}

fn tls_for(ca: &Ca, name: &str) -> MockTls {
    let (cert, key) = ca.leaf(name, None);
    MockTls::from_pem(cert.as_bytes(), key.as_bytes(), None).unwrap()
}

/// A producer config: `protocol`, SASL `mechanism` as alice with
/// `password`, trusting `ca`.
fn config(
    protocol: &str,
    mechanism: SaslMechanism,
    password: &str,
    ca: Option<&Ca>,
) -> ProducerConfig {
    let mut b = ProducerConfig::builder()
        .bootstrap_servers("localhost:9092")
        .set("security.protocol", protocol)
        .unwrap()
        .set("request.timeout.ms", "5000")
        .unwrap()
        .set("delivery.timeout.ms", "20000")
        .unwrap()
        .set("max.block.ms", "10000")
        .unwrap();
    if protocol.starts_with("SASL") {
        b = b
            .set("sasl.mechanism", mechanism.name())
            .unwrap()
            .set("sasl.username", "alice")
            .unwrap()
            .set("sasl.password", password)
            .unwrap();
    }
    if let Some(ca) = ca {
        b = b
            .set("ssl.truststore.type", "PEM")
            .unwrap()
            .set("ssl.truststore.certificates", &ca.pem())
            .unwrap();
    }
    b.build().unwrap()
}

fn pair(config: ProducerConfig, cluster: MockCluster) -> Pair {
    let now = Instant::now();
    Pair::new(Producer::new(config, now, WALL_MS).unwrap(), cluster, now)
}

/// Sends `n` records to partition `p` of "t", values `0..n`.
fn send(pair: &mut Pair, from: usize, n: usize) {
    for i in from..from + n {
        let r = ProducerRecord::new("t", i.to_string()).partition(0);
        pair.core(|p, now| p.send(r, now)).unwrap();
    }
}

/// Delivered record ids, failures.
fn outcomes(pair: &Pair) -> (Vec<u64>, Vec<DeliveryError>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for e in &pair.events {
        match e {
            Event::Delivered(d) => ok.extend(d.records.iter().map(|id| id.0)),
            Event::Failed(f) => failed.extend(f.records.iter().map(|_| f.error.clone())),
            _ => {}
        }
    }
    (ok, failed)
}

/// Values of partition 0 in log order.
fn log_values(pair: &Pair) -> Vec<usize> {
    pair.broker
        .records("t", 0)
        .unwrap()
        .iter()
        .map(|r| {
            std::str::from_utf8(r.value.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

fn delivers(protocol: &str, mechanism: SaslMechanism, tls: bool) {
    let ca = Ca::new("mock CA");
    let mut cluster = if protocol.starts_with("SASL") {
        sasl_cluster(&[SaslMechanism::Plain, SaslMechanism::ScramSha256, SCRAM])
    } else {
        let mut c = MockCluster::new(1);
        c.create_topic("t", 2).unwrap();
        c
    };
    if tls {
        cluster.set_tls(Some(tls_for(&ca, "localhost")));
    }
    let mut pair = pair(
        config(protocol, mechanism, "alice-secret", tls.then_some(&ca)),
        cluster,
    );
    send(&mut pair, 0, 50);
    assert!(pair.run_until(|p| p.producer.is_idle()), "{protocol}");
    let (ok, failed) = outcomes(&pair);
    assert_eq!((ok.len(), failed.len()), (50, 0), "{protocol} {failed:?}");
    assert_eq!(log_values(&pair), (0..50).collect::<Vec<_>>());
    if protocol.starts_with("SASL") {
        let s = pair.broker.sasl_stats();
        assert_eq!(s.failures + s.unauthenticated_closes, 0, "{s:?}");
        assert!(s.authentications >= 1);
    }
}

#[test]
fn sasl_plaintext_plain_and_scram_deliver() {
    for m in [SaslMechanism::Plain, SaslMechanism::ScramSha256, SCRAM] {
        delivers("SASL_PLAINTEXT", m, false);
    }
}

#[test]
fn ssl_and_sasl_ssl_deliver() {
    delivers("SSL", SCRAM, true);
    delivers("SASL_SSL", SCRAM, true);
    delivers("SASL_SSL", SaslMechanism::Plain, true);
}

/// Records every 50 ms for 60 s against a 5 s session: the core
/// re-authenticates on the live connection; every record lands once, in order.
fn reauthenticates_with_records_flowing(tls: bool) {
    let ca = Ca::new("mock CA");
    let mut cluster = sasl_cluster(&[SCRAM]);
    cluster.set_session_lifetime(Some(Duration::from_secs(5)));
    cluster.set_latency(0, Duration::from_millis(3));
    if tls {
        cluster.set_tls(Some(tls_for(&ca, "localhost")));
    }
    let protocol = if tls { "SASL_SSL" } else { "SASL_PLAINTEXT" };
    let mut pair = pair(
        config(protocol, SCRAM, "alice-secret", tls.then_some(&ca)),
        cluster,
    );
    let n = 1200;
    for i in 0..n {
        send(&mut pair, i, 1);
        pair.advance(Duration::from_millis(50));
    }
    assert!(pair.run_until(|p| p.producer.is_idle()));
    let (ok, failed) = outcomes(&pair);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(ok.len(), n);
    assert_eq!(log_values(&pair), (0..n).collect::<Vec<_>>());
    let s = pair.broker.sasl_stats();
    let conns = pair.connects().len() as u64;
    // 60 s of 5 s sessions renewed at 85-95%: 12 to 14 re-authentications a connection.
    assert!(
        (11 * conns..=15 * conns).contains(&s.reauthentications),
        "{s:?}, connects {:?}",
        pair.connects()
    );
    assert_eq!(
        (s.expired_closes, s.failures, s.unauthenticated_closes),
        (0, 0, 0),
        "{s:?}"
    );
    assert!(pair.connects().len() <= 2, "connects {:?}", pair.connects());
    eprintln!(
        "{protocol}: {} records, {} re-authentications, {} connections",
        ok.len(),
        s.reauthentications,
        pair.connects().len()
    );
}

#[test]
fn reauthentication_mid_stream_loses_nothing() {
    reauthenticates_with_records_flowing(false);
    reauthenticates_with_records_flowing(true);
}

/// Sends records and runs 10 s of simulated time; the failures, and how
/// many connections the core opened.
fn refused(config: ProducerConfig, cluster: MockCluster) -> (Vec<DeliveryError>, usize, Duration) {
    let mut pair = pair(config, cluster);
    let start = pair.now;
    send(&mut pair, 0, 5);
    let done =
        pair.run_until(|p| outcomes(p).1.len() == 5 || p.now >= start + Duration::from_secs(10));
    assert!(done);
    let elapsed = pair.now - start;
    let (ok, failed) = outcomes(&pair);
    assert!(ok.is_empty());
    (failed, pair.connects().len(), elapsed)
}

fn cause(e: &DeliveryError) -> &ConnectionError {
    match e {
        DeliveryError::Authentication { cause, .. } => cause,
        other => panic!("not an authentication error: {other:?}"),
    }
}

#[test]
fn wrong_password_fails_the_records_with_the_brokers_message() {
    for m in [SaslMechanism::Plain, SCRAM] {
        let (failed, connects, elapsed) = refused(
            config("SASL_PLAINTEXT", m, "wrong", None),
            sasl_cluster(&[m]),
        );
        assert_eq!(failed.len(), 5);
        match cause(&failed[0]) {
            ConnectionError::SaslAuthentication { code, message, .. } => {
                assert_eq!(*code, ErrorCode::SaslAuthenticationFailed);
                assert!(message
                    .as_deref()
                    .unwrap()
                    .starts_with("Authentication failed"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{:?}", failed[0]).contains("wrong"), "no secret");
        assert!(connects <= 2, "{m:?}: {connects} connections");
        eprintln!("{m:?} wrong password: failed after {elapsed:?}, {connects} connections");
    }
}

#[test]
fn unknown_mechanism_lists_the_enabled_ones() {
    let (failed, connects, _) = refused(
        config("SASL_PLAINTEXT", SCRAM, "alice-secret", None),
        sasl_cluster(&[SaslMechanism::Plain, SaslMechanism::ScramSha256]),
    );
    match cause(&failed[0]) {
        ConnectionError::UnsupportedSaslMechanism { enabled, .. } => {
            assert_eq!(enabled, &["PLAIN", "SCRAM-SHA-256"])
        }
        other => panic!("{other:?}"),
    }
    assert!(connects <= 2, "{connects} connections");
}

fn tls_error(e: &DeliveryError) -> &TlsError {
    match cause(e) {
        ConnectionError::TlsHandshake { error, .. } => error,
        other => panic!("{other:?}"),
    }
}

#[test]
fn untrusted_expired_and_misnamed_certificates() {
    let ca = Ca::new("mock CA");
    let other = Ca::new("other CA");
    let mut cluster = MockCluster::new(1);
    cluster.create_topic("t", 2).unwrap();
    cluster.set_tls(Some(tls_for(&other, "localhost")));
    let (failed, connects, _) = refused(config("SSL", SCRAM, "", Some(&ca)), cluster);
    assert_eq!(tls_error(&failed[0]), &TlsError::UntrustedCertificate);
    assert!(connects <= 2, "{connects} connections");

    let mut cluster = MockCluster::new(1);
    cluster.create_topic("t", 2).unwrap();
    cluster.set_tls(Some(tls_for(&ca, "broker.example")));
    let (failed, connects, _) = refused(config("SSL", SCRAM, "", Some(&ca)), cluster);
    assert!(
        matches!(tls_error(&failed[0]), TlsError::NameMismatch(h) if h == "localhost"),
        "{failed:?}"
    );
    assert!(connects <= 2, "{connects} connections");

    // Expired at the core's wall clock (2027).
    let (cert, key) = ca.leaf("localhost", Some(2025));
    let mut cluster = MockCluster::new(1);
    cluster.create_topic("t", 2).unwrap();
    cluster.set_tls(Some(
        MockTls::from_pem(cert.as_bytes(), key.as_bytes(), None).unwrap(),
    ));
    let (failed, connects, _) = refused(config("SSL", SCRAM, "", Some(&ca)), cluster);
    assert_eq!(tls_error(&failed[0]), &TlsError::ExpiredCertificate);
    assert!(connects <= 2, "{connects} connections");
}

/// The records' error once max.block.ms passed without a usable connection.
fn unavailable(e: &DeliveryError) -> &ConnectionError {
    match e {
        DeliveryError::BrokerUnavailable { cause, waited_ms } => {
            assert_eq!(*waited_ms, 10_000, "max.block.ms");
            cause
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn plaintext_client_on_a_tls_listener_and_the_reverse() {
    let ca = Ca::new("mock CA");
    let mut cluster = MockCluster::new(1);
    cluster.create_topic("t", 2).unwrap();
    cluster.set_tls(Some(tls_for(&ca, "localhost")));
    let (failed, connects, elapsed) = refused(config("PLAINTEXT", SCRAM, "", None), cluster);
    eprintln!(
        "plaintext on TLS: {:?} after {elapsed:?}, {connects} connections",
        failed.first()
    );
    assert_eq!(failed.len(), 5);
    assert!(matches!(
        unavailable(&failed[0]),
        ConnectionError::TlsListener { .. }
    ));
    // Reconnects back off 50 ms doubling to 1 s: at most 15 in 10 s.
    assert!(connects <= 15, "{connects} connections");

    let mut cluster = MockCluster::new(1);
    cluster.create_topic("t", 2).unwrap();
    let (failed, connects, elapsed) = refused(config("SSL", SCRAM, "", Some(&ca)), cluster);
    eprintln!(
        "TLS on plaintext: {:?} after {elapsed:?}, {connects} connections",
        failed.first()
    );
    assert_eq!(failed.len(), 5);
    assert!(matches!(
        unavailable(&failed[0]),
        ConnectionError::ClosedDuringTlsHandshake { .. }
    ));
    assert!(connects <= 15, "{connects} connections");
}

/// A record a second for 40 s with 10 s tokens and no
/// `connections.max.reauth.ms`: the mock ends each session with its token,
/// so the core asks the provider for a new one at 80-85% of a token's life
/// and re-authenticates with it before the session runs out; every record
/// lands once, in order, on the connections it started with.
#[test]
fn oauthbearer_tokens_are_refreshed_before_they_expire() {
    let refused = ProducerConfig::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "OAUTHBEARER"),
    ])
    .unwrap_err();
    // Neither login-module options nor a provider: refused, naming what is missing.
    assert!(refused.to_string().contains("token provider"), "{refused}");
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = Counting(
        UnsecuredJwsProvider {
            principal: "svc".into(),
            lifetime_s: 10,
            scope: vec![],
        },
        Arc::clone(&calls),
    );
    let mut cfg = ProducerConfig {
        bootstrap_servers: vec!["localhost:9092".into()],
        linger: Duration::ZERO,
        security: SecurityConfig {
            protocol: SecurityProtocol::SaslPlaintext,
            sasl_mechanism: Some(SaslMechanism::OAuthBearer),
            sasl_oauthbearer_token_provider: Some(SharedTokenProvider::new(provider)),
            ..Default::default()
        },
        ..Default::default()
    };
    cfg.validate().unwrap();
    let mut cluster = MockCluster::new(1);
    cluster.enable_sasl(&[SaslMechanism::OAuthBearer]).unwrap();
    cluster.create_topic("t", 2).unwrap();
    let mut pair = pair(cfg, cluster);
    let now = pair.now;
    pair.broker.set_wall_clock(now, WALL_MS);
    // The clock in 100 ms steps: the core's timers (token refresh,
    // re-authentication) fire within 100 ms of their time.
    for i in 0..40 {
        send(&mut pair, i, 1);
        for _ in 0..10 {
            pair.advance(Duration::from_millis(100));
        }
    }
    assert!(pair.run_until(|p| p.producer.is_idle()));
    let (ok, failed) = outcomes(&pair);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(ok.len(), 40);
    assert_eq!(log_values(&pair), (0..40).collect::<Vec<_>>());
    // 40 s with 10 s tokens, refreshed at 80-85% of their life: 5 or 6
    // tokens; each session (9-10 s, `iat` being whole seconds) renewed at
    // 85-95%, after the token it began with was replaced.
    let n = calls.load(Ordering::SeqCst);
    let s = pair.broker.sasl_stats();
    assert!((5..=7).contains(&n), "{n} tokens");
    let conns = pair.connects().len() as u64;
    assert!(
        s.reauthentications >= 3 * conns,
        "{s:?}, {conns} connections"
    );
    assert_eq!(
        (
            s.expired_closes,
            s.failures,
            s.token_rejections,
            s.unauthenticated_closes
        ),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert!(pair.connects().len() <= 2, "connects {:?}", pair.connects());
    eprintln!(
        "OAUTHBEARER: 40 records, {n} tokens, {} re-authentications, {} connections",
        s.reauthentications,
        pair.connects().len()
    );
}
