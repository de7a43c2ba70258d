//! The format of Palisade API keys: `<prefix>_<random>_<check>`.
//!
//! - `prefix`: readable, so people and secret scanners recognise the key (`pal_live`,
//!   `pal_test`): a lowercase letter, then lowercase letters, digits and single underscores, at
//!   most 32 characters.
//! - `random`: 32 base62 characters from the operating system's generator (190 bits).
//! - `check`: the CRC-32 of `<prefix>_<random>` in 6 base62 characters, so a mistyped or
//!   truncated key is rejected before any lookup, and a scanner can tell a real leak from text
//!   that merely looks like one.
//!
//! ```
//! use palisade::apikey::format::{generate, KeyFormat};
//!
//! let key = generate("pal_live").unwrap();
//! assert!(key.starts_with("pal_live_"));
//! assert!(KeyFormat::default().check(&key).is_ok());
//!
//! // One changed character breaks the checksum.
//! let mut typo = key.clone().into_bytes();
//! typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
//! assert!(KeyFormat::default().check(std::str::from_utf8(&typo).unwrap()).is_err());
//! ```
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::fmt;

/// Characters of the random part and of the checksum.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The base62 digit of `value % 62`.
#[allow(
    clippy::indexing_slicing,
    reason = "a remainder of 62 indexes 62 digits"
)]
fn base62(value: u32) -> u8 {
    BASE62[(value % 62) as usize]
}
/// Length of the random part: 32 base62 characters, about 190 bits.
pub const RANDOM_LEN: usize = 32;
/// Length of the checksum part: 62^6 > 2^32.
pub const CHECK_LEN: usize = 6;
/// The longest prefix.
pub const MAX_PREFIX_LEN: usize = 32;
/// The prefix `palisade apikey new` uses unless told otherwise.
pub const DEFAULT_PREFIX: &str = "pal_live";

/// Why a string is not a well-formed Palisade key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// Not `<prefix>_<random>_<check>` with parts of the right lengths and characters.
    Shape,
    /// The prefix is well-formed but not one this service accepts.
    Prefix,
    /// The checksum does not match: a typo, or a truncated key.
    Checksum,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Shape => "not a key of the form <prefix>_<random>_<check>",
            Self::Prefix => "the key's prefix is not accepted here",
            Self::Checksum => "the key's checksum does not match (mistyped or truncated)",
        })
    }
}

impl std::error::Error for FormatError {}

/// An invalid prefix given to [`generate`] or [`KeyFormat::with_prefixes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPrefix {
    prefix: String,
}

impl fmt::Display for InvalidPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid key prefix {:?}: use 1 to {MAX_PREFIX_LEN} lowercase letters, digits and \
             single underscores, starting with a letter (e.g. \"pal_live\")",
            self.prefix.chars().take(40).collect::<String>()
        )
    }
}

impl std::error::Error for InvalidPrefix {}

/// Which prefixes a service accepts. The default accepts any well-formed prefix: the checksum
/// alone rejects mistyped keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFormat {
    prefixes: Option<Box<[Box<str>]>>,
}

