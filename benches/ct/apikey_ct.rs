//! A dudect-style timing check of API-key lookup (Reparaz, Balasch and Verbauwhede, "Dude, is my
//! code constant time?", 2017), kept out of the test suite because it measures time. |t| above
//! 5 means the two classes were told apart by their timing.
//!
//! - `lookup`: the check that matters. Class Left: well-formed keys sharing their prefix and the
//!   first 28 of 32 random characters with the stored key. Class Right: the same, sharing them
//!   with a decoy key that is not stored. The decoy has a character of the same kind (digit,
//!   upper or lower case) at every position, so the format checks take the same branches for
//!   both classes: they differ only in how close they are to the secret. A lookup that compared
//!   plaintext would tell them apart; ours must not.
//! - `lookup_vs_random`: the same Left class against fully random well-formed keys. This one
//!   does show a difference, and not from the secret: 32 000 Left keys that share 28 characters
//!   train the branch predictor and caches on the format checks, random keys do not. It is kept
//!   to show why `lookup` pairs its classes as it does.
//! - `plaintext_eq_control`: `lookup`'s classes against a plain `==` on the plaintext key (what
//!   tower-http's bearer check does), to show the method sees a real leak on this machine.
//!
//! Every input is unknown, so each goes the whole way: format check, SHA-256, bucket lookup,
//! constant-time comparison against a set of 10 000 keys.
//!
//! ```sh
//! cargo run --release -p palisade-benches --example apikey_ct                  # all, one pass each
//! cargo run --release -p palisade-benches --example apikey_ct -- --continuous lookup
//! ```

use std::hint::black_box;

use dudect_bencher::rand::RngExt;
use dudect_bencher::{BenchRng, Class, CtRunner, ctbench_main};
use palisade::apikey::format::{KeyFormat, RANDOM_LEN, from_parts};
use palisade::apikey::{KeyDigest, KeyEntry, KeySet};

const SAMPLES: usize = 200_000;
const SHARED: usize = 28;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_part(rng: &mut BenchRng) -> [u8; RANDOM_LEN] {
    let mut out = [0u8; RANDOM_LEN];
    for byte in &mut out {
        *byte = BASE62[rng.random_range(0..BASE62.len())];
    }
    out
}

/// A random part with a character of the same kind as `base`'s at every position, and a
/// different one.
fn same_kinds(base: &[u8; RANDOM_LEN], rng: &mut BenchRng) -> [u8; RANDOM_LEN] {
    let mut out = *base;
    for (slot, original) in out.iter_mut().zip(base) {
        let kind: &[u8] = match original {
            b'0'..=b'9' => &BASE62[..10],
            b'A'..=b'Z' => &BASE62[10..36],
            _ => &BASE62[36..],
        };
        while slot == original {
            *slot = kind[rng.random_range(0..kind.len())];
        }
    }
    out
}

/// A key sharing the first `SHARED` random characters with `base` (and never equal to it).
fn near(base: &[u8; RANDOM_LEN], rng: &mut BenchRng) -> [u8; RANDOM_LEN] {
    let mut random = random_part(rng);
    random[..SHARED].copy_from_slice(&base[..SHARED]);
    if &random == base {
        random[RANDOM_LEN - 1] = if random[RANDOM_LEN - 1] == b'a' {
            b'b'
        } else {
            b'a'
        };
    }
    random
}

/// The stored key, and `SAMPLES` inputs in a random order: Left near the stored key, Right near
/// the decoy (`Some`) or random (`None`).
fn inputs(rng: &mut BenchRng, decoy: bool) -> (String, Vec<(Class, String)>) {
    let valid = random_part(rng);
    let decoy = decoy.then(|| same_kinds(&valid, rng));
    let mut inputs = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let (class, random) = if rng.random::<bool>() {
            (Class::Left, near(&valid, rng))
        } else {
            match &decoy {
                Some(decoy) => (Class::Right, near(decoy, rng)),
                None => (Class::Right, random_part(rng)),
            }
        };
        inputs.push((class, from_parts("pal_live", &random).unwrap()));
    }
    (from_parts("pal_live", &valid).unwrap(), inputs)
}

fn run_lookup(runner: &mut CtRunner, rng: &mut BenchRng, decoy: bool) {
    let (valid, inputs) = inputs(rng, decoy);
    let mut entries: Vec<KeyEntry> = (0..9_999)
        .map(|_| {
            let other = from_parts("pal_live", &random_part(rng)).unwrap();
            KeyEntry::new(KeyDigest::of(&other), "other").unwrap()
        })
        .collect();
    entries.push(KeyEntry::new(KeyDigest::of(&valid), "valid").unwrap());
    let keys = KeySet::from_entries(entries).unwrap();
    let format = KeyFormat::default();
    for (class, key) in inputs {
        runner.run_one(class, || {
            let key = black_box(key.as_str());
            format.check(key).is_ok() && keys.find(&KeyDigest::of(key)).is_some()
        });
    }
}

fn lookup(runner: &mut CtRunner, rng: &mut BenchRng) {
    run_lookup(runner, rng, true);
}

fn lookup_vs_random(runner: &mut CtRunner, rng: &mut BenchRng) {
    run_lookup(runner, rng, false);
}

fn plaintext_eq_control(runner: &mut CtRunner, rng: &mut BenchRng) {
    let (valid, inputs) = inputs(rng, true);
    for (class, key) in inputs {
        runner.run_one(class, || {
            black_box(key.as_bytes()) == black_box(valid.as_bytes())
        });
    }
}

ctbench_main!(lookup, lookup_vs_random, plaintext_eq_control);
