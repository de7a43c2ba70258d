//! Splitting and decoding a compact JWS, strictly, before any key is looked at.
//!
//! The checks, in order, each in one linear pass: the length is capped before anything is
//! decoded; there are exactly three parts, none empty; each is unpadded base64url in its
//! canonical form (no `=`, no stray bits in the last character); the header is a JSON object
//! naming each member at most once, with a supported `alg` (never `none`), no `crit` (Palisade
//! implements no header extension, so any is refused, as RFC 7515 requires), and no
//! `cty: JWT` (nested tokens are refused). `jku`, `x5u`, `jwk` and `x5c` are read past: a
//! token never chooses the key it is checked with.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::alg::Alg;
use crate::error::{TokenError, TokenReason};

/// The default longest token, in bytes (8 KiB): a generous access token with many claims.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// A token's protected header, as far as verification reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The signature algorithm.
    pub alg: Alg,
    /// The key id.
    pub kid: Option<String>,
    /// The media type of the whole token (`JWT`, `at+jwt`, ...).
    pub typ: Option<String>,
}

/// The members the header is read for. serde refuses a member named twice, so `{"alg":"RS256",
/// "alg":"HS256"}` cannot mean one thing here and another elsewhere.
#[derive(Deserialize)]
struct RawHeader<'h> {
    #[serde(borrow)]
    alg: Cow<'h, str>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default, borrow)]
    cty: Option<Cow<'h, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub struct Parsed<'t> {
    /// The protected header.
    pub header: Header,
    /// The decoded payload.
    pub payload: Vec<u8>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'t str,
    /// The signature, still base64url (checked to be canonical).
    pub signature: &'t str,
}

/// Splits and decodes `token`, at most `max_len` bytes long.
///
/// # Errors
///
/// [`TokenReason::TooLarge`], [`TokenReason::Malformed`], [`TokenReason::UnsupportedAlgorithm`],
/// [`TokenReason::CriticalHeader`] or [`TokenReason::NestedToken`].
pub fn parse(token: &str, max_len: usize) -> Result<Parsed<'_>, TokenError> {
    if token.len() > max_len {
        return Err(TokenReason::TooLarge.into());
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenReason::Malformed.into());
    };
    if header_b64.is_empty() || payload_b64.is_empty() || signature.is_empty() {
        return Err(TokenReason::Malformed.into());
    }
    let header_bytes = decode(header_b64)?;
    if !is_json_object(&header_bytes) || !members_unique(&header_bytes) {
        return Err(TokenReason::Malformed.into());
    }
    let raw: RawHeader<'_> = serde_json::from_slice(&header_bytes)
        .map_err(|_| TokenError::new(TokenReason::Malformed))?;
    let alg: Alg = raw
        .alg
        .parse()
        .map_err(|_| TokenError::new(TokenReason::UnsupportedAlgorithm))?;
    if raw.crit.is_some() {
        return Err(TokenReason::CriticalHeader.into());
    }
    if raw
        .cty
        .as_deref()
        .is_some_and(|cty| media_type_is(cty, "jwt"))
    {
        return Err(TokenReason::NestedToken.into());
    }
    // The signature is decoded by the verifier; check its form here so every part is held to
    // the same rule.
    if !is_canonical_base64url(signature) {
        return Err(TokenReason::Malformed.into());
    }
    let payload = decode(payload_b64)?;
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(TokenError::new(TokenReason::Malformed))?;
    Ok(Parsed {
        header: Header {
            alg,
            kid: raw.kid,
            typ: raw.typ,
        },
        payload,
        signing_input,
        signature,
    })
}

/// Whether `bytes` is UTF-8 holding a JSON object with no unpaired surrogate escape. serde
/// reads a struct from an array too, and `serde_json` checks neither the UTF-8 nor the
/// `\uD800`-style escapes of members a struct ignores (both found by the `jwt_oidc` fuzz
/// target), so all three are checked first: a document is used only if it is wholly readable.
pub(crate) fn is_json_object(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().first() == Some(&b'{')
        && std::str::from_utf8(bytes).is_ok()
        && surrogate_escapes_paired(bytes)
}

/// Whether every `\uD800`-`\uDBFF` escape is followed at once by a `\uDC00`-`\uDFFF` one and
/// every low one is preceded by a high one. One pass; other escapes are skipped whole, so
/// `\\u` is an escaped backslash and a `u`.
fn surrogate_escapes_paired(bytes: &[u8]) -> bool {
    let hex4 = |at: usize| -> Option<u16> {
        let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
        u16::from_str_radix(digits, 16).ok()
    };
    let mut i = 0;
    let mut pending_high = false;
    while let Some(&byte) = bytes.get(i) {
        if byte != b'\\' {
            if pending_high {
                return false;
            }
            i += 1;
            continue;
        }
        if bytes.get(i + 1) != Some(&b'u') {
            if pending_high {
                return false;
            }
            i += 2;
            continue;
        }
        let Some(unit) = hex4(i + 2) else {
            // Not an escape at all.
            return false;
        };
        match unit {
            0xD800..=0xDBFF if pending_high => return false,
            0xD800..=0xDBFF => pending_high = true,
            0xDC00..=0xDFFF if !pending_high => return false,
            _ if pending_high && !(0xDC00..=0xDFFF).contains(&unit) => return false,
            _ => pending_high = false,
        }
        i += 6;
    }
    !pending_high
}

