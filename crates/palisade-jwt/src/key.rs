//! Verification keys, each pinned to one algorithm, and key sets.
//!
//! A [`JwtKey`] carries the one [`Alg`] it verifies: from configuration for a PEM, DER or secret,
//! and for a JWK from its `alg`, else its `kty` and `crv` (`P-256` is `ES256`, `Ed25519` is
//! `EdDSA`; an RSA key without `alg` takes [`JwkOptions::rsa_alg`], `RS256` by default). A token
//! is only ever checked with a key whose algorithm is the token's `alg`, so neither `none` nor an
//! RSA public key used as an HMAC secret can verify anything.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use jsonwebtoken::{DecodingKey, DecodingKeyKind};
use serde::Deserialize;

use crate::alg::{Alg, KeyKind};
use crate::backend;
use crate::token;

/// The smallest RSA modulus accepted, in bits (RFC 7518, section 3.3).
pub const MIN_RSA_BITS: usize = 2048;

/// The most keys a JWKS document may hold; more is refused as a whole.
pub const MAX_JWKS_KEYS: usize = 100;

/// A key that verifies signatures of exactly one algorithm.
#[derive(Clone)]
pub struct JwtKey {
    kid: Option<String>,
    alg: Alg,
    decoding: DecodingKey,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No key material, not even a public key's: it identifies the deployment.
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Why a key could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The algorithm needs another kind of key (an HMAC algorithm for a PEM public key, ...).
    WrongKind,
    /// An HMAC secret shorter than the hash output.
    SecretTooShort {
        /// The shortest length accepted for the algorithm, in bytes.
        min: usize,
    },
    /// An RSA modulus below [`MIN_RSA_BITS`].
    RsaTooSmall,
    /// The key's encoding could not be read.
    Unreadable,
    /// A JWK whose `use` is not `sig`, or whose `key_ops` lack `verify`.
    NotForSignatures,
    /// A JWK of a type, curve or algorithm Palisade does not verify.
    Unsupported,
    /// A JWK whose `alg` contradicts its `kty` or `crv`.
    AlgorithmMismatch,
    /// A symmetric (`oct`) JWK where only public keys are allowed (a JWKS fetched over the
    /// network is public: a secret in it is no secret).
    SymmetricNotAllowed,
    /// A JWK set with no key that can verify anything.
    NoUsableKey,
    /// A JWK set with more than [`MAX_JWKS_KEYS`] keys.
    TooManyKeys,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongKind => f.write_str("the algorithm needs another kind of key"),
            Self::SecretTooShort { min } => {
                write!(f, "the HMAC secret is shorter than {min} bytes")
            }
            Self::RsaTooSmall => write!(f, "the RSA key is smaller than {MIN_RSA_BITS} bits"),
            Self::Unreadable => f.write_str("the key could not be read"),
            Self::NotForSignatures => f.write_str("the key is not for verifying signatures"),
            Self::Unsupported => f.write_str("the key type, curve or algorithm is not supported"),
            Self::AlgorithmMismatch => f.write_str("the key's `alg` contradicts its type or curve"),
            Self::SymmetricNotAllowed => {
                f.write_str("a symmetric key is not accepted from this source")
            }
            Self::NoUsableKey => f.write_str("the key set holds no usable key"),
            Self::TooManyKeys => write!(f, "the key set holds more than {MAX_JWKS_KEYS} keys"),
        }
    }
}

impl std::error::Error for KeyError {}

/// The bits of a big-endian unsigned integer, leading zeros not counted.
fn bits(integer: &[u8]) -> usize {
    let zeros = integer.iter().take_while(|b| **b == 0).count();
    let significant = integer.len() - zeros;
    integer.get(zeros).map_or(0, |first| {
        (significant - 1) * 8 + (8 - first.leading_zeros() as usize)
    })
}

/// The bits of an RSA key's modulus (`None` for other keys), for the fuzz harness.
#[cfg(feature = "__fuzz")]
pub(crate) fn rsa_modulus_bits(key: &JwtKey) -> Option<usize> {
    match key.decoding.kind() {
        DecodingKeyKind::SecretOrDer(der) if key.alg.key_kind() == KeyKind::Rsa => {
            rsa_modulus(der).map(bits)
        }
        DecodingKeyKind::RsaModulusExponent { n, .. } => Some(bits(n)),
        DecodingKeyKind::SecretOrDer(_) => None,
    }
}

