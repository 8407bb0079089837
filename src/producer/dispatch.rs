//! Answers routed to the concern of their request: each decoded at the
//! version it was asked at, with the bytes past its last field counted.

use std::time::Instant;

use bytes::Bytes;

use crate::protocol::frame::{self, ApiKey};
use crate::protocol::messages::api_versions::ApiVersionsResponse;
use crate::protocol::messages::init_producer_id::InitProducerIdResponse;
use crate::protocol::messages::metadata::MetadataResponse;

use super::connection::{InFlight, RequestKind};
use super::{ConnId, Producer};

impl Producer {
    /// Handles one response; `Err` puts the request back and resets the connection.
    pub(super) fn on_response(
        &mut self,
        conn: ConnId,
        req: InFlight,
        frame: Bytes,
        now: Instant,
    ) -> Result<(), crate::protocol::ProtocolError> {
        match req.kind {
            RequestKind::ApiVersions => {
                let mut body = frame.slice(4..);
                let resp =
                    match ApiVersionsResponse::decode_fallback_counted(&mut body, req.version) {
                        Ok((r, skipped)) => {
                            self.skipped(conn, ApiKey::ApiVersions, req.version, skipped);
                            r
                        }
                        Err(e) => {
                            self.unmark_request(&RequestKind::ApiVersions);
                            return Err(e);
                        }
                    };
                self.on_api_versions(conn, req.version, resp, now);
            }
            // Its flag was cleared when it went stale: another request may be out now.
            RequestKind::Stale => {}
            RequestKind::Txn(kind) => self.on_txn_response(conn, kind, req.version, frame, now)?,
            RequestKind::Metadata => {
                self.cluster.metadata_in_flight = false;
                let resp =
                    match frame::decode_response_lenient::<MetadataResponse>(frame, req.version) {
                        Ok((_, r, skipped)) => {
                            self.skipped(conn, ApiKey::Metadata, req.version, skipped);
                            r
                        }
                        Err(e) => {
                            // A failed refresh, as Java's: the next one waits
                            // for the retry backoff.
                            self.retry_metadata_later(now);
                            return Err(e);
                        }
                    };
                self.on_metadata(conn, resp, now);
            }
            RequestKind::InitProducerId => {
                let resp = match frame::decode_response_lenient::<InitProducerIdResponse>(
                    frame,
                    req.version,
                ) {
                    Ok((_, r, skipped)) => {
                        self.skipped(conn, ApiKey::InitProducerId, req.version, skipped);
                        r
                    }
                    Err(e) => {
                        self.unmark_request(&RequestKind::InitProducerId);
                        return Err(e);
                    }
                };
                self.on_init_producer_id(resp, now);
            }
            RequestKind::Produce(batches) => {
                let latency = now.saturating_duration_since(req.sent).as_micros() as u64;
                self.metrics.request_latency_us_sum += latency;
                self.metrics.request_latency_us_max =
                    self.metrics.request_latency_us_max.max(latency);
                self.metrics.produce_responses += 1;
                let w = self.window();
                let ms = now.saturating_duration_since(req.sent).as_secs_f64() * 1000.0;
                self.sensors.request_latency.record(ms, now, &w);
                if let Some(node) = self.net.conns.get(&conn).and_then(|c| c.node) {
                    let l = self.sensors.node_latency.entry(node).or_default();
                    l.record(ms, now, &w);
                }
                let version = req.version;
                match frame::decode_response_lenient::<
                    crate::protocol::messages::produce::ProduceResponse,
                >(frame, version)
                {
                    Ok((_, resp, skipped)) => {
                        self.skipped(conn, ApiKey::Produce, version, skipped);
                        self.on_produce_response(conn, version, batches, resp, now)
                    }
                    Err(e) => {
                        // The batches' fate is unknown: retry them as after a lost answer.
                        self.retry_unknown(batches, now);
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Counts the bytes a response had after its version's last field, and
    /// logs the first such response of a connection.
    pub(super) fn skipped(&mut self, conn: ConnId, api: ApiKey, version: i16, skipped: usize) {
        if skipped == 0 {
            return;
        }
        self.metrics.response_bytes_skipped += skipped as u64;
        let c = self.net.conns.get_mut(&conn).expect("answered on it");
        if !c.skipped_logged {
            c.skipped_logged = true;
            log::debug!(
                "{:?} v{version} from {}: skipped {skipped} byte(s) after the last field \
                 (logged once per connection)",
                api,
                c.addr_string()
            );
        }
    }
}
