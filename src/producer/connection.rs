//! Connections as the core sees them: opening and closing them, deframing
//! their bytes and matching answers to requests by correlation id, the
//! requests in flight, and the reconnect backoff per address.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::protocol::frame::{self, ApiKey, Deframer, Request};

use super::accumulator::Batch;
use super::idempotence::PidState;
use super::timers::earliest;
use super::{ConnId, ConnectionError, Producer, Transmit};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// Connect asked of the driver, not answered yet.
    Connecting,
    /// Connected; ApiVersions in flight.
    Handshake,
    /// Versions known; requests may go.
    Ready,
}

/// How a connection ended, for [`Producer::on_disconnected`].
#[derive(Debug)]
pub(crate) enum End {
    /// The driver reported it failed, or the peer closed it.
    Peer,
    /// The core resets it for this reason.
    Reset(ConnectionError),
    /// The core closes it without a fault (a rebootstrap gave it up).
    Close,
}

/// What a request in flight was.
#[derive(Debug)]
pub(crate) enum RequestKind {
    ApiVersions,
    Metadata,
    InitProducerId,
    Produce(Vec<Batch>),
    /// A transaction request (see `transactions`).
    Txn(super::transactions::TxnKind),
    /// A cluster request asked before a rebootstrap: redone elsewhere, its
    /// answer is dropped.
    Stale,
}

/// A request awaiting its answer.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub correlation_id: i32,
    pub version: i16,
    pub kind: RequestKind,
    pub sent: Instant,
    pub deadline: Instant,
}

/// One connection to a broker (or a bootstrap address).
#[derive(Debug)]
pub(crate) struct Connection {
    pub node: Option<i32>,
    pub addr: (String, u16),
    pub state: ConnState,
    pub started: Instant,
    /// How long the connect may take: `socket.connection.setup.timeout.ms`
    /// doubled per failed connect to the address in a row, up to the max.
    pub setup_timeout: std::time::Duration,
    /// Last request sent or bytes received, for `connections.max.idle.ms`.
    pub last_active: Instant,
    pub deframer: Deframer,
    pub in_flight: VecDeque<InFlight>,
    /// Negotiated version per API (index in `ApiKey::ALL`).
    pub versions: [Option<i16>; ApiKey::ALL.len()],
    pub throttled_until: Option<Instant>,
    /// Bytes handed to the driver in `Transmit::Send`s, and reported written.
    pub sent_bytes: u64,
    pub written_bytes: u64,
    /// acks=0 batches, complete once the driver wrote their request (up to
    /// the `sent_bytes` mark stored with them).
    pub unwritten: VecDeque<(u64, Vec<Batch>)>,
    /// Correlation ids of the latest acks=0 Produce requests (at most
    /// [`ACKS0_REMEMBERED`]), oldest first. Kafka never answers them, but
    /// some brokers do (tansu 0.6.0): such an answer is recognised by its id
    /// and dropped instead of taken for a desynchronised stream.
    pub acks0_sent: VecDeque<i32>,
    /// An acks=0 Produce request was answered here (logged once).
    pub acks0_answered: bool,
    /// Belongs to the cluster view a rebootstrap gave up: takes no new
    /// request, and is closed once the batches it carries are answered.
    pub retired: bool,
    /// A response here had bytes after its version's last field (logged once).
    pub skipped_logged: bool,
}

/// How many acks=0 Produce correlation ids a connection remembers. A broker
/// that answers them answers in order, so it only needs to cover the requests
/// it has not read yet; past that an answer resets the connection as any
/// unknown answer does.
pub(crate) const ACKS0_REMEMBERED: usize = 256;

/// The connections, and what outlives any one of them.
#[derive(Debug, Default)]
pub(super) struct Network {
    /// Open (or opening) connections.
    pub conns: BTreeMap<ConnId, Connection>,
    /// Reconnect backoff per address: (not before, failures in a row).
    pub reconnect: BTreeMap<(String, u16), (Instant, u32)>,
    /// Connects to an address that failed or timed out in a row (Java's
    /// `failedConnectAttempts`): what the next connect timeout doubles by.
    pub setup_failures: BTreeMap<(String, u16), u32>,
    /// The last connection failure since a broker last answered Metadata
    /// usably: what records that time out waiting for metadata name.
    pub last_error: Option<ConnectionError>,
    /// The id of the next connection.
    pub next_conn_id: u64,
    /// The correlation id of the next request.
    pub next_correlation: i32,
    /// Scratch for the pieces of one request (see `transmit_request`).
    pub segments: Vec<Bytes>,
}

