//! TLS and SASL in the core's connections, stepped against a scripted
//! broker (`security/net.rs`): SASL PLAIN and SCRAM-SHA-256/512 (OAUTHBEARER
//! is against the mock's validator, in `secured_pair.rs`) through the
//! handshake to ready, KIP-368 re-authentication with batches
//! in flight, the typed failures (wrong password, a mechanism the broker
//! does not enable, a broker that stops mid-handshake), and, with `tls`,
//! the TLS layer against a rustls server with rcgen certificates (trusted,
//! untrusted, expired, another host's, a plaintext listener and the
//! reverse, failures mid-stream, a handshake that never finishes).
#![cfg(feature = "sasl")]

#[path = "security/net.rs"]
mod net;

#[cfg(feature = "tls")]
mod certs;

use std::time::Duration;

use kafka_sansio::producer::{ConnectionError, DeliveryError, Event, ProducerRecord};
use kafka_sansio::protocol::frame::ApiKey;
use kafka_sansio::protocol::ErrorCode;

use net::{Net, SaslBroker, ServerTls};

const TOPIC: &str = "secured";

fn rec(v: &str) -> ProducerRecord {
    ProducerRecord::new(TOPIC, v.to_string()).partition(0)
}

fn delivered(n: &Net) -> usize {
    n.events
        .iter()
        .map(|e| match e {
            Event::Delivered(d) => d.records.len(),
            _ => 0,
        })
        .sum()
}

fn failures(n: &Net) -> Vec<DeliveryError> {
    n.events
        .iter()
        .filter_map(|e| match e {
            Event::Failed(f) => Some(f.error.clone()),
            _ => None,
        })
        .collect()
}

/// The cause of the one failure, which must be `BrokerUnavailable`: the
/// records waited `max.block.ms` for a broker that never became usable.
fn unavailable(n: &Net) -> ConnectionError {
    match &failures(n)[..] {
        [DeliveryError::BrokerUnavailable { cause, .. }] => cause.clone(),
        other => panic!("{other:?}"),
    }
}

fn jaas(mechanism: &str, user: &str, password: &str) -> String {
    let module = if mechanism == "PLAIN" {
        "org.apache.kafka.common.security.plain.PlainLoginModule"
    } else {
        "org.apache.kafka.common.security.scram.ScramLoginModule"
    };
    format!(r#"{module} required username="{user}" password="{password}";"#)
}

fn sasl_net(mechanism: &str, password: &str, extra: &[(&str, &str)], broker: SaslBroker) -> Net {
    let j = jaas(mechanism, "alice", password);
    let mut props = vec![
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", mechanism),
        ("sasl.jaas.config", j.as_str()),
    ];
    props.extend_from_slice(extra);
    Net::new(&props, broker, ServerTls::None)
}

/// Sends `n` records and runs until each has its outcome.
fn send_and_settle(net: &mut Net, values: &[&str]) {
    for v in values {
        net.p.send(rec(v), net.now).unwrap();
    }
    assert!(
        net.run_until(Duration::from_secs(200), |n| n.p.pending_records() == 0),
        "records settled"
    );
}

fn log_values(net: &Net) -> Vec<String> {
    net.broker
        .cluster
        .records(TOPIC, 0)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
        .collect()
}

#[test]
fn sasl_plain_and_scram_authenticate_before_any_other_request() {
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let mut net = sasl_net(mechanism, "secret-pw", &[], SaslBroker::new());
        send_and_settle(&mut net, &["a", "b", "c"]);
        assert_eq!(delivered(&net), 3, "{mechanism}: {:?}", net.events);
        assert!(
            net.broker.violations.is_empty(),
            "{mechanism}: {:?}",
            net.broker.violations
        );
        assert_eq!(log_values(&net), ["a", "b", "c"]);
        // Every connection: ApiVersions, SaslHandshake, SaslAuthenticate
        // (one for PLAIN, two for SCRAM), then the producer's requests.
        let rounds = if mechanism == "PLAIN" { 1 } else { 2 };
        assert!(!net.broker.requests.is_empty());
        for (conn, reqs) in &net.broker.requests {
            let keys: Vec<i16> = reqs.iter().map(|r| r.0).collect();
            let mut want = vec![ApiKey::ApiVersions.code(), ApiKey::SaslHandshake.code()];
            want.extend(std::iter::repeat_n(ApiKey::SaslAuthenticate.code(), rounds));
            assert_eq!(
                keys[..want.len()],
                want[..],
                "{mechanism} {conn:?}: {keys:?}"
            );
            assert_eq!(net.broker.auths.get(conn), Some(&1), "{mechanism} {conn:?}");
        }
    }
}

