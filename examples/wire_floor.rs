//! The kernel floor of the open-loop benchmark: what any client pays that
//! sends one request per record, with no client in between.
//!
//! ```text
//! cargo run --release --example wire_floor -- --topic T --num-records N \
//!     --record-size S --throughput R --producer-props bootstrap.servers=HOST:PORT [acks=A] [k=v...]
//! ```
//!
//! The same schedule as `producer_perf --throughput R` (record `i` due at
//! `start + i/R`, the sending thread sleeping until then), but each record is
//! one Produce request built once before the run: the sending thread writes
//! those bytes with one `write` and a second thread, blocked in `read`, takes
//! each answer. That is a write, a wake-up and a read per record, the least a
//! client with an answer per record can do; the only user-space work is the
//! schedule. `tests/interop/bench-compare.sh` runs it beside the clients on the
//! same broker so that their CPU per record can be read against this floor.
//!
//! The request is Produce at the broker's highest version up to 12 (by name),
//! `acks` from the properties (default -1), one record of `--record-size`
//! bytes to partition 0 of the topic's leader, with no producer id (the
//! broker appends every copy). Other properties are accepted and ignored.
//! stdout: one final line as the Java tool prints it (latency from the due time).

use std::io::{Read, Write};
use std::process::exit;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use kafka_sansio::protocol::frame::encode_request;
use kafka_sansio::protocol::messages::produce::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_sansio::protocol::{ApiKey, BatchBuilder, Compression};

#[path = "support/reader.rs"]
mod reader;

fn usage() -> ! {
    eprintln!(
        "usage: wire_floor --topic T --num-records N --record-size S --throughput R \
         --producer-props bootstrap.servers=HOST:PORT [acks=A] [k=v ...]"
    );
    exit(2)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (mut topic, mut num, mut size, mut rate) = (String::new(), 0usize, 0usize, 0f64);
    let (mut bootstrap, mut acks) = (String::new(), -1i16);
    let mut i = 0;
    while i < argv.len() {
        let val = || argv.get(i + 1).cloned().unwrap_or_else(|| usage());
        match argv[i].as_str() {
            "--topic" => topic = val(),
            "--num-records" => num = val().parse().unwrap_or_else(|_| usage()),
            "--record-size" => size = val().parse().unwrap_or_else(|_| usage()),
            "--throughput" => rate = val().parse().unwrap_or_else(|_| usage()),
            "--producer-props" | "--command-property" => {
                while i + 1 < argv.len() && !argv[i + 1].starts_with('-') {
                    i += 1;
                    match argv[i].split_once('=') {
                        Some(("bootstrap.servers", v)) => bootstrap = v.to_owned(),
                        Some(("acks", "all")) => acks = -1,
                        Some(("acks", v)) => acks = v.parse().unwrap_or_else(|_| usage()),
                        Some(_) => {}
                        None => usage(),
                    }
                }
                i += 1;
                continue;
            }
            _ => usage(),
        }
        i += 2;
    }
    if topic.is_empty() || num == 0 || rate <= 0.0 || bootstrap.is_empty() {
        usage();
    }

    let conn = reader::PartitionReader::connect(&bootstrap, &topic, 0).unwrap_or_else(|e| {
        eprintln!("wire_floor: {e}");
        exit(1)
    });
    let (stream, versions) = conn.into_parts();
    let Some(version) = versions.get(ApiKey::Produce) else {
        eprintln!("wire_floor: the broker speaks no Produce version this crate knows");
        exit(1)
    };
    // v13 names topics by id; v12 and earlier by name, which is all this needs.
    let frame = produce_frame(&topic, size, acks, version.min(12));

    // Latency from each record's due time; answers come back in request order.
    let base = Instant::now();
    let interval_ns = 1e9 / rate;
    let due = move |i: usize| (i as f64 * interval_ns) as u64;
    let mut rx = stream.try_clone().expect("clone the socket");
    let read_side = std::thread::spawn(move || {
        let mut lat_us = Vec::with_capacity(num);
        let mut buf = vec![0u8; 1 << 16];
        let (mut have, mut answered) = (0usize, 0usize);
        while answered < num {
            match rx.read(&mut buf[have..]) {
                Ok(0) => {
                    eprintln!("wire_floor: the broker closed the connection");
                    exit(1)
                }
                Ok(n) => have += n,
                Err(e) => {
                    eprintln!("wire_floor: read: {e}");
                    exit(1)
                }
            }
            let mut at = 0;
            while have - at >= 4 {
                let len = i32::from_be_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
                if have - at < 4 + len {
                    break;
                }
                at += 4 + len;
                let now = base.elapsed().as_nanos() as u64;
                lat_us.push(now.saturating_sub(due(answered)) / 1000);
                answered += 1;
            }
            buf.copy_within(at..have, 0);
            have -= at;
        }
        lat_us
    });

    let stream = Arc::new(stream);
    for i in 0..num {
        loop {
            let now = base.elapsed().as_nanos() as u64;
            if now >= due(i) {
                break;
            }
            // Sleep as producer_perf does: never spin.
            std::thread::sleep(Duration::from_nanos(due(i) - now));
        }
        if let Err(e) = (&*stream).write_all(&frame) {
            eprintln!("wire_floor: write: {e}");
            exit(1)
        }
    }
    let mut lat_us = read_side.join().expect("reader thread");
    let secs = base.elapsed().as_secs_f64();
    let avg_ms = lat_us.iter().sum::<u64>() as f64 / num as f64 / 1000.0;
    lat_us.sort_unstable();
    let pct = |p: f64| lat_us[((num as f64 * p) as usize).min(num - 1)] / 1000;
    println!(
        "{num} records sent, {:.1} records/sec ({:.2} MB/sec), {avg_ms:.2} ms avg latency, \
         {:.2} ms max latency, {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
        num as f64 / secs,
        (num * size) as f64 / secs / 1e6,
        lat_us[num - 1] as f64 / 1000.0,
        pct(0.5),
        pct(0.95),
        pct(0.99),
        pct(0.999),
    );
}

/// One Produce request frame: a one-record batch of `size` bytes (`A`s) to
/// partition 0, with no producer id, so that every copy is appended.
fn produce_frame(topic: &str, size: usize, acks: i16, version: i16) -> Vec<u8> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let value = vec![b'A'; size];
    let mut batch = BatchBuilder::new(now_ms, size + 128);
    batch.append(now_ms, None, Some(&value), &[]);
    let batch = batch.close(Compression::None, None).expect("one record");
    let request = ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.to_owned(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch.bytes()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    encode_request(&mut buf, 1, Some("wire-floor"), version, &request).expect("encode Produce");
    buf.to_vec()
}
