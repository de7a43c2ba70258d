//! Harnesses for the fuzz targets and property tests (doc-hidden feature `__fuzz`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::alg::Alg;
use crate::key::{JwkOptions, JwtKey, JwtKeySet};
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
    let keys = JwtKeySet::new([JwtKey::hmac(Alg::HS256, SECRET).expect("a valid secret")]);
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
    let public = JwtKeySet::from_jwks(data, &JwkOptions::default());
    let with_secrets = JwtKeySet::from_jwks(
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
    /// The member the check reads back. Not `serde_json::Value`: it refuses numbers beyond
    /// `f64` (`56.3e3333`), which RFC 8259 allows and an ignored member may hold (the fuzzer's
    /// find: the oracle was stricter than JSON, not the parser wrong).
    #[derive(serde::Deserialize)]
    struct Named {
        issuer: String,
    }
    let issuer = "https://idp.example/tenant";
    if let Ok(uri) = crate::jwks::oidc::jwks_uri(data, issuer, false) {
        let document: Named = serde_json::from_slice(data).expect("it was accepted");
        assert_eq!(document.issuer, issuer);
        assert!(crate::jwks::transport_allowed(&uri, false));
    }
}

/// The time the harness verifies at.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// RSA public keys in DER and PEM (issue 16: the 2048-bit minimum): nothing panics, and a
/// key that loads has a modulus of at least [`MIN_RSA_BITS`](crate::key::MIN_RSA_BITS) bits.
///
/// # Panics
///
/// When an invariant breaks.
pub fn key_der(data: &[u8]) {
    if let Ok(key) = JwtKey::from_der(Alg::RS256, data) {
        assert!(crate::key::rsa_modulus_bits(&key).is_some_and(|b| b >= crate::key::MIN_RSA_BITS));
    }
    if let Ok(key) = JwtKey::from_pem(Alg::PS256, data) {
        assert!(crate::key::rsa_modulus_bits(&key).is_some_and(|b| b >= crate::key::MIN_RSA_BITS));
    }
    // The DER inside a PEM wrapper, so the fuzzer's bytes reach the parser both ways.
    let pem = format!(
        "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(data)
    );
    if let Ok(key) = JwtKey::from_pem(Alg::RS256, pem.as_bytes()) {
        assert!(crate::key::rsa_modulus_bits(&key).is_some_and(|b| b >= crate::key::MIN_RSA_BITS));
    }
}

/// A JSON value the fuzzer builds: any strings (non-ASCII, escapes, controls), numbers of any
/// size, nesting a few levels deep.
#[derive(Debug, Clone)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (written as `serde_json` writes it; a non-finite one as `null`).
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, members in order (a name may repeat).
    Object(Vec<(String, Json)>),
}

impl Json {
    fn arbitrary_at(u: &mut arbitrary::Unstructured<'_>, depth: u32) -> arbitrary::Result<Self> {
        use arbitrary::Arbitrary;
        let choices = if depth >= 3 { 5 } else { 7 };
        Ok(match u.int_in_range(0..=choices - 1)? {
            0 => Self::Null,
            1 => Self::Bool(bool::arbitrary(u)?),
            2 => Self::Int(i64::arbitrary(u)?),
            3 => Self::Float(f64::arbitrary(u)?),
            4 => Self::Str(String::arbitrary(u)?),
            5 => Self::Array(
                (0..u.int_in_range(0..=3)?)
                    .map(|_| Self::arbitrary_at(u, depth + 1))
                    .collect::<arbitrary::Result<_>>()?,
            ),
            _ => Self::Object(
                (0..u.int_in_range(0..=3)?)
                    .map(|_| Ok((String::arbitrary(u)?, Self::arbitrary_at(u, depth + 1)?)))
                    .collect::<arbitrary::Result<_>>()?,
            ),
        })
    }

    fn write(&self, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Int(i) => out.push_str(&i.to_string()),
            Self::Float(f) => out.push_str(&serde_json::to_string(f).unwrap_or_default()),
            Self::Str(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
            Self::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Self::Object(members) => write_object(
                out,
                members
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.clone())),
            ),
        }
    }
}

impl<'a> arbitrary::Arbitrary<'a> for Json {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::arbitrary_at(u, 0)
    }
}

