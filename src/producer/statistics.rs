//! librdkafka-style statistics (its STATISTICS.md): the counters kept per
//! broker connection peer, and, with the `json` feature, the JSON object
//! built from them and the core's state at `now`.
//!
//! Only fields this producer can fill truthfully are emitted, with
//! librdkafka's names and meanings; the drivers emit the JSON every
//! `statistics.interval.ms`.

use std::collections::BTreeMap;
use std::time::Duration;

/// Round-trip times of the answers since the last statistics (librdkafka's
/// window stats are started over at each emission), in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Rtt {
    pub min: u64,
    pub max: u64,
    pub sum: u64,
    pub cnt: u64,
}

impl Rtt {
    fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.min = if self.cnt == 0 { us } else { self.min.min(us) };
        self.max = self.max.max(us);
        self.sum = self.sum.saturating_add(us);
        self.cnt += 1;
    }
}

/// What was sent to and received from one broker (or bootstrap address),
/// over every connection to it.
#[derive(Debug, Clone, Default)]
pub(super) struct PeerCounters {
    /// Requests sent.
    pub tx: u64,
    /// Request bytes handed to the driver.
    pub txbytes: u64,
    /// Responses received.
    pub rx: u64,
    /// Bytes received.
    pub rxbytes: u64,
    /// Connection attempts, failed ones included.
    pub connects: u64,
    /// Connections lost, reset or closed.
    pub disconnects: u64,
    pub rtt: Rtt,
}

/// Counters per broker node, and per bootstrap address for the connections
/// opened before a node was known.
#[derive(Debug, Default)]
pub(super) struct Peers {
    nodes: BTreeMap<i32, PeerCounters>,
    bootstrap: Vec<((String, u16), PeerCounters)>,
}

impl Peers {
    /// The counters of the peer of a connection to `node` (or, with none,
    /// to the bootstrap address `addr`).
    pub fn of(&mut self, node: Option<i32>, addr: &(String, u16)) -> &mut PeerCounters {
        match node {
            Some(n) => self.nodes.entry(n).or_default(),
            None => {
                let i = match self.bootstrap.iter().position(|(a, _)| a == addr) {
                    Some(i) => i,
                    None => {
                        self.bootstrap.push((addr.clone(), PeerCounters::default()));
                        self.bootstrap.len() - 1
                    }
                };
                &mut self.bootstrap[i].1
            }
        }
    }

    /// An answer came `rtt` after its request.
    pub fn answered(&mut self, node: Option<i32>, addr: &(String, u16), rtt: Duration) {
        let p = self.of(node, addr);
        p.rx += 1;
        p.rtt.record(rtt);
    }

    /// Every peer's counters: nodes, then bootstrap addresses.
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    fn all(&self) -> impl Iterator<Item = &PeerCounters> {
        self.nodes
            .values()
            .chain(self.bootstrap.iter().map(|(_, p)| p))
    }
}

#[cfg(feature = "json")]
mod json {
    use std::time::Instant;

    use serde_json::{json, Map, Value};

    use super::super::connection::ConnState;
    use super::super::memory::RECORD_OVERHEAD;
    use super::super::Producer;
    use super::{PeerCounters, Rtt};

    fn rtt(r: &Rtt) -> Value {
        json!({
            "min": r.min,
            "max": r.max,
            "avg": r.sum.checked_div(r.cnt).unwrap_or(0),
            "sum": r.sum,
            "cnt": r.cnt,
        })
    }

