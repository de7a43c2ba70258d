//! gRPC with Palisade: a tonic Greeter behind Palisade's layers, called by a tonic client that
//! propagates its deadline.
//!
//! ```text
//! cargo run --example grpc                          # serve on 127.0.0.1:0, make the calls below, exit
//! cargo run --example grpc -- --serve 127.0.0.1:50051   # only serve, until Ctrl-C
//! ```
//!
//! Every rejection reaches the tonic client as a gRPC status it understands: no key is
//! `UNAUTHENTICATED`, a missing scope `PERMISSION_DENIED`, a late call `DEADLINE_EXCEEDED`,
//! a malformed `grpc-timeout` `INVALID_ARGUMENT`. The stubs come from
//! `crates/palisade-test-support/proto/helloworld.proto`, generated once and checked in, so no
//! `protoc` is needed.

use std::net::SocketAddr;
use std::time::Duration;

use palisade::Deadline;
use palisade::apikey::{ApiKeyLayer, KeySet, KeyStore};
use palisade::require_scopes;
use palisade::timeout::{DeadlineHeader, HttpTimeoutLayer, PropagateDeadlineLayer};
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

/// Serves the Greeter on `listener` behind: a 2 s timeout that honours a shorter
/// `grpc-timeout`, API keys, and the scope `greeter:call`.
async fn serve(listener: tokio::net::TcpListener) -> Result<(), Box<dyn std::error::Error>> {
    let keys = KeyStore::new(KeySet::parse(DEMO_KEYS)?);
    let timeout = HttpTimeoutLayer::builder(Duration::from_secs(2))
        .inbound_deadline(DeadlineHeader::grpc_timeout(), Duration::from_secs(2))
        .build()?;
    tonic::transport::Server::builder()
        .layer(
            ServiceBuilder::new()
                .layer(timeout)
                .layer(ApiKeyLayer::new(keys))
                .layer(require_scopes(["greeter:call"])),
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

async fn demo(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    // The client propagates each request's `Deadline` as `grpc-timeout` and enforces it; an
    // expired deadline is DEADLINE_EXCEEDED (feature `tonic`).
    let client_stack = ServiceBuilder::new()
        .layer(PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()))
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
            println!("Greeter on {addr}, behind a timeout, API keys and a scope\n");
            let result = demo(addr).await;
            server.abort();
            result
        }
        _ => Err("usage: grpc [--serve ADDR]".into()),
    }
}
