//! Both drivers against the mock's SASL and TLS listeners over loopback TCP:
//! SASL_PLAINTEXT (PLAIN, SCRAM-SHA-512), SASL_SSL, SSL with client
//! certificates, re-authentication with records flowing, and each refusal
//! (wrong password, unknown user, unknown mechanism, untrusted, wrong-host
//! or expired certificate, plaintext on a TLS port and the reverse) a typed
//! error within `max.block.ms` with the connections it took counted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_sansio::driver::Error;
use kafka_sansio::mock::{MockServer, MockTls};
use kafka_sansio::producer::security::{SaslMechanism, TlsError};
use kafka_sansio::producer::{ConnectionError, DeliveryError, ProducerRecord};
use kafka_sansio::protocol::ErrorCode;

#[path = "../certs/mod.rs"]
mod certs;

#[cfg(feature = "mio-driver")]
use super::Mio;
use super::{config, log, Blocking, Driver, WAIT};
use certs::Ca;

/// `max.block.ms` of the refusal cases.
const BLOCK_MS: u64 = 3000;

/// What the mock listens with.
struct Listener {
    tls: Option<MockTls>,
    sasl: &'static [SaslMechanism],
    lifetime: Option<Duration>,
}

fn server(l: Listener) -> MockServer {
    let m = MockServer::start(1).unwrap();
    m.with_cluster(|c| {
        c.create_topic("sec", 1).unwrap();
        c.set_tls(l.tls);
        if !l.sasl.is_empty() {
            c.enable_sasl(l.sasl).unwrap();
            for mech in l.sasl {
                c.add_sasl_user(*mech, "alice", "alice-secret").unwrap();
            }
            c.set_session_lifetime(l.lifetime);
        }
    });
    m
}

fn tls(ca: &Ca, name: &str, client_ca: Option<&Ca>) -> Option<MockTls> {
    tls_until(ca, name, None, client_ca)
}

/// A TLS listener whose certificate for `name` expires on 1 January `not_after_year`.
fn tls_until(
    ca: &Ca,
    name: &str,
    not_after_year: Option<i32>,
    client_ca: Option<&Ca>,
) -> Option<MockTls> {
    let (cert, key) = ca.leaf(name, not_after_year);
    let client_ca = client_ca.map(Ca::pem);
    Some(
        MockTls::from_pem(
            cert.as_bytes(),
            key.as_bytes(),
            client_ca.as_deref().map(str::as_bytes),
        )
        .unwrap(),
    )
}

/// Client settings: `protocol`, SASL as alice with `password`, trusting `ca`,
/// presenting `client_cert`.
struct Settings<'a> {
    protocol: &'static str,
    mechanism: SaslMechanism,
    user: &'a str,
    password: &'a str,
    ca: Option<&'a Ca>,
    client_cert: Option<(String, String)>,
}

fn start<D: Driver>(m: &MockServer, s: Settings<'_>) -> super::Client {
    let mut b = config(&m.bootstrap_servers())
        .max_block(Duration::from_millis(BLOCK_MS))
        .set("security.protocol", s.protocol)
        .unwrap();
    if s.protocol.starts_with("SASL") {
        b = b
            .set("sasl.mechanism", s.mechanism.name())
            .unwrap()
            .set(
                "sasl.jaas.config",
                &format!(
                    r#"org.apache.kafka.common.security.{} required username="{}" password="{}";"#,
                    if s.mechanism == SaslMechanism::Plain {
                        "plain.PlainLoginModule"
                    } else {
                        "scram.ScramLoginModule"
                    },
                    s.user,
                    s.password
                ),
            )
            .unwrap();
    }
    if let Some(ca) = s.ca {
        b = b
            .set("ssl.truststore.type", "PEM")
            .unwrap()
            .set("ssl.truststore.certificates", &ca.pem())
            .unwrap();
    }
    if let Some((cert, key)) = s.client_cert {
        b = b
            .set("ssl.keystore.type", "PEM")
            .unwrap()
            .set("ssl.keystore.certificate.chain", &cert)
            .unwrap()
            .set("ssl.keystore.key", &key)
            .unwrap();
    }
    D::start(b.build().unwrap())
}

fn settings<'a>(protocol: &'static str, ca: Option<&'a Ca>) -> Settings<'a> {
    Settings {
        protocol,
        mechanism: SaslMechanism::ScramSha512,
        user: "alice",
        password: "alice-secret",
        ca,
        client_cert: None,
    }
}