    impl Producer {
        /// The statistics JSON at `now`; the rtt window starts over.
        pub(in crate::producer) fn build_statistics(&mut self, now: Instant) -> String {
            let started = self.sensors.started.unwrap_or(now);
            let age_us = now.saturating_duration_since(started).as_micros() as u64;
            let peers = &self.sensors.peers;
            let sum = |f: fn(&PeerCounters) -> u64| peers.all().map(f).sum::<u64>();
            let mut top = Map::new();
            top.insert(
                "name".into(),
                format!("{}#producer", self.config.client_id).into(),
            );
            top.insert("client_id".into(), self.config.client_id.clone().into());
            top.insert("type".into(), "producer".into());
            // No clock of its own: microseconds on the core's clock since
            // the producer was made.
            top.insert("ts".into(), age_us.into());
            top.insert("time".into(), (self.wall_clock_ms(now) / 1000).into());
            top.insert("age".into(), age_us.into());
            top.insert("replyq".into(), self.events.len().into());
            top.insert("msg_cnt".into(), self.pending_records.into());
            top.insert("msg_size".into(), self.memory.buffered.into());
            // No record-count limit: buffer.memory bounds the records, each
            // holding at least RECORD_OVERHEAD of it.
            top.insert(
                "msg_max".into(),
                (self.config.buffer_memory / RECORD_OVERHEAD).into(),
            );
            top.insert("msg_size_max".into(), self.config.buffer_memory.into());
            top.insert("tx".into(), sum(|p| p.tx).into());
            top.insert("tx_bytes".into(), sum(|p| p.txbytes).into());
            top.insert("rx".into(), sum(|p| p.rx).into());
            top.insert("rx_bytes".into(), sum(|p| p.rxbytes).into());
            top.insert("txmsgs".into(), self.sensors.record_send_total.into());
            top.insert("txmsg_bytes".into(), self.metrics.bytes_sent.into());
            let cached = self
                .topics
                .values()
                .filter(|t| !t.parts.is_empty() && !t.forgotten)
                .count();
            top.insert("metadata_cache_cnt".into(), cached.into());
            top.insert("brokers".into(), Value::Object(self.brokers_json()));
            top.insert("topics".into(), Value::Object(self.topics_json(now)));
            self.sensors.peers.reset_windows();
            Value::Object(top).to_string()
        }

        /// `brokers`: the bootstrap addresses, then the brokers metadata named.
        fn brokers_json(&self) -> Map<String, Value> {
            let mut out = Map::new();
            let none = PeerCounters::default();
            let peers = &self.sensors.peers;
            let entries = self
                .cluster
                .bootstrap
                .iter()
                .map(|a| (None, a))
                .chain(self.cluster.brokers.iter().map(|(n, a)| (Some(*n), a)));
            for (node, addr) in entries {
                let counters = match node {
                    Some(n) => peers.nodes.get(&n),
                    None => peers
                        .bootstrap
                        .iter()
                        .find(|(a, _)| a == addr)
                        .map(|e| &e.1),
                }
                .unwrap_or(&none);
                let conns: Vec<_> = self
                    .net
                    .conns
                    .values()
                    .filter(|c| c.node == node && (node.is_some() || c.addr == *addr))
                    .collect();
                let state = if conns.iter().any(|c| c.state == ConnState::Ready) {
                    "UP"
                } else if conns.iter().any(|c| c.state == ConnState::Handshake) {
                    "APIVERSION_QUERY"
                } else if !conns.is_empty() {
                    "CONNECT"
                } else if counters.connects > 0 {
                    "DOWN"
                } else {
                    "INIT"
                };
                // Requests not fully written yet, and written ones awaiting
                // their answer (acks=0 requests get none: written, they are done).
                let mut outbuf = 0usize;
                let mut waitresp = 0usize;
                for c in &conns {
                    for f in &c.in_flight {
                        if f.end > c.written_bytes {
                            outbuf += 1;
                        } else {
                            waitresp += 1;
                        }
                    }
                    outbuf += c.unwritten.len();
                }
                let nodename = format!("{}:{}", addr.0, addr.1);
                let (name, nodeid, source) = match node {
                    Some(n) => (format!("{nodename}/{n}"), n, "learned"),
                    None => (format!("{nodename}/bootstrap"), -1, "configured"),
                };
                let mut toppars = Map::new();
                if let Some(n) = node {
                    for p in self.parts.iter().filter(|p| p.leader == Some(n)) {
                        toppars.insert(
                            format!("{}-{}", p.topic, p.partition),
                            json!({ "topic": &*p.topic, "partition": p.partition }),
                        );
                    }
                }
                out.insert(
                    name.clone(),
                    json!({
                        "name": name,
                        "nodeid": nodeid,
                        "nodename": nodename,
                        "source": source,
                        "state": state,
                        "outbuf_cnt": outbuf,
                        "waitresp_cnt": waitresp,
                        "tx": counters.tx,
                        "txbytes": counters.txbytes,
                        "rx": counters.rx,
                        "rxbytes": counters.rxbytes,
                        "connects": counters.connects,
                        "disconnects": counters.disconnects,
                        "rtt": rtt(&counters.rtt),
                        "toppars": toppars,
                    }),
                );
            }
            out
        }

