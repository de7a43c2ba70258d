//! Every Palisade layer in one program, written against the `palisade` facade alone: an axum
//! server and a tonic server behind the same server stack, an HTTP client and a tonic channel
//! behind the client stack, each built with `ServiceBuilderExt` methods.
//!
//! ```text
//! cargo run --example toolkit     # serves both on 127.0.0.1:0, calls them, prints each answer
//! ```
//!
//! Server stack, outermost first: the client address, the caller's W3C trace, a 2 s timeout
//! (a shorter `grpc-timeout` honoured), 20 requests a second per address, an API key or a
//! JWT, 600 a minute per caller, the route's scope; on HTTP also strict JSON bodies. Client
//! stack: retries (HTTP: idempotent methods and `Retry-After`; gRPC: `UNAVAILABLE`, with
//! `grpc-previous-rpc-attempts`), a breaker that reads HTTP and gRPC statuses, a timeout per
//! attempt, the deadline and the trace sent along.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use palisade::apikey::{ApiKeyLayer, KeySet, KeyStore};
use palisade::breaker::Breaker;
use palisade::json::{JsonLayer, StrictJson};
use palisade::jwt::{Alg, JwtKey, JwtKeySet, JwtLayer, Rules};
use palisade::ratelimit::{KeyBy, Quota, RateLimitLayer, Tier};
use palisade::retry::{Backoff, GrpcRetryLayer, HttpRetryLayer, ReplayBody};
use palisade::timeout::DeadlineHeader;
use palisade::{BoxError, Identity, ServiceBuilderExt, TrustedProxies};
use tonic::metadata::MetadataValue;
use tower::{ServiceBuilder, ServiceExt as _};

#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::pedantic,
    rust_2018_idioms
)]
#[path = "../../crates/palisade-test-support/src/grpc/helloworld.rs"]
mod hello;

use hello::greeter_client::GreeterClient;
use hello::greeter_server::{Greeter, GreeterServer};
use hello::{HelloReply, HelloRequest};

/// The demo key (public: only for this example) and its key-file line.
const DEMO_KEY: &str = "pal_demo_2Oa6KmWtP4kcChKu1OwMScNvaRtSsij9_1CnNwM";
const DEMO_KEYS: &str = "sha256:62ec36c714dc42161581dd5a82c698b6a7e7c14459cc95e5a24ea65cdd38228b principal=demo scopes=orders:write,greeter:call";

/// The HMAC secret of the example's JWTs (public: only for this example).
const JWT_SECRET: &[u8] = b"the toolkit example's secret, 32";

/// The layers of the server stack, built once and cloned into each server.
#[derive(Clone)]
struct ServerLayers {
    per_ip: RateLimitLayer,
    keys: KeyStore,
    jwt: JwtLayer,
    per_caller: RateLimitLayer,
}

impl ServerLayers {
    fn new() -> Result<Self, BoxError> {
        Ok(Self {
            per_ip: RateLimitLayer::builder()
                .tier(Tier::new(
                    "ip",
                    Quota::per_second(20).with_burst(40),
                    KeyBy::client_ip(),
                ))
                .build()?,
            keys: KeyStore::new(KeySet::parse(DEMO_KEYS)?),
            jwt: JwtLayer::builder()
                .keys(
                    JwtKeySet::new([JwtKey::hmac(Alg::HS256, JWT_SECRET)?]),
                    Rules::new().with_audiences(["toolkit"]),
                )
                .build()?,
            per_caller: RateLimitLayer::builder()
                .tier(Tier::new(
                    "caller",
                    Quota::per_minute(600).with_burst(100),
                    KeyBy::identity(),
                ))
                .build()?,
        })
    }
}

/// `POST /orders`: a strict JSON body, the caller's identity.
#[derive(Debug, serde::Deserialize)]
struct Order {
    item: String,
    quantity: u32,
}

async fn create_order(
    axum::Extension(identity): axum::Extension<Identity>,
    StrictJson(order): StrictJson<Order>,
) -> (http::StatusCode, String) {
    (
        http::StatusCode::CREATED,
        format!(
            "{} x {} for {}",
            order.quantity,
            order.item,
            identity.subject()
        ),
    )
}

async fn serve_http(listener: tokio::net::TcpListener, layers: ServerLayers) {
    let app = Router::new()
        .route(
            "/orders",
            post(create_order).route_layer(palisade::require_scopes(["orders:write"])),
        )
        .layer(
            ServiceBuilder::new()
                .client_ip(TrustedProxies::none())
                .trace_context()
                .http_timeout(Duration::from_secs(2))
                .rate_limits(layers.per_ip)
                .any_credential(ApiKeyLayer::new(layers.keys), layers.jwt)
                .rate_limits(layers.per_caller)
                .strict_json(JsonLayer::new()),
        );
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(err) = axum::serve(listener, app).await {
        eprintln!("http server: {err}");
    }
}

#[derive(Debug, Default)]
struct DemoGreeter;

#[tonic::async_trait]
impl Greeter for DemoGreeter {
    async fn say_hello(
        &self,
        request: tonic::Request<HelloRequest>,
    ) -> Result<tonic::Response<HelloReply>, tonic::Status> {
        let caller = request
            .extensions()
            .get::<Identity>()
            .map_or("nobody", |identity| identity.subject())
            .to_owned();
        let name = request.into_inner().name;
        Ok(tonic::Response::new(HelloReply {
            message: format!("hello, {name} (called by {caller})"),
        }))
    }

