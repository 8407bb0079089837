//! The first thing to run: produces keyed records in the four send modes
//! (synchronous, callback, tagged, fire-and-forget) with the blocking driver
//! and prints where they landed.
//!
//! ```text
//! cargo run --example quickstart                       # built-in mock cluster, no Kafka needed
//! cargo run --example quickstart -- -b localhost:9092 [-t topic] [-X prop=value]...
//! cargo run --features tls,sasl --example quickstart -- -b broker:9093 \
//!     -X security.protocol=SASL_SSL -X ssl.ca.location=ca.pem \
//!     -X sasl.mechanism=SCRAM-SHA-512 -X sasl.username=alice -X sasl.password=secret
//! ```
//!
//! With no `-b`, a mock cluster of 3 brokers starts in this process
//! (`kafka_sansio::mock::MockServer` on loopback ports) with a 3-partition topic.
//! `-X prop=value` sets a producer property by its Java name (repeatable), as
//! the `produce` example takes it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use kafka_sansio::driver::blocking::Producer;
use kafka_sansio::mock::MockServer;
use kafka_sansio::producer::{ProducerConfig, ProducerRecord, RecordMetadata};

#[path = "support/props.rs"]
mod props;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn usage() -> ! {
    eprintln!("usage: quickstart [-b host:port[,host:port...]] [-t topic] [-X prop=value]...");
    std::process::exit(2)
}

fn show(mode: &str, key: &str, md: &RecordMetadata) {
    println!(
        "{mode:<6} key={key:<7} topic={} partition={} offset={} timestamp={}",
        md.topic, md.partition, md.offset, md.timestamp
    );
}

fn main() -> Result<()> {
    let (mut brokers, mut topic, mut extra) = (None, "quickstart".to_owned(), Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-b" => brokers = Some(args.next().unwrap_or_else(|| usage())),
            "-t" => topic = args.next().unwrap_or_else(|| usage()),
            "-X" => {
                let kv = args.next().unwrap_or_else(|| usage());
                extra.push(props::pair(&kv, "-X").unwrap_or_else(|e| {
                    eprintln!("quickstart: {e}");
                    usage()
                }));
            }
            _ => usage(),
        }
    }

    // No broker given: run a 3-broker mock cluster in this process.
    let mock = match brokers {
        Some(_) => None,
        None => {
            let m = MockServer::start(3)?;
            m.with_cluster(|c| c.create_topic(&topic, 3))?;
            println!("mock cluster at {}", m.bootstrap_servers());
            Some(m)
        }
    };
    let bootstrap = brokers.unwrap_or_else(|| mock.as_ref().unwrap().bootstrap_servers());

    // Java's keys and defaults (acks=all, idempotence on, linger.ms=5), then
    // the -X properties over them.
    let mut config = ProducerConfig::builder()
        .bootstrap_servers(&bootstrap)
        .client_id("quickstart")
        .build()?;
    props::apply(&mut config, &extra)?;
    config.validate()?;
    let producer = Producer::new(config)?;

    // 1. Synchronous: wait for each record's metadata (the wait skips linger.ms).
    for i in 0..3 {
        let key = format!("user-{i}");
        let record = ProducerRecord::new(topic.as_str(), format!("sync #{i}")).key(key.clone());
        let md = producer.send(record)?.wait()?;
        show("sync", &key, &md);
    }

    // 2. Asynchronous: a callback per record, run on one of the producer's threads.
    //    Keep callbacks short; here they hand the result back to main.
    let (tx, rx) = mpsc::channel();
    for i in 0..3 {
        let key = format!("user-{i}");
        let record = ProducerRecord::new(topic.as_str(), format!("async #{i}")).key(key.clone());
        let tx = tx.clone();
        producer.send_with_callback(record, move |result| {
            let _ = tx.send((key, result));
        })?;
    }
    drop(tx);
    for (key, result) in rx {
        show("async", &key, &result?);
    }

    // 3. Tagged: one listener for the whole producer hears each record's
    //    outcome with the tag it was sent with; nothing is allocated per
    //    record (the fastest way to get every outcome).
    let delivered = Arc::new(AtomicU64::new(0));
    let highest = Arc::new(AtomicI64::new(-1));
    let (d, h) = (delivered.clone(), highest.clone());
    producer.on_delivery(move |_tag, result| match result {
        Ok(md) => {
            d.fetch_add(1, Ordering::Relaxed);
            h.fetch_max(md.offset, Ordering::Relaxed);
        }
        Err(e) => eprintln!("tagged record failed: {e}"),
    });
    let n = 1000;
    for i in 0..n {
        let record =
            ProducerRecord::new(topic.as_str(), format!("tagged #{i}")).key(format!("user-{i}"));
        producer.send_with_tag(record, i)?;
    }
    producer.flush()?;
    println!(
        "tagged {} of {n} records delivered (highest offset {})",
        delivered.load(Ordering::Relaxed),
        highest.load(Ordering::Relaxed)
    );

    // 4. Fire-and-forget: no per-record outcome; flush waits until every record
    //    sent so far has one (failures are only logged).
    let n = 1000;
    for i in 0..n {
        let record =
            ProducerRecord::new(topic.as_str(), format!("forget #{i}")).key(format!("user-{i}"));
        producer.send_and_forget(record)?;
    }
    producer.flush()?;
    println!("forget {n} records sent and flushed");
    if let Some(m) = &mock {
        // The mock can show what it stored.
        let cluster = m.cluster();
        for p in 0..cluster.partition_count(&topic).unwrap_or(0) {
            let end = cluster.log_end_offset(&topic, p).unwrap_or(0);
            println!("mock log {topic}-{p}: {end} records");
        }
    }

    producer.close(Duration::from_secs(10))?;
    Ok(())
}
