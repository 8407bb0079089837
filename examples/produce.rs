//! A kcat -P style producer: one record per line of stdin.
//!
//! ```text
//! cargo run --example produce -- -b host:port -t topic [-p partition] [-K delimiter]
//!     [-H key=value]... [-X prop=value]... [--driver blocking|mio] [--report]
//!     [--txn-records N] [--abort]
//! printf 'k1:hello\nk2:world\n' | cargo run --example produce -- -b 127.0.0.1:9092 -t demo -K: --report
//! seq 1 1000 | cargo run --example produce -- -b 127.0.0.1:9092 -t demo -X transactional.id=demo-1
//! ```
//!
//! - `-K d`: split each line at the first `d` into key and value (a line
//!   without `d` is a value with a null key).
//! - `-H key=value`: a header on every record (repeatable).
//! - `-X prop=value`: a producer property by its Java name, e.g.
//!   `-X acks=1 -X linger.ms=20 -X compression.type=lz4` (repeatable).
//! - `--report`: print `topic partition offset` per record on stdout, in input order.
//! - `-X transactional.id=ID`: a transactional producer. Everything read is
//!   one transaction, committed at the end of input; `--txn-records N`
//!   commits every N records instead (the rest at the end). `--abort` ends
//!   the last transaction with an abort instead of a commit: its records are
//!   flushed into the log first, where `read_committed` consumers skip them.
//!   Each transaction call waits up to `max.block.ms`.
//!
//! A summary (`N records delivered, M failed`, and with a transactional id
//! `C transactions committed (R records), A aborted (R records)`) goes to
//! stderr; the exit status is 1 when any record or transaction call failed
//! (a failed commit is aborted and the rest of the input left unread), 2 on
//! bad arguments.
//!
//! Records are sent without waiting for each other: up to `WINDOW` outcomes are
//! awaited at once, in input order, so a line never costs a round trip.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use kafka_sansio::driver::{DeliveryFuture, Error, Handle};
use kafka_sansio::producer::txn::TxnError;
use kafka_sansio::producer::{ProducerConfig, ProducerRecord};

#[path = "support/props.rs"]
mod props;
#[path = "support/running.rs"]
mod running;
use running::Running;

/// Outcomes awaited at once; beyond it the oldest is waited for first.
const WINDOW: usize = 100_000;

const USAGE: &str = "usage: produce -b host:port -t topic [-p partition] [-K delimiter] \
[-H key=value]... [-X prop=value]... [--driver blocking|mio] [--report] \
[--txn-records N] [--abort]";

struct Args {
    brokers: String,
    topic: String,
    partition: Option<i32>,
    delimiter: Option<String>,
    headers: Vec<(String, String)>,
    props: Vec<(String, String)>,
    driver: String,
    report: bool,
    /// Records per transaction (`--txn-records`); `None`: one for the whole input.
    txn_records: Option<u64>,
    /// Abort the last transaction instead of committing it.
    abort: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        brokers: String::new(),
        topic: String::new(),
        partition: None,
        delimiter: None,
        headers: Vec::new(),
        props: Vec::new(),
        driver: "blocking".into(),
        report: false,
        txn_records: None,
        abort: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // Accept both "-K:" and "-K :" (kcat style).
        let (flag, attached) = match flag.as_str() {
            f if f.len() > 2 && f.starts_with('-') && !f.starts_with("--") => {
                (f[..2].to_owned(), Some(f[2..].to_owned()))
            }
            f => (f.to_owned(), None),
        };
        let mut value = || {
            attached
                .clone()
                .or_else(|| it.next())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-b" => a.brokers = value()?,
            "-t" => a.topic = value()?,
            "-p" => {
                let v = value()?;
                a.partition = Some(v.parse().map_err(|_| format!("bad partition `{v}`"))?);
            }
            "-K" => a.delimiter = Some(value()?).filter(|d| !d.is_empty()),
            "-H" => a.headers.push(props::pair(&value()?, "-H")?),
            "-X" => a.props.push(props::pair(&value()?, "-X")?),
            "--driver" => a.driver = value()?,
            "--report" => a.report = true,
            "--txn-records" => {
                let v = value()?;
                a.txn_records = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(format!("bad --txn-records `{v}`"))?,
                );
            }
            "--abort" => a.abort = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if a.brokers.is_empty() || a.topic.is_empty() {
        return Err("-b and -t are required".into());
    }
    if a.driver != "blocking" && a.driver != "mio" {
        return Err(format!(
            "--driver must be blocking or mio, got `{}`",
            a.driver
        ));
    }
    let transactional = a.props.iter().any(|(k, _)| k == "transactional.id");
    if (a.txn_records.is_some() || a.abort) && !transactional {
        return Err("--txn-records and --abort need -X transactional.id=ID".into());
    }
    Ok(a)
}

