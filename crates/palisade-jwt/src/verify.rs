//! Verification against a key set, without I/O: the part every key source shares.

use std::sync::Arc;
use std::time::SystemTime;

use palisade_core::{Identity, IdentitySource};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::claims::{Claims, Registered};
use crate::error::{TokenError, TokenReason};
use crate::key::{Candidates, JwtKey, JwtKeySet};
use crate::rules::Rules;
use crate::token::{self, DEFAULT_MAX_TOKEN_LEN, Header, Parsed, media_type_is};

/// A token split, decoded and its claims read, but not verified.
#[derive(Debug)]
pub(crate) struct Decoded<'t> {
    pub(crate) parsed: Parsed<'t>,
    pub(crate) claims: Map<String, Value>,
    pub(crate) registered: Registered,
}

/// Splits `token`, decodes it and reads its registered claims.
pub(crate) fn decode(token: &str, max_len: usize) -> Result<Decoded<'_>, TokenError> {
    let parsed = token::parse(token, max_len)?;
    let claims: Map<String, Value> = serde_json::from_slice(&parsed.payload)
        .map_err(|_| TokenError::new(TokenReason::Malformed))?;
    let registered = Registered::from_claims(&claims)?;
    Ok(Decoded {
        parsed,
        claims,
        registered,
    })
}

/// Checks the header's type and the signature with one of `keys`; answers the key that
/// verified.
pub(crate) fn check_signature(
    parsed: &Parsed<'_>,
    keys: &JwtKeySet,
    rules: &Rules,
) -> Result<Arc<JwtKey>, TokenError> {
    rules.check_header(&parsed.header)?;
    match keys.candidates(parsed.header.kid.as_deref(), parsed.header.alg) {
        Candidates::UnknownKid => Err(TokenReason::UnknownKey.into()),
        Candidates::WrongAlg => Err(TokenReason::AlgorithmMismatch.into()),
        Candidates::Keys(candidates) => candidates
            .into_iter()
            .find(|key| key.verifies(parsed.signing_input.as_bytes(), parsed.signature))
            .cloned()
            .ok_or_else(|| TokenReason::BadSignature.into()),
    }
}

/// How an [`Identity`] is made from claims.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct IdentityClaims {
    /// The claim naming the subject (default `sub`). A token without it (absent, not a
    /// string, or empty) is refused: every identity names its caller.
    pub subject: String,
    /// Claims holding scopes or roles: a space-separated string (`scope`, RFC 8693) or an
    /// array of strings (`scp`, `roles`). A dotted name reads a nested claim
    /// (`realm_access.roles` for Keycloak). Default: `scope`, `scp`.
    pub scopes: Vec<String>,
}

impl Default for IdentityClaims {
    fn default() -> Self {
        Self {
            subject: "sub".to_owned(),
            scopes: vec!["scope".to_owned(), "scp".to_owned()],
        }
    }
}

impl IdentityClaims {
    /// The identity of a verified token, issued by `issuer` (its `iss`, if any).
    ///
    /// # Errors
    ///
    /// [`TokenReason::MissingClaim`] when the subject claim is absent, not a string, or empty: an
    /// identity without a subject would make every such caller one and the same.
    pub(crate) fn identity(
        &self,
        claims: &Map<String, Value>,
        header: &Header,
        issuer: Option<&str>,
    ) -> Result<Identity, TokenError> {
        let subject = lookup(claims, &self.subject)
            .and_then(Value::as_str)
            .filter(|subject| !subject.is_empty())
            .ok_or_else(|| match self.subject.as_str() {
                "sub" => TokenError::claim(TokenReason::MissingClaim, "sub"),
                _ => TokenError::new(TokenReason::MissingClaim),
            })?;
        let mut scopes: Vec<&str> = Vec::new();
        for name in &self.scopes {
            match lookup(claims, name) {
                Some(Value::String(text)) => scopes.extend(text.split_ascii_whitespace()),
                Some(Value::Array(items)) => scopes.extend(items.iter().filter_map(Value::as_str)),
                _ => {}
            }
        }
        Ok(Identity::from_parts(
            subject,
            scopes,
            IdentitySource::Jwt,
            issuer.map(Box::from),
            header.kid.as_deref().map(Box::from),
        ))
    }
}

/// A claim by name, or by a dotted path into nested objects.
fn lookup<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// A verified token: its claims, the identity made from them, and the key that verified it.
#[derive(Debug)]
pub struct Verified<T = Map<String, Value>> {
    /// The claims.
    pub claims: Claims<T>,
    /// The caller.
    pub identity: Identity,
    pub(crate) key: Arc<JwtKey>,
}