impl KeyFormat {
    /// Accepts only keys whose prefix is one of `prefixes` (e.g. `["pal_live"]` in production,
    /// so a test key is refused there).
    ///
    /// # Errors
    ///
    /// [`InvalidPrefix`] for the first prefix that is not well-formed.
    pub fn with_prefixes<I, S>(prefixes: I) -> Result<Self, InvalidPrefix>
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        let prefixes: Box<[Box<str>]> = prefixes.into_iter().map(Into::into).collect();
        if let Some(bad) = prefixes.iter().find(|p| !is_valid_prefix(p)) {
            return Err(InvalidPrefix {
                prefix: bad.to_string(),
            });
        }
        Ok(Self {
            prefixes: Some(prefixes),
        })
    }

    /// Checks the shape, the prefix and the checksum of `key`.
    ///
    /// # Errors
    ///
    /// The first [`FormatError`] found.
    pub fn check(&self, key: &str) -> Result<(), FormatError> {
        let bytes = key.as_bytes();
        let min = 1 + 1 + RANDOM_LEN + 1 + CHECK_LEN;
        if bytes.len() < min || bytes.len() > MAX_PREFIX_LEN + 2 + RANDOM_LEN + CHECK_LEN {
            return Err(FormatError::Shape);
        }
        // `<prefix>_<random>_<check>`, taken apart from the right.
        let (checked, check) = bytes
            .split_at_checked(bytes.len() - CHECK_LEN)
            .ok_or(FormatError::Shape)?;
        let checked = checked.strip_suffix(b"_").ok_or(FormatError::Shape)?;
        let (prefix, random) = checked
            .split_at_checked(checked.len().saturating_sub(RANDOM_LEN))
            .ok_or(FormatError::Shape)?;
        let prefix = prefix.strip_suffix(b"_").ok_or(FormatError::Shape)?;
        // `get` also checks the prefix ends on a character boundary (it ends before a `_`).
        let prefix = key.get(..prefix.len()).ok_or(FormatError::Shape)?;
        if !is_valid_prefix(prefix)
            || !random.iter().all(u8::is_ascii_alphanumeric)
            || !check.iter().all(u8::is_ascii_alphanumeric)
        {
            return Err(FormatError::Shape);
        }
        if let Some(accepted) = &self.prefixes
            && !accepted.iter().any(|p| p.as_ref() == prefix)
        {
            return Err(FormatError::Prefix);
        }
        // Decoding the six characters is multiplications; encoding the CRC would be divisions.
        if decode_check(check) != Some(crc32(checked)) {
            return Err(FormatError::Checksum);
        }
        Ok(())
    }
}

/// Generates a new key with `prefix` from the operating system's random generator.
///
/// # Errors
///
/// [`InvalidPrefix`] when `prefix` is not well-formed.
///
/// # Panics
///
/// If the operating system's random generator fails, which leaves no safe way to make a key.
pub fn generate(prefix: &str) -> Result<String, InvalidPrefix> {
    let mut random = [0u8; RANDOM_LEN];
    fill_base62(&mut random, |buf| {
        getrandom::fill(buf).expect("the operating system's random generator failed");
    });
    from_parts(prefix, &random)
}

/// Builds a key from `prefix` and a base62 random part (tests and benches use fixed parts).
#[doc(hidden)]
pub fn from_parts(prefix: &str, random: &[u8; RANDOM_LEN]) -> Result<String, InvalidPrefix> {
    if !is_valid_prefix(prefix) {
        return Err(InvalidPrefix {
            prefix: prefix.to_owned(),
        });
    }
    let mut key = String::with_capacity(prefix.len() + 2 + RANDOM_LEN + CHECK_LEN);
    key.push_str(prefix);
    key.push('_');
    key.extend(random.iter().map(|b| char::from(*b)));
    let check = encode_check(crc32(key.as_bytes()));
    key.push('_');
    key.extend(check.iter().map(|b| char::from(*b)));
    Ok(key)
}

/// Fills `out` with uniformly distributed base62 characters, drawing bytes from `source` and
/// rejecting those that would bias the result (`>= 248`).
fn fill_base62(out: &mut [u8; RANDOM_LEN], mut source: impl FnMut(&mut [u8])) {
    let mut filled = 0;
    let mut pool = [0u8; 64];
    while filled < out.len() {
        source(&mut pool);
        for byte in pool.into_iter().filter(|byte| *byte < 248) {
            let Some(slot) = out.get_mut(filled) else {
                break;
            };
            *slot = base62(u32::from(byte));
            filled += 1;
        }
    }
}

fn is_valid_prefix(prefix: &str) -> bool {
    let bytes = prefix.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_PREFIX_LEN
        && bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes.last() != Some(&b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        && !prefix.contains("__")
}

fn encode_check(mut crc: u32) -> [u8; CHECK_LEN] {
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = base62(crc);
        crc /= 62;
    }
    out
}

/// The value of a base62 checksum, `None` if it is out of `u32` range (so no CRC matches).
fn decode_check(check: &[u8]) -> Option<u32> {
    let value = check.iter().fold(0u64, |acc, c| {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            _ => c.wrapping_sub(b'a').wrapping_add(36),
        };
        acc * 62 + u64::from(digit)
    });
    u32::try_from(value).ok()
}

