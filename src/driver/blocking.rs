//! The blocking driver: one IO thread runs the core's loop; each connection
//! has a thread that resolves, connects and then reads, and a thread that
//! writes what the socket would not take at once. Application threads append
//! records to the core themselves and wake the IO thread when it has work.
//! (They are one file of about 600 lines because they share one connection
//! table and the rules of its lock.)
//!
//! A reader that finds the loop idle takes the turn itself with the bytes it
//! read (the loop's state is behind a lock that one thread at a time holds
//! for a turn): an answer then costs one thread wake-up, not two, and no
//! copy. A reader that finds the loop busy queues its bytes for the loop.
//! So callbacks run on the IO thread or on a reader thread, never two at
//! once, and in the order of the turns.
//!
//! The IO thread writes a request itself when the connection's writer has
//! nothing queued, with a send timeout of [`DIRECT_WRITE_WAIT`]: a socket
//! that takes it (the usual case) costs no hand-off to another thread;
//! whatever it does not take in that time goes to the writer thread, and so
//! does everything after it until the writer caught up. So neither name
//! resolution, connects nor slow sockets stall the loop for long.
//!
//! ```no_run
//! use kafka_sansio::driver::blocking::Producer;
//! use kafka_sansio::producer::{ProducerConfig, ProducerRecord};
//!
//! let config = ProducerConfig::builder().bootstrap_servers("localhost:9092").build()?;
//! let producer = Producer::new(config)?;
//! let md = producer.send(ProducerRecord::new("events", "hello"))?.wait()?;
//! println!("written at offset {}", md.offset);
//! producer.close(std::time::Duration::from_secs(10))?;
//! # Ok::<(), kafka_sansio::driver::Error>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::direct::Direct;
use super::outbox::{Outbox, WRITE_PIECES};
use super::queue;
use super::{lock, DeliveryFuture, DeliveryResult, Error, Handle, LoopSide, DEFAULT_CLOSE_TIMEOUT};
use crate::producer::{ConnId, Producer as Core, ProducerConfig, ProducerRecord, Transmit};

/// A thread-backed Kafka producer; `Clone` shares it, `Send + Sync`.
/// Dropping the last clone closes it, waiting up to [`DEFAULT_CLOSE_TIMEOUT`].
#[derive(Clone, Debug)]
pub struct Producer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    handle: Handle,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.handle.close(DEFAULT_CLOSE_TIMEOUT);
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

