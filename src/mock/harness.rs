//! [`Pair`]: the sans-IO producer core and a broker wired together over a
//! simulated network and clock, the one harness the tests, the fuzz target
//! and users testing their own code drive the core with (in the spirit of
//! quinn-proto's `Pair`).
//!
//! The network is a set of per-connection queues: request bytes go through
//! a deframer to the [`Broker`], its answers wait in order until they are
//! due (the broker's latency plus the pair's own), then reach the core.
//! Faults are the pair's methods: stalled writes, lost answers, refused
//! connects and disconnects; an adversarial test can also hold connects and
//! answers back and release them piece by piece ([`Pair::hold_network`]).
//! Time passes only when the caller says so ([`Pair::advance`]) or when
//! [`Pair::run_until`] jumps to the next deadline.
//!
//! The pair holds the core to the driver contract and panics when the core
//! breaks it: a connection id used twice, a send before the connect
//! succeeded or after the core closed the connection, a second close.
//!
//! TLS (feature `tls`): when the broker's listener runs TLS
//! ([`Broker::tls`], [`MockCluster::set_tls`]) each link has a rustls server
//! session between the core's ciphertext and the deframer; handshake records
//! and encrypted answers queue as answers do. On such a link
//! [`Pair::lose_answers`] breaks the TLS stream (the core sees a TLS error),
//! as losing bytes inside a TCP stream would.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::cluster::{HandleResult, MockCluster};
use crate::producer::{ConnId, Event, Producer, Transmit};
use crate::protocol::error::ProtocolError;
use crate::protocol::frame::Deframer;

/// Largest request frame the pair's deframers accept unless the broker says otherwise.
const MAX_FRAME: usize = 1 << 30;

/// The other end of a [`Pair`]: answers the request frames the core writes.
pub trait Broker {
    /// The broker node listening at `host:port`; `None` refuses the connection.
    fn node(&self, host: &str, port: u16) -> Option<i32>;

    /// Answers one request frame (without its size prefix) that came to
    /// `node` on `conn`; `None` leaves the answer to the test (see [`Scripted`]).
    fn handle_request(
        &mut self,
        conn: ConnId,
        node: i32,
        frame: Bytes,
        now: Instant,
    ) -> Option<HandleResult>;

    /// `conn` is gone (closed by either side); its unanswered requests with it.
    fn closed(&mut self, conn: ConnId) {
        let _ = conn;
    }

    /// The largest request frame the broker reads; a larger size prefix
    /// closes the connection (Kafka's `socket.request.max.bytes`).
    fn max_request_size(&self) -> usize {
        MAX_FRAME
    }

    /// The TLS listener of `node`, if its connections run TLS (feature `tls`).
    #[cfg(feature = "tls")]
    fn tls(&self, node: i32) -> Option<super::tls::MockTls> {
        let _ = node;
        None
    }
}

impl Broker for MockCluster {
    fn node(&self, host: &str, port: u16) -> Option<i32> {
        (0..self.broker_count() as i32)
            .find(|&n| !self.is_broker_down(n) && self.broker_address(n) == Some((host, port)))
    }

    fn handle_request(
        &mut self,
        conn: ConnId,
        node: i32,
        frame: Bytes,
        now: Instant,
    ) -> Option<HandleResult> {
        Some(self.handle_connection_request(conn.0, node, frame, now))
    }

    fn closed(&mut self, conn: ConnId) {
        self.connection_closed(conn.0);
    }

    fn max_request_size(&self) -> usize {
        // Kafka's socket.request.max.bytes default, as MockServer reads.
        crate::protocol::frame::DEFAULT_MAX_FRAME
    }

    #[cfg(feature = "tls")]
    fn tls(&self, _node: i32) -> Option<super::tls::MockTls> {
        MockCluster::tls(self).cloned()
    }
}

/// A broker that answers nothing by itself: every request waits for the test,
/// which takes it with [`Scripted::next_request`] and answers it with
/// [`Pair::deliver`]. Every address is accepted (node ids are not known).
#[derive(Debug, Clone, Default)]
pub struct Scripted {
    requests: BTreeMap<ConnId, VecDeque<Bytes>>,
}

impl Scripted {
    /// A scripted broker with no requests waiting.
    pub fn new() -> Scripted {
        Scripted::default()
    }

    /// The oldest unanswered request frame of the lowest connection id that has one.
    pub fn next_request(&mut self) -> Option<(ConnId, Bytes)> {
        self.requests
            .iter_mut()
            .find_map(|(conn, q)| q.pop_front().map(|f| (*conn, f)))
    }
}

