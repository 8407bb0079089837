//! Runs the examples as a user would, as separate processes, and checks
//! their exit status and output (and, where they talk to a mock started
//! here, what the mock stored).
//!
//! Each example is built with `cargo build --example` using this test's own
//! profile and features, which is what `cargo test` has just built, so the
//! build is a no-op there; the binary path comes from cargo's JSON messages.
//! Every run has a time limit.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use kafka_sansio::mock::MockServer;

#[path = "../examples/support/reader.rs"]
mod reader;

const LIMIT: Duration = Duration::from_secs(60);

/// The features this test binary was built with, for building examples alike.
fn features() -> String {
    // All of them, umbrella ones included: cargo's fingerprint lists them.
    let all = [
        ("default", cfg!(feature = "default")),
        ("compression", cfg!(feature = "compression")),
        ("mio-driver", cfg!(feature = "mio-driver")),
        ("gzip", cfg!(feature = "gzip")),
        ("snappy", cfg!(feature = "snappy")),
        ("lz4", cfg!(feature = "lz4")),
        ("zstd", cfg!(feature = "zstd")),
        ("json", cfg!(feature = "json")),
        ("avro", cfg!(feature = "avro")),
    ];
    all.iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| *f)
        .collect::<Vec<_>>()
        .join(",")
}

/// Builds example `name` (once per test process) and returns its executable.
fn example(name: &str) -> String {
    static BUILT: OnceLock<Mutex<Vec<(String, String)>>> = OnceLock::new();
    let built = BUILT.get_or_init(Mutex::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, exe)) = built.iter().find(|(n, _)| n == name) {
        return exe.clone();
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "--example",
            name,
        ])
        .args(["--no-default-features", "--features", &features()]);
    if cfg!(debug_assertions) {
        cmd.args(["--profile", "test"]);
    } else {
        cmd.arg("--release");
    }
    let out = run(cmd, None, Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "building example {name} failed:\n{}",
        out.stderr
    );
    let exe = stdout
        .lines()
        .filter(|l| {
            l.contains("\"compiler-artifact\"") && l.contains(&format!("\"name\":\"{name}\""))
        })
        .find_map(|l| {
            let start = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let len = l[start..].find('"')?;
            Some(l[start..start + len].to_owned())
        })
        .unwrap_or_else(|| panic!("no executable for example {name} in cargo's output"));
    built.push((name.to_owned(), exe.clone()));
    exe
}

struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Output {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `cmd` with `stdin`, killing it after `limit`.
fn run(mut cmd: Command, stdin: Option<Vec<u8>>, limit: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let writer = thread::spawn(move || {
        if let Some(data) = stdin {
            let _ = input.write_all(&data);
        }
        // Dropping closes stdin: the end of input.
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap_or_default();
            panic!("{cmd:?} did not finish within {limit:?}; stderr:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    writer.join().expect("stdin writer");
    Output {
        status,
        stdout: reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

fn run_example(name: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    let mut cmd = Command::new(example(name));
    cmd.args(args);
    run(cmd, stdin, LIMIT)
}

#[test]
fn quickstart_prints_metadata_of_all_four_modes() {
    let out = run_example("quickstart", &[], None);
    let text = out.text();
    assert!(out.status.success(), "{text}\n{}", out.stderr);
    for mode in ["sync", "async"] {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{mode} ")))
            .collect();
        assert_eq!(lines.len(), 3, "{mode} lines:\n{text}");
        for l in lines {
            assert!(
                l.contains("topic=quickstart")
                    && l.contains(" offset=")
                    && l.contains(" timestamp="),
                "{l}"
            );
        }
    }
    assert!(
        text.contains("forget 1000 records sent and flushed"),
        "{text}"
    );
    // flush returned after the listener heard every tagged record.
    assert!(
        text.contains("tagged 1000 of 1000 records delivered"),
        "{text}"
    );
    // The mock's own count: 3 sync + 3 async + 1000 tagged + 1000 fire-and-forget.
    let stored: u64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("mock log quickstart-"))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(stored, 2006, "{text}");
}

/// `produce --report` prints one `topic partition offset` line per input
/// line, in input order, and the mock holds each line there.
fn produce_reports_each_line(driver: &str) {
    let mock = MockServer::start(2).unwrap();
    mock.with_cluster(|c| c.create_topic("lines", 3)).unwrap();
    let n = 500;
    let input: String = (0..n).map(|i| format!("key{i}:value {i}\n")).collect();
    let bootstrap = mock.bootstrap_servers();
    let out = run_example(
        "produce",
        &[
            "-b",
            &bootstrap,
            "-t",
            "lines",
            "-K:",
            "-H",
            "origin=stdin",
            "-X",
            "linger.ms=20",
            "--driver",
            driver,
            "--report",
        ],
        Some(input.into_bytes()),
    );
    let text = out.text();
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{n} records delivered, 0 failed")),
        "{}",
        out.stderr
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), n, "{text}");
    let logs: Vec<_> = (0..3)
        .map(|p| mock.with_cluster(|c| c.records("lines", p).unwrap()))
        .collect();
    assert_eq!(logs.iter().map(Vec::len).sum::<usize>(), n);
    for (i, line) in lines.iter().enumerate() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 3, "{line}");
        assert_eq!(f[0], "lines");
        let (p, o): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        let r = &logs[p][o];
        assert_eq!(
            r.key.as_deref(),
            Some(format!("key{i}").as_bytes()),
            "{line}"
        );
        assert_eq!(r.value.as_deref(), Some(format!("value {i}").as_bytes()));
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers[0].0, "origin");
        assert_eq!(r.headers[0].1.as_deref(), Some(&b"stdin"[..]));
    }
}

