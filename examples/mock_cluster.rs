//! Runs the built-in mock Kafka cluster standalone, for trying clients
//! (this crate's examples, kcat, librdkafka) with no Kafka installed.
//!
//! ```text
//! cargo run --example mock_cluster -- --brokers 3 --topic demo:6 [--port 9092]
//! kcat -b <bootstrap.servers printed> -P -t demo -K:
//! ```
//!
//! Stops on Ctrl-C or when stdin reaches end of file.

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use kafka_sansio::mock::{MockConfig, MockServer};

fn usage() -> ! {
    eprintln!(
        "usage: mock_cluster [--brokers N] [--topic name:partitions]... [--port base] \
         [--partitions default] [--no-auto-create] [--strict-api-versions]"
    );
    std::process::exit(2)
}

fn main() -> std::io::Result<()> {
    // librdkafka (kcat) only produces RecordBatch v2 when Fetch v4 is
    // advertised; the mock still closes the connection on a Fetch.
    let mut config = MockConfig {
        extra_api_versions: vec![MockConfig::LIBRDKAFKA_COMPAT],
        ..MockConfig::default()
    };
    let mut topics: Vec<(String, i32)> = Vec::new();
    let mut base_port = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--brokers" => config.brokers = value().parse().unwrap_or_else(|_| usage()),
            "--port" => base_port = Some(value().parse::<u16>().unwrap_or_else(|_| usage())),
            "--partitions" => {
                config.default_partitions = value().parse().unwrap_or_else(|_| usage())
            }
            "--no-auto-create" => config.auto_create_topics = false,
            "--strict-api-versions" => config.extra_api_versions.clear(),
            "--topic" => {
                let v = value();
                let (name, parts) = match v.rsplit_once(':') {
                    Some((n, p)) => (n.to_owned(), p.parse().unwrap_or_else(|_| usage())),
                    None => (v, 1),
                };
                topics.push((name, parts));
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if config.brokers == 0 {
        usage();
    }
    let server = MockServer::start_with(config, base_port)?;
    for (name, parts) in &topics {
        if let Err(e) = server.cluster().create_topic(name, *parts) {
            eprintln!("cannot create topic {name}: {e}");
            std::process::exit(1);
        }
    }
    println!("bootstrap.servers={}", server.bootstrap_servers());

    // stdin EOF (or a read error) stops the cluster; Ctrl-C ends the process.
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 1024];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });

    let mut last = (0, 0);
    while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(1)) {
        let now = {
            let c = server.cluster();
            (c.produced_batches(), c.produced_records())
        };
        if now != last {
            println!("produced batches={} records={}", now.0, now.1);
            last = now;
        }
    }
    println!("stopping");
    Ok(())
}