impl Connection {
    /// `host:port`, as errors name it.
    pub fn addr_string(&self) -> String {
        format!("{}:{}", self.addr.0, self.addr.1)
    }

    pub fn version(&self, key: ApiKey) -> Option<i16> {
        let i = ApiKey::ALL
            .iter()
            .position(|k| *k == key)
            .expect("known key");
        self.versions[i]
    }

    /// Bytes handed to the driver and not reported written yet.
    pub fn unwritten_bytes(&self) -> u64 {
        self.sent_bytes - self.written_bytes
    }

    /// Remembers the correlation id of an acks=0 Produce request written here.
    pub fn sent_acks0(&mut self, correlation_id: i32) {
        if self.acks0_sent.len() == ACKS0_REMEMBERED {
            self.acks0_sent.pop_front();
        } else if self.acks0_sent.capacity() == 0 {
            // Once, whole: no allocation per request afterwards.
            self.acks0_sent.reserve_exact(ACKS0_REMEMBERED);
        }
        self.acks0_sent.push_back(correlation_id);
    }

    /// Whether a response with `correlation_id` answers one of the acks=0
    /// Produce requests written here; forgets that request and the older
    /// ones (answers come in order, so theirs will not come any more).
    fn answers_acks0(&mut self, correlation_id: i32) -> bool {
        match self.acks0_sent.iter().position(|&c| c == correlation_id) {
            Some(i) => {
                self.acks0_sent.drain(..=i);
                true
            }
            None => false,
        }
    }

    /// Carries batches whose outcome is not known yet.
    pub(super) fn carries_batches(&self) -> bool {
        !self.unwritten.is_empty()
            || self
                .in_flight
                .iter()
                .any(|f| matches!(f.kind, RequestKind::Produce(_)))
    }

    /// Can take one more request now.
    pub fn can_send(&self, max_in_flight: usize, now: Instant) -> bool {
        self.state == ConnState::Ready
            && !self.retired
            && self.in_flight.len() < max_in_flight
            && self.throttled_until.is_none_or(|t| t <= now)
    }
}

impl RequestKind {
    /// The API this request is of (a stale one is never decoded: Metadata
    /// stands in for it).
    pub(crate) fn api_key(&self) -> ApiKey {
        match self {
            RequestKind::ApiVersions => ApiKey::ApiVersions,
            RequestKind::Metadata | RequestKind::Stale => ApiKey::Metadata,
            RequestKind::InitProducerId => ApiKey::InitProducerId,
            RequestKind::Produce(_) => ApiKey::Produce,
            RequestKind::Txn(k) => k.api_key(),
        }
    }
}

impl Producer {
    /// Asks the driver for a new connection to `addr`.
    pub(crate) fn open_connection(
        &mut self,
        node: Option<i32>,
        addr: (String, u16),
        now: Instant,
    ) -> ConnId {
        let id = ConnId(self.net.next_conn_id);
        self.net.next_conn_id += 1;
        self.metrics.connects += 1;
        let w = self.window();
        self.sensors.connection_creation.record(1.0, now, &w);
        let setup_timeout = self.setup_timeout(&addr);
        self.transmits.push_back(Transmit::Connect {
            conn: id,
            host: addr.0.clone(),
            port: addr.1,
        });
        self.net.conns.insert(
            id,
            Connection {
                node,
                addr,
                state: ConnState::Connecting,
                started: now,
                setup_timeout,
                last_active: now,
                deframer: Deframer::new(self.config.max_response_size),
                in_flight: VecDeque::new(),
                versions: [None; ApiKey::ALL.len()],
                throttled_until: None,
                sent_bytes: 0,
                written_bytes: 0,
                unwritten: VecDeque::new(),
                acks0_sent: VecDeque::new(),
                acks0_answered: false,
                retired: false,
                skipped_logged: false,
            },
        );
        id
    }

    /// Encodes and queues a request on `conn`, tracking it as in flight.
    pub(crate) fn send_request<R: Request>(
        &mut self,
        conn: ConnId,
        version: i16,
        req: &R,
        kind: RequestKind,
        now: Instant,
    ) -> bool {
        let Some(correlation_id) = self.transmit_request(conn, version, req) else {
            return false;
        };
        let deadline = now + self.config.request_timeout;
        let c = self.net.conns.get_mut(&conn).expect("connection exists");
        c.last_active = now;
        c.in_flight.push_back(InFlight {
            correlation_id,
            version,
            kind,
            sent: now,
            deadline,
        });
        true
    }

