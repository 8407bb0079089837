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
