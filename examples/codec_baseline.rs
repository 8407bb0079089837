//! Is the batch codec as fast as a plain loop can be? Runs, interleaved on one
//! thread and timed by this thread's CPU clock:
//! - `crc32c`: the `crc32c` crate over a 1 MiB buffer (the CPU's CRC-32C speed),
//!   and the batch CRC this build uses (`crc-fast` with that feature);
//! - `plain`: a hand-written RecordBatch v2 builder (`BytesMut` + varints +
//!   `crc32c`), the floor for what [`BatchBuilder`] must reach;
//! - `BatchBuilder`: this crate's builder (append + close) on the same records.
//!
//! ```text
//! cargo run --release --example codec_baseline [-- SECONDS_PER_CASE ROUNDS]
//! ```

use std::hint::black_box;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use kafka_sansio::protocol::{BatchBuilder, Compression};

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn put_varint(b: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        b.put_u8(z as u8 | 0x80);
        z >>= 7;
    }
    b.put_u8(z as u8);
}

fn varint_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    (64 - (z | 1).leading_zeros() as usize).div_ceil(7)
}

/// The plain builder: one batch of `n` records of `value`, CRC included.
fn plain_batch(buf: &mut BytesMut, value: &[u8], n: usize, ts: i64) -> usize {
    buf.clear();
    buf.put_bytes(0, 61);
    for i in 0..n {
        let body =
            1 + 1 + varint_len(i as i64) + 1 + varint_len(value.len() as i64) + value.len() + 1;
        put_varint(buf, body as i64);
        buf.put_u8(0); // attributes
        buf.put_u8(0); // timestamp delta
        put_varint(buf, i as i64);
        buf.put_u8(1); // null key
        put_varint(buf, value.len() as i64);
        buf.put_slice(value);
        buf.put_u8(0); // headers
    }
    let len = buf.len();
    {
        let mut h = &mut buf[..61];
        h.put_i64(0);
        h.put_i32((len - 12) as i32);
        h.put_i32(-1);
        h.put_i8(2);
        h.put_u32(0);
        h.put_i16(0);
        h.put_i32(n as i32 - 1);
        h.put_i64(ts);
        h.put_i64(ts);
        h.put_i64(-1);
        h.put_i16(-1);
        h.put_i32(-1);
        h.put_i32(n as i32);
    }
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    len
}

/// Cases 0 and 3 time a CRC over one buffer; 1 and 2 build batches.
fn is_crc_case(k: usize) -> bool {
    k == 0 || k == 3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let batch = 1 << 20;
    println!("case                     best rec/s      best GB/s (values)  (thread CPU time)");
    let mut big = vec![0u8; batch];
    for (i, b) in big.iter_mut().enumerate() {
        *b = (i * 31) as u8;
    }
    for size in [100usize, 1024] {
        let value: Vec<u8> = (0..size).map(|i| b'A' + (i % 26) as u8).collect();
        let per_batch = batch / (size + 8);
        let mut best = [(0f64, 0f64); 4];
        let mut buf = BytesMut::with_capacity(batch + 1024);
        let mut spare: Option<BytesMut> = None;
        for _ in 0..rounds {
            for (k, slot) in best.iter_mut().enumerate() {
                // The CRC cases hash `big`, whatever the value size: measured
                // once, with the 100 B group, and printed there.
                if is_crc_case(k) && size != 100 {
                    continue;
                }
                let c0 = thread_cpu_ns();
                let w0 = Instant::now();
                let mut recs = 0u64;
                let mut bytes = 0u64;
                let mut ts = 1_700_000_000_000i64;
                while w0.elapsed().as_secs_f64() < secs {
                    match k {
                        0 => {
                            black_box(crc32c::crc32c(black_box(&big)));
                            bytes += big.len() as u64;
                        }
                        1 => {
                            black_box(plain_batch(&mut buf, &value, per_batch, ts));
                            recs += per_batch as u64;
                            bytes += (per_batch * size) as u64;
                        }
                        2 => {
                            // The producer recycles batch buffers (its pool):
                            // so does this, as the plain builder reuses `buf`.
                            let mut b = match spare.take() {
                                Some(buf) => BatchBuilder::with_buffer(buf, ts),
                                None => BatchBuilder::new(ts, batch),
                            };
                            for _ in 0..per_batch {
                                b.append(ts, None, Some(&value), &[]);
                            }
                            let closed = b.close(Compression::None, None).expect("close");
                            black_box(&closed);
                            spare = closed.into_buffer();
                            recs += per_batch as u64;
                            bytes += (per_batch * size) as u64;
                        }
                        3 => {
                            let crc = kafka_sansio::protocol::checksum::crc32c(black_box(&big));
                            black_box(crc);
                            bytes += big.len() as u64;
                        }
                        _ => unreachable!(),
                    }
                    ts += 1;
                }
                let cpu = (thread_cpu_ns() - c0) as f64 / 1e9;
                let cpu = if cpu > 0.0 {
                    cpu
                } else {
                    w0.elapsed().as_secs_f64()
                };
                let r = (recs as f64 / cpu, bytes as f64 / cpu / 1e9);
                if r.1 > slot.1 {
                    *slot = r;
                }
            }
        }
        let batch_crc = if cfg!(feature = "crc-fast") {
            "batch CRC (crc-fast)"
        } else {
            "batch CRC (crc32c)"
        };
        let names = [
            "crc32c 1 MiB",
            "plain bytes+crc32c",
            "BatchBuilder",
            batch_crc,
        ];
        for (k, (name, (r, g))) in names.iter().zip(best).enumerate() {
            if is_crc_case(k) {
                if size == 100 {
                    println!("{name:<24} {:>12}  {g:>8.2} GB/s", "-");
                }
                continue;
            }
            println!(
                "{:<24} {:>9.1} M/s  {g:>8.2} GB/s",
                format!("{name} {size} B"),
                r / 1e6
            );
        }
    }
}
