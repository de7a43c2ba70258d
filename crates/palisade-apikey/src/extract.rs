//! Where a request's API key comes from.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::borrow::Cow;

use http::Uri;
use http::header::{AUTHORIZATION, HeaderMap, HeaderName};

/// The longest key read: longer ones are refused before hashing.
pub const MAX_KEY_LEN: usize = 256;

/// The places a key is read from.
///
/// By default: `Authorization: Bearer <key>` and the `X-API-Key` header. A query parameter is
/// off unless [enabled](Self::with_query_parameter): URLs end up in access logs, browser history
/// and `Referer` headers, so a key sent there should be considered leaked. When it is enabled,
/// the layer removes the parameter from the URI before calling the inner service, so handlers
/// and inner layers never see it; layers outside the API-key layer (a trace layer, say) still
/// do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySources {
    bearer: bool,
    header: Option<HeaderName>,
    query: Option<Box<str>>,
}

impl Default for KeySources {
    fn default() -> Self {
        Self {
            bearer: true,
            header: Some(HeaderName::from_static("x-api-key")),
            query: None,
        }
    }
}

/// Why the presented credentials cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtractError {
    /// More than one key, in one place or several.
    Several,
    /// An `Authorization: Bearer` or key header that is empty or not a single token.
    MalformedHeader,
    /// Longer than [`MAX_KEY_LEN`].
    Oversized,
}

impl KeySources {
    /// Whether `Authorization: Bearer <key>` is read (default: yes).
    #[must_use]
    pub fn with_bearer(mut self, enabled: bool) -> Self {
        self.bearer = enabled;
        self
    }

    /// The header read besides `Authorization` (default: `X-API-Key`); `None` reads none.
    #[must_use]
    pub fn with_header(mut self, header: Option<HeaderName>) -> Self {
        self.header = header;
        self
    }

    /// Also reads the query parameter `name` (discouraged: URLs are logged and leak).
    #[must_use]
    pub fn with_query_parameter(mut self, name: &str) -> Self {
        self.query = Some(name.into());
        self
    }

    /// Whether `Authorization: Bearer` is read.
    pub fn bearer(&self) -> bool {
        self.bearer
    }

    /// The key header, if any.
    pub fn header(&self) -> Option<&HeaderName> {
        self.header.as_ref()
    }

    /// The query parameter, if enabled.
    pub fn query_parameter(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The one key presented, `None` if there is none.
    ///
    /// `Authorization` headers with another scheme (`Basic`, …) are not API keys and are left
    /// alone for other layers.
    pub(crate) fn extract<'a>(
        &self,
        headers: &'a HeaderMap,
        uri: &'a Uri,
    ) -> Result<Option<Cow<'a, str>>, ExtractError> {
        let mut found: Option<Cow<'a, str>> = None;
        let mut offer = |key: Cow<'a, str>| {
            if found.replace(key).is_some() {
                Err(ExtractError::Several)
            } else {
                Ok(())
            }
        };
        if self.bearer {
            for value in headers.get_all(AUTHORIZATION) {
                if let Some(token) = bearer_token(value.as_bytes())? {
                    offer(Cow::Borrowed(token))?;
                }
            }
        }
        if let Some(name) = &self.header {
            for value in headers.get_all(name) {
                offer(Cow::Borrowed(token(value.as_bytes())?))?;
            }
        }
        if let (Some(param), Some(query)) = (&self.query, uri.query()) {
            for pair in query.split('&') {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                if percent_decode(name).as_deref() == Some(param.as_ref()) {
                    let value = percent_decode(value).ok_or(ExtractError::MalformedHeader)?;
                    if value.is_empty() {
                        return Err(ExtractError::MalformedHeader);
                    }
                    if value.len() > MAX_KEY_LEN {
                        return Err(ExtractError::Oversized);
                    }
                    offer(value)?;
                }
            }
        }
        Ok(found)
    }
}

/// The token of `Bearer <token>`; `None` for other schemes.
fn bearer_token(value: &[u8]) -> Result<Option<&str>, ExtractError> {
    let value = value.trim_ascii();
    let scheme_end = value
        .iter()
        .position(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(None);
    }
    token(rest).map(Some)
}

/// A single token: visible ASCII, no spaces, not empty, not too long.
fn token(value: &[u8]) -> Result<&str, ExtractError> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return Err(ExtractError::MalformedHeader);
    }
    if value.len() > MAX_KEY_LEN {
        return Err(ExtractError::Oversized);
    }
    // `is_ascii_graphic` as one comparison per byte, which the compiler vectorises.
    if !value.iter().all(|b| b.wrapping_sub(0x21) < 0x5E) {
        return Err(ExtractError::MalformedHeader);
    }
    // Visible ASCII is UTF-8.
    std::str::from_utf8(value).map_err(|_| ExtractError::MalformedHeader)
}

