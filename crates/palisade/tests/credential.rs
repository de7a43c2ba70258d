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