/// Counts outcomes and prints reports in input order.
struct Outcomes {
    report: bool,
    delivered: u64,
    failed: u64,
    out: std::io::BufWriter<std::io::Stdout>,
    /// Records sent whose outcome is not taken yet, with their line numbers.
    pending: VecDeque<(u64, DeliveryFuture)>,
}

impl Outcomes {
    /// Waits for the oldest pending outcome.
    fn wait_oldest(&mut self) {
        if let Some((n, f)) = self.pending.pop_front() {
            self.wait(n, f);
        }
    }

    /// Waits for every pending outcome, in input order.
    fn drain(&mut self) {
        while !self.pending.is_empty() {
            self.wait_oldest();
        }
    }

    fn wait(&mut self, line: u64, f: DeliveryFuture) {
        match f.wait() {
            Ok(md) => {
                self.delivered += 1;
                if self.report {
                    let _ = writeln!(self.out, "{} {} {}", md.topic, md.partition, md.offset);
                }
            }
            Err(e) => {
                self.failed += 1;
                eprintln!("line {line}: {e}");
            }
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("produce: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut config = ProducerConfig::new();
    let set = props::apply(&mut config, &args.props)
        .and_then(|()| config.set("bootstrap.servers", &args.brokers).map(|_| ()));
    if let Err(e) = set {
        eprintln!("produce: {e}\n{USAGE}");
        return ExitCode::from(2);
    }
    // Java waits up to max.block.ms in each transaction call.
    let mut txns = config.transactional_id.is_some().then_some(Txns {
        timeout: config.max_block,
        open: false,
        in_txn: 0,
        committed: (0, 0),
        aborted: (0, 0),
        failed: false,
    });
    let running = match Running::start(&args.driver, config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("produce: {e}");
            return ExitCode::from(2);
        }
    };
    let producer = running.handle();

    let mut outcomes = Outcomes {
        report: args.report,
        delivered: 0,
        failed: 0,
        out: std::io::BufWriter::new(std::io::stdout()),
        pending: VecDeque::new(),
    };
    if let Some(t) = txns.as_mut() {
        if let Err(e) = producer.init_transactions(t.timeout) {
            eprintln!("produce: init_transactions: {e}");
            t.failed = true;
        }
    }
    let stdin = std::io::stdin().lock();
    for (n, line) in stdin.split(b'\n').enumerate() {
        if txns.as_ref().is_some_and(|t| t.failed) {
            break;
        }
        let n = n as u64 + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("produce: reading stdin: {e}");
                break;
            }
        };
        if let Some(t) = txns.as_mut() {
            if !t.begin(&producer) {
                break;
            }
        }
        let mut record = match args.delimiter.as_deref().and_then(|d| split(&line, d)) {
            Some((k, v)) => ProducerRecord::new(args.topic.as_str(), v.to_vec()).key(k.to_vec()),
            None => ProducerRecord::new(args.topic.as_str(), line),
        };
        record.partition = args.partition;
        for (k, v) in &args.headers {
            record = record.header(k.clone(), v.clone().into_bytes());
        }
        match producer.send(record) {
            Ok(f) => {
                outcomes.pending.push_back((n, f));
                if let Some(t) = txns.as_mut() {
                    t.in_txn += 1;
                    if args.txn_records == Some(t.in_txn) {
                        t.end(&producer, true, &mut outcomes);
                    }
                }
            }
            Err(e) => {
                // Refused before it was accepted (closed producer, buffer full for max.block.ms, ...).
                outcomes.failed += 1;
                eprintln!("line {n}: {e}");
            }
        }
        if outcomes.pending.len() >= WINDOW {
            outcomes.wait_oldest();
        }
    }
    if let Some(t) = txns.as_mut() {
        if t.open && !t.failed {
            t.end(&producer, !args.abort, &mut outcomes);
        }
    }
    let txn_failed = txns.as_ref().is_some_and(|t| t.failed);
    if txn_failed {
        // Records of a transaction that failed may have no outcome until
        // the close gives up on them: close first.
        if let Err(e) = running.close(Duration::from_secs(30)) {
            eprintln!("produce: close: {e}");
        }
        outcomes.drain();
    } else {
        outcomes.drain();
        if let Err(e) = running.close(Duration::from_secs(30)) {
            eprintln!("produce: close: {e}");
        }
    }
    let _ = outcomes.out.flush();
    eprintln!(
        "{} records delivered, {} failed",
        outcomes.delivered, outcomes.failed
    );
    if let Some(t) = &txns {
        eprintln!(
            "{} transactions committed ({} records), {} aborted ({} records)",
            t.committed.0, t.committed.1, t.aborted.0, t.aborted.1
        );
    }
    if outcomes.failed > 0 || txn_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The transactions of a run with `transactional.id`.
struct Txns {
    /// How long each transaction call may take (`max.block.ms`).
    timeout: Duration,
    /// A transaction is open.
    open: bool,
    /// Records accepted in the open transaction.
    in_txn: u64,
    /// Transactions and records committed.
    committed: (u64, u64),
    /// Transactions and records aborted.
    aborted: (u64, u64),
    /// A transaction call failed: the run stops.
    failed: bool,
}

impl Txns {
    /// Opens a transaction unless one is open; false when that failed.
    fn begin(&mut self, producer: &Handle) -> bool {
        if !self.open {
            if let Err(e) = producer.begin_transaction() {
                eprintln!("produce: begin_transaction: {e}");
                self.failed = true;
                return false;
            }
            self.open = true;
            self.in_txn = 0;
        }
        true
    }

