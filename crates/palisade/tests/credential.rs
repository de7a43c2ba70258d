//! `AnyCredentialLayer` over real HTTP: API keys and JWTs (from a real JWKS server) on one
//! route, each to its layer, and one 401 when neither is sent.
#![cfg(all(feature = "apikey", feature = "jwt"))]

use axum::routing::get;
use axum::{Extension, Router};
use http::StatusCode;
use palisade::apikey::format::generate;
use palisade::apikey::{ApiKeyLayer, KeyDigest, KeyEntry, KeySet, KeyStore};
use palisade::jwt::{JwksSource, JwtLayer, Rules};
use palisade::{AnyCredentialLayer, Identity, IdentitySource};
use palisade_test_support::jwt::{JwksServer, TestKey, claims};
use palisade_test_support::{Client, TestServer};

#[tokio::test]
async fn each_credential_reaches_its_layer_and_none_is_one_401() {
    let key = generate("pal_live").unwrap();
    let store = KeyStore::new(
        KeySet::from_entries([KeyEntry::new(KeyDigest::of(&key), "billing").unwrap()]).unwrap(),
    );
    let signer = TestKey::ec256("k1");
    let jwks = JwksServer::spawn(&[&signer]).await;
    let jwt = JwtLayer::builder()
        .keys(
            JwksSource::builder(&jwks.jwks_url()).build().unwrap(),
            Rules::new()
                .with_issuer(jwks.issuer())
                .with_audiences(["api"]),
        )
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/me",
            get(|Extension(who): Extension<Identity>| async move {
                let source = match who.source() {
                    IdentitySource::ApiKey => "api-key",
                    IdentitySource::Jwt => "jwt",
                    _ => "other",
                };
                format!("{} via {source}", who.subject())
            }),
        )
        .layer(AnyCredentialLayer::new(ApiKeyLayer::new(store), jwt));
    let server = TestServer::spawn(app).await;
    let client = Client::new();
    let url = server.url("/me");
    let token = signer.sign(&claims(&jwks.issuer(), "api", "ada"));

    let ok = [
        (("x-api-key", key.clone()), "billing via api-key"),
        (
            ("authorization", format!("Bearer {key}")),
            "billing via api-key",
        ),
        (("authorization", format!("Bearer {token}")), "ada via jwt"),
    ];
    for ((name, value), expected) in ok {
        let reply = client.get(&url, &[(name, &value)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text());
        assert_eq!(reply.text(), expected);
    }

    let mut typo = key.clone().into_bytes();
    typo[12] = if typo[12] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    let refused = [
        (
            vec![("authorization", format!("Bearer {typo}"))],
            "Malformed API key",
        ),
        (
            vec![("authorization", "Bearer not-a-token".to_owned())],
            "Invalid token",
        ),
        (
            vec![("authorization", "Basic YTpi".to_owned())],
            "Authentication required",
        ),
        (vec![], "Authentication required"),
    ];
    for (headers, title) in refused {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = client.get(&url, &headers).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(
            reply.json()["title"],
            title,
            "{headers:?}: {}",
            reply.text()
        );
        assert!(
            reply
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer"),
            "{headers:?}"
        );
        assert_eq!(
            reply.json()["type"],
            palisade::problem::types::UNAUTHENTICATED,
            "one problem type for every 401"
        );
    }
}

/// Issue 16, item 11: two bearer tokens (or two keys) are `400 invalid_request` (RFC 6750,
/// section 3.1), not `401`; a request carrying both a JWT and an API key gets a clear `400`
/// (it was "API key too long"); and the JWT layer's own sources (a cookie here) are honoured
/// (a token in the cookie was "Authentication required").
#[tokio::test]
async fn several_credentials_are_a_400_and_the_jwt_sources_are_honoured() {
    let key = generate("pal_live").unwrap();
    let other_key = generate("pal_live").unwrap();
    let store = KeyStore::new(
        KeySet::from_entries([
            KeyEntry::new(KeyDigest::of(&key), "billing").unwrap(),
            KeyEntry::new(KeyDigest::of(&other_key), "search").unwrap(),
        ])
        .unwrap(),
    );
    let signer = TestKey::ec256("k1");
    let jwks = JwksServer::spawn(&[&signer]).await;
    let jwt = JwtLayer::builder()
        .keys(
            JwksSource::builder(&jwks.jwks_url()).build().unwrap(),
            Rules::new()
                .with_issuer(jwks.issuer())
                .with_audiences(["api"]),
        )
        .sources(palisade::jwt::TokenSources::new().with_cookie("session"))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/me",
            get(|Extension(who): Extension<Identity>| async move { who.subject().to_owned() }),
        )
        .layer(AnyCredentialLayer::new(ApiKeyLayer::new(store), jwt));
    let server = TestServer::spawn(app).await;
    let client = Client::new();
    let url = server.url("/me");
    let token = signer.sign(&claims(&jwks.issuer(), "api", "ada"));
    let bearer = |credential: &str| format!("Bearer {credential}");
    let cookie = format!("theme=dark; session={token}");

    let reply = client.get(&url, &[("cookie", &cookie)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "ada");

    let several: Vec<Vec<(&str, String)>> = vec![
        vec![
            ("x-api-key", key.clone()),
            ("authorization", bearer(&token)),
        ],
        vec![("x-api-key", key.clone()), ("cookie", cookie.clone())],
        vec![("authorization", bearer(&key)), ("cookie", cookie.clone())],
        vec![
            ("authorization", bearer(&token)),
            ("authorization", bearer(&token)),
        ],
        vec![
            ("authorization", bearer(&token)),
            ("cookie", cookie.clone()),
        ],
        vec![
            ("authorization", bearer(&key)),
            ("authorization", bearer(&other_key)),
        ],
        vec![
            ("x-api-key", key.clone()),
            ("authorization", bearer(&other_key)),
        ],
    ];
    for headers in several {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = client.get(&url, &headers).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{headers:?}: {}",
            reply.text()
        );
        assert_eq!(
            reply.json()["type"],
            palisade::problem::types::AMBIGUOUS_CREDENTIALS,
            "{headers:?}"
        );
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|c| c.contains("error=\"invalid_request\"")),
            "{headers:?}"
        );
        for secret in [&key, &other_key, &token] {
            assert!(
                !reply.text().contains(secret.as_str()),
                "a credential came back"
            );
        }
    }
}