/// Refuses an RSA key whose modulus is under [`MIN_RSA_BITS`] (or that is not an RSA public
/// key at all), as JWKs are.
fn check_rsa_size(decoding: &DecodingKey) -> Result<(), KeyError> {
    let modulus_bits = match decoding.kind() {
        DecodingKeyKind::SecretOrDer(der) => {
            rsa_modulus(der).map(bits).ok_or(KeyError::Unreadable)?
        }
        DecodingKeyKind::RsaModulusExponent { n, .. } => bits(n),
    };
    if modulus_bits < MIN_RSA_BITS {
        return Err(KeyError::RsaTooSmall);
    }
    Ok(())
}

/// The modulus of a PKCS#1 `RSAPublicKey` (`SEQUENCE { INTEGER n, INTEGER e }`, DER), read
/// strictly: definite lengths in their shortest form, nothing after the sequence.
fn rsa_modulus(der: &[u8]) -> Option<&[u8]> {
    let (body, rest) = der_element(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (modulus, rest) = der_element(body, 0x02)?;
    let (_exponent, rest) = der_element(rest, 0x02)?;
    rest.is_empty().then_some(modulus)
}

/// One DER element of `tag` at the start of `input`: its contents and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form: 1 to 4 length bytes, no leading zero, and only for lengths of 128 or more.
        let count = usize::from(first & 0x7F);
        if !(1..=4).contains(&count) {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(count)?;
        if bytes.first() == Some(&0) {
            return None;
        }
        rest = after;
        let length = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        if length < 0x80 {
            return None;
        }
        length
    };
    rest.split_at_checked(length)
}

impl JwtKey {
    /// An HMAC secret for `alg` (`HS256`, `HS384` or `HS512`), at least as long as the hash.
    ///
    /// # Errors
    ///
    /// [`KeyError::WrongKind`] for a non-HMAC algorithm, [`KeyError::SecretTooShort`].
    pub fn hmac(alg: Alg, secret: &[u8]) -> Result<Self, KeyError> {
        backend::ensure();
        if alg.key_kind() != KeyKind::Hmac {
            return Err(KeyError::WrongKind);
        }
        if secret.len() < alg.min_secret_len() {
            return Err(KeyError::SecretTooShort {
                min: alg.min_secret_len(),
            });
        }
        let decoding = DecodingKey::from_secret(secret).map_err(|_| KeyError::Unreadable)?;
        Ok(Self {
            kid: None,
            alg,
            decoding,
        })
    }

    /// A public key in PEM (`-----BEGIN PUBLIC KEY-----`, or `RSA PUBLIC KEY`) for `alg`.
    ///
    /// # Errors
    ///
    /// [`KeyError::WrongKind`] for an HMAC algorithm, [`KeyError::RsaTooSmall`] for an RSA
    /// modulus under [`MIN_RSA_BITS`] (as for JWKs), [`KeyError::Unreadable`].
    pub fn from_pem(alg: Alg, pem: &[u8]) -> Result<Self, KeyError> {
        backend::ensure();
        let decoding = match alg.key_kind() {
            KeyKind::Hmac => return Err(KeyError::WrongKind),
            KeyKind::Rsa => DecodingKey::from_rsa_pem(pem),
            KeyKind::P256 | KeyKind::P384 => DecodingKey::from_ec_pem(pem),
            KeyKind::Ed25519 => DecodingKey::from_ed_pem(pem),
        }
        .map_err(|_| KeyError::Unreadable)?;
        if alg.key_kind() == KeyKind::Rsa {
            check_rsa_size(&decoding)?;
        }
        Ok(Self {
            kid: None,
            alg,
            decoding,
        })
    }

