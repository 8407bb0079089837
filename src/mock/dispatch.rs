//! [`MockCluster::handle_request`]: a request frame decoded and routed to
//! its API's answer, and the answer framed.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::fetch::MAX_FETCH_WAIT_MS;
use super::txn::partition_results;
use super::{HandleResult, MockCluster};
use crate::protocol::error::ProtocolError;
use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::{encode_response, ApiKey, ApiMessage, RequestHeader};
use crate::protocol::messages::add_offsets_to_txn::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse,
};
use crate::protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
};
use crate::protocol::messages::api_versions::{
    ApiVersion, ApiVersionsRequest, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
    TRANSACTION_VERSION_FEATURE,
};
use crate::protocol::messages::end_txn::{EndTxnRequest, EndTxnResponse};
use crate::protocol::messages::fetch::FetchRequest;
use crate::protocol::messages::find_coordinator::FindCoordinatorRequest;
use crate::protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use crate::protocol::messages::list_offsets::ListOffsetsRequest;
use crate::protocol::messages::metadata::{MetadataRequest, MetadataResponse};
use crate::protocol::messages::produce::ProduceRequest;
use crate::protocol::messages::txn_offset_commit::TxnOffsetCommitRequest;

impl MockCluster {
    /// Handles one request frame (header and body, without the size prefix)
    /// received by broker `node_id`.
    ///
    /// Closes the connection (no response) when the broker is down, the API
    /// key is unknown, the version is outside the codec's range (except for
    /// ApiVersions, which answers UNSUPPORTED_VERSION in v0), the frame does
    /// not decode (bytes after the last field of its version are skipped,
    /// as Kafka does), or a [`Self::fail_after_append`] fault fires.
    ///
    /// # Panics
    /// When `node_id` is not a broker of this cluster.
    pub fn handle_request(&mut self, node_id: i32, frame: Bytes, now: Instant) -> HandleResult {
        self.dispatch(None, node_id, frame, now)
    }

    /// Handles one request frame that came on connection `conn` (an id the
    /// caller keeps unique among its open connections) of broker `node_id`.
    /// Same as [`Self::handle_request`], plus what depends on the
    /// connection: its SASL state when SASL is enabled (feature `sasl`; a
    /// request through [`Self::handle_request`] counts as one on a fresh,
    /// unauthenticated connection). Call [`Self::connection_closed`] when
    /// the connection goes.
    ///
    /// # Panics
    /// When `node_id` is not a broker of this cluster.
    pub fn handle_connection_request(
        &mut self,
        conn: u64,
        node_id: i32,
        frame: Bytes,
        now: Instant,
    ) -> HandleResult {
        self.dispatch(Some(conn), node_id, frame, now)
    }

    /// Connection `conn` closed (either side): its state goes with it, so the id may be reused.
    pub fn connection_closed(&mut self, conn: u64) {
        #[cfg(feature = "sasl")]
        self.sasl_connection_closed(conn);
        #[cfg(not(feature = "sasl"))]
        let _ = conn;
    }

    /// True when this cluster answers SaslHandshake and SaslAuthenticate.
    fn serves_sasl(&self) -> bool {
        #[cfg(feature = "sasl")]
        return self.sasl.is_some();
        #[cfg(not(feature = "sasl"))]
        return false;
    }

