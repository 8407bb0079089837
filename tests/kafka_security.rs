//! TLS and SASL against Apache Kafka 4.4.0 itself (issue 19): the three-node
//! cluster of tests/interop/kafka/kafka-cluster.sh also listens with SSL
//! (client certificates required), SASL_SSL (SCRAM-SHA-512, PLAIN) and
//! SASL_PLAINTEXT (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN; sessions that end
//! after `connections.max.reauth.ms`), plus two TLS listeners serving a
//! certificate for another host and an expired one. Certificates are made by
//! the script with openssl; `kafka-cluster.sh secure-env` names the listeners,
//! the certificate directory and the users.
//!
//! Records produced over each listener are read back by Kafka's console
//! consumer through the same listener; every bad input (wrong password,
//! unknown user, a mechanism the broker does not enable, an untrusted,
//! expired or wrong-host certificate on either side, plaintext on a TLS port
//! and the reverse, a broker hanging mid-handshake) is tried against the
//! real broker and must end in a typed error, quickly, without a reconnect storm.
//!
//! Peers come from `KAFKA_SANSIO_KAFKA` and `KAFKA_SANSIO_KAFKA_CTL` as in
//! tests/kafka.rs; when one is unset a test prints `SKIPPED: ...` and passes,
//! except under `CI=true`. The tests need the `tls` and `sasl` features.

#[path = "interop/json.rs"]
mod json;
#[allow(dead_code)]
#[path = "interop/kafka_peer.rs"]
mod kafka_peer;
#[allow(dead_code)]
#[path = "interop/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use kafka_peer::Kafka;
use kafka_sansio::producer::ProducerRecord;
use support::*;

/// Tests that stop a node take it for writing, all others for reading.
static CLUSTER: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    CLUSTER.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    CLUSTER.write().unwrap_or_else(|e| e.into_inner())
}

/// The cluster with its secured listeners, as `secure-env` describes them.
struct Secured {
    /// The cluster; its `bootstrap` is the PLAINTEXT listeners'.
    kafka: Kafka,
    env: BTreeMap<String, String>,
}

impl Secured {
    /// The cluster, or `None` (skipped) when the variables or features are missing.
    fn get(test: &str) -> Option<Secured> {
        let kafka = Kafka::get(test)?;
        if !(cfg!(feature = "tls") && cfg!(feature = "sasl")) {
            eprintln!(
                "SKIPPED: {test}: needs the tls and sasl features (cargo test --all-features)"
            );
            return None;
        }
        let env = kafka
            .ctl(&["secure-env"])
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Secured { kafka, env })
    }

    /// A `secure-env` value, by its name after `KAFKA_SANSIO_KAFKA_`.
    fn var(&self, name: &str) -> &str {
        self.env
            .get(&format!("KAFKA_SANSIO_KAFKA_{name}"))
            .unwrap_or_else(|| {
                panic!("kafka-cluster.sh secure-env names no KAFKA_SANSIO_KAFKA_{name}")
            })
    }

    /// A file of the certificate directory.
    fn pem(&self, file: &str) -> String {
        format!("{}/{file}", self.var("TLS"))
    }

    /// Runs the script with `args`; panics unless it succeeds. Returns stdout.
    fn ctl(&self, args: &[&str]) -> String {
        self.kafka.ctl(args)
    }

    /// A new topic with replication factor 3 (created over PLAINTEXT).
    fn topic(&self, prefix: &str, partitions: i32) -> String {
        let topic = fresh_topic(prefix);
        self.kafka.create_topic(&topic, partitions, &[]);
        topic
    }

    /// Every record of `topic`, read by Kafka's console consumer through the
    /// secured listener of client `profile` (see kafka-cluster.sh).
    fn consume(&self, profile: &str, topic: &str) -> Vec<Consumed> {
        parse_consumed(&self.ctl(&[
            "consume-json",
            "--listener",
            profile,
            topic,
            "--timeout-ms",
            "8000",
        ]))
    }

    /// A producer configuration: `props` over the tests' short backoffs.
    fn config(
        &self,
        bootstrap: &str,
        props: &[(String, String)],
    ) -> kafka_sansio::producer::ProducerConfig {
        let mut all: Vec<(&str, &str)> = vec![
            ("retry.backoff.ms", "50"),
            ("retry.backoff.max.ms", "500"),
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "1000"),
        ];
        all.extend(props.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        config(bootstrap, &all)
    }
}