/// `uri` without the query parameter `name` (matched after percent-decoding), or `None` if it
/// has none.
pub(crate) fn without_query_parameter(uri: &Uri, name: &str) -> Option<Uri> {
    let query = uri.query()?;
    let mut kept = String::with_capacity(query.len());
    let mut removed = false;
    for pair in query.split('&') {
        let pair_name = pair.split_once('=').map_or(pair, |(n, _)| n);
        if percent_decode(pair_name).as_deref() == Some(name) {
            removed = true;
            continue;
        }
        if !kept.is_empty() {
            kept.push('&');
        }
        kept.push_str(pair);
    }
    if !removed {
        return None;
    }
    let path_and_query = if kept.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{kept}", uri.path())
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// Whether `name` can be a query parameter name: visible ASCII without `&`, `=`, `#`, `%`, `+`.
pub(crate) fn is_query_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"&=#%+".contains(&b))
}

/// Decodes `%XX` and `+`; `None` for a bad escape or a result that is not visible ASCII.
fn percent_decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return text
            .bytes()
            .all(|b| b.is_ascii_graphic())
            .then_some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if !out.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// `data` before and after the first `separator`.
fn split_once(data: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = data.iter().position(|b| *b == separator)?;
    let (before, after) = data.split_at(at);
    Some((before, after.get(1..)?))
}

