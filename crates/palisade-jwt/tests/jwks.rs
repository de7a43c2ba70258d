//! The JWKS cache against a real JWKS server on 127.0.0.1: rotation, outage and stale
//! window, unknown-`kid` storms, single-flight, and OIDC discovery.

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use jsonwebtoken::Algorithm;
use palisade_jwt::jwks::DiscoveryError;
use palisade_jwt::{JwksError, JwksPolicy, JwksSource, JwtLayer, Rules};
use palisade_test_support::jwt::{JwksServer, TestKey, claims};
use serde_json::Value;
use tower::{Layer, ServiceExt, service_fn};

const AUD: &str = "api";

fn policy() -> JwksPolicy {
    JwksPolicy {
        min_lifetime: Duration::from_millis(300),
        default_lifetime: Duration::from_millis(300),
        unknown_kid_cooldown: Duration::from_secs(3600),
        stale_for: Duration::from_millis(1500),
        fetch_timeout: Duration::from_secs(2),
        ..JwksPolicy::default()
    }
}

/// A service behind the layer that answers 200 with the caller's subject.
fn service(
    layer: &JwtLayer,
) -> impl tower::Service<
    Request<()>,
    Response = Response<palisade_core::ResponseBody<String>>,
    Error = Infallible,
    Future: Send,
> + Clone
+ Send
+ use<> {
    layer.layer(service_fn(|request: Request<()>| async move {
        let subject = request
            .extensions()
            .get::<palisade_core::Identity>()
            .map(|i| i.subject().to_owned())
            .unwrap_or_default();
        Ok::<_, Infallible>(Response::new(subject))
    }))
}

async fn call<S>(service: &S, token: &str) -> (StatusCode, Value)
where
    S: tower::Service<
            Request<()>,
            Response = Response<palisade_core::ResponseBody<String>>,
            Error = Infallible,
        > + Clone,
{
    let request = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body = serde_json::from_slice(&body)
        .unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, body)
}

fn layer(server: &JwksServer, policy: JwksPolicy) -> (JwtLayer, JwksSource) {
    let source = JwksSource::builder(&server.jwks_url())
        .policy(policy)
        .build()
        .unwrap();
    let layer = JwtLayer::builder()
        .keys(
            source.clone(),
            Rules::new()
                .with_issuer(server.issuer())
                .with_audiences([AUD]),
        )
        .cache_capacity(0)
        .build()
        .unwrap();
    (layer, source)
}

