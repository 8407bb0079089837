//! A kcat -P style producer: one record per line of stdin.
//!
//! ```text
//! cargo run --example produce -- -b host:port -t topic [-p partition] [-K delimiter]
//!     [-H key=value]... [-X prop=value]... [--driver blocking|mio] [--report]
//! printf 'k1:hello\nk2:world\n' | cargo run --example produce -- -b 127.0.0.1:9092 -t demo -K: --report
//! ```
//!
//! - `-K d`: split each line at the first `d` into key and value (a line
//!   without `d` is a value with a null key).
//! - `-H key=value`: a header on every record (repeatable).
//! - `-X prop=value`: a producer property by its Java name, e.g.
//!   `-X acks=1 -X linger.ms=20 -X compression.type=lz4` (repeatable).
//! - `--report`: print `topic partition offset` per record on stdout, in input order.
//!
//! A summary (`N records delivered, M failed`) goes to stderr; the exit status
//! is 1 when any record failed, 2 on bad arguments.
//!
//! Records are sent without waiting for each other: up to `WINDOW` outcomes are
//! awaited at once, in input order, so a line never costs a round trip.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use kafka_sansio::driver::{blocking, DeliveryFuture, Error, Handle};
use kafka_sansio::producer::{ProducerConfig, ProducerRecord};

#[path = "support/props.rs"]
mod props;

/// Outcomes awaited at once; beyond it the oldest is waited for first.
const WINDOW: usize = 100_000;

const USAGE: &str = "usage: produce -b host:port -t topic [-p partition] [-K delimiter] \
[-H key=value]... [-X prop=value]... [--driver blocking|mio] [--report]";

struct Args {
    brokers: String,
    topic: String,
    partition: Option<i32>,
    delimiter: Option<String>,
    headers: Vec<(String, String)>,
    props: Vec<(String, String)>,
    driver: String,
    report: bool,
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
    Ok(a)
}

/// A running producer of either driver, used through the shared `Handle` API.
enum Running {
    Blocking(blocking::Producer),
    #[cfg(feature = "mio-driver")]
    Mio(Handle, std::thread::JoinHandle<std::io::Result<()>>),
}

impl Running {
    fn start(driver: &str, config: ProducerConfig) -> Result<Running, Error> {
        match driver {
            #[cfg(feature = "mio-driver")]
            "mio" => {
                let (handle, thread) = kafka_sansio::driver::mio::Driver::spawn(config)?;
                Ok(Running::Mio(handle, thread))
            }
            #[cfg(not(feature = "mio-driver"))]
            "mio" => Err(Error::Io(std::io::Error::other(
                "built without the mio-driver feature",
            ))),
            _ => Ok(Running::Blocking(blocking::Producer::new(config)?)),
        }
    }

    fn handle(&self) -> Handle {
        match self {
            Running::Blocking(p) => p.handle(),
            #[cfg(feature = "mio-driver")]
            Running::Mio(h, _) => h.clone(),
        }
    }

    fn close(self, timeout: Duration) -> Result<(), Error> {
        match self {
            Running::Blocking(p) => p.close(timeout),
            #[cfg(feature = "mio-driver")]
            Running::Mio(h, thread) => {
                let r = h.close(timeout);
                let _ = thread.join();
                r
            }
        }
    }
}

/// Counts outcomes and prints reports in input order.
struct Outcomes {
    report: bool,
    delivered: u64,
    failed: u64,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl Outcomes {
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
    };
    let mut pending: VecDeque<(u64, DeliveryFuture)> = VecDeque::new();
    let stdin = std::io::stdin().lock();
    for (n, line) in stdin.split(b'\n').enumerate() {
        let n = n as u64 + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("produce: reading stdin: {e}");
                break;
            }
        };
        let mut record = match args.delimiter.as_deref().and_then(|d| split(&line, d)) {
            Some((k, v)) => ProducerRecord::new(args.topic.as_str(), v.to_vec()).key(k.to_vec()),
            None => ProducerRecord::new(args.topic.as_str(), line),
        };
        record.partition = args.partition;
        for (k, v) in &args.headers {
            record = record.header(k.clone(), v.clone().into_bytes());
        }
        match producer.send(record) {
            Ok(f) => pending.push_back((n, f)),
            Err(e) => {
                // Refused before it was accepted (closed producer, buffer full for max.block.ms, ...).
                outcomes.failed += 1;
                eprintln!("line {n}: {e}");
            }
        }
        if pending.len() >= WINDOW {
            let (n, f) = pending.pop_front().expect("non-empty");
            outcomes.wait(n, f);
        }
    }
    for (n, f) in pending {
        outcomes.wait(n, f);
    }
    let _ = outcomes.out.flush();
    if let Err(e) = running.close(Duration::from_secs(30)) {
        eprintln!("produce: close: {e}");
    }
    eprintln!(
        "{} records delivered, {} failed",
        outcomes.delivered, outcomes.failed
    );
    if outcomes.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Splits `line` at the first occurrence of `delim`.
fn split<'a>(line: &'a [u8], delim: &str) -> Option<(&'a [u8], &'a [u8])> {
    let d = delim.as_bytes();
    let at = line.windows(d.len()).position(|w| w == d)?;
    Some((&line[..at], &line[at + d.len()..]))
}