    type SayHelloStreamStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<HelloReply, tonic::Status>>>;

    async fn say_hello_stream(
        &self,
        _request: tonic::Request<HelloRequest>,
    ) -> Result<tonic::Response<Self::SayHelloStreamStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "streams are not part of this example",
        ))
    }
}

async fn serve_grpc(listener: tokio::net::TcpListener, layers: ServerLayers) {
    let served = tonic::transport::Server::builder()
        .layer(
            ServiceBuilder::new()
                .client_ip(TrustedProxies::none())
                .trace_context()
                .http_timeout(Duration::from_secs(2))
                .rate_limits(layers.per_ip)
                .any_credential(ApiKeyLayer::new(layers.keys), layers.jwt)
                .rate_limits(layers.per_caller)
                .require_scopes(["greeter:call"]),
        )
        .add_service(GreeterServer::new(DemoGreeter))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await;
    if let Err(err) = served {
        eprintln!("grpc server: {err}");
    }
}

/// A JWT for the example's issuer: `sub` jwt-user, both scopes, an hour.
fn demo_token() -> Result<String, BoxError> {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 3600;
    let claims = serde_json::json!({
        "sub": "jwt-user", "aud": "toolkit", "scope": "orders:write greeter:call", "exp": exp,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET)?;
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &key,
    )?)
}

/// A header carrying a credential, or none.
type Credential = Option<(&'static str, String)>;

/// Calls the HTTP server through the HTTP client stack.
async fn http_calls(addr: SocketAddr, token: &str) -> Result<(), BoxError> {
    let transport =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<ReplayBody<Full<Bytes>>>();
    let client = ServiceBuilder::new()
        .http_retry(HttpRetryLayer::new(
            Backoff::exponential(Duration::from_millis(50))
                .max_attempts(3)
                .build()?,
        ))
        .http_breaker(Breaker::builder().name("orders").build()?)
        .attempt_timeout(Duration::from_secs(1))
        .propagate_deadline(DeadlineHeader::grpc_timeout())
        .propagate_trace()
        .service(transport.map_err(BoxError::from));
    let calls: [(&str, Credential, &str); 5] = [
        (
            "an order with the key",
            Some(("x-api-key", DEMO_KEY.to_owned())),
            r#"{"item":"tea","quantity":2}"#,
        ),
        (
            "an order with a JWT",
            Some(("authorization", format!("Bearer {token}"))),
            r#"{"item":"tea","quantity":1}"#,
        ),
        (
            "an order without a credential",
            None,
            r#"{"item":"tea","quantity":2}"#,
        ),
        (
            "a key named twice",
            Some(("x-api-key", DEMO_KEY.to_owned())),
            r#"{"item":"tea","item":"gin","quantity":2}"#,
        ),
        (
            "an unknown member",
            Some(("x-api-key", DEMO_KEY.to_owned())),
            r#"{"item":"tea","quantity":2,"price":0}"#,
        ),
    ];
    for (what, credential, body) in calls {
        let mut request = http::Request::post(format!("http://{addr}/orders"))
            .header("content-type", "application/json");
        if let Some((name, value)) = credential {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        let response = client.clone().oneshot(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&body);
        let shown = if status.is_success() {
            text.to_string()
        } else {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|problem| problem["title"].as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        println!("HTTP {what:<34} {} {shown}", status.as_u16());
    }
    Ok(())
}

/// Calls the tonic server through the client stack on a plain channel.
async fn grpc_calls(addr: SocketAddr, token: &str) -> Result<(), BoxError> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let stack = ServiceBuilder::new()
        .layer(GrpcRetryLayer::new(
            Backoff::exponential(Duration::from_millis(50))
                .max_attempts(3)
                .build()?,
        ))
        .breaker(Breaker::builder().name("greeter").build()?)
        .attempt_timeout(Duration::from_secs(1))
        .propagate_deadline(DeadlineHeader::grpc_timeout())
        .propagate_trace()
        .service(channel);
    let mut client = GreeterClient::new(stack);
    let credentials = [
        ("with the key", Some(("x-api-key", DEMO_KEY.to_owned()))),
        (
            "with a JWT",
            Some(("authorization", format!("Bearer {token}"))),
        ),
        ("without a credential", None),
    ];
    for (what, credential) in credentials {
        let mut request = tonic::Request::new(HelloRequest {
            name: "ada".into(),
            count: 0,
        });
        if let Some((name, value)) = credential {
            request
                .metadata_mut()
                .insert(name, MetadataValue::try_from(value)?);
        }
        match client.say_hello(request).await {
            Ok(reply) => println!("gRPC {what:<34} OK {}", reply.get_ref().message),
            Err(status) => println!("gRPC {what:<34} {:?}", status.code()),
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let layers = ServerLayers::new()?;
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (http_addr, grpc_addr) = (http_listener.local_addr()?, grpc_listener.local_addr()?);
    let http = tokio::spawn(serve_http(http_listener, layers.clone()));
    let grpc = tokio::spawn(serve_grpc(grpc_listener, layers));
    println!("axum on {http_addr}, tonic on {grpc_addr}, behind one server stack\n");
    let token = demo_token()?;
    let result = async {
        http_calls(http_addr, &token).await?;
        grpc_calls(grpc_addr, &token).await
    }
    .await;
    http.abort();
    grpc.abort();
    result
}