fn props(kv: &[(&str, &str)]) -> Vec<(String, String)> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn jaas(module: &str, user: &str, password: &str) -> String {
    format!(
        "org.apache.kafka.common.security.{module} required username=\"{user}\" password=\"{password}\";"
    )
}

/// How a client reaches a secured listener: its `secure-env` name, the
/// producer's properties, and the console consumer's profile for the read-back.
struct Way {
    name: &'static str,
    listener: &'static str,
    props: Vec<(String, String)>,
    read_as: &'static str,
}

/// Every good way in: TLS with a client certificate (Java's PEM keystore keys
/// and librdkafka's), SCRAM-SHA-512 and PLAIN over TLS, SCRAM-SHA-256/512 and
/// PLAIN in the clear, credentials from `sasl.jaas.config` and from
/// `sasl.username`/`sasl.password`.
fn ways(s: &Secured, listener: &str) -> Vec<Way> {
    let (user, pass) = (s.var("USER"), s.var("PASSWORD"));
    let (user2, pass2) = (s.var("USER2"), s.var("PASSWORD2"));
    let scram = "scram.ScramLoginModule";
    let plain = "plain.PlainLoginModule";
    let all = vec![
        Way {
            name: "ssl-keystore",
            listener: "SSL",
            props: props(&[
                ("security.protocol", "SSL"),
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.location", &s.pem("ca.pem")),
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.location", &s.pem("client.pem")),
            ]),
            read_as: "ssl",
        },
        Way {
            name: "ssl-cert-key",
            listener: "SSL",
            props: props(&[
                ("security.protocol", "SSL"),
                ("ssl.ca.location", &s.pem("ca.pem")),
                ("ssl.certificate.location", &s.pem("client.crt")),
                ("ssl.key.location", &s.pem("client.key")),
            ]),
            read_as: "ssl",
        },
        Way {
            name: "sasl_ssl-scram512",
            listener: "SASL_SSL",
            props: props(&[
                ("security.protocol", "SASL_SSL"),
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.location", &s.pem("ca.pem")),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.jaas.config", &jaas(scram, user, pass)),
            ]),
            read_as: "sasl_ssl-scram",
        },
        Way {
            name: "sasl_ssl-plain",
            listener: "SASL_SSL",
            props: props(&[
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.location", &s.pem("ca.pem")),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.username", user2),
                ("sasl.password", pass2),
            ]),
            read_as: "sasl_ssl-plain",
        },
        Way {
            name: "sasl_plaintext-scram256",
            listener: "SASL_PLAINTEXT",
            props: props(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.jaas.config", &jaas(scram, user, pass)),
            ]),
            read_as: "sasl_plaintext-scram",
        },
        Way {
            name: "sasl_plaintext-scram512",
            listener: "SASL_PLAINTEXT",
            props: props(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", user2),
                ("sasl.password", pass2),
            ]),
            read_as: "sasl_plaintext-plain",
        },
        Way {
            name: "sasl_plaintext-plain",
            listener: "SASL_PLAINTEXT",
            props: props(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.jaas.config", &jaas(plain, user, pass)),
            ]),
            read_as: "sasl_plaintext-scram",
        },
    ];
    all.into_iter().filter(|w| w.listener == listener).collect()
}

// ---- 1. the record matrix over each secured listener, read back by Kafka's consumer --------

