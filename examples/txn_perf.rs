//! The cost of a transaction: begin, N records, commit, over and over, one
//! transaction at a time, with the flags and the final line of
//! `kafkasansio.TxnPerf` (Kafka's Java producer, run by
//! `tests/interop/kafka/kafka-cluster.sh txn-perf`), for side-by-side runs.
//!
//! ```text
//! cargo run --release --example txn_perf -- --bootstrap 127.0.0.1:9092 --topic T \
//!     --txn-records 100 --transactions 200 [--warmup 3] [--record-size 100] \
//!     [--abort-every K] [--transactional-id ID] [--driver blocking|mio] \
//!     [--producer-props k=v ...]
//! ```
//!
//! - The first `--warmup` transactions (default 3) are not measured (the
//!   coordinator lookup, the producer id, the partitions' first metadata).
//! - With `--abort-every K` every K-th transaction is flushed, so its records
//!   reach the log, then aborted. Values say which: `commit-TXN-I` or
//!   `abort-TXN-I`, padded with `x` to `--record-size` bytes; no key; the
//!   default (sticky) partitioner.
//! - Records are sent fire-and-forget: the commit reports a failed record.
//!
//! stdout, one line:
//! `TXNPERF txn_records=N transactions=T committed=C aborted=A records=R seconds=S
//! commits_per_s=X records_per_s=Y avg_txn_ms=M max_txn_ms=M cpu_s=Z
//! cpu_us_per_record=U cpu_ms_per_txn=V`, where cpu_s is this process's CPU
//! (every thread, user + system, from /proc/self/stat) in the measured part.

use std::process::exit;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_sansio::driver::{self, Handle};
use kafka_sansio::producer::{ProducerConfig, ProducerRecord};

/// How long one transaction call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

fn usage() -> ! {
    eprintln!(
        "usage: txn_perf --bootstrap B --topic T --txn-records N --transactions T [--warmup W] \
         [--record-size S] [--abort-every K] [--transactional-id ID] [--driver blocking|mio] \
         [--producer-props k=v ...]"
    );
    exit(2)
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("txn_perf: {what}: {e}");
    exit(1)
}

/// This process's CPU time (user + system, every thread) in seconds, from
/// /proc/self/stat (fields 14 and 15, in clock ticks of 1/100 s on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces: count from the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // rest starts at field 3 (state): utime is field 14, stime 15.
    match (f.get(11), f.get(12)) {
        (Some(u), Some(s)) => (u + s) as f64 / 100.0,
        _ => 0.0,
    }
}

