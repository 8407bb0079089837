//! The SASL and TLS handshake states of the core with fuzzer bytes as the
//! broker's answers (forged SaslHandshake/SaslAuthenticate responses, SCRAM
//! server-first/final messages, raw TLS records); see
//! `kafka_sansio::fuzz::fuzz_secure_handshake` for the op language and the
//! invariants checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kafka_sansio::fuzz::fuzz_secure_handshake(data);
});
