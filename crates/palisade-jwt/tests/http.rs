//! `JwtLayer` over real HTTP on 127.0.0.1 in an axum app (claims extractor, scopes, optional
//! routes, cookies), and in front of tonic with a real gRPC client.
#![cfg(feature = "axum")]

use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Router};
use http::StatusCode;
use jsonwebtoken::Algorithm;
use palisade_core::{Identity, require_scopes};
use palisade_jwt::{Claims, JwksPolicy, JwksSource, JwtLayer, Rules, TokenSources};
use palisade_test_support::grpc::hello::HelloRequest;
use palisade_test_support::grpc::hello::greeter_client::GreeterClient;
use palisade_test_support::grpc::{self};
use palisade_test_support::jwt::{JwksServer, TestKey, claims, now};
use palisade_test_support::{Client, Reply, TestServer};
use serde_json::json;

const AUD: &str = "orders-api";

#[derive(Debug, serde::Deserialize)]
struct Custom {
    tenant: String,
}

async fn app(jwks: &JwksServer, optional: bool) -> TestServer {
    let source = JwksSource::builder(&jwks.jwks_url()).build().unwrap();
    let rules = Rules::new()
        .with_issuer(jwks.issuer())
        .with_audiences([AUD])
        .with_leeway(Duration::from_secs(5));
    let layer = JwtLayer::builder()
        .keys(source, rules)
        .sources(TokenSources::new().with_cookie("session"))
        .optional(optional)
        .claims::<Custom>()
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/me",
            get(
                |claims: Claims<Custom>, Extension(who): Extension<Identity>| async move {
                    format!(
                        "{} of {} ({})",
                        who.subject(),
                        claims.tenant,
                        who.scopes().collect::<Vec<_>>().join(" ")
                    )
                },
            ),
        )
        .route(
            "/maybe",
            get(|claims: Option<Claims<Custom>>| async move {
                claims.map_or_else(|| "anonymous".to_owned(), |c| c.tenant.clone())
            }),
        )
        .route(
            "/orders",
            get(|| async { "orders" }).route_layer(require_scopes(["orders:read"])),
        )
        .layer(layer);
    TestServer::spawn(router).await
}

fn token(key: &TestKey, jwks: &JwksServer, extra: &serde_json::Value) -> String {
    let mut claims = claims(&jwks.issuer(), AUD, "ada");
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    key.sign(&claims)
}

/// `a`'s header and signature around `b`'s payload.
fn spliced(a: &str, b: &str) -> String {
    let parts: Vec<&str> = a.split('.').collect();
    let payload = b.split('.').nth(1).unwrap();
    format!("{}.{payload}.{}", parts[0], parts[2])
}

async fn get_with(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Reply {
    Client::new().get(&server.url(path), headers).await
}

fn assert_unauthorized(reply: &Reply, reason: &str, secret: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.json()["reason"], reason, "{}", reply.text());
    let challenge = reply.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer realm=\"api\""), "{challenge}");
    if reason != "missing" {
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    assert!(!reply.text().contains(secret), "the token came back");
    assert!(!challenge.contains(secret));
}

