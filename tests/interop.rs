//! Interop: the producer (both drivers) against peers nobody here wrote —
//! tansu 0.6.0 and librdkafka's mock cluster (3 brokers) — with everything read
//! back by an independent consumer (confluent-kafka, i.e. librdkafka 2.16).
//!
//! Peers come from the `KAFKA_SANSIO_*` variables that `.ci/run` exports
//! (tests/interop/README.md). When one is unset a test prints `SKIPPED: ...` and
//! passes, except under `CI=true`, where it fails.

#[path = "interop/json.rs"]
mod json;
#[path = "interop/proxy.rs"]
mod proxy;
#[path = "interop/support.rs"]
mod support;

use std::time::Duration;

use support::*;

/// Where a test produces to.
enum Broker {
    /// The shared tansu of the run.
    Tansu { addr: String },
    /// A private librdkafka mock cluster.
    Mock(Mock),
}

impl Broker {
    fn bootstrap(&self) -> String {
        match self {
            Broker::Tansu { addr } => addr.clone(),
            Broker::Mock(m) => m.bootstrap.clone(),
        }
    }
}

/// The peers a test on `broker` needs, or `None` (skipped).
fn setup(test: &str, tansu: bool) -> Option<(Broker, String, Option<String>)> {
    if tansu {
        let v = require(test, &[TANSU, TANSU_BIN, CONSUMER])?;
        Some((
            Broker::Tansu {
                addr: v[0].clone(),
            },
            v[2].clone(),
            Some(v[1].clone()),
        ))
    } else {
        let v = require(test, &[MOCK_BIN, CONSUMER])?;
        Some((Broker::Mock(Mock::start(&v[0], 3, &[])), v[1].clone(), None))
    }
}

/// Creates `topic` with `partitions` on the broker.
fn create_topic(broker: &mut Broker, tansu_bin: &Option<String>, topic: &str, partitions: i32) {
    match broker {
        Broker::Tansu { addr } => {
            tansu_create_topic(tansu_bin.as_ref().unwrap(), addr, topic, partitions)
        }
        Broker::Mock(m) => {
            m.cmd(&format!("create_topic {topic} {partitions} 3"));
        }
    }
}

const PARTITIONS: i32 = 3;

/// Round trip of the record matrix through several acks/idempotence settings.
fn round_trip(test: &str, tansu: bool, driver: Driver) {
    let Some((mut broker, consumer, bin)) = setup(test, tansu) else {
        return;
    };
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("acks1", &[("acks", "1"), ("enable.idempotence", "false")]),
        (
            "acksall",
            &[("acks", "all"), ("enable.idempotence", "false")],
        ),
        (
            "idem",
            &[("acks", "all"), ("enable.idempotence", "true"), ("linger.ms", "2")],
        ),
    ];
    for (name, props) in cases {
        let topic = fresh_topic(&format!("rt-{name}"));
        create_topic(&mut broker, &bin, &topic, PARTITIONS);
        let recs = records(&topic, 300, name);
        let client = Client::start(driver, config(&broker.bootstrap(), props));
        let metas = produce(&client, &recs, 6, Duration::from_millis(10), |_| {});
        client.close();
        let got = consume(&consumer, &broker.bootstrap(), &topic, PARTITIONS, recs.len());
        check(&recs, &metas, PARTITIONS, &got, false)
            .assert_exact(&format!("{test} {name} {driver:?}"));
        eprintln!("{test}: {name}: {} records read back exactly", got.len());
    }
}

#[test]
fn round_trip_tansu_blocking() {
    round_trip("round_trip_tansu_blocking", true, Driver::Blocking);
}

#[test]
fn round_trip_tansu_mio() {
    round_trip("round_trip_tansu_mio", true, Driver::Mio);
}

#[test]
fn round_trip_mock_blocking() {
    round_trip("round_trip_mock_blocking", false, Driver::Blocking);
}

#[test]
fn round_trip_mock_mio() {
    round_trip("round_trip_mock_mio", false, Driver::Mio);
}