#[test]
fn produce_report_blocking() {
    produce_reports_each_line("blocking");
}

#[cfg(feature = "mio-driver")]
#[test]
fn produce_report_mio() {
    produce_reports_each_line("mio");
}

#[test]
fn produce_fails_with_nonzero_status() {
    let mock = MockServer::start(1).unwrap();
    mock.with_cluster(|c| c.create_topic("one", 1)).unwrap();
    let bootstrap = mock.bootstrap_servers();
    // Partition 7 does not exist: every record fails.
    let out = run_example(
        "produce",
        &["-b", &bootstrap, "-t", "one", "-p", "7"],
        Some(b"a\nb\nc\n".to_vec()),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("0 records delivered, 3 failed"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn produce_bad_arguments_print_usage() {
    let out = run_example("produce", &["-t", "x", "--bogus"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("usage: produce"), "{}", out.stderr);
}

/// Reads every partition of `topic` on `mock` from offset 0 to its log end
/// over the wire, at read_committed or read_uncommitted: the values by partition.
fn read_values(mock: &MockServer, topic: &str, read_committed: bool) -> Vec<Vec<String>> {
    let partitions = mock.with_cluster(|c| c.partition_count(topic)).unwrap();
    (0..partitions)
        .map(|p| {
            let mut r = reader::PartitionReader::connect(&mock.bootstrap_servers(), topic, p)
                .expect("connect the reader");
            let (_, end) = r.offsets().unwrap().expect("ListOffsets");
            r.read_range(0, end, Duration::from_secs(10), read_committed)
                .expect("fetch")
                .iter()
                .map(|f| String::from_utf8_lossy(f.value.as_deref().unwrap_or_default()).into())
                .collect()
        })
        .collect()
}

/// The values of `--report` lines `lines` (offsets into each partition's
/// log at read_uncommitted), by partition, in log order.
fn reported_by_partition(report: &str, values: &[String], partitions: usize) -> Vec<Vec<String>> {
    let mut by: Vec<Vec<(i64, String)>> = vec![Vec::new(); partitions];
    for (line, value) in report.lines().zip(values) {
        let f: Vec<&str> = line.split(' ').collect();
        by[f[1].parse::<usize>().unwrap()].push((f[2].parse().unwrap(), value.clone()));
    }
    by.into_iter()
        .map(|mut v| {
            v.sort();
            v.into_iter().map(|(_, s)| s).collect()
        })
        .collect()
}

/// `produce -X transactional.id=ID` wraps the whole input in one
/// transaction committed at the end: a read_committed fetch of the mock
/// sees every line, where `--report` says, and the log holds one commit
/// marker per partition written.
fn produce_commits_one_transaction(driver: &str) {
    let mock = MockServer::start(3).unwrap();
    mock.with_cluster(|c| c.create_topic("txn-lines", 3))
        .unwrap();
    let n = 300;
    let values: Vec<String> = (0..n).map(|i| format!("line {i}")).collect();
    let input: String = values.iter().map(|v| format!("k{v}:{v}\n")).collect();
    let out = run_example(
        "produce",
        &[
            "-b",
            &mock.bootstrap_servers(),
            "-t",
            "txn-lines",
            "-K:",
            "-X",
            "transactional.id=produce-one",
            "--driver",
            driver,
            "--report",
        ],
        Some(input.into_bytes()),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{n} records delivered, 0 failed"))
            && out.stderr.contains(&format!(
                "1 transactions committed ({n} records), 0 aborted (0 records)"
            )),
        "{}",
        out.stderr
    );
    let want = reported_by_partition(&out.text(), &values, 3);
    assert_eq!(want.iter().map(Vec::len).sum::<usize>(), n);
    assert_eq!(read_values(&mock, "txn-lines", true), want);
    let used = want.iter().filter(|v| !v.is_empty()).count() as u64;
    assert_eq!(mock.with_cluster(|c| c.markers_written()), used);
}

#[test]
fn produce_transaction_blocking() {
    produce_commits_one_transaction("blocking");
}

#[cfg(feature = "mio-driver")]
#[test]
fn produce_transaction_mio() {
    produce_commits_one_transaction("mio");
}

/// `--txn-records 10 --abort` commits every 10 lines and aborts the rest at
/// the end of input: read_committed sees the first 20 of 25 lines,
/// read_uncommitted all 25 where `--report` put them.
#[test]
fn produce_txn_records_and_abort() {
    let mock = MockServer::start(1).unwrap();
    mock.with_cluster(|c| c.create_topic("txn-abort", 2))
        .unwrap();
    let values: Vec<String> = (0..25).map(|i| format!("v{i}")).collect();
    let input: String = values.iter().map(|v| format!("{v}\n")).collect();
    let out = run_example(
        "produce",
        &[
            "-b",
            &mock.bootstrap_servers(),
            "-t",
            "txn-abort",
            "-X",
            "transactional.id=produce-abort",
            "--txn-records",
            "10",
            "--abort",
            "--report",
        ],
        Some(input.into_bytes()),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("2 transactions committed (20 records), 1 aborted (5 records)"),
        "{}",
        out.stderr
    );
    let all = reported_by_partition(&out.text(), &values, 2);
    assert_eq!(read_values(&mock, "txn-abort", false), all);
    let committed = reported_by_partition(&out.text(), &values[..20], 2);
    assert_eq!(read_values(&mock, "txn-abort", true), committed);
    // One marker per partition and transaction: the partitions each used.
    let report = out.text();
    let lines: Vec<&str> = report.lines().collect();
    let markers: usize = lines
        .chunks(10)
        .map(|t| {
            t.iter()
                .map(|l| l.split(' ').nth(1).unwrap())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        })
        .sum();
    assert_eq!(mock.with_cluster(|c| c.markers_written()), markers as u64);

    // --abort alone: the one transaction is aborted, read_committed sees nothing new.
    let out = run_example(
        "produce",
        &[
            "-b",
            &mock.bootstrap_servers(),
            "-t",
            "txn-abort",
            "-X",
            "transactional.id=produce-abort",
            "--abort",
        ],
        Some(b"x1\nx2\nx3\n".to_vec()),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("0 transactions committed (0 records), 1 aborted (3 records)"),
        "{}",
        out.stderr
    );
    assert_eq!(read_values(&mock, "txn-abort", true), committed);
    let uncommitted: usize = read_values(&mock, "txn-abort", false)
        .iter()
        .map(Vec::len)
        .sum();
    assert_eq!(uncommitted, 28);
}

#[test]
fn produce_abort_needs_a_transactional_id() {
    let out = run_example(
        "produce",
        &["-b", "127.0.0.1:1", "-t", "x", "--abort"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("transactional.id"), "{}", out.stderr);
}

/// `transactions` with no broker runs against its own mock: with every
/// third attempt failing (3, 6 and 9 of 11, 40 records each) and retried, the output still holds each input
/// record once at read_committed, and the group's offsets cover the input.
#[test]
fn transactions_runs_against_the_built_in_mock() {
    let out = run_example(
        "transactions",
        &["--fail-every", "3", "--batch", "40"],
        None,
    );
    let text = out.text();
    assert!(out.status.success(), "{text}\n{}", out.stderr);
    assert!(
        text.contains(
            "300 input records processed exactly once: 8 transactions committed, 3 aborted"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "mock: output read_committed 300 records (300 distinct), read_uncommitted 420"
        ),
        "{text}"
    );
    let committed: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("mock: group transactions-example committed "))
        .unwrap_or_else(|| panic!("no committed offsets in {text}"))
        .split(' ')
        .map(|kv| kv.split('=').nth(1).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(committed, 300, "{text}");
}

/// `transactions -b` against a mock started here, with input written here:
/// a read_committed fetch of the output gives every input value upper-cased
/// exactly once, the aborted attempts are in the log but not visible, and
/// the group's committed offset of each input partition is its log end.
fn transactions_consume_transform_produce(driver: &str) {
    let mock = MockServer::start(3).unwrap();
    mock.with_cluster(|c| {
        c.create_topic("in", 3)?;
        c.create_topic("out", 2)
    })
    .unwrap();
    let mut config = kafka_sansio::producer::ProducerConfig::new();
    config
        .set("bootstrap.servers", &mock.bootstrap_servers())
        .unwrap();
    let seed = kafka_sansio::driver::blocking::Producer::new(config).unwrap();
    let inputs: Vec<String> = (0..250).map(|i| format!("item {i}")).collect();
    for (i, v) in inputs.iter().enumerate() {
        let mut r = kafka_sansio::producer::ProducerRecord::new("in", v.clone());
        r.partition = Some(i as i32 % 3);
        seed.send_and_forget(r).unwrap();
    }
    seed.flush().unwrap();
    seed.close(Duration::from_secs(10)).unwrap();
    let out = run_example(
        "transactions",
        &[
            "-b",
            &mock.bootstrap_servers(),
            "--input",
            "in",
            "--output",
            "out",
            "--group",
            "g1",
            "--transactional-id",
            "ctp-1",
            "--batch",
            "30",
            "--fail-every",
            "4",
            "--driver",
            driver,
        ],
        None,
    );
    let text = out.text();
    assert!(out.status.success(), "{text}\n{}", out.stderr);
    assert!(
        text.contains("consumed 250 input records from in"),
        "{text}"
    );
    let mut committed: Vec<String> = read_values(&mock, "out", true).concat();
    committed.sort();
    let mut want: Vec<String> = inputs.iter().map(|v| v.to_ascii_uppercase()).collect();
    want.sort();
    assert_eq!(committed, want, "{text}");
    let uncommitted: usize = read_values(&mock, "out", false).iter().map(Vec::len).sum();
    // Attempts 4 and 8 (30 records each) were aborted, in the log all the same.
    assert_eq!(uncommitted, 310, "{text}");
    for p in 0..3 {
        let end = mock.with_cluster(|c| c.log_end_offset("in", p)).unwrap();
        assert_eq!(
            mock.with_cluster(|c| c.committed_offset("g1", "in", p)),
            Some(end),
            "input partition {p}\n{text}"
        );
    }
}

#[test]
fn transactions_blocking() {
    transactions_consume_transform_produce("blocking");
}

#[cfg(feature = "mio-driver")]
#[test]
fn transactions_mio() {
    transactions_consume_transform_produce("mio");
}

#[test]
fn custom_driver_delivers_over_the_core() {
    let out = run_example("custom_driver", &["-n", "25"], None);
    let text = out.text();
    assert!(out.status.success(), "{text}\n{}", out.stderr);
    let delivered: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" delivered: "))
        .collect();
    assert_eq!(delivered.len(), 25, "{text}");
    assert!(text.contains("closed: 25 delivered, 0 failed"), "{text}");
}

#[cfg(feature = "mio-driver")]
#[test]
fn mio_embed_runs_in_the_programs_loop() {
    let out = run_example("mio_embed", &["-n", "100"], None);
    let text = out.text();
    assert!(out.status.success(), "{text}\n{}", out.stderr);
    assert!(text.contains("status port said: delivered 100"), "{text}");
    assert!(text.contains("100 of 100 records delivered"), "{text}");
}

/// `quickstart -X prop=value` reaches the producer: a max.request.size below
/// any record makes its first synchronous send fail with that limit named;
/// an unknown key is refused before anything is sent.
#[test]
fn quickstart_takes_x_properties() {
    let out = run_example("quickstart", &["-X", "linger.ms=1", "-X", "acks=1"], None);
    assert!(out.status.success(), "{}\n{}", out.text(), out.stderr);
    assert!(out.text().contains("tagged 1000 of 1000 records delivered"));
    let out = run_example("quickstart", &["-X", "max.request.size=40"], None);
    assert!(!out.status.success(), "{}", out.text());
    assert!(
        !out.text().lines().any(|l| l.starts_with("sync ")),
        "{}",
        out.text()
    );
    assert!(out.stderr.contains("max.request.size"), "{}", out.stderr);
    let out = run_example("quickstart", &["-X", "no.such.key=1"], None);
    assert!(!out.status.success());
    assert!(out.stderr.contains("no.such.key"), "{}", out.stderr);
}

/// `producer_perf -X prop=value` after `--producer-props` reaches the
/// producer: batch.size=1000 caps batches of 100-byte records at 9 or so.
#[test]
fn producer_perf_takes_x_properties() {
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--topic",
            "perf-x",
            "--num-records",
            "3000",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--producer-props",
            "acks=1",
            "linger.ms=5",
        ];
        args.extend_from_slice(extra);
        let out = run_example("producer_perf", &args, None);
        assert!(out.status.success(), "{}\n{}", out.text(), out.stderr);
        assert!(out.text().contains("3000 records sent"), "{}", out.text());
        // "... N batches (R records and B bytes per batch) ..."
        out.stderr
            .split(" batches (")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|r| r.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no batch line in {}", out.stderr))
    };
    let default = run(&[]);
    let small = run(&["-X", "batch.size=1000", "-X", "client.id=perf-x"]);
    assert!(
        small <= 10.0 && default > small,
        "records per batch: {default} by default, {small} with -X batch.size=1000"
    );
}

/// `wire_floor` appends every record to the partition, in full batches at
/// an unlimited rate and paced in the open loop (both schedules), and
/// answers for each.
#[test]
fn wire_floor_sends_every_record() {
    let mock = MockServer::start(1).unwrap();
    let bootstrap = format!("bootstrap.servers={}", mock.bootstrap_servers());
    for (topic, n, rate, pacing) in [
        ("floor-full", "3000", "-1", "per-record"),
        ("floor-paced", "600", "2000", "per-record"),
        ("floor-java", "600", "2000", "java"),
    ] {
        mock.with_cluster(|c| c.create_topic(topic, 1)).unwrap();
        let args = [
            "--topic",
            topic,
            "--num-records",
            n,
            "--record-size",
            "100",
            "--throughput",
            rate,
            "--pacing",
            pacing,
            "--producer-props",
            &bootstrap,
            "acks=1",
            "batch.size=4096",
            "max.in.flight.requests.per.connection=2",
        ];
        let out = run_example("wire_floor", &args, None);
        assert!(out.status.success(), "{}\n{}", out.text(), out.stderr);
        assert!(
            out.text().contains(&format!("{n} records sent")),
            "{}",
            out.text()
        );
        let stored = mock.with_cluster(|c| c.log_end_offset(topic, 0));
        assert_eq!(stored, Some(n.parse().unwrap()), "{topic}: {}", out.text());
    }
}
