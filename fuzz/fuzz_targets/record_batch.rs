//! Record batches: decode_all, records, re-encode; see
//! `kafka_sansio::fuzz::fuzz_record_batch` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kafka_sansio::fuzz::fuzz_record_batch(data);
});