    /// Encodes a request and queues it on `conn` as `Transmit::Send`s,
    /// counted in `sent_bytes`; returns its correlation id, `None` when it
    /// cannot be encoded. A Produce request is several sends: each batch goes
    /// out as its own buffer (a reference, not a copy) between the encoded
    /// bytes around it, which saves a copy of every batch per request.
    pub(crate) fn transmit_request<R: Request>(
        &mut self,
        conn: ConnId,
        version: i16,
        req: &R,
    ) -> Option<i32> {
        let correlation_id = self.net.next_correlation;
        self.net.next_correlation = self.net.next_correlation.wrapping_add(1) & i32::MAX;
        let mut segments = std::mem::take(&mut self.net.segments);
        let res = frame::encode_request_split(
            correlation_id,
            Some(&self.config.client_id),
            version,
            req,
            &mut segments,
        );
        let sent = match res {
            Ok(n) => {
                let w = self.window();
                self.sensors.requests.record(n as f64, self.last_now, &w);
                let c = self.net.conns.get_mut(&conn).expect("connection exists");
                c.sent_bytes += n as u64;
                self.transmits
                    .extend(segments.drain(..).map(|data| Transmit::Send { conn, data }));
                Some(correlation_id)
            }
            Err(e) => {
                log::error!("cannot encode {:?} v{version}: {e}", R::API_KEY);
                segments.clear();
                None
            }
        };
        // The vector is kept for the next request (no allocation per request).
        self.net.segments = segments;
        sent
    }

    /// The driver wrote `n` more bytes of `conn`'s transmits to the socket.
    /// `n` more bytes of `conn` are on the wire; true when that can change
    /// what the core does next (acks=0 batches completed, a connection held
    /// back by its unwritten bytes freed, a retired connection closed), so
    /// that a report that changes nothing costs the driver no `drive`.
    pub(crate) fn on_written(&mut self, conn: ConnId, n: usize) -> bool {
        let limit = self.config.max_request_size as u64;
        let Some(c) = self.net.conns.get_mut(&conn) else {
            return false;
        };
        let held = c.unwritten_bytes() >= limit;
        c.written_bytes = (c.written_bytes + n as u64).min(c.sent_bytes);
        let mut changed = held && c.unwritten_bytes() < limit;
        let mut done = Vec::new();
        while c
            .unwritten
            .front()
            .is_some_and(|(end, _)| *end <= c.written_bytes)
        {
            done.extend(c.unwritten.pop_front().expect("front").1);
        }
        changed |= !done.is_empty();
        for b in done {
            self.off_the_wire(&b);
            self.deliver(b, -1, -1);
        }
        changed | self.close_if_drained(conn)
    }

