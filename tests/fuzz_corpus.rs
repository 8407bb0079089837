//! The `frames`, `producer_session` and `secure_handshake` (features `sasl`
//! and `tls`) fuzz targets on stable: every file of
//! their committed corpora, then inputs from a seeded generator, through the
//! same entry functions the cargo-fuzz targets call.
//!
//! `FUZZ_CORPUS_RANDOM=N` sets how many random inputs each entry gets
//! (default 3000).

use std::path::Path;

use kafka_sansio::fuzz::{fuzz_frames, fuzz_producer_session};

/// The crate's SplitMix64, with `usize` ranges for byte surgery.
struct Rng(kafka_sansio::producer::rng::Rng);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

fn random_inputs() -> usize {
    std::env::var("FUZZ_CORPUS_RANDOM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

/// Runs `f` on `input`, naming the input when it panics.
fn run(name: &str, input: &[u8], f: fn(&[u8])) {
    if std::panic::catch_unwind(|| f(input)).is_err() {
        panic!("{name} fails; input ({} bytes): {input:02x?}", input.len());
    }
}

/// Mutates a corpus file the way a fuzzer would: flips, inserts, removes, splices.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = 1 + rng.below((v.len() - i).min(8));
                v.drain(i..i + n);
            }
            _ if !other.is_empty() => {
                let i = rng.below(v.len() + 1);
                let j = rng.below(other.len());
                let n = 1 + rng.below((other.len() - j).min(32));
                v.splice(i..i, other[j..j + n].iter().copied());
            }
            _ => {}
        }
    }
    v
}

fn replay_and_generate(target: &str, f: fn(&[u8]), min_files: usize, seed: u64) {
    let files = corpus(target);
    assert!(
        files.len() >= min_files,
        "{target}: {} corpus files",
        files.len()
    );
    for (name, data) in &files {
        run(name, data, f);
    }
    let mut rng = Rng(kafka_sansio::producer::rng::Rng::new(seed));
    for i in 0..random_inputs() {
        let input = if i % 2 == 0 {
            let len = rng.below(256);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let a = &files[rng.below(files.len())].1;
            let b = &files[rng.below(files.len())].1;
            mutate(&mut rng, a, b)
        };
        run(&format!("{target} random input {i}"), &input, f);
    }
}

#[test]
fn frames_corpus_and_random_inputs() {
    replay_and_generate("frames", fuzz_frames, 20, 0xf4a3e5);
}

#[cfg(all(feature = "sasl", feature = "tls"))]
#[test]
fn secure_handshake_corpus_and_random_inputs() {
    replay_and_generate(
        "secure_handshake",
        kafka_sansio::fuzz::fuzz_secure_handshake,
        10,
        0x5ec_0a17,
    );
}

#[test]
fn producer_session_corpus_and_random_inputs() {
    replay_and_generate("producer_session", fuzz_producer_session, 3, 0x5e55_1011);
}