    fn dispatch(
        &mut self,
        conn: Option<u64>,
        node_id: i32,
        frame: Bytes,
        now: Instant,
    ) -> HandleResult {
        #[cfg(not(feature = "sasl"))]
        let _ = conn;
        let broker = self.broker_mut(node_id);
        // A request starts once the broker served the ones before it.
        let served = if broker.service_time.is_zero() {
            now
        } else {
            let start = broker.busy_until.map_or(now, |b| b.max(now));
            broker.busy_until = Some(start + broker.service_time);
            start + broker.service_time
        };
        let broker = &*broker;
        let due = served + broker.latency;
        let close = HandleResult {
            response: None,
            close: true,
            due,
        };
        if broker.down {
            return close;
        }
        let throttle = broker.throttle_ms;
        let mut body = frame;
        let Ok(header) = RequestHeader::decode(&mut body) else {
            return close;
        };
        let Some(api) = ApiKey::from_code(header.api_key) else {
            log::debug!("mock broker {node_id}: unknown API key {}", header.api_key);
            return close;
        };
        let version = header.api_version;
        let cid = header.correlation_id;
        let (lo, hi) = api.versions();
        if version < lo || version > hi {
            if api == ApiKey::ApiVersions && version > hi {
                // KIP-511: answer in v0 so that the client can read it, listing
                // the ApiVersions range so it can retry with a version we speak.
                let r = ApiVersionsResponse {
                    error_code: ErrorCode::UnsupportedVersion.code(),
                    api_keys: vec![api_version_entry(ApiKey::ApiVersions)],
                    ..Default::default()
                };
                return respond(cid, 0, &r, due);
            }
            return close;
        }
        #[cfg(feature = "sasl")]
        if let super::sasl::Gate::Answer(h) = self.sasl_gate(super::sasl::Incoming {
            conn,
            api,
            version,
            cid,
            body: &body,
            pushed: None,
            due,
            now,
        }) {
            return h;
        }
        let pushed = self
            .pushed_errors
            .get_mut(&api.code())
            .and_then(VecDeque::pop_front);
        match api {
            ApiKey::ApiVersions => {
                let Ok(_req) = decode_request::<ApiVersionsRequest>(node_id, body, version) else {
                    return close;
                };
                // Exactly the codec's ranges. (librdkafka produces RecordBatch
                // v2 only when Fetch v4+ is advertised; Fetch is served.)
                // SASL only when served.
                let sasl = self.serves_sasl();
                let mut api_keys: Vec<ApiVersion> = ApiKey::ALL
                    .iter()
                    .filter(|k| {
                        sasl || !matches!(k, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
                    })
                    .map(|k| api_version_entry(*k))
                    .collect();
                api_keys.sort_by_key(|a| a.api_key);
                let mut r = ApiVersionsResponse {
                    error_code: pushed.map_or(0, ErrorCode::code),
                    api_keys,
                    throttle_time_ms: throttle,
                    ..Default::default()
                };
                let level = self.transaction_version();
                if level > 0 {
                    r.finalized_features_epoch = 1;
                    r.finalized_features.push(FinalizedFeatureKey {
                        name: TRANSACTION_VERSION_FEATURE.to_owned(),
                        max_version_level: level,
                        min_version_level: level,
                        ..Default::default()
                    });
                    r.supported_features.push(SupportedFeatureKey {
                        name: TRANSACTION_VERSION_FEATURE.to_owned(),
                        min_version: 0,
                        max_version: 2,
                        ..Default::default()
                    });
                }
                respond(cid, version, &r, due)
            }
            ApiKey::Metadata => {
                let Ok(req) = decode_request::<MetadataRequest>(node_id, body, version) else {
                    return close;
                };
                let mut r = match self.metadata_top_level_errors.pop_front() {
                    Some(e) => MetadataResponse {
                        error_code: if version >= 13 { e.code() } else { 0 },
                        ..Default::default()
                    },
                    None => self.metadata(&req, version),
                };
                r.throttle_time_ms = throttle;
                if let Some(e) = pushed {
                    for t in &mut r.topics {
                        t.error_code = e.code();
                        t.partitions.clear();
                    }
                }
                respond(cid, version, &r, due)
            }
            ApiKey::InitProducerId => {
                let Ok(req) = decode_request::<InitProducerIdRequest>(node_id, body, version)
                else {
                    return close;
                };
                let mut r = match pushed {
                    Some(e) => InitProducerIdResponse {
                        error_code: e.code(),
                        producer_id: -1,
                        producer_epoch: -1,
                        ..Default::default()
                    },
                    None => match req.transactional_id.clone() {
                        Some(tid) => self.init_transactional_producer(node_id, &tid, &req),
                        None => self.init_producer_id(&req),
                    },
                };
                r.throttle_time_ms = throttle;
                respond(cid, version, &r, due)
            }
            ApiKey::Produce => {
                let Ok(req) = decode_request::<ProduceRequest>(node_id, body, version) else {
                    return close;
                };
                let mut r = self.produce(node_id, &req, version, pushed);
                r.throttle_time_ms = throttle;
                if self.fail_after_append > 0 {
                    self.fail_after_append -= 1;
                    return close;
                }
                if req.acks == 0 {
                    return HandleResult {
                        response: None,
                        close: false,
                        due,
                    };
                }
                respond(cid, version, &r, due)
            }
            ApiKey::Fetch => {
                let Ok(req) = decode_request::<FetchRequest>(node_id, body, version) else {
                    return close;
                };
                let mut r = self.fetch(node_id, &req, version, pushed);
                r.throttle_time_ms = throttle;
                // No data and the client is willing to wait: answer after
                // max_wait_ms, as a broker's long poll would when nothing arrives.
                let empty = r.responses.iter().all(|t| {
                    t.partitions
                        .iter()
                        .all(|p| p.records.as_ref().is_none_or(|b| b.is_empty()))
                });
                let wait = if empty && req.min_bytes > 0 {
                    Duration::from_millis(req.max_wait_ms.clamp(0, MAX_FETCH_WAIT_MS) as u64)
                } else {
                    Duration::ZERO
                };
                let mut res = respond(cid, version, &r, due);
                res.due += wait;
                res
            }
            ApiKey::ListOffsets => {
                let Ok(req) = decode_request::<ListOffsetsRequest>(node_id, body, version) else {
                    return close;
                };
                let mut r = self.list_offsets(node_id, &req, version, pushed);
                r.throttle_time_ms = throttle;
                respond(cid, version, &r, due)
            }
            ApiKey::FindCoordinator => {
                let Ok(req) = decode_request::<FindCoordinatorRequest>(node_id, body, version)
                else {
                    return close;
                };
                let mut r = self.find_coordinator(&req, version);
                r.throttle_time_ms = throttle;
                if let Some(e) = pushed {
                    r.error_code = if version < 4 { e.code() } else { 0 };
                    for c in &mut r.coordinators {
                        c.error_code = e.code();
                    }
                }
                respond(cid, version, &r, due)
            }
            ApiKey::AddPartitionsToTxn => {
                let Ok(req) = decode_request::<AddPartitionsToTxnRequest>(node_id, body, version)
                else {
                    return close;
                };
                let mut r = match pushed {
                    Some(e) => AddPartitionsToTxnResponse {
                        error_code: if version >= 4 { e.code() } else { 0 },
                        results_by_topic_v3_and_below: if version < 4 {
                            partition_results(&req.v3_and_below_topics, |_, _| e)
                        } else {
                            Vec::new()
                        },
                        ..Default::default()
                    },
                    None => self.add_partitions_to_txn(node_id, &req, version),
                };
                r.throttle_time_ms = throttle;
                respond(cid, version, &r, due)
            }
            ApiKey::AddOffsetsToTxn => {
                let Ok(req) = decode_request::<AddOffsetsToTxnRequest>(node_id, body, version)
                else {
                    return close;
                };
                let mut r = match pushed {
                    Some(e) => AddOffsetsToTxnResponse {
                        error_code: e.code(),
                        ..Default::default()
                    },
                    None => self.add_offsets_to_txn(node_id, &req),
                };
                r.throttle_time_ms = throttle;
                respond(cid, version, &r, due)
            }
            ApiKey::TxnOffsetCommit => {
                let Ok(req) = decode_request::<TxnOffsetCommitRequest>(node_id, body, version)
                else {
                    return close;
                };
                let mut r = self.txn_offset_commit(node_id, &req, version);
                if let Some(e) = pushed {
                    for p in r.topics.iter_mut().flat_map(|t| &mut t.partitions) {
                        p.error_code = e.code();
                    }
                }
                r.throttle_time_ms = throttle;
                respond(cid, version, &r, due)
            }
            ApiKey::EndTxn => {
                let Ok(req) = decode_request::<EndTxnRequest>(node_id, body, version) else {
                    return close;
                };
                let mut r = match pushed {
                    Some(e) => EndTxnResponse {
                        error_code: e.code(),
                        ..Default::default()
                    },
                    None => self.end_txn(node_id, &req, version),
                };
                r.throttle_time_ms = throttle;
                respond(cid, version, &r, due)
            }
            // Answered by the SASL gate when SASL is on (feature `sasl`);
            // a broker without SASL listeners closes such a connection.
            ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => close,
        }
    }
}

fn api_version_entry(k: ApiKey) -> ApiVersion {
    let (min, max) = k.versions();
    ApiVersion {
        api_key: k.code(),
        min_version: min,
        max_version: max,
        ..Default::default()
    }
}

/// Decodes a request body as Kafka's broker does: the fields of `version`,
/// then whatever follows them is skipped (a newer client may send more),
/// while a body too short for its fields, or a field out of range, is an
/// error.
fn decode_request<M: ApiMessage>(
    node_id: i32,
    mut body: Bytes,
    version: i16,
) -> Result<M, ProtocolError> {
    let m = M::decode(&mut body, version)?;
    if !body.is_empty() {
        log::debug!(
            "mock broker {node_id}: {} bytes after {:?} v{version} skipped",
            body.len(),
            M::API_KEY
        );
    }
    Ok(m)
}

pub(super) fn respond<M: ApiMessage>(cid: i32, version: i16, m: &M, due: Instant) -> HandleResult {
    let mut buf = BytesMut::new();
    match encode_response(&mut buf, cid, version, m) {
        Ok(()) => HandleResult {
            response: Some(buf.freeze()),
            close: false,
            due,
        },
        Err(e) => {
            log::warn!("mock broker could not encode a response: {e}");
            HandleResult {
                response: None,
                close: true,
                due,
            }
        }
    }
}
