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
    ClientIp,
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
            Self::ClientIp => f.write_str("ClientIp"),
            Self::Identity => f.write_str("Identity"),
            Self::Header(name) => write!(f, "Header({name})"),
            Self::Route => f.write_str("Route"),
            Self::Method => f.write_str("Method"),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// A limit's key: one of these parts, or a tuple of them ([`Key::and`]). A request whose key
/// cannot be formed (no `Identity` before authentication, no such header) is not counted by
/// that limit.
///
/// ```
/// use palisade_ratelimit::Key;
///
/// let per_ip = Key::client_ip();
/// let per_user_and_route = Key::identity().and(Key::route());
/// # let _ = (per_ip, per_user_and_route);
/// ```
#[derive(Clone, Debug)]
pub struct Key {
    parts: Vec<Part>,
}

impl Key {
    fn one(part: Part) -> Self {
        Self { parts: vec![part] }
    }

    /// One bucket for everyone.
    pub fn global() -> Self {
        Self::one(Part::Global)
    }

    /// The client address resolved through trusted proxies: the `ClientIp` that
    /// `palisade_core::ClientIpLayer` puts in the request's extensions (install it outside).
    pub fn client_ip() -> Self {
        Self::one(Part::ClientIp)
    }

    /// The authenticated caller's subject (the `Identity` an auth layer put in).
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
                Part::ClientIp => match request.extensions().get::<ClientIp>()?.ip() {
                    // Tag 1 and an IPv4 address in one word (tag in the top byte); tag 7 and
                    // an IPv6 address. Every part starts with its own tag and is either of
                    // fixed length or ends in 0xFF, which no value holds before a tag byte.
                    std::net::IpAddr::V4(v4) => {
                        hasher.write_u64((1 << 56) | u64::from(v4.to_bits()));
                    }
                    std::net::IpAddr::V6(v6) => {
                        hasher.write_u8(7);
                        hasher.write_u128(v6.to_bits());
                    }
                },
                Part::Identity => {
                    let identity = request.extensions().get::<Identity>()?;
                    hasher.write_u8(2);
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
