//! A TCP proxy that loses Produce responses after the broker appended: it
//! forwards every request, and for every `every`-th Produce request it reads
//! the broker's response and then cuts the client's connection instead of
//! delivering it (up to `max_drops` times). A retry of such a batch is a
//! real duplicate unless the broker de-duplicates it by producer sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

pub struct LossyProxy {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
}

#[derive(Default)]
pub struct Stats {
    /// Produce requests forwarded.
    pub produces: AtomicUsize,
    /// Produce responses read from the broker and not delivered.
    pub dropped: AtomicUsize,
    /// Client connections accepted.
    pub connections: AtomicUsize,
    /// Record batches seen in Produce requests, by codec id (attributes & 7),
    /// decoded with the crate's own codec.
    pub codecs: Mutex<BTreeMap<i16, usize>>,
}

/// Counts the codec of every record batch of a Produce request frame.
fn tap_produce(frame: &[u8], st: &Stats) {
    use kafka_sansio::protocol::frame::{ApiMessage, RequestHeader};
    use kafka_sansio::protocol::messages::produce::ProduceRequest;
    use kafka_sansio::protocol::record::RecordBatch;
    let mut body = bytes::Bytes::copy_from_slice(&frame[4..]);
    let Ok(h) = RequestHeader::decode(&mut body) else {
        return;
    };
    let Ok(req) = ProduceRequest::decode(&mut body, h.api_version) else {
        return;
    };
    let mut codecs = st.codecs.lock().unwrap();
    for t in &req.topic_data {
        for p in &t.partition_data {
            let Some(records) = &p.records else { continue };
            if let Ok(batches) = RecordBatch::decode_all(records.clone()) {
                for b in batches {
                    *codecs.entry(b.attributes & 7).or_default() += 1;
                }
            }
        }
    }
}

impl LossyProxy {
    /// Listens on `listener` and forwards to `upstream`.
    pub fn start(
        listener: TcpListener,
        upstream: SocketAddr,
        every: usize,
        max_drops: usize,
    ) -> LossyProxy {
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let (s, st) = (stop.clone(), stats.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Acquire) {
                    return;
                }
                let Ok(client) = conn else { continue };
                st.connections.fetch_add(1, Ordering::Relaxed);
                let Ok(broker) = TcpStream::connect(upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = broker.set_nodelay(true);
                let doomed = Arc::new(Mutex::new(BTreeSet::new()));
                let (c2, b2, d2, st2) = (
                    client.try_clone().unwrap(),
                    broker.try_clone().unwrap(),
                    doomed.clone(),
                    st.clone(),
                );
                thread::spawn(move || requests(c2, b2, d2, st2, every, max_drops));
                let st3 = st.clone();
                thread::spawn(move || responses(broker, client, doomed, st3));
            }
        });
        LossyProxy { addr, stop, stats }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr); // unblock accept
    }
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let n = i32::from_be_bytes(len);
    if !(0..=256 << 20).contains(&n) {
        return None;
    }
    let mut buf = vec![0u8; 4 + n as usize];
    buf[..4].copy_from_slice(&len);
    s.read_exact(&mut buf[4..]).ok()?;
    Some(buf)
}

fn cut(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// Client to broker: marks every `every`-th Produce (by correlation id) before forwarding it.
fn requests(
    mut client: TcpStream,
    mut broker: TcpStream,
    doomed: Arc<Mutex<BTreeSet<i32>>>,
    st: Arc<Stats>,
    every: usize,
    max_drops: usize,
) {
    while let Some(f) = read_frame(&mut client) {
        if f.len() >= 12 {
            let api = i16::from_be_bytes([f[4], f[5]]);
            let corr = i32::from_be_bytes([f[8], f[9], f[10], f[11]]);
            if api == 0 {
                tap_produce(&f, &st);
                let n = st.produces.fetch_add(1, Ordering::AcqRel) + 1;
                if n.is_multiple_of(every) && st.dropped.load(Ordering::Acquire) < max_drops {
                    doomed.lock().unwrap().insert(corr);
                }
            }
        }
        if broker.write_all(&f).is_err() {
            break;
        }
    }
    cut(&client, &broker);
}

/// Broker to client: a doomed response is read and swallowed, and both connections cut.
fn responses(
    mut broker: TcpStream,
    mut client: TcpStream,
    doomed: Arc<Mutex<BTreeSet<i32>>>,
    st: Arc<Stats>,
) {
    while let Some(f) = read_frame(&mut broker) {
        if f.len() < 8 {
            break;
        }
        let corr = i32::from_be_bytes([f[4], f[5], f[6], f[7]]);
        if doomed.lock().unwrap().remove(&corr) {
            st.dropped.fetch_add(1, Ordering::AcqRel);
            break;
        }
        if client.write_all(&f).is_err() {
            break;
        }
    }
    cut(&client, &broker);
}