        /// `topics`, each with its partitions and librdkafka's `-1`
        /// (records not assigned a partition yet: waiting for metadata).
        fn topics_json(&self, now: Instant) -> Map<String, Value> {
            let mut in_flight = vec![0u64; self.parts.len()];
            for b in self.in_flight_batches_iter() {
                if let Some(n) = in_flight.get_mut(b.part) {
                    *n += b.count() as u64;
                }
            }
            let age_ms = self
                .cluster
                .metadata_last
                .map_or(0, |t| now.saturating_duration_since(t).as_millis() as u64);
            let mut out = Map::new();
            for (i, t) in self.topics.values().enumerate() {
                let name = &self.topics.names()[i];
                let mut partitions = Map::new();
                for (n, &idx) in t.parts.iter().enumerate() {
                    let p = &self.parts[idx];
                    let bytes = p.open.as_ref().map_or(0, |o| o.builder.len())
                        + p.queue.iter().map(|b| b.closed.len()).sum::<usize>();
                    partitions.insert(
                        n.to_string(),
                        json!({
                            "partition": p.partition,
                            "leader": p.leader.unwrap_or(-1),
                            "msgq_cnt": p.queued_records,
                            "msgq_bytes": bytes,
                            "msgs_inflight": in_flight[idx],
                            "txmsgs": p.tx_msgs,
                            "txbytes": p.tx_bytes,
                        }),
                    );
                }
                partitions.insert(
                    "-1".into(),
                    json!({
                        "partition": -1,
                        "leader": -1,
                        "msgq_cnt": t.pending.len(),
                        "msgq_bytes": t.pending_held,
                        "msgs_inflight": 0,
                        "txmsgs": 0,
                        "txbytes": 0,
                    }),
                );
                out.insert(
                    name.to_string(),
                    json!({
                        "topic": &**name,
                        "metadata_age": age_ms,
                        "partitions": partitions,
                    }),
                );
            }
            out
        }
    }
}

impl Peers {
    /// Starts the window statistics (rtt) over, as each emission does.
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    fn reset_windows(&mut self) {
        for p in self.nodes.values_mut() {
            p.rtt = Rtt::default();
        }
        for (_, p) in &mut self.bootstrap {
            p.rtt = Rtt::default();
        }
    }
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use crate::mock::{MockCluster, Pair};
    use crate::producer::{Producer, ProducerConfig, ProducerRecord};

    /// The statistics now; adds each broker's rtt count to `windows`.
    fn stats(p: &mut Pair, windows: &mut BTreeMap<String, u64>) -> Value {
        let now = p.now;
        let v: Value = serde_json::from_str(&p.producer.statistics_json(now)).unwrap();
        for (name, b) in v["brokers"].as_object().unwrap() {
            *windows.entry(name.clone()).or_default() += b["rtt"]["cnt"].as_u64().unwrap();
        }
        v
    }

