//! Deterministic faults: queued error codes, lost responses, leader moves,
//! brokers down, latency and throttling.

use std::time::Duration;

use super::MockCluster;
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::ApiKey;

impl MockCluster {
    /// The next requests of `api` answer with these error codes, one request
    /// per code, in order (for Produce every partition of the request gets the
    /// code and nothing is appended; for Metadata every topic returned does).
    pub fn push_errors(&mut self, api: ApiKey, errors: Vec<ErrorCode>) {
        self.pushed_errors
            .entry(api.code())
            .or_default()
            .extend(errors);
    }

    /// The next Metadata requests answer with these top-level error codes
    /// (KIP-1102, e.g. REBOOTSTRAP_REQUIRED), one request per code, and list
    /// no broker or topic, as a proxy refusing the request would. Below
    /// Metadata v13, which has no such field, the answer only lists nothing.
    pub fn push_metadata_top_level_errors(&mut self, errors: Vec<ErrorCode>) {
        self.metadata_top_level_errors.extend(errors);
    }

    /// Pushed errors not yet consumed for `api`.
    pub fn pending_errors(&self, api: ApiKey) -> usize {
        self.pushed_errors.get(&api.code()).map_or(0, |q| q.len())
    }

    /// The next `n` Produce requests are processed (appended) but answered by
    /// closing the connection: the response is lost after the append.
    pub fn fail_after_append(&mut self, n: usize) {
        self.fail_after_append = n;
    }

    /// Moves the leadership of a partition to `node`, bumping its leader epoch.
    ///
    /// Errors: UNKNOWN_TOPIC_OR_PARTITION, BROKER_NOT_AVAILABLE (no such node).
    pub fn set_leader(&mut self, topic: &str, partition: i32, node: i32) -> Result<(), ErrorCode> {
        if self.broker(node).is_none() {
            return Err(ErrorCode::BrokerNotAvailable);
        }
        let p = self
            .topics
            .get_mut(topic)
            .and_then(|t| {
                usize::try_from(partition)
                    .ok()
                    .and_then(|i| t.partitions.get_mut(i))
            })
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if p.leader != node {
            p.leader = node;
            p.leader_epoch += 1;
        }
        Ok(())
    }

    /// Takes a broker down or up. A down broker closes the connection on every
    /// request; it stays listed in Metadata and keeps its leaderships (as in
    /// Kafka before the controller notices; move them with [`Self::set_leader`]).
    pub fn set_broker_down(&mut self, node: i32, down: bool) {
        self.broker_mut(node).down = down;
    }

    /// True when `node` is down.
    pub fn is_broker_down(&self, node: i32) -> bool {
        self.broker(node).is_some_and(|b| b.down)
    }

    /// Puts `node` in `rack` (Kafka's `broker.rack`; `None`: no rack), as
    /// Metadata reports it from then on.
    pub fn set_rack(&mut self, node: i32, rack: Option<&str>) {
        self.broker_mut(node).rack = rack.map(str::to_owned);
    }

    /// Delays every response of `node` by `latency` (see [`HandleResult::due`](super::HandleResult::due)).
    pub fn set_latency(&mut self, node: i32, latency: Duration) {
        self.broker_mut(node).latency = latency;
    }

    /// Makes `node` a slow broker: it serves one request at a time, over all
    /// its connections, each taking `d` (as a broker with a slow disk), so
    /// its answers come `d` apart at best and its queue grows when requests
    /// come faster. Its latency ([`Self::set_latency`]) adds to each answer.
    pub fn set_service_time(&mut self, node: i32, d: Duration) {
        let b = self.broker_mut(node);
        b.service_time = d;
        b.busy_until = None;
    }

    /// Makes every response of `node` carry `throttle_time_ms = ms` (0 to stop).
    /// The mock does not mute the connection itself.
    pub fn throttle(&mut self, node: i32, ms: i32) {
        self.broker_mut(node).throttle_ms = ms.max(0);
    }
}
