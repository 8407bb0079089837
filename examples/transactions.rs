//! The producer side of a consume-transform-produce loop, exactly once:
//! records read from an input topic are transformed and written to an output
//! topic, and the input offsets are committed for a consumer group in the
//! same transaction (`send_offsets_to_transaction`), so that the output and
//! the group's position move together or not at all.
//!
//! ```text
//! cargo run --example transactions                      # built-in mock cluster, no Kafka needed
//! cargo run --example transactions -- -b host:port --input IN --output OUT [--group G]
//!     [--transactional-id ID] [--batch N] [--fail-every K] [--records N]
//!     [--driver blocking|mio] [-X prop=value]...
//! ```
//!
//! The consuming side is the application's (kafka-sansio is a producer):
//! here a minimal reader (examples/support/reader.rs) reads every input
//! partition from its start to its end at `read_committed`, and the loop
//! keeps the consumer's position itself. Each transaction takes the next
//! `--batch` input records (default 100), round robin over the input
//! partitions: begin, send one output record per input record (the value
//! upper-cased, the key kept), send the offsets (per input partition, the
//! offset after the last record taken) with the group's metadata, commit.
//!
//! `--fail-every K` makes processing fail late in every K-th transaction:
//! its output is written, then the transaction is aborted and the position
//! rewound to the last committed offsets, and the same input is processed
//! again, as an application does after an error. `read_committed` readers
//! of the output still see every input record transformed exactly once.
//!
//! With no `-b`, a 3-broker mock cluster starts in this process with
//! 3-partition topics `input` and `output`, and `--records` (default 300)
//! input records are written first; at the end the example prints what the
//! mock holds: the group's committed offsets and the output at both
//! isolation levels. Against Kafka the topics must exist, and the group
//! (default `transactions-example`) should have no active members: the
//! offsets go with generation -1 and no member id, as Java's
//! `new ConsumerGroupMetadata(groupId)` sends them. `-X prop=value` sets a
//! producer property by its Java name (repeatable).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use kafka_sansio::driver::{Error, Handle};
use kafka_sansio::mock::MockServer;
use kafka_sansio::producer::txn::{GroupOffsets, TxnError};
use kafka_sansio::producer::{ProducerConfig, ProducerRecord};

#[path = "support/props.rs"]
mod props;
#[path = "support/reader.rs"]
mod reader;
#[path = "support/running.rs"]
mod running;
use running::Running;

/// How long each transaction call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How often one transaction is retried after failing to commit.
const MAX_ATTEMPTS: u32 = 3;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: transactions [-b host:port --input IN --output OUT] [--group G] \
[--transactional-id ID] [--batch N] [--fail-every K] [--records N] [--driver blocking|mio] \
[-X prop=value]...";