fn round_trip_over(test: &str, driver: Driver, listener: &str) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = shared();
    for way in ways(&s, listener) {
        let topic = s.topic(&format!("sec-{}", way.name), PARTITIONS);
        let recs = records(&topic, 300, way.name);
        let client = Client::start(driver, s.config(s.var(way.listener), &way.props));
        let metas = produce(&client, &recs, 6, Duration::from_millis(10), |_| {});
        client.close();
        let got = s.consume(way.read_as, &topic);
        check(&recs, &metas, PARTITIONS, &got, false).assert_exact(&format!(
            "{test} {} {driver:?} (Kafka console consumer over {})",
            way.name, way.read_as
        ));
        eprintln!(
            "{test}: {}: {} records produced over {}, read back exactly by Kafka's console consumer over {}",
            way.name,
            recs.len(),
            way.listener,
            way.read_as
        );
    }
}

fn ssl_round_trip(test: &str, driver: Driver) {
    round_trip_over(test, driver, "SSL");
}

fn sasl_ssl_round_trip(test: &str, driver: Driver) {
    round_trip_over(test, driver, "SASL_SSL");
}

fn sasl_plaintext_round_trip(test: &str, driver: Driver) {
    round_trip_over(test, driver, "SASL_PLAINTEXT");
}

// ---- 2. re-authentication before the broker's session ends (KIP-368) --------------------------

/// Sends `recs` at one chunk a second; returns the metadata and the
/// producer's counters at the end.
fn steady(
    s: &Secured,
    driver: Driver,
    bootstrap: &str,
    way: &[(String, String)],
    recs: &[ProducerRecord],
) -> (
    Vec<kafka_sansio::producer::RecordMetadata>,
    kafka_sansio::producer::Metrics,
) {
    let client = Client::start(driver, s.config(bootstrap, way));
    let metas = produce(&client, recs, 24, Duration::from_secs(1), |_| {});
    let m = client.metrics();
    client.close();
    (metas, m)
}

fn reauthenticates(test: &str, driver: Driver) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = shared();
    let session_ms: u64 = s.var("REAUTH_MS").parse().expect("REAUTH_MS");
    // The same pace over PLAINTEXT: the connections a run needs with no session to renew.
    let plain_topic = s.topic("sec-reauth-plain", PARTITIONS);
    let recs = records(&plain_topic, 240, "plain");
    let (_, base) = steady(&s, driver, &s.kafka.bootstrap, &[], &recs);
    let topic = s.topic("sec-reauth", PARTITIONS);
    let recs = records(&topic, 240, "reauth");
    let way = props(&[
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", s.var("USER")),
        ("sasl.password", s.var("PASSWORD")),
    ]);
    let start = Instant::now();
    let (metas, m) = steady(&s, driver, s.var("SASL_PLAINTEXT"), &way, &recs);
    let took = start.elapsed();
    assert!(
        took.as_millis() as u64 > 2 * session_ms,
        "{test}: the run took {took:?}, not two sessions of {session_ms} ms"
    );
    let got = s.consume("sasl_plaintext-plain", &topic);
    check(&recs, &metas, PARTITIONS, &got, false)
        .assert_exact(&format!("{test} {driver:?} (Kafka console consumer)"));
    assert!(
        m.connects <= base.connects && m.disconnects == 0,
        "{test}: over {took:?} with sessions of {session_ms} ms the producer connected {} times and lost {} \
         connections (PLAINTEXT at the same pace: {} connects): sessions ended instead of being renewed",
        m.connects,
        m.disconnects,
        base.connects
    );
    eprintln!(
        "{test}: {} records over {took:?} with connections.max.reauth.ms={session_ms}: read back exactly; \
         {} connects (PLAINTEXT at the same pace: {}), 0 connections lost",
        recs.len(),
        m.connects,
        base.connects
    );
}

// ---- 3. bad input, each against the real broker --------------------------------------------------

/// A topic every refusal test sends to (it exists: the refusal is the listener's).
fn refusal_topic(s: &Secured) -> &'static str {
    static TOPIC: OnceLock<String> = OnceLock::new();
    TOPIC.get_or_init(|| s.topic("sec-refused", 1))
}

