//! What a limit is keyed by.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use foldhash::fast::RandomState;
use std::sync::Arc;

use http::{HeaderName, Method, Request};
use palisade_core::{ClientIp, Identity};

/// A request's parts a custom key reads.
#[derive(Debug)]
pub struct RequestView<'r> {
    /// The method.
    pub method: &'r Method,
    /// The URI.
    pub uri: &'r http::Uri,
    /// The headers.
    pub headers: &'r http::HeaderMap,
    /// The extensions (the `ClientIp`, the `Identity`, ...).
    pub extensions: &'r http::Extensions,
}

type Custom = Arc<dyn Fn(&RequestView<'_>) -> Option<String> + Send + Sync>;

#[derive(Clone)]
enum Part {
    Global,
    /// The client's network: the address's first `v4` bits (IPv4) or `v6` bits (IPv6).
    ClientIp {
        v4: u8,
        v6: u8,
    },
    Identity,
    Header(HeaderName),
    Route,
    Method,
    Custom(Custom),
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Global => f.write_str("Global"),
            Self::ClientIp { v4, v6 } => write!(f, "ClientIp(/{v4}, /{v6})"),
            Self::Identity => f.write_str("Identity"),
            Self::Header(name) => write!(f, "Header({name})"),
            Self::Route => f.write_str("Route"),
            Self::Method => f.write_str("Method"),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// A limit's key: one of these parts, or a tuple of them ([`KeyBy::and`]). A request whose key
/// cannot be formed (no `ClientIp` because `ClientIpLayer` found no peer, no `Identity` before
/// authentication, no such header) is handled as the tier's [`Keyless`](crate::Keyless) says:
/// by default such requests share one bucket of the tier.
///
/// ```
/// use palisade::ratelimit::KeyBy;
///
/// let per_ip = KeyBy::client_ip();
/// let per_user_and_route = KeyBy::identity().and(KeyBy::route());
/// # let _ = (per_ip, per_user_and_route);
/// ```
#[derive(Clone, Debug)]
pub struct KeyBy {
    parts: Vec<Part>,
}

impl KeyBy {
    fn one(part: Part) -> Self {
        Self { parts: vec![part] }
    }

    /// One bucket for everyone.
    pub fn global() -> Self {
        Self::one(Part::Global)
    }

    /// The client's network, from the address resolved through trusted proxies: the
    /// `ClientIp` that `ClientIpLayer` puts in the request's extensions (install it outside).
    ///
    /// An IPv4 client is keyed by its address (`/32`), an IPv6 client by its `/64`: one
    /// subscriber, host or cloud instance is routinely given a whole `/64`, and keying the
    /// 128-bit address would hand it 2^64 buckets to rotate through. IPv4-mapped IPv6
    /// addresses count as IPv4. [`client_network`](Self::client_network) sets other prefixes.
    pub fn client_ip() -> Self {
        Self::client_network(32, 64)
    }

    /// The client's network, by prefix length: the first `v4_prefix` bits of an IPv4 address
    /// (1 to 32) and the first `v6_prefix` bits of an IPv6 address (1 to 128), e.g. `(24, 48)`
    /// to count a whole site as one client. Prefixes out of range are refused when the layer
    /// is built.
    pub fn client_network(v4_prefix: u8, v6_prefix: u8) -> Self {
        Self::one(Part::ClientIp {
            v4: v4_prefix,
            v6: v6_prefix,
        })
    }

    /// The authenticated caller (the `Identity` an auth layer put in): its subject, the source
    /// of the credential (API key, JWT) and, for tokens, the issuer. The API key whose
    /// principal is `demo` and a JWT whose `sub` is `demo` are counted apart.
    pub fn identity() -> Self {
        Self::one(Part::Identity)
    }

    /// The value of `header`.
    pub fn header(header: HeaderName) -> Self {
        Self::one(Part::Header(header))
    }

    /// The matched route's template (axum's `MatchedPath`, feature `axum`), else the path.
    pub fn route() -> Self {
        Self::one(Part::Route)
    }

    /// The method.
    pub fn method() -> Self {
        Self::one(Part::Method)
    }

    /// Whatever `f` answers (`None`: not counted).
    pub fn custom(f: impl Fn(&RequestView<'_>) -> Option<String> + Send + Sync + 'static) -> Self {
        Self::one(Part::Custom(Arc::new(f)))
    }

    /// This key and `other` together (a tuple).
    #[must_use]
    pub fn and(mut self, other: Self) -> Self {
        self.parts.extend(other.parts);
        self
    }

    /// Checks the parts' settings (the prefix lengths).
    pub(crate) fn check(&self) -> Result<(), palisade_core::BuildError> {
        for part in &self.parts {
            if let Part::ClientIp { v4, v6 } = part
                && (!(1..=32).contains(v4) || !(1..=128).contains(v6))
            {
                return Err(palisade_core::BuildError::new(
                    "key",
                    "a client network's prefix is 1 to 32 bits for IPv4, 1 to 128 for IPv6",
                ));
            }
        }
        Ok(())
    }

    /// The request's key, hashed with `seed` (random per layer: no client can aim at a
    /// bucket without knowing it).
    #[inline]
    pub(crate) fn hash<B>(&self, seed: &RandomState, request: &Request<B>) -> Option<u64> {
        let mut hasher = seed.build_hasher();
        self.write(&mut hasher, request)?;
        Some(hasher.finish())
    }

    /// The request's key as a name shared by every instance: the first 128 bits of the
    /// SHA-256 of its parts, in hex (no client text in a Redis key, and no crafted collision).
    #[cfg(feature = "redis")]
    pub(crate) fn shared_name<B>(&self, request: &Request<B>) -> Option<String> {
        use sha2::Digest;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hasher = Sha256Hasher(sha2::Sha256::new());
        self.write(&mut hasher, request)?;
        let digest = hasher.0.finalize();
        let mut name = String::with_capacity(32);
        for byte in &digest[..16] {
            name.push(char::from(HEX[usize::from(byte >> 4)]));
            name.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
        Some(name)
    }

    #[inline]
    fn write<B>(&self, hasher: &mut impl Hasher, request: &Request<B>) -> Option<()> {
        for part in &self.parts {
            match part {
                Part::Global => hasher.write_u8(0),
                Part::ClientIp { v4, v6 } => {
                    match request.extensions().get::<ClientIp>()?.ip().to_canonical() {
                        // Tag 1 and an IPv4 network in one word (tag in the top byte); tag 7
                        // and an IPv6 network. Every part starts with its own tag and is
                        // either of fixed length or ends in 0xFF, which no value holds before
                        // a tag byte.
                        std::net::IpAddr::V4(addr) => {
                            let bits = addr.to_bits() & mask_v4(*v4);
                            hasher.write_u64((1 << 56) | u64::from(bits));
                        }
                        std::net::IpAddr::V6(addr) => {
                            let bits = addr.to_bits() & mask_v6(*v6);
                            hasher.write_u8(7);
                            hasher.write_u128(bits);
                        }
                    }
                }
                Part::Identity => {
                    // The caller is its subject together with where it came from: an API
                    // key's principal `demo` and a JWT's `sub: demo` are two callers, and so
                    // are two issuers' `sub: demo`.
                    let identity = request.extensions().get::<Identity>()?;
                    hasher.write_u8(2);
                    hasher.write(identity.source().label().as_bytes());
                    hasher.write_u8(0xFF);
                    hasher.write(identity.issuer().unwrap_or_default().as_bytes());
                    hasher.write_u8(0xFF);
                    hasher.write(identity.subject().as_bytes());
                    hasher.write_u8(0xFF);
                }
                Part::Header(name) => {
                    let value = request.headers().get(name)?;
                    hasher.write_u8(3);
                    hasher.write(value.as_bytes());
                    hasher.write_u8(0xFF);
                }
                Part::Route => {
                    hasher.write_u8(4);
                    hasher.write(route(request).as_bytes());
                    hasher.write_u8(0xFF);
                }
                Part::Method => {
                    hasher.write_u8(5);
                    hasher.write(request.method().as_str().as_bytes());
                    hasher.write_u8(0xFF);
                }
                Part::Custom(f) => {
                    let view = RequestView {
                        method: request.method(),
                        uri: request.uri(),
                        headers: request.headers(),
                        extensions: request.extensions(),
                    };
                    let value = f(&view)?;
                    hasher.write_u8(6);
                    hasher.write(value.as_bytes());
                    hasher.write_u8(0xFF);
                }
            }
        }
        Some(())
    }
}

/// The network mask of an IPv4 prefix (`check` keeps it within 1 to 32 before a layer is
/// built; outside, 0 masks everything and past 32 nothing).
fn mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32u32.saturating_sub(u32::from(prefix)))
        .unwrap_or(0)
}

/// The network mask of an IPv6 prefix (as [`mask_v4`], within 1 to 128).
fn mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128u32.saturating_sub(u32::from(prefix)))
        .unwrap_or(0)
}

