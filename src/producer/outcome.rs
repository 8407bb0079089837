//! Final outcomes: records delivered or failed, as events, with their
//! memory given back; a fatal error failing everything.

use std::sync::Arc;

use crate::protocol::error_code::ErrorCode;

use super::accumulator::{self, Batch};
use super::connection::RequestKind;
use super::record::{Delivery, DeliveryError, Event, Failure, RecordId, RecordIds};
use super::{ConnId, Producer, Transmit};

impl Producer {
    /// Completes a batch the broker took (or, for acks=0, that was written).
    pub(crate) fn deliver(&mut self, b: Batch, base_offset: i64, log_append_time: i64) {
        self.memory.release(b.memory);
        let p = &mut self.parts[b.part];
        p.acked_in_epoch |= b.sequenced;
        self.pending_records -= b.count();
        self.metrics.records_delivered += b.count() as u64;
        self.events.push_back(Event::Delivered(Delivery {
            topic: p.topic.clone(),
            partition: p.partition,
            base_offset,
            log_append_time,
            records: b.ids,
            timestamps: b.timestamps,
        }));
        // Unshared once the driver dropped what it wrote (the usual case by
        // the time an answer arrives); a buffer still shared is left alone.
        if let Some(buf) = b.closed.into_buffer() {
            self.memory.recycle(buf);
        }
    }

    /// Bookkeeping for a batch that leaves the wire (answered, lost, or failed).
    pub(crate) fn off_the_wire(&mut self, b: &Batch) {
        self.parts[b.part].in_flight -= 1;
        self.in_flight_batches -= 1;
    }

    pub(crate) fn fail_batch(&mut self, b: Batch, error: DeliveryError) {
        let (t, p) = (
            self.parts[b.part].topic.clone(),
            self.parts[b.part].partition,
        );
        self.complete_failed(t, p, b.ids, b.memory, error);
        if let Some(buf) = b.closed.into_buffer() {
            self.memory.recycle(buf);
        }
    }

    pub(super) fn complete_failed(
        &mut self,
        topic: Arc<str>,
        partition: i32,
        ids: RecordIds,
        memory: usize,
        error: DeliveryError,
    ) {
        if self.txn.is_some() {
            self.txn_on_failure(&error);
        }
        self.memory.release(memory);
        self.pending_records -= ids.len();
        self.metrics.records_failed += ids.len() as u64;
        let w = self.window();
        let now = self.last_now;
        self.sensors.record_error.record(ids.len() as f64, now, &w);
        self.events.push_back(Event::Failed(Failure {
            topic,
            partition,
            records: ids,
            error,
        }));
    }

    /// Fails every record without outcome; `in_flight` tells the error maker
    /// whether the batch was on the wire.
    pub(super) fn fail_everything(&mut self, err: impl Fn(bool) -> DeliveryError) {
        // In-flight batches first: they are the oldest.
        let conns: Vec<ConnId> = self.net.conns.keys().copied().collect();
        for c in conns {
            let conn = self.net.conns.get_mut(&c).expect("listed");
            let in_flight = std::mem::take(&mut conn.in_flight);
            let unwritten = std::mem::take(&mut conn.unwritten);
            let mut on_wire: Vec<accumulator::Batch> =
                unwritten.into_iter().flat_map(|(_, bs)| bs).collect();
            for f in in_flight {
                match f.kind {
                    RequestKind::Produce(batches) => on_wire.extend(batches),
                    other => self.unmark_request(&other),
                }
            }
            for b in on_wire {
                self.off_the_wire(&b);
                self.fail_batch(b, err(true));
            }
            self.transmits.push_back(Transmit::Close { conn: c });
            self.net.conns.remove(&c);
        }
        for i in 0..self.parts.len() {
            let queue = std::mem::take(&mut self.parts[i].queue);
            let open = self.parts[i].open.take();
            let (t, p) = (self.parts[i].topic.clone(), self.parts[i].partition);
            self.parts[i].queued_records = 0;
            for b in queue {
                let e = if b.maybe_persisted {
                    err(true)
                } else {
                    err(false)
                };
                self.fail_batch(b, e);
            }
            if let Some(o) = open {
                self.complete_failed(t.clone(), p, o.ids, o.memory, err(false));
                self.memory.recycle(o.builder.into_buffer());
            }
        }
        for i in 0..self.topics.len() {
            let name = self.topics.names()[i].clone();
            for r in self.take_pending(i).0 {
                let mut ids = RecordIds::default();
                ids.push(RecordId(r.id));
                self.complete_failed(name.clone(), -1, ids, 0, err(false));
            }
        }
    }

    /// Sets a fatal error: every pending record fails with it, and so do later sends.
    pub(super) fn set_fatal(&mut self, code: ErrorCode) {
        if self.fatal.is_some() {
            return;
        }
        log::error!("producer failed fatally: {code}");
        self.fatal = Some(code);
        if let Some(t) = &mut self.txn {
            t.mgr.on_fatal(code);
        }
        self.fail_everything(|maybe_persisted| DeliveryError::Fatal {
            code,
            maybe_persisted,
        });
    }
}
