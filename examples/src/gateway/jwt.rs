//! `palisade-jwt` in the gateway: `/v1/*` accept a JWT as well as an API key
//! ([`palisade::AnyCredentialLayer`]). Keys come from an OIDC issuer through discovery and a
//! cached JWKS (the demo's own [`super::idp`], or `--oidc-issuer`); tokens must be `at+jwt`
//! access tokens for the configured audience.

use palisade::BuildError;
use palisade::jwt::{JwksSource, JwtLayer, Rules};

/// The JWT layer for tokens from `issuer` (found by OIDC discovery) for `audience`.
///
/// # Errors
///
/// A URL that is not HTTPS (plain HTTP only to a loopback address).
pub fn layer(issuer: &str, audience: &str) -> Result<(JwtLayer, JwksSource), BuildError> {
    let source = JwksSource::oidc(issuer).build()?;
    let layer = JwtLayer::builder()
        .keys(
            source.clone(),
            Rules::new()
                .with_issuer(issuer)
                .with_audiences([audience])
                .with_types(["at+jwt"]),
        )
        .build()?;
    Ok((layer, source))
}
