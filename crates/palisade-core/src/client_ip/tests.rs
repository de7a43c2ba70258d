use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn headers(name: &str, values: &[&str]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for value in values {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

struct Case {
    name: &'static str,
    peer: &'static str,
    values: &'static [&'static str],
    expected: &'static str,
}

fn run(proxies: &TrustedProxies, header: &str, cases: &[Case]) {
    for case in cases {
        let got = proxies.resolve(ip(case.peer), &headers(header, case.values));
        assert_eq!(got, ClientIp(ip(case.expected)), "case `{}`", case.name);
    }
}

fn proxies() -> TrustedProxies {
    TrustedProxies::new(["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"]).unwrap()
}

#[test]
fn x_forwarded_for_table() {
    let cases = [
        Case {
            name: "no proxy trusted for a direct client: header ignored",
            peer: "203.0.113.9",
            values: &["1.1.1.1"],
            expected: "203.0.113.9",
        },
        Case {
            name: "spoofed header from an untrusted peer is ignored",
            peer: "198.51.100.20",
            values: &["10.0.0.1, 1.1.1.1"],
            expected: "198.51.100.20",
        },
        Case {
            name: "trusted peer without header: the peer",
            peer: "10.0.0.2",
            values: &[],
            expected: "10.0.0.2",
        },
        Case {
            name: "one trusted proxy",
            peer: "10.0.0.2",
            values: &["203.0.113.7"],
            expected: "203.0.113.7",
        },
        Case {
            name: "client-written prefix is never reached",
            peer: "10.0.0.2",
            values: &["6.6.6.6, 203.0.113.7"],
            expected: "203.0.113.7",
        },
        Case {
            name: "chain through three trusted proxies",
            peer: "10.0.0.2",
            values: &["6.6.6.6, 203.0.113.7, 192.168.1.1, 10.9.9.9"],
            expected: "203.0.113.7",
        },
        Case {
            name: "chain split over several header lines",
            peer: "10.0.0.2",
            values: &["6.6.6.6, 203.0.113.7", "192.168.1.1", "10.9.9.9"],
            expected: "203.0.113.7",
        },
        Case {
            name: "every hop trusted: the leftmost",
            peer: "10.0.0.2",
            values: &["192.168.4.4, 10.1.1.1"],
            expected: "192.168.4.4",
        },
        Case {
            name: "ports and brackets",
            peer: "10.0.0.2",
            values: &["[2001:db9::5]:443, 10.1.1.1:8080"],
            expected: "2001:db9::5",
        },
        Case {
            name: "bare IPv6 hops through a trusted IPv6 proxy",
            peer: "2001:db8::1",
            values: &["2001:db9::5, 2001:db8::2"],
            expected: "2001:db9::5",
        },
        Case {
            name: "IPv4-mapped peer is matched as IPv4 and reported as IPv4",
            peer: "::ffff:10.0.0.2",
            values: &["::ffff:203.0.113.7"],
            expected: "203.0.113.7",
        },
        Case {
            name: "unknown hop stops at the proxy that wrote it",
            peer: "10.0.0.2",
            values: &["203.0.113.7, unknown, 10.1.1.1"],
            expected: "10.1.1.1",
        },
        Case {
            name: "garbage hop stops at the proxy that wrote it",
            peer: "10.0.0.2",
            values: &["not-an-ip"],
            expected: "10.0.0.2",
        },
        Case {
            name: "empty element stops the walk",
            peer: "10.0.0.2",
            values: &["203.0.113.7,,10.1.1.1"],
            expected: "10.1.1.1",
        },
        Case {
            name: "empty header value",
            peer: "10.0.0.2",
            values: &[""],
            expected: "10.0.0.2",
        },
        Case {
            name: "whitespace around hops",
            peer: "10.0.0.2",
            values: &["  203.0.113.7\t,  10.1.1.1  "],
            expected: "203.0.113.7",
        },
        Case {
            name: "address with a zone is malformed",
            peer: "10.0.0.2",
            values: &["fe80::1%eth0"],
            expected: "10.0.0.2",
        },
        Case {
            name: "trailing comma from a sloppy proxy",
            peer: "10.0.0.2",
            values: &["203.0.113.7,"],
            expected: "10.0.0.2",
        },
    ];
    run(&proxies(), "x-forwarded-for", &cases);
}

#[test]
fn forwarded_table() {
    let proxies = proxies().with_header(ForwardedHeader::Forwarded);
    let cases = [
        Case {
            name: "one trusted proxy",
            peer: "10.0.0.2",
            values: &["for=203.0.113.7;proto=https"],
            expected: "203.0.113.7",
        },
        Case {
            name: "spoofed chain from an untrusted peer",
            peer: "198.51.100.20",
            values: &["for=1.1.1.1"],
            expected: "198.51.100.20",
        },
        Case {
            name: "three trusted proxies, quoted IPv6 with port",
            peer: "10.0.0.2",
            values: &[
                r#"for=6.6.6.6, for="[2001:db9::7]:4711", for=192.168.1.1;by=10.0.0.2, For=10.3.3.3"#,
            ],
            expected: "2001:db9::7",
        },
        Case {
            name: "elements over several header lines",
            peer: "10.0.0.2",
            values: &["for=6.6.6.6, for=203.0.113.7", "for=10.3.3.3"],
            expected: "203.0.113.7",
        },
        Case {
            name: "obfuscated identifier stops at the proxy",
            peer: "10.0.0.2",
            values: &[r#"for="_gazonk", for=10.3.3.3"#],
            expected: "10.3.3.3",
        },
        Case {
            name: "unknown stops at the proxy",
            peer: "10.0.0.2",
            values: &["for=unknown"],
            expected: "10.0.0.2",
        },
        Case {
            name: "unterminated quote from the client does not hide the proxy's hop",
            peer: "10.0.0.2",
            values: &[r#"for="6.6.6.6, for=203.0.113.7"#],
            expected: "203.0.113.7",
        },
        Case {
            name: "a stray client quote does not swallow the proxy's quoted IPv6 hop",
            peer: "10.0.0.2",
            values: &[r#"for="6.6.6.6, for="[2001:db9::c]:4711""#],
            expected: "2001:db9::c",
        },
        Case {
            name: "a stray client quote does not swallow the proxy's quoted ip:port hop",
            peer: "10.0.0.2",
            values: &[r#"for="6.6.6.6, for="203.0.113.7:443""#],
            expected: "203.0.113.7",
        },
        Case {
            name: "a single stray client quote before the proxy's quoted hop (issue 10)",
            peer: "10.0.0.2",
            values: &[r#"", for="203.0.113.7:4711""#],
            expected: "203.0.113.7",
        },
        Case {
            name: "a client's trailing backslash before the proxy's quoted hop",
            peer: "10.0.0.2",
            values: &[r#"for="\\", for="203.0.113.7""#],
            expected: "203.0.113.7",
        },
        Case {
            name: "every element trusted: the leftmost",
            peer: "10.0.0.2",
            values: &["for=192.168.4.4, for=10.1.1.1"],
            expected: "192.168.4.4",
        },
        Case {
            name: "a malformed element right of the client stops at the proxy",
            peer: "10.0.0.2",
            values: &["for=203.0.113.7, for=10.1.1.1 x"],
            expected: "10.0.0.2",
        },
        Case {
            name: "X-Forwarded-For is not read when Forwarded is configured",
            peer: "10.0.0.2",
            values: &[],
            expected: "10.0.0.2",
        },
    ];
    run(&proxies, "forwarded", &cases);

    // The header the proxies do not write is ignored, so a client cannot use it.
    let mut spoof = headers("x-forwarded-for", &["6.6.6.6"]);
    spoof.append(FORWARDED, "for=203.0.113.7".parse().unwrap());
    assert_eq!(
        proxies.resolve(ip("10.0.0.2"), &spoof),
        ClientIp(ip("203.0.113.7"))
    );
}

#[test]
fn a_client_non_ascii_byte_does_not_hide_the_proxy_hop() {
    // Regression: the whole line used to be dropped when any byte was not visible ASCII, so a
    // client could make itself resolve to its proxy's address.
    let mut map = HeaderMap::new();
    map.append(
        X_FORWARDED_FOR.clone(),
        http::HeaderValue::from_bytes(b"\xff, 203.0.113.7").unwrap(),
    );
    assert_eq!(
        proxies().resolve(ip("10.0.0.2"), &map),
        ClientIp(ip("203.0.113.7"))
    );
}

#[test]
fn non_ascii_header_bytes_stop_the_walk() {
    let mut map = HeaderMap::new();
    map.append(
        X_FORWARDED_FOR.clone(),
        http::HeaderValue::from_bytes(b"203.0.113.7, \xff").unwrap(),
    );
    assert_eq!(
        proxies().resolve(ip("10.0.0.2"), &map),
        ClientIp(ip("10.0.0.2"))
    );
}

#[test]
fn no_trusted_proxies_means_the_peer() {
    let map = headers("x-forwarded-for", &["203.0.113.7"]);
    assert_eq!(
        TrustedProxies::none().resolve(ip("10.0.0.2"), &map),
        ClientIp(ip("10.0.0.2"))
    );
}

#[test]
fn invalid_network_is_named_in_the_error() {
    let err = TrustedProxies::new(["10.0.0.0/8", "10.0.0.0/40"]).unwrap_err();
    assert!(err.to_string().contains("10.0.0.0/40"), "{err}");
}

/// Review of issue 17: trusting `0.0.0.0/0` believes every client's own `X-Forwarded-For`.
#[test]
fn networks_wider_than_a_proxy_network_are_refused() {
    for entry in [
        "0.0.0.0/0",
        "128.0.0.0/1",
        "10.0.0.0/7",
        "::/0",
        "2000::/3",
        "2000::/15",
    ] {
        let err = TrustedProxies::new(["10.0.0.0/8", entry]).unwrap_err();
        assert!(err.to_string().contains("too broad"), "{entry}: {err}");
        assert!(err.to_string().contains(entry), "{entry}: {err}");
    }
    for entry in [
        "10.0.0.0/8",
        "2001::/16",
        "::ffff:10.0.0.0/104",
        "192.0.2.7",
        "fc00::/7",
        "fd00::/8",
        "fe80::/10",
    ] {
        TrustedProxies::new([entry]).unwrap();
    }
    for entry in ["fc00::/6", "fe80::/9"] {
        assert!(TrustedProxies::new([entry]).is_err(), "{entry}");
    }
    // The same rule for networks built in code.
    let broad: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(TrustedProxies::from_networks([broad]).is_err());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Bytes a header value may hold, weighted towards the ones that matter to the parsers.
    fn client_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(b"\"\\,;=[]: \tfor_.1".to_vec()),
                2 => 0x20u8..0x7f,
                1 => 0x80u8..=0xff,
            ],
            0..48,
        )
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }

    proptest! {
        /// Whatever a client writes, it cannot move its address past the hop the first trusted
        /// proxy appended.
        #[test]
        fn client_text_never_wins(
            client_text in "[ -~]{0,80}",
            real in any_ip(),
            hops in proptest::collection::vec(0u8..=255, 0..4),
        ) {
            let proxies = proxies();
            prop_assume!(!proxies.is_trusted(real));
            let mut value = format!("{client_text}, {real}");
            for h in &hops {
                value += ", 10.0.";
                value += &h.to_string();
                value += ".1";
            }
            let mut map = HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                map.append(X_FORWARDED_FOR.clone(), v);
                let got = proxies.resolve(ip("10.0.0.2"), &map);
                prop_assert_eq!(got, ClientIp(real.to_canonical()));
            }
        }

        /// Issue 10: whatever bytes a client writes on a line, the hop that a trusted proxy
        /// appends after them (`P, for=X`) is found, in every form a proxy writes it.
        #[test]
        fn a_client_prefix_never_hides_the_proxy_hop(prefix in client_bytes()) {
            for (header, forms) in [
                (ForwardedHeader::XForwardedFor, PROXY_HOPS_XFF),
                (ForwardedHeader::Forwarded, PROXY_HOPS_FORWARDED),
            ] {
                let proxies = proxies().with_header(header);
                let name = match header {
                    ForwardedHeader::XForwardedFor => X_FORWARDED_FOR.clone(),
                    ForwardedHeader::Forwarded => FORWARDED,
                };
                for (hop, expected) in forms {
                    let mut line = prefix.clone();
                    line.extend_from_slice(b", ");
                    line.extend_from_slice(hop.as_bytes());
                    let mut map = HeaderMap::new();
                    map.insert(name.clone(), http::HeaderValue::from_bytes(&line).unwrap());
                    prop_assert_eq!(
                        proxies.resolve(ip("10.0.0.2"), &map),
                        ClientIp(ip(expected)),
                        "{:?} after {:?}", hop, String::from_utf8_lossy(&prefix)
                    );
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut data = vec![0u8];
            data.extend_from_slice(&bytes);
            fuzz_resolve(&data);
            data[0] = 1;
            fuzz_resolve(&data);
        }
    }
}

mod walk_equivalence {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum TestHop {
        Trusted(u8),
        Untrusted(u8),
        Unknown,
    }

    fn hop() -> impl Strategy<Value = TestHop> {
        prop_oneof![
            any::<u8>().prop_map(TestHop::Trusted),
            any::<u8>().prop_map(TestHop::Untrusted),
            Just(TestHop::Unknown),
        ]
    }

    fn addr(hop: &TestHop) -> Option<IpAddr> {
        match hop {
            TestHop::Trusted(n) => Some(IpAddr::from([10, 0, 1, *n])),
            TestHop::Untrusted(n) => Some(IpAddr::from([203, 0, 113, *n])),
            TestHop::Unknown => None,
        }
    }

    /// The specification, written the obvious way: walk right to left from the peer.
    fn reference(peer: IpAddr, hops: &[TestHop]) -> IpAddr {
        let mut current = peer;
        for hop in hops.iter().rev() {
            match addr(hop) {
                Some(a) => {
                    current = a;
                    if !matches!(hop, TestHop::Trusted(_)) {
                        break;
                    }
                }
                None => break,
            }
        }
        current
    }

    proptest! {
        #[test]
        fn both_headers_match_the_right_to_left_walk(
            hops in proptest::collection::vec(hop(), 0..8),
            split in any::<proptest::sample::Index>(),
        ) {
            let peer = ip("10.0.0.2");
            let expected = ClientIp(reference(peer, &hops));
            let text: Vec<String> = hops
                .iter()
                .map(|h| addr(h).map_or_else(|| "unknown".to_owned(), |a| a.to_string()))
                .collect();
            // Split the chain over two header lines at a random point.
            let at = if text.is_empty() { 0 } else { split.index(text.len() + 1) };
            let lines = [&text[..at], &text[at..]];

            let mut xff = HeaderMap::new();
            let mut fwd = HeaderMap::new();
            for line in lines.iter().filter(|l| !l.is_empty()) {
                xff.append(X_FORWARDED_FOR.clone(), line.join(", ").parse().unwrap());
                let elements: Vec<String> = line.iter().map(|t| format!("for=\"{t}\"")).collect();
                fwd.append(FORWARDED, elements.join(", ").parse().unwrap());
            }
            prop_assert_eq!(proxies().resolve(peer, &xff), expected);
            prop_assert_eq!(
                proxies().with_header(ForwardedHeader::Forwarded).resolve(peer, &fwd),
                expected
            );
        }
    }
}