impl Broker for Scripted {
    fn node(&self, _host: &str, _port: u16) -> Option<i32> {
        Some(-1)
    }

    fn handle_request(
        &mut self,
        conn: ConnId,
        _node: i32,
        frame: Bytes,
        _now: Instant,
    ) -> Option<HandleResult> {
        self.requests.entry(conn).or_default().push_back(frame);
        None
    }

    fn closed(&mut self, conn: ConnId) {
        self.requests.remove(&conn);
    }
}

/// One connection of the simulated network, asked for or open.
#[derive(Debug)]
struct Link {
    host: String,
    port: u16,
    node: i32,
    /// The connect has not been answered yet (held by [`Pair::hold_network`]).
    connecting: bool,
    requests: Deframer,
    /// Answers not yet handed to the core, in order, with when each is due
    /// (the front one may be partly delivered).
    answers: VecDeque<(Instant, Bytes)>,
    /// The broker closes the connection once its answers are delivered, not before this.
    close_at: Option<Instant>,
    /// Bytes sent while writes were stalled, not yet reported written.
    unwritten: usize,
    /// The broker's TLS session on this connection, when its listener runs TLS.
    #[cfg(feature = "tls")]
    tls: Option<rustls::ServerConnection>,
}

impl Link {
    /// An answer as it goes on the wire: encrypted when the link runs TLS.
    fn seal(&mut self, bytes: Bytes) -> Bytes {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            use std::io::Write;
            // rustls buffers plaintext without limit until it is written out.
            let _ = tls.writer().write_all(&bytes);
            return Bytes::from(super::tls::ciphertext_out(tls));
        }
        bytes
    }

    /// When the next thing on this link falls due: its first answer, else the broker's close.
    fn next_due(&self) -> Option<Instant> {
        self.answers.front().map_or(self.close_at, |a| Some(a.0))
    }

    /// The first answer, if it is due at `now`.
    fn pop_due(&mut self, now: Instant) -> Option<Bytes> {
        if self.answers.front()?.0 <= now {
            self.answers.pop_front().map(|a| a.1)
        } else {
            None
        }
    }
}

/// The core and a broker over a simulated network and clock.
///
/// ```
/// use std::time::Instant;
/// use kafka_sansio::mock::{MockCluster, Pair};
/// use kafka_sansio::producer::{Event, Producer, ProducerConfig, ProducerRecord};
///
/// let now = Instant::now();
/// let config = ProducerConfig::builder().bootstrap_servers("localhost:9092").build()?;
/// let producer = Producer::new(config, now, 1_700_000_000_000)?;
/// let mut pair = Pair::new(producer, MockCluster::new(1), now);
/// pair.producer.send(ProducerRecord::new("greetings", "hello"), pair.now)?;
/// // Connects, metadata, producer id, linger: time jumps from deadline to deadline.
/// assert!(pair.run_until(|p| p.producer.is_idle()));
/// assert!(matches!(pair.events[..], [Event::Delivered(_)]));
/// assert_eq!(pair.broker.records("greetings", 0)?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pair<B: Broker = MockCluster> {
    /// The core under test.
    pub producer: Producer,
    /// The broker it talks to.
    pub broker: B,
    /// The simulated clock: every call into the core is made at this instant.
    pub now: Instant,
    /// Every event the core emitted, in order (take them with `std::mem::take`).
    pub events: Vec<Event>,
    links: BTreeMap<ConnId, Link>,
    /// Connections the pair broke or refused: outputs queued before the core
    /// heard of it may still name them, and are ignored as a driver would.
    dropped: BTreeSet<ConnId>,
    latency: Duration,
    stalled: bool,
    held: bool,
    transcript: Option<Vec<(ConnId, Bytes)>>,
    dialed: Vec<(String, u16)>,
    closed: Vec<ConnId>,
    meter: Option<fn(bool)>,
}

impl<B: Broker> Pair<B> {
    /// Wires `producer` to `broker`, the clock at `now`.
    pub fn new(producer: Producer, broker: B, now: Instant) -> Pair<B> {
        Pair {
            producer,
            broker,
            now,
            events: Vec::new(),
            links: BTreeMap::new(),
            dropped: BTreeSet::new(),
            latency: Duration::ZERO,
            stalled: false,
            held: false,
            transcript: None,
            dialed: Vec::new(),
            closed: Vec::new(),
            meter: None,
        }
    }