impl<T> Clone for Verified<T> {
    fn clone(&self) -> Self {
        Self {
            claims: self.claims.clone(),
            identity: self.identity.clone(),
            key: self.key.clone(),
        }
    }
}

impl<T> Verified<T> {
    /// The key that verified the signature.
    pub fn key(&self) -> &JwtKey {
        &self.key
    }
}

/// Completes a verification: claims at `now`, then the typed view and the identity.
pub(crate) fn finish<T: DeserializeOwned + 'static>(
    decoded: Decoded<'_>,
    key: Arc<JwtKey>,
    rules: &Rules,
    identity: &IdentityClaims,
    now: SystemTime,
) -> Result<Verified<T>, TokenError> {
    rules.check_claims(&decoded.registered, now)?;
    // RFC 9068, section 2.2: an access token (`typ: at+jwt`) always names its subject.
    if decoded.registered.sub.is_none()
        && decoded
            .parsed
            .header
            .typ
            .as_deref()
            .is_some_and(|typ| media_type_is(typ, "at+jwt"))
    {
        return Err(TokenError::claim(TokenReason::MissingClaim, "sub"));
    }
    let identity = identity.identity(
        &decoded.claims,
        &decoded.parsed.header,
        decoded.registered.iss.as_deref(),
    )?;
    let claims = Claims::new(decoded.registered, decoded.claims)
        .map_err(|_| TokenError::new(TokenReason::ClaimsShape))?;
    Ok(Verified {
        claims,
        identity,
        key,
    })
}

/// Verifies tokens against a fixed key set: for the CLI, tests, and services whose keys are
/// configured rather than fetched.
///
/// ```
/// use palisade::jwt::{Alg, JwtKey, JwtKeySet, TokenReason, Rules, Verifier};
///
/// let secret = b"a 32-byte secret for HS256 tests";
/// let verifier = Verifier::new(
///     JwtKeySet::new([JwtKey::hmac(Alg::HS256, secret).unwrap()]),
///     Rules::new().with_require_exp(false),
/// );
/// // {"alg":"HS256"} . {"sub":"ada"} . HMAC-SHA256
/// let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.\
///              RntfbTwu9v4MrDTkMu0j4L63ll1k5WT-ZfSrk844ei0";
/// let verified = verifier.verify(token).unwrap();
/// assert_eq!(verified.identity.subject(), "ada");
///
/// let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZGEifQ.c2ln";
/// assert_eq!(verifier.verify(forged).unwrap_err().reason(), TokenReason::UnsupportedAlgorithm);
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: Arc<JwtKeySet>,
    rules: Rules,
    identity: IdentityClaims,
    max_len: usize,
}

impl Verifier {
    /// Verifies against `keys` under `rules`, tokens of at most 8 KiB.
    pub fn new(keys: JwtKeySet, rules: Rules) -> Self {
        Self {
            keys: Arc::new(keys),
            rules,
            identity: IdentityClaims::default(),
            max_len: DEFAULT_MAX_TOKEN_LEN,
        }
    }

    /// How identities are read from claims.
    #[must_use]
    pub fn with_identity_claims(mut self, identity: IdentityClaims) -> Self {
        self.identity = identity;
        self
    }

    /// The longest token accepted, in bytes.
    #[must_use]
    pub fn with_max_token_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Verifies `token` now.
    ///
    /// # Errors
    ///
    /// The first check that failed.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        self.verify_at(token, SystemTime::now())
    }

    /// Verifies `token` at `now`, into typed claims `T`.
    ///
    /// # Errors
    ///
    /// The first check that failed.
    pub fn verify_at<T: DeserializeOwned + 'static>(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<Verified<T>, TokenError> {
        let decoded = decode(token, self.max_len)?;
        let key = check_signature(&decoded.parsed, &self.keys, &self.rules)?;
        finish(decoded, key, &self.rules, &self.identity, now)
    }

    /// Checks only the structure, the header rules and the signature, for payloads that are
    /// not a claims set (test vectors, detached data); answers the header.
    ///
    /// # Errors
    ///
    /// The first check that failed.
    pub fn verify_signature_only(&self, token: &str) -> Result<Header, TokenError> {
        let parsed = token::parse(token, self.max_len)?;
        check_signature(&parsed, &self.keys, &self.rules)?;
        Ok(parsed.header)
    }
}
