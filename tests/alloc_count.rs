//! The core's hot path allocates nothing per record: a counting global
//! allocator watches a steady-state loop of sends and deliveries between the
//! sans-IO core and the sans-IO [`MockCluster`], all in memory.
//!
//! Only allocations made inside the producer's own calls are counted (the
//! mock broker's are not: it stores every batch). Counting is per thread, so
//! the other tests of this file running in parallel do not disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_sansio::mock::{MockCluster, Pair};
use kafka_sansio::producer::{Event, Producer, ProducerConfig, ProducerRecord};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    /// Allocations of at least `BIG_MIN` bytes (batch buffers).
    static BIG: Cell<u64> = const { Cell::new(0) };
    static BIG_MIN: Cell<usize> = const { Cell::new(usize::MAX) };
}

// SAFETY: forwards to the system allocator; the bookkeeping touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

fn bump(size: usize) {
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
            if BIG_MIN.try_with(Cell::get).is_ok_and(|min| size >= min) {
                let _ = BIG.try_with(|b| b.set(b.get() + 1));
            }
        }
    });
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the allocations it made on this thread.
fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCS.with(|a| a.get());
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCS.with(|a| a.get()) - before)
}

/// The core wired to an in-memory mock broker by a [`Pair`] whose meter
/// counts the allocations made inside the core's calls.
struct Bench {
    pair: Pair,
    delivered: u64,
    batches: u64,
    /// The core's allocations before the span being measured.
    base: u64,
}

/// The meter: counts only while the pair is inside a call into the core.
fn meter(inside: bool) {
    COUNTING.with(|c| c.set(inside));
}

impl Bench {
    fn new(props: &[(&str, &str)]) -> Bench {
        let mut all = vec![("bootstrap.servers", "localhost:9092")];
        all.extend_from_slice(props);
        let config = ProducerConfig::from_properties(all).unwrap();
        let now = Instant::now();
        let mut mock = MockCluster::new(1);
        mock.create_topic("t", 4).unwrap();
        let producer = Producer::new(config, now, 1_700_000_000_000).unwrap();
        let mut pair = Pair::new(producer, mock, now);
        pair.set_meter(meter);
        Bench {
            pair,
            delivered: 0,
            batches: 0,
            base: 0,
        }
    }

    /// Allocations made inside the core since the last `reset_count`.
    fn core_allocs(&self) -> u64 {
        ALLOCS.with(Cell::get) - self.base
    }

    fn reset_count(&mut self) {
        self.base = ALLOCS.with(Cell::get);
    }

