//! Every file of `JSONTestSuite` (`nst/JSONTestSuite`, `../shared/testdata/`): each `y_` accepted,
//! each `n_` rejected, and each implementation-defined `i_` case decided here, with the reason.

use std::collections::BTreeMap;
use std::path::PathBuf;

use palisade_json::{DuplicateKeys, Limits, LossyNumbers, Reason, validate};

fn suite() -> BTreeMap<String, Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/JSONTestSuite/test_parsing");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|err| {
        panic!(
            "JSONTestSuite must be beside the project at {}: {err}",
            dir.display()
        )
    });
    let files: BTreeMap<String, Vec<u8>> = entries
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    assert_eq!(files.len(), 318, "the whole suite is there");
    files
}

/// The two `y_` files that name a key twice: valid RFC 8259, refused by default because a proxy
/// and a handler may read different values from them (see `DuplicateKeys`).
const DUPLICATE_KEY_FILES: [&str; 2] = [
    "y_object_duplicated_key.json",
    "y_object_duplicated_key_and_value.json",
];

#[test]
fn every_y_file_is_accepted_and_every_n_file_rejected() {
    let limits = Limits::default();
    let allowing = Limits::default().duplicate_keys(DuplicateKeys::Allow);
    let mut checked = 0;
    for (name, bytes) in suite() {
        let result = validate(&bytes, &limits);
        if DUPLICATE_KEY_FILES.contains(&name.as_str()) {
            assert_eq!(result.unwrap_err().reason(), Reason::DuplicateKey, "{name}");
            assert!(validate(&bytes, &allowing).is_ok(), "{name} when allowed");
            checked += 1;
        } else if name.starts_with("y_") {
            assert!(result.is_ok(), "{name} must be accepted: {result:?}");
            assert!(validate(&bytes, &allowing).is_ok(), "{name}");
            checked += 1;
        } else if name.starts_with("n_") {
            assert!(result.is_err(), "{name} must be rejected");
            assert!(validate(&bytes, &allowing).is_err(), "{name}");
            checked += 1;
        }
    }
    assert_eq!(checked, 318 - 35);
}

