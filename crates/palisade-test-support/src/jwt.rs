//! Signing keys and a real JWKS server for JWT tests.
//!
//! [`TestKey`] signs tokens with the fixed key pairs in `keys/` (public: they prove nothing
//! outside tests). [`JwksServer`] serves a JWK set and an OIDC discovery document over real
//! HTTP on `127.0.0.1:0`, and lets a test rotate the keys, take the endpoint down, slow it,
//! set `Cache-Control`, name another issuer in discovery, and count the fetches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header::CACHE_CONTROL};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use serde_json::{Value, json};

use crate::TestServer;

fn ensure_backend() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}

/// A signing key of the tests, with its `kid` and algorithm.
#[derive(Clone)]
pub struct TestKey {
    /// The algorithm it signs with.
    pub alg: Algorithm,
    /// Its key id.
    pub kid: String,
    encoding: EncodingKey,
    /// The public key in PEM (none for HMAC).
    pub public_pem: Option<&'static [u8]>,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

macro_rules! key_file {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/keys/", $name))
    };
}

impl TestKey {
    fn new(
        alg: Algorithm,
        kid: &str,
        encoding: EncodingKey,
        public_pem: Option<&'static [u8]>,
    ) -> Self {
        Self {
            alg,
            kid: kid.to_owned(),
            encoding,
            public_pem,
        }
    }

    /// RSA key A (2048 bits) signing with `alg` (an `RS*` or `PS*` algorithm).
    ///
    /// # Panics
    ///
    /// If the key file does not parse.
    pub fn rsa_a(kid: &str, alg: Algorithm) -> Self {
        ensure_backend();
        let key = EncodingKey::from_rsa_pem(key_file!("rsa-a.pem")).expect("rsa-a.pem");
        Self::new(alg, kid, key, Some(key_file!("rsa-a.pub.pem")))
    }

    /// RSA key B (2048 bits), for rotations.
    ///
    /// # Panics
    ///
    /// If the key file does not parse.
    pub fn rsa_b(kid: &str, alg: Algorithm) -> Self {
        ensure_backend();
        let key = EncodingKey::from_rsa_pem(key_file!("rsa-b.pem")).expect("rsa-b.pem");
        Self::new(alg, kid, key, Some(key_file!("rsa-b.pub.pem")))
    }

    /// A P-256 key (ES256).
    ///
    /// # Panics
    ///
    /// If the key file does not parse.
    pub fn ec256(kid: &str) -> Self {
        ensure_backend();
        let key = EncodingKey::from_ec_pem(key_file!("ec256.pem")).expect("ec256.pem");
        Self::new(Algorithm::ES256, kid, key, Some(key_file!("ec256.pub.pem")))
    }

    /// A P-384 key (ES384).
    ///
    /// # Panics
    ///
    /// If the key file does not parse.
    pub fn ec384(kid: &str) -> Self {
        ensure_backend();
        let key = EncodingKey::from_ec_pem(key_file!("ec384.pem")).expect("ec384.pem");
        Self::new(Algorithm::ES384, kid, key, Some(key_file!("ec384.pub.pem")))
    }

    /// An Ed25519 key (`EdDSA`).
    ///
    /// # Panics
    ///
    /// If the key file does not parse.
    pub fn ed25519(kid: &str) -> Self {
        ensure_backend();
        let key = EncodingKey::from_ed_pem(key_file!("ed25519.pem")).expect("ed25519.pem");
        Self::new(
            Algorithm::EdDSA,
            kid,
            key,
            Some(key_file!("ed25519.pub.pem")),
        )
    }

    /// An HMAC key with `secret`.
    ///
    /// # Panics
    ///
    /// For an empty secret.
    pub fn hmac(kid: &str, alg: Algorithm, secret: &[u8]) -> Self {
        ensure_backend();
        let key = EncodingKey::from_secret(secret).expect("a secret");
        Self::new(alg, kid, key, None)
    }

    /// The public JWK, with `kid`, `alg` and `use: sig`.
    ///
    /// # Panics
    ///
    /// If the backend cannot derive the public key.
    pub fn jwk(&self) -> Value {
        let mut jwk = serde_json::to_value(
            Jwk::from_encoding_key(&self.encoding, self.alg).expect("a public JWK"),
        )
        .expect("JSON");
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk
    }