/// Fuzz harness: header lines (`name: value`, split on `\n`) and a query string after a
/// `?` line; extraction must never panic and a key it returns must be a bounded token.
#[doc(hidden)]
pub fn fuzz_extract(data: &[u8]) {
    let (head, query) = split_once(data, b'?').unwrap_or((data, &b""[..]));
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some((_, value)) = split_once(line, b':') else {
            continue;
        };
        let name = match line.first() {
            Some(b'a') => AUTHORIZATION,
            Some(b'x') => HeaderName::from_static("x-api-key"),
            _ => continue,
        };
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    let uri: Uri = std::str::from_utf8(query)
        .ok()
        .and_then(|q| format!("/?{q}").parse().ok())
        .unwrap_or_else(|| Uri::from_static("/"));
    let sources = KeySources::default().with_query_parameter("api_key");
    if let Ok(Some(key)) = sources.extract(&headers, &uri) {
        assert!(!key.is_empty() && key.len() <= MAX_KEY_LEN);
        assert!(key.bytes().all(|b| b.is_ascii_graphic()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        sources: &KeySources,
        headers: &[(&str, &str)],
        uri: &str,
    ) -> Result<Option<String>, ExtractError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let uri: Uri = uri.parse().unwrap();
        sources.extract(&map, &uri).map(|k| k.map(Cow::into_owned))
    }

    #[test]
    #[allow(clippy::type_complexity, reason = "a table of cases")]
    fn extraction_table() {
        use ExtractError::*;
        let default = KeySources::default();
        let with_query = KeySources::default().with_query_parameter("api_key");
        let long = "k".repeat(MAX_KEY_LEN + 1);
        let long_bearer = format!("Bearer {long}");
        let cases: Vec<(
            &str,
            &KeySources,
            Vec<(&str, &str)>,
            &str,
            Result<Option<String>, ExtractError>,
        )> = vec![
            ("nothing", &default, vec![], "/", Ok(None)),
            (
                "bearer",
                &default,
                vec![("authorization", "Bearer abc")],
                "/",
                Ok(Some("abc".into())),
            ),
            (
                "bearer, any case, extra spaces",
                &default,
                vec![("authorization", "bEaReR    abc  ")],
                "/",
                Ok(Some("abc".into())),
            ),
            (
                "x-api-key",
                &default,
                vec![("x-api-key", "abc")],
                "/",
                Ok(Some("abc".into())),
            ),
            (
                "basic is not ours",
                &default,
                vec![("authorization", "Basic dXNlcjpwYXNz")],
                "/",
                Ok(None),
            ),
            (
                "basic plus a key header",
                &default,
                vec![
                    ("authorization", "Basic dXNlcjpwYXNz"),
                    ("x-api-key", "abc"),
                ],
                "/",
                Ok(Some("abc".into())),
            ),
            (
                "bearer without token",
                &default,
                vec![("authorization", "Bearer")],
                "/",
                Err(MalformedHeader),
            ),
            (
                "bearer with two tokens",
                &default,
                vec![("authorization", "Bearer a b")],
                "/",
                Err(MalformedHeader),
            ),
            (
                "empty key header",
                &default,
                vec![("x-api-key", "")],
                "/",
                Err(MalformedHeader),
            ),
            (
                "key header with a space",
                &default,
                vec![("x-api-key", "a b")],
                "/",
                Err(MalformedHeader),
            ),
            (
                "bearer and key header",
                &default,
                vec![("authorization", "Bearer abc"), ("x-api-key", "abc")],
                "/",
                Err(Several),
            ),
            (
                "two key headers",
                &default,
                vec![("x-api-key", "abc"), ("x-api-key", "def")],
                "/",
                Err(Several),
            ),
            (
                "two bearer headers",
                &default,
                vec![("authorization", "Bearer a"), ("authorization", "Bearer b")],
                "/",
                Err(Several),
            ),
            (
                "oversized header",
                &default,
                vec![("x-api-key", long.as_str())],
                "/",
                Err(Oversized),
            ),
            (
                "oversized bearer",
                &default,
                vec![("authorization", long_bearer.as_str())],
                "/",
                Err(Oversized),
            ),
            (
                "query ignored by default",
                &default,
                vec![],
                "/?api_key=abc",
                Ok(None),
            ),
            (
                "query when enabled",
                &with_query,
                vec![],
                "/x?a=1&api_key=abc",
                Ok(Some("abc".into())),
            ),
            (
                "query percent-encoded",
                &with_query,
                vec![],
                "/?api%5Fkey=a%2Fb",
                Ok(Some("a/b".into())),
            ),
            (
                "query and header",
                &with_query,
                vec![("x-api-key", "abc")],
                "/?api_key=abc",
                Err(Several),
            ),
            (
                "query twice",
                &with_query,
                vec![],
                "/?api_key=a&api_key=b",
                Err(Several),
            ),
            (
                "query empty",
                &with_query,
                vec![],
                "/?api_key=",
                Err(MalformedHeader),
            ),
            (
                "query bad escape",
                &with_query,
                vec![],
                "/?api_key=%zz",
                Err(MalformedHeader),
            ),
            (
                "query decodes to a space",
                &with_query,
                vec![],
                "/?api_key=a+b",
                Err(MalformedHeader),
            ),
            (
                "other parameters only",
                &with_query,
                vec![],
                "/?api_keys=a&key=b",
                Ok(None),
            ),
        ];
        for (name, sources, headers, uri, expected) in cases {
            assert_eq!(run(sources, &headers, uri), expected, "{name}");
        }
    }

    #[test]
    fn the_key_parameter_is_removed_from_the_uri() {
        let cases = [
            ("/orders?api_key=k", Some("/orders")),
            ("/orders?a=1&api_key=k&b=2", Some("/orders?a=1&b=2")),
            ("/orders?api%5Fkey=k&b=2", Some("/orders?b=2")),
            (
                "http://example.com/x?api_key=k",
                Some("http://example.com/x"),
            ),
            ("/orders?a=1", None),
            ("/orders", None),
        ];
        for (uri, expected) in cases {
            let uri: Uri = uri.parse().unwrap();
            let got = without_query_parameter(&uri, "api_key").map(|u| u.to_string());
            assert_eq!(got.as_deref(), expected, "{uri}");
        }
    }

    #[test]
    fn query_names_are_validated() {
        for good in ["api_key", "key", "x-api-key"] {
            assert!(is_query_name(good), "{good}");
        }
        for bad in ["", "a&b", "a=b", "a b", "a#", "a%20", "a+b"] {
            assert!(!is_query_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn sources_can_be_narrowed() {
        let header_only = KeySources::default().with_bearer(false);
        assert_eq!(
            run(&header_only, &[("authorization", "Bearer abc")], "/"),
            Ok(None)
        );
        let custom = KeySources::default().with_header(Some(HeaderName::from_static("x-key")));
        assert_eq!(
            run(&custom, &[("x-key", "abc")], "/"),
            Ok(Some("abc".into()))
        );
        assert_eq!(run(&custom, &[("x-api-key", "abc")], "/"), Ok(None));
    }

    #[test]
    fn non_ascii_bytes_are_malformed() {
        let mut map = HeaderMap::new();
        map.append(
            "x-api-key",
            http::HeaderValue::from_bytes(b"ab\xffcd").unwrap(),
        );
        assert_eq!(
            KeySources::default().extract(&map, &Uri::from_static("/")),
            Err(ExtractError::MalformedHeader)
        );
    }
}