    /// A public key in DER for `alg`: PKCS#1 `RSAPublicKey` for RSA, the uncompressed point
    /// for P-256 and P-384, the 32-byte public key for Ed25519.
    ///
    /// # Errors
    ///
    /// [`KeyError::WrongKind`] for an HMAC algorithm, [`KeyError::RsaTooSmall`] for an RSA
    /// modulus under [`MIN_RSA_BITS`], [`KeyError::Unreadable`] when the length does not fit
    /// the curve or the RSA key is not DER.
    pub fn from_der(alg: Alg, der: &[u8]) -> Result<Self, KeyError> {
        backend::ensure();
        let decoding = match alg.key_kind() {
            KeyKind::Hmac => return Err(KeyError::WrongKind),
            KeyKind::Rsa => {
                let decoding = DecodingKey::from_rsa_der(der);
                check_rsa_size(&decoding)?;
                decoding
            }
            KeyKind::P256 if der.len() == 65 && der.first() == Some(&4) => {
                DecodingKey::from_ec_der(der)
            }
            KeyKind::P384 if der.len() == 97 && der.first() == Some(&4) => {
                DecodingKey::from_ec_der(der)
            }
            KeyKind::Ed25519 if der.len() == 32 => DecodingKey::from_ed_der(der),
            KeyKind::P256 | KeyKind::P384 | KeyKind::Ed25519 => {
                return Err(KeyError::Unreadable);
            }
        };
        Ok(Self {
            kid: None,
            alg,
            decoding,
        })
    }

    /// A key from one JWK (RFC 7517). A private JWK's public part is used.
    ///
    /// # Errors
    ///
    /// A [`KeyError`] saying why the JWK cannot verify signatures.
    pub fn from_jwk(jwk: &[u8], options: &JwkOptions) -> Result<Self, KeyError> {
        if !token::is_json_object(jwk) {
            return Err(KeyError::Unreadable);
        }
        let jwk: Jwk = serde_json::from_slice(jwk).map_err(|_| KeyError::Unreadable)?;
        Self::from_parsed_jwk(&jwk, options)
    }

    fn from_parsed_jwk(jwk: &Jwk, options: &JwkOptions) -> Result<Self, KeyError> {
        backend::ensure();
        if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::NotForSignatures);
        }
        if jwk
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            return Err(KeyError::NotForSignatures);
        }
        let named: Option<Alg> = match jwk.alg.as_deref() {
            None => None,
            // RFC 9864's name for EdDSA over Ed25519.
            Some("Ed25519") => Some(Alg::EdDSA),
            Some(name) => Some(name.parse().map_err(|_| KeyError::Unsupported)?),
        };
        let (alg, decoding) = match jwk.kty.as_str() {
            "RSA" => {
                let alg = named.unwrap_or(options.rsa_alg);
                if alg.key_kind() != KeyKind::Rsa {
                    return Err(KeyError::AlgorithmMismatch);
                }
                let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
                    return Err(KeyError::Unreadable);
                };
                let modulus = token::decode(n).map_err(|_| KeyError::Unreadable)?;
                token::decode(e).map_err(|_| KeyError::Unreadable)?;
                if bits(&modulus) < MIN_RSA_BITS {
                    return Err(KeyError::RsaTooSmall);
                }
                let key =
                    DecodingKey::from_rsa_components(n, e).map_err(|_| KeyError::Unreadable)?;
                (alg, key)
            }
            "EC" => {
                let (curve_alg, len) = match jwk.crv.as_deref() {
                    Some("P-256") => (Alg::ES256, 32),
                    Some("P-384") => (Alg::ES384, 48),
                    _ => return Err(KeyError::Unsupported),
                };
                if named.is_some_and(|alg| alg != curve_alg) {
                    return Err(KeyError::AlgorithmMismatch);
                }
                let (Some(x), Some(y)) = (&jwk.x, &jwk.y) else {
                    return Err(KeyError::Unreadable);
                };
                let coordinates_fit = [x, y]
                    .iter()
                    .all(|c| token::decode(c).is_ok_and(|bytes| bytes.len() == len));
                if !coordinates_fit {
                    return Err(KeyError::Unreadable);
                }
                let key =
                    DecodingKey::from_ec_components(x, y).map_err(|_| KeyError::Unreadable)?;
                (curve_alg, key)
            }
            "OKP" => {
                if jwk.crv.as_deref() != Some("Ed25519") {
                    return Err(KeyError::Unsupported);
                }
                if named.is_some_and(|alg| alg != Alg::EdDSA) {
                    return Err(KeyError::AlgorithmMismatch);
                }
                let Some(x) = &jwk.x else {
                    return Err(KeyError::Unreadable);
                };
                if !token::decode(x).is_ok_and(|bytes| bytes.len() == 32) {
                    return Err(KeyError::Unreadable);
                }
                let key = DecodingKey::from_ed_components(x).map_err(|_| KeyError::Unreadable)?;
                (Alg::EdDSA, key)
            }
            "oct" => {
                if !options.allow_symmetric {
                    return Err(KeyError::SymmetricNotAllowed);
                }
                let Some(alg) = named else {
                    // An HMAC key must say which hash it is for: nothing else can.
                    return Err(KeyError::Unsupported);
                };
                let Some(k) = &jwk.k else {
                    return Err(KeyError::Unreadable);
                };
                let secret = token::decode(k).map_err(|_| KeyError::Unreadable)?;
                let key = Self::hmac(alg, &secret)?;
                return Ok(key.with_kid_opt(jwk.kid.clone()));
            }
            _ => return Err(KeyError::Unsupported),
        };
        Ok(Self {
            kid: jwk.kid.clone(),
            alg,
            decoding,
        })
    }

    /// Names the key (`kid`), for key sets and tokens that name their key.
    #[must_use]
    pub fn with_kid(self, kid: impl Into<String>) -> Self {
        self.with_kid_opt(Some(kid.into()))
    }

    fn with_kid_opt(mut self, kid: Option<String>) -> Self {
        self.kid = kid;
        self
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Whether `signature` (base64url) signs `message` under this key.
    pub(crate) fn verifies(&self, message: &[u8], signature: &str) -> bool {
        jsonwebtoken::crypto::verify(
            signature,
            message,
            &self.decoding,
            self.alg.to_jsonwebtoken(),
        )
        .unwrap_or(false)
    }
}

