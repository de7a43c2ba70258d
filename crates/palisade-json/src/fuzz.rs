//! Harnesses for the fuzz targets and property tests (doc-hidden feature `__differential`).

use serde_json::Value;

use crate::limits::Limits;
use crate::scan::{Stats, validate};

/// What `serde_json` parsed, counted the way [`validate`] counts.
pub fn stats_of(value: &Value) -> Stats {
    fn walk(value: &Value, depth: u32, stats: &mut Stats) {
        match value {
            Value::Null | Value::Bool(_) => stats.literals += 1,
            Value::Number(_) => stats.numbers += 1,
            Value::String(_) => stats.strings += 1,
            Value::Array(items) => {
                stats.arrays += 1;
                stats.depth = stats.depth.max(depth + 1);
                for item in items {
                    walk(item, depth + 1, stats);
                }
            }
            Value::Object(members) => {
                stats.objects += 1;
                stats.members += members.len() as u64;
                stats.depth = stats.depth.max(depth + 1);
                for member in members.values() {
                    walk(member, depth + 1, stats);
                }
            }
        }
    }
    let mut stats = Stats::default();
    walk(value, 0, &mut stats);
    stats
}

/// The differential rule on any bytes, with the default limits: whatever `serde_json` rejects,
/// the scanner rejects; whatever the scanner accepts, `serde_json` parses to a value with the same
/// counts of every kind of node and the same depth (keys are unique, so none collapsed). A
/// rejection's offset is inside the input and its pointer short.
///
/// # Panics
///
/// When the two disagree.
pub fn json_strict(data: &[u8]) {
    let limits = Limits::default();
    let ours = validate(data, &limits);
    if let Err(rejected) = &ours {
        assert!(rejected.offset() <= data.len(), "offset past the end");
        // Per level: `/`, then a segment of at most MAX_POINTER_SEGMENT characters, each at
        // most two once escaped, and `…`.
        let per_level = 2 * crate::scan::MAX_POINTER_SEGMENT + 2;
        assert!(
            rejected.pointer().chars().count() <= limits.depth() as usize * per_level,
            "pointer longer than its bound"
        );
    }
    match serde_json::from_slice::<Value>(data) {
        Err(_) => assert!(ours.is_err(), "serde_json rejects what the scanner accepts"),
        Ok(value) => {
            if let Ok(stats) = ours {
                assert_eq!(
                    stats,
                    stats_of(&value),
                    "the scanner and serde_json disagree"
                );
            }
        }
    }
}
