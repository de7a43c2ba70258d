//! Harnesses for the fuzz targets and property tests (doc-hidden feature `__fuzz`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::alg::Alg;
use crate::key::{JwkOptions, Key, KeySet};
use crate::rules::Rules;
use crate::verify::Verifier;

const SECRET: &[u8] = b"palisade fuzzing secret, 32 byte";
const NOW: u64 = 1_800_000_000;

fn sign(signing_input: &str) -> String {
    crate::backend::ensure();
    let Ok(key) = jsonwebtoken::EncodingKey::from_secret(SECRET) else {
        return String::new();
    };
    jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap_or_default()
}

/// Tokens with fixed keys. `data` is used twice: as a token string as sent (nothing may panic,
/// and a token the fuzzer made up never verifies), and split at its first NUL into a header and
/// a payload that the harness signs with the HS256 key, so every check after the signature is
/// reached. A signed token is accepted only if its header names HS256 without `crit` or a
/// nested `cty`, and its claims pass the rules at the fixed time.
///
/// # Panics
///
/// When an invariant breaks.
pub fn token(data: &[u8]) {
    let keys = KeySet::new([Key::hmac(Alg::HS256, SECRET).expect("a valid secret")]);
    let verifier = Verifier::new(keys, Rules::new().with_audiences(["api"]));
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let text = std::str::from_utf8(data).ok();
    if let Some(Ok(verified)) = text.map(|t| verifier.verify_at::<serde_json::Value>(t, now)) {
        let text = text.unwrap_or_default();
        {
            // Only a token the harness signed itself can verify: the fuzzer would have to
            // find an HMAC.
            let header = crate::token::parse(text, usize::MAX).expect("it verified");
            assert_eq!(header.header.alg, Alg::HS256);
            assert_eq!(
                sign(header.signing_input),
                header.signature,
                "forged: {verified:?}"
            );
        }
    }
    let (header, payload) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let token = format!("{signing_input}.{}", sign(&signing_input));
    let outcome = verifier.verify_at::<serde_json::Value>(&token, now);
    let parsed_header: Option<serde_json::Value> = serde_json::from_slice(header).ok();
    let alg = parsed_header
        .as_ref()
        .and_then(|h| h.get("alg"))
        .and_then(|a| a.as_str());
    // A refusal is right whatever its reason (a claim of the wrong type is found before the
    // key is looked up); an acceptance must have met every rule.
    if let Ok(verified) = outcome {
        assert_eq!(alg, Some("HS256"), "accepted another alg");
        let h = parsed_header.expect("accepted a header that is not JSON");
        assert!(h.get("crit").is_none(), "accepted crit");
        let claims: serde_json::Value =
            serde_json::from_slice(payload).expect("accepted a payload that is not JSON");
        let exp = claims.get("exp").and_then(serde_json::Value::as_f64);
        assert!(
            exp.is_some_and(|exp| exp + 60.0 > 1_800_000_000.0),
            "accepted expired"
        );
        assert!(verified.claims.registered().aud.iter().any(|a| a == "api"));
    }
}

/// JWK sets: nothing panics; a set is never empty or over the cap; every key's algorithm fits
/// its kind; a set with symmetric keys allowed holds at least the keys of one without.
///
/// # Panics
///
/// When an invariant breaks.
pub fn jwks(data: &[u8]) {
    let public = KeySet::from_jwks(data, &JwkOptions::default());
    let with_secrets = KeySet::from_jwks(
        data,
        &JwkOptions {
            allow_symmetric: true,
            ..JwkOptions::default()
        },
    );
    if let Ok(set) = &public {
        assert!(!set.is_empty() && set.len() <= crate::key::MAX_JWKS_KEYS);
        assert!(
            set.keys()
                .all(|k| k.alg().key_kind() != crate::alg::KeyKind::Hmac)
        );
        let secrets = with_secrets
            .as_ref()
            .expect("more keys allowed, still a set");
        assert!(secrets.len() >= set.len());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::jwks::cache_control::lifetime(text);
    }
}

/// OIDC discovery documents: an accepted one names exactly the issuer and an HTTPS (or
/// loopback) `jwks_uri`.
///
/// # Panics
///
/// When an invariant breaks.
pub fn oidc(data: &[u8]) {
    let issuer = "https://idp.example/tenant";
    if let Ok(uri) = crate::jwks::oidc::jwks_uri(data, issuer, false) {
        let document: serde_json::Value = serde_json::from_slice(data).expect("it was accepted");
        assert_eq!(document["issuer"], issuer);
        assert!(crate::jwks::transport_allowed(&uri, false));
    }
}

/// The time the harness verifies at.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}
