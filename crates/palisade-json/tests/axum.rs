//! The extractors and the layer in an axum app over real HTTP: `StrictJson` and `ValidatedJson`
//! behind `JsonLayer`, `StrictJson` alone, and (feature `schema`) a route with a JSON Schema.
#![cfg(feature = "axum")]

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use palisade_core::problem::types;
use palisade_json::garde::Validate;
use palisade_json::{DEFAULT_MAX_BODY, JsonLayer, StrictJson, ValidatedJson};
use palisade_test_support::{Client, Reply, TestServer};

#[derive(Debug, serde::Deserialize)]
struct Order {
    id: u64,
    items: Vec<Item>,
}

#[derive(Debug, serde::Deserialize)]
struct Item {
    sku: String,
    quantity: u32,
}

#[derive(Debug, serde::Deserialize, Validate)]
struct SignUp {
    #[garde(length(min = 3, max = 20), alphanumeric)]
    name: String,
    #[garde(email)]
    email: String,
    #[garde(dive)]
    addresses: Vec<Address>,
}

#[derive(Debug, serde::Deserialize, Validate)]
struct Address {
    #[garde(length(min = 2, max = 2))]
    country: String,
}

async fn order(StrictJson(order): StrictJson<Order>) -> String {
    let quantity: u32 = order.items.iter().map(|item| item.quantity).sum();
    let skus: Vec<&str> = order.items.iter().map(|item| item.sku.as_str()).collect();
    format!("order {}: {quantity} of {}", order.id, skus.join(","))
}

async fn sign_up(ValidatedJson(sign_up): ValidatedJson<SignUp>) -> String {
    format!(
        "welcome {} <{}> ({} addresses)",
        sign_up.name,
        sign_up.email,
        sign_up.addresses.len()
    )
}

async fn app() -> TestServer {
    let router = Router::new()
        .route("/orders", post(order))
        .route("/sign-up", post(sign_up))
        .route_layer(JsonLayer::new())
        .route("/bare/orders", post(order));
    #[cfg(feature = "schema")]
    let router = router.route(
        "/schema/orders",
        post(order).route_layer(
            JsonLayer::builder()
                .schema(serde_json::json!({
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "maxItems": 2,
                                  "items": {"properties": {"sku": {"pattern": "^[A-Z]{3}$"}}}}
                    }
                }))
                .build()
                .unwrap(),
        ),
    );
    TestServer::spawn(router).await
}

async fn post_json(server: &TestServer, path: &str, body: impl Into<Bytes>) -> Reply {
    Client::new()
        .send(
            Request::post(server.url(path))
                .header("content-type", "application/json")
                .body(Full::new(body.into()))
                .unwrap(),
        )
        .await
}

fn expect_problem(reply: &Reply, status: StatusCode, type_uri: &str) -> serde_json::Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let problem = reply.json();
    assert_eq!(problem["type"], type_uri, "{problem}");
    for leak in ["SECRET", "Order", "SignUp", "palisade_json", "serde"] {
        assert!(!reply.text().contains(leak), "{leak} in {problem}");
    }
    problem
}