fn write_object<'n>(out: &mut String, members: impl Iterator<Item = (&'n str, Json)>) {
    out.push('{');
    for (i, (name, value)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(name).unwrap_or_default());
        out.push(':');
        value.write(out);
    }
    out.push('}');
}

/// A header member's name: the ones verification reads, and any other.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
#[allow(missing_docs, reason = "the names are the JOSE header's")]
pub enum HeaderName {
    Alg,
    Kid,
    Typ,
    Cty,
    Crit,
    Jku,
    X5u,
    Jwk,
    Other(String),
}

/// A claim's name: the registered ones, the scope claims, and any other.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
#[allow(missing_docs, reason = "the names are RFC 7519's")]
pub enum ClaimName {
    Iss,
    Sub,
    Aud,
    Exp,
    Nbf,
    Iat,
    Jti,
    Scope,
    Other(String),
}

/// A member's value: JSON of any shape, or one of the values the checks look for, so the
/// fuzzer reaches acceptance and each rule's edge.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
pub enum Value {
    /// Anything.
    Json(Json),
    /// `"HS256"` or `"HS512"` (the keys' algorithms), or another name.
    Alg(AlgName),
    /// A time `offset` seconds from the harness's now.
    Time(i32),
    /// The issuer the strict rules require.
    Issuer,
    /// The audience the rules require, alone or among `others`.
    Audience(Vec<String>),
    /// A media type built around `at+jwt` or `JWT`, with `application/` and case mixed in,
    /// then `suffix` (usually empty; non-ASCII text is what once panicked).
    MediaType {
        /// Whether `application/` is written.
        prefixed: bool,
        /// `at+jwt` rather than `JWT`.
        access_token: bool,
        /// Upper case.
        upper: bool,
        /// Text after it.
        suffix: String,
    },
    /// The `kid` of one of the keys.
    Kid(bool),
}

/// An algorithm name in a header.
#[derive(Debug, Clone, Copy, arbitrary::Arbitrary)]
#[allow(missing_docs, reason = "names")]
pub enum AlgName {
    Hs256,
    Hs512,
    Rs256,
    None,
}

/// How the harness signs the token.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
pub enum Signer {
    /// With the HS256 key (`kid` `a`).
    Hs256,
    /// With the HS512 key (`kid` `b`).
    Hs512,
    /// HS256 with a secret no key has.
    WrongSecret,
    /// These bytes as the signature.
    Garbage(Vec<u8>),
}

/// A token as structure: the header's and the claims' members, in order, and how it is signed.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
pub struct TokenInput {
    /// The header's members.
    pub header: Vec<(HeaderName, Value)>,
    /// The claims' members.
    pub claims: Vec<(ClaimName, Value)>,
    /// How it is signed.
    pub signer: Signer,
}

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "api";
const SECRET_B: &[u8] = b"palisade fuzzing secret for HS512, 64 bytes long, not a real one";

impl Value {
    fn to_json(&self) -> Json {
        match self {
            Self::Json(json) => json.clone(),
            Self::Alg(alg) => Json::Str(
                match alg {
                    AlgName::Hs256 => "HS256",
                    AlgName::Hs512 => "HS512",
                    AlgName::Rs256 => "RS256",
                    AlgName::None => "none",
                }
                .to_owned(),
            ),
            Self::Time(offset) => Json::Int(
                i64::try_from(NOW)
                    .unwrap_or(i64::MAX)
                    .saturating_add(i64::from(*offset)),
            ),
            Self::Issuer => Json::Str(ISSUER.to_owned()),
            Self::Audience(others) => {
                let mut all: Vec<Json> = others.iter().cloned().map(Json::Str).collect();
                all.push(Json::Str(AUDIENCE.to_owned()));
                Json::Array(all)
            }
            Self::MediaType {
                prefixed,
                access_token,
                upper,
                suffix,
            } => {
                let mut text = String::new();
                if *prefixed {
                    text.push_str("application/");
                }
                text.push_str(if *access_token { "at+jwt" } else { "JWT" });
                if *upper {
                    text = text.to_uppercase();
                }
                text.push_str(suffix);
                Json::Str(text)
            }
            Self::Kid(first) => Json::Str(if *first { "a" } else { "b" }.to_owned()),
        }
    }
}

