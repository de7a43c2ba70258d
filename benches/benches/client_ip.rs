//! Client address resolution: Palisade's trusted-proxy walk beside `client-ip` (the extractor
//! behind `axum-client-ip`), which reads only the rightmost hop and trusts no chain.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use palisade::{ForwardedHeader, TrustedProxies};

fn headers(name: &'static str, value: &'static str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(name, value.parse().unwrap());
    // A realistic request has other headers too.
    map.insert("host", "api.example.com".parse().unwrap());
    map.insert("user-agent", "curl/8.5.0".parse().unwrap());
    map.insert("accept", "*/*".parse().unwrap());
    map
}

fn client_ip(c: &mut Criterion) {
    let proxies = TrustedProxies::new(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]).unwrap();
    let forwarded = proxies.clone().with_header(ForwardedHeader::Forwarded);
    let peer: IpAddr = "10.0.0.2".parse().unwrap();
    let direct: IpAddr = "198.51.100.7".parse().unwrap();

    // Client 203.0.113.7, then three trusted proxies (the last one is the peer).
    let xff_3 = headers(
        "x-forwarded-for",
        "6.6.6.6, 203.0.113.7, 192.168.1.1, 172.16.5.5",
    );
    let fwd_3 = headers(
        "forwarded",
        "for=6.6.6.6, for=203.0.113.7, for=192.168.1.1, for=172.16.5.5",
    );
    let xff_1 = headers("x-forwarded-for", "6.6.6.6, 203.0.113.7");

    let mut group = c.benchmark_group("client_ip");
    group.bench_function("palisade/x-forwarded-for/3-hop", |b| {
        b.iter(|| black_box(proxies.resolve(black_box(peer), black_box(&xff_3))));
    });
    group.bench_function("palisade/forwarded/3-hop", |b| {
        b.iter(|| black_box(forwarded.resolve(black_box(peer), black_box(&fwd_3))));
    });
    group.bench_function("palisade/x-forwarded-for/1-hop", |b| {
        b.iter(|| black_box(proxies.resolve(black_box(peer), black_box(&xff_1))));
    });
    group.bench_function("client-ip/rightmost-x-forwarded-for", |b| {
        b.iter(|| black_box(client_ip::rightmost_x_forwarded_for(black_box(&xff_1))));
    });
    group.bench_function("palisade/untrusted-peer", |b| {
        b.iter(|| black_box(proxies.resolve(black_box(direct), black_box(&xff_3))));
    });
    group.finish();
}

criterion_group!(benches, client_ip);
criterion_main!(benches);
