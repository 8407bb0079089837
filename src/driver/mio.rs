//! The mio driver: one event loop owning the core and nonblocking sockets.
//!
//! Run it on its own thread ([`Driver::spawn`], [`Driver::run`]) or embed it
//! in an application's `mio::Poll` loop ([`Driver::with_registry`], then
//! [`Driver::handle_event`] for the tokens it [owns](Driver::owns),
//! [`Driver::handle_timeout`], and [`Driver::next_timeout`] as the poll
//! timeout). Other threads send through a [`Handle`], which wakes the loop
//! with a `mio::Waker`. Do not call a handle's blocking methods (`wait`,
//! `flush`, `close`) on the loop's own thread: the loop could not make progress.
//!
//! Names are resolved on short-lived helper threads (IP literals inline), so
//! the loop never blocks on DNS.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::outbox::Outbox;
use super::{queue, Error, LoopSide, Wake};
use crate::producer::{ConnId, ProducerConfig, Transmit};

pub use super::Handle;

/// Bytes one read takes at most.
const READ_CHUNK: usize = 64 * 1024;

/// The only news the loop gets from other threads (its sockets are its
/// own): a name resolved, to these addresses (none when it failed).
struct Resolved(ConnId, Vec<SocketAddr>);

struct MioWaker(Waker);

impl Wake for MioWaker {
    fn wake(&self) {
        if let Err(e) = self.0.wake() {
            log::warn!("cannot wake the producer loop: {e}");
        }
    }
}

/// Where a connection is.
enum State {
    /// Waiting for a helper thread to resolve the host name.
    Resolving,
    /// Nonblocking connect under way; the other addresses to try next.
    Connecting(Vec<SocketAddr>),
    /// Established.
    Connected,
}

struct Conn {
    state: State,
    stream: Option<TcpStream>,
    /// Bytes not yet written.
    out: Outbox,
    /// Whether WRITABLE interest is registered.
    writable: bool,
    /// Bytes of sends taken from the core and not yet written (see
    /// `Direct`): sending threads write to the socket only while it is zero.
    queued: Arc<AtomicUsize>,
}