impl HeaderName {
    fn name(&self) -> &str {
        match self {
            Self::Alg => "alg",
            Self::Kid => "kid",
            Self::Typ => "typ",
            Self::Cty => "cty",
            Self::Crit => "crit",
            Self::Jku => "jku",
            Self::X5u => "x5u",
            Self::Jwk => "jwk",
            Self::Other(name) => name,
        }
    }
}

impl ClaimName {
    fn name(&self) -> &str {
        match self {
            Self::Iss => "iss",
            Self::Sub => "sub",
            Self::Aud => "aud",
            Self::Exp => "exp",
            Self::Nbf => "nbf",
            Self::Iat => "iat",
            Self::Jti => "jti",
            Self::Scope => "scope",
            Self::Other(name) => name,
        }
    }
}

/// Whether `value` names a JWT media type, worked out apart from the crate's own code.
fn names_media_type(value: &str, expected: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    let bare = lower
        .strip_prefix("application/")
        .filter(|rest| !rest.is_empty());
    bare.unwrap_or(&lower) == expected
}

/// Structure-aware token fuzzing: the harness writes the header and claims as JSON from
/// `input` (any strings, repeated names, values near each rule's edge), encodes and signs
/// them, and verifies the token under lenient and strict rules. Nothing may panic; a token is
/// accepted only if it meets every rule, worked out here from the JSON itself; a token the
/// harness did not sign with a key of the set never verifies. Answers how many of the two
/// verifiers accepted it.
///
/// # Panics
///
/// When an invariant breaks.
pub fn structured(input: &TokenInput) -> usize {
    let keys = || {
        JwtKeySet::new([
            JwtKey::hmac(Alg::HS256, SECRET)
                .expect("a valid secret")
                .with_kid("a"),
            JwtKey::hmac(Alg::HS512, SECRET_B)
                .expect("a valid secret")
                .with_kid("b"),
        ])
    };
    let lenient = Verifier::new(keys(), Rules::new().with_audiences([AUDIENCE]));
    let strict = Verifier::new(
        keys(),
        Rules::new()
            .with_issuer(ISSUER)
            .with_audiences([AUDIENCE])
            .with_types(["at+jwt"]),
    );
    let mut header = String::new();
    write_object(
        &mut header,
        input
            .header
            .iter()
            .map(|(name, value)| (name.name(), value.to_json())),
    );
    let mut claims = String::new();
    write_object(
        &mut claims,
        input
            .claims
            .iter()
            .map(|(name, value)| (name.name(), value.to_json())),
    );
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.as_bytes()),
        URL_SAFE_NO_PAD.encode(claims.as_bytes())
    );
    crate::backend::ensure();
    let (signature, signed_with) = match &input.signer {
        Signer::Hs256 => (sign(&signing_input), Some("HS256")),
        Signer::Hs512 => (
            jsonwebtoken::EncodingKey::from_secret(SECRET_B)
                .ok()
                .and_then(|key| {
                    jsonwebtoken::crypto::sign(
                        signing_input.as_bytes(),
                        &key,
                        jsonwebtoken::Algorithm::HS512,
                    )
                    .ok()
                })
                .unwrap_or_default(),
            Some("HS512"),
        ),
        Signer::WrongSecret => (
            jsonwebtoken::EncodingKey::from_secret(b"another secret, 32 bytes long!!!")
                .ok()
                .and_then(|key| {
                    jsonwebtoken::crypto::sign(
                        signing_input.as_bytes(),
                        &key,
                        jsonwebtoken::Algorithm::HS256,
                    )
                    .ok()
                })
                .unwrap_or_default(),
            None,
        ),
        Signer::Garbage(bytes) => (URL_SAFE_NO_PAD.encode(bytes), None),
    };
    let token = format!("{signing_input}.{signature}");
    let now = now();
    let mut accepted = 0;
    for (strict_rules, verifier) in [(false, &lenient), (true, &strict)] {
        let Ok(verified) = verifier.verify_at::<serde_json::Value>(&token, now) else {
            continue;
        };
        accepted += 1;
        let signed_with = signed_with.expect("accepted a token no key signed");
        // The header: an object naming each member once, the signer's algorithm, no `crit`,
        // no nested token, the access-token type under the strict rules.
        let mut names = std::collections::HashSet::new();
        assert!(
            input
                .header
                .iter()
                .all(|(name, _)| names.insert(name.name())),
            "accepted a header naming a member twice: {header}"
        );
        let parsed: serde_json::Value =
            serde_json::from_str(&header).expect("accepted a header that is not JSON");
        assert_eq!(
            parsed["alg"], signed_with,
            "accepted another algorithm: {header}"
        );
        assert!(parsed.get("crit").is_none(), "accepted crit: {header}");
        if let Some(cty) = parsed.get("cty").and_then(serde_json::Value::as_str) {
            assert!(
                !names_media_type(cty, "jwt"),
                "accepted a nested token: {header}"
            );
        }
        let typ = parsed.get("typ").and_then(serde_json::Value::as_str);
        if strict_rules {
            assert!(
                typ.is_some_and(|typ| names_media_type(typ, "at+jwt")),
                "accepted another type: {header}"
            );
        }
        // The claims: read as serde_json reads them (a repeated name: the last one counts).
        let claims: serde_json::Value =
            serde_json::from_str(&claims).expect("accepted claims that are not JSON");
        let time = |name: &str| claims.get(name).and_then(serde_json::Value::as_f64);
        #[allow(clippy::cast_precision_loss, reason = "a 2027 time is exact in an f64")]
        let now_secs = NOW as f64;
        let exp = time("exp").expect("accepted a token without exp");
        assert!(
            now_secs < exp.floor() + 60.0,
            "accepted an expired token: {claims}"
        );
        if let Some(nbf) = time("nbf") {
            assert!(
                nbf.floor() <= now_secs + 60.0,
                "accepted a future nbf: {claims}"
            );
        }
        if let Some(iat) = time("iat") {
            assert!(
                iat.floor() <= now_secs + 60.0,
                "accepted a future iat: {claims}"
            );
        }
        let audiences: Vec<&str> = match &claims["aud"] {
            serde_json::Value::String(one) => vec![one.as_str()],
            serde_json::Value::Array(many) => many.iter().filter_map(|a| a.as_str()).collect(),
            _ => Vec::new(),
        };
        assert!(
            audiences.contains(&AUDIENCE),
            "accepted another audience: {claims}"
        );
        let sub = claims["sub"]
            .as_str()
            .expect("accepted a token without a subject");
        assert!(!sub.is_empty(), "accepted an empty subject");
        assert_eq!(verified.identity.subject(), sub);
        assert_eq!(verified.identity.issuer(), claims["iss"].as_str());
        if strict_rules {
            assert_eq!(claims["iss"], ISSUER, "accepted another issuer: {claims}");
        }
    }
    accepted
}