/// Sends `n` records one after the other (waiting each) and checks the log
/// and that no connection beyond the bootstrap one and the leader's was made.
fn deliver<D: Driver>(m: &MockServer, s: Settings<'_>, n: usize) {
    let before = m.accepted_connections();
    let mut p = start::<D>(m, s);
    for i in 0..n {
        p.send(ProducerRecord::new("sec", i.to_string()))
            .unwrap()
            .wait_timeout(WAIT)
            .unwrap();
    }
    p.close(WAIT).unwrap();
    let values: Vec<usize> = log(m, "sec", 0)
        .iter()
        .map(|r| {
            std::str::from_utf8(r.value.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(values, (0..n).collect::<Vec<_>>());
    // The bootstrap connection (kept apart from node connections, as Java
    // does) and the leader's.
    let conns = m.accepted_connections() - before;
    assert!(conns <= 2, "{conns} connections for one broker");
}

fn sasl_plaintext_plain_and_scram_deliver<D: Driver>() {
    for mech in [SaslMechanism::Plain, SaslMechanism::ScramSha512] {
        let m = server(Listener {
            tls: None,
            sasl: &[SaslMechanism::Plain, SaslMechanism::ScramSha512],
            lifetime: None,
        });
        let mut s = settings("SASL_PLAINTEXT", None);
        s.mechanism = mech;
        deliver::<D>(&m, s, 20);
        let st = m.cluster().sasl_stats();
        assert!(st.authentications >= 1, "{st:?}");
        assert_eq!(st.failures + st.unauthenticated_closes, 0, "{st:?}");
    }
}

fn sasl_ssl_scram_delivers<D: Driver>() {
    let ca = Ca::new("mock CA");
    let m = server(Listener {
        tls: tls(&ca, "127.0.0.1", None),
        sasl: &[SaslMechanism::ScramSha512],
        lifetime: None,
    });
    deliver::<D>(&m, settings("SASL_SSL", Some(&ca)), 20);
    assert!(m.cluster().sasl_stats().authentications >= 1);
}

fn ssl_with_client_certificates<D: Driver>() {
    let ca = Ca::new("mock CA");
    let client_ca = Ca::new("client CA");
    let m = server(Listener {
        tls: tls(&ca, "127.0.0.1", Some(&client_ca)),
        sasl: &[],
        lifetime: None,
    });
    let mut s = settings("SSL", Some(&ca));
    s.client_cert = Some(client_ca.leaf("producer", None));
    deliver::<D>(&m, s, 20);
    // Without a client certificate: refused, typed.
    let (e, conns) = refused::<D>(&m, settings("SSL", Some(&ca)));
    let cause = cause(&e);
    assert!(
        matches!(cause, ConnectionError::TlsHandshake { error: TlsError::Alert(a), .. } | ConnectionError::Tls { error: TlsError::Alert(a), .. } if a.contains("CertificateRequired")),
        "{e:?}"
    );
    eprintln!("SSL without a client certificate: {e}; {conns} connections");
}

/// Records from a sender thread every 5 ms for 7 s against 2 s sessions:
/// re-authentication runs on the live connections; every record lands
/// once, in order.
fn reauthentication_mid_stream<D: Driver>() {
    let ca = Ca::new("mock CA");
    let m = server(Listener {
        tls: tls(&ca, "127.0.0.1", None),
        sasl: &[SaslMechanism::ScramSha512],
        lifetime: Some(Duration::from_secs(2)),
    });
    let mut p = start::<D>(&m, settings("SASL_SSL", Some(&ca)));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < Duration::from_secs(7) {
        let (ok, failed) = (Arc::clone(&ok), Arc::clone(&failed));
        p.send_with_callback(
            ProducerRecord::new("sec", n.to_string()),
            move |r| match r {
                Ok(_) => {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => failed.lock().unwrap().push(e.to_string()),
            },
        )
        .unwrap();
        n += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    p.flush_timeout(WAIT).unwrap();
    p.close(WAIT).unwrap();
    assert_eq!(*failed.lock().unwrap(), Vec::<String>::new());
    assert_eq!(ok.load(Ordering::Relaxed), n);
    let values: Vec<usize> = log(&m, "sec", 0)
        .iter()
        .map(|r| {
            std::str::from_utf8(r.value.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(
        values,
        (0..n).collect::<Vec<_>>(),
        "lost, duplicated or reordered"
    );
    let st = m.cluster().sasl_stats();
    let conns = m.accepted_connections();
    // 7 s of 2 s sessions renewed at 85-95%: 3 a connection.
    assert!(st.reauthentications >= 3, "{st:?}");
    assert_eq!((st.expired_closes, st.failures), (0, 0), "{st:?}");
    assert!(conns <= 2, "{conns} connections");
    eprintln!(
        "re-authentication mid-stream: {n} records, {} re-authentications, {conns} connections",
        st.reauthentications
    );
}

/// One record that must fail within max.block.ms (plus slack); the error and
/// the connections the producer made meanwhile.
fn refused<D: Driver>(m: &MockServer, s: Settings<'_>) -> (DeliveryError, u64) {
    let before = m.accepted_connections();
    let t0 = Instant::now();
    let p = start::<D>(m, s);
    let r = p
        .send(ProducerRecord::new("sec", "x"))
        .unwrap()
        .wait_timeout(WAIT);
    let elapsed = t0.elapsed();
    let e = match r {
        Err(Error::Delivery(e)) => e,
        other => panic!("expected a delivery error, got {other:?}"),
    };
    assert!(
        elapsed < Duration::from_millis(BLOCK_MS + 1500),
        "{e} after {elapsed:?}"
    );
    drop(p);
    (e, m.accepted_connections() - before)
}

fn cause(e: &DeliveryError) -> &ConnectionError {
    match e {
        DeliveryError::Authentication { cause, .. }
        | DeliveryError::BrokerUnavailable { cause, .. } => cause,
        other => panic!("no connection cause: {other:?}"),
    }
}

fn refusals_are_typed_and_bounded<D: Driver>() {
    let ca = Ca::new("mock CA");
    let scram = &[SaslMechanism::ScramSha512][..];
    let mut report = Vec::new();

    let m = server(Listener {
        tls: None,
        sasl: scram,
        lifetime: None,
    });
    let mut s = settings("SASL_PLAINTEXT", None);
    s.password = "Wrong-Pw1";
    let (e, n) = refused::<D>(&m, s);
    assert!(
        matches!(
            cause(&e),
            ConnectionError::SaslAuthentication {
                code: ErrorCode::SaslAuthenticationFailed,
                message: Some(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        !format!("{e:?}{e}").contains("Wrong-Pw1"),
        "no secret in the error"
    );
    report.push(("wrong password", e, n));

    let mut s = settings("SASL_PLAINTEXT", None);
    s.user = "mallory";
    let (e, n) = refused::<D>(&m, s);
    assert!(
        matches!(
            cause(&e),
            ConnectionError::SaslAuthentication {
                code: ErrorCode::SaslAuthenticationFailed,
                ..
            }
        ),
        "{e:?}"
    );
    report.push(("unknown user", e, n));

    let m = server(Listener {
        tls: None,
        sasl: &[SaslMechanism::Plain],
        lifetime: None,
    });
    let (e, n) = refused::<D>(&m, settings("SASL_PLAINTEXT", None));
    assert!(
        matches!(cause(&e), ConnectionError::UnsupportedSaslMechanism { enabled, .. } if enabled == &["PLAIN"]),
        "{e:?}"
    );
    report.push(("unknown mechanism", e, n));

    let other = Ca::new("other CA");
    let m = server(Listener {
        tls: tls(&other, "127.0.0.1", None),
        sasl: &[],
        lifetime: None,
    });
    let (e, n) = refused::<D>(&m, settings("SSL", Some(&ca)));
    assert!(
        matches!(
            cause(&e),
            ConnectionError::TlsHandshake {
                error: TlsError::UntrustedCertificate,
                ..
            }
        ),
        "{e:?}"
    );
    report.push(("untrusted certificate", e, n));

    let m = server(Listener {
        tls: tls(&ca, "broker.example", None),
        sasl: &[],
        lifetime: None,
    });
    let (e, n) = refused::<D>(&m, settings("SSL", Some(&ca)));
    assert!(
        matches!(cause(&e), ConnectionError::TlsHandshake { error: TlsError::NameMismatch(h), .. } if h == "127.0.0.1"),
        "{e:?}"
    );
    report.push(("host-name mismatch", e, n));

    let m = server(Listener {
        tls: tls_until(&ca, "127.0.0.1", Some(2021), None),
        sasl: &[],
        lifetime: None,
    });
    let (e, n) = refused::<D>(&m, settings("SSL", Some(&ca)));
    assert!(
        matches!(
            cause(&e),
            ConnectionError::TlsHandshake {
                error: TlsError::ExpiredCertificate,
                ..
            }
        ),
        "{e:?}"
    );
    report.push(("expired certificate", e, n));

    let m = server(Listener {
        tls: tls(&ca, "127.0.0.1", None),
        sasl: &[],
        lifetime: None,
    });
    let (e, n) = refused::<D>(&m, settings("PLAINTEXT", None));
    assert!(
        matches!(cause(&e), ConnectionError::TlsListener { .. }),
        "{e:?}"
    );
    report.push(("plaintext client on a TLS port", e, n));

    let m = server(Listener {
        tls: None,
        sasl: &[],
        lifetime: None,
    });
    let (e, n) = refused::<D>(&m, settings("SSL", Some(&ca)));
    assert!(
        matches!(cause(&e), ConnectionError::ClosedDuringTlsHandshake { .. }),
        "{e:?}"
    );
    report.push(("TLS client on a plaintext port", e, n));

    for (what, e, n) in &report {
        eprintln!("{what}: {n} connections; {e}");
        // Authentication failures are final after one connection; the
        // others retry with the 50 ms..1 s reconnect backoff until
        // max.block.ms (3 s): at most 8.
        if matches!(e, DeliveryError::Authentication { .. }) {
            assert_eq!(*n, 1, "{what}: {n} connections");
        } else {
            assert!(*n <= 8, "{what}: {n} connections");
        }
    }
}

suite!(
    sasl_plaintext_plain_and_scram_deliver,
    sasl_ssl_scram_delivers,
    ssl_with_client_certificates,
    reauthentication_mid_stream,
    refusals_are_typed_and_bounded,
);