#[tokio::test]
async fn a_rotation_is_picked_up_without_restart_and_the_old_kid_retires() {
    let old = TestKey::rsa_a("2026-old", Algorithm::RS256);
    let new = TestKey::rsa_b("2026-new", Algorithm::RS256);
    let server = JwksServer::spawn(&[&old]).await;
    let (layer, _) = layer(
        &server,
        JwksPolicy {
            unknown_kid_cooldown: Duration::ZERO,
            ..policy()
        },
    );
    let service = service(&layer);
    let issuer = server.issuer();
    let (status, body) = call(&service, &old.sign(&claims(&issuer, AUD, "ada"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.jwks_fetches(), 1);

    // The provider rotates: only the new key is published.
    server.set_keys(&[&new]);
    let (status, body) = call(&service, &new.sign(&claims(&issuer, AUD, "grace"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.jwks_fetches(), 2, "one fetch for the unknown kid");
    // The old key is gone from the set that fetch brought.
    let (status, body) = call(&service, &old.sign(&claims(&issuer, AUD, "ada"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["reason"], "unknown_key");
}

#[tokio::test]
async fn an_outage_is_served_from_stale_keys_then_fails_closed_then_recovers() {
    let key = TestKey::ec256("k1");
    let server = JwksServer::spawn(&[&key]).await;
    let (layer, source) = layer(
        &server,
        JwksPolicy {
            unknown_kid_cooldown: Duration::from_millis(200),
            ..policy()
        },
    );
    let service = service(&layer);
    let token = key.sign(&claims(&server.issuer(), AUD, "ada"));
    assert_eq!(call(&service, &token).await.0, StatusCode::OK);

    server.set_status(StatusCode::SERVICE_UNAVAILABLE);
    // Past the keys' lifetime (300 ms), within the stale window (1.5 s more): still served.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(source.keys().is_some());
    let (status, body) = call(&service, &token).await;
    assert_eq!(status, StatusCode::OK, "stale keys serve: {body}");
    assert!(server.jwks_fetches() >= 2, "refreshes were tried");

    // Past the stale window: fail closed, 503 with Retry-After.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (status, body) = call(&service, &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["reason"], "keys_unavailable");

    // The endpoint recovers; the background refresh brings the keys back.
    server.set_status(StatusCode::OK);
    let mut recovered = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if call(&service, &token).await.0 == StatusCode::OK {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "keys came back after the outage");
}

#[tokio::test]
async fn ten_thousand_random_kids_cause_at_most_one_fetch_per_cooldown() {
    let key = TestKey::ed25519("real");
    let server = JwksServer::spawn(&[&key]).await;
    let (layer, _) = layer(
        &server,
        JwksPolicy {
            min_lifetime: Duration::from_secs(3600),
            default_lifetime: Duration::from_secs(3600),
            ..policy()
        },
    );
    let service = service(&layer);
    let issuer = server.issuer();
    assert_eq!(
        call(&service, &key.sign(&claims(&issuer, AUD, "ada")))
            .await
            .0,
        StatusCode::OK
    );
    let before = server.jwks_fetches();
    let started = std::time::Instant::now();
    for i in 0..10_000u32 {
        let forged = TestKey::ed25519(&format!("random-{i:08x}-{}", i.wrapping_mul(2_654_435_761)));
        let (status, _) = call(&service, &forged.sign(&claims(&issuer, AUD, "mallory"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert!(
        server.jwks_fetches() - before <= 1,
        "{} fetches for 10,000 unknown kids in {:?}",
        server.jwks_fetches() - before,
        started.elapsed()
    );
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_fetch_and_nobody_waits_on_a_cooldown() {
    let old = TestKey::rsa_a("old", Algorithm::RS256);
    let new = TestKey::rsa_b("new", Algorithm::RS256);
    let server = JwksServer::spawn(&[&old]).await;
    let (layer, source) = layer(&server, policy());
    source.load().await.unwrap();
    let service = service(&layer);
    let issuer = server.issuer();
    server.set_keys(&[&old, &new]);
    server.set_delay(Duration::from_millis(300));
    let before = server.jwks_fetches();
    let token = new.sign(&claims(&issuer, AUD, "grace"));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let service = service.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move { call(&service, &token).await.0 }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(server.jwks_fetches() - before, 1, "100 requests, one fetch");

    // The cooldown (an hour here) now runs: an unknown kid is refused at once, however slow the
    // endpoint.
    server.set_delay(Duration::from_secs(5));
    let stranger = TestKey::ec256("stranger");
    let started = std::time::Instant::now();
    let (status, _) = call(&service, &stranger.sign(&claims(&issuer, AUD, "x"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(server.jwks_fetches() - before, 1);
}

#[tokio::test]
async fn oidc_discovery_finds_the_keys_and_refuses_another_issuer() {
    let key = TestKey::ec384("k");
    let server = JwksServer::spawn(&[&key]).await;
    let source = JwksSource::oidc(&server.issuer())
        .policy(policy())
        .build()
        .unwrap();
    assert_eq!(source.load().await.unwrap(), 1);
    assert_eq!(server.discovery_fetches(), 1);
    let layer = JwtLayer::builder()
        .keys(
            source,
            Rules::new()
                .with_issuer(server.issuer())
                .with_audiences([AUD]),
        )
        .build()
        .unwrap();
    let token = key.sign(&claims(&server.issuer(), AUD, "ada"));
    assert_eq!(call(&service(&layer), &token).await.0, StatusCode::OK);

    let impostor = JwksServer::spawn(&[&key]).await;
    impostor.set_discovery_issuer(Some(&server.issuer()));
    let source = JwksSource::oidc(&impostor.issuer())
        .policy(policy())
        .build()
        .unwrap();
    assert_eq!(
        source.load().await.unwrap_err(),
        JwksError::Discovery(DiscoveryError::IssuerMismatch)
    );
    assert_eq!(
        impostor.jwks_fetches(),
        0,
        "keys are never fetched from a mismatched issuer"
    );
    let layer = JwtLayer::builder()
        .keys(source, Rules::new().with_audiences([AUD]))
        .build()
        .unwrap();
    let token = key.sign(&claims(&impostor.issuer(), AUD, "ada"));
    let (status, body) = call(&service(&layer), &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test]
async fn several_issuers_each_verify_with_their_own_keys_only() {
    let a_key = TestKey::rsa_a("a-1", Algorithm::RS256);
    let b_key = TestKey::rsa_b("b-1", Algorithm::PS256);
    let a = JwksServer::spawn(&[&a_key]).await;
    let b = JwksServer::spawn(&[&b_key]).await;
    let source = |server: &JwksServer| {
        JwksSource::builder(&server.jwks_url())
            .policy(policy())
            .build()
            .unwrap()
    };
    let layer = JwtLayer::builder()
        .issuer(a.issuer(), source(&a), Rules::new().with_audiences([AUD]))
        .issuer(b.issuer(), source(&b), Rules::new().with_audiences([AUD]))
        .build()
        .unwrap();
    let service = service(&layer);
    assert_eq!(
        call(&service, &a_key.sign(&claims(&a.issuer(), AUD, "ada")))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(&service, &b_key.sign(&claims(&b.issuer(), AUD, "bob")))
            .await
            .0,
        StatusCode::OK
    );
    // B's key claiming to be from A: A's keys do not have it.
    let (status, body) = call(&service, &b_key.sign(&claims(&a.issuer(), AUD, "eve"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["reason"], "unknown_key");
    // Issue 16, item 11: an issuer not accepted (or none) was `wrong_issuer` before any
    // signature was checked, so the accepted issuers could be listed by trying. It is now the
    // very answer a forged signature gets.
    let valid = a_key.sign(&claims(&a.issuer(), AUD, "ada"));
    let (head, _) = valid.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", "A".repeat(342));
    let (status, forged_body) = call(&service, &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged_body["reason"], "bad_signature");
    let mut no_issuer = claims(&a.issuer(), AUD, "eve");
    no_issuer.as_object_mut().unwrap().remove("iss");
    for token in [
        a_key.sign(&claims("https://elsewhere", AUD, "eve")),
        a_key.sign(&no_issuer),
    ] {
        let (status, body) = call(&service, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body, forged_body,
            "indistinguishable from a forged signature"
        );
    }
}

#[tokio::test]
async fn cache_control_sets_the_lifetime_within_bounds_and_documents_are_capped() {
    let key = TestKey::ec256("k");
    let server = JwksServer::spawn(&[&key]).await;
    server.set_cache_control(Some("public, max-age=3600"));
    let source = JwksSource::builder(&server.jwks_url())
        .policy(policy())
        .build()
        .unwrap();
    source.load().await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        server.jwks_fetches(),
        1,
        "max-age=3600 holds the keys past the 300 ms default"
    );

    let big = JwksSource::builder(&server.jwks_url())
        .policy(JwksPolicy {
            max_document_bytes: 64,
            ..policy()
        })
        .build()
        .unwrap();
    assert!(matches!(
        big.load().await.unwrap_err(),
        JwksError::Fetch(palisade_jwt::jwks::FetchError::TooLarge)
    ));
}