#[test]
fn wrong_password_fails_records_promptly_and_reconnects_back_off() {
    let mut net = sasl_net("SCRAM-SHA-512", "wrong-pw", &[], SaslBroker::new());
    let t0 = net.now;
    net.p.send(rec("x"), net.now).unwrap();
    let token = net.p.flush(net.now);
    assert!(net.run_until(Duration::from_secs(5), |n| n.p.pending_records() == 0));
    assert!(
        net.now - t0 < Duration::from_millis(100),
        "failed at once, not at a timeout"
    );
    assert!(
        net.p.is_flushed(token),
        "the flush completes with the failure"
    );
    let errs = failures(&net);
    assert_eq!(errs.len(), 1);
    let DeliveryError::Authentication {
        cause,
        maybe_persisted: false,
    } = &errs[0]
    else {
        panic!("{errs:?}");
    };
    assert!(
        matches!(
            cause,
            ConnectionError::SaslAuthentication {
                code: ErrorCode::SaslAuthenticationFailed,
                mechanism: "SCRAM-SHA-512",
                message: Some(_),
                ..
            }
        ),
        "{cause:?}"
    );
    let text = format!("{} {:?}", errs[0], errs[0]);
    assert!(!text.contains("wrong-pw"), "no secret in the error: {text}");
    // Every later record fails the same way, after a reconnect backoff that
    // doubles up to reconnect.backoff.max.ms: no reconnect storm.
    for i in 0..12 {
        net.p.send(rec(&format!("y{i}")), net.now).unwrap();
        assert!(net.run_until(Duration::from_secs(5), |n| n.p.pending_records() == 0));
    }
    assert_eq!(failures(&net).len(), 13);
    assert!(failures(&net)
        .iter()
        .all(|e| matches!(e, DeliveryError::Authentication { .. })));
    let gaps: Vec<Duration> = net.dialed.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        net.dialed.len(),
        13,
        "one connect per record, no retry loop: {gaps:?}"
    );
    assert!(gaps[0] >= Duration::from_millis(40), "{gaps:?}");
    assert!(
        gaps.last().unwrap() >= &Duration::from_millis(800),
        "{gaps:?}"
    );
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_millis(1200)),
        "{gaps:?}"
    );
}

#[test]
fn unsupported_mechanism_names_the_brokers() {
    let mut broker = SaslBroker::new();
    broker.mechanisms = vec!["PLAIN", "SCRAM-SHA-256"];
    let mut net = sasl_net("SCRAM-SHA-512", "secret-pw", &[], broker);
    send_and_settle(&mut net, &["x"]);
    let errs = failures(&net);
    let [DeliveryError::Authentication { cause, .. }] = &errs[..] else {
        panic!("{errs:?}");
    };
    let ConnectionError::UnsupportedSaslMechanism {
        mechanism, enabled, ..
    } = cause
    else {
        panic!("{cause:?}");
    };
    assert_eq!(*mechanism, "SCRAM-SHA-512");
    assert_eq!(enabled, &["PLAIN", "SCRAM-SHA-256"]);
    assert!(cause.to_string().contains("PLAIN"), "{cause}");
}

#[test]
fn reauthentication_keeps_every_batch_in_flight_and_in_order() {
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let mut broker = SaslBroker::new();
        broker.lifetime_ms = 400;
        let mut net = sasl_net(mechanism, "secret-pw", &[("linger.ms", "0")], broker);
        net.latency = Duration::from_millis(25);
        let mut sent = Vec::new();
        for i in 0..300 {
            let v = format!("r{i}");
            net.p.send(rec(&v), net.now).unwrap();
            sent.push(v);
            net.advance(Duration::from_millis(10));
        }
        assert!(net.run_until(Duration::from_secs(60), |n| n.p.pending_records() == 0));
        assert!(
            failures(&net).is_empty(),
            "{mechanism}: {:?}",
            failures(&net)
        );
        assert_eq!(delivered(&net), 300);
        assert_eq!(
            log_values(&net),
            sent,
            "{mechanism}: each once, in send order"
        );
        assert!(
            net.broker.violations.is_empty(),
            "{mechanism}: {:?}",
            net.broker.violations
        );
        // 3 s of sessions of 400 ms: the leader connection re-authenticated
        // (at 85-95%) some 8 times, none of them a new connection.
        let most = net.broker.auths.values().max().copied().unwrap_or(0);
        assert!(
            (7..=10).contains(&most),
            "{mechanism}: {:?}",
            net.broker.auths
        );
        assert!(
            net.dialed.len() <= 2,
            "{mechanism}: no reconnects: {}",
            net.dialed.len()
        );
        // The re-authentications went out behind answers still on their way.
        assert!(
            net.reauth_in_flight.iter().any(|&n| n > 0),
            "{mechanism}: {:?}",
            net.reauth_in_flight
        );
    }
}