struct Args {
    brokers: Option<String>,
    input: String,
    output: String,
    group: String,
    transactional_id: String,
    batch: usize,
    fail_every: u64,
    records: usize,
    driver: String,
    props: Vec<(String, String)>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        brokers: None,
        input: "input".into(),
        output: "output".into(),
        group: "transactions-example".into(),
        transactional_id: "transactions-example".into(),
        batch: 100,
        fail_every: 0,
        records: 300,
        driver: "blocking".into(),
        props: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| -> Result<u64, String> {
            v.parse().map_err(|_| format!("{flag}: bad number `{v}`"))
        };
        match flag.as_str() {
            "-b" => a.brokers = Some(value()?),
            "--input" => a.input = value()?,
            "--output" => a.output = value()?,
            "--group" => a.group = value()?,
            "--transactional-id" => a.transactional_id = value()?,
            "--batch" => a.batch = number(value()?)?.max(1) as usize,
            "--fail-every" => a.fail_every = number(value()?)?,
            "--records" => a.records = number(value()?)? as usize,
            "--driver" => a.driver = value()?,
            "-X" => a.props.push(props::pair(&value()?, "-X")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(a)
}

/// One consumed input record.
struct Input {
    partition: i32,
    offset: i64,
    key: Option<bytes::Bytes>,
    value: Vec<u8>,
}

/// Reads every partition of `topic` from its start to its end at
/// read_committed, interleaved round robin as a consumer's polls would be.
fn consume(bootstrap: &str, topic: &str) -> Result<Vec<Input>, BoxError> {
    let partitions = reader::PartitionReader::connect(bootstrap, topic, 0)?.partition_count()?;
    let mut per_partition = Vec::new();
    for p in 0..partitions {
        let mut r = reader::PartitionReader::connect(bootstrap, topic, p)?;
        let (start, end) = r.offsets()?.ok_or("the broker has no ListOffsets")?;
        let records = r.read_range(start, end, Duration::from_secs(30), true)?;
        per_partition.push(records.into_iter().map(move |f| Input {
            partition: p,
            offset: f.offset,
            key: f.key,
            value: f.value.map(|v| v.to_vec()).unwrap_or_default(),
        }));
    }
    let mut out = Vec::new();
    loop {
        let before = out.len();
        out.extend(per_partition.iter_mut().filter_map(Iterator::next));
        if out.len() == before {
            return Ok(out);
        }
    }
}

/// The transformation: the value upper-cased.
fn transform(output: &str, input: &Input) -> ProducerRecord {
    let mut r = ProducerRecord::new(output, input.value.to_ascii_uppercase());
    r.key = input.key.clone();
    r
}

/// How a transaction ended.
enum Ended {
    /// Committed with these offsets.
    Committed(BTreeMap<(String, i32), i64>),
    /// Processing failed (`--fail-every`): aborted.
    Aborted,
}

/// Runs one transaction over `inputs`: its output records and the offsets
/// after them. With `fail`, processing fails after the output is written
/// and the transaction is aborted instead of committed.
fn transaction(
    producer: &Handle,
    args: &Args,
    inputs: &[Input],
    fail: bool,
) -> Result<Ended, Error> {
    producer.begin_transaction()?;
    let mut offsets = BTreeMap::new();
    for input in inputs {
        producer.send_and_forget(transform(&args.output, input))?;
        offsets.insert((args.input.clone(), input.partition), input.offset + 1);
    }
    let group = GroupOffsets {
        group_id: args.group.clone(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        offsets: offsets.clone(),
    };
    producer.send_offsets_to_transaction(group, CALL_TIMEOUT)?;
    if fail {
        // The failure comes late, once the output is in the log: there
        // read_committed readers skip it after the abort.
        producer.flush_timeout(CALL_TIMEOUT)?;
        producer.abort_transaction(CALL_TIMEOUT)?;
        return Ok(Ended::Aborted);
    }
    producer.commit_transaction(CALL_TIMEOUT)?;
    Ok(Ended::Committed(offsets))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("transactions: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("transactions: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), BoxError> {
    // No broker given: a mock cluster in this process, with input written.
    let mock = match &args.brokers {
        Some(_) => None,
        None => Some(start_mock(args)?),
    };
    let bootstrap = match (&args.brokers, &mock) {
        (Some(b), _) => b.clone(),
        (None, Some(m)) => m.bootstrap_servers(),
        (None, None) => unreachable!("a mock starts when no broker is given"),
    };
    let inputs = consume(&bootstrap, &args.input)?;
    println!(
        "consumed {} input records from {}",
        inputs.len(),
        args.input
    );

    let mut config = ProducerConfig::new();
    config.set("bootstrap.servers", &bootstrap)?;
    config.set("transactional.id", &args.transactional_id)?;
    props::apply(&mut config, &args.props)?;
    config.validate()?;
    let running = Running::start(&args.driver, config)?;
    let producer = running.handle();
    producer.init_transactions(CALL_TIMEOUT)?;

    // The consumer's position: the next input record to process, and the
    // one after the last committed transaction (where an abort rewinds to).
    let (mut position, mut committed_position) = (0usize, 0usize);
    let (mut number, mut attempts, mut aborted) = (0u64, 0u32, 0u64);
    while position < inputs.len() {
        let chunk = &inputs[position..(position + args.batch).min(inputs.len())];
        number += 1;
        let fail = args.fail_every > 0 && number % args.fail_every == 0 && attempts == 0;
        match transaction(&producer, args, chunk, fail) {
            Ok(Ended::Committed(offsets)) => {
                position += chunk.len();
                committed_position = position;
                attempts = 0;
                let shown: Vec<String> = offsets
                    .iter()
                    .map(|((t, p), o)| format!("{t}-{p}={o}"))
                    .collect();
                println!(
                    "transaction {number} committed: {} records, offsets {}",
                    chunk.len(),
                    shown.join(" ")
                );
            }
            Ok(Ended::Aborted) => {
                aborted += 1;
                attempts += 1;
                position = committed_position;
                println!(
                    "transaction {number} aborted (processing failed): {} records, rewound to \
                     input record {position}",
                    chunk.len()
                );
            }
            Err(Error::Transaction(TxnError::Abortable { cause }))
                if attempts + 1 < MAX_ATTEMPTS =>
            {
                // An abortable error leaves the producer usable once aborted.
                producer.abort_transaction(CALL_TIMEOUT)?;
                aborted += 1;
                attempts += 1;
                position = committed_position;
                println!(
                    "transaction {number} aborted ({cause}): {} records, rewound to input record \
                     {position}",
                    chunk.len()
                );
            }
            Err(e) => {
                let _ = running.close(Duration::from_secs(10));
                return Err(e.into());
            }
        }
    }
    running.close(Duration::from_secs(30))?;
    println!(
        "{} input records processed exactly once: {} transactions committed, {aborted} aborted",
        inputs.len(),
        number - aborted
    );
    if let Some(m) = &mock {
        report_mock(m, args)?;
    }
    Ok(())
}

/// Starts the mock cluster with the topics and `--records` input records.
fn start_mock(args: &Args) -> Result<MockServer, BoxError> {
    let m = MockServer::start(3)?;
    m.with_cluster(|c| {
        c.create_topic(&args.input, 3)
            .and_then(|()| c.create_topic(&args.output, 3))
    })?;
    println!("mock cluster at {}", m.bootstrap_servers());
    let mut config = ProducerConfig::new();
    config.set("bootstrap.servers", &m.bootstrap_servers())?;
    let seed = Running::start("blocking", config)?;
    for i in 0..args.records {
        let r = ProducerRecord::new(args.input.as_str(), format!("event {i}"))
            .key(format!("key-{}", i % 7));
        seed.handle().send_and_forget(r)?;
    }
    seed.handle().flush()?;
    seed.close(Duration::from_secs(10))?;
    Ok(m)
}

/// Prints the group's committed offsets and the output topic as the mock
/// holds them, read over the wire at both isolation levels.
fn report_mock(m: &MockServer, args: &Args) -> Result<(), BoxError> {
    let partitions = m
        .with_cluster(|c| c.partition_count(&args.input))
        .unwrap_or(0);
    let committed: Vec<String> = (0..partitions)
        .map(|p| {
            let o = m.with_cluster(|c| c.committed_offset(&args.group, &args.input, p));
            format!(
                "{}-{p}={}",
                args.input,
                o.map_or("none".into(), |o| o.to_string())
            )
        })
        .collect();
    println!(
        "mock: group {} committed {}",
        args.group,
        committed.join(" ")
    );
    let (mut rc, mut ru) = (Vec::new(), 0usize);
    for p in 0..m
        .with_cluster(|c| c.partition_count(&args.output))
        .unwrap_or(0)
    {
        let mut r = reader::PartitionReader::connect(&m.bootstrap_servers(), &args.output, p)?;
        let (start, end) = r.offsets()?.ok_or("no ListOffsets")?;
        let timeout = Duration::from_secs(10);
        ru += r.read_range(start, end, timeout, false)?.len();
        rc.extend(r.read_range(start, end, timeout, true)?);
    }
    let mut values: Vec<String> = rc
        .iter()
        .map(|f| String::from_utf8_lossy(f.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    values.sort();
    let distinct = {
        let mut d = values.clone();
        d.dedup();
        d.len()
    };
    println!(
        "mock: output read_committed {} records ({distinct} distinct), read_uncommitted {ru}",
        values.len()
    );
    Ok(())
}
