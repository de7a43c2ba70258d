//! Strict JSON beside `serde_json` on a 1 KiB API body and a 1 MiB body: the strict check alone,
//! the check plus a typed decode, `serde_json`'s typed decode and its syntax-only pass
//! (`IgnoredAny`), and the other way to check strictly: `serde_json`'s parser driven by a visitor
//! that tracks keys for duplicates.

use std::collections::HashSet;
use std::fmt;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade::json::{Limits, validate};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

#[derive(Deserialize)]
#[allow(dead_code)]
struct Customer {
    name: String,
    email: String,
    vip: bool,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Item {
    sku: String,
    quantity: u32,
    price: f64,
    gift: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Order {
    id: u64,
    customer: Customer,
    items: Vec<Item>,
    notes: String,
    tags: Vec<String>,
}

fn order(id: u64) -> String {
    let items: Vec<String> = (0..6)
        .map(|i| {
            format!(
                r#"{{"sku": "SKU-{id:05}-{i}", "quantity": {}, "price": {}.{:02}, "gift": {}}}"#,
                i + 1,
                10 + i * 7,
                (id + i) % 100,
                if i % 3 == 0 { r#""wrap it""# } else { "null" }
            )
        })
        .collect();
    format!(
        r#"{{"id": {id}, "customer": {{"name": "Customer number {id}", "email": "customer{id}@example.com", "vip": {}}}, "items": [{}], "notes": "Leave at the door; ring twice. \"Fragile\" items inside.", "tags": ["web", "priority-{}", "eu-west"]}}"#,
        id.is_multiple_of(7),
        items.join(", "),
        id % 3
    )
}

/// A document of about `bytes` bytes: one order, or an array of them.
fn body(bytes: usize) -> (Vec<u8>, usize) {
    let one = order(1);
    if bytes <= one.len() * 2 {
        return (one.into_bytes(), 1);
    }
    let mut orders = Vec::new();
    let mut size = 2;
    let mut id = 1;
    while size < bytes {
        let next = order(id);
        size += next.len() + 2;
        orders.push(next);
        id += 1;
    }
    let count = orders.len();
    (format!("[{}]", orders.join(", ")).into_bytes(), count)
}

/// `serde_json`'s parser with a visitor that rejects duplicate keys: the alternative to a scanner
/// of our own, measured here before choosing.
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Strict)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: HashSet<std::borrow::Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !keys.insert(key) {
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(Strict)?;
        }
        Ok(())
    }
}

fn serde_strict(bytes: &[u8]) -> bool {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    Strict.deserialize(&mut deserializer).is_ok() && deserializer.end().is_ok()
}

fn json(c: &mut Criterion) {
    let limits = Limits::default();
    for (label, size) in [("1KiB", 1024usize), ("1MiB", 1024 * 1024)] {
        let (bytes, count) = body(size);
        let mut group = c.benchmark_group(format!("json/{label}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let decode = |bytes: &[u8]| {
            if count == 1 {
                drop(black_box(serde_json::from_slice::<Order>(bytes).unwrap()));
            } else {
                drop(black_box(
                    serde_json::from_slice::<Vec<Order>>(bytes).unwrap(),
                ));
            }
        };
        group.bench_function("serde_json/typed", |b| b.iter(|| decode(black_box(&bytes))));
        group.bench_function("serde_json/ignored-any", |b| {
            b.iter(|| black_box(serde_json::from_slice::<IgnoredAny>(black_box(&bytes)).unwrap()));
        });
        group.bench_function("serde_json/visitor-with-duplicate-check", |b| {
            b.iter(|| assert!(serde_strict(black_box(&bytes))));
        });
        group.bench_function("palisade/strict-check", |b| {
            b.iter(|| black_box(validate(black_box(&bytes), &limits).unwrap()));
        });
        let no_dups = Limits::default().duplicate_keys(palisade::json::DuplicateKeys::Allow);
        group.bench_function("palisade/strict-check-without-duplicate-keys", |b| {
            b.iter(|| black_box(validate(black_box(&bytes), &no_dups).unwrap()));
        });
        group.bench_function("palisade/strict-check+typed", |b| {
            b.iter(|| {
                black_box(validate(black_box(&bytes), &limits).unwrap());
                decode(black_box(&bytes));
            });
        });
        group.finish();
    }
}

/// Inputs built to be slow for a JSON checker, each about 1 MiB, beside `serde_json`'s syntax-only
/// pass on the same bytes: the scanner's cost must stay linear in the input.
fn adversarial(c: &mut Criterion) {
    const SIZE: usize = 1024 * 1024;
    let repeat = |unit: &str, open: &str, close: &str| {
        let mut out = String::from(open);
        while out.len() + unit.len() + close.len() < SIZE {
            if out.len() > open.len() {
                out.push(',');
            }
            out.push_str(unit);
        }
        out.push_str(close);
        out.into_bytes()
    };
    // 1,000 keys of 256 bytes that differ only at the end: every key hashed in full, into the
    // seeded set.
    let long_keys = {
        let prefix = "k".repeat(250);
        let members: Vec<String> = (0..1000)
            .map(|i| format!(r#""{prefix}{i:06}":0"#))
            .collect();
        repeat(&format!("{{{}}}", members.join(",")), "[", "]")
    };
    // Objects of exactly `SMALL_OBJECT` keys (the inline comparison's worst case), keys sharing
    // a prefix.
    let small_objects = {
        let members: Vec<String> = (0..palisade::json::scan::SMALL_OBJECT)
            .map(|i| format!(r#""field_name_{i:02}":{i}"#))
            .collect();
        repeat(&format!("{{{}}}", members.join(",")), "[", "]")
    };
    let nesting = repeat(&format!("{}{}", "[".repeat(63), "]".repeat(63)), "[", "]");
    let escapes = repeat(r#""\"\u00e9\ud83d\ude00\n\"""#, "[", "]");
    let numbers = repeat("-12345678901234567.890123456789e-300", "[", "]");
    let limits = Limits::default();
    let mut group = c.benchmark_group("json/adversarial-1MiB");
    for (name, bytes) in [
        ("long-keys", long_keys),
        ("small-objects", small_objects),
        ("nesting", nesting),
        ("escapes", escapes),
        ("numbers", numbers),
    ] {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        assert!(validate(&bytes, &limits).is_ok(), "{name}");
        group.bench_function(format!("palisade/strict-check/{name}"), |b| {
            b.iter(|| black_box(validate(black_box(&bytes), &limits).unwrap()));
        });
        group.bench_function(format!("serde_json/ignored-any/{name}"), |b| {
            b.iter(|| black_box(serde_json::from_slice::<IgnoredAny>(black_box(&bytes)).unwrap()));
        });
    }
    group.finish();
}

criterion_group!(benches, json, adversarial);
criterion_main!(benches);