/// How soon a refusal must come: an authentication failure at once (15 s at
/// most, never `delivery.timeout.ms`, 60 s), as Java's
/// `AuthenticationException`; a connection that never becomes usable (the
/// wrong protocol on a port) within `max.block.ms`, set to 5 s here, as
/// Java's metadata wait.
#[derive(Clone, Copy)]
enum Within {
    Authentication,
    MaxBlock,
}

/// Sends two records with `way` to `bootstrap`; each must fail `within` its
/// bound with an error whose `Debug` names every one of `expect` (variant
/// names, error codes, mechanisms), and the producer must not reconnect in a
/// storm meanwhile. Returns the error text.
fn refused(
    test: &str,
    driver: Driver,
    s: &Secured,
    bootstrap: &str,
    way: &[(String, String)],
    within: Within,
    expect: &[&str],
) -> String {
    let mut way = way.to_vec();
    let limit = match within {
        Within::Authentication => Duration::from_secs(15),
        Within::MaxBlock => {
            way.push(("max.block.ms".into(), "5000".into()));
            Duration::from_secs(10)
        }
    };
    let topic = refusal_topic(s);
    let client = Client::start(driver, s.config(bootstrap, &way));
    let start = Instant::now();
    let first = outcome(
        client
            .send(ProducerRecord::new(topic, "refused-1"))
            .expect("accepted"),
        Duration::from_secs(90),
    );
    let took = start.elapsed();
    let e = match first {
        Ok(md) => panic!(
            "{test}: delivered to {}/{} through {bootstrap}",
            md.partition, md.offset
        ),
        Err(e) => e,
    };
    let debug = format!("{e:?}");
    for want in expect {
        assert!(
            debug.contains(want),
            "{test}: expected an error naming {want}, got {e} ({debug})"
        );
    }
    assert!(
        took < limit,
        "{test}: the error came after {took:?}, not within {limit:?} ({e})"
    );
    // A later record tries again after the reconnect backoff and fails the same way.
    std::thread::sleep(Duration::from_secs(2));
    let second = outcome(
        client
            .send(ProducerRecord::new(topic, "refused-2"))
            .expect("accepted"),
        Duration::from_secs(90),
    );
    assert!(
        matches!(&second, Err(e2) if format!("{e2:?}").contains(expect[0])),
        "{test}: the second record: {second:?}"
    );
    let m = client.metrics();
    let secs = start.elapsed().as_secs_f64();
    client.close();
    // reconnect.backoff.ms=50 doubling to 1000 per address: a handful a second at most.
    assert!(
        (m.connects as f64) < 10.0 * secs + 10.0,
        "{test}: {} connects in {secs:.1} s: a reconnect storm",
        m.connects
    );
    let text = e.to_string();
    eprintln!(
        "{test}: refused after {} ms: {text} [{} connects in {secs:.1} s]",
        took.as_millis(),
        m.connects
    );
    text
}

fn sasl_ssl(s: &Secured, mechanism: &str, user: &str, password: &str) -> Vec<(String, String)> {
    props(&[
        ("security.protocol", "SASL_SSL"),
        ("ssl.ca.location", &s.pem("ca.pem")),
        ("sasl.mechanism", mechanism),
        ("sasl.username", user),
        ("sasl.password", password),
    ])
}

fn ssl_client(s: &Secured, ca: &str, cert: Option<&str>) -> Vec<(String, String)> {
    let mut p = props(&[
        ("security.protocol", "SSL"),
        ("ssl.ca.location", &s.pem(ca)),
    ]);
    if let Some(c) = cert {
        p.extend(props(&[
            ("ssl.certificate.location", &s.pem(&format!("{c}.crt"))),
            ("ssl.key.location", &s.pem(&format!("{c}.key"))),
        ]));
    }
    p
}

fn wrong_password(test: &str, driver: Driver) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = shared();
    let way = sasl_ssl(&s, "SCRAM-SHA-512", s.var("USER"), "not-the-password");
    let text = refused(
        test,
        driver,
        &s,
        s.var("SASL_SSL"),
        &way,
        Within::Authentication,
        &["SaslAuthentication", "SaslAuthenticationFailed"],
    );
    assert!(
        !text.contains("not-the-password"),
        "{test}: the password in the error: {text}"
    );
}

