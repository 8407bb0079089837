//! Stream bytes through the deframer in any split, then every frame through
//! each response and request decoder; see
//! `kafka_sansio::fuzz::fuzz_frames` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kafka_sansio::fuzz::fuzz_frames(data);
});
