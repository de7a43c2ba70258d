//! API-key authentication over real HTTP on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::routing::{get, post};
use axum::{Extension, Router};
use http::StatusCode;
use palisade_apikey::format::generate;
use palisade_apikey::{ApiKeyLayer, KeyDigest, KeyEntry, KeySet, KeyStore, require_scopes};
use palisade_core::Identity;
use palisade_test_support::{Client, Reply, TestServer};

struct Keys {
    valid: String,
    reader: String,
    disabled: String,
    expired: String,
    unknown: String,
}

fn keys() -> (Keys, KeySet) {
    let keys = Keys {
        valid: generate("pal_live").unwrap(),
        reader: generate("pal_live").unwrap(),
        disabled: generate("pal_live").unwrap(),
        expired: generate("pal_live").unwrap(),
        unknown: generate("pal_live").unwrap(),
    };
    let set = KeySet::from_entries([
        KeyEntry::new(KeyDigest::of(&keys.valid), "billing")
            .unwrap()
            .with_scopes(["orders:read", "orders:write"])
            .unwrap(),
        KeyEntry::new(KeyDigest::of(&keys.reader), "reporting")
            .unwrap()
            .with_scopes(["orders:read"])
            .unwrap(),
        KeyEntry::new(KeyDigest::of(&keys.disabled), "retired")
            .unwrap()
            .with_enabled(false),
        KeyEntry::new(KeyDigest::of(&keys.expired), "temp")
            .unwrap()
            .with_not_after(SystemTime::now() - Duration::from_secs(60)),
    ])
    .unwrap();
    (keys, set)
}

fn app(store: KeyStore) -> Router {
    Router::new()
        .route(
            "/orders",
            get(|Extension(identity): Extension<Identity>| async move {
                format!(
                    "{} {}",
                    identity.subject(),
                    identity.key_id().unwrap_or_default()
                )
            }),
        )
        .route(
            "/orders/new",
            post(|| async { "created" }).route_layer(require_scopes(["orders:write"])),
        )
        .layer(ApiKeyLayer::new(store))
}

/// (case, headers, problem title, the secret that must not be echoed)
type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str, &'a str);

fn assert_problem(
    reply: &Reply,
    status: StatusCode,
    title: &str,
    secret: Option<&str>,
    case: &str,
) {
    assert_eq!(reply.status, status, "{case}: {}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{case}"
    );
    let json = reply.json();
    assert_eq!(json["status"], status.as_u16(), "{case}");
    assert_eq!(json["title"], title, "{case}");
    if let Some(secret) = secret {
        assert!(
            !reply.text().contains(secret),
            "{case}: the body echoes the key"
        );
        for value in reply.headers.values() {
            let value = value.to_str().unwrap_or_default();
            assert!(!value.contains(secret), "{case}: a header echoes the key");
        }
    }
    if status == StatusCode::UNAUTHORIZED {
        let challenge = reply
            .header("www-authenticate")
            .expect("401 carries WWW-Authenticate");
        assert!(
            challenge.starts_with("Bearer realm=\"api\""),
            "{case}: {challenge}"
        );
    }
}

#[tokio::test]
async fn every_outcome_has_its_status_and_problem() {
    let (keys, set) = keys();
    let server = TestServer::spawn(app(KeyStore::new(set))).await;
    let client = Client::new();
    let url = server.url("/orders");
    let bearer = |k: &str| format!("Bearer {k}");

    // Accepted, by either header.
    let ok = client.get(&url, &[("x-api-key", &keys.valid)]).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        ok.text(),
        format!("billing {}", KeyDigest::of(&keys.valid).short_id())
    );
    let ok = client
        .get(&url, &[("authorization", &bearer(&keys.valid))])
        .await;
    assert_eq!(ok.status, StatusCode::OK);

    let mut typo = keys.valid.clone().into_bytes();
    typo[10] = if typo[10] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    let oversized = format!("{}{}", keys.valid, "a".repeat(300));
    let missing_header: [(&str, &str); 0] = [];
    let cases: Vec<Case<'_>> = vec![
        (
            "unknown",
            vec![("x-api-key", keys.unknown.clone())],
            "Invalid API key",
            &keys.unknown,
        ),
        // A revoked key learns nothing more than an unknown one (see below for the opt-in).
        (
            "disabled",
            vec![("x-api-key", keys.disabled.clone())],
            "Invalid API key",
            &keys.disabled,
        ),
        (
            "expired",
            vec![("authorization", bearer(&keys.expired))],
            "Invalid API key",
            &keys.expired,
        ),
        (
            "malformed (checksum)",
            vec![("x-api-key", typo.clone())],
            "Malformed API key",
            &typo,
        ),
        (
            "malformed (not our format)",
            vec![("x-api-key", "hunter2-legacy-key".to_owned())],
            "Malformed API key",
            "hunter2-legacy-key",
        ),
        (
            "malformed header",
            vec![("authorization", format!("Bearer {} extra", keys.valid))],
            "Malformed API key header",
            &keys.valid,
        ),
        (
            "duplicate header",
            vec![
                ("x-api-key", keys.valid.clone()),
                ("x-api-key", keys.reader.clone()),
            ],
            "Several API keys",
            &keys.valid,
        ),
        (
            "bearer and header",
            vec![
                ("x-api-key", keys.valid.clone()),
                ("authorization", bearer(&keys.valid)),
            ],
            "Several API keys",
            &keys.valid,
        ),
        (
            "oversized",
            vec![("x-api-key", oversized.clone())],
            "API key too long",
            &oversized,
        ),
    ];
    for (case, headers, title, secret) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = client.get(&url, &headers).await;
        // Two keys is `invalid_request` (RFC 6750, section 3.1): a 400, not a 401.
        let status = if title == "Several API keys" {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_problem(&reply, status, title, Some(secret), case);
        if status == StatusCode::BAD_REQUEST {
            assert!(
                reply
                    .header("www-authenticate")
                    .unwrap()
                    .contains("error=\"invalid_request\""),
                "{case}"
            );
        }
        if case == "unknown" {
            assert!(
                reply
                    .header("www-authenticate")
                    .unwrap()
                    .contains("error=\"invalid_token\"")
            );
        }
    }

    let missing = client.get(&url, &missing_header).await;
    assert_problem(
        &missing,
        StatusCode::UNAUTHORIZED,
        "API key required",
        None,
        "missing",
    );
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
}