#[tokio::test]
async fn accepted_tokens_carry_claims_and_identity() {
    let key = TestKey::rsa_a("k1", Algorithm::RS256);
    let jwks = JwksServer::spawn(&[&key]).await;
    let server = app(&jwks, false).await;
    let token = token(
        &key,
        &jwks,
        &json!({"tenant": "acme", "scope": "orders:read profile"}),
    );
    let bearer = format!("Bearer {token}");
    let reply = get_with(&server, "/me", &[("authorization", &bearer)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "ada of acme (orders:read profile)");
    // Again: from the verified-token cache, same answer.
    let reply = get_with(&server, "/me", &[("authorization", &bearer)]).await;
    assert_eq!(reply.text(), "ada of acme (orders:read profile)");
    // From the cookie.
    let cookie = format!("theme=dark; session={token}");
    let reply = get_with(&server, "/me", &[("cookie", &cookie)]).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Both: ambiguous, `invalid_request` (RFC 6750, section 3.1), a 400.
    let reply = get_with(
        &server,
        "/me",
        &[("cookie", &cookie), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["reason"], "several");
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\"")
    );
    // Issue 16, item 11: two `Authorization: Bearer` headers were a 401.
    let reply = get_with(
        &server,
        "/me",
        &[("authorization", &bearer), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json()["type"],
        palisade_core::problem::types::AMBIGUOUS_CREDENTIALS
    );
}

#[tokio::test]
async fn every_refusal_is_a_401_challenge_without_the_token() {
    let key = TestKey::ec256("k1");
    let jwks = JwksServer::spawn(&[&key]).await;
    let server = app(&jwks, false).await;
    let missing = get_with(&server, "/me", &[]).await;
    assert_unauthorized(&missing, "missing", "none");
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
    let cases = [
        (
            token(&key, &jwks, &json!({"tenant": "a", "exp": now() - 60})),
            "expired",
        ),
        (
            token(&key, &jwks, &json!({"tenant": "a", "aud": "other-api"})),
            "wrong_audience",
        ),
        (
            token(&key, &jwks, &json!({"tenant": "a", "iss": "https://evil"})),
            "wrong_issuer",
        ),
        (token(&key, &jwks, &json!({"tenant": 7})), "claims_shape"),
        ("not.a.token".to_owned(), "malformed"),
        (
            spliced(
                &token(&key, &jwks, &json!({"tenant": "a"})),
                &token(&key, &jwks, &json!({"tenant": "b"})),
            ),
            "bad_signature",
        ),
    ];
    for (token, reason) in cases {
        let reply = get_with(
            &server,
            "/me",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_unauthorized(&reply, reason, &token);
        if reason == "expired" {
            assert!(
                reply
                    .header("www-authenticate")
                    .unwrap()
                    .contains("error_description=\"the token has expired ('exp')\""),
                "{:?}",
                reply.header("www-authenticate")
            );
            assert_eq!(reply.json()["claim"], "exp");
        }
    }
}

#[tokio::test]
async fn scopes_are_403_with_insufficient_scope() {
    let key = TestKey::ed25519("k1");
    let jwks = JwksServer::spawn(&[&key]).await;
    let server = app(&jwks, false).await;
    let reader = token(&key, &jwks, &json!({"tenant": "a", "scp": ["orders:read"]}));
    let reply = get_with(
        &server,
        "/orders",
        &[("authorization", &format!("Bearer {reader}"))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let other = token(&key, &jwks, &json!({"tenant": "a", "scope": "profile"}));
    let reply = get_with(
        &server,
        "/orders",
        &[("authorization", &format!("Bearer {other}"))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer error=\"insufficient_scope\", scope=\"orders:read\"")
    );
    assert_eq!(reply.json()["required_scopes"], json!(["orders:read"]));
}

#[tokio::test]
async fn optional_routes_pass_anonymous_callers_but_not_bad_tokens() {
    let key = TestKey::ec256("k1");
    let jwks = JwksServer::spawn(&[&key]).await;
    let server = app(&jwks, true).await;
    let reply = get_with(&server, "/maybe", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "anonymous");
    let good = token(&key, &jwks, &json!({"tenant": "acme"}));
    let reply = get_with(
        &server,
        "/maybe",
        &[("authorization", &format!("Bearer {good}"))],
    )
    .await;
    assert_eq!(reply.text(), "acme");
    let expired = token(&key, &jwks, &json!({"tenant": "acme", "exp": now() - 600}));
    let reply = get_with(
        &server,
        "/maybe",
        &[("authorization", &format!("Bearer {expired}"))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // A handler that needs claims still says 401 to an anonymous caller.
    let reply = get_with(&server, "/me", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_tonic_client_gets_unauthenticated_or_through() {
    let key = TestKey::rsa_b("k1", Algorithm::PS256);
    let jwks = JwksServer::spawn(&[&key]).await;
    let source = JwksSource::builder(&jwks.jwks_url())
        .policy(JwksPolicy::default())
        .build()
        .unwrap();
    let layer = JwtLayer::builder()
        .keys(
            source,
            Rules::new()
                .with_issuer(jwks.issuer())
                .with_audiences([AUD]),
        )
        .build()
        .unwrap();
    let addr = grpc::serve_greeter_behind(layer).await;
    let mut client = GreeterClient::new(grpc::channel(addr).await);
    let hello = || HelloRequest {
        name: "ada".into(),
        count: 0,
    };
    let status = client.say_hello(hello()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    let mut request = tonic::Request::new(hello());
    let token = key.sign(&claims(&jwks.issuer(), AUD, "ada"));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let reply = client.say_hello(request).await.unwrap();
    assert!(reply.into_inner().message.contains("ada"));
    let mut request = tonic::Request::new(hello());
    let expired = key.sign(&json!({"iss": jwks.issuer(), "aud": AUD, "exp": now() - 3600}));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {expired}").parse().unwrap(),
    );
    let status = client.say_hello(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("expired"), "{status:?}");
}

/// Issue 16, item 1: a `cty` or `typ` whose 12th byte falls inside a multi-byte character
/// panicked the layer before any key was looked up: the connection died with an empty reply
/// and the panic message wrote the header's text, `\n` included, into the log. Now such a token
/// is judged like any other: a bad signature is a `401`, a good one is accepted.
#[tokio::test]
async fn a_media_type_with_non_ascii_text_is_judged_not_a_panic() {
    let key = TestKey::ec256("k1");
    let jwks = JwksServer::spawn(&[&key]).await;
    let server = app(&jwks, false).await;
    let payload = token(&key, &jwks, &json!({"tenant": "acme"}));
    let payload = payload.split('.').nth(1).unwrap();
    for member in ["cty", "typ"] {
        for value in [
            "xxxxxxxxxxxé",
            "xxxxxxxxxxxé\\nforged log line",
            "applicationé/jwt",
        ] {
            let header = format!(r#"{{"alg":"ES256","kid":"k1","{member}":"{value}"}}"#);
            let forged = format!(
                "{}.{payload}.c2ln",
                base64::Engine::encode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    header.as_bytes()
                )
            );
            let reply = get_with(
                &server,
                "/me",
                &[("authorization", &format!("Bearer {forged}"))],
            )
            .await;
            assert_unauthorized(&reply, "bad_signature", &forged);
            let claims = token(&key, &jwks, &json!({"tenant": "acme"}));
            let claims = claims.split('.').nth(1).unwrap();
            let claims =
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
                    .unwrap();
            let signed = key.sign_raw(header.as_bytes(), &claims);
            let reply = get_with(
                &server,
                "/me",
                &[("authorization", &format!("Bearer {signed}"))],
            )
            .await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{member}={value}: {}",
                reply.text()
            );
        }
    }
}
