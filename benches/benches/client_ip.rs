//! Client address resolution: Palisade's trusted-proxy walk beside `client-ip` (the extractor
//! behind `axum-client-ip`), which reads only the rightmost hop and trusts no chain.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use palisade::{ForwardedHeader, TrustedProxies};

fn headers(name: &'static str, value: &str) -> HeaderMap {
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

    // Adversarial lines of 64 KiB (issue 10). The client's quote- and escape-heavy text, then
    // the hop the trusted proxy appended on the same line.
    let quotes = "\"\\".repeat(32 * 1024);
    let fwd_64k_prefix = headers("forwarded", &format!("{quotes}, for=203.0.113.7"));
    // A 64 KiB quoted string left of a trusted hop, so the walk must read all of it.
    let escaped = "\\\"".repeat(32 * 1024);
    let fwd_64k_quoted = headers("forwarded", &format!("for=\"{escaped}\", for=192.168.1.1"));
    // 64 KiB of trusted hops: the longest walk a line can ask for.
    let fwd_64k_trusted = headers("forwarded", &vec!["for=10.1.1.1"; 4681].join(", "));
    let xff_64k_trusted = headers("x-forwarded-for", &vec!["10.1.1.1"; 6553].join(", "));

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
    group.bench_function("palisade/forwarded/64KiB-quotes-before-hop", |b| {
        b.iter(|| black_box(forwarded.resolve(black_box(peer), black_box(&fwd_64k_prefix))));
    });
    group.bench_function("palisade/forwarded/64KiB-quoted-element", |b| {
        b.iter(|| black_box(forwarded.resolve(black_box(peer), black_box(&fwd_64k_quoted))));
    });
    group.bench_function("palisade/forwarded/64KiB-trusted-elements", |b| {
        b.iter(|| black_box(forwarded.resolve(black_box(peer), black_box(&fwd_64k_trusted))));
    });
    group.bench_function("palisade/x-forwarded-for/64KiB-trusted-hops", |b| {
        b.iter(|| black_box(proxies.resolve(black_box(peer), black_box(&xff_64k_trusted))));
    });
    group.bench_function("palisade/untrusted-peer", |b| {
        b.iter(|| black_box(proxies.resolve(black_box(direct), black_box(&xff_3))));
    });
    group.finish();
}

criterion_group!(benches, client_ip);
criterion_main!(benches);