fn value(commit: bool, txn: u64, i: usize, size: usize) -> Bytes {
    let mut v = format!("{}-{txn}-{i}", if commit { "commit" } else { "abort" }).into_bytes();
    if v.len() < size {
        v.resize(size, b'x');
    }
    Bytes::from(v)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (mut bootstrap, mut topic) = (String::new(), String::new());
    let (mut txn_records, mut transactions, mut warmup) = (0usize, 0u64, 3u64);
    let (mut size, mut abort_every) = (100usize, 0u64);
    let mut txn_id = format!("kafkasansio-txn-perf-{}", std::process::id());
    let mut driver_name = "blocking".to_string();
    let mut props: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    let val = |i: usize| argv.get(i + 1).cloned().unwrap_or_else(|| usage());
    let num = |s: String| s.parse::<u64>().unwrap_or_else(|_| usage());
    while i < argv.len() {
        match argv[i].as_str() {
            "--bootstrap" => bootstrap = val(i),
            "--topic" => topic = val(i),
            "--txn-records" => txn_records = num(val(i)) as usize,
            "--transactions" => transactions = num(val(i)),
            "--warmup" => warmup = num(val(i)),
            "--record-size" => size = num(val(i)) as usize,
            "--abort-every" => abort_every = num(val(i)),
            "--transactional-id" => txn_id = val(i),
            "--driver" => driver_name = val(i),
            "--producer-props" => {
                while i + 1 < argv.len() && !argv[i + 1].starts_with("--") {
                    i += 1;
                    let (k, v) = argv[i].split_once('=').unwrap_or_else(|| usage());
                    props.push((k.to_owned(), v.to_owned()));
                }
                i += 1;
                continue;
            }
            _ => usage(),
        }
        i += 2;
    }
    if bootstrap.is_empty() || topic.is_empty() || txn_records == 0 || transactions == 0 {
        usage();
    }
    let mut config = ProducerConfig::new();
    let mut all = vec![
        ("bootstrap.servers".to_string(), bootstrap),
        ("transactional.id".to_string(), txn_id),
    ];
    all.extend(props);
    for (k, v) in &all {
        if let Err(e) = config.set(k, v) {
            fail("config", e);
        }
    }
    if let Err(e) = config.validate() {
        fail("config", e);
    }
    let (handle, closer): (Handle, Box<dyn FnOnce()>) = match driver_name.as_str() {
        "mio" => {
            let (h, t) = driver::mio::Driver::spawn(config).unwrap_or_else(|e| fail("start", e));
            let h2 = h.clone();
            (
                h,
                Box::new(move || {
                    let _ = h2.close(Duration::from_secs(60));
                    let _ = t.join();
                }),
            )
        }
        "blocking" => {
            let p = driver::blocking::Producer::new(config).unwrap_or_else(|e| fail("start", e));
            (
                p.handle(),
                Box::new(move || {
                    let _ = p.close(Duration::from_secs(60));
                }),
            )
        }
        _ => usage(),
    };
    handle
        .init_transactions(CALL_TIMEOUT)
        .unwrap_or_else(|e| fail("init_transactions", e));
    let topic: std::sync::Arc<str> = topic.as_str().into();
    let (mut committed, mut aborted, mut max_txn) = (0u64, 0u64, Duration::ZERO);
    let (mut start, mut cpu0) = (Instant::now(), cpu_seconds());
    for t in 0..warmup + transactions {
        if t == warmup {
            start = Instant::now();
            cpu0 = cpu_seconds();
        }
        let t0 = Instant::now();
        let abort = abort_every > 0 && (t + 1) % abort_every == 0;
        handle
            .begin_transaction()
            .unwrap_or_else(|e| fail("begin_transaction", e));
        for i in 0..txn_records {
            let r = ProducerRecord {
                topic: topic.clone(),
                partition: None,
                key: None,
                value: Some(value(!abort, t, i, size)),
                headers: Vec::new(),
                timestamp: None,
            };
            // Fire-and-forget: a failed record fails the commit.
            let _ = handle.send(r).unwrap_or_else(|e| fail("send", e));
        }
        if abort {
            // An abort drops what is still buffered: flush so the records are in the log.
            handle
                .flush_timeout(CALL_TIMEOUT)
                .unwrap_or_else(|e| fail("flush", e));
            handle
                .abort_transaction(CALL_TIMEOUT)
                .unwrap_or_else(|e| fail("abort_transaction", e));
        } else {
            handle
                .commit_transaction(CALL_TIMEOUT)
                .unwrap_or_else(|e| fail("commit_transaction", e));
        }
        if t >= warmup {
            max_txn = max_txn.max(t0.elapsed());
            if abort {
                aborted += 1;
            } else {
                committed += 1;
            }
        }
    }
    // Before close: its cost comes once per producer, not per transaction.
    let cpu = cpu_seconds() - cpu0;
    let secs = start.elapsed().as_secs_f64();
    closer();
    let records = transactions * txn_records as u64;
    println!(
        "TXNPERF txn_records={txn_records} transactions={transactions} committed={committed} \
         aborted={aborted} records={records} seconds={secs:.3} commits_per_s={:.1} \
         records_per_s={:.1} avg_txn_ms={:.3} max_txn_ms={:.3} cpu_s={cpu:.3} \
         cpu_us_per_record={:.3} cpu_ms_per_txn={:.3}",
        committed as f64 / secs,
        records as f64 / secs,
        secs * 1000.0 / transactions as f64,
        max_txn.as_secs_f64() * 1000.0,
        cpu * 1e6 / records as f64,
        cpu * 1000.0 / transactions as f64,
    );
}