#[tokio::test]
async fn revoked_keys_look_unknown_unless_the_layer_reveals_why() {
    let (keys, set) = keys();
    let store = KeyStore::new(set);
    let hidden = TestServer::spawn(app(store.clone())).await;
    let revealing = TestServer::spawn(
        Router::new()
            .route("/orders", get(|| async { "ok" }))
            .layer(
                ApiKeyLayer::builder(store)
                    .reveal_refusals(true)
                    .build()
                    .unwrap(),
            ),
    )
    .await;
    let client = Client::new();
    let unknown = client
        .get(&hidden.url("/orders"), &[("x-api-key", &keys.unknown)])
        .await;
    for key in [&keys.disabled, &keys.expired] {
        let reply = client
            .get(&hidden.url("/orders"), &[("x-api-key", key)])
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body, unknown.body, "same body as an unknown key");
        assert_eq!(
            reply.header("www-authenticate"),
            unknown.header("www-authenticate")
        );
    }
    for (key, title) in [
        (&keys.disabled, "API key disabled"),
        (&keys.expired, "API key expired"),
    ] {
        let reply = client
            .get(&revealing.url("/orders"), &[("x-api-key", key)])
            .await;
        assert_problem(&reply, StatusCode::UNAUTHORIZED, title, Some(key), title);
    }
}

