//! The demo's identity provider: an in-process OIDC issuer on its own loopback port, so the
//! gateway verifies JWTs through the real path (discovery, then a JWKS fetch, cached) without
//! an external identity provider.
//!
//! It serves `/.well-known/openid-configuration` and `/jwks` (one P-256 key, `kid`
//! `demo-2026`) and signs the demo token printed at start-up. Its private key is embedded and
//! public: tokens it signs prove nothing outside this demo. Point the gateway at a real issuer
//! with `--oidc-issuer` instead.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

/// The demo issuer's signing key (P-256, PKCS#8). Public: never trust it elsewhere.
const DEMO_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmeCIUVwnYAE0eLhn
9qBnBV1hv957QMLTRQkA6w496yOhRANCAAThXHkN5l9eVtsiZNmOX5kM/EC+kx7V
zS3XqfXdzpe9w55Fh+DFY2Ppj/S5vcwyud2fUcFxN4dbQRnZnd/06XgG
-----END PRIVATE KEY-----
";

/// Its public key's coordinates, as published in the JWKS.
const DEMO_X: &str = "4Vx5DeZfXlbbImTZjl-ZDPxAvpMe1c0t16n13c6XvcM";
const DEMO_Y: &str = "nkWH4MVjY-mP9Lm9zDK53Z9RwXE3h1tBGdmd3_TpeAY";

/// The `kid` of the demo key.
pub const DEMO_KID: &str = "demo-2026";

/// The audience the demo's tokens are for, and the gateway's default `--jwt-audience`.
pub const DEMO_AUDIENCE: &str = "palisade-demo";

/// A running demo issuer.
#[derive(Clone)]
pub struct DemoIdp {
    issuer: String,
    key: EncodingKey,
}

impl std::fmt::Debug for DemoIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoIdp")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl DemoIdp {
    /// Serves the issuer on a fresh loopback port until the runtime ends.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound, or the embedded key does not load.
    pub async fn spawn() -> std::io::Result<Self> {
        palisade::jwt::install_backend();
        let key = EncodingKey::from_ec_pem(DEMO_SIGNING_KEY.as_bytes())
            .map_err(|e| std::io::Error::other(format!("the demo key: {e}")))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let issuer = format!("http://{addr}");
        let discovery = json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/jwks"),
            "id_token_signing_alg_values_supported": ["ES256"],
        })
        .to_string();
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "x": DEMO_X, "y": DEMO_Y,
            "kid": DEMO_KID, "use": "sig", "alg": "ES256",
        }]})
        .to_string();
        let router = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let body = discovery.clone();
                    async move { ([(CONTENT_TYPE, "application/json")], body).into_response() }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    let body = jwks.clone();
                    async move {
                        (
                            [
                                (CONTENT_TYPE, "application/jwk-set+json"),
                                (CACHE_CONTROL, "public, max-age=300"),
                            ],
                            body,
                        )
                            .into_response()
                    }
                }),
            );
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!(%err, "the demo identity provider stopped");
            }
        });
        Ok(Self { issuer, key })
    }

    /// A signer with the demo key for `issuer` that serves nothing: what anyone holding the
    /// public demo key can do (the tests use it to show such tokens are refused once real
    /// credentials are configured).
    ///
    /// # Errors
    ///
    /// When the embedded key does not load.
    pub fn offline(issuer: &str) -> std::io::Result<Self> {
        palisade::jwt::install_backend();
        let key = EncodingKey::from_ec_pem(DEMO_SIGNING_KEY.as_bytes())
            .map_err(|e| std::io::Error::other(format!("the demo key: {e}")))?;
        Ok(Self {
            issuer: issuer.to_owned(),
            key,
        })
    }

    /// The issuer URL (`http://127.0.0.1:PORT`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A token for `subject` with `scopes`, valid for `lifetime`, for [`DEMO_AUDIENCE`].
    ///
    /// # Errors
    ///
    /// When signing fails.
    pub fn token(
        &self,
        subject: &str,
        scopes: &[&str],
        lifetime: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(DEMO_KID.to_owned());
        header.typ = Some("at+jwt".to_owned());
        let claims = json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": DEMO_AUDIENCE,
            "scope": scopes.join(" "),
            "iat": now,
            "exp": now + lifetime.as_secs(),
        });
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}