    /// Commits (or, with `commit` false, flushes and aborts) the open
    /// transaction, then takes the outcomes of its records. A commit that
    /// fails is aborted when it can be, and the run stops.
    fn end(&mut self, producer: &Handle, commit: bool, outcomes: &mut Outcomes) {
        self.open = false;
        let ended = if commit {
            producer
                .commit_transaction(self.timeout)
                .map_err(|e| ("commit_transaction", e))
        } else {
            // An abort drops what is still buffered: flush first, so that
            // the records are in the log (as aborted records).
            producer
                .flush_timeout(self.timeout)
                .map_err(|e| ("flush", e))
                .and_then(|()| {
                    producer
                        .abort_transaction(self.timeout)
                        .map_err(|e| ("abort_transaction", e))
                })
        };
        match ended {
            Ok(()) if commit => {
                self.committed = (self.committed.0 + 1, self.committed.1 + self.in_txn)
            }
            Ok(()) => self.aborted = (self.aborted.0 + 1, self.aborted.1 + self.in_txn),
            Err((call, e)) => {
                eprintln!("produce: {call}: {e}");
                self.failed = true;
                let abortable = matches!(
                    e,
                    Error::Transaction(TxnError::Abortable { .. })
                        | Error::TransactionTimeout { .. }
                );
                if commit && abortable {
                    match producer.abort_transaction(self.timeout) {
                        Ok(()) => self.aborted = (self.aborted.0 + 1, self.aborted.1 + self.in_txn),
                        Err(e) => eprintln!("produce: abort_transaction: {e}"),
                    }
                }
                // Outcomes may still be missing: main takes them after the close.
                return;
            }
        }
        // Committed or aborted: every record of the transaction has its outcome.
        outcomes.drain();
    }
}

/// Splits `line` at the first occurrence of `delim`.
fn split<'a>(line: &'a [u8], delim: &str) -> Option<(&'a [u8], &'a [u8])> {
    let d = delim.as_bytes();
    let at = line.windows(d.len()).position(|w| w == d)?;
    Some((&line[..at], &line[at + d.len()..]))
}