/// How JWKs are read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct JwkOptions {
    /// The algorithm of an RSA JWK without `alg` (default `RS256`; Microsoft Entra's keys have
    /// none).
    pub rsa_alg: Alg,
    /// Whether `oct` (HMAC) JWKs are accepted. Off by default and for every fetched JWKS: a key
    /// set served over the network is public.
    pub allow_symmetric: bool,
}

impl Default for JwkOptions {
    fn default() -> Self {
        Self {
            rsa_alg: Alg::RS256,
            allow_symmetric: false,
        }
    }
}

/// The members of a JWK that verification reads. A member named twice is refused.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    key_use: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    k: Option<String>,
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// A JWK the set skipped, and why (for logs: the `kid` is the issuer's, not the client's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The key's `kid`, if it had one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub error: KeyError,
}

/// The keys a token may be checked against, by `kid`.
#[derive(Clone, Debug, Default)]
pub struct JwtKeySet {
    keys: Vec<Arc<JwtKey>>,
    by_kid: HashMap<String, Vec<usize>>,
    skipped: Vec<Skipped>,
}

impl JwtKeySet {
    /// A set of the given keys.
    pub fn new(keys: impl IntoIterator<Item = JwtKey>) -> Self {
        let mut set = Self::default();
        for key in keys {
            set.push(key);
        }
        set
    }

    fn push(&mut self, key: JwtKey) {
        if let Some(kid) = &key.kid {
            self.by_kid
                .entry(kid.clone())
                .or_default()
                .push(self.keys.len());
        }
        self.keys.push(Arc::new(key));
    }

    /// A JWK set document (`{"keys": [...]}`). Keys that cannot verify signatures (encryption
    /// keys, unsupported types and curves, RSA keys under [`MIN_RSA_BITS`], symmetric keys
    /// unless allowed, unreadable members) are skipped and listed in
    /// [`skipped`](Self::skipped); the rest are used, duplicates included (a token without a
    /// `kid` is tried against every key of its algorithm).
    ///
    /// # Errors
    ///
    /// [`KeyError::Unreadable`] for a document that is not a JWK set,
    /// [`KeyError::TooManyKeys`], [`KeyError::NoUsableKey`].
    pub fn from_jwks(document: &[u8], options: &JwkOptions) -> Result<Self, KeyError> {
        if !token::is_json_object(document) {
            return Err(KeyError::Unreadable);
        }
        let document: JwksDocument =
            serde_json::from_slice(document).map_err(|_| KeyError::Unreadable)?;
        if document.keys.len() > MAX_JWKS_KEYS {
            return Err(KeyError::TooManyKeys);
        }
        let mut set = Self::default();
        for value in &document.keys {
            let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            let parsed = value
                .is_object()
                .then(|| serde_json::from_value::<Jwk>(value.clone()).ok())
                .flatten()
                .ok_or(KeyError::Unreadable)
                .and_then(|jwk| JwtKey::from_parsed_jwk(&jwk, options));
            match parsed {
                Ok(key) => set.push(key),
                Err(error) => set.skipped.push(Skipped { kid, error }),
            }
        }
        if set.keys.is_empty() {
            return Err(KeyError::NoUsableKey);
        }
        Ok(set)
    }

