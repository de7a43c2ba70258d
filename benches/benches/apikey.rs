//! API-key checking per request: the bare service, tower-http's `ValidateRequestHeaderLayer::bearer`
//! (one token, compared with `==`, not constant-time), and Palisade's `ApiKeyLayer` with 1, 100
//! and 10,000 keys. Every variant gets the same request: `Authorization: Bearer <valid key>`.
//!
//! Each iteration builds its request (from a pre-parsed URI and header value, so the copy is
//! cheap) and drops the response: the same work in every variant, so the differences between
//! them are what each layer adds. Building requests outside the timed loop (`iter_batched`)
//! was tried and rejected: freeing thousands of batched requests at once made the allocator's
//! cost depend on batch layout rather than on the layer.

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use palisade::apikey::format::generate;
use palisade::apikey::{ApiKeyLayer, KeyDigest, KeyEntry, KeySet, KeyStore};
use palisade_benches::{always_ready, call_ready};
use tower::Layer;

type Req = Request<()>;
type Res = Response<String>;

fn keys(count: usize, valid: &str) -> KeyStore {
    let mut entries: Vec<KeyEntry> = (1..count)
        .map(|_| KeyEntry::new(KeyDigest::of(&generate("pal_live").unwrap()), "other").unwrap())
        .collect();
    entries.push(
        KeyEntry::new(KeyDigest::of(valid), "billing")
            .unwrap()
            .with_scopes(["orders:read"])
            .unwrap(),
    );
    KeyStore::new(KeySet::from_entries(entries).unwrap())
}

fn apikey(c: &mut Criterion) {
    let key = generate("pal_live").unwrap();
    let uri: http::Uri = "/orders".parse().unwrap();
    let host = http::HeaderValue::from_static("api.example.com");
    let bearer = http::HeaderValue::try_from(format!("Bearer {key}")).unwrap();
    let request = || {
        let mut request = Request::new(());
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(http::header::HOST, host.clone());
        headers.insert(http::header::AUTHORIZATION, bearer.clone());
        request
    };
    let mut group = c.benchmark_group("apikey");

    let mut bare = always_ready::<Req, Res>();
    group.bench_function("bare", |b| {
        b.iter(|| call_ready(&mut bare, request()));
    });

    #[allow(
        deprecated,
        reason = "the peer under comparison; tower-http deprecated it in 0.6.7"
    )]
    let mut tower_http = tower_http::validate_request::ValidateRequestHeaderLayer::bearer(&key)
        .layer(always_ready::<Req, Res>());
    group.bench_function("tower_http::ValidateRequestHeader::bearer", |b| {
        b.iter(|| call_ready(&mut tower_http, request()));
    });

    for count in [1, 100, 10_000] {
        let mut ours = ApiKeyLayer::new(keys(count, &key)).layer(always_ready::<Req, Res>());
        group.bench_function(format!("palisade::ApiKey/{count}-keys"), |b| {
            b.iter(|| call_ready(&mut ours, request()));
        });
    }

    // The parts of our check, to see where the time goes.
    let store = keys(10_000, &key);
    group.bench_function("parts/sha256", |b| {
        b.iter(|| KeyDigest::of(std::hint::black_box(&key)));
    });
    group.bench_function("parts/format-check", |b| {
        let format = palisade::apikey::format::KeyFormat::default();
        b.iter(|| format.check(std::hint::black_box(&key)));
    });
    group.bench_function("parts/insert-identity-into-extensions", |b| {
        let identity = store
            .load()
            .find(&KeyDigest::of(&key))
            .unwrap()
            .identity()
            .clone();
        b.iter(|| {
            let mut request = request();
            request.extensions_mut().insert(identity.clone());
            request
        });
    });
    group.bench_function("parts/build-request", |b| b.iter(request));
    group.bench_function("parts/find-in-10000", |b| {
        let digest = KeyDigest::of(&key);
        let set = store.load();
        b.iter(|| set.find(std::hint::black_box(&digest)).is_some());
    });
    group.finish();

    // The request as it reaches the layer in a real stack: axum's router and `ClientIpLayer`
    // have already put extensions in it, so the map is allocated before the layer inserts the
    // caller's `Identity`; without them, that first allocation is charged to the layer.
    let carried = || {
        let mut request = request();
        request
            .extensions_mut()
            .insert(palisade::ClientIp(std::net::IpAddr::from([203, 0, 113, 7])));
        request
    };
    let mut group = c.benchmark_group("apikey/with-extensions");
    let mut bare = always_ready::<Req, Res>();
    group.bench_function("bare", |b| {
        b.iter(|| call_ready(&mut bare, carried()));
    });
    #[allow(
        deprecated,
        reason = "the peer under comparison; tower-http deprecated it in 0.6.7"
    )]
    let mut tower_http = tower_http::validate_request::ValidateRequestHeaderLayer::bearer(&key)
        .layer(always_ready::<Req, Res>());
    group.bench_function("tower_http::ValidateRequestHeader::bearer", |b| {
        b.iter(|| call_ready(&mut tower_http, carried()));
    });
    for count in [1, 10_000] {
        let mut ours = ApiKeyLayer::new(keys(count, &key)).layer(always_ready::<Req, Res>());
        group.bench_function(format!("palisade::ApiKey/{count}-keys"), |b| {
            b.iter(|| call_ready(&mut ours, carried()));
        });
    }
    group.finish();
}

criterion_group!(benches, apikey);
criterion_main!(benches);