fn unknown_user(test: &str, driver: Driver) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = shared();
    for mechanism in ["PLAIN", "SCRAM-SHA-512"] {
        let way = sasl_ssl(&s, mechanism, "mallory", "mallory-secret");
        refused(
            test,
            driver,
            &s,
            s.var("SASL_SSL"),
            &way,
            Within::Authentication,
            &["SaslAuthentication", "SaslAuthenticationFailed", mechanism],
        );
    }
}

fn mechanism_not_enabled(test: &str, driver: Driver) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = shared();
    // SASL_SSL enables SCRAM-SHA-512 and PLAIN only.
    let way = sasl_ssl(&s, "SCRAM-SHA-256", s.var("USER"), s.var("PASSWORD"));
    refused(
        test,
        driver,
        &s,
        s.var("SASL_SSL"),
        &way,
        Within::Authentication,
        &[
            "UnsupportedSaslMechanism",
            "SCRAM-SHA-256",
            "\"SCRAM-SHA-512\"",
            "\"PLAIN\"",
        ],
    );
}

fn untrusted_broker_cert(test: &str, driver: Driver) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = shared();
    // The broker's certificate is fine; the client trusts another CA only.
    let mut way = sasl_ssl(&s, "PLAIN", s.var("USER"), s.var("PASSWORD"));
    for (k, v) in &mut way {
        if k == "ssl.ca.location" {
            *v = s.pem("rogue-ca.pem");
        }
    }
    refused(
        test,
        driver,
        &s,
        s.var("SASL_SSL"),
        &way,
        Within::Authentication,
        &["UntrustedCertificate"],
    );
}

fn expired_broker_cert(test: &str, driver: Driver) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = shared();
    let way = ssl_client(&s, "ca.pem", None);
    refused(
        test,
        driver,
        &s,
        s.var("EXPIRED"),
        &way,
        Within::Authentication,
        &["ExpiredCertificate"],
    );
}

fn broker_cert_for_another_host(test: &str, driver: Driver) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = shared();
    let way = ssl_client(&s, "ca.pem", None);
    refused(
        test,
        driver,
        &s,
        s.var("BADHOST"),
        &way,
        Within::Authentication,
        &["NameMismatch", "127.0.0.1"],
    );
    // With host-name verification off the same certificate is accepted: the
    // refusal above was the name and nothing else.
    let mut off = way.clone();
    off.push((
        "ssl.endpoint.identification.algorithm".into(),
        String::new(),
    ));
    let client = Client::start(driver, s.config(s.var("BADHOST"), &off));
    let md = outcome(
        client
            .send(ProducerRecord::new(refusal_topic(&s), "name-unchecked"))
            .expect("accepted"),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{test}: with ssl.endpoint.identification.algorithm empty: {e}"));
    client.close();
    eprintln!(
        "{test}: with ssl.endpoint.identification.algorithm= the {} certificate is accepted (offset {})",
        s.var("WRONG_HOST"),
        md.offset
    );
}

/// The SSL listener requires a client certificate: none, one from an
/// untrusted CA, and an expired one are each refused by the broker with an
/// alert. Under TLS 1.3 the alert comes after the client has finished its
/// side of the handshake, on the first request: the connection never
/// becomes usable, so the bound is `max.block.ms`.
fn client_cert_refused(test: &str, driver: Driver) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = shared();
    for cert in [None, Some("rogue-client"), Some("expired")] {
        let way = ssl_client(&s, "ca.pem", cert);
        let text = refused(
            test,
            driver,
            &s,
            s.var("SSL"),
            &way,
            Within::MaxBlock,
            &["Alert"],
        );
        eprintln!("{test}: client certificate {cert:?}: {text}");
    }
}

fn plaintext_on_tls_port(test: &str, driver: Driver) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = shared();
    // Kafka answers the plaintext ApiVersions request with a TLS alert record.
    refused(
        test,
        driver,
        &s,
        s.var("SASL_SSL"),
        &[],
        Within::MaxBlock,
        &["BrokerUnavailable", "TlsListener"],
    );
}

