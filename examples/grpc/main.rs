//! gRPC with Palisade: a tonic Greeter behind Palisade's server stack (client address, total
//! timeout, per-address limit, an API key or a JWT, a scope), called through Palisade's client
//! stack on a plain tonic `Channel` (retries, a breaker, a timeout per attempt, the deadline
//! propagated).
//!
//! ```text
//! cargo run --example grpc                          # serve on 127.0.0.1:0, make the calls below, exit
//! cargo run --example grpc -- --serve 127.0.0.1:50051   # only serve, until Ctrl-C
//! ```
//!
//! Every rejection reaches the tonic client as a gRPC status it understands: no key is
//! `UNAUTHENTICATED`, a missing scope `PERMISSION_DENIED`, a late call `DEADLINE_EXCEEDED`,
//! a malformed `grpc-timeout` `INVALID_ARGUMENT`, a burst from one address
//! `RESOURCE_EXHAUSTED`. The stubs come from
//! `crates/palisade-test-support/proto/helloworld.proto`, generated once and checked in, so no
//! `protoc` is needed.

use std::net::SocketAddr;
use std::time::Duration;

use palisade::apikey::{ApiKeyLayer, KeySet, KeyStore};
use palisade::breaker::Breaker;
use palisade::jwt::{Alg, JwtKey, JwtKeySet, JwtLayer, Rules};
use palisade::ratelimit::{KeyBy, Quota, RateLimitLayer, Tier};
use palisade::retry::{Backoff, GrpcRetryLayer};
use palisade::timeout::{DeadlineHeader, HttpTimeoutLayer};
use palisade::{AnyCredentialLayer, Deadline, ServiceBuilderExt, TrustedProxies};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};
use tower::ServiceBuilder;

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

/// The demo key (public: only for this example), and its key-file line with scope `greeter:call`.
const DEMO_KEY: &str = "pal_demo_2Oa6KmWtP4kcChKu1OwMScNvaRtSsij9_1CnNwM";
const DEMO_KEYS: &str = "sha256:62ec36c714dc42161581dd5a82c698b6a7e7c14459cc95e5a24ea65cdd38228b principal=demo scopes=greeter:call";

/// The HMAC secret of the example's JWTs (public: only for this example).
const JWT_SECRET: &[u8] = b"the grpc example's secret, 32 b.";

/// Greets; a name of `slow` takes ten seconds.
#[derive(Debug, Default)]
struct DemoGreeter;

#[tonic::async_trait]
impl Greeter for DemoGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        if name == "slow" {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        Ok(Response::new(HelloReply {
            message: format!("hello, {name}"),
        }))
    }

    type SayHelloStreamStream = tokio_stream::Iter<std::vec::IntoIter<Result<HelloReply, Status>>>;

    async fn say_hello_stream(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<Self::SayHelloStreamStream>, Status> {
        let HelloRequest { name, count } = request.into_inner();
        let replies: Vec<_> = (0..count.min(100))
            .map(|i| {
                Ok(HelloReply {
                    message: format!("hello #{i}, {name}"),
                })
            })
            .collect();
        Ok(Response::new(tokio_stream::iter(replies)))
    }
}

/// Serves the Greeter on `listener` behind, outermost first: the client address (from tonic's
/// connection info), a 2 s timeout that honours a shorter `grpc-timeout`, 8 calls at once per
/// address (then 2 a second), an API key or a JWT, and the scope `greeter:call`.
async fn serve(listener: tokio::net::TcpListener) -> Result<(), Box<dyn std::error::Error>> {
    let keys = KeyStore::new(KeySet::parse(DEMO_KEYS)?);
    let timeout = HttpTimeoutLayer::builder(Duration::from_secs(2))
        .inbound_deadline(DeadlineHeader::grpc_timeout(), Duration::from_secs(2))
        .build()?;
    let per_ip = RateLimitLayer::builder()
        .tier(Tier::new(
            "ip",
            Quota::per_second(2).with_burst(8),
            KeyBy::client_ip(),
        ))
        .build()?;
    let jwt = JwtLayer::builder()
        .keys(
            JwtKeySet::new([JwtKey::hmac(Alg::HS256, JWT_SECRET)?]),
            Rules::new().with_audiences(["greeter"]),
        )
        .build()?;
    tonic::transport::Server::builder()
        .layer(
            ServiceBuilder::new()
                .client_ip(TrustedProxies::none())
                .http_timeout_layer(timeout)
                .rate_limits(per_ip)
                .layer(AnyCredentialLayer::new(ApiKeyLayer::new(keys), jwt))
                .require_scopes(["greeter:call"]),
        )
        .add_service(GreeterServer::new(DemoGreeter))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}

