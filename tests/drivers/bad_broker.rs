//! A broker on loopback TCP that misbehaves in one chosen way, for the
//! drivers' suite: it answers through the project's mock cluster and then
//! spoils its answers (or gives none), and counts the connections it took.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_sansio::mock::MockCluster;
use kafka_sansio::protocol::frame::{ApiKey, Deframer, DEFAULT_MAX_FRAME};

/// How the broker misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Accepts and closes at once.
    CloseAtOnce,
    /// Answers the first request with a TLS alert record, as a TLS port
    /// dialed in plaintext does, and closes.
    TlsAlert,
    /// Announces a frame of 2 GiB - 1.
    HugeFrame,
    /// Announces a frame of negative size.
    NegativeFrame,
    /// Answers each request with a well-framed run of random bytes.
    RandomFrames,
    /// Answers with the correlation id of another request.
    WrongCorrelation,
    /// Answers with the body cut in half (the frame size agrees).
    Truncated,
    /// Answers ApiVersions well, and Metadata cut in half.
    TruncatedMetadata,
    /// Reads requests and never answers.
    NeverAnswers,
    /// Appends two bytes after the last field of every answer (as
    /// librdkafka 2.12's mock cluster does after Metadata v12).
    TrailingBytes,
    /// Answers well, one byte per write.
    OneByteAtATime,
}

/// The running broker; stops when dropped.
pub struct BadBroker {
    /// `127.0.0.1:port`.
    pub addr: String,
    /// The mock cluster behind the answers.
    pub cluster: Arc<Mutex<MockCluster>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl BadBroker {
    /// Starts a one-broker cluster that misbehaves as `how`; its topics are
    /// auto-created with one partition.
    pub fn start(how: Misbehaviour) -> BadBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let mut cluster = MockCluster::new(1);
        cluster.set_broker_address(0, "127.0.0.1", port);
        cluster.set_default_partitions(1);
        let cluster = Arc::new(Mutex::new(cluster));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (cluster, connections, stop) = (cluster.clone(), connections.clone(), stop.clone());
            thread::spawn(move || {
                let mut seed = 0x9e37_79b9_7f4a_7c15u64;
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            connections.fetch_add(1, Ordering::Relaxed);
                            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                            let (cluster, stop) = (cluster.clone(), stop.clone());
                            thread::spawn(move || serve(s, how, &cluster, &stop, seed));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        BadBroker {
            addr: format!("127.0.0.1:{port}"),
            cluster,
            connections,
            stop,
            accept: Some(accept),
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for BadBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Serves one connection until the client or the test goes away.
fn serve(
    mut s: TcpStream,
    how: Misbehaviour,
    cluster: &Mutex<MockCluster>,
    stop: &AtomicBool,
    mut seed: u64,
) {
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    if how == Misbehaviour::CloseAtOnce {
        let _ = s.shutdown(Shutdown::Both);
        return;
    }
    let mut deframer = Deframer::new(DEFAULT_MAX_FRAME);
    let mut buf = [0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let n = match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        deframer.push(&buf[..n]);
        while let Ok(Some(frame)) = deframer.next_frame() {
            let api = (frame.len() >= 2)
                .then(|| ApiKey::from_code(i16::from_be_bytes([frame[0], frame[1]])))
                .flatten();
            let answer = cluster
                .lock()
                .expect("cluster")
                .handle_request(0, frame, Instant::now());
            let Some(good) = answer.response else {
                continue;
            };
            let out = match spoil(how, api, good, &mut seed) {
                Some(out) => out,
                None => continue,
            };
            let written = if how == Misbehaviour::OneByteAtATime {
                out.iter().try_for_each(|b| {
                    thread::sleep(Duration::from_micros(100));
                    s.write_all(std::slice::from_ref(b))
                })
            } else {
                s.write_all(&out)
            };
            if written.is_err() {
                return;
            }
            if how == Misbehaviour::TlsAlert {
                let _ = s.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// The bytes the broker sends instead of `good` (a whole frame, size
/// prefix included), `None` for no answer.
fn spoil(how: Misbehaviour, api: Option<ApiKey>, good: Bytes, seed: &mut u64) -> Option<Vec<u8>> {
    let body = &good[4..];
    let frame = |body: &[u8]| {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    };
    Some(match how {
        Misbehaviour::CloseAtOnce | Misbehaviour::NeverAnswers => return None,
        // An alert record: content type 21, TLS 1.2, length 2, fatal, protocol_version.
        Misbehaviour::TlsAlert => vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46],
        Misbehaviour::HugeFrame => {
            let mut v = i32::MAX.to_be_bytes().to_vec();
            v.extend_from_slice(&body[..body.len().min(16)]);
            v
        }
        Misbehaviour::NegativeFrame => (-7i32).to_be_bytes().to_vec(),
        Misbehaviour::RandomFrames => {
            let mut next = || {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                *seed
            };
            let len = 8 + (next() % 56) as usize;
            frame(&(0..len).map(|_| next() as u8).collect::<Vec<_>>())
        }
        Misbehaviour::WrongCorrelation => {
            let mut b = body.to_vec();
            let cid = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            b[..4].copy_from_slice(&cid.wrapping_add(1).to_be_bytes());
            frame(&b)
        }
        Misbehaviour::Truncated => frame(&body[..4 + (body.len() - 4) / 2]),
        Misbehaviour::TruncatedMetadata if api == Some(ApiKey::Metadata) => {
            frame(&body[..4 + (body.len() - 4) / 2])
        }
        Misbehaviour::TrailingBytes => {
            let mut b = body.to_vec();
            b.extend_from_slice(&[0, 0]);
            frame(&b)
        }
        Misbehaviour::TruncatedMetadata | Misbehaviour::OneByteAtATime => good.to_vec(),
    })
}