/// Whether the JSON object `bytes` names each member once, compared after unescaping (`"a"`
/// and `"\u0061"` are one name). The members verification reads would be refused twice over by
/// serde, but a member it skips would not: a header naming `jku` or `x5c` twice means one
/// thing to one reader and another to the next, so it is refused whole.
fn members_unique(bytes: &[u8]) -> bool {
    struct Unique;
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object naming each member once")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                if !seen.insert(name) {
                    return Err(serde::de::Error::custom("a member named twice"));
                }
                map.next_value::<serde::de::IgnoredAny>()?;
            }
            Ok(())
        }
    }
    serde::Deserializer::deserialize_map(&mut serde_json::Deserializer::from_slice(bytes), Unique)
        .is_ok()
}

/// Decodes unpadded, canonical base64url.
pub(crate) fn decode(part: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::new(TokenReason::Malformed))
}

/// Whether `part` is unpadded base64url whose last character carries no stray bits.
fn is_canonical_base64url(part: &str) -> bool {
    let bytes = part.as_bytes();
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    {
        return false;
    }
    let value = |b: u8| -> u8 {
        match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            _ => 63,
        }
    };
    match bytes.len() % 4 {
        1 => false,
        2 => bytes
            .last()
            .is_some_and(|b| value(*b).trailing_zeros() >= 4),
        3 => bytes
            .last()
            .is_some_and(|b| value(*b).trailing_zeros() >= 2),
        _ => true,
    }
}

/// Whether the media type `value` (a `typ` or `cty`) is `application/<expected>`, written with
/// or without the `application/` prefix (RFC 7515, section 4.1.9), in any case.
pub fn media_type_is(value: &str, expected: &str) -> bool {
    strip_application(value.trim()).eq_ignore_ascii_case(strip_application(expected))
}

