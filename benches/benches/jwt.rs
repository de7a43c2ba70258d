//! JWT verification beside raw `jsonwebtoken::decode` (same crate, same aws-lc-rs backend), one
//! group per algorithm (`HS256`, `RS256`, `ES256`, `EdDSA`). Every row gets the same request carrying
//! `Authorization: Bearer <token>` and reads the token from it, so what differs is the
//! verification:
//!
//! - `jsonwebtoken/decode`: the bearer value through `decode::<Map>` with `iss`, `aud` and the
//!   algorithm set, the way a hand-written middleware would.
//! - `palisade/verifier`: `Verifier::verify_at` (the same checks and more: strict base64url,
//!   header rules, `nbf`/`iat`, the identity).
//! - `palisade/layer/cache-off`: the whole `JwtLayer` around an always-ready service (claims
//!   and identity into the request's extensions).
//! - `palisade/layer/cache-on`: the same token again, from the verified-token cache.

use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use palisade::jwt::{Alg, ClaimsMap, JwkOptions, JwtKey, JwtKeySet, JwtLayer, Rules, Verifier};
use palisade_benches::{always_ready, call_ready};
use palisade_test_support::jwt::{TestKey, claims};
use tower::Layer;

type Req = Request<()>;
type Res = Response<String>;

const ISS: &str = "https://login.example.com/tenant";
const AUD: &str = "https://api.example.com";
const SECRET: &[u8] = b"a 32-byte secret for HS256 tests";

fn jwt(c: &mut Criterion) {
    let signers = [
        (TestKey::hmac("hs", Algorithm::HS256, SECRET), Alg::HS256),
        (TestKey::rsa_a("rs", Algorithm::RS256), Alg::RS256),
        (TestKey::ec256("es"), Alg::ES256),
        (TestKey::ed25519("ed"), Alg::EdDSA),
    ];
    for (signer, alg) in signers {
        let mut claims = claims(ISS, AUD, "user-4711");
        claims["scope"] = "orders:read orders:write profile".into();
        claims["jti"] = "5d1f4f0e-7c1b-4a37-9a3a-1f0c2f7e8a11".into();
        claims["client_id"] = "web-shop".into();
        let token = signer.sign(&claims);
        let ours = match alg {
            Alg::HS256 => JwtKey::hmac(alg, SECRET).unwrap(),
            _ => JwtKey::from_jwk(signer.jwk().to_string().as_bytes(), &JwkOptions::default())
                .unwrap(),
        }
        .with_kid(&signer.kid);
        let raw_key = match alg {
            Alg::HS256 => DecodingKey::from_secret(SECRET).unwrap(),
            _ => DecodingKey::from_jwk(&serde_json::from_value(signer.jwk()).unwrap()).unwrap(),
        };
        let mut validation = Validation::new(signer.alg);
        validation.set_issuer(&[ISS]);
        validation.set_audience(&[AUD]);
        let rules = Rules::new().with_issuer(ISS).with_audiences([AUD]);
        let keys = JwtKeySet::new([ours]);
        let verifier = Verifier::new(keys.clone(), rules.clone());

        let uri: http::Uri = "/orders".parse().unwrap();
        let bearer = http::HeaderValue::try_from(format!("Bearer {token}")).unwrap();
        let request = || {
            let mut request = Request::new(());
            *request.uri_mut() = uri.clone();
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, bearer.clone());
            request
        };
        let bearer_of = |request: &Req| -> String {
            request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap()
                .to_owned()
        };

        let mut group = c.benchmark_group(format!("jwt/{alg}"));
        group.bench_function("jsonwebtoken/decode", |b| {
            b.iter(|| {
                let request = request();
                let token = bearer_of(&request);
                let data =
                    jsonwebtoken::decode::<ClaimsMap>(&token, &raw_key, &validation).unwrap();
                std::hint::black_box((request, data));
            });
        });
        group.bench_function("palisade/verifier", |b| {
            b.iter(|| {
                let request = request();
                let token = bearer_of(&request);
                let verified = verifier
                    .verify_at::<ClaimsMap>(&token, SystemTime::now())
                    .unwrap();
                std::hint::black_box((request, verified));
            });
        });
        let layer = |capacity| {
            JwtLayer::builder()
                .keys(keys.clone(), rules.clone())
                .cache_capacity(capacity)
                .build()
                .unwrap()
        };
        let mut uncached = layer(0).layer(always_ready::<Req, Res>());
        group.bench_function("palisade/layer/cache-off", |b| {
            b.iter(|| call_ready(&mut uncached, request()));
        });
        let mut cached = layer(10_000).layer(always_ready::<Req, Res>());
        group.bench_function("palisade/layer/cache-on", |b| {
            b.iter(|| call_ready(&mut cached, request()));
        });
        group.finish();
    }
}

criterion_group!(benches, jwt);
criterion_main!(benches);
