//! [`MockServer`]: a [`MockCluster`] behind loopback TCP, one listener per
//! broker, on std threads (one acceptor polling the listeners, one thread per
//! connection).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::cluster::{MockCluster, MockConfig};
use crate::protocol::frame::{Deframer, DEFAULT_MAX_FRAME};

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(20);

struct Conn {
    node: i32,
    stream: TcpStream,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    cluster: Mutex<MockCluster>,
    conns: Mutex<Vec<Conn>>,
    stop: AtomicBool,
    /// The id of the next accepted connection (the cluster keeps per-connection state by it).
    next_conn: AtomicU64,
}

impl Shared {
    fn cluster(&self) -> MutexGuard<'_, MockCluster> {
        // A panicking test thread must not take the whole mock down with it.
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn conns(&self) -> MutexGuard<'_, Vec<Conn>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A mock Kafka cluster listening on 127.0.0.1, one port per broker.
///
/// Dropping it (or [`MockServer::shutdown`]) stops its threads and closes
/// every socket.
pub struct MockServer {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl MockServer {
    /// Starts `brokers` brokers on kernel-chosen ports with default settings.
    pub fn start(brokers: usize) -> io::Result<MockServer> {
        MockServer::start_with(
            MockConfig {
                brokers,
                ..MockConfig::default()
            },
            None,
        )
    }

    /// Starts a cluster with `config`; broker `i` listens on
    /// `127.0.0.1:(base_port + i)`, or on a kernel-chosen port when `base_port` is `None`.
    pub fn start_with(config: MockConfig, base_port: Option<u16>) -> io::Result<MockServer> {
        let mut cluster = MockCluster::with_config(config);
        let mut listeners = Vec::with_capacity(cluster.broker_count());
        let mut addrs = Vec::with_capacity(cluster.broker_count());
        for i in 0..cluster.broker_count() {
            let port = match base_port {
                Some(b) => b.checked_add(i as u16).ok_or_else(|| {
                    io::Error::new(ErrorKind::InvalidInput, "base port + brokers exceeds 65535")
                })?,
                None => 0,
            };
            let l = TcpListener::bind(("127.0.0.1", port))?;
            l.set_nonblocking(true)?;
            let addr = l.local_addr()?;
            cluster.set_broker_address(i as i32, "127.0.0.1", addr.port());
            addrs.push(addr);
            listeners.push(l);
        }
        let shared = Arc::new(Shared {
            cluster: Mutex::new(cluster),
            conns: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            next_conn: AtomicU64::new(0),
        });
        let s = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("mock-kafka-accept".into())
            .spawn(move || accept_loop(s, listeners))?;
        Ok(MockServer {
            shared,
            addrs,
            acceptor: Some(acceptor),
        })
    }

    /// `bootstrap.servers` for a client: "127.0.0.1:p0,127.0.0.1:p1,...".
    pub fn bootstrap_servers(&self) -> String {
        self.addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The listening address of each broker, by node id.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Locks the cluster for faults and reads. Do not hold the guard across a
    /// client call that waits for the mock: it blocks every broker.
    pub fn cluster(&self) -> MutexGuard<'_, MockCluster> {
        self.shared.cluster()
    }

    /// Runs `f` with the cluster locked.
    pub fn with_cluster<R>(&self, f: impl FnOnce(&mut MockCluster) -> R) -> R {
        f(&mut self.shared.cluster())
    }