/// `value` without a leading `application/` in any case. Compared as bytes: `value` is
/// client text, and a byte offset into it need not fall on a character boundary.
fn strip_application(value: &str) -> &str {
    const PREFIX: &[u8] = b"application/";
    match value.as_bytes().split_at_checked(PREFIX.len()) {
        Some((head, rest)) if head.eq_ignore_ascii_case(PREFIX) && !rest.is_empty() => {
            // `head` is ASCII, so `rest` starts on a character boundary.
            std::str::from_utf8(rest).unwrap_or(value)
        }
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unpaired_surrogate_escapes_make_a_document_unreadable() {
        for (text, readable) in [
            (r#"{"a":"\ud83d\ude00"}"#, true),
            (r#"{"a":"\u00e9\\ud800"}"#, true),
            (r#"{"a":"\ud800"}"#, false),
            (r#"{"a":"\ude00"}"#, false),
            (r#"{"a":"\ud800x"}"#, false),
            (r#"{"a":"\ud800\ud800"}"#, false),
            (r#"{"a":"\ud800\n"}"#, false),
            (r#"{"a":"\u12"}"#, false),
            (r#"{"a":"\uzzzz"}"#, false),
        ] {
            assert_eq!(super::is_json_object(text.as_bytes()), readable, "{text}");
            // The same answer as reading the whole document.
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                readable,
                "{text}"
            );
        }
    }

    use super::*;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }

    fn reason(token: &str) -> TokenReason {
        parse(token, DEFAULT_MAX_TOKEN_LEN).unwrap_err().reason()
    }

    #[test]
    fn a_well_formed_token_splits() {
        let token = token(
            r#"{"alg":"RS256","kid":"k1","typ":"JWT","x5u":"https://evil"}"#,
            "{}",
        );
        let parsed = parse(&token, DEFAULT_MAX_TOKEN_LEN).unwrap();
        assert_eq!(parsed.header.alg, Alg::RS256);
        assert_eq!(parsed.header.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.payload, b"{}");
        assert_eq!(parsed.signature, "c2ln");
        assert_eq!(parsed.signing_input, token.rsplit_once('.').unwrap().0);
    }

    #[test]
    fn structure_and_encoding_are_strict() {
        let good_header = b64(r#"{"alg":"HS256"}"#);
        let payload = b64("{}");
        for bad in [
            String::new(),
            "a.b".to_owned(),
            format!("{good_header}.{payload}"),
            format!("{good_header}.{payload}."),
            format!("{good_header}..c2ln"),
            format!(".{payload}.c2ln"),
            format!("{good_header}.{payload}.c2ln.extra"),
            format!("{good_header}.{payload}=.c2ln"),
            format!("{good_header}.{payload}.c2ln="),
            format!("{good_header}.{payload}.c2l+"),
            format!("{good_header}.{payload}.c2l/"),
            // `e30` is `{}`; `e31` decodes to the same bytes with stray low bits.
            format!("{good_header}.e31.c2ln"),
            format!("{good_header}.{payload}.c2lnZB"),
            format!("{good_header}.{payload}.c2lnZ"),
            format!("{good_header} .{payload}.c2ln"),
            format!("{}.{payload}.c2ln", b64("not json")),
            format!("{}.{payload}.c2ln", b64(r#"["alg","HS256"]"#)),
            format!("{}.{payload}.c2ln", b64(r#"{"typ":"JWT"}"#)),
            format!("{}.{payload}.c2ln", b64(r#"{"alg":"HS256","alg":"RS256"}"#)),
            // A member verification skips, named twice (spelled once with an escape).
            format!(
                "{}.{payload}.c2ln",
                b64(r#"{"alg":"HS256","jku":"a","jku":"b"}"#)
            ),
            format!(
                "{}.{payload}.c2ln",
                b64(r#"{"alg":"HS256","x":1,"\u0078":2}"#)
            ),
            format!("{}.{payload}.c2ln", b64(r#"{"alg":256}"#)),
        ] {
            assert_eq!(reason(&bad), TokenReason::Malformed, "{bad}");
        }
    }

    #[test]
    fn a_header_with_invalid_utf8_in_an_ignored_member_is_refused() {
        let mut header = br#"{"alg":"HS256","x":""#.to_vec();
        header.extend_from_slice(b"\xFF\"}");
        let token = format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(&header));
        assert_eq!(reason(&token), TokenReason::Malformed);
    }

    #[test]
    fn none_and_unknown_algorithms_are_refused() {
        for alg in ["none", "None", "HS256 ", "ES512", "RSA-OAEP", "dir", ""] {
            let header = format!(r#"{{"alg":"{alg}"}}"#);
            assert_eq!(
                reason(&token(&header, "{}")),
                TokenReason::UnsupportedAlgorithm,
                "{alg}"
            );
        }
    }

    #[test]
    fn crit_and_nested_tokens_are_refused() {
        for header in [
            r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"HS256","crit":[]}"#,
            r#"{"alg":"HS256","crit":"b64"}"#,
        ] {
            assert_eq!(
                reason(&token(header, "{}")),
                TokenReason::CriticalHeader,
                "{header}"
            );
        }
        for cty in ["JWT", "jwt", "application/jwt", "APPLICATION/JWT"] {
            let header = format!(r#"{{"alg":"HS256","cty":"{cty}"}}"#);
            assert_eq!(
                reason(&token(&header, "{}")),
                TokenReason::NestedToken,
                "{cty}"
            );
        }
        let header = r#"{"alg":"HS256","cty":"json"}"#;
        assert!(parse(&token(header, "{}"), DEFAULT_MAX_TOKEN_LEN).is_ok());
    }

    #[test]
    fn the_length_is_capped_before_decoding() {
        let long = format!("{}.{}.c2ln", "A".repeat(9000), b64("{}"));
        assert_eq!(reason(&long), TokenReason::TooLarge);
        let token = token(r#"{"alg":"HS256"}"#, "{}");
        assert_eq!(
            parse(&token, token.len() - 1).unwrap_err().reason(),
            TokenReason::TooLarge
        );
        assert!(parse(&token, token.len()).is_ok());
    }

    #[test]
    fn media_types_compare_with_or_without_prefix() {
        assert!(media_type_is("at+jwt", "at+jwt"));
        assert!(media_type_is("application/at+JWT", "at+jwt"));
        assert!(media_type_is("AT+JWT", "application/at+jwt"));
        assert!(!media_type_is("jwt", "at+jwt"));
        assert!(!media_type_is("application/", "at+jwt"));
    }

    /// Issue 16, item 1: a `cty` or `typ` whose 12th byte fell inside a multi-byte character
    /// panicked (`value[..12]`) before any key was looked up.
    #[test]
    fn media_types_with_non_ascii_text_never_panic() {
        for value in [
            "xxxxxxxxxxxé",
            "xxxxxxxxxxxéjwt",
            "ééééééé",
            "applicationé/jwt",
            "application/é",
            "\u{1F600}\u{1F600}\u{1F600}x",
            "APPLICATION/JWT",
        ] {
            let _ = media_type_is(value, "jwt");
            let _ = media_type_is("jwt", value);
        }
        assert!(media_type_is("APPLICATION/JWT", "jwt"));
        assert!(!media_type_is("xxxxxxxxxxxé", "jwt"));
        for cty in ["xxxxxxxxxxxé", "xxxxxxxxxxxé\\njwt", "aaaaaaaaaaaé/jwt"] {
            let header = format!(r#"{{"alg":"ES256","cty":"{cty}"}}"#);
            assert!(
                parse(&token(&header, "{}"), DEFAULT_MAX_TOKEN_LEN).is_ok(),
                "{cty}"
            );
            let header = format!(r#"{{"alg":"ES256","typ":"{cty}"}}"#);
            let typed = token(&header, "{}");
            let parsed = parse(&typed, DEFAULT_MAX_TOKEN_LEN).unwrap();
            let rules = crate::rules::Rules::new().with_types(["at+jwt"]);
            assert_eq!(
                rules.check_header(&parsed.header).unwrap_err().reason(),
                TokenReason::WrongType
            );
        }
    }
}
