//! A complete driver written directly over the sans-IO core, in one thread
//! with `std::net`: the template for running kafka-sansio on another runtime.
//!
//! ```text
//! cargo run --example custom_driver                    # built-in mock cluster
//! cargo run --example custom_driver -- -b localhost:9092 [-t topic] [-n records]
//! ```
//!
//! The core's contract, which every driver follows:
//! 1. feed it inputs (`handle_connected`, `handle_data`, `handle_disconnected`,
//!    `handle_timeout`) and commands (`send`, `flush`, `close`), each with `now`;
//! 2. after each, drain `poll_transmit` (connect / write / close) and
//!    `poll_event` (delivered / failed / closed) until they return `None`;
//! 3. sleep until IO is possible or `poll_timeout` passes, then go to 1.
//!
//! std has no readiness API, so this loop polls nonblocking sockets and naps
//! briefly when nothing happened; a real runtime would wait on readiness.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_sansio::mock::MockServer;
use kafka_sansio::producer::{ConnId, Event, Producer, ProducerConfig, ProducerRecord, Transmit};

/// A connection: the socket and the bytes the core asked us to write, not written yet.
struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
}

fn usage() -> ! {
    eprintln!("usage: custom_driver [-b host:port[,host:port...]] [-t topic] [-n records]");
    std::process::exit(2)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut brokers, mut topic, mut n) = (None, "custom-driver".to_owned(), 10u32);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "-b" => brokers = Some(value()),
            "-t" => topic = value(),
            "-n" => n = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let mock = brokers
        .is_none()
        .then(|| MockServer::start(1))
        .transpose()?;
    let bootstrap = brokers.unwrap_or_else(|| mock.as_ref().unwrap().bootstrap_servers());

    // The core never reads a clock: it gets `now` with every call, and the
    // wall-clock time once here, to stamp records.
    let config = ProducerConfig::builder()
        .bootstrap_servers(&bootstrap)
        .build()?;
    let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let mut core = Producer::new(config, Instant::now(), unix_ms)?;
    let mut conns: BTreeMap<ConnId, Conn> = BTreeMap::new();

    // Commands: hand over the records, then ask for a close, which delivers
    // everything buffered and ends with `Event::Closed`.
    for i in 0..n {
        let record =
            ProducerRecord::new(topic.as_str(), format!("record {i}")).key(format!("k{i}"));
        core.send(record, Instant::now())?;
    }
    core.close(Instant::now());

    let mut buf = vec![0u8; 64 * 1024];
    'run: loop {
        let now = Instant::now();

        // Drain the transmits: carry out each one, reporting the result as an input.
        while let Some(t) = core.poll_transmit(now) {
            match t {
                Transmit::Connect { conn, host, port } => {
                    // Simplification: a blocking connect. A real driver connects
                    // without blocking and reports the result when it comes.
                    let connected = (host.as_str(), port)
                        .to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next())
                        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(5)).ok())
                        .filter(|s| s.set_nonblocking(true).is_ok());
                    match connected {
                        Some(stream) => {
                            let _ = stream.set_nodelay(true);
                            conns.insert(
                                conn,
                                Conn {
                                    stream,
                                    out: Vec::new(),
                                },
                            );
                            core.handle_connected(conn, now);
                        }
                        None => core.handle_disconnected(conn, now),
                    }
                }
                // Bytes go out in order; we buffer and write below.
                Transmit::Send { conn, data } => match conns.get_mut(&conn) {
                    Some(c) => c.out.extend_from_slice(&data),
                    None => core.handle_disconnected(conn, now),
                },
                // The core is done with it: no further calls about this id.
                Transmit::Close { conn } => {
                    conns.remove(&conn);
                }
                other => panic!("a transmit this driver does not know: {other:?}"),
            }
        }

        // Drain the events: outcomes are per batch, fanned out to records here.
        while let Some(event) = core.poll_event() {
            match event {
                Event::Delivered(d) => {
                    for (id, md) in d.metadata() {
                        println!(
                            "record {} delivered: {}-{} offset {} timestamp {}",
                            id.0, md.topic, md.partition, md.offset, md.timestamp
                        );
                    }
                }
                Event::Failed(f) => {
                    for id in f.records.iter() {
                        println!("record {} failed: {}", id.0, f.error);
                    }
                }
                Event::Closed => break 'run,
                _ => {}
            }
        }

        // IO: write what is buffered, read what arrived. Every read and every
        // failure is an input; after inputs, the loop drains outputs again.
        let mut progressed = false;
        let mut broken = Vec::new();
        for (&id, c) in conns.iter_mut() {
            while !c.out.is_empty() {
                match c.stream.write(&c.out) {
                    Ok(0) => break,
                    Ok(k) => {
                        c.out.drain(..k);
                        // Written bytes are an input too: acks=0 records
                        // complete here, and the core paces what it hands us.
                        core.handle_written(id, k, now);
                        progressed = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        broken.push(id);
                        break;
                    }
                }
            }
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => broken.push(id), // the peer closed
                    Ok(k) => {
                        // Any split is fine: the core deframes.
                        core.handle_data(id, &buf[..k], now);
                        progressed = true;
                        continue;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => broken.push(id),
                }
                break;
            }
        }
        for id in broken {
            conns.remove(&id);
            core.handle_disconnected(id, now);
            progressed = true;
        }

        // Timers: linger, retries, request and delivery timeouts all come
        // through one deadline. Calling handle_timeout early is harmless.
        if !progressed {
            let deadline = core.poll_timeout();
            let nap = Duration::from_millis(1);
            let wake = deadline.map_or(nap, |d| {
                d.saturating_duration_since(Instant::now()).min(nap)
            });
            std::thread::sleep(wake);
        }
        let now = Instant::now();
        if core.poll_timeout().is_some_and(|d| d <= now) {
            core.handle_timeout(now);
        }
    }

    let m = core.metrics();
    println!(
        "closed: {} delivered, {} failed, {} produce requests",
        m.records_delivered, m.records_failed, m.produce_requests
    );
    Ok(())
}
