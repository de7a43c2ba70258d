//! The scanner against `serde_json`, as property tests (the fuzz target `json_strict` runs the
//! same comparison on mutated bytes): every document `serde_json` writes is accepted with the
//! same counts, and every document `serde_json` rejects, the scanner rejects.
#![cfg(feature = "__differential")]

use palisade_json::__fuzz::{json_strict as check, stats_of};
use palisade_json::{Limits, validate};
use proptest::prelude::*;
use serde_json::Value;

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn whatever_serde_json_writes_is_accepted_with_the_same_counts(value in value()) {
        let expected = stats_of(&value);
        for text in [serde_json::to_string(&value).unwrap(), serde_json::to_string_pretty(&value).unwrap()] {
            let stats = validate(text.as_bytes(), &Limits::default());
            prop_assert_eq!(stats.as_ref().ok(), Some(&expected), "{} -> {:?}", text, stats);
        }
    }

    #[test]
    fn what_serde_json_rejects_is_rejected(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        check(&bytes);
    }

    #[test]
    fn mutated_documents_agree(value in value(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = serde_json::to_vec(&value).unwrap();
        let at = at.index(bytes.len());
        bytes[at] = byte;
        check(&bytes);
    }
}
