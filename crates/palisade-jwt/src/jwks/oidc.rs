//! OIDC discovery (`OpenID` Connect Discovery 1.0, section 4): the issuer's metadata, read for
//! its `jwks_uri` only.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::fmt;

use http::Uri;
use serde::Deserialize;

/// Why a discovery document was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Not a JSON object with string `issuer` and `jwks_uri`.
    Unreadable,
    /// Its `issuer` is not exactly the configured issuer (section 4.3: it must be identical),
    /// so it may describe another tenant or be served by an impostor.
    IssuerMismatch,
    /// Its `jwks_uri` is not a URL that may be fetched (HTTPS, or HTTP to loopback when
    /// allowed).
    InsecureJwksUri,
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable => f.write_str("the discovery document is not readable"),
            Self::IssuerMismatch => {
                f.write_str("the discovery document names another issuer than the one configured")
            }
            Self::InsecureJwksUri => f.write_str("the discovery document's jwks_uri is not https"),
        }
    }
}

impl std::error::Error for DiscoveryError {}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

/// `<issuer>/.well-known/openid-configuration`.
pub(crate) fn discovery_uri(issuer: &str) -> Result<Uri, DiscoveryError> {
    let uri: Uri = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
    .parse()
    .map_err(|_| DiscoveryError::Unreadable)?;
    match uri.scheme_str() {
        Some("https" | "http") if uri.host().is_some() => Ok(uri),
        _ => Err(DiscoveryError::Unreadable),
    }
}

/// The `jwks_uri` of a discovery `document` for `issuer`.
///
/// # Errors
///
/// [`DiscoveryError`].
pub fn jwks_uri(document: &[u8], issuer: &str, allow_http: bool) -> Result<Uri, DiscoveryError> {
    if !crate::token::is_json_object(document) {
        return Err(DiscoveryError::Unreadable);
    }
    let metadata: Metadata =
        serde_json::from_slice(document).map_err(|_| DiscoveryError::Unreadable)?;
    if metadata.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch);
    }
    let uri: Uri = metadata
        .jwks_uri
        .parse()
        .map_err(|_| DiscoveryError::Unreadable)?;
    if !super::transport_allowed(&uri, allow_http) {
        return Err(DiscoveryError::InsecureJwksUri);
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_must_match_exactly() {
        let issuer = "https://idp.example/tenant";
        let doc = |iss: &str, jwks: &str| format!(r#"{{"issuer":"{iss}","jwks_uri":"{jwks}"}}"#);
        let ok = doc(issuer, "https://idp.example/tenant/keys");
        assert_eq!(
            jwks_uri(ok.as_bytes(), issuer, false).unwrap(),
            "https://idp.example/tenant/keys"
        );
        for other in [
            "https://idp.example/tenant/",
            "https://idp.example/other",
            "https://IDP.example/tenant",
            "http://idp.example/tenant",
        ] {
            let doc = doc(other, "https://idp.example/keys");
            assert_eq!(
                jwks_uri(doc.as_bytes(), issuer, false).unwrap_err(),
                DiscoveryError::IssuerMismatch,
                "{other}"
            );
        }
        let plain = doc(issuer, "http://idp.example/keys");
        assert_eq!(
            jwks_uri(plain.as_bytes(), issuer, false).unwrap_err(),
            DiscoveryError::InsecureJwksUri
        );
        let array = format!(r#"["{issuer}","https://idp.example/keys"]"#);
        for bad in [
            "{}",
            "[]",
            r#"{"issuer":1,"jwks_uri":"x"}"#,
            "not json",
            &array,
        ] {
            assert_eq!(
                jwks_uri(bad.as_bytes(), issuer, false).unwrap_err(),
                DiscoveryError::Unreadable
            );
        }
    }

    /// Found by the `jwt_oidc` fuzz target: invalid UTF-8 in a member the document's struct
    /// ignores was accepted, since `serde_json` skips ignored strings unchecked.
    #[test]
    fn invalid_utf8_anywhere_is_refused() {
        let mut doc =
            br#"{"issuer":"https://idp.example/tenant","jwks_uri":"https://idp.example/k","x":""#
                .to_vec();
        doc.extend_from_slice(b"\xF0\x28\x8C\x28\"}");
        assert_eq!(
            jwks_uri(&doc, "https://idp.example/tenant", false).unwrap_err(),
            DiscoveryError::Unreadable
        );
    }

    /// Found by the `jwt_oidc` fuzz target: an unpaired surrogate escape (`"\ud800"`) in an
    /// ignored member was accepted, for the same reason.
    #[test]
    fn an_unpaired_surrogate_anywhere_is_refused() {
        let doc = br#"{"issuer":"https://idp.example/tenant","jwks_uri":"https://idp.example/k","x":"\ud800"}"#;
        assert_eq!(
            jwks_uri(doc, "https://idp.example/tenant", false).unwrap_err(),
            DiscoveryError::Unreadable
        );
        let crash = include_bytes!(
            "../../../../fuzz/corpus/jwt_oidc/seed-regression-lone-surrogate-ignored-member"
        );
        assert!(jwks_uri(crash, "https://idp.example/tenant", false).is_err());
    }

    /// Found by the `jwt_oidc` fuzz target: a number beyond `f64` in an ignored member
    /// (`56.3e3333`) is valid JSON (RFC 8259 sets no range), and the document is accepted; the
    /// harness's oracle, `serde_json::Value`, refused it. Kept so the two stay told apart.
    #[test]
    fn a_number_beyond_f64_in_an_ignored_member_is_accepted() {
        let doc = br#"{"issuer":"https://idp.example/tenant","jwks_uri":"https://idp.example/k","x":56.3e3333}"#;
        assert!(jwks_uri(doc, "https://idp.example/tenant", false).is_ok());
        let found =
            include_bytes!("../../../../fuzz/corpus/jwt_oidc/seed-regression-out-of-range-number");
        // Whatever the verdict on the fuzzer's document, reading it never panics.
        let _ = jwks_uri(found, "https://idp.example/tenant", false);
    }

    #[test]
    fn the_discovery_url_is_under_the_issuer() {
        assert_eq!(
            discovery_uri("https://idp.example/realms/a/").unwrap(),
            "https://idp.example/realms/a/.well-known/openid-configuration"
        );
        assert!(discovery_uri("idp.example").is_err());
    }
}