/// Feeds a SHA-256 through the `Hasher` interface.
#[cfg(feature = "redis")]
struct Sha256Hasher(sha2::Sha256);

#[cfg(feature = "redis")]
impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.0, bytes);
    }

    // Big-endian, whatever the host: every instance of a fleet names a key alike.
    fn write_u64(&mut self, value: u64) {
        self.write(&value.to_be_bytes());
    }

    fn write_u128(&mut self, value: u128) {
        self.write(&value.to_be_bytes());
    }
}

/// The route of a request: axum's matched template when known, else the path.
pub(crate) fn route<B>(request: &Request<B>) -> &str {
    #[cfg(feature = "axum")]
    if let Some(matched) = request.extensions().get::<axum::extract::MatchedPath>() {
        return matched.as_str();
    }
    request.uri().path()
}

#[cfg(test)]
mod tests {
    use palisade_core::IdentitySource;

    use super::*;

    fn with<T: Clone + Send + Sync + 'static>(value: T) -> Request<()> {
        let mut request = Request::new(());
        request.extensions_mut().insert(value);
        request
    }

    /// Issue 16, item 5: identity keys hashed the subject alone, so the API key of principal
    /// `demo` and a JWT with `sub: demo` shared one bucket.
    #[test]
    fn identity_keys_tell_sources_and_issuers_apart() {
        let seed = RandomState::default();
        let key = KeyBy::identity();
        let hash = |identity: Identity| key.hash(&seed, &with(identity)).unwrap();
        let api_key = hash(Identity::new("demo", IdentitySource::ApiKey));
        let jwt_a = hash(Identity::new("demo", IdentitySource::Jwt).with_issuer("https://a"));
        let jwt_b = hash(Identity::new("demo", IdentitySource::Jwt).with_issuer("https://b"));
        assert_ne!(api_key, jwt_a);
        assert_ne!(jwt_a, jwt_b);
        // Scopes and the credential's id do not make another caller.
        assert_eq!(
            jwt_a,
            hash(
                Identity::new("demo", IdentitySource::Jwt)
                    .with_issuer("https://a")
                    .with_scopes(["x"])
                    .with_key_id("k2")
            )
        );
    }

    /// Issue 16, item 2: addresses are keyed by their network.
    #[test]
    fn addresses_are_keyed_by_their_network() {
        let seed = RandomState::default();
        let hash = |key: &KeyBy, ip: &str| {
            key.hash(&seed, &with(ClientIp(ip.parse().unwrap())))
                .unwrap()
        };
        let key = KeyBy::client_ip();
        assert_eq!(
            hash(&key, "2001:db8::1"),
            hash(&key, "2001:db8::ffff:1:2:3")
        );
        assert_ne!(hash(&key, "2001:db8::1"), hash(&key, "2001:db8:0:1::1"));
        assert_ne!(hash(&key, "192.0.2.1"), hash(&key, "192.0.2.2"));
        // IPv4-mapped IPv6 is the IPv4 address, not a member of `::ffff:0:0/64`.
        assert_eq!(hash(&key, "::ffff:192.0.2.1"), hash(&key, "192.0.2.1"));
        assert_ne!(
            hash(&key, "::ffff:192.0.2.1"),
            hash(&key, "::ffff:192.0.2.2")
        );
        let wide = KeyBy::client_network(16, 32);
        assert_eq!(hash(&wide, "10.1.2.3"), hash(&wide, "10.1.200.9"));
        assert_ne!(hash(&wide, "10.1.2.3"), hash(&wide, "10.2.2.3"));
        let full = KeyBy::client_network(32, 128);
        assert_ne!(hash(&full, "2001:db8::1"), hash(&full, "2001:db8::2"));
        assert!(KeyBy::client_network(0, 64).check().is_err());
        assert!(KeyBy::client_network(32, 129).check().is_err());
        assert!(KeyBy::client_network(1, 1).check().is_ok());
    }

    /// The names shared through Redis are keyed by the network too.
    #[cfg(feature = "redis")]
    #[test]
    fn shared_names_are_keyed_by_the_network() {
        let key = KeyBy::client_ip();
        let name = |ip: &str| {
            key.shared_name(&with(ClientIp(ip.parse().unwrap())))
                .unwrap()
        };
        assert_eq!(
            name("2001:db8:1:2::1"),
            name("2001:db8:1:2:aaaa:bbbb:cccc:dddd")
        );
        assert_ne!(name("2001:db8:1:2::1"), name("2001:db8:1:3::1"));
        assert_eq!(name("::ffff:192.0.2.1"), name("192.0.2.1"));
        assert_ne!(name("192.0.2.1"), name("192.0.2.2"));
    }
}