#[tokio::test]
async fn a_route_that_needs_a_scope_answers_403() {
    let (keys, set) = keys();
    let server = TestServer::spawn(app(KeyStore::new(set))).await;
    let client = Client::new();
    let post = |key: &str| {
        http::Request::post(server.url("/orders/new"))
            .header("x-api-key", key)
            .body(http_body_util::Full::default())
            .unwrap()
    };
    let writer = client.send(post(&keys.valid)).await;
    assert_eq!(writer.status, StatusCode::OK);
    let reader = client.send(post(&keys.reader)).await;
    assert_problem(
        &reader,
        StatusCode::FORBIDDEN,
        "Missing scope",
        Some(&keys.reader),
        "wrong scope",
    );
    assert_eq!(
        reader.json()["required_scopes"],
        serde_json::json!(["orders:write"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_fails_no_request() {
    let old = generate("pal_live").unwrap();
    let new = generate("pal_live").unwrap();
    let entry = |key: &str| KeyEntry::new(KeyDigest::of(key), "billing").unwrap();
    let store = KeyStore::new(KeySet::from_entries([entry(&old)]).unwrap());
    let server = TestServer::spawn(app(store.clone())).await;
    let url = server.url("/orders");

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (url, old, stop, served) = (url.clone(), old.clone(), stop.clone(), served.clone());
        clients.push(tokio::spawn(async move {
            let client = Client::new();
            while !stop.load(Ordering::Relaxed) {
                let reply = client.get(&url, &[("x-api-key", &old)]).await;
                assert_eq!(
                    reply.status,
                    StatusCode::OK,
                    "a request failed during a swap"
                );
                served.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Rotate: both keys, then the old key alone, and again, until the clients have sent a few
    // hundred requests across the swaps (bounded in time).
    let started = std::time::Instant::now();
    let mut swaps = 0u32;
    while (served.load(Ordering::Relaxed) < 400 || swaps < 50)
        && started.elapsed() < Duration::from_secs(20)
    {
        let set = if swaps.is_multiple_of(2) {
            KeySet::from_entries([entry(&old), entry(&new)]).unwrap()
        } else {
            KeySet::from_entries([entry(&old)]).unwrap()
        };
        store.replace(set);
        swaps += 1;
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    assert!(
        swaps > 10,
        "the key set was swapped while requests ran ({swaps} swaps)"
    );
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert!(served.load(Ordering::Relaxed) > 0);

    // Finish the rotation: the new key only.
    store.replace(KeySet::from_entries([entry(&new)]).unwrap());

    let client = Client::new();
    assert_eq!(
        client.get(&url, &[("x-api-key", &new)]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        client.get(&url, &[("x-api-key", &old)]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_key_file_reloads_and_a_bad_file_keeps_the_current_keys() {
    let first = generate("pal_live").unwrap();
    let second = generate("pal_live").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.txt");
    std::fs::write(&path, format!("{} principal=a\n", KeyDigest::of(&first))).unwrap();
    let store = KeyStore::from_file(&path).unwrap();
    let server = TestServer::spawn(app(store.clone())).await;
    let client = Client::new();
    let url = server.url("/orders");
    assert_eq!(
        client.get(&url, &[("x-api-key", &first)]).await.status,
        StatusCode::OK
    );

    std::fs::write(
        &path,
        format!(
            "{} principal=a\n{} principal=b\n",
            KeyDigest::of(&first),
            KeyDigest::of(&second)
        ),
    )
    .unwrap();
    assert_eq!(store.reload_from_file(&path).unwrap(), 2);
    assert_eq!(
        client.get(&url, &[("x-api-key", &second)]).await.status,
        StatusCode::OK
    );

    std::fs::write(&path, "sha256:nothex principal=a\n").unwrap();
    let err = store.reload_from_file(&path).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    assert_eq!(store.load().len(), 2, "the current keys stay in force");
    assert_eq!(
        client.get(&url, &[("x-api-key", &second)]).await.status,
        StatusCode::OK
    );
}

/// Issue 10: an empty key file on SIGHUP replaced the key set with zero keys and every client
/// got 401. A reload with no usable key is refused unless allowed.
#[tokio::test]
async fn a_reload_with_no_usable_key_is_refused_unless_allowed() {
    let key = generate("pal_live").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.txt");
    std::fs::write(&path, format!("{} principal=a\n", KeyDigest::of(&key))).unwrap();
    let store = KeyStore::from_file(&path).unwrap();
    let server = TestServer::spawn(app(store.clone())).await;
    let client = Client::new();
    let url = server.url("/orders");

    let unusable = [
        String::new(),
        "# every key was removed\n\n".to_owned(),
        format!("{} principal=a enabled=false\n", KeyDigest::of(&key)),
        format!(
            "{} principal=a not_after=2001-01-01T00:00:00Z\n",
            KeyDigest::of(&key)
        ),
    ];
    for text in &unusable {
        std::fs::write(&path, text).unwrap();
        let err = store.reload_from_file(&path).unwrap_err();
        assert!(
            matches!(err, palisade_apikey::LoadError::NoUsableKey { .. }),
            "{text:?}: {err}"
        );
        assert!(err.to_string().contains("no usable key") || err.to_string().contains("no key"));
        assert_eq!(
            client.get(&url, &[("x-api-key", &key)]).await.status,
            StatusCode::OK,
            "{text:?}: the current key still works"
        );
        assert!(
            KeyStore::from_file(&path).is_err(),
            "{text:?}: refused at start too"
        );
    }

    let store = store.allow_empty(true);
    std::fs::write(&path, "").unwrap();
    assert_eq!(
        store.reload_from_file(&path).unwrap(),
        0,
        "allowed explicitly"
    );
    assert_eq!(
        client.get(&url, &[("x-api-key", &key)]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_query_key_works_only_when_enabled_and_never_reaches_the_handler() {
    use palisade_apikey::KeySources;

    let key = generate("pal_live").unwrap();
    let set =
        || KeySet::from_entries([KeyEntry::new(KeyDigest::of(&key), "partner").unwrap()]).unwrap();
    let echo_uri = || {
        Router::new().route(
            "/orders",
            get(|uri: http::Uri| async move { uri.to_string() }),
        )
    };

    let default = TestServer::spawn(echo_uri().layer(ApiKeyLayer::new(KeyStore::new(set())))).await;
    let reply = Client::new()
        .get(&default.url(&format!("/orders?api_key={key}")), &[])
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "query keys are off by default"
    );

    let layer = ApiKeyLayer::builder(KeyStore::new(set()))
        .sources(KeySources::default().with_query_parameter("api_key"))
        .build()
        .unwrap();
    let enabled = TestServer::spawn(echo_uri().layer(layer)).await;
    let reply = Client::new()
        .get(&enabled.url(&format!("/orders?page=2&api_key={key}")), &[])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "/orders?page=2", "the handler saw the key");
}