/// CRC-32 (IEEE 802.3, as zlib and GitHub's token checksums); `crc32fast` is several times
/// faster than a byte-at-a-time table on a key's ~45 bytes.
fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const RANDOM: &[u8; RANDOM_LEN] = b"AbCdEfGhIjKlMnOpQrStUvWxYz012345";

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The CRC-32/ISO-HDLC check value of "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn checksums_decode_to_what_was_encoded() {
        for crc in [0, 1, 61, 62, 0xDEAD_BEEF, u32::MAX] {
            assert_eq!(decode_check(&encode_check(crc)), Some(crc));
        }
        assert_eq!(decode_check(b"zzzzzz"), None, "62^6 - 1 is beyond u32");
    }

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = generate("pal_live").unwrap();
        let parts: Vec<&str> = key.rsplitn(3, '_').collect();
        assert_eq!(parts[0].len(), CHECK_LEN);
        assert_eq!(parts[1].len(), RANDOM_LEN);
        assert_eq!(parts[2], "pal_live");
        assert_eq!(KeyFormat::default().check(&key), Ok(()));
        assert_ne!(key, generate("pal_live").unwrap(), "keys are random");
    }

    #[test]
    fn check_table() {
        let good = from_parts("pal_test", RANDOM).unwrap();
        let only_live = KeyFormat::with_prefixes(["pal_live"]).unwrap();
        let cases: Vec<(&str, String, Result<(), FormatError>)> = vec![
            ("well-formed", good.clone(), Ok(())),
            ("empty", String::new(), Err(FormatError::Shape)),
            ("no separators", "x".repeat(45), Err(FormatError::Shape)),
            (
                "truncated",
                good.get(..good.len() - 1).unwrap().to_owned(),
                Err(FormatError::Shape),
            ),
            (
                "extra character",
                format!("{good}x"),
                Err(FormatError::Shape),
            ),
            (
                "uppercase prefix",
                good.replacen("pal", "PAL", 1),
                Err(FormatError::Shape),
            ),
            (
                "double underscore",
                good.replacen("pal_test", "pal__test", 1),
                Err(FormatError::Shape),
            ),
            (
                "symbol in random part",
                good.replacen('A', "-", 1),
                Err(FormatError::Shape),
            ),
            (
                "typo in random part",
                good.replacen('A', "B", 1),
                Err(FormatError::Checksum),
            ),
            (
                "typo in prefix",
                good.replacen("pal_test", "pal_tesu", 1),
                Err(FormatError::Checksum),
            ),
            (
                "swapped check",
                {
                    let mut k = good.clone().into_bytes();
                    let n = k.len();
                    k.swap(n - 1, n - 2);
                    String::from_utf8(k).unwrap()
                },
                if good.as_bytes()[good.len() - 1] == good.as_bytes()[good.len() - 2] {
                    Ok(())
                } else {
                    Err(FormatError::Checksum)
                },
            ),
        ];
        for (name, key, expected) in cases {
            assert_eq!(KeyFormat::default().check(&key), expected, "{name}: {key}");
        }
        assert_eq!(only_live.check(&good), Err(FormatError::Prefix));
        assert!(
            only_live
                .check(&from_parts("pal_live", RANDOM).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn prefixes_are_validated() {
        for bad in [
            "",
            "Pal",
            "1pal",
            "pal_",
            "_pal",
            "pal__x",
            "pal-live",
            &"p".repeat(33),
        ] {
            assert!(generate(bad).is_err(), "{bad:?}");
            assert!(KeyFormat::with_prefixes([bad]).is_err(), "{bad:?}");
        }
        for good in ["p", "pal", "pal_live", "acme2_prod_eu"] {
            assert!(generate(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn base62_sampling_rejects_biased_bytes() {
        let mut calls = 0;
        let mut out = [0u8; RANDOM_LEN];
        // A source of only rejected bytes, then 61s.
        fill_base62(&mut out, |buf| {
            calls += 1;
            buf.fill(if calls == 1 { 250 } else { 61 });
        });
        assert_eq!(calls, 2);
        assert!(out.iter().all(|b| *b == b'z'));
    }

    proptest! {
        #[test]
        fn every_single_character_change_is_caught(index in 0usize..100, replacement in proptest::char::range('0', 'z')) {
            let key = from_parts("pal_live", RANDOM).unwrap();
            let index = index % key.len();
            let mut changed: Vec<char> = key.chars().collect();
            prop_assume!(changed[index] != replacement);
            changed[index] = replacement;
            let changed: String = changed.into_iter().collect();
            prop_assert!(KeyFormat::default().check(&changed).is_err(), "{changed}");
        }
    }
}
