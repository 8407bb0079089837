//! Apache Kafka 4.4 as a test peer: the cluster the interop binaries share
//! (`KAFKA_SANSIO_KAFKA`, `KAFKA_SANSIO_KAFKA_CTL`), driven through
//! tests/interop/kafka/kafka-cluster.sh.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kafka_sansio::producer::ProducerConfig;

use super::support::{config, parse_consumed, require, Consumed};

pub const KAFKA: &str = "KAFKA_SANSIO_KAFKA";
pub const KAFKA_CTL: &str = "KAFKA_SANSIO_KAFKA_CTL";

/// The cluster as the tests see it.
pub struct Kafka {
    /// The bootstrap list.
    pub bootstrap: String,
    /// The script's path.
    pub ctl: String,
}

impl Kafka {
    /// The cluster, or `None` (skipped) when the variables are unset.
    pub fn get(test: &str) -> Option<Kafka> {
        let v = require(test, &[KAFKA, KAFKA_CTL])?;
        Some(Kafka {
            bootstrap: v[0].clone(),
            ctl: v[1].clone(),
        })
    }

    /// Runs the script with `args`; panics unless it succeeds. Returns stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        self.ctl_input(args, None)
    }

    /// [`Kafka::ctl`] with `input` on the script's stdin.
    pub fn ctl_input(&self, args: &[&str], input: Option<&str>) -> String {
        let mut cmd = Command::new(&self.ctl);
        cmd.args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kafka-cluster.sh");
        if let Some(i) = input {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(i.as_bytes())
                .expect("write to kafka-cluster.sh");
        }
        let out = child.wait_with_output().expect("kafka-cluster.sh output");
        assert!(
            out.status.success(),
            "kafka-cluster.sh {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Creates `topic` with replication factor 3 and `configs` (`key=value`).
    pub fn create_topic(&self, topic: &str, partitions: i32, configs: &[&str]) {
        let p = partitions.to_string();
        let mut args = vec!["create-topic", topic, &p, "3"];
        args.extend_from_slice(configs);
        self.ctl(&args);
    }

    /// Every record of `topic`, read by Kafka's console consumer (Java
    /// KafkaConsumer, a fresh group, from the beginning) until 8 s pass without one.
    pub fn consume(&self, topic: &str) -> Vec<Consumed> {
        parse_consumed(&self.ctl(&["consume-json", topic, "--timeout-ms", "8000"]))
    }

    /// Every record of `topic` that Kafka's console consumer returns at
    /// `isolation` (`read_committed` or `read_uncommitted`), read as [`Kafka::consume`].
    pub fn consume_isolated(&self, topic: &str, isolation: &str) -> Vec<Consumed> {
        parse_consumed(&self.ctl(&[
            "consume-json",
            topic,
            "--timeout-ms",
            "8000",
            "--isolation-level",
            isolation,
        ]))
    }

    /// The brokers' state directory (target/interop/kafka of the script's tree).
    pub fn state_dir(&self) -> PathBuf {
        Path::new(&self.ctl)
            .parent()
            .unwrap()
            .join("../../../target/interop/kafka")
    }

    /// The lines of every node's request log `file` (see
    /// tests/interop/kafka/log4j2.xml) that `client_id` sent.
    pub fn logged_requests(&self, file: &str, client_id: &str) -> Vec<String> {
        let dir = self.state_dir();
        let needle = format!("\"clientId\":\"{client_id}\"");
        let mut v = Vec::new();
        for n in 1..=3 {
            let log =
                std::fs::read_to_string(dir.join(format!("node{n}/{file}"))).unwrap_or_default();
            v.extend(
                log.lines()
                    .filter(|l| l.contains(&needle))
                    .map(str::to_string),
            );
        }
        v
    }

    /// The coordinator (node id) of `transactional_id`, from TransactionsCommand describe.
    pub fn txn_coordinator(&self, transactional_id: &str) -> i32 {
        let out = self.ctl(&["describe-txn", transactional_id]);
        out.lines()
            .nth(1)
            .and_then(|l| l.split('\t').next())
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or_else(|| panic!("describe-txn {transactional_id}: {out}"))
    }

    /// The leader of each partition of `topic`, from TopicCommand --describe.
    pub fn leaders(&self, topic: &str) -> Vec<(i32, i32)> {
        self.ctl(&["describe-topic", topic])
            .lines()
            .filter_map(|l| {
                let field = |name: &str| {
                    l.split('\t')
                        .find_map(|f| f.trim().strip_prefix(name))
                        .and_then(|v| v.trim().parse::<i32>().ok())
                };
                Some((field("Partition:")?, field("Leader:")?))
            })
            .collect()
    }

    /// The in-sync replicas of partition 0 of `topic`.
    pub fn isr0(&self, topic: &str) -> Vec<i32> {
        self.ctl(&["describe-topic", topic])
            .lines()
            .find(|l| l.contains("Partition: 0"))
            .and_then(|l| {
                l.split('\t')
                    .find_map(|f| f.trim().strip_prefix("Isr:"))
                    .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            })
            .unwrap_or_default()
    }

    /// Waits until the in-sync replicas of partition 0 of `topic` number `n`.
    pub fn wait_isr(&self, topic: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let isr = self.isr0(topic);
            if isr.len() == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{topic}: ISR {isr:?} after 60 s, want {n} replicas"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// A producer configuration for the cluster: [`config`] with short retry and
/// reconnect backoffs, then `props`.
pub fn kafka_config(k: &Kafka, props: &[(&str, &str)]) -> ProducerConfig {
    let mut all = vec![
        ("retry.backoff.ms", "50"),
        ("retry.backoff.max.ms", "500"),
        ("reconnect.backoff.ms", "50"),
        ("reconnect.backoff.max.ms", "500"),
    ];
    all.extend_from_slice(props);
    config(&k.bootstrap, &all)
}

/// Nodes SIGKILLed by a test, started again when it ends (also on panic), so
/// the next test finds three nodes.
pub struct Killed<'a> {
    kafka: &'a Kafka,
    /// The nodes down now.
    pub nodes: Vec<i32>,
}

impl<'a> Killed<'a> {
    pub fn new(kafka: &'a Kafka) -> Self {
        Killed {
            kafka,
            nodes: Vec::new(),
        }
    }

    pub fn kill(&mut self, node: i32) {
        self.kafka.ctl(&["kill", &node.to_string()]);
        self.nodes.push(node);
    }

    pub fn restart_all(&mut self) {
        for n in std::mem::take(&mut self.nodes) {
            self.kafka.ctl(&["start-node", &n.to_string()]);
        }
    }
}

impl Drop for Killed<'_> {
    fn drop(&mut self) {
        for n in std::mem::take(&mut self.nodes) {
            let _ = Command::new(&self.kafka.ctl)
                .args(["start-node", &n.to_string()])
                .stdin(Stdio::null())
                .status();
        }
    }
}

/// The values of every `"field":` in a request-log line (its JSON read as
/// text: strings unquoted, numbers as written).
pub fn logged_values(line: &str, field: &str) -> Vec<String> {
    line.split(&format!("\"{field}\":"))
        .skip(1)
        .map(|r| {
            r.split([',', '}'])
                .next()
                .unwrap()
                .trim_matches('"')
                .to_string()
        })
        .collect()
}