    pub(crate) fn on_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        let Some(c) = self.net.conns.get_mut(&conn) else {
            return;
        };
        c.deframer.push(data);
        c.last_active = now;
        let w = self.window();
        self.sensors.incoming.record(data.len() as f64, now, &w);
        loop {
            let c = self.net.conns.get_mut(&conn).expect("checked");
            let frame = match c.deframer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(error) => {
                    let addr = c.addr_string();
                    self.reset(conn, now, ConnectionError::Frame { addr, error });
                    return;
                }
            };
            // An answer to an acks=0 Produce request, which Kafka never
            // sends but tansu does: dropped. Resetting instead would lose
            // the requests written after it that the broker has not read
            // yet, whose records already count as delivered.
            if let Ok(id) = frame::peek_correlation_id(&frame) {
                if c.in_flight.front().is_none_or(|r| r.correlation_id != id) && c.answers_acks0(id)
                {
                    if !c.acks0_answered {
                        c.acks0_answered = true;
                        log::info!(
                            "{:?} answers acks=0 Produce requests (Kafka does not); \
                             ignoring those answers on {conn:?}",
                            c.addr
                        );
                    }
                    continue;
                }
            }
            let Some(req) = c.in_flight.pop_front() else {
                let addr = c.addr_string();
                self.reset(conn, now, ConnectionError::Unsolicited { addr });
                return;
            };
            match frame::peek_correlation_id(&frame) {
                Ok(id) if id == req.correlation_id => {}
                other => {
                    let error = ConnectionError::CorrelationMismatch {
                        addr: c.addr_string(),
                        expected: req.correlation_id,
                        got: other.unwrap_or(-1),
                    };
                    c.in_flight.push_front(req);
                    self.reset(conn, now, error);
                    return;
                }
            }
            let (api, version) = (req.kind.api_key(), req.version);
            if let Err(error) = self.on_response(conn, req, frame, now) {
                let addr = self.net.conns[&conn].addr_string();
                let error = ConnectionError::Decode {
                    addr,
                    api,
                    version,
                    error,
                };
                self.reset(conn, now, error);
                return;
            }
            self.close_if_drained(conn);
            if !self.net.conns.contains_key(&conn) {
                return;
            }
        }
    }

    /// Resets `conn` for `error`: logged, kept as the last connection
    /// error, and counted in the reconnect backoff.
    pub(crate) fn reset(&mut self, conn: ConnId, now: Instant, error: ConnectionError) {
        log::warn!("{error}; resetting {conn:?}");
        self.on_disconnected(conn, now, End::Reset(error));
    }

    /// Clears the bookkeeping flag of a cluster-level request that will not be answered.
    pub(crate) fn unmark_request(&mut self, kind: &RequestKind) {
        match kind {
            RequestKind::Metadata => {
                self.cluster.metadata_in_flight = false;
                self.cluster.metadata_needed = true;
            }
            RequestKind::InitProducerId => {
                if let PidState::Unknown { .. } = self.idempotence.pid {
                    self.idempotence.pid = PidState::Unknown {
                        in_flight: false,
                        retry_at: None,
                    };
                }
            }
            RequestKind::Txn(_) => self.txn_request_lost(),
            RequestKind::ApiVersions | RequestKind::Produce(_) | RequestKind::Stale => {}
        }
    }

    /// Closes `conn` if it is retired and carries nothing any more: it was
    /// kept only for those answers.
    fn close_if_drained(&mut self, conn: ConnId) -> bool {
        let drained = self
            .net
            .conns
            .get(&conn)
            .is_some_and(|c| c.retired && c.in_flight.is_empty() && c.unwritten.is_empty());
        if drained {
            self.net.conns.remove(&conn);
            self.metrics.disconnects += 1;
            self.transmits.push_back(Transmit::Close { conn });
        }
        drained
    }

    /// A connection ended (see [`End`]): its requests are redone, its
    /// batches retried as maybe persisted.
    pub(crate) fn on_disconnected(&mut self, conn: ConnId, now: Instant, end: End) {
        let Some(c) = self.net.conns.remove(&conn) else {
            return;
        };
        self.metrics.disconnects += 1;
        let usable = c.state == ConnState::Ready;
        let error = match end {
            End::Peer => {
                let addr = c.addr_string();
                // Java warns of a connect that failed and reports a lost
                // connection at info.
                match c.state {
                    ConnState::Connecting => {
                        log::warn!("connection to {addr} could not be established")
                    }
                    _ => log::info!("connection {conn:?} to {addr} closed by the peer"),
                }
                Some(match c.state {
                    ConnState::Connecting => ConnectionError::ConnectFailed { addr },
                    ConnState::Handshake => ConnectionError::ClosedBeforeReady { addr },
                    ConnState::Ready => ConnectionError::Closed { addr },
                })
            }
            End::Reset(e) => {
                self.transmits.push_back(Transmit::Close { conn });
                Some(e)
            }
            End::Close => {
                self.transmits.push_back(Transmit::Close { conn });
                None
            }
        };
        // Back off reconnects to this address, as Java's
        // `ClusterConnectionStates`: every attempt that ends before the
        // connection was usable (ApiVersions answered) is one more failure,
        // so the wait doubles up to `reconnect.backoff.max.ms`; a usable
        // connection starts the count again. A usable connection reset for
        // unusable bytes does not: a broker that answers garbage after the
        // handshake costs one connection per backoff all the same.
        if c.state == ConnState::Connecting {
            *self.net.setup_failures.entry(c.addr.clone()).or_insert(0) += 1;
        }
        let prior = self.net.reconnect.get(&c.addr).map_or(0, |r| r.1);
        let protocol = error.as_ref().is_some_and(|e| e.is_protocol_error());
        let failures = if usable && !protocol { 1 } else { prior + 1 };
        if let Some(e) = error {
            self.net.last_error = Some(e);
        }
        let base = self.config.reconnect_backoff.as_millis() as f64;
        let max = self.config.reconnect_backoff_max.as_millis() as f64;
        let wait = (base * 2f64.powi(failures.min(20) as i32 - 1)).min(max)
            * (0.8 + 0.4 * self.rng.unit());
        self.net.reconnect.insert(
            c.addr.clone(),
            (
                now + std::time::Duration::from_micros((wait * 1000.0) as u64),
                failures,
            ),
        );
        if c.node.is_none() && c.state == ConnState::Connecting {
            self.cluster.bootstrap_next += 1;
        }
        for f in c.in_flight {
            match f.kind {
                RequestKind::Produce(batches) => self.retry_unknown(batches, now),
                other => self.unmark_request(&other),
            }
        }
        // acks=0 requests the driver may not have written whole.
        for (_, batches) in c.unwritten {
            self.retry_unknown(batches, now);
        }
        // A lost leader connection often means a leader change.
        if c.node.is_some() {
            self.cluster.metadata_needed = true;
        }
    }

    /// Every batch on the wire: in requests awaiting answers, or acks=0
    /// requests not written yet.
    pub(crate) fn in_flight_batches_iter(&self) -> impl Iterator<Item = &Batch> {
        self.net.conns.values().flat_map(|c| {
            let answered = c.in_flight.iter().flat_map(|f| match &f.kind {
                RequestKind::Produce(bs) => bs.as_slice(),
                _ => &[],
            });
            answered.chain(c.unwritten.iter().flat_map(|(_, bs)| bs.iter()))
        })
    }

    /// The connect timeout of the next connect to `addr`, as Java's
    /// `ClusterConnectionStates`: `socket.connection.setup.timeout.ms` times
    /// two per connect to it that failed in a row, capped by
    /// `socket.connection.setup.timeout.max.ms`, jittered by 20%.
    fn setup_timeout(&mut self, addr: &(String, u16)) -> std::time::Duration {
        let failures = self.net.setup_failures.get(addr).copied().unwrap_or(0);
        let base = self.config.connect_timeout.as_secs_f64();
        let max = self.config.connect_timeout_max.as_secs_f64();
        let t =
            (base * 2f64.powi(failures.min(30) as i32)).min(max) * (0.8 + 0.4 * self.rng.unit());
        std::time::Duration::from_secs_f64(t)
    }

    /// Whether `c` has been idle past `connections.max.idle.ms`: ready,
    /// nothing in flight or unwritten, no traffic for that long.
    pub(super) fn idle_expired(&self, c: &Connection, now: Instant) -> bool {
        self.config.connections_max_idle.is_some_and(|idle| {
            c.state == ConnState::Ready
                && c.in_flight.is_empty()
                && c.unwritten.is_empty()
                && now.saturating_duration_since(c.last_active) >= idle
        })
    }

    /// Closes connections idle past `connections.max.idle.ms`, as Java's
    /// selector does; the next request for their broker opens a new one.
    /// No reconnect backoff is added: nothing failed.
    pub(super) fn close_idle(&mut self, now: Instant) {
        let idle: Vec<ConnId> = self
            .net
            .conns
            .iter()
            .filter(|(_, c)| self.idle_expired(c, now))
            .map(|(id, _)| *id)
            .collect();
        for conn in idle {
            if let Some(c) = self.net.conns.remove(&conn) {
                log::debug!("closing {conn:?} to {}: idle", c.addr_string());
                self.metrics.disconnects += 1;
                self.transmits.push_back(Transmit::Close { conn });
            }
        }
    }

    /// The earliest deadline after `now` among the connections: the oldest
    /// request's timeout, the connect timeout, the end of a throttle, the
    /// idle close.
    pub(super) fn connections_deadline(&self, now: Instant) -> Option<Instant> {
        let idle = self.config.connections_max_idle;
        earliest(
            now,
            self.net.conns.values().flat_map(|c| {
                let request = c.in_flight.front().map(|f| f.deadline);
                let connecting =
                    (c.state == ConnState::Connecting).then(|| c.started + c.setup_timeout);
                let quiet =
                    c.state == ConnState::Ready && c.in_flight.is_empty() && c.unwritten.is_empty();
                let idle_close = idle.filter(|_| quiet).map(|d| c.last_active + d);
                request
                    .into_iter()
                    .chain(connecting)
                    .chain(c.throttled_until)
                    .chain(idle_close)
            }),
        )
    }

    /// The earliest end of a reconnect backoff after `now`, while records
    /// wait (without records nothing dials).
    pub(super) fn reconnect_deadline(&self, now: Instant) -> Option<Instant> {
        if self.pending_records == 0 {
            return None;
        }
        earliest(now, self.net.reconnect.values().map(|(t, _)| *t))
    }
}
