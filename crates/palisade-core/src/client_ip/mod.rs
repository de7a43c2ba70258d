//! The client address, resolved from the peer and, through trusted proxies only, from
//! forwarding headers.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod cidr;
mod node;

mod layer;
pub use layer::{ClientIpLayer, ClientIpService, default_peer};

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName};

pub use cidr::{Cidr, InvalidCidr, MIN_TRUSTED_PREFIX_V4, MIN_TRUSTED_PREFIX_V6};
use node::{Hop, forwarded_hops_rev, parse_xff_node};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The address of the client that sent a request, as resolved by [`TrustedProxies::resolve`].
///
/// IPv4-mapped IPv6 addresses are reported as IPv4, so one client has one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The address.
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

impl std::fmt::Display for ClientIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Which header the trusted proxies write the forwarding chain into.
///
/// Choose the one your proxies set. Reading both would let a client send the one your proxies
/// do not touch and pick its own address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, `HAProxy`, most cloud load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239; Envoy and some CDNs).
    Forwarded,
}

/// The proxies whose forwarding headers are believed, and the header they write.
///
/// [`resolve`](Self::resolve) starts from the connection's peer address. While the address in
/// hand belongs to a trusted proxy, it takes the next hop from the forwarding header, walking
/// right to left; it stops at the first address that is not a trusted proxy, and that is the
/// client. So a client can write anything into the header: the walk never reaches its text
/// before it reaches the address the first trusted proxy saw.
///
/// If a trusted proxy forwarded a hop that is `unknown`, obfuscated or malformed, the walk stops
/// and the client is that proxy's address: the best that is known, and never a value the client
/// chose. If every hop is a trusted proxy, the leftmost one is the client.
///
/// With no trusted proxies (the [`Default`]) the client is always the peer and headers are
/// ignored.
///
/// ```
/// use std::net::IpAddr;
/// use http::HeaderMap;
/// use palisade::{ClientIp, TrustedProxies};
///
/// let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
/// let mut headers = HeaderMap::new();
/// // The client claims to be 1.1.1.1; the load balancer appended what it saw.
/// headers.insert("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.5".parse().unwrap());
///
/// let peer: IpAddr = "10.0.0.2".parse().unwrap();
/// assert_eq!(proxies.resolve(peer, &headers), ClientIp("203.0.113.7".parse().unwrap()));
///
/// // A peer that is not a trusted proxy is the client, whatever its headers say.
/// let direct: IpAddr = "198.51.100.4".parse().unwrap();
/// assert_eq!(proxies.resolve(direct, &headers), ClientIp(direct));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Cidr>,
    /// The same networks as flat `(network, mask)` lists: one comparison per network and no
    /// enum match per hop.
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Trusts no proxy: the client is always the peer.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts the given addresses and CIDR networks (`"10.0.0.0/8"`, `"2001:db8::/32"`,
    /// `"192.0.2.7"`), reading `X-Forwarded-For`.
    ///
    /// # Errors
    ///
    /// [`InvalidCidr`], naming the first entry that is not an address or a network, or is
    /// wider than /8 (IPv4) or /16 (IPv6): trusting `0.0.0.0/0` would believe every client's
    /// own `X-Forwarded-For`.
    pub fn new<I, S>(networks: I) -> Result<Self, InvalidCidr>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let networks = networks
            .into_iter()
            .map(|s| {
                let cidr: Cidr = s.as_ref().parse()?;
                if cidr.is_too_broad() {
                    return Err(InvalidCidr::too_broad(s.as_ref()));
                }
                Ok(cidr)
            })
            .collect::<Result<Vec<Cidr>, _>>()?;
        Self::from_networks(networks)
    }

    /// Trusts the given networks, reading `X-Forwarded-For`.
    ///
    /// # Errors
    ///
    /// [`InvalidCidr`] for the first network wider than [`new`](Self::new) accepts.
    pub fn from_networks(networks: impl IntoIterator<Item = Cidr>) -> Result<Self, InvalidCidr> {
        let networks: Vec<Cidr> = networks.into_iter().collect();
        if let Some(broad) = networks.iter().find(|cidr| cidr.is_too_broad()) {
            return Err(InvalidCidr::too_broad(&broad.to_string()));
        }
        Ok(Self {
            v4: networks.iter().filter_map(Cidr::v4_parts).collect(),
            v6: networks.iter().filter_map(Cidr::v6_parts).collect(),
            networks,
            header: ForwardedHeader::default(),
        })
    }

    /// Sets the header the trusted proxies write.
    #[must_use]
    pub fn with_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// The header that is read.
    pub fn header(&self) -> ForwardedHeader {
        self.header
    }

    /// The trusted networks.
    pub fn networks(&self) -> &[Cidr] {
        &self.networks
    }

    /// Whether `addr` is a trusted proxy.
    #[inline]
    pub fn is_trusted(&self, addr: IpAddr) -> bool {
        match addr.to_canonical() {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                self.v4
                    .iter()
                    .any(|&(network, mask)| bits & mask == network)
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                self.v6
                    .iter()
                    .any(|&(network, mask)| bits & mask == network)
            }
        }
    }

    /// Resolves the client address of a request that arrived from `peer` with `headers`.
    ///
    /// See the [type documentation](Self) for the walk. Never fails and never panics: malformed
    /// headers end the walk at the last address that is known.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> ClientIp {
        let mut current = peer.to_canonical();
        if !self.is_trusted(current) {
            return ClientIp(current);
        }
        let mut step = |hop: Hop| match hop {
            Some(addr) => {
                current = addr.to_canonical();
                self.is_trusted(current)
            }
            None => false,
        };
        // Both headers are walked right to left, line by line from the last, and parsed only
        // as far as the walk goes: the client's own text is never read before the hops the
        // trusted proxies appended, so it cannot change how they parse, and the cost is linear
        // in what is read.
        match self.header {
            ForwardedHeader::XForwardedFor => {
                // Bytes, not `to_str`: a client's non-ASCII byte on the left of a line must not
                // discard the hop a proxy appended on its right. A bad node ends the walk there.
                'lines: for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
                    for node in value.as_bytes().rsplit(|b| *b == b',') {
                        if !step(parse_xff_node(node)) {
                            break 'lines;
                        }
                    }
                }
            }
            ForwardedHeader::Forwarded => {
                for value in headers.get_all(FORWARDED).iter().rev() {
                    if !forwarded_hops_rev(value.as_bytes(), &mut step) {
                        break;
                    }
                }
            }
        }
        ClientIp(current)
    }
}