    #[test]
    fn queues_transmissions_and_round_trips_as_librdkafka_counts_them() {
        let config = ProducerConfig::from_properties([
            ("bootstrap.servers", "localhost:9092"),
            ("linger.ms", "10000"),
        ])
        .unwrap();
        let start = Instant::now();
        let producer = Producer::new(config, start, 1_700_000_000_000).unwrap();
        let mut cluster = MockCluster::new(2);
        cluster.create_topic("s", 2).unwrap();
        let mut p = Pair::new(producer, cluster, start);
        let mut windows = BTreeMap::new();
        p.set_latency(Duration::from_millis(50));
        for i in 0..5 {
            let r = ProducerRecord::new("s", "v").partition(i % 2 + (i / 4));
            p.core(|c, now| c.send(r, now)).unwrap();
        }
        // Before metadata: every record on librdkafka's unassigned partition.
        let v = stats(&mut p, &mut windows);
        assert_eq!(v["msg_cnt"], 5);
        assert_eq!(v["metadata_cache_cnt"], 0);
        assert_eq!(v["topics"]["s"]["partitions"]["-1"]["msgq_cnt"], 5);
        assert_eq!(v["brokers"]["localhost:9092/bootstrap"]["state"], "INIT");
        // Placed: records 0 and 2 in partition 0, 1, 3 and 4 in partition 1.
        assert!(p.run_until(|p| p.producer.queue_depth("s", 0).is_some_and(|d| d.0 > 0)));
        let v = stats(&mut p, &mut windows);
        let parts = &v["topics"]["s"]["partitions"];
        assert_eq!(parts["-1"]["msgq_cnt"], 0);
        assert_eq!(parts["0"]["msgq_cnt"], 2, "{parts}");
        assert_eq!(parts["1"]["msgq_cnt"], 3, "{parts}");
        assert!(parts["1"]["msgq_bytes"].as_u64().unwrap() > 0);
        assert_eq!(v["msg_cnt"], 5);
        assert_eq!(v["txmsgs"], 0);
        assert_eq!(v["metadata_cache_cnt"], 1);
        let flush = p.core(|c, now| c.flush(now));
        assert!(p.run_until(|p| p.producer.is_flushed(flush) && p.producer.is_idle()));
        let v = stats(&mut p, &mut windows);
        let parts = &v["topics"]["s"]["partitions"];
        assert_eq!(
            (parts["0"]["txmsgs"].as_u64(), parts["1"]["txmsgs"].as_u64()),
            (Some(2), Some(3))
        );
        assert_eq!(parts["0"]["msgq_cnt"], 0);
        assert_eq!(v["msg_cnt"], 0);
        assert_eq!(v["txmsgs"], 5);
        let brokers = v["brokers"].as_object().unwrap();
        let mut rx = 0;
        for (name, b) in brokers {
            assert_eq!(b["tx"], b["rx"], "{b}");
            rx += b["rx"].as_u64().unwrap();
            // Each answer in exactly one emission's window.
            assert_eq!(windows[name], b["rx"].as_u64().unwrap(), "{name}");
            let rtt = &b["rtt"];
            if rtt["cnt"].as_u64() > Some(0) {
                // Every answer took the pair's 50 ms, to the microsecond.
                assert_eq!(
                    (rtt["min"].as_u64(), rtt["max"].as_u64()),
                    (Some(50_000), Some(50_000))
                );
                assert_eq!(rtt["avg"], 50_000);
            }
        }
        assert_eq!(v["rx"].as_u64(), Some(rx));
        assert!(
            rx >= 5,
            "ApiVersions, Metadata, InitProducerId, Produce: {rx}"
        );
        assert_eq!(v["ts"].as_u64(), Some((p.now - start).as_micros() as u64));
        // The rtt window starts over; the counters do not.
        let again = stats(&mut p, &mut windows);
        for b in again["brokers"].as_object().unwrap().values() {
            assert_eq!(b["rtt"]["cnt"], 0);
        }
        assert_eq!(again["rx"].as_u64(), Some(rx));
    }
}