    /// Moves bytes both ways until nothing happens; answers are due at once.
    fn pump(&mut self) {
        self.pair.run_until_idle();
        for ev in self.pair.events.drain(..) {
            match ev {
                Event::Delivered(d) => {
                    self.delivered += d.records.len() as u64;
                    self.batches += 1;
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }

    /// Sends `n` records of `value` (caller's buffer, shared), pumping every `every` sends.
    fn run(&mut self, topic: &Arc<str>, value: &Bytes, n: u64, every: u64) {
        for i in 0..n {
            let record = ProducerRecord::new(topic.clone(), value.clone());
            self.pair.now += Duration::from_micros(1);
            self.pair
                .core(|p, now| p.send(record, now))
                .expect("accepted");
            if i % every == every - 1 {
                self.pump();
            }
        }
        let _ = self.pair.core(|p, now| p.flush(now));
        self.pump();
    }
}

#[test]
fn sends_into_an_open_batch_allocate_nothing() {
    let mut b = Bench::new(&[("linger.ms", "1000"), ("batch.size", "1048576")]);
    let topic: Arc<str> = "t".into();
    let value = Bytes::from_static(&[b'x'; 100]);
    // Warm up: metadata, producer id, connections, the first batches.
    b.run(&topic, &value, 20_000, 1000);
    assert_eq!(b.delivered, 20_000);
    // One send opens a batch (its buffer and bookkeeping are allocated there)...
    b.pair
        .core(|p, now| p.send(ProducerRecord::new(topic.clone(), value.clone()), now))
        .unwrap();
    // ...and the next thousands only write into it.
    b.reset_count();
    for _ in 0..5_000 {
        let record = ProducerRecord::new(topic.clone(), value.clone());
        b.pair.core(|p, now| p.send(record, now)).unwrap();
    }
    assert_eq!(
        b.core_allocs(),
        0,
        "appending to an open batch must not allocate"
    );
}

#[test]
fn steady_state_allocations_are_per_batch_not_per_record() {
    for (batch_size, value_size) in [("1048576", 100usize), ("16384", 100), ("1048576", 1024)] {
        let mut b = Bench::new(&[
            ("linger.ms", "0"),
            ("batch.size", batch_size),
            ("acks", "all"),
            ("enable.idempotence", "true"),
        ]);
        let topic: Arc<str> = "t".into();
        let value = Bytes::from(vec![b'v'; value_size]);
        b.run(&topic, &value, 20_000, 500);
        let (d0, b0) = (b.delivered, b.batches);
        b.reset_count();
        b.run(&topic, &value, 200_000, 500);
        let records = b.delivered - d0;
        let batches = b.batches - b0;
        assert_eq!(records, 200_000);
        let per_record = b.core_allocs() as f64 / records as f64;
        let per_batch = b.core_allocs() as f64 / batches as f64;
        eprintln!(
            "batch.size {batch_size}, {value_size} B: {} allocations for {records} records \
             in {batches} batches: {per_record:.4}/record, {per_batch:.1}/batch",
            b.core_allocs()
        );
        // A batch costs a bounded number of allocations (its buffer, the
        // request, the answer, the event), whatever its record count; a
        // turn of the core allocates nothing of its own (9-14 per batch
        // here; 14-23 when each turn collected its leaders and connections
        // into fresh lists).
        assert!(
            per_batch <= 20.0,
            "{per_batch:.1} allocations per batch ({per_record:.4} per record)"
        );
    }
}

#[test]
fn steady_state_batches_reuse_their_buffers() {
    for batch_size in [1usize << 20, 16 << 10] {
        let bs = batch_size.to_string();
        let mut b = Bench::new(&[
            ("linger.ms", "0"),
            ("batch.size", &bs),
            ("acks", "all"),
            ("enable.idempotence", "true"),
        ]);
        let topic: Arc<str> = "t".into();
        let value = Bytes::from(vec![b'v'; 100]);
        BIG_MIN.with(|m| m.set(batch_size));
        // Warm-up: the pool fills with as many buffers as batches in use at once.
        b.run(&topic, &value, 20_000, 500);
        let (b0, big0) = (b.batches, BIG.with(Cell::get));
        b.run(&topic, &value, 200_000, 500);
        let batches = b.batches - b0;
        let big = BIG.with(Cell::get) - big0;
        BIG_MIN.with(|m| m.set(usize::MAX));
        eprintln!("batch.size {batch_size}: {big} buffer allocations for {batches} batches");
        assert!(batches >= 400, "{batches} batches");
        // Without reuse every batch allocates its buffer (big == batches).
        assert!(
            big * 20 <= batches,
            "batch.size {batch_size}: {big} buffers of batch size allocated for {batches} batches"
        );
    }
}

/// Through a driver: a sending thread's `send_with_tag`s allocate per batch,
/// not per record (the listener is producer-wide, the outcome is lent), where
/// `send_with_callback` boxes each callback. Both drivers, real sockets to
/// the mock server; the sending thread's allocations are counted.
#[test]
fn tagged_sends_through_a_driver_allocate_per_batch_not_per_record() {
    use kafka_sansio::driver::{blocking, Handle};
    use kafka_sansio::mock::MockServer;
    use std::sync::atomic::{AtomicU64, Ordering};

    let server = MockServer::start(1).unwrap();
    server.with_cluster(|c| c.create_topic("tagged", 1).unwrap());
    let config = || {
        ProducerConfig::builder()
            .bootstrap_servers(&server.bootstrap_servers())
            .linger(Duration::from_millis(5))
            .build()
            .unwrap()
    };
    let run = |handle: &Handle| {
        let heard = Arc::new(AtomicU64::new(0));
        let h = heard.clone();
        handle.on_delivery(move |_, r| {
            assert!(r.is_ok(), "{r:?}");
            h.fetch_add(1, Ordering::Relaxed);
        });
        let topic: Arc<str> = "tagged".into();
        let value = Bytes::from(vec![b'v'; 100]);
        let record = || ProducerRecord::new(topic.clone(), value.clone());
        // Warm up: connections, metadata, producer id, first batches.
        for i in 0..20_000 {
            handle.send_with_tag(record(), i).unwrap();
        }
        handle.flush().unwrap();
        let n = 100_000u64;
        let ((), tagged) = counted(|| {
            for i in 0..n {
                handle.send_with_tag(record(), i).unwrap();
            }
        });
        handle.flush().unwrap();
        assert_eq!(heard.load(Ordering::Relaxed), 20_000 + n);
        // 16 KiB batches of 100 B records: about 150 records each.
        assert!(tagged * 20 < n, "{tagged} allocations for {n} tagged sends");
        let ((), boxed) = counted(|| {
            for i in 0..1000u64 {
                // A callback that captures something, as real ones do.
                let cb = move |_: kafka_sansio::driver::DeliveryResult| {
                    std::hint::black_box(i);
                };
                handle.send_with_callback(record(), cb).unwrap();
            }
        });
        handle.flush().unwrap();
        assert!(boxed >= 1000, "callbacks are boxed: {boxed}");
    };

    let p = blocking::Producer::new(config()).unwrap();
    run(&p.handle());
    p.close(Duration::from_secs(10)).unwrap();

    #[cfg(feature = "mio-driver")]
    {
        let (handle, thread) = kafka_sansio::driver::mio::Driver::spawn(config()).unwrap();
        run(&handle);
        handle.close(Duration::from_secs(10)).unwrap();
        thread.join().unwrap().unwrap();
    }
}