fn hello(name: &str, key: Option<&'static str>) -> Request<HelloRequest> {
    let mut request = Request::new(HelloRequest {
        name: name.into(),
        count: 0,
    });
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert("x-api-key", MetadataValue::from_static(key));
    }
    request
}

fn show(what: &str, result: &Result<Response<HelloReply>, Status>) {
    match result {
        Ok(reply) => println!("{what:<44} OK: {}", reply.get_ref().message),
        Err(status) => println!("{what:<44} {:?}: {}", status.code(), status.message()),
    }
}

/// A JWT for the example's issuer: `sub` demo, scope `greeter:call`, an hour.
fn demo_token() -> Result<String, Box<dyn std::error::Error>> {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 3600;
    let claims = serde_json::json!({
        "sub": "demo", "aud": "greeter", "scope": "greeter:call", "exp": exp,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET)?;
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &key,
    )?)
}

async fn demo(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    // The client stack on a plain tonic channel, outermost first: `UNAVAILABLE` retried (up to
    // 3 attempts, with `grpc-previous-rpc-attempts` and the server's pushback), a breaker that
    // reads `grpc-status`, 2.5 s per attempt, and each request's `Deadline` sent as
    // `grpc-timeout` and enforced (an expired one is `DEADLINE_EXCEEDED`).
    let client_stack = ServiceBuilder::new()
        .layer(GrpcRetryLayer::new(
            Backoff::exponential(Duration::from_millis(50))
                .max_attempts(3)
                .build()?,
        ))
        .breaker(Breaker::builder().name("greeter").build()?)
        .attempt_timeout(Duration::from_millis(2500))
        .propagate_deadline(DeadlineHeader::grpc_timeout())
        .service(channel);
    let mut client = GreeterClient::new(client_stack);

    show(
        "with the key",
        &client.say_hello(hello("ada", Some(DEMO_KEY))).await,
    );
    show("without a key", &client.say_hello(hello("ada", None)).await);
    show(
        "with a malformed key",
        &client.say_hello(hello("ada", Some("pal_demo_nope"))).await,
    );
    show(
        "slow call: the server's 2 s timeout",
        &client.say_hello(hello("slow", Some(DEMO_KEY))).await,
    );
    let mut request = hello("slow", Some(DEMO_KEY));
    Deadline::after(Duration::from_millis(300)).insert_earliest(request.extensions_mut());
    show(
        "slow call with a 300 ms deadline",
        &client.say_hello(request).await,
    );
    let mut request = hello("ada", Some(DEMO_KEY));
    request
        .metadata_mut()
        .insert("grpc-timeout", MetadataValue::from_static("soon"));
    show("malformed grpc-timeout", &client.say_hello(request).await);
    let mut request = hello("ada", None);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {}", demo_token()?))?,
    );
    show("with a JWT", &client.say_hello(request).await);
    // The per-address limit: a burst of calls from this client.
    let mut first_refusal = None;
    for _ in 0..10 {
        let result = client.say_hello(hello("ada", Some(DEMO_KEY))).await;
        if result.is_err() {
            first_refusal = Some(result);
            break;
        }
    }
    if let Some(refusal) = first_refusal {
        show("a burst of calls from one address", &refusal);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--serve"), Some(addr)) => {
            let listener = tokio::net::TcpListener::bind(addr.as_str()).await?;
            println!("Greeter on {}; demo key {DEMO_KEY}", listener.local_addr()?);
            serve(listener).await
        }
        (None, None) => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let server = tokio::spawn(async move {
                if let Err(err) = serve(listener).await {
                    eprintln!("server: {err}");
                }
            });
            println!(
                "Greeter on {addr}, behind the client address, a timeout, a per-address limit, \
                 an API key or a JWT, and a scope\n"
            );
            let result = demo(addr).await;
            server.abort();
            result
        }
        _ => Err("usage: grpc [--serve ADDR]".into()),
    }
}