/// The implementation-defined cases, each decided: the decision, and the rule behind it.
#[test]
fn every_i_file_is_decided() {
    use Reason::*;
    let decisions: &[(&str, Option<Reason>)] = &[
        // Numbers that a handler would not see as written are refused by default (with
        // `LossyNumbers::Allow` they are accepted: see below).
        ("i_number_double_huge_neg_exp.json", Some(LossyNumber)),
        // Over 400 characters: longer than the default 128.
        ("i_number_huge_exp.json", Some(NumberTooLong)),
        ("i_number_neg_int_huge_exp.json", Some(LossyNumber)),
        ("i_number_pos_double_huge_exp.json", Some(LossyNumber)),
        ("i_number_real_neg_overflow.json", Some(LossyNumber)),
        ("i_number_real_pos_overflow.json", Some(LossyNumber)),
        ("i_number_real_underflow.json", Some(LossyNumber)),
        ("i_number_too_big_neg_int.json", Some(LossyNumber)),
        ("i_number_too_big_pos_int.json", Some(LossyNumber)),
        ("i_number_very_big_negative_int.json", Some(LossyNumber)),
        // Half a surrogate pair is not a character: refused.
        ("i_object_key_lone_2nd_surrogate.json", Some(LoneSurrogate)),
        (
            "i_string_1st_surrogate_but_2nd_missing.json",
            Some(LoneSurrogate),
        ),
        (
            "i_string_1st_valid_surrogate_2nd_invalid.json",
            Some(LoneSurrogate),
        ),
        (
            "i_string_incomplete_surrogate_and_escape_valid.json",
            Some(LoneSurrogate),
        ),
        (
            "i_string_incomplete_surrogate_pair.json",
            Some(LoneSurrogate),
        ),
        (
            "i_string_incomplete_surrogates_escape_valid.json",
            Some(LoneSurrogate),
        ),
        (
            "i_string_invalid_lonely_surrogate.json",
            Some(LoneSurrogate),
        ),
        ("i_string_invalid_surrogate.json", Some(LoneSurrogate)),
        (
            "i_string_inverted_surrogates_U+1D11E.json",
            Some(LoneSurrogate),
        ),
        ("i_string_lone_second_surrogate.json", Some(LoneSurrogate)),
        // Only UTF-8, and no byte-order mark (RFC 8259 section 8.1).
        ("i_string_UTF-16LE_with_BOM.json", Some(NotUtf8)),
        ("i_string_UTF-8_invalid_sequence.json", Some(NotUtf8)),
        ("i_string_UTF8_surrogate_U+D800.json", Some(NotUtf8)),
        ("i_string_invalid_utf-8.json", Some(NotUtf8)),
        ("i_string_iso_latin_1.json", Some(NotUtf8)),
        ("i_string_lone_utf8_continuation_byte.json", Some(NotUtf8)),
        ("i_string_not_in_unicode_range.json", Some(NotUtf8)),
        ("i_string_overlong_sequence_2_bytes.json", Some(NotUtf8)),
        ("i_string_overlong_sequence_6_bytes.json", Some(NotUtf8)),
        (
            "i_string_overlong_sequence_6_bytes_null.json",
            Some(NotUtf8),
        ),
        ("i_string_truncated-utf-8.json", Some(NotUtf8)),
        ("i_string_utf16BE_no_BOM.json", Some(NotUtf8)),
        ("i_string_utf16LE_no_BOM.json", Some(NotUtf8)),
        (
            "i_structure_UTF-8_BOM_empty_object.json",
            Some(ByteOrderMark),
        ),
        // 500 levels exceed the default depth of 64 (accepted with a larger limit: below).
        ("i_structure_500_nested_arrays.json", Some(TooDeep)),
    ];
    let suite = suite();
    let i_files: Vec<_> = suite.keys().filter(|n| n.starts_with("i_")).collect();
    assert_eq!(i_files.len(), decisions.len(), "every i_ file is decided");
    for (name, expected) in decisions {
        let bytes = &suite[*name];
        let got = validate(bytes, &Limits::default())
            .err()
            .map(|r| r.reason());
        assert_eq!(got, *expected, "{name}");
    }
    // The limits, not the grammar, decide the number and depth cases.
    let lenient = Limits::default()
        .lossy_numbers(LossyNumbers::Allow)
        .max_depth(1024)
        .max_number_len(1024);
    for (name, expected) in decisions {
        if matches!(expected, Some(LossyNumber | TooDeep | NumberTooLong)) {
            assert!(
                validate(&suite[*name], &lenient).is_ok(),
                "{name} under lenient limits"
            );
        }
    }
}

