//! RecordBatch codec throughput, single thread, in memory.
//!
//! Builds batches (append + close, which includes the CRC-32C and, where asked,
//! compression) for 100 B and 1 KiB values in 16 KiB and 1 MiB batches, with
//! every compiled codec, then decodes batches back to records.
//!
//! ```text
//! cargo run --release --example codec_bench [-- SECONDS_PER_CASE]
//! cargo run --release --example codec_bench --features compression
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use kafka_sansio::protocol::{BatchBuilder, Compression, RecordBatch};

/// Values drawn from a 32-letter alphabet by a fixed xorshift: about as
/// compressible as text, and every record different.
fn make_values(size: usize, n: usize) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"abcdefghijklmnopqrstuvwxyz012345"[(x % 32) as usize]
                })
                .collect()
        })
        .collect()
}

/// Nanoseconds this thread has spent on a CPU (Linux), so that results stay
/// meaningful on a loaded machine; `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

struct Outcome {
    records: u64,
    value_bytes: u64,
    wire_bytes: u64,
    uncompressed_bytes: u64,
    elapsed: Duration,
    cpu: Option<Duration>,
}

fn build_case(values: &[Vec<u8>], batch_size: usize, codec: Compression, secs: f64) -> Outcome {
    let deadline = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut o = Outcome {
        records: 0,
        value_bytes: 0,
        wire_bytes: 0,
        uncompressed_bytes: 0,
        elapsed: Duration::ZERO,
        cpu: None,
    };
    let cpu0 = thread_cpu_ns();
    let mut ts: i64 = 1_700_000_000_000;
    let mut v = 0;
    loop {
        // Check the clock once per batch only.
        let mut b = BatchBuilder::new(ts, batch_size);
        loop {
            let value = &values[v];
            if b.len() + value.len() + 8 > batch_size && !b.is_empty() {
                break;
            }
            b.append(ts, None, Some(value), &[]);
            o.value_bytes += value.len() as u64;
            ts += 1;
            v = (v + 1) % values.len();
        }
        o.records += b.record_count() as u64;
        o.uncompressed_bytes += b.len() as u64;
        let closed = b.close(codec, None).expect("close");
        o.wire_bytes += closed.len() as u64;
        black_box(closed.bytes());
        o.elapsed = start.elapsed();
        if o.elapsed >= deadline {
            o.cpu = cpu_since(cpu0);
            return o;
        }
    }
}

fn decode_case(values: &[Vec<u8>], batch_size: usize, codec: Compression, secs: f64) -> Outcome {
    // A few distinct batches, decoded round-robin.
    let batches: Vec<_> = (0..8)
        .map(|i| {
            let mut b = BatchBuilder::new(i, batch_size);
            let mut v = i as usize;
            while b.len() + values[v].len() + 8 <= batch_size {
                b.append(i, None, Some(&values[v]), &[]);
                v = (v + 1) % values.len();
            }
            let mut c = b.close(codec, None).expect("close");
            c.stamp(1, 0, 0, false);
            c.bytes()
        })
        .collect();
    let deadline = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut o = Outcome {
        records: 0,
        value_bytes: 0,
        wire_bytes: 0,
        uncompressed_bytes: 0,
        elapsed: Duration::ZERO,
        cpu: None,
    };
    let cpu0 = thread_cpu_ns();
    for i in 0.. {
        let wire = &batches[i % batches.len()];
        let mut buf = wire.clone();
        let batch = RecordBatch::decode(&mut buf).expect("decode");
        let records = batch.records().expect("records");
        o.records += records.len() as u64;
        o.value_bytes += records
            .iter()
            .map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64)
            .sum::<u64>();
        o.wire_bytes += wire.len() as u64;
        black_box(records);
        if i % 8 == 0 {
            o.elapsed = start.elapsed();
            if o.elapsed >= deadline {
                o.cpu = cpu_since(cpu0);
                break;
            }
        }
    }
    o
}

fn cpu_since(start: Option<u64>) -> Option<Duration> {
    Some(Duration::from_nanos(thread_cpu_ns()? - start?))
}

fn report(kind: &str, value_size: usize, batch_size: usize, codec: Compression, o: &Outcome) {
    // Rates per second of CPU time of this thread (wall time if unavailable).
    let s = o.cpu.unwrap_or(o.elapsed).as_secs_f64();
    let busy = o.cpu.map_or(String::new(), |c| {
        format!(
            "  on-cpu {:.0}%",
            100.0 * c.as_secs_f64() / o.elapsed.as_secs_f64()
        )
    });
    let ratio = if o.uncompressed_bytes > 0 {
        format!(
            "  ratio {:.2}",
            o.wire_bytes as f64 / o.uncompressed_bytes as f64
        )
    } else {
        String::new()
    };
    println!(
        "{kind:6} value {value_size:>5} B  batch {:>5} KiB  {:<6}  {:>7.2} M rec/s  values {:>6.2} GB/s  wire {:>6.2} GB/s{ratio}{busy}",
        batch_size / 1024,
        codec.name(),
        o.records as f64 / s / 1e6,
        o.value_bytes as f64 / s / 1e9,
        o.wire_bytes as f64 / s / 1e9,
    );
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    let codecs: Vec<Compression> = Compression::ALL
        .into_iter()
        .filter(|c| c.is_available())
        .collect();
    println!(
        "single thread; {secs} s per case; rates per CPU-second of the thread; codecs: {}",
        codecs
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // The machine's ceiling: CRC-32C alone over a 1 MiB buffer (every wire byte is hashed once).
    {
        let data = make_values(1 << 20, 1).pop().expect("one value");
        let (start, cpu0) = (Instant::now(), thread_cpu_ns());
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs_f64(secs / 2.0) {
            black_box(crc32c::crc32c(black_box(&data)));
            n += 1;
        }
        let s = cpu_since(cpu0).unwrap_or(start.elapsed()).as_secs_f64();
        println!(
            "ceiling: crc32c alone {:.2} GB/s (wire bytes)",
            (n << 20) as f64 / s / 1e9
        );
    }
    for value_size in [100, 1024] {
        let values = make_values(value_size, 4096);
        for codec in &codecs {
            for batch_size in [16 << 10, 1 << 20] {
                let o = build_case(&values, batch_size, *codec, secs);
                report("build", value_size, batch_size, *codec, &o);
            }
        }
    }
    for value_size in [100, 1024] {
        let values = make_values(value_size, 4096);
        for codec in &codecs {
            let o = decode_case(&values, 1 << 20, *codec, secs);
            report("decode", value_size, 1 << 20, *codec, &o);
        }
    }
}