/// A JWK member's name.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
#[allow(missing_docs, reason = "the names are RFC 7517's and 7518's")]
pub enum JwkName {
    Kty,
    Crv,
    Alg,
    Use,
    KeyOps,
    Kid,
    N,
    E,
    X,
    Y,
    K,
    Other(String),
}

/// A JWK member's value: anything, base64url of any bytes (a modulus, a coordinate, a secret),
/// or one of the names the parser looks for.
#[derive(Debug, Clone, arbitrary::Arbitrary)]
pub enum JwkValue {
    /// Anything.
    Json(Json),
    /// Base64url (unpadded) of these bytes.
    Base64(Vec<u8>),
    /// Base64url of `len` bytes, the first `first` (moduli near 2048 bits).
    Sized {
        /// The first byte.
        first: u8,
        /// How many bytes.
        len: u16,
    },
    /// One of the names a JWK's members take.
    Name(JwkWord),
}

/// The words of JWKs.
#[derive(Debug, Clone, Copy, arbitrary::Arbitrary)]
#[allow(missing_docs, reason = "names")]
pub enum JwkWord {
    Rsa,
    Ec,
    Okp,
    Oct,
    P256,
    P384,
    Ed25519,
    X25519,
    Rs256,
    Ps256,
    Es256,
    EdDsa,
    Hs256,
    Sig,
    Enc,
    Verify,
}

