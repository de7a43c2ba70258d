//! Where a token is read from: `Authorization: Bearer`, optionally a cookie or another header.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE, HeaderName};

/// Where tokens are read from. By default `Authorization: Bearer <token>` only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSources {
    bearer: bool,
    header: Option<HeaderName>,
    cookie: Option<String>,
}

impl Default for TokenSources {
    fn default() -> Self {
        Self {
            bearer: true,
            header: None,
            cookie: None,
        }
    }
}

/// Why no single token could be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExtractError {
    /// Two places (or two headers) carried one.
    Several,
}

impl TokenSources {
    /// `Authorization: Bearer` only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `Authorization: Bearer` is read.
    #[must_use]
    pub fn with_bearer(mut self, bearer: bool) -> Self {
        self.bearer = bearer;
        self
    }

    /// Also reads the token as the whole value of `header` (for proxies that forward it so).
    #[must_use]
    pub fn with_header(mut self, header: HeaderName) -> Self {
        self.header = Some(header);
        self
    }

    /// Also reads the token from the cookie `name` (browser sessions).
    #[must_use]
    pub fn with_cookie(mut self, name: impl Into<String>) -> Self {
        self.cookie = Some(name.into());
        self
    }

    /// Whether any source is enabled.
    pub(crate) fn any(&self) -> bool {
        self.bearer || self.header.is_some() || self.cookie.is_some()
    }

    /// Whether `Authorization: Bearer` is read.
    pub fn bearer(&self) -> bool {
        self.bearer
    }

    /// Whether `headers` hold a token in a place other than `Authorization`: the configured
    /// header, or the cookie (for a layer that chooses between credentials).
    pub fn holds_token_elsewhere(&self, headers: &HeaderMap) -> bool {
        let mut any = false;
        let _ = self.elsewhere(headers, &mut |_| {
            any = true;
            Ok(())
        });
        any
    }

    /// The token in `headers`, if exactly one place holds one. An `Authorization` header with
    /// another scheme (`Basic`) is not a token.
    pub(crate) fn extract<'h>(
        &self,
        headers: &'h HeaderMap,
    ) -> Result<Option<&'h str>, ExtractError> {
        let mut found: Option<&'h str> = None;
        let mut take = |token: &'h str| {
            if found.replace(token).is_some() {
                Err(ExtractError::Several)
            } else {
                Ok(())
            }
        };
        if self.bearer {
            for value in headers.get_all(AUTHORIZATION) {
                if let Some(token) = value.to_str().ok().and_then(bearer_token) {
                    take(token)?;
                }
            }
        }
        self.elsewhere(headers, &mut take)?;
        Ok(found)
    }

    /// Calls `take` with each token in the configured header and cookie.
    fn elsewhere<'h>(
        &self,
        headers: &'h HeaderMap,
        take: &mut impl FnMut(&'h str) -> Result<(), ExtractError>,
    ) -> Result<(), ExtractError> {
        if let Some(name) = &self.header {
            for value in headers.get_all(name) {
                if let Ok(token) = value.to_str() {
                    let token = token.trim();
                    if !token.is_empty() {
                        take(token)?;
                    }
                }
            }
        }
        if let Some(cookie) = &self.cookie {
            for value in headers.get_all(COOKIE) {
                let Ok(value) = value.to_str() else { continue };
                for pair in value.split(';') {
                    if let Some((_, token)) = pair
                        .trim()
                        .split_once('=')
                        .filter(|(name, token)| name == cookie && !token.is_empty())
                    {
                        take(token.trim_matches('"'))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The token of `Bearer <token>` (scheme in any case, one or more spaces).
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ').trim_end();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    type Outcome = Result<Option<&'static str>, ExtractError>;

    #[test]
    fn sources() {
        let all = TokenSources::new()
            .with_header(HeaderName::from_static("x-token"))
            .with_cookie("session");
        let cases: &[(&[(&str, &str)], Outcome)] = &[
            (&[("authorization", "Bearer abc")], Ok(Some("abc"))),
            (&[("authorization", "bearer   abc ")], Ok(Some("abc"))),
            (&[("authorization", "Basic dXNlcjpwdw==")], Ok(None)),
            (&[("authorization", "Bearer")], Ok(None)),
            (&[("authorization", "Bearer ")], Ok(None)),
            (&[], Ok(None)),
            (&[("x-token", "abc")], Ok(Some("abc"))),
            (&[("cookie", "a=1; session=abc; b=2")], Ok(Some("abc"))),
            (&[("cookie", "sessionx=abc")], Ok(None)),
            (
                &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
                Err(ExtractError::Several),
            ),
            (
                &[("authorization", "Bearer a"), ("cookie", "session=b")],
                Err(ExtractError::Several),
            ),
            (
                &[("cookie", "session=a"), ("cookie", "session=b")],
                Err(ExtractError::Several),
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(all.extract(&headers(pairs)), *expected, "{pairs:?}");
        }
        let bearer_only = TokenSources::new();
        assert_eq!(
            bearer_only.extract(&headers(&[("cookie", "session=a")])),
            Ok(None)
        );
    }
}