#[tokio::test]
async fn a_good_order_is_decoded() {
    let server = app().await;
    for path in ["/orders", "/bare/orders"] {
        let reply = post_json(
            &server,
            path,
            r#"{"id":7,"items":[{"sku":"ABC","quantity":2},{"sku":"XYZ","quantity":1}]}"#,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
        assert_eq!(reply.text(), "order 7: 3 of ABC,XYZ");
    }
}

#[tokio::test]
async fn shape_errors_are_422_with_the_pointer() {
    let server = app().await;
    let cases = [
        (
            r#"{"id":7,"items":[{"sku":"A","quantity":1,"discount":"SECRET"}]}"#,
            "unknown_field",
            "/items/0/discount",
        ),
        (
            r#"{"id":7,"items":[],"is_admin":true}"#,
            "unknown_field",
            "/is_admin",
        ),
        (r#"{"items":[]}"#, "missing_field", ""),
        (
            r#"{"id":7,"items":[{"sku":"A","quantity":"SECRET"}]}"#,
            "wrong_type",
            "/items/0/quantity",
        ),
        (
            r#"{"id":7,"items":[{"sku":"A","quantity":4294967296}]}"#,
            "invalid_value",
            "/items/0/quantity",
        ),
    ];
    for path in ["/orders", "/bare/orders"] {
        for (body, reason, pointer) in cases {
            let reply = post_json(&server, path, body).await;
            let problem = expect_problem(
                &reply,
                StatusCode::UNPROCESSABLE_ENTITY,
                types::INVALID_BODY,
            );
            assert_eq!(problem["reason"], reason, "{path} {body}: {problem}");
            assert_eq!(problem["pointer"], pointer, "{path} {body}: {problem}");
        }
    }
}

#[tokio::test]
async fn the_extractor_alone_is_as_strict_as_the_layer() {
    let server = app().await;
    for path in ["/orders", "/bare/orders"] {
        let reply = post_json(&server, path, r#"{"id":7,"id":8,"items":[]}"#).await;
        let problem = expect_problem(&reply, StatusCode::BAD_REQUEST, types::INVALID_JSON);
        assert_eq!(problem["reason"], "duplicate_key", "{path}");
        assert_eq!(problem["pointer"], "/id", "{path}");

        let reply = Client::new()
            .send(
                Request::post(server.url(path))
                    .header("content-type", "text/plain")
                    .body(Full::new(Bytes::from_static(b"{}")))
                    .unwrap(),
            )
            .await;
        expect_problem(
            &reply,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            types::UNSUPPORTED_MEDIA_TYPE,
        );

        let huge = format!(
            r#"{{"id":1,"items":[],"pad":"{}"}}"#,
            "x".repeat(DEFAULT_MAX_BODY)
        );
        let reply = post_json(&server, path, huge).await;
        expect_problem(&reply, StatusCode::PAYLOAD_TOO_LARGE, types::BODY_TOO_LARGE);
    }
}

#[tokio::test]
async fn garde_rules_are_422_with_the_pointer_and_the_rule() {
    let server = app().await;
    let reply = post_json(
        &server,
        "/sign-up",
        r#"{"name":"ada","email":"ada@example.com","addresses":[{"country":"GB"}]}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "welcome ada <ada@example.com> (1 addresses)");

    let cases = [
        (
            r#"{"name":"ada","email":"ada@example.com","addresses":[{"country":"GB"},{"country":"SECRET"}]}"#,
            "/addresses/1/country",
            "length",
        ),
        (
            r#"{"name":"a!","email":"ada@example.com","addresses":[]}"#,
            "/name",
            "",
        ),
        (
            r#"{"name":"ada","email":"SECRET","addresses":[]}"#,
            "/email",
            "email",
        ),
    ];
    for (body, pointer, detail) in cases {
        let reply = post_json(&server, "/sign-up", body).await;
        let problem = expect_problem(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            types::INVALID_BODY,
        );
        assert_eq!(problem["reason"], "validation", "{body}: {problem}");
        assert_eq!(problem["pointer"], pointer, "{body}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(detail),
            "{body}: {problem}"
        );
    }
    // Two rules broken on one field: the first is reported, and the count.
    let reply = post_json(
        &server,
        "/sign-up",
        r#"{"name":"!","email":"ada@example.com","addresses":[]}"#,
    )
    .await;
    let problem = expect_problem(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        types::INVALID_BODY,
    );
    assert_eq!(problem["failures"], 2, "{problem}");
}

#[cfg(feature = "schema")]
#[tokio::test]
async fn a_route_schema_is_422_with_the_pointer_and_keyword() {
    let server = app().await;
    let reply = post_json(
        &server,
        "/schema/orders",
        r#"{"id":1,"items":[{"sku":"ABC","quantity":1}]}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    for (body, pointer, keyword) in [
        (
            r#"{"id":1,"items":[{"sku":"ABC","quantity":1},{"sku":"SECRET","quantity":1}]}"#,
            "/items/1/sku",
            "pattern",
        ),
        (r#"{"id":1,"items":[{},{},{}]}"#, "/items", "maxItems"),
    ] {
        let reply = post_json(&server, "/schema/orders", body).await;
        let problem = expect_problem(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            types::INVALID_BODY,
        );
        assert_eq!(problem["reason"], "schema");
        assert_eq!(problem["pointer"], pointer, "{body}: {problem}");
        assert_eq!(problem["keyword"], keyword, "{body}: {problem}");
    }
}
