#![cfg_attr(not(test), deny(clippy::indexing_slicing))]
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`), or a single address.
///
/// ```
/// use palisade::Cidr;
///
/// let net: Cidr = "10.0.0.0/8".parse().unwrap();
/// assert!(net.contains("10.1.2.3".parse().unwrap()));
/// assert!(!net.contains("11.0.0.1".parse().unwrap()));
/// assert!("10.0.0.1/33".parse::<Cidr>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    repr: Repr,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Repr {
    V4 {
        network: u32,
        mask: u32,
        prefix: u8,
    },
    V6 {
        network: u128,
        mask: u128,
        prefix: u8,
    },
}

/// A trusted-proxy entry that is not an address or a CIDR network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidCidr {
    input: String,
    too_broad: bool,
}

/// The widest network [`TrustedProxies`](super::TrustedProxies) believes, per family: wider
/// ones (`0.0.0.0/0`) would let any client write its own address. IPv6's private ranges,
/// unique local `fc00::/7` and link-local `fe80::/10`, are accepted whole.
pub const MIN_TRUSTED_PREFIX_V4: u8 = 8;
/// See [`MIN_TRUSTED_PREFIX_V4`].
pub const MIN_TRUSTED_PREFIX_V6: u8 = 16;

impl InvalidCidr {
    pub(super) fn too_broad(input: &str) -> Self {
        Self {
            input: input.to_owned(),
            too_broad: true,
        }
    }
}

impl fmt::Display for InvalidCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.too_broad {
            return write!(
                f,
                "`{}` is too broad to trust: every client in it could write its own address; \
                 a trusted network is at most /{MIN_TRUSTED_PREFIX_V4} (IPv4) or \
                 /{MIN_TRUSTED_PREFIX_V6} (IPv6) wide: list your proxies' own networks",
                self.input
            );
        }
        write!(
            f,
            "`{}` is not an IP address or a CIDR network such as 10.0.0.0/8 or 2001:db8::/32",
            self.input
        )
    }
}

impl std::error::Error for InvalidCidr {}

impl Cidr {
    /// The network of `addr` with `prefix` leading bits, or `None` if `prefix` is longer than
    /// the address. Host bits of `addr` are cleared. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.0`) with a prefix of at least 96 is the IPv4 network it maps
    /// (`::ffff:10.0.0.0/104` is `10.0.0.0/8`).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix.checked_sub(96)?),
                None => (addr, prefix),
            },
            IpAddr::V4(_) => (addr, prefix),
        };
        let repr = match addr {
            IpAddr::V4(v4) => {
                if prefix > 32 {
                    return None;
                }
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                Repr::V4 {
                    network: u32::from(v4) & mask,
                    mask,
                    prefix,
                }
            }
            IpAddr::V6(v6) => {
                if prefix > 128 {
                    return None;
                }
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                Repr::V6 {
                    network: u128::from(v6) & mask,
                    mask,
                    prefix,
                }
            }
        };
        Some(Self { repr })
    }

    /// Whether `addr` is in this network. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) match
    /// IPv4 networks.
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.repr, addr.to_canonical()) {
            (Repr::V4 { network, mask, .. }, IpAddr::V4(a)) => u32::from(a) & mask == network,
            (Repr::V6 { network, mask, .. }, IpAddr::V6(a)) => u128::from(a) & mask == network,
            _ => false,
        }
    }
}

impl Cidr {
    /// `(network, mask)` of an IPv4 network, for the resolver's flat lists.
    /// Wider than a trusted proxy network may be. IPv6's private ranges are accepted whole,
    /// as `10.0.0.0/8` is: unique local `fc00::/7` and link-local `fe80::/10`.
    pub(super) fn is_too_broad(&self) -> bool {
        match self.repr {
            Repr::V4 { prefix, .. } => prefix < MIN_TRUSTED_PREFIX_V4,
            Repr::V6 {
                network, prefix, ..
            } => {
                let unique_local = prefix >= 7 && network >> 121 == 0b111_1110;
                let link_local = prefix >= 10 && network >> 118 == 0b11_1111_1010;
                prefix < MIN_TRUSTED_PREFIX_V6 && !unique_local && !link_local
            }
        }
    }

    pub(super) fn v4_parts(&self) -> Option<(u32, u32)> {
        match self.repr {
            Repr::V4 { network, mask, .. } => Some((network, mask)),
            Repr::V6 { .. } => None,
        }
    }

    /// `(network, mask)` of an IPv6 network.
    pub(super) fn v6_parts(&self) -> Option<(u128, u128)> {
        match self.repr {
            Repr::V6 { network, mask, .. } => Some((network, mask)),
            Repr::V4 { .. } => None,
        }
    }
}

impl FromStr for Cidr {
    type Err = InvalidCidr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidCidr {
            too_broad: false,
            input: s.chars().take(64).collect(),
        };
        let trimmed = s.trim();
        let (addr, prefix) = if let Some((addr, prefix)) = trimmed.split_once('/') {
            if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(invalid());
            }
            let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
            (addr, prefix.parse::<u8>().map_err(|_| invalid())?)
        } else {
            let addr: IpAddr = trimmed.parse().map_err(|_| invalid())?;
            let prefix = if addr.is_ipv4() { 32 } else { 128 };
            (addr, prefix)
        };
        Self::new(addr, prefix).ok_or_else(invalid)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repr {
            Repr::V4 {
                network, prefix, ..
            } => write!(f, "{}/{prefix}", std::net::Ipv4Addr::from(network)),
            Repr::V6 {
                network, prefix, ..
            } => write!(f, "{}/{prefix}", std::net::Ipv6Addr::from(network)),
        }
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cidr({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_contains_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.255.0.1", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.1.2.3/8", "10.9.9.9", true),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::/0", "::1", true),
            ("::1", "::1", true),
            ("10.0.0.0/8", "::ffff:10.0.0.1", true),
            ("::ffff:10.0.0.0/104", "10.3.4.5", true),
            ("::ffff:10.0.0.7", "10.0.0.7", true),
            ("::ffff:10.0.0.7", "10.0.0.8", false),
            (" 10.0.0.0/8 ", "10.0.0.1", true),
        ];
        for (cidr, addr, expected) in cases {
            let net: Cidr = cidr.parse().unwrap_or_else(|e| panic!("{cidr}: {e}"));
            let addr: IpAddr = addr.parse().unwrap();
            assert_eq!(net.contains(addr), *expected, "{cidr} contains {addr}");
        }
    }

    #[test]
    fn rejects_malformed_networks() {
        for bad in [
            "",
            "/",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/+8",
            "10.0.0.0/08x",
            "10.0.0.0/1000",
            "example.com",
            "::ffff:10.0.0.0/95",
            "10.0.0.0/8/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn new_agrees_with_parsing_on_mapped_addresses() {
        let mapped: IpAddr = "::ffff:10.0.0.0".parse().unwrap();
        assert_eq!(Cidr::new(mapped, 104), "10.0.0.0/8".parse().ok());
        assert_eq!(
            Cidr::new(mapped, 8),
            None,
            "a mapped address needs a prefix of 96 or more"
        );
        assert_eq!(Cidr::new(mapped, 128), "10.0.0.0/32".parse().ok());
    }

    #[test]
    fn display_shows_the_network() {
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "2001:db8::1/32".parse::<Cidr>().unwrap().to_string(),
            "2001:db8::/32"
        );
    }
}