fn tls_on_plaintext_port(test: &str, driver: Driver) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = shared();
    // Kafka reads the ClientHello as an oversized request and closes.
    let way = ssl_client(&s, "ca.pem", None);
    refused(
        test,
        driver,
        &s,
        &s.kafka.bootstrap,
        &way,
        Within::MaxBlock,
        &["BrokerUnavailable", "ClosedDuringTlsHandshake"],
    );
}

/// Node 1 hangs (SIGSTOP) while the producer, which knows only its SASL_SSL
/// address, is in the TLS handshake; then it dies (SIGKILL) and comes back.
/// The record waits through both and is delivered once.
fn broker_stops_mid_handshake(test: &str, driver: Driver) {
    let Some(s) = Secured::get(test) else {
        return;
    };
    let _g = exclusive();
    let topic = s.topic("sec-hang", 1);
    let node1 = s.var("SASL_SSL").split(',').next().unwrap().to_string();
    let mut way = sasl_ssl(&s, "SCRAM-SHA-512", s.var("USER"), s.var("PASSWORD"));
    way.extend(props(&[
        ("socket.connection.setup.timeout.ms", "2000"),
        ("socket.connection.setup.timeout.max.ms", "4000"),
        ("delivery.timeout.ms", "120000"),
        ("request.timeout.ms", "10000"),
    ]));
    s.ctl(&["pause", "1"]);
    // Also on a panic: a stopped node still accepts connections, so
    // start-node alone would take it for serving.
    let restart = || {
        for args in [["resume", "1"], ["start-node", "1"]] {
            let _ = Command::new(&s.kafka.ctl)
                .args(args)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    };
    struct Restart<F: Fn()>(F);
    impl<F: Fn()> Drop for Restart<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let guard = Restart(restart);
    let start = Instant::now();
    let client = Client::start(driver, s.config(&node1, &way));
    let mut f = client
        .send(ProducerRecord::new(topic.as_str(), "through-the-hang"))
        .expect("accepted");
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        f.try_result().is_none(),
        "{test}: an outcome while the only known broker is stopped"
    );
    let hung = client.metrics();
    s.ctl(&["kill", "1"]);
    s.ctl(&["start-node", "1"]);
    let md = outcome(f, Duration::from_secs(150))
        .unwrap_or_else(|e| panic!("{test}: after node 1 came back: {e} ({e:?})"));
    let took = start.elapsed();
    let m = client.metrics();
    client.close();
    drop(guard);
    let got = s.consume("sasl_ssl-scram", &topic);
    assert_eq!(got.len(), 1, "{test}: read back {got:?}");
    assert_eq!(got[0].offset, md.offset, "{test}: offset");
    eprintln!(
        "{test}: node 1 stopped mid-handshake for 6 s ({} connects then, handshakes timed out), killed and \
         restarted: the record was delivered once after {took:?} ({} connects in all)",
        hung.connects, m.connects
    );
}

/// Each case with both drivers: `<case>::blocking` and `<case>::mio`.
macro_rules! on_both_drivers {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::Driver;
            #[test]
            fn blocking() {
                super::$case(concat!("kafka_security_", stringify!($case), "_blocking"), Driver::Blocking);
            }
            #[test]
            #[cfg(feature = "mio-driver")]
            fn mio() {
                super::$case(concat!("kafka_security_", stringify!($case), "_mio"), Driver::Mio);
            }
        }
    )*};
}

on_both_drivers!(
    ssl_round_trip,
    sasl_ssl_round_trip,
    sasl_plaintext_round_trip,
    reauthenticates,
    wrong_password,
    unknown_user,
    mechanism_not_enabled,
    untrusted_broker_cert,
    expired_broker_cert,
    broker_cert_for_another_host,
    client_cert_refused,
    plaintext_on_tls_port,
    tls_on_plaintext_port,
    broker_stops_mid_handshake,
);