    /// Closes every open client connection of broker `node` (clients see a disconnect).
    pub fn drop_connections(&self, node: i32) {
        for c in self.shared.conns().iter().filter(|c| c.node == node) {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
    }

    /// Takes a broker down (closing its connections; new ones are closed on
    /// accept) or brings it back up.
    pub fn set_broker_down(&self, node: i32, down: bool) {
        self.shared.cluster().set_broker_down(node, down);
        if down {
            self.drop_connections(node);
        }
    }

    /// Open client connections, all brokers together.
    pub fn connection_count(&self) -> usize {
        self.shared
            .conns()
            .iter()
            .filter(|c| c.thread.as_ref().is_some_and(|t| !t.is_finished()))
            .count()
    }

    /// Connections accepted since the server started, all brokers together
    /// (those refused because their broker was down not counted).
    pub fn accepted_connections(&self) -> u64 {
        self.shared.next_conn.load(Ordering::Relaxed)
    }

    /// Stops the threads and closes every socket (also done on drop).
    pub fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let conns: Vec<Conn> = std::mem::take(&mut *self.shared.conns());
        for c in &conns {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        for mut c in conns {
            if let Some(t) = c.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(shared: Arc<Shared>, listeners: Vec<TcpListener>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let mut accepted = false;
        for (node, l) in listeners.iter().enumerate() {
            let node = node as i32;
            match l.accept() {
                Ok((stream, _)) => {
                    accepted = true;
                    if shared.cluster().is_broker_down(node) {
                        let _ = stream.shutdown(Shutdown::Both);
                        continue;
                    }
                    if let Err(e) = spawn_conn(&shared, node, stream) {
                        log::warn!("mock broker {node}: cannot serve a connection: {e}");
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => log::warn!("mock broker {node}: accept failed: {e}"),
            }
        }
        if !accepted {
            thread::sleep(Duration::from_millis(2));
        }
    }
}

fn spawn_conn(shared: &Arc<Shared>, node: i32, stream: TcpStream) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    let registered = stream.try_clone()?;
    let s = Arc::clone(shared);
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let thread = thread::Builder::new()
        .name(format!("mock-kafka-{node}"))
        .spawn(move || {
            serve(&s, id, node, stream);
            s.cluster().connection_closed(id);
        })?;
    let mut conns = shared.conns();
    conns.retain(|c| c.thread.as_ref().is_some_and(|t| !t.is_finished()));
    conns.push(Conn {
        node,
        stream: registered,
        thread: Some(thread),
    });
    Ok(())
}

/// One accepted connection's byte stream: plaintext, or TLS over the socket.
struct Wire {
    stream: TcpStream,
    #[cfg(feature = "tls")]
    tls: Option<rustls::ServerConnection>,
}

impl Wire {
    /// Takes bytes read from the socket; the plaintext goes to `deframer`.
    /// `false` when the connection is to close (a TLS error, whose alert is
    /// sent, or the client's close_notify).
    fn received(&mut self, data: &[u8], deframer: &mut Deframer) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            let mut plain = Vec::new();
            let r = super::tls::ciphertext_in(tls, data, &mut plain);
            deframer.push(&plain);
            let out = super::tls::ciphertext_out(tls);
            if self.stream.write_all(&out).is_err() {
                return false;
            }
            return match r {
                Ok(peer_closed) => !peer_closed,
                Err(e) => {
                    log::debug!("mock broker: TLS error, closing: {e}");
                    false
                }
            };
        }
        deframer.push(data);
        true
    }

    /// Writes one response (encrypted under TLS).
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.writer().write_all(data)?;
            let out = super::tls::ciphertext_out(tls);
            return self.stream.write_all(&out);
        }
        self.stream.write_all(data)
    }

    /// Ends the connection as a broker does (close_notify first under TLS).
    fn close(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            let out = super::tls::ciphertext_out(tls);
            let _ = self.stream.write_all(&out);
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

fn serve(shared: &Shared, id: u64, node: i32, stream: TcpStream) {
    #[cfg(feature = "tls")]
    let tls = match shared.cluster().tls().map(|t| t.session()) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            log::warn!("mock broker {node}: no TLS session: {e}");
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        None => None,
    };
    let mut wire = Wire {
        stream,
        #[cfg(feature = "tls")]
        tls,
    };
    let mut deframer = Deframer::new(DEFAULT_MAX_FRAME);
    let mut buf = vec![0u8; 64 * 1024];
    'conn: while !shared.stop.load(Ordering::SeqCst) {
        match wire.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !wire.received(&buf[..n], &mut deframer) {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        loop {
            let frame = match deframer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    log::debug!("mock broker {node}: bad frame: {e}");
                    break 'conn;
                }
            };
            let r = shared
                .cluster()
                .handle_connection_request(id, node, frame, Instant::now());
            // Latency: wait for the due time, still watching the stop flag.
            loop {
                let now = Instant::now();
                if now >= r.due || shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                thread::sleep((r.due - now).min(POLL));
            }
            if let Some(resp) = &r.response {
                if wire.send(resp).is_err() {
                    break 'conn;
                }
            }
            if r.close {
                break 'conn;
            }
        }
    }
    wire.close();
}