    /// A JWK set document, or a single JWK.
    ///
    /// # Errors
    ///
    /// As [`from_jwks`](Self::from_jwks) and [`JwtKey::from_jwk`].
    pub fn from_jwk_or_jwks(document: &[u8], options: &JwkOptions) -> Result<Self, KeyError> {
        let value: serde_json::Value =
            serde_json::from_slice(document).map_err(|_| KeyError::Unreadable)?;
        if value.get("keys").is_some() {
            Self::from_jwks(document, options)
        } else {
            Ok(Self::new([JwtKey::from_jwk(document, options)?]))
        }
    }

    /// The keys used.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &JwtKey> {
        self.keys.iter().map(AsRef::as_ref)
    }

    /// How many keys are used.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The JWKs that were skipped, and why.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The keys a token naming `kid` (or no `kid`) with `alg` may be checked against: those
    /// with that `kid` and algorithm, or without a `kid`, every key of that algorithm (at most
    /// [`MAX_KIDLESS_CANDIDATES`]).
    pub(crate) fn candidates<'s>(&'s self, kid: Option<&str>, alg: Alg) -> Candidates<'s> {
        let Some(kid) = kid else {
            let keys: Vec<&Arc<JwtKey>> = self
                .keys
                .iter()
                .filter(|key| key.alg == alg)
                .take(MAX_KIDLESS_CANDIDATES)
                .collect();
            return if !keys.is_empty() {
                Candidates::Keys(keys)
            } else if self.keys.is_empty() {
                Candidates::UnknownKid
            } else {
                Candidates::WrongAlg
            };
        };
        let Some(indices) = self.by_kid.get(kid) else {
            return Candidates::UnknownKid;
        };
        let keys: Vec<&Arc<JwtKey>> = indices
            .iter()
            .filter_map(|i| self.keys.get(*i))
            .filter(|key| key.alg == alg)
            .collect();
        if keys.is_empty() {
            Candidates::WrongAlg
        } else {
            Candidates::Keys(keys)
        }
    }

    /// Whether `key` (by identity) is still in this set.
    pub(crate) fn holds(&self, key: &Arc<JwtKey>) -> bool {
        self.keys.iter().any(|k| Arc::ptr_eq(k, key))
    }
}

/// A token without a `kid` is tried against at most this many keys of its algorithm, so it
/// cannot make one request cost many signature checks.
pub const MAX_KIDLESS_CANDIDATES: usize = 4;

