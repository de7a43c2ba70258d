//! Why a token was refused, in general words.

use std::fmt;

/// Why a token was refused. Each has a [`label`](Self::label) for logs and metrics and a
/// [`describe`](Self::describe) for the `401` response, naming the failed check but never the
/// token, a claim's value or key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenReason {
    /// No token was sent.
    Missing,
    /// More than one token was sent (two `Authorization` headers, a header and a cookie).
    Several,
    /// Not three base64url parts of a JSON header and payload, or a header that is not JSON.
    Malformed,
    /// Longer than the configured maximum; nothing was decoded.
    TooLarge,
    /// `alg` is `none` or not an algorithm Palisade verifies.
    UnsupportedAlgorithm,
    /// `alg` is not the algorithm the key is pinned to (e.g. `HS256` against an RSA key).
    AlgorithmMismatch,
    /// No key has the token's `kid` (or, without a `kid`, no key fits).
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// `exp` has passed.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iat` is in the future.
    IssuedInFuture,
    /// A claim the configuration requires is absent.
    MissingClaim,
    /// A registered claim has the wrong type (a string `exp`, a number `iss`).
    InvalidClaim,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` names none of the configured audiences, or is present when none is configured.
    WrongAudience,
    /// `typ` is not the configured type (explicit typing, RFC 8725 section 3.11).
    WrongType,
    /// The header lists `crit` extensions, which Palisade does not implement.
    CriticalHeader,
    /// `cty: JWT`: a nested token, which Palisade does not accept.
    NestedToken,
    /// The payload is a claims set, but not the shape the application expects.
    ClaimsShape,
    /// The issuer's keys could not be loaded and no usable copy is held (`503`).
    KeysUnavailable,
}

impl TokenReason {
    /// Every reason.
    pub const ALL: [Self; 20] = [
        Self::Missing,
        Self::Several,
        Self::Malformed,
        Self::TooLarge,
        Self::UnsupportedAlgorithm,
        Self::AlgorithmMismatch,
        Self::UnknownKey,
        Self::BadSignature,
        Self::Expired,
        Self::NotYetValid,
        Self::IssuedInFuture,
        Self::MissingClaim,
        Self::InvalidClaim,
        Self::WrongIssuer,
        Self::WrongAudience,
        Self::WrongType,
        Self::CriticalHeader,
        Self::NestedToken,
        Self::ClaimsShape,
        Self::KeysUnavailable,
    ];

    /// A short `snake_case` name for logs, metrics and the problem body's `reason`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Several => "several",
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::AlgorithmMismatch => "algorithm_mismatch",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::MissingClaim => "missing_claim",
            Self::InvalidClaim => "invalid_claim",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::WrongType => "wrong_type",
            Self::CriticalHeader => "critical_header",
            Self::NestedToken => "nested_token",
            Self::ClaimsShape => "claims_shape",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }

    /// The failed check, in general words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Missing => "a bearer token is required",
            Self::Several => "send exactly one bearer token",
            Self::Malformed => "the token is not a well-formed JWS compact serialization",
            Self::TooLarge => "the token is longer than this service accepts",
            Self::UnsupportedAlgorithm => "the token's signature algorithm is not accepted",
            Self::AlgorithmMismatch => "the token's algorithm does not match its key",
            Self::UnknownKey => "the token's signing key is not known",
            Self::BadSignature => "the token's signature does not verify",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::IssuedInFuture => "the token is issued in the future",
            Self::MissingClaim => "the token lacks a required claim",
            Self::InvalidClaim => "a registered claim of the token has the wrong type",
            Self::WrongIssuer => "the token's issuer is not accepted",
            Self::WrongAudience => "the token is not meant for this service",
            Self::WrongType => "the token's type is not accepted here",
            Self::CriticalHeader => {
                "the token requires header extensions this service does not implement"
            }
            Self::NestedToken => "nested tokens are not accepted",
            Self::ClaimsShape => "the token's claims do not have the expected shape",
            Self::KeysUnavailable => "the keys to verify tokens are unavailable; try again later",
        }
    }
}

impl fmt::Display for TokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A refused token: the [`TokenReason`], and for claim failures the claim's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenError {
    reason: TokenReason,
    claim: Option<&'static str>,
}

impl TokenError {
    /// A refusal for `reason`.
    pub fn new(reason: TokenReason) -> Self {
        Self {
            reason,
            claim: None,
        }
    }

    /// A refusal about the registered claim `claim` (`"exp"`, `"aud"`, ...).
    pub(crate) fn claim(reason: TokenReason, claim: &'static str) -> Self {
        Self {
            reason,
            claim: Some(claim),
        }
    }

    /// Why.
    pub fn reason(&self) -> TokenReason {
        self.reason
    }

    /// The claim concerned, when one is (a registered claim's name, never a value).
    pub fn claim_name(&self) -> Option<&'static str> {
        self.claim
    }
}

impl From<TokenReason> for TokenError {
    fn from(reason: TokenReason) -> Self {
        Self::new(reason)
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.claim {
            Some(claim) => write!(f, "{} (`{claim}`)", self.reason),
            None => fmt::Display::fmt(&self.reason, f),
        }
    }
}

impl std::error::Error for TokenError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_descriptions_general() {
        let labels: std::collections::HashSet<_> =
            TokenReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), TokenReason::ALL.len());
        for reason in TokenReason::ALL {
            assert!(!reason.describe().is_empty());
            assert!(!reason.describe().contains('{'));
        }
    }
}
