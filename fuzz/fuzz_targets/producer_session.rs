//! A whole producer session against the mock cluster, driven by the input
//! (time, sends, flush/close, connects, response delivery in pieces, garbage,
//! faults); see `kafka_sansio::fuzz::fuzz_producer_session` for the op
//! language and the invariants checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kafka_sansio::fuzz::fuzz_producer_session(data);
});