impl Producer {
    /// Validates `config` and starts the IO thread.
    pub fn new(config: ProducerConfig) -> Result<Self, Error> {
        let connect_timeout = config.connect_timeout_max;
        let (side, handle, tx, rx) = LoopSide::new(config, None)?;
        let io = Arc::new_cyclic(|me| Io {
            state: Mutex::new(IoLoop::new(side, tx, connect_timeout, me.clone())),
            rx,
        });
        let thread = thread::Builder::new()
            .name("kafka-sansio-io".into())
            .spawn(move || run(io))?;
        Ok(Producer {
            inner: Arc::new(Inner {
                handle,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Sends a record; see [`Handle::send`].
    pub fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, Error> {
        self.inner.handle.send(record)
    }

    /// Sends a record with a callback run on a driver thread; see [`Handle::send_with_callback`].
    pub fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(DeliveryResult) + Send + 'static,
    ) -> Result<(), Error> {
        self.inner.handle.send_with_callback(record, callback)
    }

    /// Sends a record whose outcome goes to the listener; see [`Handle::send_with_tag`].
    pub fn send_with_tag(&self, record: ProducerRecord, tag: u64) -> Result<(), Error> {
        self.inner.handle.send_with_tag(record, tag)
    }

    /// Sets the listener of tagged records; see [`Handle::on_delivery`].
    pub fn on_delivery(&self, listener: impl Fn(u64, &DeliveryResult) + Send + Sync + 'static) {
        self.inner.handle.on_delivery(listener)
    }

    /// Sends a record without tracking it; see [`Handle::send_and_forget`].
    pub fn send_and_forget(&self, record: ProducerRecord) -> Result<(), Error> {
        self.inner.handle.send_and_forget(record)
    }

    /// Sends without blocking for memory; see [`Handle::try_send`].
    pub fn try_send(&self, record: ProducerRecord) -> Result<DeliveryFuture, Error> {
        self.inner.handle.try_send(record)
    }

    /// Blocks until every record sent before has its outcome; see [`Handle::flush`].
    pub fn flush(&self) -> Result<(), Error> {
        self.inner.handle.flush()
    }

    /// [`Producer::flush`] with a time limit.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.inner.handle.flush_timeout(timeout)
    }

    /// Delivers what was sent (up to `timeout`, then aborts) and stops the IO thread.
    pub fn close(&self, timeout: Duration) -> Result<(), Error> {
        let r = self.inner.handle.close(timeout);
        if let Some(t) = lock(&self.inner.thread).take() {
            let _ = t.join();
        }
        r
    }

    /// True once the producer is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// A snapshot of the core's counters ([`Handle::metrics`]).
    pub fn metrics(&self) -> crate::producer::Metrics {
        self.inner.handle.metrics()
    }

    /// Sets the statistics listener ([`Handle::on_statistics`]).
    #[cfg(feature = "json")]
    pub fn on_statistics(&self, listener: impl Fn(&str) + Send + Sync + 'static) {
        self.inner.handle.on_statistics(listener)
    }

    /// Java's producer metrics now ([`Handle::metrics_snapshot`]).
    pub fn metrics_snapshot(&self) -> Vec<crate::producer::Metric> {
        self.inner.handle.metrics_snapshot()
    }

    /// A [`Handle`] on this producer (it does not keep the producer open).
    pub fn handle(&self) -> Handle {
        self.inner.handle.clone()
    }

    /// See [`Handle::init_transactions`].
    pub fn init_transactions(&self, timeout: Duration) -> Result<(), Error> {
        self.inner.handle.init_transactions(timeout)
    }

    /// See [`Handle::begin_transaction`].
    pub fn begin_transaction(&self) -> Result<(), Error> {
        self.inner.handle.begin_transaction()
    }

    /// See [`Handle::send_offsets_to_transaction`].
    pub fn send_offsets_to_transaction(
        &self,
        offsets: crate::producer::txn::GroupOffsets,
        timeout: Duration,
    ) -> Result<(), Error> {
        self.inner
            .handle
            .send_offsets_to_transaction(offsets, timeout)
    }

    /// See [`Handle::commit_transaction`].
    pub fn commit_transaction(&self, timeout: Duration) -> Result<(), Error> {
        self.inner.handle.commit_transaction(timeout)
    }

    /// See [`Handle::abort_transaction`].
    pub fn abort_transaction(&self, timeout: Duration) -> Result<(), Error> {
        self.inner.handle.abort_transaction(timeout)
    }

    /// See [`Handle::purge`].
    pub fn purge(&self) -> Result<(), Error> {
        self.inner.handle.purge()
    }
}

/// A connection as the IO thread sees it.
struct Conn {
    /// The stream once connected (the loop writes to it, and shuts it down).
    stream: Option<TcpStream>,
    /// Bytes for the writer thread.
    writer: Option<mpsc::Sender<Bytes>>,
    /// Bytes handed to the writer thread and not yet written by it: while
    /// any are, later bytes go to it too (in order).
    backlog: Arc<AtomicUsize>,
    /// Bytes of sends taken from the core and not yet written, by the loop
    /// or the writer thread (see `Direct`): sending threads write to the
    /// socket only while it is zero.
    queued: Arc<AtomicUsize>,
    /// The send timeout is set: the loop may write to the socket itself.
    direct: bool,
    /// Pieces of this turn's requests, written after the turn's transmits.
    out: Outbox,
}

/// IO news from the connection threads.
enum IoMsg {
    /// Connected; the stream to write to.
    Connected(ConnId, TcpStream),
    /// Bytes read.
    Data(ConnId, Vec<u8>),
    /// The writer thread wrote this many bytes.
    Written(ConnId, usize),
    /// Connect failed, or the peer closed, or reading failed.
    Disconnected(ConnId),
}

/// How long the IO thread waits on a socket that takes nothing before it
/// hands the bytes to the connection's writer thread.
pub const DIRECT_WRITE_WAIT: Duration = Duration::from_millis(1);

/// What the IO thread and the reader threads share.
struct Io {
    /// The loop's state: whoever holds it takes a turn.
    state: Mutex<IoLoop>,
    /// IO news from helper threads; drained into the state under its lock,
    /// so that a connection's bytes reach the core in the order read.
    rx: queue::Receiver<IoMsg>,
}

impl Io {
    fn lock(&self) -> MutexGuard<'_, IoLoop> {
        lock(&self.state)
    }
}

struct IoLoop {
    side: LoopSide,
    tx: queue::Sender<IoMsg>,
    /// For the reader threads this loop starts (they take turns too).
    io: Weak<Io>,
    connect_timeout: Duration,
    conns: HashMap<ConnId, Conn>,
    out: Vec<Transmit>,
    inbox: VecDeque<IoMsg>,
    /// Connections that broke while carrying out transmits (reported in the next turn).
    broken: Vec<ConnId>,
    /// Bytes the loop wrote itself (reported in the next turn).
    written: Vec<(ConnId, usize)>,
    /// Connections with pieces in `Conn::out`.
    to_write: Vec<ConnId>,
    /// The core's next deadline, as of the last turn.
    deadline: Option<Instant>,
    /// The IO thread waits until this (`Some(None)`: until woken): a turn
    /// on a reader thread that moves the deadline earlier wakes it.
    io_waits: Option<Option<Instant>>,
    /// The IO thread has ended: nobody takes turns any more.
    stopped: bool,
}

/// The IO thread: turns while there is news, then waits for more.
fn run(io: Arc<Io>) {
    loop {
        let wait = {
            let mut lp = io.lock();
            lp.io_waits = None;
            lp.turns(&io.rx, None);
            if lp.side.finished() {
                lp.stop();
                break;
            }
            lp.io_waits = Some(lp.deadline);
            lp.deadline
        };
        io.rx.wait(wait);
    }
    // Helper threads' sends fail from now on, and they end.
    io.rx.close();
}

/// A reader thread's turn with the bytes it read, when the loop is idle;
/// false when it is not (then the bytes go through the queue).
fn reader_turn(io: &Weak<Io>, conn: ConnId, data: &[u8]) -> bool {
    let Some(io) = io.upgrade() else {
        return false;
    };
    let mut lp = match io.state.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => return false,
    };
    if lp.stopped {
        return false;
    }
    lp.turns(&io.rx, Some((conn, data)));
    // The IO thread sleeps until its own idea of the next deadline, and
    // ends the loop once the core has finished (its `close` joins it).
    if let Some(until) = lp.io_waits {
        let earlier = match (lp.deadline, until) {
            (Some(d), Some(u)) => d < u,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if earlier || lp.side.finished() {
            lp.tx.kick();
        }
    }
    true
}

impl IoLoop {
    fn new(
        side: LoopSide,
        tx: queue::Sender<IoMsg>,
        connect_timeout: Duration,
        io: Weak<Io>,
    ) -> Self {
        IoLoop {
            tx,
            side,
            io,
            connect_timeout,
            conns: HashMap::new(),
            out: Vec::new(),
            inbox: VecDeque::new(),
            broken: Vec::new(),
            written: Vec::new(),
            to_write: Vec::new(),
            deadline: None,
            io_waits: None,
            stopped: false,
        }
    }

    /// Turns until the core has heard everything: the queued news, then
    /// `read` (bytes a reader thread just read: after what its connection
    /// queued before), then what the turn's own writes reported.
    fn turns(&mut self, rx: &queue::Receiver<IoMsg>, read: Option<(ConnId, &[u8])>) {
        let mut read = read;
        loop {
            // Everything queued at once, applied under one lock, then the
            // outputs, carried out after the lock is released.
            rx.drain(&mut self.inbox);
            let due = self.deadline;
            let read = read.take();
            let (conns, inbox, broken, written, tx) = (
                &mut self.conns,
                &mut self.inbox,
                &mut self.broken,
                &mut self.written,
                &self.tx,
            );
            self.deadline = self.side.turn(&mut self.out, |core, direct, now| {
                for conn in broken.drain(..) {
                    direct.remove(conn);
                    core.handle_disconnected(conn, now);
                }
                for (conn, n) in written.drain(..) {
                    core.handle_written(conn, n, now);
                }
                while let Some(m) = inbox.pop_front() {
                    handle(conns, tx, core, direct, m, now);
                }
                if let Some((conn, data)) = read {
                    if conns.contains_key(&conn) {
                        core.handle_data(conn, data, now);
                    }
                }
                if due.is_some_and(|d| now >= d) {
                    core.handle_timeout(now);
                }
            });
            let mut out = std::mem::take(&mut self.out);
            for t in out.drain(..) {
                self.transmit(t);
            }
            self.out = out;
            self.write_queued();
            // Another turn: the core hears of broken connections and of
            // what was written (which may let more out).
            if self.broken.is_empty() && self.written.is_empty() {
                break;
            }
        }
    }

    /// Ends the loop: its connections are shut (their threads end).
    fn stop(&mut self) {
        self.stopped = true;
        for (_, c) in self.conns.drain() {
            if let Some(s) = c.stream {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    fn transmit(&mut self, t: Transmit) {
        match t {
            Transmit::Connect { conn, host, port } => {
                let tx = self.tx.clone();
                let io = self.io.clone();
                let timeout = self.connect_timeout;
                let spawned = thread::Builder::new()
                    .name(format!("kafka-sansio-conn-{}", conn.0))
                    .spawn(move || connect_and_read(conn, host, port, timeout, tx, io));
                match spawned {
                    Ok(_) => {
                        self.conns.insert(
                            conn,
                            Conn {
                                stream: None,
                                writer: None,
                                backlog: Arc::new(AtomicUsize::new(0)),
                                queued: Arc::new(AtomicUsize::new(0)),
                                direct: false,
                                out: Outbox::default(),
                            },
                        );
                    }
                    Err(e) => {
                        log::warn!("cannot start a connection thread: {e}");
                        self.broken.push(conn);
                    }
                }
            }
            Transmit::Send { conn, data } => match self.conns.get_mut(&conn) {
                Some(c) if c.writer.is_some() => {
                    // Written once every transmit of the turn is in: all
                    // pieces of a request in one vectored write.
                    if c.out.is_empty() {
                        self.to_write.push(conn);
                    }
                    c.out.push(data);
                }
                _ => {
                    if self.drop_conn(conn) {
                        self.broken.push(conn);
                    }
                }
            },
            Transmit::Close { conn } => {
                self.drop_conn(conn);
            }
        }
    }

    /// Writes the turn's pieces: directly when the writer thread has nothing
    /// queued and the socket takes them within [`DIRECT_WRITE_WAIT`]; what
    /// is left goes to the writer thread.
    fn write_queued(&mut self) {
        for conn in std::mem::take(&mut self.to_write) {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            let mut done = 0;
            if c.direct && c.backlog.load(Ordering::Acquire) == 0 {
                if let Some(s) = c.stream.as_ref() {
                    let (n, result) = c.out.write_to(&mut &*s);
                    if let Err(e) = result {
                        log::debug!("connection {conn:?}: write failed: {e}");
                        if self.drop_conn(conn) {
                            self.broken.push(conn);
                        }
                        continue;
                    }
                    done = n;
                    c.queued.fetch_sub(n, Ordering::AcqRel);
                }
            }
            if done > 0 {
                self.written.push((conn, done));
            }
            let rest = c.out.bytes();
            if rest > 0 {
                c.backlog.fetch_add(rest, Ordering::AcqRel);
                let handed = c
                    .writer
                    .as_ref()
                    .is_some_and(|w| c.out.take().all(|p| w.send(p).is_ok()));
                if !handed && self.drop_conn(conn) {
                    self.broken.push(conn);
                }
            }
        }
    }

    fn drop_conn(&mut self, conn: ConnId) -> bool {
        match self.conns.remove(&conn) {
            Some(c) => {
                if let Some(s) = c.stream {
                    let _ = s.shutdown(Shutdown::Both);
                }
                true
            }
            None => false,
        }
    }
}

/// Applies one piece of IO news to the core (under the lock).
fn handle(
    conns: &mut HashMap<ConnId, Conn>,
    tx: &queue::Sender<IoMsg>,
    core: &mut Core,
    direct: &mut Direct,
    m: IoMsg,
    now: Instant,
) {
    match m {
        IoMsg::Connected(conn, stream) => {
            let Some(c) = conns.get_mut(&conn) else {
                // The core gave up on this connect meanwhile.
                let _ = stream.shutdown(Shutdown::Both);
                return;
            };
            let (wtx, wrx) = mpsc::channel::<Bytes>();
            let ws = match stream.try_clone() {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("connection {conn:?}: {e}");
                    let _ = stream.shutdown(Shutdown::Both);
                    conns.remove(&conn);
                    core.handle_disconnected(conn, now);
                    return;
                }
            };
            let written_tx = tx.clone();
            let counts = (c.backlog.clone(), c.queued.clone());
            let spawned = thread::Builder::new()
                .name(format!("kafka-sansio-write-{}", conn.0))
                .spawn(move || write_loop(conn, ws, wrx, counts, written_tx));
            if spawned.is_err() {
                let _ = stream.shutdown(Shutdown::Both);
                conns.remove(&conn);
                core.handle_disconnected(conn, now);
                return;
            }
            // Without a send timeout a direct write could block the loop:
            // then every byte goes through the writer thread.
            c.direct = stream.set_write_timeout(Some(DIRECT_WRITE_WAIT)).is_ok();
            // Sending threads write under the engine's lock: only with the
            // send timeout, which bounds how long they can hold it.
            if c.direct {
                if let Ok(second) = stream.try_clone() {
                    direct.add(conn, second, c.queued.clone());
                }
            }
            c.stream = Some(stream);
            c.writer = Some(wtx);
            core.handle_connected(conn, now);
        }
        IoMsg::Data(conn, data) => {
            if conns.contains_key(&conn) {
                core.handle_data(conn, &data, now);
            }
        }
        IoMsg::Written(conn, n) => {
            if conns.contains_key(&conn) {
                core.handle_written(conn, n, now);
            }
        }
        IoMsg::Disconnected(conn) => {
            if let Some(c) = conns.remove(&conn) {
                if let Some(s) = c.stream {
                    let _ = s.shutdown(Shutdown::Both);
                }
                direct.remove(conn);
                core.handle_disconnected(conn, now);
            }
        }
    }
}

/// Connection thread: resolve, connect (each address in turn), then read
/// until EOF or error, taking the loop's turn with what it read when the
/// loop is idle.
fn connect_and_read(
    conn: ConnId,
    host: String,
    port: u16,
    timeout: Duration,
    tx: queue::Sender<IoMsg>,
    io: Weak<Io>,
) {
    let addrs = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            log::warn!("cannot resolve {host}:{port}: {e}");
            let _ = tx.send(IoMsg::Disconnected(conn));
            return;
        }
    };
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => log::debug!("connect to {a} ({host}:{port}) failed: {e}"),
        }
    }
    let Some(mut stream) = stream else {
        let _ = tx.send(IoMsg::Disconnected(conn));
        return;
    };
    let _ = stream.set_nodelay(true);
    let Ok(clone) = stream.try_clone() else {
        let _ = tx.send(IoMsg::Disconnected(conn));
        return;
    };
    if tx.send(IoMsg::Connected(conn, clone)).is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !reader_turn(&io, conn, &buf[..n])
                    && tx.send(IoMsg::Data(conn, buf[..n].to_vec())).is_err()
                {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = tx.send(IoMsg::Disconnected(conn));
}

/// Past this many bytes a vectored write takes no further pieces, so that
/// `Written` reports keep coming while a lot is queued.
const WRITE_BYTES: usize = 4 << 20;

/// Writer thread: writes queued bytes in order and tells the loop what was
/// written (acks=0 records complete then, and the core bounds what waits
/// here by it); on error shuts the socket so the reader reports it.
///
/// Pieces already queued behind the one waited for go out in the same
/// `write_vectored`: a Produce request comes as several pieces (the encoded
/// bytes around each batch, and the batches themselves), which would
/// otherwise cost a syscall each.
fn write_loop(
    conn: ConnId,
    mut stream: TcpStream,
    rx: mpsc::Receiver<Bytes>,
    (backlog, queued): (Arc<AtomicUsize>, Arc<AtomicUsize>),
    tx: queue::Sender<IoMsg>,
) {
    let mut out = Outbox::default();
    while let Ok(first) = rx.recv() {
        let mut total = first.len();
        out.push(first);
        while out.pieces() < WRITE_PIECES && total < WRITE_BYTES {
            match rx.try_recv() {
                Ok(more) => {
                    total += more.len();
                    out.push(more);
                }
                Err(_) => break,
            }
        }
        // The socket's send timeout (set for the loop's direct writes)
        // running out is a full socket: this thread waits on it.
        while !out.is_empty() {
            if out.write_to(&mut stream).1.is_err() {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
        // Written pieces are dropped before reporting: the core finds a
        // delivered batch's buffer unshared then, and can reuse it.
        backlog.fetch_sub(total, Ordering::AcqRel);
        queued.fetch_sub(total, Ordering::AcqRel);
        if tx.send(IoMsg::Written(conn, total)).is_err() {
            return;
        }
    }
}
