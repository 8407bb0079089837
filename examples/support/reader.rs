//! A minimal one-partition reader over `std::net`, written with the crate's
//! protocol codec: ApiVersions, Metadata (to find the partition's leader),
//! ListOffsets and a Fetch loop, at either isolation level (read_committed
//! skips aborted transactions as Kafka's consumer does, from the aborted
//! ranges of each Fetch answer). No consumer group, no commits, no retries
//! beyond waiting for records to appear: enough to read back what an example
//! wrote, from the mock or a real broker.
//!
//! Examples and tests include it with `#[path = ".../support/reader.rs"] mod reader;`.

#![allow(dead_code)] // each includer uses a part of it

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_sansio::protocol::control::{ControlType, EndTxnMarker};
use kafka_sansio::protocol::frame::{decode_response_lenient, encode_request};
use kafka_sansio::protocol::messages::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_sansio::protocol::messages::fetch::{
    FetchPartition, FetchRequest, FetchTopic, READ_COMMITTED, READ_UNCOMMITTED,
};
use kafka_sansio::protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic, EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
};
use kafka_sansio::protocol::messages::metadata::{
    MetadataRequest, MetadataRequestTopic, MetadataResponse,
};
use kafka_sansio::protocol::{
    ApiKey, ErrorCode, Header, NegotiatedVersions, ProtocolError, RecordBatch, Request,
};

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp (create time, or the broker's append time).
    pub timestamp: i64,
    /// Key, `None` when null.
    pub key: Option<Bytes>,
    /// Value, `None` when null.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connection to the leader of one topic partition.
pub struct PartitionReader {
    stream: TcpStream,
    versions: NegotiatedVersions,
    correlation_id: i32,
    topic: String,
    partition: i32,
}

/// The error a code stands for; `None` for 0 (no error).
fn error(code: i16) -> Option<ErrorCode> {
    (code != 0).then(|| ErrorCode::from_code(code))
}

const CLIENT_ID: &str = "kafka-sansio-reader";
const MAX_FRAME: usize = 64 << 20;

impl PartitionReader {
    /// Connects to the first of `bootstrap` (`host:port[,host:port...]`),
    /// finds the leader of `topic`/`partition` and connects to it.
    pub fn connect(bootstrap: &str, topic: &str, partition: i32) -> Result<Self, BoxError> {
        let first = bootstrap.split(',').next().unwrap_or_default().trim();
        let mut conn = Self::open(first, topic, partition)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leader = conn.leader()?;
            match leader {
                Some(addr) if addr == first => return Ok(conn),
                Some(addr) => return Self::open(&addr, topic, partition),
                // No leader yet (a topic being created): ask again.
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                None => return Err(format!("{topic}-{partition} has no leader").into()),
            }
        }
    }

    fn open(addr: &str, topic: &str, partition: i32) -> Result<Self, BoxError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut conn = PartitionReader {
            stream,
            versions: NegotiatedVersions::default(),
            correlation_id: 0,
            topic: topic.to_owned(),
            partition,
        };
        // v0 needs no fallback: every broker answers it.
        let r: ApiVersionsResponse = conn.call(0, &ApiVersionsRequest::default())?;
        if r.error_code != 0 {
            return Err(format!("ApiVersions: {}", ErrorCode::from_code(r.error_code)).into());
        }
        conn.versions = NegotiatedVersions::from_response(&r);
        for key in [ApiKey::Metadata, ApiKey::Fetch] {
            if conn.versions.get(key).is_none() {
                return Err(format!("{addr} speaks no {key:?} version this reader knows").into());
            }
        }
        Ok(conn)
    }

    /// `host:port` of the partition's leader, `None` while it has none.
    fn leader(&mut self) -> Result<Option<String>, BoxError> {
        let r = self.metadata()?;
        let Some(t) = r
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(&self.topic))
        else {
            return Ok(None);
        };
        match error(t.error_code) {
            None => {}
            Some(ErrorCode::LeaderNotAvailable) => return Ok(None),
            Some(e) => return Err(format!("topic {}: {e}", self.topic).into()),
        }
        let Some(p) = t
            .partitions
            .iter()
            .find(|p| p.partition_index == self.partition)
        else {
            return Err(format!("{} has no partition {}", self.topic, self.partition).into());
        };
        Ok(r.brokers
            .iter()
            .find(|b| b.node_id == p.leader_id)
            .map(|b| format!("{}:{}", b.host, b.port)))
    }

    /// Metadata of the reader's topic.
    fn metadata(&mut self) -> Result<MetadataResponse, BoxError> {
        let version = self.versions.get(ApiKey::Metadata).expect("checked");
        let req = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(self.topic.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        self.call(version, &req)
    }

    /// The connection to the partition's leader and the versions it speaks,
    /// for a caller that writes its own requests on it.
    pub fn into_parts(self) -> (TcpStream, NegotiatedVersions) {
        (self.stream, self.versions)
    }

    /// How many partitions the reader's topic has (0 when it is unknown).
    pub fn partition_count(&mut self) -> Result<i32, BoxError> {
        let r = self.metadata()?;
        Ok(r.topics
            .iter()
            .find(|t| t.name.as_deref() == Some(&self.topic) && t.error_code == 0)
            .map_or(0, |t| t.partitions.len() as i32))
    }

    /// The partition's earliest and latest offsets (its log start and end),
    /// by ListOffsets; `None` when the broker has no ListOffsets version we know.
    pub fn offsets(&mut self) -> Result<Option<(i64, i64)>, BoxError> {
        let Some(version) = self.versions.get(ApiKey::ListOffsets) else {
            return Ok(None);
        };
        let ask = |timestamp| ListOffsetsPartition {
            partition_index: self.partition,
            timestamp,
            ..Default::default()
        };
        let req = ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                name: self.topic.clone(),
                partitions: vec![ask(EARLIEST_TIMESTAMP), ask(LATEST_TIMESTAMP)],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = self.call(version, &req)?;
        let parts = r
            .topics
            .first()
            .map(|t| &t.partitions[..])
            .unwrap_or_default();
        let [earliest, latest] = parts else {
            return Err("ListOffsets: not one answer per question".into());
        };
        for p in parts {
            if let Some(e) = error(p.error_code) {
                return Err(format!("ListOffsets: {e}").into());
            }
        }
        Ok(Some((earliest.offset, latest.offset)))
    }

    /// Reads records from `offset` on until `count` have arrived or `timeout`
    /// passes (then returns what it has). Each Fetch waits up to 100 ms on
    /// the broker for new data.
    pub fn read(
        &mut self,
        offset: i64,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<FetchedRecord>, BoxError> {
        self.read_isolated(offset, count, timeout, false)
    }

    /// [`read`](Self::read) at `read_committed` (only records of committed
    /// transactions and non-transactional ones, up to the last stable
    /// offset) or, with `read_committed` false, at `read_uncommitted`.
    pub fn read_isolated(
        &mut self,
        offset: i64,
        count: usize,
        timeout: Duration,
        read_committed: bool,
    ) -> Result<Vec<FetchedRecord>, BoxError> {
        self.fetch_records(offset, count, i64::MAX, timeout, read_committed)
    }

    /// Reads the records from `offset` up to offset `end` (exclusive; the
    /// log end from [`offsets`](Self::offsets), say), at either isolation
    /// level, or what has arrived when `timeout` passes.
    pub fn read_range(
        &mut self,
        offset: i64,
        end: i64,
        timeout: Duration,
        read_committed: bool,
    ) -> Result<Vec<FetchedRecord>, BoxError> {
        self.fetch_records(offset, usize::MAX, end, timeout, read_committed)
    }

    /// The Fetch loop: from `offset` until `count` records have arrived,
    /// the next offset reaches `end`, or `timeout` passes.
    fn fetch_records(
        &mut self,
        offset: i64,
        count: usize,
        end: i64,
        timeout: Duration,
        read_committed: bool,
    ) -> Result<Vec<FetchedRecord>, BoxError> {
        let version = self.versions.get(ApiKey::Fetch).expect("checked");
        if read_committed && version < 4 {
            return Err("read_committed needs Fetch v4".into());
        }
        let deadline = Instant::now() + timeout;
        let mut next = offset;
        let mut out = Vec::new();
        // Aborted transactions reported and not reached yet, by first
        // offset; the producers whose aborted transaction is being read.
        let mut aborted: VecDeque<(i64, i64)> = VecDeque::new();
        let mut aborting: BTreeSet<i64> = BTreeSet::new();
        while out.len() < count && next < end && Instant::now() < deadline {
            let req = FetchRequest {
                isolation_level: if read_committed {
                    READ_COMMITTED
                } else {
                    READ_UNCOMMITTED
                },
                max_wait_ms: 100,
                min_bytes: 1,
                max_bytes: 4 << 20,
                topics: vec![FetchTopic {
                    topic: self.topic.clone(),
                    partitions: vec![FetchPartition {
                        partition: self.partition,
                        fetch_offset: next,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r = self.call(version, &req)?;
            if let Some(e) = error(r.error_code) {
                return Err(format!("Fetch: {e}").into());
            }
            let Some(p) = r
                .responses
                .iter()
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == self.partition)
            else {
                return Err("Fetch: the partition is missing from the answer".into());
            };
            if let Some(e) = error(p.error_code) {
                return Err(
                    format!("Fetch {}-{} at {next}: {e}", self.topic, self.partition).into(),
                );
            }
            if read_committed {
                let mut reported: Vec<(i64, i64)> = p
                    .aborted_transactions
                    .iter()
                    .flatten()
                    .map(|a| (a.first_offset, a.producer_id))
                    .collect();
                reported.sort_unstable();
                for a in reported {
                    if !aborted.contains(&a) {
                        aborted.push_back(a);
                    }
                }
            }
            let mut data = p.records.clone().unwrap_or_default();
            while !data.is_empty() {
                let batch = match RecordBatch::decode(&mut data) {
                    Ok(b) => b,
                    // The broker may cut the last batch short at max_bytes.
                    Err(ProtocolError::Truncated { .. }) => break,
                    Err(e) => return Err(e.into()),
                };
                let last = batch.base_offset + batch.last_offset_delta as i64;
                if read_committed {
                    // Every aborted transaction that starts at or before
                    // this batch is open from here to its abort marker.
                    while aborted.front().is_some_and(|(first, _)| *first <= last) {
                        let (_, pid) = aborted.pop_front().expect("non-empty");
                        aborting.insert(pid);
                    }
                }
                if batch.is_control() {
                    if EndTxnMarker::from_batch(&batch)?.control_type == ControlType::Abort {
                        aborting.remove(&batch.producer_id);
                    }
                    next = next.max(last + 1);
                    continue;
                }
                if read_committed
                    && batch.is_transactional()
                    && aborting.contains(&batch.producer_id)
                {
                    next = next.max(last + 1);
                    continue;
                }
                let log_append = batch.attributes & 0x08 != 0;
                for r in batch.records()? {
                    let offset = batch.base_offset + r.offset_delta as i64;
                    // A batch starts before the offset asked for: skip its head.
                    if offset < next || offset >= end || out.len() >= count {
                        continue;
                    }
                    out.push(FetchedRecord {
                        offset,
                        timestamp: if log_append {
                            batch.max_timestamp
                        } else {
                            batch.base_timestamp + r.timestamp_delta
                        },
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    });
                }
                next = next.max(last + 1);
            }
        }
        Ok(out)
    }

    /// Sends one request and reads its response.
    fn call<R: Request>(&mut self, version: i16, req: &R) -> Result<R::Response, BoxError> {
        self.correlation_id += 1;
        let mut buf = BytesMut::new();
        encode_request(&mut buf, self.correlation_id, Some(CLIENT_ID), version, req)?;
        self.stream.write_all(&buf)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        if size < 0 || size as usize > MAX_FRAME {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad frame size").into());
        }
        let mut frame = vec![0u8; size as usize];
        self.stream.read_exact(&mut frame)?;
        // Lenient as Java's readers are: librdkafka 2.12+'s mock appends a byte to Metadata.
        let (header, body, _) =
            decode_response_lenient::<R::Response>(Bytes::from(frame), version)?;
        if header.correlation_id != self.correlation_id {
            return Err("response for another request".into());
        }
        Ok(body)
    }
}
