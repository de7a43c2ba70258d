//! The key never reaches the logs. Its own test binary: `tracing`'s per-callsite interest
//! cache is process-wide, and tests on other threads without a subscriber would race with it.

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::get;
use palisade_apikey::format::generate;
use palisade_apikey::{ApiKeyLayer, KeyDigest, KeyEntry, KeySet, KeyStore};
use palisade_test_support::{CapturedLogs, Client, TestServer};

#[tokio::test]
async fn keys_never_appear_in_logs() {
    let logs = CapturedLogs::start();
    let keys: Vec<String> = (0..5).map(|_| generate("pal_live").unwrap()).collect();
    let set = KeySet::from_entries([
        KeyEntry::new(KeyDigest::of(&keys[0]), "billing").unwrap(),
        KeyEntry::new(KeyDigest::of(&keys[1]), "reporting").unwrap(),
        KeyEntry::new(KeyDigest::of(&keys[2]), "retired")
            .unwrap()
            .with_enabled(false),
        KeyEntry::new(KeyDigest::of(&keys[3]), "temp")
            .unwrap()
            .with_not_after(SystemTime::now() - Duration::from_secs(60)),
    ])
    .unwrap();
    let app = Router::new()
        .route("/orders", get(|| async { "ok" }))
        .layer(ApiKeyLayer::new(KeyStore::new(set)));
    let server = TestServer::spawn(app).await;
    let client = Client::new();
    let url = server.url("/orders");
    for key in &keys {
        client.get(&url, &[("x-api-key", key)]).await;
        client
            .get(&url, &[("authorization", &format!("Bearer {key}"))])
            .await;
    }
    client
        .get(&url, &[("x-api-key", &keys[0]), ("x-api-key", &keys[1])])
        .await;
    let text = logs.contents();
    assert!(
        text.contains("API key refused"),
        "refusals are logged: {text}"
    );
    assert!(
        text.contains(&KeyDigest::of(&keys[2]).short_id()),
        "logs name the key id"
    );
    assert!(text.contains("retired"), "logs name the principal");
    for key in &keys {
        assert!(!text.contains(key.as_str()), "a key leaked into the logs");
        // Not even its random part.
        let random = key.rsplit('_').nth(1).unwrap();
        assert!(!text.contains(random), "part of a key leaked into the logs");
    }
}