    /// Signs `claims` with a header of `alg`, `kid` and `typ: JWT`.
    ///
    /// # Panics
    ///
    /// If signing fails.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with(&header, claims)
    }

    /// Signs `claims` under `header` as given.
    ///
    /// # Panics
    ///
    /// If signing fails.
    pub fn sign_with(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).expect("signing")
    }

    /// Signs a raw header and payload (any bytes), for tokens no encoder would write.
    ///
    /// # Panics
    ///
    /// If signing fails.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!("{}.{}", b64.encode(header), b64.encode(payload));
        let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, self.alg)
            .expect("signing");
        format!("{input}.{signature}")
    }
}

/// Seconds since the Unix epoch, now.
///
/// # Panics
///
/// Before 1970.
pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("in range")
}

/// Claims valid for an hour: `sub`, `iss`, `aud`, `iat` and `exp`.
pub fn claims(issuer: &str, audience: &str, subject: &str) -> Value {
    json!({
        "sub": subject,
        "iss": issuer,
        "aud": audience,
        "iat": now(),
        "exp": now() + 3600,
    })
}

#[derive(Debug)]
struct Served {
    keys: Vec<Value>,
    status: StatusCode,
    cache_control: Option<String>,
    delay: Duration,
    discovery_issuer: Option<String>,
}

#[derive(Debug)]
struct Shared {
    served: Mutex<Served>,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
    issuer: Mutex<String>,
}

/// A JWKS endpoint (`/jwks`) and OIDC discovery (`/.well-known/openid-configuration`) on a
/// fresh loopback port. The issuer is the server's own base URL.
#[derive(Debug)]
pub struct JwksServer {
    server: TestServer,
    shared: Arc<Shared>,
}

impl JwksServer {
    /// Serves `keys` (their public JWKs).
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn spawn(keys: &[&TestKey]) -> Self {
        let shared = Arc::new(Shared {
            served: Mutex::new(Served {
                keys: keys.iter().map(|k| k.jwk()).collect(),
                status: StatusCode::OK,
                cache_control: None,
                delay: Duration::ZERO,
                discovery_issuer: None,
            }),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
            issuer: Mutex::new(String::new()),
        });
        let router = Router::new()
            .route("/jwks", get(jwks))
            .route("/.well-known/openid-configuration", get(discovery))
            .with_state(shared.clone());
        let server = TestServer::spawn(router).await;
        *shared.issuer.lock().expect("lock") = server.url("");
        Self { server, shared }
    }

    fn served(&self) -> std::sync::MutexGuard<'_, Served> {
        self.shared.served.lock().expect("lock")
    }

    /// The issuer: `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        self.server.url("")
    }

    /// `http://127.0.0.1:PORT/jwks`.
    pub fn jwks_url(&self) -> String {
        self.server.url("/jwks")
    }

    /// Serves `keys` from now on (a rotation).
    pub fn set_keys(&self, keys: &[&TestKey]) {
        self.served().keys = keys.iter().map(|k| k.jwk()).collect();
    }

    /// Serves raw JWK values (for malformed or unusual keys).
    pub fn set_raw_keys(&self, keys: Vec<Value>) {
        self.served().keys = keys;
    }

    /// Answers every request with `status` (e.g. 503 for an outage; 200 to recover).
    pub fn set_status(&self, status: StatusCode) {
        self.served().status = status;
    }

    /// Sends `Cache-Control: value` with the key set.
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.served().cache_control = value.map(str::to_owned);
    }

    /// Waits this long before each answer.
    pub fn set_delay(&self, delay: Duration) {
        self.served().delay = delay;
    }

    /// Names another issuer in the discovery document.
    pub fn set_discovery_issuer(&self, issuer: Option<&str>) {
        self.served().discovery_issuer = issuer.map(str::to_owned);
    }

    /// How many times `/jwks` was requested.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many times discovery was requested.
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let (delay, status, cache_control, body) = {
        let served = shared.served.lock().expect("lock");
        (
            served.delay,
            served.status,
            served.cache_control.clone(),
            json!({ "keys": served.keys }),
        )
    };
    tokio::time::sleep(delay).await;
    if status != StatusCode::OK {
        return (status, "unavailable").into_response();
    }
    let mut response = json_response(&body);
    if let Some(value) = cache_control.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(CACHE_CONTROL, value);
    }
    response
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let base = shared.issuer.lock().expect("lock").clone();
    let (status, issuer) = {
        let served = shared.served.lock().expect("lock");
        (served.status, served.discovery_issuer.clone())
    };
    if status != StatusCode::OK {
        return (status, "unavailable").into_response();
    }
    json_response(&json!({
        "issuer": issuer.unwrap_or_else(|| base.clone()),
        "jwks_uri": format!("{base}/jwks"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    }))
}

fn json_response(body: &Value) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
