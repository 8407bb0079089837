//! The mio driver embedded in a program's own `mio::Poll` loop, next to the
//! program's own event source: a small status port (a mio `TcpListener`) that
//! answers every connection with the number of records delivered so far.
//!
//! ```text
//! cargo run --example mio_embed                        # built-in mock cluster
//! cargo run --example mio_embed -- -b localhost:9092 [-t topic] [-n records]
//! ```
//!
//! One thread runs the loop (sockets of the producer and of the program, the
//! producer's timers, delivery callbacks); a worker thread sends records
//! through a `Handle`, then asks the status port how many were delivered and
//! closes the producer, which ends the loop.

#[cfg(feature = "mio-driver")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    app::main()
}

#[cfg(not(feature = "mio-driver"))]
fn main() {
    eprintln!("mio_embed needs the `mio-driver` feature (on by default)");
    std::process::exit(2);
}

#[cfg(feature = "mio-driver")]
mod app {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use kafka_sansio::driver::mio::Driver;
    use kafka_sansio::mock::MockServer;
    use kafka_sansio::producer::{ProducerConfig, ProducerRecord};
    use mio::net::TcpListener;
    use mio::{Events, Interest, Poll, Token};

    /// The program's own token; the driver takes `DRIVER_BASE` and above.
    const STATUS: Token = Token(0);
    const DRIVER_BASE: Token = Token(1);

    fn usage() -> ! {
        eprintln!("usage: mio_embed [-b host:port[,host:port...]] [-t topic] [-n records]");
        std::process::exit(2)
    }

    pub fn main() -> Result<(), Box<dyn std::error::Error>> {
        let (mut brokers, mut topic, mut n) = (None, "mio-embed".to_owned(), 100u64);
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| usage());
            match a.as_str() {
                "-b" => brokers = Some(value()),
                "-t" => topic = value(),
                "-n" => n = value().parse().unwrap_or_else(|_| usage()),
                _ => usage(),
            }
        }
        let mock = match brokers {
            Some(_) => None,
            None => Some(MockServer::start(1)?),
        };
        let bootstrap = brokers.unwrap_or_else(|| mock.as_ref().unwrap().bootstrap_servers());

        // The program's poll, with its own listener registered first.
        let mut poll = Poll::new()?;
        let mut status = TcpListener::bind("127.0.0.1:0".parse()?)?;
        let status_addr = status.local_addr()?;
        poll.registry()
            .register(&mut status, STATUS, Interest::READABLE)?;

        // The producer joins the same poll: it registers its waker at
        // DRIVER_BASE and its sockets above it. (mio allows one Waker per
        // Poll, and the driver's is it: the program must not add another.)
        let config = ProducerConfig::builder()
            .bootstrap_servers(&bootstrap)
            .build()?;
        let mut driver = Driver::with_registry(config, poll.registry(), DRIVER_BASE)?;

        // A worker thread sends; callbacks run on this (the loop's) thread.
        let delivered = Arc::new(AtomicU64::new(0));
        let handle = driver.handle();
        let counter = delivered.clone();
        let worker = thread::spawn(move || -> Result<String, String> {
            for i in 0..n {
                let counter = counter.clone();
                let record = ProducerRecord::new(topic.as_str(), format!("record {i}"));
                handle
                    .send_with_callback(record, move |r| match r {
                        Ok(_) => {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => eprintln!("record {i} failed: {e}"),
                    })
                    .map_err(|e| e.to_string())?;
            }
            handle.flush().map_err(|e| e.to_string())?;
            // Ask the program's own status port, served by the same loop.
            let mut answer = String::new();
            std::net::TcpStream::connect(status_addr)
                .and_then(|mut s| s.read_to_string(&mut answer))
                .map_err(|e| e.to_string())?;
            handle
                .close(Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            Ok(answer)
        });

        // The program's loop: sleep until an event or the producer's next deadline.
        let mut events = Events::with_capacity(128);
        while !driver.is_closed() {
            poll.poll(&mut events, driver.next_timeout())?;
            for event in events.iter() {
                if event.token() == STATUS {
                    serve_status(&status, delivered.load(Ordering::Relaxed));
                } else if driver.owns(event.token()) {
                    driver.handle_event(event);
                }
            }
            // Timers (linger, retries, request timeouts) and sends queued by the worker.
            driver.handle_timeout();
        }

        let answer = worker.join().expect("worker thread")?;
        print!("status port said: {answer}");
        println!(
            "{} of {n} records delivered; producer closed, loop done",
            delivered.load(Ordering::Relaxed)
        );
        Ok(())
    }

    /// Accepts every waiting connection and writes the status line.
    fn serve_status(listener: &TcpListener, delivered: u64) {
        while let Ok((mut stream, _)) = listener.accept() {
            // A line this short fits a fresh socket's send buffer: one write
            // on the nonblocking stream is enough; dropping it closes it.
            let _ = stream.write_all(format!("delivered {delivered}\n").as_bytes());
        }
    }
}