/// Fuzz harness: resolves arbitrary header bytes and checks the invariants that keep a client
/// from choosing its own address.
#[doc(hidden)]
pub fn fuzz_resolve(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let header = if selector & 1 == 0 {
        ForwardedHeader::XForwardedFor
    } else {
        ForwardedHeader::Forwarded
    };
    let name = match header {
        ForwardedHeader::XForwardedFor => X_FORWARDED_FOR.clone(),
        ForwardedHeader::Forwarded => FORWARDED,
    };
    let proxies = TrustedProxies::new(["10.0.0.0/8", "2001:db8::/32"])
        .expect("static networks parse")
        .with_header(header);
    let mut headers = HeaderMap::new();
    for line in rest.split(|b| *b == b'\n') {
        if let Ok(value) = http::HeaderValue::from_bytes(line) {
            headers.append(name.clone(), value);
        }
    }
    for line in rest.split(|b| *b == b'\n') {
        if let Ok(text) = std::str::from_utf8(line) {
            assert_eq!(
                node::parse_ipv4(line),
                text.parse::<std::net::Ipv4Addr>().ok(),
                "the IPv4 fast path disagrees with std on {text:?}"
            );
        }
    }
    let untrusted: IpAddr = [198, 51, 100, 1].into();
    assert_eq!(proxies.resolve(untrusted, &headers), ClientIp(untrusted));

    let peer: IpAddr = [10, 0, 0, 1].into();
    let resolved = proxies.resolve(peer, &headers);
    assert_eq!(
        resolved,
        proxies.resolve(peer, &headers),
        "resolution is deterministic"
    );
    if headers.is_empty() {
        assert_eq!(resolved, ClientIp(peer));
    }
    assert!(!resolved.0.to_canonical().is_ipv6() || resolved.0.to_canonical() == resolved.0);

    // Whatever the client wrote (the first line, as a prefix), the hop a trusted proxy appends
    // after it on the same line is found.
    let prefix = rest.split(|b| *b == b'\n').next().unwrap_or_default();
    let hops = match header {
        ForwardedHeader::XForwardedFor => PROXY_HOPS_XFF,
        ForwardedHeader::Forwarded => PROXY_HOPS_FORWARDED,
    };
    for (hop, expected) in hops {
        let mut line = prefix.to_vec();
        line.extend_from_slice(b", ");
        line.extend_from_slice(hop.as_bytes());
        let Ok(value) = http::HeaderValue::from_bytes(&line) else {
            return;
        };
        let mut headers = HeaderMap::new();
        headers.insert(name.clone(), value);
        let expected: IpAddr = expected.parse().expect("static address");
        assert_eq!(
            proxies.resolve(peer, &headers),
            ClientIp(expected),
            "the proxy's hop {hop:?} after a client prefix"
        );
    }
}

/// `X-Forwarded-For` hops a trusted proxy appends, with the address each names: plain, with a
/// port, quoted, IPv6 bare and bracketed.
pub(crate) const PROXY_HOPS_XFF: &[(&str, &str)] = &[
    ("203.0.113.7", "203.0.113.7"),
    ("203.0.113.7:4711", "203.0.113.7"),
    ("\"203.0.113.7\"", "203.0.113.7"),
    ("2a00:1450::7", "2a00:1450::7"),
    ("[2a00:1450::7]", "2a00:1450::7"),
    ("[2a00:1450::7]:4711", "2a00:1450::7"),
];

/// `Forwarded` elements a trusted proxy appends, with the address each names: unquoted, quoted,
/// quoted with a port, bracketed, with other parameters and with escapes.
pub(crate) const PROXY_HOPS_FORWARDED: &[(&str, &str)] = &[
    ("for=203.0.113.7", "203.0.113.7"),
    ("for=\"203.0.113.7\"", "203.0.113.7"),
    ("for=\"203.0.113.7:4711\"", "203.0.113.7"),
    ("for=\"[2a00:1450::7]:4711\";proto=https", "2a00:1450::7"),
    ("for=[2a00:1450::7]", "2a00:1450::7"),
    ("proto=https;For=\"\\[2a00:1450::7\\]\"", "2a00:1450::7"),
    ("by=\"a,b\";for=203.0.113.7", "203.0.113.7"),
];

#[cfg(test)]
mod tests;

/// From a configuration file (feature `serde`): a list of addresses and networks
/// (`["10.0.0.0/8", "192.0.2.7"]`) or one comma-separated string (`"10.0.0.0/8, 192.0.2.7"`;
/// an empty one trusts no proxy), read through `X-Forwarded-For`. An entry that is not an
/// address or a network is an error naming it.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Networks {
            List(Vec<String>),
            Text(String),
        }
        let entries: Vec<String> = match Networks::deserialize(deserializer)? {
            Networks::List(list) => list,
            Networks::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        Self::new(entries).map_err(serde::de::Error::custom)
    }
}