#[test]
fn a_broker_that_stops_mid_handshake_times_out_within_bounds() {
    let mut broker = SaslBroker::new();
    broker.stall_authenticate = true;
    let mut net = sasl_net(
        "PLAIN",
        "secret-pw",
        &[("request.timeout.ms", "2000"), ("max.block.ms", "5000")],
        broker,
    );
    let t0 = net.now;
    send_and_settle(&mut net, &["x"]);
    let cause = unavailable(&net);
    assert!(
        matches!(
            cause,
            ConnectionError::RequestTimeout {
                api: ApiKey::SaslAuthenticate,
                ms: 2000,
                ..
            }
        ),
        "{cause:?}"
    );
    assert!(net.now - t0 <= Duration::from_millis(5100));
}

#[test]
fn scram_nonces_come_from_the_seed() {
    let nonces = |seed: &str| {
        let mut net = sasl_net(
            "SCRAM-SHA-256",
            "secret-pw",
            &[("kafka_sansio.rng.seed", seed)],
            SaslBroker::new(),
        );
        send_and_settle(&mut net, &["x"]);
        net.broker.scram_firsts.clone()
    };
    let (a, b, c) = (nonces("7"), nonces("7"), nonces("8"));
    assert_eq!(a, b, "same seed, same nonces");
    assert_ne!(a, c);
    assert!(a.len() >= 2);
    assert_ne!(a[0], a[1], "a fresh nonce per exchange");
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use certs::{server_config, Ca};
    use kafka_sansio::producer::security::TlsError;

    fn tls_net(
        protocol: &str,
        ca: &Ca,
        cert: (&str, &str),
        extra: &[(&str, &str)],
        broker: SaslBroker,
    ) -> Net {
        let pem = ca.pem();
        let j = jaas("SCRAM-SHA-512", "alice", "secret-pw");
        let mut props = vec![
            ("security.protocol", protocol),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", pem.as_str()),
        ];
        if protocol == "SASL_SSL" {
            props.push(("sasl.mechanism", "SCRAM-SHA-512"));
            props.push(("sasl.jaas.config", j.as_str()));
        }
        props.extend_from_slice(extra);
        Net::new(
            &props,
            broker,
            ServerTls::Tls(server_config(cert.0, cert.1, None)),
        )
    }

    fn plain_broker() -> SaslBroker {
        let mut b = SaslBroker::new();
        b.sasl = false;
        b
    }

    /// Why TLS refused the broker: the one failure must be an authentication
    /// failure of the TLS handshake.
    fn tls_refusal(net: &Net) -> TlsError {
        match &failures(net)[..] {
            [DeliveryError::Authentication {
                cause: ConnectionError::TlsHandshake { error, .. },
                ..
            }] => error.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ssl_and_sasl_ssl_deliver_large_requests_over_tls() {
        let ca = Ca::new("cluster CA");
        let (cert, key) = ca.leaf("localhost", None);
        for protocol in ["SSL", "SASL_SSL"] {
            let broker = if protocol == "SSL" {
                plain_broker()
            } else {
                SaslBroker::new()
            };
            let mut net = tls_net(protocol, &ca, (&cert, &key), &[], broker);
            // 300 KB records: requests far past rustls' default 64 KiB buffer.
            let big = "v".repeat(300_000);
            send_and_settle(&mut net, &["small", &big, &big, "end"]);
            assert_eq!(delivered(&net), 4, "{protocol}: {:?}", failures(&net));
            assert!(
                net.broker.violations.is_empty(),
                "{protocol}: {:?}",
                net.broker.violations
            );
            let log = log_values(&net);
            assert_eq!(log.len(), 4);
            assert_eq!(log[1].len(), 300_000);
            assert_eq!(log[3], "end");
            if protocol == "SASL_SSL" {
                assert!(net.broker.auths.values().all(|&n| n == 1));
            }
            // acks=0 completes on write: the ciphertext count covers its request.
            let mut net = tls_net(
                protocol,
                &ca,
                (&cert, &key),
                &[("acks", "0"), ("enable.idempotence", "false")],
                if protocol == "SSL" {
                    plain_broker()
                } else {
                    SaslBroker::new()
                },
            );
            send_and_settle(&mut net, &["z", &big]);
            assert_eq!(delivered(&net), 2, "{protocol} acks=0");
            net.advance(Duration::from_millis(10));
            assert_eq!(
                log_values(&net).len(),
                2,
                "{protocol} acks=0 reached the log"
            );
        }
    }

    #[test]
    fn untrusted_expired_and_wrong_host_certificates_fail_typed() {
        let ca = Ca::new("cluster CA");
        let other = Ca::new("other CA");
        let (cert, key) = ca.leaf("localhost", None);
        let mut net = tls_net("SSL", &other, (&cert, &key), &[], plain_broker());
        send_and_settle(&mut net, &["x"]);
        assert_eq!(tls_refusal(&net), TlsError::UntrustedCertificate);

        // Expired at the core's wall clock (2027), whatever the system's.
        let (old, old_key) = ca.leaf("localhost", Some(2026));
        let mut net = tls_net("SASL_SSL", &ca, (&old, &old_key), &[], SaslBroker::new());
        send_and_settle(&mut net, &["x"]);
        assert_eq!(tls_refusal(&net), TlsError::ExpiredCertificate);
        assert!(net.broker.requests.is_empty(), "nothing reached the broker");

        let (other_host, other_key) = ca.leaf("broker.test", None);
        let mut net = tls_net("SSL", &ca, (&other_host, &other_key), &[], plain_broker());
        send_and_settle(&mut net, &["x"]);
        assert_eq!(
            tls_refusal(&net),
            TlsError::NameMismatch("localhost".into())
        );
        // ssl.endpoint.identification.algorithm= (empty) accepts it.
        let mut net = tls_net(
            "SSL",
            &ca,
            (&other_host, &other_key),
            &[("ssl.endpoint.identification.algorithm", "")],
            plain_broker(),
        );
        send_and_settle(&mut net, &["x"]);
        assert_eq!(delivered(&net), 1, "{:?}", failures(&net));
    }

    #[test]
    fn plaintext_and_tls_listeners_mismatched_are_named() {
        let ca = Ca::new("cluster CA");
        let (cert, key) = ca.leaf("localhost", None);
        // A TLS client on a plaintext listener: the broker drops the hello.
        let pem = ca.pem();
        let mut net = Net::new(
            &[
                ("security.protocol", "SSL"),
                ("ssl.truststore.certificates", pem.as_str()),
                ("max.block.ms", "2000"),
            ],
            plain_broker(),
            ServerTls::None,
        );
        send_and_settle(&mut net, &["x"]);
        let cause = unavailable(&net);
        assert!(
            matches!(cause, ConnectionError::ClosedDuringTlsHandshake { .. }),
            "{cause:?}"
        );
        // A plaintext client on a TLS listener: its alert is recognised, not
        // read as a 350 MB frame.
        let mut net = Net::new(
            &[("max.block.ms", "2000")],
            plain_broker(),
            ServerTls::Tls(server_config(&cert, &key, None)),
        );
        send_and_settle(&mut net, &["x"]);
        let cause = unavailable(&net);
        assert!(
            matches!(cause, ConnectionError::TlsListener { .. }),
            "{cause:?}"
        );
    }

    #[test]
    fn tls_failures_mid_stream_reconnect_and_deliver() {
        let ca = Ca::new("cluster CA");
        let (cert, key) = ca.leaf("localhost", None);
        let mut net = tls_net("SASL_SSL", &ca, (&cert, &key), &[], SaslBroker::new());
        send_and_settle(&mut net, &["a"]);
        let dialed = net.dialed.len();
        net.tls_close_notify_all();
        send_and_settle(&mut net, &["b"]);
        net.garble_all();
        send_and_settle(&mut net, &["c"]);
        assert!(failures(&net).is_empty(), "{:?}", failures(&net));
        assert_eq!(log_values(&net), ["a", "b", "c"]);
        assert!(
            net.dialed.len() > dialed,
            "new connections after the failures"
        );
    }

    #[test]
    fn a_tls_handshake_that_never_finishes_times_out() {
        let ca = Ca::new("cluster CA");
        let (cert, key) = ca.leaf("localhost", None);
        let mut net = tls_net(
            "SSL",
            &ca,
            (&cert, &key),
            &[
                ("socket.connection.setup.timeout.ms", "1000"),
                ("max.block.ms", "3000"),
            ],
            plain_broker(),
        );
        net.mute_tls = true;
        let t0 = net.now;
        send_and_settle(&mut net, &["x"]);
        let cause = unavailable(&net);
        assert!(
            matches!(cause, ConnectionError::TlsHandshakeTimeout { .. }),
            "{cause:?}"
        );
        assert!(net.now - t0 <= Duration::from_millis(3100));
        assert!(net.dialed.len() >= 2, "retried after the timeout");
    }
}