/// The mio event loop around the producer core.
pub struct Driver {
    side: LoopSide,
    rx: queue::Receiver<Resolved>,
    tx: queue::Sender<Resolved>,
    inbox: VecDeque<Resolved>,
    /// The core's next deadline, as of the last turn.
    deadline: Option<Instant>,
    handle: Handle,
    poll: Option<Poll>,
    registry: Registry,
    base: usize,
    conns: HashMap<ConnId, Conn>,
    out: Vec<Transmit>,
    broken: Vec<ConnId>,
    /// Connections whose queue got bytes since the last `write_queued`.
    to_write: Vec<ConnId>,
    /// Bytes read since the last turn: the first `filled` of `inbuf` (kept
    /// at its longest, so reads need not zero it), each read's connection
    /// and end in `reads`. They go to the core in the turn, as do the
    /// writes in `wrote` (in the turn after them): the loop locks the engine
    /// only for its turns, not besides for each read and write, so senders
    /// wait less for it.
    inbuf: Vec<u8>,
    filled: usize,
    reads: Vec<(ConnId, usize)>,
    wrote: Vec<(ConnId, usize)>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("connections", &self.conns.len())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver with its own `mio::Poll`, to be run with [`Driver::run`].
    pub fn new(config: ProducerConfig) -> Result<Driver, Error> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let mut d = Self::build(config, registry, Token(0))?;
        d.poll = Some(poll);
        Ok(d)
    }

    /// A driver embedded in the application's poll: it registers its waker
    /// at `token_base` and its sockets at the tokens above it (see [`Driver::owns`]).
    /// mio allows one `Waker` per `Poll`: the application must not register its own.
    pub fn with_registry(
        config: ProducerConfig,
        registry: &Registry,
        token_base: Token,
    ) -> Result<Driver, Error> {
        Self::build(config, registry.try_clone()?, token_base)
    }

    fn build(config: ProducerConfig, registry: Registry, base: Token) -> Result<Driver, Error> {
        let waker = Arc::new(MioWaker(Waker::new(&registry, base)?));
        let (side, handle, tx, rx) = LoopSide::new(config, Some(waker))?;
        Ok(Driver {
            tx,
            side,
            rx,
            inbox: VecDeque::new(),
            deadline: None,
            handle,
            poll: None,
            registry,
            base: base.0,
            conns: HashMap::new(),
            out: Vec::new(),
            broken: Vec::new(),
            to_write: Vec::new(),
            inbuf: Vec::new(),
            filled: 0,
            reads: Vec::new(),
            wrote: Vec::new(),
        })
    }

    /// Starts a driver on its own thread; returns its handle and the thread
    /// (which ends once the producer is closed through a handle).
    pub fn spawn(config: ProducerConfig) -> Result<(Handle, JoinHandle<io::Result<()>>), Error> {
        let mut d = Driver::new(config)?;
        let handle = d.handle();
        let t = thread::Builder::new()
            .name("kafka-sansio-mio".into())
            .spawn(move || d.run())?;
        Ok((handle, t))
    }

    /// A handle for sending from any thread.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// True for the tokens this driver registered (`token_base` and above).
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.base
    }

    /// True once the producer is closed (the loop may stop).
    pub fn is_closed(&self) -> bool {
        self.side.finished()
    }

    /// Runs the loop on this thread until the producer is closed; needs a
    /// driver from [`Driver::new`].
    pub fn run(&mut self) -> io::Result<()> {
        let mut poll = self.poll.take().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "an embedded driver is run by the application's poll",
            )
        })?;
        let mut events = Events::with_capacity(256);
        self.drain_channel();
        // One turn of the engine per wake-up: the events' inputs, what is
        // due, and the outputs together.
        self.handle_timeout();
        let res = loop {
            if self.side.finished() {
                break Ok(());
            }
            let timeout = self.next_timeout();
            if let Err(e) = poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    break Err(e);
                }
            }
            for ev in events.iter() {
                self.on_event(ev);
            }
            self.handle_timeout();
        };
        self.poll = Some(poll);
        self.close_all();
        res
    }

    /// Handles one readiness event for a token this driver owns.
    pub fn handle_event(&mut self, event: &mio::event::Event) {
        self.on_event(event);
        self.outputs();
    }

    /// How long the application's poll may sleep before [`Driver::handle_timeout`] is due.
    pub fn next_timeout(&mut self) -> Option<Duration> {
        self.deadline
            .map(|t| t.saturating_duration_since(Instant::now()))
    }

    /// Runs what is due by now (early or repeated calls are harmless).
    pub fn handle_timeout(&mut self) {
        let due = self.deadline.is_some_and(|t| t <= Instant::now());
        self.outputs_with(|core, now| {
            if due {
                core.handle_timeout(now);
            }
        });
    }

    fn on_event(&mut self, ev: &mio::event::Event) {
        let t = ev.token().0;
        if t == self.base {
            self.drain_channel();
            return;
        }
        if t < self.base {
            return;
        }
        let conn = ConnId((t - self.base - 1) as u64);
        let now = Instant::now();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match &mut c.state {
            State::Resolving => {}
            State::Connecting(_) => {
                if ev.is_writable() || ev.is_error() || ev.is_write_closed() {
                    self.check_connect(conn, now);
                }
            }
            State::Connected => {
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    // A closing or failing socket is read to its end;
                    // otherwise a short read means it was drained.
                    let to_end = ev.is_read_closed() || ev.is_error();
                    self.read(conn, to_end);
                }
                if ev.is_writable() && self.conns.contains_key(&conn) {
                    self.write(conn);
                }
            }
        }
    }

    fn token(&self, conn: ConnId) -> Token {
        Token(self.base + 1 + conn.0 as usize)
    }

    /// Takes the IO news and the wake-up (application threads kick the loop
    /// when the core has work; the next `outputs` turn does it).
    fn drain_channel(&mut self) {
        self.rx.drain(&mut self.inbox);
        while let Some(Resolved(conn, addrs)) = self.inbox.pop_front() {
            if let Some(c) = self.conns.get_mut(&conn) {
                if matches!(c.state, State::Resolving) {
                    c.state = State::Connecting(addrs);
                    self.start_connect(conn);
                }
            }
        }
    }

    /// Drains the core's outputs and carries out the transmits.
    fn outputs(&mut self) {
        self.outputs_with(|_, _| {});
    }

    /// A turn of the engine: broken connections and `inputs` go in under the
    /// lock, then the outputs are carried out (repeated while transmits break
    /// connections).
    fn outputs_with(&mut self, inputs: impl FnOnce(&mut crate::producer::Producer, Instant)) {
        let mut inputs = Some(inputs);
        loop {
            let (conns, registry, broken) = (&mut self.conns, &self.registry, &mut self.broken);
            let (inbuf, reads, wrote) = (&self.inbuf, &mut self.reads, &mut self.wrote);
            let inputs = inputs.take();
            self.deadline = self.side.turn(&mut self.out, |core, direct, now| {
                // Writes before reads (an answer follows its request), and
                // both before broken connections go (their last bytes count).
                for (conn, n) in wrote.drain(..) {
                    core.handle_written(conn, n, now);
                }
                let mut start = 0;
                for (conn, end) in reads.drain(..) {
                    core.handle_data(conn, &inbuf[start..end], now);
                    start = end;
                }
                while let Some(conn) = broken.pop() {
                    if remove(conns, registry, conn) {
                        direct.remove(conn);
                        core.handle_disconnected(conn, now);
                    }
                }
                if let Some(f) = inputs {
                    f(core, now);
                }
            });
            let mut out = std::mem::take(&mut self.out);
            for t in out.drain(..) {
                self.transmit(t);
            }
            self.out = out;
            self.filled = 0;
            // Every piece of a request queued: one vectored write per connection.
            self.write_queued();
            // Another turn when transmits broke connections, or to report
            // writes, which may make more output due (acks=0 completions, a
            // request held back until the previous one was written). Senders
            // that give the core work wake the loop themselves.
            if self.broken.is_empty() && self.wrote.is_empty() {
                return;
            }
        }
    }

    fn transmit(&mut self, t: Transmit) {
        match t {
            Transmit::Connect { conn, host, port } => {
                let state = match host.parse::<IpAddr>() {
                    Ok(ip) => State::Connecting(vec![SocketAddr::new(ip, port)]),
                    Err(_) => {
                        let tx = self.tx.clone();
                        let spawned = thread::Builder::new()
                            .name("kafka-sansio-resolve".into())
                            .spawn(move || {
                                let addrs = match (host.as_str(), port).to_socket_addrs() {
                                    Ok(a) => a.collect(),
                                    Err(e) => {
                                        log::warn!("cannot resolve {host}:{port}: {e}");
                                        Vec::new()
                                    }
                                };
                                // The queue rings the waker.
                                let _ = tx.send(Resolved(conn, addrs));
                            });
                        if spawned.is_err() {
                            self.broken.push(conn);
                            return;
                        }
                        State::Resolving
                    }
                };
                let connecting = matches!(state, State::Connecting(_));
                self.conns.insert(
                    conn,
                    Conn {
                        state,
                        stream: None,
                        out: Outbox::default(),
                        writable: false,
                        queued: Arc::new(AtomicUsize::new(0)),
                    },
                );
                if connecting {
                    self.start_connect(conn);
                }
            }
            Transmit::Send { conn, data } => match self.conns.get_mut(&conn) {
                Some(c) if matches!(c.state, State::Connected) => {
                    // Written once the core's outputs are drained (see
                    // `write_queued`), so that the pieces of a request go in
                    // one write. A queue that was not empty is already due
                    // for a write, or waits for WRITABLE.
                    if c.out.is_empty() {
                        self.to_write.push(conn);
                    }
                    c.out.push(data);
                }
                _ => self.broken.push(conn),
            },
            Transmit::Close { conn } => {
                self.remove(conn);
            }
        }
    }

    /// Starts a nonblocking connect to the next address; none left: broken.
    fn start_connect(&mut self, conn: ConnId) {
        let token = self.token(conn);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(mut s) = c.stream.take() {
            let _ = self.registry.deregister(&mut s);
        }
        let State::Connecting(addrs) = &mut c.state else {
            return;
        };
        while !addrs.is_empty() {
            let a = addrs.remove(0);
            match TcpStream::connect(a) {
                Ok(mut s) => {
                    match self.registry.register(
                        &mut s,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        Ok(()) => {
                            c.stream = Some(s);
                            c.writable = true;
                            return;
                        }
                        Err(e) => log::warn!("cannot register a socket: {e}"),
                    }
                }
                Err(e) => log::debug!("connect to {a} failed: {e}"),
            }
        }
        self.broken.push(conn);
    }

    /// A connecting socket became writable (or failed): connected, or try the next address.
    fn check_connect(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(s) = c.stream.as_mut() else { return };
        let failed = match s.take_error() {
            Ok(Some(_)) | Err(_) => true,
            Ok(None) => match s.peer_addr() {
                Ok(_) => false,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return, // not yet
                Err(_) => true,
            },
        };
        if failed {
            self.start_connect(conn);
            return;
        }
        let _ = s.set_nodelay(true);
        let second = second_handle(s);
        let queued = c.queued.clone();
        c.state = State::Connected;
        self.update_interest(conn);
        let mut g = self.side.lock();
        if let Some(stream) = second {
            g.direct.add(conn, stream, queued);
        }
        g.core.handle_connected(conn, now);
    }

    /// Reads what the socket has. Without `to_end`, a read that did not fill
    /// the buffer ends it: the socket was drained then, and data arriving
    /// later raises a new edge, so the read that would say `WouldBlock`
    /// (a syscall per response) is skipped.
    ///
    /// The bytes go to the core in the turn that follows every event.
    fn read(&mut self, conn: ConnId, to_end: bool) {
        loop {
            let Some(s) = self.conns.get_mut(&conn).and_then(|c| c.stream.as_mut()) else {
                return;
            };
            let end = self.filled + READ_CHUNK;
            if self.inbuf.len() < end {
                self.inbuf.resize(end, 0);
            }
            match s.read(&mut self.inbuf[self.filled..end]) {
                Ok(0) => {
                    self.broken.push(conn);
                    return;
                }
                Ok(n) => {
                    self.filled += n;
                    self.reads.push((conn, self.filled));
                    if n < READ_CHUNK && !to_end {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.broken.push(conn);
                    return;
                }
            }
        }
    }

    /// Writes buffered bytes until the socket would block (all pieces of
    /// its requests in vectored writes, see [`Outbox`]), then fixes the interest.
    fn write(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(s) = c.stream.as_mut() else { return };
        let (written, result) = c.out.write_to(s);
        c.queued.fetch_sub(written, Ordering::AcqRel);
        if result.is_err() {
            self.broken.push(conn);
        }
        if written > 0 {
            // Reported in the next turn. Written pieces are dropped by now:
            // the core finds a delivered batch's buffer unshared, and can reuse it.
            self.wrote.push((conn, written));
        }
        self.update_interest(conn);
    }

    /// Writes the connections that got bytes from the core's last outputs:
    /// one write per connection for all the pieces of its requests.
    fn write_queued(&mut self) {
        for conn in std::mem::take(&mut self.to_write) {
            if self.conns.contains_key(&conn) {
                self.write(conn);
            }
        }
    }

    /// WRITABLE interest only while bytes wait to be written.
    fn update_interest(&mut self, conn: ConnId) {
        let token = self.token(conn);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let want = !c.out.is_empty();
        if want == c.writable {
            return;
        }
        let Some(s) = c.stream.as_mut() else { return };
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        match self.registry.reregister(s, token, interest) {
            Ok(()) => c.writable = want,
            Err(_) => self.broken.push(conn),
        }
    }

    fn remove(&mut self, conn: ConnId) -> bool {
        remove(&mut self.conns, &self.registry, conn)
    }

    fn close_all(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.remove(id);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.close_all();
    }
}

/// A second handle on a connected socket, for sending threads' direct
/// writes (nonblocking, like the loop's: they share the socket's flags).
#[cfg(unix)]
fn second_handle(s: &TcpStream) -> Option<std::net::TcpStream> {
    use std::os::fd::AsFd;
    s.as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::net::TcpStream::from)
}

/// Without file descriptors the loop writes everything itself.
#[cfg(not(unix))]
fn second_handle(_: &TcpStream) -> Option<std::net::TcpStream> {
    None
}

/// Deregisters and shuts a connection; false when it was not there.
fn remove(conns: &mut HashMap<ConnId, Conn>, registry: &Registry, conn: ConnId) -> bool {
    match conns.remove(&conn) {
        Some(mut c) => {
            if let Some(s) = c.stream.as_mut() {
                let _ = registry.deregister(s);
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            true
        }
        None => false,
    }
}
