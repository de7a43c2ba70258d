//! A real gRPC service for tests: gRPC's Greeter (`proto/helloworld.proto`), served by tonic on
//! `127.0.0.1:0`.
//!
//! The stubs in `helloworld.rs` were generated from the proto by `tonic-prost-build` 0.14 with
//! `protox` (no `protoc`), and are checked in so that no build needs a protobuf compiler; to
//! regenerate them after changing the proto, see `proto/README.md`.
//!
//! [`TestGreeter`] answers `SayHello` with `hello, <name>`. A name of `sleep:<ms>` makes it wait
//! that long first, and `fail:<code>` makes it fail with that gRPC code. `SayHelloStream` sends
//! `count` replies, then ends with the status a `fail:<code>` name asks for (in the trailers),
//! or `OK`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio_stream::Stream;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Request, Response, Status};

/// The generated Greeter stubs.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::pedantic,
    rust_2018_idioms
)]
pub mod hello {
    include!("helloworld.rs");
}

use hello::greeter_server::{Greeter, GreeterServer};
use hello::{HelloReply, HelloRequest};

/// The test Greeter; see the [module documentation](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct TestGreeter;

/// What a request's name asks the Greeter to do.
fn behaviour(name: &str) -> Result<Option<Duration>, Status> {
    if let Some(ms) = name.strip_prefix("sleep:") {
        let ms = ms
            .parse()
            .map_err(|_| Status::invalid_argument("sleep:<ms>"))?;
        return Ok(Some(Duration::from_millis(ms)));
    }
    if let Some(code) = name.strip_prefix("fail:") {
        let code: i32 = code
            .parse()
            .map_err(|_| Status::invalid_argument("fail:<code>"))?;
        return Err(Status::new(Code::from_i32(code), "the test asked for it"));
    }
    Ok(None)
}

#[tonic::async_trait]
impl Greeter for TestGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        if let Some(delay) = behaviour(&name)? {
            tokio::time::sleep(delay).await;
        }
        Ok(Response::new(HelloReply {
            message: format!("hello, {name}"),
        }))
    }

    type SayHelloStreamStream =
        Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send + 'static>>;

    async fn say_hello_stream(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<Self::SayHelloStreamStream>, Status> {
        let HelloRequest { name, count } = request.into_inner();
        let end = behaviour(&name).err();
        let replies = (0..count).map(move |i| {
            Ok(HelloReply {
                message: format!("hello #{i}, {name}"),
            })
        });
        let stream = tokio_stream::iter(replies.chain(end.map(Err)));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// The Greeter as a tonic service, to add to a `tonic::transport::Server`.
pub fn greeter() -> GreeterServer<TestGreeter> {
    GreeterServer::new(TestGreeter)
}

/// A listener on `127.0.0.1:0` for `Server::serve_with_incoming`, and its address.
///
/// # Panics
///
/// If no loopback port can be bound.
pub async fn listener() -> (TcpListenerStream, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    (TcpListenerStream::new(listener), addr)
}

/// Serves the Greeter, with no layers, on a fresh loopback port until the runtime ends.
pub async fn serve_greeter() -> SocketAddr {
    serve_greeter_behind(tower_layer::Identity::new()).await
}

/// Serves the Greeter behind `layer` (the layer under test, or a stack of them) on a fresh
/// loopback port until the runtime ends.
pub async fn serve_greeter_behind<L, ResBody>(layer: L) -> SocketAddr
where
    L: tower_layer::Layer<tonic::service::Routes> + Clone + Send + Sync + 'static,
    L::Service: tower_service::Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    <L::Service as tower_service::Service<http::Request<tonic::body::Body>>>::Future: Send,
    <L::Service as tower_service::Service<http::Request<tonic::body::Body>>>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (incoming, addr) = listener().await;
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(greeter())
            .serve_with_incoming(incoming),
    );
    addr
}

/// A tonic channel to `addr`, connected.
///
/// # Panics
///
/// If the connection fails.
pub async fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("a loopback URL")
        .connect()
        .await
        .expect("connect to the test gRPC server")
}

/// A gRPC request frame (uncompressed) holding `message`, for tests that speak gRPC over a
/// plain HTTP/2 client.
///
/// # Panics
///
/// If the message is 4 GiB or more.
pub fn frame(message: &impl prost::Message) -> bytes::Bytes {
    let body = message.encode_to_vec();
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(
        &u32::try_from(body.len())
            .expect("a small message")
            .to_be_bytes(),
    );
    out.extend_from_slice(&body);
    out.into()
}