/// The keys a token may be checked against.
pub(crate) enum Candidates<'s> {
    Keys(Vec<&'s Arc<JwtKey>>),
    /// No key has the `kid`.
    UnknownKid,
    /// Keys have the `kid` (or there are keys), but none of the token's algorithm.
    WrongAlg,
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";

    fn jwk(json: &str) -> Result<JwtKey, KeyError> {
        JwtKey::from_jwk(json.as_bytes(), &JwkOptions::default())
    }

    #[test]
    fn the_algorithm_comes_from_the_key() {
        let rsa = format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQAB"}}"#);
        assert_eq!(jwk(&rsa).unwrap().alg(), Alg::RS256);
        let pss = format!(r#"{{"kty":"RSA","alg":"PS256","n":"{RSA_N}","e":"AQAB"}}"#);
        assert_eq!(jwk(&pss).unwrap().alg(), Alg::PS256);
        let mismatched = format!(r#"{{"kty":"RSA","alg":"ES256","n":"{RSA_N}","e":"AQAB"}}"#);
        assert_eq!(jwk(&mismatched).unwrap_err(), KeyError::AlgorithmMismatch);
        let hmac_on_rsa = format!(r#"{{"kty":"RSA","alg":"HS256","n":"{RSA_N}","e":"AQAB"}}"#);
        assert_eq!(jwk(&hmac_on_rsa).unwrap_err(), KeyError::AlgorithmMismatch);
        let options = JwkOptions {
            rsa_alg: Alg::PS512,
            ..JwkOptions::default()
        };
        let entra = JwtKey::from_jwk(rsa.as_bytes(), &options).unwrap();
        assert_eq!(entra.alg(), Alg::PS512);
    }

    #[test]
    fn use_and_key_ops_are_respected() {
        let enc = format!(r#"{{"kty":"RSA","use":"enc","n":"{RSA_N}","e":"AQAB"}}"#);
        assert_eq!(jwk(&enc).unwrap_err(), KeyError::NotForSignatures);
        let sign_only = format!(r#"{{"kty":"RSA","key_ops":["sign"],"n":"{RSA_N}","e":"AQAB"}}"#);
        assert_eq!(jwk(&sign_only).unwrap_err(), KeyError::NotForSignatures);
        let verify = format!(r#"{{"kty":"RSA","key_ops":["verify"],"n":"{RSA_N}","e":"AQAB"}}"#);
        assert!(jwk(&verify).is_ok());
    }

    #[test]
    fn weak_or_odd_keys_are_refused() {
        let small = r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#;
        assert_eq!(jwk(small).unwrap_err(), KeyError::RsaTooSmall);
        assert_eq!(
            jwk(r#"{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}"#).unwrap_err(),
            KeyError::Unsupported
        );
        assert_eq!(
            jwk(r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#).unwrap_err(),
            KeyError::Unreadable
        );
        assert_eq!(
            jwk(r#"{"kty":"oct","alg":"HS256","k":"c2VjcmV0"}"#).unwrap_err(),
            KeyError::SymmetricNotAllowed
        );
        let allow = JwkOptions {
            allow_symmetric: true,
            ..JwkOptions::default()
        };
        assert_eq!(
            JwtKey::from_jwk(br#"{"kty":"oct","alg":"HS256","k":"c2VjcmV0"}"#, &allow).unwrap_err(),
            KeyError::SecretTooShort { min: 32 }
        );
        assert_eq!(
            JwtKey::hmac(Alg::RS256, &[0; 64]).unwrap_err(),
            KeyError::WrongKind
        );
        assert_eq!(
            JwtKey::hmac(Alg::HS512, &[0; 63]).unwrap_err(),
            KeyError::SecretTooShort { min: 64 }
        );
        assert_eq!(
            JwtKey::from_pem(Alg::HS256, b"-----BEGIN PUBLIC KEY-----").unwrap_err(),
            KeyError::WrongKind
        );
        assert_eq!(
            jwk(r#"{"kty":"RSA","kty":"oct"}"#).unwrap_err(),
            KeyError::Unreadable
        );
        assert_eq!(jwk(r#"["RSA"]"#).unwrap_err(), KeyError::Unreadable);
    }

    #[test]
    fn a_set_skips_what_it_cannot_use() {
        let doc = format!(
            r#"{{"keys":[
                {{"kty":"RSA","kid":"a","n":"{RSA_N}","e":"AQAB"}},
                {{"kty":"RSA","kid":"enc","use":"enc","n":"{RSA_N}","e":"AQAB"}},
                {{"kty":"EC","kid":"p521","crv":"P-521","x":"AA","y":"AA"}},
                {{"kty":"oct","kid":"secret","alg":"HS256","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}},
                "not a key"
            ]}}"#
        );
        let set = JwtKeySet::from_jwks(doc.as_bytes(), &JwkOptions::default()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.skipped().len(), 4);
        assert!(
            matches!(set.candidates(Some("a"), Alg::RS256), Candidates::Keys(k) if k.len() == 1)
        );
        assert!(matches!(
            set.candidates(Some("a"), Alg::HS256),
            Candidates::WrongAlg
        ));
        assert!(matches!(
            set.candidates(Some("b"), Alg::RS256),
            Candidates::UnknownKid
        ));
        assert!(matches!(
            set.candidates(None, Alg::RS256),
            Candidates::Keys(_)
        ));
        assert_eq!(
            JwtKeySet::from_jwks(br#"{"keys":[]}"#, &JwkOptions::default()).unwrap_err(),
            KeyError::NoUsableKey
        );
        assert_eq!(
            JwtKeySet::from_jwks(br#"{"key":[]}"#, &JwkOptions::default()).unwrap_err(),
            KeyError::Unreadable
        );
        let many = format!(r#"{{"keys":[{}]}}"#, vec!["{}"; 101].join(","));
        assert_eq!(
            JwtKeySet::from_jwks(many.as_bytes(), &JwkOptions::default()).unwrap_err(),
            KeyError::TooManyKeys
        );
    }
}