    /// Calls `f` with the core and the clock, between the meter's `true` and `false`.
    pub fn core<R>(&mut self, f: impl FnOnce(&mut Producer, Instant) -> R) -> R {
        let now = self.now;
        if let Some(m) = self.meter {
            m(true);
        }
        let r = f(&mut self.producer, now);
        if let Some(m) = self.meter {
            m(false);
        }
        r
    }

    /// Calls `meter(true)` before and `meter(false)` after every call into
    /// the core, so that a test can measure the core alone (its allocations).
    pub fn set_meter(&mut self, meter: fn(bool)) {
        self.meter = Some(meter);
    }

    /// Delays every answer by `latency` on top of the broker's own.
    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = latency;
    }

    /// Stalls the sockets: sends are carried but not reported written
    /// until [`Pair::release_writes`] (a full socket buffer).
    pub fn stall_writes(&mut self, stalled: bool) {
        self.stalled = stalled;
    }

    /// Reports every byte held back by [`Pair::stall_writes`] as written.
    pub fn release_writes(&mut self) {
        let held: Vec<(ConnId, usize)> = self
            .links
            .iter_mut()
            .map(|(c, l)| (*c, std::mem::take(&mut l.unwritten)))
            .filter(|(_, n)| *n > 0)
            .collect();
        for (conn, n) in held {
            self.core(|p, now| p.handle_written(conn, n, now));
        }
    }

    /// Holds the network back (true) for an adversarial test: connects wait
    /// for [`Pair::answer_connect`], answers for [`Pair::deliver_answers`];
    /// nothing is connected or delivered by [`Pair::step`].
    pub fn hold_network(&mut self, held: bool) {
        self.held = held;
    }

    /// The connections whose connect is held back, in id order.
    pub fn connecting(&self) -> Vec<ConnId> {
        self.links
            .iter()
            .filter(|(_, l)| l.connecting)
            .map(|(c, _)| *c)
            .collect()
    }

    /// The open connections with answers (or the broker's close) waiting, in id order.
    pub fn deliverable(&self) -> Vec<ConnId> {
        self.links
            .iter()
            .filter(|(_, l)| !l.connecting && (!l.answers.is_empty() || l.close_at.is_some()))
            .map(|(c, _)| *c)
            .collect()
    }

    /// Answers the held connect of `conn`: connected, or refused when its
    /// broker is down now.
    pub fn answer_connect(&mut self, conn: ConnId) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        if let Some(node) = self.broker.node(&link.host, link.port) {
            link.node = node;
            link.connecting = false;
            #[cfg(feature = "tls")]
            {
                link.tls = self.broker.tls(node).map(|t| match t.session() {
                    Ok(s) => s,
                    Err(e) => panic!("the mock's TLS configuration makes no session: {e}"),
                });
            }
            self.core(|p, now| p.handle_connected(conn, now));
        } else {
            self.drop_link(conn);
        }
    }

    /// Answers the core has not had in full on `conn` (an answer partly
    /// delivered counts until its last byte is).
    pub fn answers_in_flight(&self, conn: ConnId) -> usize {
        self.links.get(&conn).map_or(0, |l| l.answers.len())
    }

    /// Hands the core up to `n` bytes of the answers waiting on `conn`, due
    /// or not, in one read (pieces of several answers, or part of one); when
    /// none are left and the broker asked, closes the connection.
    pub fn deliver_answers(&mut self, conn: ConnId, n: usize) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        let mut piece = BytesMut::new();
        while piece.len() < n {
            let Some((_, front)) = link.answers.front_mut() else {
                break;
            };
            let take = (n - piece.len()).min(front.len());
            piece.extend_from_slice(&front.split_to(take));
            if front.is_empty() {
                link.answers.pop_front();
            }
        }
        if !piece.is_empty() {
            self.core(|p, now| p.handle_data(conn, &piece, now));
        }
        // The core may have closed it while reading.
        if let Some(link) = self.links.get(&conn) {
            if link.answers.is_empty() && link.close_at.is_some() {
                self.drop_link(conn);
            }
        }
    }

    /// Keeps a copy of every `Transmit::Send` from now on (see [`Pair::sent`]);
    /// the copies hold the batch buffers, which the core then cannot reuse.
    pub fn record_sends(&mut self) {
        self.transcript = Some(Vec::new());
    }

    /// The sends recorded since [`Pair::record_sends`] (called again, it starts over), in order.
    pub fn sent(&self) -> &[(ConnId, Bytes)] {
        self.transcript.as_deref().unwrap_or(&[])
    }

    /// The ports of every connection the core asked for, in order.
    pub fn connects(&self) -> Vec<u16> {
        self.dialed.iter().map(|a| a.1).collect()
    }

    /// The addresses of every connection the core asked for, in order.
    pub fn dialed(&self) -> &[(String, u16)] {
        &self.dialed
    }

    /// The connections the core closed, in order.
    pub fn closed(&self) -> &[ConnId] {
        &self.closed
    }

    /// The open connections and their ports, in id order.
    pub fn connections(&self) -> impl Iterator<Item = (ConnId, u16)> + '_ {
        self.links
            .iter()
            .filter(|(_, l)| !l.connecting)
            .map(|(c, l)| (*c, l.port))
    }

    /// The port of open connection `conn`.
    pub fn port(&self, conn: ConnId) -> Option<u16> {
        self.links.get(&conn).map(|l| l.port)
    }

    /// Hands `data` to the core as bytes received on `conn` (a scripted
    /// answer, garbage, or one piece of either), then runs until idle.
    pub fn deliver(&mut self, conn: ConnId, data: &[u8]) {
        self.core(|p, now| p.handle_data(conn, data, now));
        self.run_until_idle();
    }

    /// Breaks `conn` (a reset or a broker gone): its answers in flight are lost.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.drop_link(conn);
        self.run_until_idle();
    }

    /// Forgets `conn` on the network side and tells the core it is gone.
    fn drop_link(&mut self, conn: ConnId) {
        if self.links.remove(&conn).is_some() {
            self.broker.closed(conn);
        }
        self.dropped.insert(conn);
        self.core(|p, now| p.handle_disconnected(conn, now));
    }

    /// Loses the answers not yet delivered on `conn` (the requests were
    /// handled; their answers never come); returns how many.
    pub fn lose_answers(&mut self, conn: ConnId) -> usize {
        self.links.get_mut(&conn).map_or(0, |l| {
            let n = l.answers.len();
            l.answers.clear();
            n
        })
    }

    /// Moves the clock by `d`, fires the core's timers and runs until idle.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.core(|p, now| p.handle_timeout(now));
        self.run_until_idle();
    }

    /// One turn at the current instant: carries out the core's transmits,
    /// collects its events, hands the broker's due answers back. Returns
    /// whether anything happened.
    pub fn step(&mut self) -> bool {
        let mut progressed = false;
        while let Some(t) = self.core(|p, now| p.poll_transmit(now)) {
            progressed = true;
            self.transmit(t);
        }
        while let Some(e) = self.core(|p, _| p.poll_event()) {
            progressed = true;
            self.events.push(e);
        }
        if self.held {
            return progressed;
        }
        let now = self.now;
        let due: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| l.next_due().is_some_and(|t| t <= now))
            .map(|(c, _)| *c)
            .collect();
        for conn in due {
            progressed = true;
            while let Some(bytes) = self.links.get_mut(&conn).and_then(|l| l.pop_due(now)) {
                self.core(|p, now| p.handle_data(conn, &bytes, now));
            }
            if let Some(link) = self.links.get(&conn) {
                if link.answers.is_empty() && link.close_at.is_some_and(|t| t <= now) {
                    self.drop_link(conn);
                }
            }
        }
        progressed
    }

    /// Steps until nothing happens at the current instant.
    pub fn run_until_idle(&mut self) {
        while self.step() {}
    }

    /// Runs until `cond` holds, time jumping to the next deadline (the
    /// core's timer or an answer falling due) whenever nothing is left to do
    /// now. Returns `false` when nothing is left at all, or after a million
    /// jumps, without `cond` holding.
    pub fn run_until(&mut self, mut cond: impl FnMut(&mut Pair<B>) -> bool) -> bool {
        for _ in 0..1_000_000 {
            self.run_until_idle();
            if cond(self) {
                return true;
            }
            let answer = self.links.values().filter_map(Link::next_due).min();
            let timer = self.core(|p, _| p.poll_timeout());
            let Some(next) = [answer, timer].into_iter().flatten().min() else {
                return false;
            };
            self.now = self.now.max(next);
            self.core(|p, now| p.handle_timeout(now));
        }
        false
    }

    fn transmit(&mut self, t: Transmit) {
        match t {
            Transmit::Connect { conn, host, port } => {
                assert!(
                    !self.links.contains_key(&conn)
                        && !self.dropped.contains(&conn)
                        && !self.closed.contains(&conn),
                    "connection id {conn:?} used twice"
                );
                self.dialed.push((host.clone(), port));
                match self.broker.node(&host, port) {
                    Some(node) => {
                        self.links.insert(
                            conn,
                            Link {
                                host,
                                port,
                                node,
                                connecting: true,
                                requests: Deframer::new(self.broker.max_request_size()),
                                answers: VecDeque::new(),
                                close_at: None,
                                unwritten: 0,
                                #[cfg(feature = "tls")]
                                tls: None,
                            },
                        );
                        if !self.held {
                            self.answer_connect(conn);
                        }
                    }
                    None if self.held => {
                        // Refused, but only once the test answers the connect.
                        self.links.insert(
                            conn,
                            Link {
                                host,
                                port,
                                node: -1,
                                connecting: true,
                                requests: Deframer::new(self.broker.max_request_size()),
                                answers: VecDeque::new(),
                                close_at: None,
                                unwritten: 0,
                                #[cfg(feature = "tls")]
                                tls: None,
                            },
                        );
                    }
                    None => self.drop_link(conn),
                }
            }
            Transmit::Send { conn, data } => {
                assert!(
                    !self.closed.contains(&conn),
                    "a send on {conn:?} after its close"
                );
                if self.dropped.contains(&conn) {
                    return;
                }
                let Some(link) = self.links.get_mut(&conn) else {
                    panic!("a send on {conn:?}, which the core never asked for");
                };
                assert!(!link.connecting, "a send on {conn:?} before it connected");
                // A request may come in several sends (a Produce request's
                // batches are buffers of their own): the deframer joins them.
                #[cfg(feature = "tls")]
                if let Some(tls) = &mut link.tls {
                    let mut plain = Vec::new();
                    let r = super::tls::ciphertext_in(tls, &data, &mut plain);
                    link.requests.push(&plain);
                    // Handshake records and alerts travel like answers.
                    let out = super::tls::ciphertext_out(tls);
                    let due = self.now + self.latency;
                    if !out.is_empty() {
                        link.answers.push_back((due, Bytes::from(out)));
                    }
                    if !matches!(r, Ok(false)) && link.close_at.is_none() {
                        link.close_at = Some(due);
                    }
                } else {
                    link.requests.push(&data);
                }
                #[cfg(not(feature = "tls"))]
                link.requests.push(&data);
                let n = data.len();
                if let Some(t) = &mut self.transcript {
                    t.push((conn, data));
                } else {
                    // Dropped as a driver drops what it wrote, so that the
                    // core can reuse a batch's buffer once it is answered.
                    drop(data);
                }
                if self.stalled {
                    link.unwritten += n;
                } else {
                    self.core(|p, now| p.handle_written(conn, n, now));
                }
                self.carry_requests(conn);
            }
            Transmit::Close { conn } => {
                assert!(!self.closed.contains(&conn), "a second close of {conn:?}");
                let known = self.links.remove(&conn).is_some();
                assert!(
                    known || self.dropped.contains(&conn),
                    "a close of {conn:?}, which the core never asked for"
                );
                if known {
                    self.broker.closed(conn);
                }
                self.closed.push(conn);
            }
        }
    }

    /// Hands the whole request frames of `conn` to the broker, queueing its answers.
    fn carry_requests(&mut self, conn: ConnId) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        let node = link.node;
        if link.close_at.is_some() {
            // The broker hung up: what the core sends now goes nowhere.
            return;
        }
        let mut frames = Vec::new();
        loop {
            match link.requests.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                // Not the core's frame: e.g. a TLS hello to a plaintext
                // listener, whose first bytes read as a huge size.
                Err(ProtocolError::FrameTooLarge { size, max }) => {
                    log::debug!(
                        "pair: a {size}-byte request frame on {conn:?} (max {max}): closed"
                    );
                    link.close_at = Some(self.now + self.latency);
                    break;
                }
                Err(e) => panic!("the core writes well-formed frames: {e}"),
            }
        }
        for frame in frames {
            let Some(r) = self.broker.handle_request(conn, node, frame, self.now) else {
                continue;
            };
            let due = r.due.max(self.now) + self.latency;
            let Some(link) = self.links.get_mut(&conn) else {
                return;
            };
            if let Some(bytes) = r.response {
                let bytes = link.seal(bytes);
                link.answers.push_back((due, bytes));
            }
            if r.close {
                #[cfg(feature = "tls")]
                if let Some(tls) = &mut link.tls {
                    tls.send_close_notify();
                    let out = super::tls::ciphertext_out(tls);
                    link.answers.push_back((due, Bytes::from(out)));
                }
                link.close_at = Some(due);
                return;
            }
        }
    }
}
