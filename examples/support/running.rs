//! A producer of either driver (`--driver blocking|mio` in the examples),
//! used through the shared [`Handle`] API.
//!
//! Examples include it with `#[path = "support/running.rs"] mod running;`.

#![allow(dead_code)] // each includer uses a part of it

use std::time::Duration;

use kafka_sansio::driver::{blocking, Error, Handle};
use kafka_sansio::producer::ProducerConfig;

/// A running producer of either driver, used through the shared `Handle` API.
pub enum Running {
    /// The blocking driver.
    Blocking(blocking::Producer),
    #[cfg(feature = "mio-driver")]
    /// The mio driver on its own thread.
    Mio(Handle, std::thread::JoinHandle<std::io::Result<()>>),
}

impl Running {
    /// Starts the producer with `driver` (`mio` or anything else: blocking).
    pub fn start(driver: &str, config: ProducerConfig) -> Result<Running, Error> {
        match driver {
            #[cfg(feature = "mio-driver")]
            "mio" => {
                let (handle, thread) = kafka_sansio::driver::mio::Driver::spawn(config)?;
                Ok(Running::Mio(handle, thread))
            }
            #[cfg(not(feature = "mio-driver"))]
            "mio" => Err(Error::Io(std::io::Error::other(
                "built without the mio-driver feature",
            ))),
            _ => Ok(Running::Blocking(blocking::Producer::new(config)?)),
        }
    }

    /// A handle to the producer.
    pub fn handle(&self) -> Handle {
        match self {
            Running::Blocking(p) => p.handle(),
            #[cfg(feature = "mio-driver")]
            Running::Mio(h, _) => h.clone(),
        }
    }

    /// Closes the producer (and joins the mio driver's thread).
    pub fn close(self, timeout: Duration) -> Result<(), Error> {
        match self {
            Running::Blocking(p) => p.close(timeout),
            #[cfg(feature = "mio-driver")]
            Running::Mio(h, thread) => {
                let r = h.close(timeout);
                let _ = thread.join();
                r
            }
        }
    }
}
