//! The test harness itself, [`Pair`]: its simulated network's latency, lost
//! answers and refused connects do to the core what they would on a real
//! network.

use std::time::{Duration, Instant};

use kafka_sansio::mock::{MockCluster, Pair};
use kafka_sansio::producer::{Event, Producer, ProducerConfig, ProducerRecord};

fn pair(props: &[(&str, &str)]) -> Pair {
    let mut all = vec![("bootstrap.servers", "localhost:9092")];
    all.extend_from_slice(props);
    let config = ProducerConfig::from_properties(all).unwrap();
    let now = Instant::now();
    let producer = Producer::new(config, now, 1_700_000_000_000).unwrap();
    let mut cluster = MockCluster::new(1);
    cluster.create_topic("t", 1).unwrap();
    Pair::new(producer, cluster, now)
}

fn delivered(p: &Pair) -> usize {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::Delivered(d) => Some(d.records.len()),
            _ => None,
        })
        .sum()
}

#[test]
fn latency_delays_every_answer() {
    let mut p = pair(&[("linger.ms", "0")]);
    let start = p.now;
    p.set_latency(Duration::from_millis(50));
    p.core(|c, now| c.send(ProducerRecord::new("t", "a"), now))
        .unwrap();
    assert!(p.run_until(|p| p.producer.is_idle()));
    assert_eq!(delivered(&p), 1);
    // ApiVersions, Metadata, InitProducerId and Produce: a round trip each.
    assert!(
        p.now - start >= Duration::from_millis(200),
        "{:?}",
        p.now - start
    );
}

#[test]
fn a_lost_answer_times_out_and_the_retry_is_not_a_duplicate() {
    let mut p = pair(&[("linger.ms", "0"), ("request.timeout.ms", "1000")]);
    p.set_latency(Duration::from_millis(10));
    p.core(|c, now| c.send(ProducerRecord::new("t", "a"), now))
        .unwrap();
    assert!(p.run_until(|p| p.producer.metrics().produce_requests == 1));
    let conns: Vec<_> = p.connections().map(|(c, _)| c).collect();
    let lost: usize = conns.iter().map(|c| p.lose_answers(*c)).sum();
    assert_eq!(lost, 1, "the Produce answer was in flight");
    assert_eq!(p.broker.records("t", 0).unwrap().len(), 1);
    assert!(p.run_until(|p| p.producer.is_idle()));
    assert_eq!(delivered(&p), 1);
    assert!(p.producer.metrics().produce_requests >= 2, "retried");
    // Idempotence: the broker kept the first append only.
    assert_eq!(p.broker.records("t", 0).unwrap().len(), 1);
}

#[test]
fn a_broker_down_refuses_connects_until_it_is_back() {
    let mut p = pair(&[("linger.ms", "0")]);
    p.broker.set_broker_down(0, true);
    let start = p.now;
    p.core(|c, now| c.send(ProducerRecord::new("t", "a"), now))
        .unwrap();
    assert!(p.run_until(|p| p.now >= start + Duration::from_millis(500)));
    assert!(p.connects().len() > 1, "dialed again: {:?}", p.connects());
    assert_eq!(p.connections().count(), 0);
    assert_eq!(delivered(&p), 0);
    p.broker.set_broker_down(0, false);
    assert!(p.run_until(|p| p.producer.is_idle()));
    assert_eq!(delivered(&p), 1);
}
