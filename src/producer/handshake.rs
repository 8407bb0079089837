//! The ApiVersions handshake: what a new connection asks first, and the
//! versions it negotiates for every other request.

use std::time::Instant;

use crate::protocol::error_code::ErrorCode;
use crate::protocol::frame::ApiKey;
use crate::protocol::messages::api_versions::{ApiVersionsRequest, ApiVersionsResponse};

use super::connection::{ConnState, RequestKind};
use super::{error_of, ConnId, ConnectionError, Producer};

/// Highest ApiVersions request version we try first.
const API_VERSIONS_MAX: i16 = 4;

impl Producer {
    pub(crate) fn on_connected(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.net.conns.get_mut(&conn) else {
            return;
        };
        if c.state != ConnState::Connecting {
            return;
        }
        // Connected is not usable yet: the reconnect backoff is left as it
        // is until ApiVersions is answered (`on_api_versions`).
        c.state = ConnState::Handshake;
        log::debug!(
            "connected {conn:?} to {}; asking for API versions",
            c.addr_string()
        );
        // A connect that succeeds starts the connect timeout over.
        let addr = c.addr.clone();
        self.net.setup_failures.remove(&addr);
        self.send_api_versions(conn, API_VERSIONS_MAX, now);
    }

    fn send_api_versions(&mut self, conn: ConnId, version: i16, now: Instant) {
        let req = ApiVersionsRequest {
            client_software_name: "kafka-sansio".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        self.send_request(conn, version, &req, RequestKind::ApiVersions, now);
    }

    pub(super) fn on_api_versions(
        &mut self,
        conn: ConnId,
        version: i16,
        resp: ApiVersionsResponse,
        now: Instant,
    ) {
        let code = error_of(resp.error_code);
        if code == Some(ErrorCode::UnsupportedVersion) {
            // Retry with the broker's highest ApiVersions version.
            let theirs = resp
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiKey::ApiVersions.code())
                .map(|k| k.max_version)
                .unwrap_or(0);
            let next = theirs.min(version - 1).max(0);
            if next < version {
                self.send_api_versions(conn, next, now);
                return;
            }
        }
        if let Some(code) = code {
            let addr = self.net.conns[&conn].addr_string();
            self.reset(conn, now, ConnectionError::Handshake { addr, code });
            return;
        }
        let mut versions = [None; ApiKey::ALL.len()];
        for (i, key) in ApiKey::ALL.iter().enumerate() {
            let (lo, hi) = key.versions();
            if let Some(k) = resp.api_keys.iter().find(|k| k.api_key == key.code()) {
                let v = hi.min(k.max_version);
                if v >= lo.max(k.min_version) {
                    versions[i] = Some(v);
                }
            }
        }
        let c = self.net.conns.get_mut(&conn).expect("connection");
        c.versions = versions;
        c.state = ConnState::Ready;
        self.txn_on_api_versions(conn, &resp);
        let c = &self.net.conns[&conn];
        if c.version(ApiKey::Produce).is_none() || c.version(ApiKey::Metadata).is_none() {
            // Produce v3 (RecordBatch v2) is the floor: this broker cannot take our records.
            log::error!(
                "broker {:?} supports no Produce/Metadata version in our range",
                c.addr
            );
            self.set_fatal(ErrorCode::UnsupportedVersion);
        }
    }
}
