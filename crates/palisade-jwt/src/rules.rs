//! The claim checks of RFC 7519 and RFC 8725, against a given time.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::claims::Registered;
use crate::error::{TokenError, TokenReason};
use crate::token::{Header, media_type_is};

/// What a token's claims and header must satisfy, besides its signature. Build with
/// [`Rules::new`] and the `with_` methods.
///
/// By default: `exp` is required and must not have passed; `nbf` and `iat`, when present, must
/// not be in the future; 60 s of leeway for clock skew; a token carrying `aud` is refused
/// unless an audience is configured (RFC 7519: a recipient that does not find itself in `aud`
/// must reject the token). Configuring an issuer or audiences makes `iss` or `aud` required.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Rules {
    /// The exact `iss` required (none: not checked).
    pub issuer: Option<String>,
    /// Audiences of which `aud` must name at least one (empty: a token with `aud` is refused).
    pub audiences: HashSet<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    #[cfg_attr(feature = "serde", serde(with = "palisade_core::serde_duration"))]
    pub leeway: Duration,
    /// Whether `exp` is required (default: yes).
    pub require_exp: bool,
    /// Whether `sub` is required (default: no).
    pub require_sub: bool,
    /// Accepted `typ` values (explicit typing); empty: `typ` is not checked.
    pub types: Vec<String>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            issuer: None,
            audiences: HashSet::new(),
            leeway: Duration::from_secs(60),
            require_exp: true,
            require_sub: false,
            types: Vec::new(),
        }
    }
}

impl Rules {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `iss` to be exactly `issuer`.
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Requires `aud` to name at least one of `audiences`.
    #[must_use]
    pub fn with_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// The clock skew tolerated.
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Whether `exp` is required.
    #[must_use]
    pub fn with_require_exp(mut self, required: bool) -> Self {
        self.require_exp = required;
        self
    }

    /// Whether `sub` is required.
    #[must_use]
    pub fn with_require_sub(mut self, required: bool) -> Self {
        self.require_sub = required;
        self
    }

    /// Requires `typ` to be one of `types` (e.g. `at+jwt` for RFC 9068 access tokens),
    /// compared without case and with or without the `application/` prefix.
    #[must_use]
    pub fn with_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Checks the header's `typ`.
    ///
    /// # Errors
    ///
    /// [`TokenReason::WrongType`].
    pub fn check_header(&self, header: &Header) -> Result<(), TokenError> {
        if self.types.is_empty() {
            return Ok(());
        }
        match &header.typ {
            Some(typ) if self.types.iter().any(|t| media_type_is(typ, t)) => Ok(()),
            _ => Err(TokenError::claim(TokenReason::WrongType, "typ")),
        }
    }

    /// Checks the registered claims at `now`.
    ///
    /// # Errors
    ///
    /// The first failed check, naming its claim.
    pub fn check_claims(&self, claims: &Registered, now: SystemTime) -> Result<(), TokenError> {
        let now = unix_seconds(now);
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        match claims.exp {
            None if self.require_exp => {
                return Err(TokenError::claim(TokenReason::MissingClaim, "exp"));
            }
            // Expired once `now` reaches `exp` (RFC 7519: "on or after").
            Some(exp) if now >= exp.saturating_add(leeway) => {
                return Err(TokenError::claim(TokenReason::Expired, "exp"));
            }
            _ => {}
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err(TokenError::claim(TokenReason::NotYetValid, "nbf"));
        }
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(leeway))
        {
            return Err(TokenError::claim(TokenReason::IssuedInFuture, "iat"));
        }
        if let Some(issuer) = &self.issuer {
            match &claims.iss {
                None => return Err(TokenError::claim(TokenReason::MissingClaim, "iss")),
                Some(iss) if iss != issuer => {
                    return Err(TokenError::claim(TokenReason::WrongIssuer, "iss"));
                }
                Some(_) => {}
            }
        }
        if self.audiences.is_empty() {
            if !claims.aud.is_empty() {
                return Err(TokenError::claim(TokenReason::WrongAudience, "aud"));
            }
        } else if claims.aud.is_empty() {
            return Err(TokenError::claim(TokenReason::MissingClaim, "aud"));
        } else if !claims.aud.iter().any(|aud| self.audiences.contains(aud)) {
            return Err(TokenError::claim(TokenReason::WrongAudience, "aud"));
        }
        if self.require_sub && claims.sub.is_none() {
            return Err(TokenError::claim(TokenReason::MissingClaim, "sub"));
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch (negative before it).
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::Alg;

    const NOW: i64 = 1_800_000_000;

    fn at(seconds: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap())
    }