#[test]
fn rejections_point_at_the_place_and_never_quote_the_document() {
    let cases: &[(&[u8], Reason, &str, usize)] = &[
        (b"", Reason::Empty, "", 0),
        (b"  \n", Reason::Empty, "", 3),
        (b"{\"a\":1,\"a\":2}", Reason::DuplicateKey, "/a", 7),
        (
            br#"{"x":{"y":[{"k":1},{"k":2,"k":3}]}}"#,
            Reason::DuplicateKey,
            "/x/y/1/k",
            26,
        ),
        (br#"{"a":1,"\u0061":2}"#, Reason::DuplicateKey, "/a", 7),
        (br#"{"a/b~c":[tru]}"#, Reason::Unexpected, "/a~1b~0c/0", 10),
        (b"[1,2,]", Reason::Unexpected, "/2", 5),
        (b"{\"a\":1}x", Reason::TrailingData, "", 7),
        (b"[\"a\x01\"]", Reason::ControlCharacter, "/0", 3),
        (br#"["\x"]"#, Reason::InvalidEscape, "/0", 2),
        (br#"["\ud800"]"#, Reason::LoneSurrogate, "/0", 2),
        (b"[01]", Reason::Unexpected, "/0", 2),
        (b"[1.]", Reason::InvalidNumber, "/0", 3),
        (b"[-]", Reason::InvalidNumber, "/0", 2),
        (b"{\"a\":[1,2", Reason::UnexpectedEnd, "/a/1", 9),
        (b"\xEF\xBB\xBF{}", Reason::ByteOrderMark, "", 0),
        (b"[\"\xFF\"]", Reason::NotUtf8, "", 2),
        (b"18446744073709551616", Reason::LossyNumber, "", 0),
        (b"-9223372036854775809", Reason::LossyNumber, "", 0),
        (b"1e400", Reason::LossyNumber, "", 0),
        (b"1e-400", Reason::LossyNumber, "", 0),
        (
            format!("0.{}1", "0".repeat(400)).leak().as_bytes(),
            Reason::LossyNumber,
            "",
            0,
        ),
    ];
    let limits = Limits::default().max_number_len(1024);
    for (input, reason, pointer, offset) in cases {
        let rejected = validate(input, &limits).unwrap_err();
        let shown = String::from_utf8_lossy(input);
        assert_eq!(rejected.reason(), *reason, "{shown}");
        assert_eq!(rejected.pointer(), *pointer, "{shown}");
        assert_eq!(rejected.offset(), *offset, "{shown}");
    }
    for fine in [
        &b"18446744073709551615"[..],
        b"-9223372036854775808",
        b"0e-400",
        b"1.7976931348623157e308",
        b"5e-324",
        b"[0.0, -0, 1E+2, 123456789012345678]",
    ] {
        assert!(
            validate(fine, &Limits::default()).is_ok(),
            "{}",
            String::from_utf8_lossy(fine)
        );
    }
}

#[test]
fn a_long_key_is_cut_in_the_pointer() {
    let key = "k".repeat(200);
    let doc = format!(r#"{{"{key}": [1, ]}}"#);
    let rejected = validate(doc.as_bytes(), &Limits::default().max_key_bytes(1000)).unwrap_err();
    assert_eq!(rejected.pointer(), format!("/{}…/1", "k".repeat(32)));
}

#[test]
fn each_limit_is_enforced() {
    let limits = Limits::default()
        .max_depth(3)
        .max_keys(2)
        .max_array_len(3)
        .max_string_bytes(5)
        .max_key_bytes(3)
        .max_number_len(4);
    let cases: &[(&str, Option<Reason>)] = &[
        ("[[[]]]", None),
        ("[[[[]]]]", Some(Reason::TooDeep)),
        (r#"{"a":1,"b":2}"#, None),
        (r#"{"a":1,"b":2,"c":3}"#, Some(Reason::TooManyKeys)),
        ("[1,2,3]", None),
        ("[1,2,3,4]", Some(Reason::ArrayTooLong)),
        (r#"["12345"]"#, None),
        (r#"["123456"]"#, Some(Reason::StringTooLong)),
        (r#"{"abc":1}"#, None),
        (r#"{"abcd":1}"#, Some(Reason::KeyTooLong)),
        ("[1234]", None),
        ("[12345]", Some(Reason::NumberTooLong)),
        ("[-1.5]", None),
        ("[1e100]", Some(Reason::NumberTooLong)),
    ];
    for (doc, expected) in cases {
        let got = validate(doc.as_bytes(), &limits).err().map(|r| r.reason());
        assert_eq!(got, *expected, "{doc}");
    }
}

#[test]
fn duplicates_are_found_at_any_depth_and_size() {
    // A large object switches to the hash set; duplicates are still found, escaped or not.
    let mut members: Vec<String> = (0..500).map(|i| format!(r#""key{i}":{i}"#)).collect();
    let unique = format!("{{{}}}", members.join(","));
    assert!(validate(unique.as_bytes(), &Limits::default()).is_ok());
    members.push(r#""key\u0034\u0032":0"#.to_owned());
    let duplicated = format!(r#"{{"outer":[{{{}}}]}}"#, members.join(","));
    let rejected = validate(duplicated.as_bytes(), &Limits::default()).unwrap_err();
    assert_eq!(rejected.reason(), Reason::DuplicateKey);
    assert_eq!(rejected.pointer(), "/outer/0/key42");
    // Same key names in different objects are fine.
    assert!(validate(br#"[{"a":1},{"a":2},{"b":{"a":3}}]"#, &Limits::default()).is_ok());
}