impl JwkValue {
    fn to_json(&self) -> Json {
        match self {
            Self::Json(json) => json.clone(),
            Self::Base64(bytes) => Json::Str(URL_SAFE_NO_PAD.encode(bytes)),
            Self::Sized { first, len } => {
                let mut bytes = vec![0xA5; usize::from(*len).min(1024)];
                if let Some(head) = bytes.first_mut() {
                    *head = *first;
                }
                Json::Str(URL_SAFE_NO_PAD.encode(bytes))
            }
            Self::Name(word) => Json::Str(
                match word {
                    JwkWord::Rsa => "RSA",
                    JwkWord::Ec => "EC",
                    JwkWord::Okp => "OKP",
                    JwkWord::Oct => "oct",
                    JwkWord::P256 => "P-256",
                    JwkWord::P384 => "P-384",
                    JwkWord::Ed25519 => "Ed25519",
                    JwkWord::X25519 => "X25519",
                    JwkWord::Rs256 => "RS256",
                    JwkWord::Ps256 => "PS256",
                    JwkWord::Es256 => "ES256",
                    JwkWord::EdDsa => "EdDSA",
                    JwkWord::Hs256 => "HS256",
                    JwkWord::Sig => "sig",
                    JwkWord::Enc => "enc",
                    JwkWord::Verify => "verify",
                }
                .to_owned(),
            ),
        }
    }
}

impl JwkName {
    fn name(&self) -> &str {
        match self {
            Self::Kty => "kty",
            Self::Crv => "crv",
            Self::Alg => "alg",
            Self::Use => "use",
            Self::KeyOps => "key_ops",
            Self::Kid => "kid",
            Self::N => "n",
            Self::E => "e",
            Self::X => "x",
            Self::Y => "y",
            Self::K => "k",
            Self::Other(name) => name,
        }
    }
}

/// Structure-aware JWK-set fuzzing: the harness writes `{"keys": [...]}` from `keys` (each a
/// JWK's members in order) and checks it as [`jwks`] does.
///
/// # Panics
///
/// When an invariant breaks.
pub fn jwks_structured(keys: &[Vec<(JwkName, JwkValue)>]) {
    let mut document = String::from("{\"keys\":[");
    for (i, members) in keys.iter().enumerate() {
        if i > 0 {
            document.push(',');
        }
        write_object(
            &mut document,
            members
                .iter()
                .map(|(name, value)| (name.name(), value.to_json())),
        );
    }
    document.push_str("]}");
    jwks(document.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_claims() -> Vec<(ClaimName, Value)> {
        vec![
            (ClaimName::Iss, Value::Issuer),
            (ClaimName::Sub, Value::Json(Json::Str("ada".into()))),
            (ClaimName::Aud, Value::Audience(vec!["é".into()])),
            (ClaimName::Exp, Value::Time(600)),
        ]
    }

    /// The structured harness reaches acceptance, and the media types that once panicked.
    #[test]
    fn structured_inputs_reach_acceptance_and_the_old_panic() {
        let mut header = vec![
            (HeaderName::Alg, Value::Alg(AlgName::Hs256)),
            (HeaderName::Kid, Value::Kid(true)),
            (
                HeaderName::Typ,
                Value::MediaType {
                    prefixed: false,
                    access_token: true,
                    upper: false,
                    suffix: String::new(),
                },
            ),
        ];
        let input = TokenInput {
            header: header.clone(),
            claims: valid_claims(),
            signer: Signer::Hs256,
        };
        assert_eq!(structured(&input), 2, "both rule sets accept it");
        header.push((
            HeaderName::Cty,
            Value::Json(Json::Str("xxxxxxxxxxx\u{e9}".into())),
        ));
        for (signer, accepted) in [
            (Signer::Hs256, 2),
            (Signer::Hs512, 0),
            (Signer::WrongSecret, 0),
            (Signer::Garbage(vec![1]), 0),
        ] {
            let input = TokenInput {
                header: header.clone(),
                claims: valid_claims(),
                signer,
            };
            assert_eq!(structured(&input), accepted, "{input:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
        /// Random structures hold every invariant (the fuzz target runs the same for longer).
        #[test]
        fn random_structures_hold_the_invariants(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut u = arbitrary::Unstructured::new(&bytes);
            if let Ok(input) = <TokenInput as arbitrary::Arbitrary>::arbitrary(&mut u) {
                structured(&input);
            }
        }
    }
}