    fn claims() -> Registered {
        Registered {
            iss: Some("https://issuer.example".into()),
            sub: Some("user".into()),
            aud: vec!["api".into()],
            exp: Some(NOW + 300),
            nbf: Some(NOW - 10),
            iat: Some(NOW - 10),
            jti: None,
        }
    }

    fn rules() -> Rules {
        Rules::new()
            .with_issuer("https://issuer.example")
            .with_audiences(["api", "other"])
            .with_leeway(Duration::from_secs(30))
    }

    fn check(
        rules: &Rules,
        claims: &Registered,
        now: i64,
    ) -> Result<(), (TokenReason, Option<&'static str>)> {
        rules
            .check_claims(claims, at(now))
            .map_err(|e| (e.reason(), e.claim_name()))
    }

    /// One row per RFC 8725 / RFC 7519 rule: the claims changed, the time, the outcome.
    #[test]
    fn each_rule_in_a_table() {
        type Change = fn(&mut Registered);
        type Outcome = Result<(), (TokenReason, Option<&'static str>)>;
        let cases: &[(&str, Change, i64, Outcome)] = &[
            ("valid", |_| {}, NOW, Ok(())),
            (
                "exp passed beyond leeway",
                |c| c.exp = Some(NOW - 31),
                NOW,
                Err((TokenReason::Expired, Some("exp"))),
            ),
            (
                "exp passed within leeway",
                |c| c.exp = Some(NOW - 29),
                NOW,
                Ok(()),
            ),
            (
                "exp exactly now minus leeway",
                |c| c.exp = Some(NOW - 30),
                NOW,
                Err((TokenReason::Expired, Some("exp"))),
            ),
            (
                "exp missing",
                |c| c.exp = None,
                NOW,
                Err((TokenReason::MissingClaim, Some("exp"))),
            ),
            (
                "nbf in the future",
                |c| c.nbf = Some(NOW + 31),
                NOW,
                Err((TokenReason::NotYetValid, Some("nbf"))),
            ),
            ("nbf within leeway", |c| c.nbf = Some(NOW + 30), NOW, Ok(())),
            (
                "iat in the future",
                |c| c.iat = Some(NOW + 31),
                NOW,
                Err((TokenReason::IssuedInFuture, Some("iat"))),
            ),
            (
                "iss missing",
                |c| c.iss = None,
                NOW,
                Err((TokenReason::MissingClaim, Some("iss"))),
            ),
            (
                "iss differs",
                |c| c.iss = Some("https://issuer.example/".into()),
                NOW,
                Err((TokenReason::WrongIssuer, Some("iss"))),
            ),
            (
                "iss differs in case",
                |c| c.iss = Some("https://ISSUER.example".into()),
                NOW,
                Err((TokenReason::WrongIssuer, Some("iss"))),
            ),
            (
                "aud missing",
                |c| c.aud.clear(),
                NOW,
                Err((TokenReason::MissingClaim, Some("aud"))),
            ),
            (
                "aud names another",
                |c| c.aud = vec!["elsewhere".into()],
                NOW,
                Err((TokenReason::WrongAudience, Some("aud"))),
            ),
            (
                "aud names one of ours among others",
                |c| c.aud = vec!["x".into(), "other".into()],
                NOW,
                Ok(()),
            ),
        ];
        for (name, change, now, expected) in cases {
            let mut claims = claims();
            change(&mut claims);
            assert_eq!(check(&rules(), &claims, *now), *expected, "{name}");
        }
    }

    #[test]
    fn an_audience_nobody_configured_is_refused() {
        let rules = Rules::new();
        let mut claims = claims();
        assert_eq!(
            check(&rules, &claims, NOW),
            Err((TokenReason::WrongAudience, Some("aud")))
        );
        claims.aud.clear();
        assert_eq!(check(&rules, &claims, NOW), Ok(()));
        let rules = Rules::new().with_require_exp(false).with_require_sub(true);
        claims.exp = None;
        claims.sub = None;
        assert_eq!(
            check(&rules, &claims, NOW),
            Err((TokenReason::MissingClaim, Some("sub")))
        );
    }

    #[test]
    fn explicit_typing() {
        let header = |typ: Option<&str>| Header {
            alg: Alg::RS256,
            kid: None,
            typ: typ.map(str::to_owned),
        };
        let rules = Rules::new().with_types(["at+jwt"]);
        assert!(rules.check_header(&header(Some("at+jwt"))).is_ok());
        assert!(
            rules
                .check_header(&header(Some("application/AT+JWT")))
                .is_ok()
        );
        for typ in [None, Some("JWT"), Some("id_token+jwt")] {
            assert_eq!(
                rules.check_header(&header(typ)).unwrap_err().reason(),
                TokenReason::WrongType
            );
        }
        assert!(Rules::new().check_header(&header(None)).is_ok());
    }
}
