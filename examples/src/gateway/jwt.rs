//! `palisade-jwt` in the gateway: `/v1/*` accept a JWT as well as an API key
//! ([`palisade::AnyCredentialLayer`]). Keys come from an OIDC issuer through discovery and a
//! cached JWKS: `--oidc-issuer`, or, only in demo mode (nothing real configured), the demo's
//! own [`super::idp`]. Tokens must be `at+jwt` access tokens for the configured audience.

use palisade::BuildError;
use palisade::jwt::{JwksSource, JwtLayer, Rules};

use super::flags::Settings;
use super::idp::DemoIdp;

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

/// The JWTs the gateway accepts: those of `--oidc-issuer`; in demo mode, those of the demo
/// issuer, started here (its signing key is public, so it runs only while nothing real is
/// configured); otherwise none. The keys are loaded once before serving, so a misconfigured
/// issuer shows at start-up (requests get `503` until it answers).
///
/// # Errors
///
/// A message when the demo issuer cannot start or the issuer URL is not acceptable.
pub async fn configure(settings: &Settings) -> Result<(Option<JwtLayer>, Option<DemoIdp>), String> {
    let (issuer, demo_idp) = match (&settings.oidc_issuer, settings.demo) {
        (Some(issuer), _) => (issuer.clone(), None),
        (None, true) => {
            let idp = DemoIdp::spawn()
                .await
                .map_err(|err| format!("cannot start the demo identity provider: {err}"))?;
            (idp.issuer().to_owned(), Some(idp))
        }
        (None, false) => return Ok((None, None)),
    };
    let (layer, source) = layer(&issuer, &settings.jwt_audience)
        .map_err(|err| format!("invalid --oidc-issuer: {err}"))?;
    match source.load().await {
        Ok(keys) => tracing::info!(%issuer, keys, "JWT keys loaded by OIDC discovery"),
        Err(err) => tracing::warn!(
            %issuer,
            %err,
            "JWT keys not loaded yet: JWTs get 503 until the issuer answers"
        ),
    }
    Ok((Some(layer), demo_idp))
}
