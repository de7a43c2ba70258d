//! The key set: digests of the accepted keys, each with its principal, scopes, expiry and
//! enabled flag. Plaintext keys are never stored.
//!
//! # The key file
//!
//! One key per line, as `palisade apikey new` prints it; `#` starts a comment line:
//!
//! ```text
//! # billing service, rotated 2026-11
//! sha256:5e88…(64 hex digits) principal=billing scopes=orders:read,orders:write
//! sha256:9a0c…(64 hex digits) principal=billing scopes=orders:read not_after=2026-12-31T00:00:00Z
//! sha256:1f2d…(64 hex digits) principal=legacy-partner enabled=false
//! ```
//!
//! `principal` is required; `scopes` (comma-separated), `not_after` (RFC 3339, UTC) and
//! `enabled` (`true` by default) are optional. A principal may hold several keys at once, which
//! is how keys are rotated: add the new key, move clients over, then disable or remove the old.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::SystemTime;

use palisade_core::{Identity, IdentitySource};
use subtle::ConditionallySelectable;

use crate::KeyDigest;

/// The longest principal name or scope.
const MAX_NAME_LEN: usize = 128;

/// One accepted key.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    digest: KeyDigest,
    identity: Identity,
    not_after: Option<SystemTime>,
    enabled: bool,
}

impl KeyEntry {
    /// A key for `principal` with no scopes, enabled, never expiring.
    ///
    /// # Errors
    ///
    /// [`KeySetError`] when the principal is empty, longer than 128 bytes, or has characters
    /// other than letters, digits and `._:@/-`.
    pub fn new(digest: KeyDigest, principal: &str) -> Result<Self, KeySetError> {
        check_name("principal", principal)?;
        Ok(Self {
            digest,
            identity: Identity::new(principal, IdentitySource::ApiKey)
                .with_key_id(digest.short_id()),
            not_after: None,
            enabled: true,
        })
    }

    /// Sets the scopes the key grants.
    ///
    /// # Errors
    ///
    /// [`KeySetError`] for a scope that is empty, too long, or has characters other than
    /// letters, digits and `._:@/-*`.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Result<Self, KeySetError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes: Vec<Box<str>> = scopes.into_iter().map(|s| s.as_ref().into()).collect();
        for scope in &scopes {
            check_name("scope", scope)?;
        }
        self.identity = self.identity.with_scopes(scopes);
        Ok(self)
    }

    /// Sets the instant after which the key is refused.
    #[must_use]
    pub fn with_not_after(mut self, not_after: SystemTime) -> Self {
        self.not_after = Some(not_after);
        self
    }

    /// Enables or disables the key.
    #[must_use]
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The digest.
    pub fn digest(&self) -> &KeyDigest {
        &self.digest
    }

    /// The identity a request with this key gets.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The principal.
    pub fn principal(&self) -> &str {
        self.identity.subject()
    }

    /// The short key id for logs.
    pub fn key_id(&self) -> &str {
        self.identity.key_id().unwrap_or_default()
    }

    /// The expiry, if any.
    pub fn not_after(&self) -> Option<SystemTime> {
        self.not_after
    }

    /// Whether the key is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the key may be used at `now` (asked only when the key has an expiry).
    pub(crate) fn usable(&self, now: impl FnOnce() -> SystemTime) -> Result<(), Refusal> {
        if !self.enabled {
            return Err(Refusal::Disabled);
        }
        match self.not_after {
            Some(not_after) if now() > not_after => Err(Refusal::Expired),
            _ => Ok(()),
        }
    }

    /// The key-file line of this entry.
    pub fn to_line(&self) -> String {
        let mut line = format!("{} principal={}", self.digest, self.principal());
        let scopes: Vec<&str> = self.identity.scopes().collect();
        if !scopes.is_empty() {
            line.push_str(" scopes=");
            line.push_str(&scopes.join(","));
        }
        if let Some(not_after) = self.not_after {
            line.push_str(" not_after=");
            line.push_str(&humantime::format_rfc3339_seconds(not_after).to_string());
        }
        if !self.enabled {
            line.push_str(" enabled=false");
        }
        line
    }
}

/// Errors never repeat the value: an operator who pasted a plaintext key into the wrong field
/// must not find it in the logs.
fn check_name(what: &'static str, name: &str) -> Result<(), KeySetError> {
    let allowed = |b: &u8| {
        b.is_ascii_alphanumeric() || b"._:@/-".contains(b) || (what == "scope" && *b == b'*')
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.as_bytes().iter().all(allowed) {
        return Err(KeySetError::new(
            0,
            format!("invalid {what}: use 1 to {MAX_NAME_LEN} letters, digits or ._:@/-"),
        ));
    }
    Ok(())
}

/// A key set that cannot be built; the message names the line (from 1) when read from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetError {
    line: usize,
    message: String,
}

impl KeySetError {
    fn new(line: usize, message: String) -> Self {
        Self { line, message }
    }

    fn at_line(mut self, line: usize) -> Self {
        self.line = line;
        self
    }

    /// The line of the key file, from 1; 0 when built in code.
    pub fn line(&self) -> usize {
        self.line
    }
}

impl fmt::Display for KeySetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for KeySetError {}

/// The accepted keys, found by digest in constant time per bucket.
///
/// Keys are bucketed by the first eight bytes of their digest. Finding a key hashes it, looks up
/// its bucket, then compares the full digest with every entry of the bucket using
/// [`subtle::ConstantTimeEq`], without an early exit. The bucket lookup's timing depends only on
/// digest bits, which an attacker cannot steer towards a stored key without a SHA-256 preimage.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    buckets: HashMap<u64, Vec<KeyEntry>, BuildHasherDefault<BucketHasher>>,
    len: usize,
}

/// Digests are uniformly distributed already: their first bytes need no further hashing, and
/// an attacker cannot choose them.
#[derive(Default)]
struct BucketHasher(u64);

impl Hasher for BucketHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl KeySet {
    /// An empty set: every key is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of `entries`.
    ///
    /// # Errors
    ///
    /// [`KeySetError`] when two entries have the same digest.
    pub fn from_entries(entries: impl IntoIterator<Item = KeyEntry>) -> Result<Self, KeySetError> {
        let mut set = Self::new();
        for entry in entries {
            set.insert(entry)?;
        }
        Ok(set)
    }

    /// Adds an entry.
    ///
    /// # Errors
    ///
    /// [`KeySetError`] when an entry with the same digest is already present.
    pub fn insert(&mut self, entry: KeyEntry) -> Result<(), KeySetError> {
        let bucket = self.buckets.entry(entry.digest.bucket()).or_default();
        if bucket.iter().any(|e| e.digest == entry.digest) {
            return Err(KeySetError::new(
                0,
                format!("the key {} is listed twice", entry.digest.short_id()),
            ));
        }
        bucket.push(entry);
        self.len += 1;
        Ok(())
    }

    /// Parses a key file (see the [module documentation](self)).
    ///
    /// # Errors
    ///
    /// [`KeySetError`] naming the first bad line and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, KeySetError> {
        let mut set = Self::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = parse_line(line).map_err(|e| e.at_line(number))?;
            set.insert(entry).map_err(|e| e.at_line(number))?;
        }
        Ok(set)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &KeyEntry> {
        self.buckets.values().flatten()
    }

    /// The entry whose digest is `digest`, compared in constant time (see the type docs).
    pub fn find(&self, digest: &KeyDigest) -> Option<&KeyEntry> {
        let bucket = self.buckets.get(&digest.bucket())?;
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, entry) in bucket.iter().enumerate() {
            let equal = entry.digest.ct_eq(digest);
            index.conditional_assign(&u32::try_from(i).unwrap_or(u32::MAX), equal);
            found |= equal;
        }
        if bool::from(found) {
            bucket.get(index as usize)
        } else {
            None
        }
    }
}

/// Why a known key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Disabled,
    Expired,
}

fn parse_line(line: &str) -> Result<KeyEntry, KeySetError> {
    let mut fields = line.split_ascii_whitespace();
    let digest_text = fields.next().unwrap_or_default();
    let digest: KeyDigest = digest_text
        .parse()
        .map_err(|e: crate::digest::InvalidDigest| KeySetError::new(0, e.to_string()))?;
    let mut principal = None;
    let mut scopes = None;
    let mut not_after = None;
    let mut enabled = None;
    for (index, field) in fields.enumerate() {
        let Some((name, value)) = field.split_once('=') else {
            return Err(KeySetError::new(
                0,
                format!("field {} after the digest is not name=value", index + 1),
            ));
        };
        let slot_taken = match name {
            "principal" => principal.replace(value).is_some(),
            "scopes" => scopes.replace(value).is_some(),
            "not_after" => not_after.replace(value).is_some(),
            "enabled" => enabled.replace(value).is_some(),
            other => {
                return Err(KeySetError::new(
                    0,
                    format!(
                        "unknown field {}(expected principal, scopes, not_after or enabled)",
                        short_name(other)
                    ),
                ));
            }
        };
        if slot_taken {
            return Err(KeySetError::new(0, format!("`{name}` is given twice")));
        }
    }
    let principal =
        principal.ok_or_else(|| KeySetError::new(0, "missing `principal=`".to_owned()))?;
    let mut entry = KeyEntry::new(digest, principal)?;
    if let Some(scopes) = scopes {
        entry = entry.with_scopes(scopes.split(','))?;
    }
    if let Some(not_after) = not_after {
        let instant = humantime::parse_rfc3339(not_after).map_err(|_| {
            KeySetError::new(
                0,
                "`not_after` is not an RFC 3339 UTC time like 2027-01-31T00:00:00Z".to_owned(),
            )
        })?;
        entry = entry.with_not_after(instant);
    }
    if let Some(enabled) = enabled {
        entry = entry.with_enabled(match enabled {
            "true" => true,
            "false" => false,
            _ => {
                return Err(KeySetError::new(
                    0,
                    "`enabled` must be true or false".to_owned(),
                ));
            }
        });
    }
    Ok(entry)
}

/// A field name worth repeating in an error: short enough to be a typo of a known name
/// (`scope`), never long enough to be a pasted key.
fn short_name(name: &str) -> String {
    if name.len() <= 12 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        format!("`{name}` ")
    } else {
        String::new()
    }
}

/// Fuzz harness: parses arbitrary text as a key file; what parses must render and re-parse to
/// the same entries.
#[doc(hidden)]
pub fn fuzz_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(set) = KeySet::parse(text) {
        let lines: Vec<String> = set.entries().map(KeyEntry::to_line).collect();
        let again = KeySet::parse(&lines.join("\n")).expect("rendered lines parse");
        assert_eq!(again.len(), set.len());
        for entry in set.entries() {
            let other = again.find(entry.digest()).expect("every entry survives");
            assert_eq!(other.to_line(), entry.to_line());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn digest(n: u8) -> KeyDigest {
        KeyDigest::of(&format!("key-{n}"))
    }

    #[test]
    fn parses_a_key_file() {
        let text = format!(
            "# comment\n\n{} principal=billing scopes=orders:read,orders:write\n  {} principal=billing not_after=2026-12-31T00:00:00Z  \n{} principal=old enabled=false\n",
            digest(1),
            digest(2),
            digest(3)
        );
        let set = KeySet::parse(&text).unwrap();
        assert_eq!(set.len(), 3);
        let one = set.find(&digest(1)).unwrap();
        assert_eq!(one.principal(), "billing");
        assert!(
            one.identity()
                .has_all_scopes(["orders:read", "orders:write"])
        );
        assert_eq!(one.key_id(), digest(1).short_id());
        let two = set.find(&digest(2)).unwrap();
        assert_eq!(
            two.not_after(),
            Some(humantime::parse_rfc3339("2026-12-31T00:00:00Z").unwrap())
        );
        assert!(!set.find(&digest(3)).unwrap().enabled());
        assert!(set.find(&digest(4)).is_none());
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let d = digest(1);
        let cases = [
            (format!("{d}"), "line 1: missing `principal=`"),
            (
                format!("\n{d} principal=a scope=x"),
                "line 2: unknown field `scope`",
            ),
            (
                format!("{d} principal=a principal=b"),
                "`principal` is given twice",
            ),
            (
                format!("{d} principal=a\n{d} principal=b"),
                "line 2: the key",
            ),
            (
                format!("{d} principal=a enabled=yes"),
                "`enabled` must be true or false",
            ),
            (
                format!("{d} principal=a not_after=tomorrow"),
                "not an RFC 3339",
            ),
            (
                format!("{d} principal=a b"),
                "field 2 after the digest is not name=value",
            ),
            (format!("{d} principal="), "invalid principal"),
            (format!("{d} principal=a scopes=x,,y"), "invalid scope"),
            (format!("{d} principal=has\u{e9}"), "invalid principal"),
            ("sha256:abc principal=a".to_owned(), "64 hex digits"),
            ("plaintext-key principal=a".to_owned(), "64 hex digits"),
        ];
        for (text, expected) in cases {
            let err = KeySet::parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn errors_never_repeat_a_pasted_key() {
        let key = crate::format::generate("pal_live").unwrap();
        let random = key.rsplit('_').nth(1).unwrap();
        let d = digest(1);
        for line in [
            format!("{d} principal=a {key}"),
            format!("{d} principal={key}!"),
            format!("{d} principal=a scopes={key},?"),
            format!("{d} principal=a not_after={key}"),
            format!("{d} principal=a enabled={key}"),
            format!("{d} {key}=a"),
            format!("{key} principal=a"),
        ] {
            let err = KeySet::parse(&line).unwrap_err().to_string();
            assert!(!err.contains(random.get(..8).unwrap()), "{err}");
        }
    }

    #[test]
    fn lines_round_trip() {
        let entry = KeyEntry::new(digest(9), "svc@example")
            .unwrap()
            .with_scopes(["a:b", "c/*"])
            .unwrap()
            .with_not_after(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
            .with_enabled(false);
        let line = entry.to_line();
        assert_eq!(
            line,
            format!(
                "{} principal=svc@example scopes=a:b,c/* not_after=2027-01-15T08:00:00Z enabled=false",
                digest(9)
            )
        );
        let parsed = KeySet::parse(&line).unwrap();
        assert_eq!(parsed.find(&digest(9)).unwrap().to_line(), line);
    }

    #[test]
    fn usable_checks_enabled_then_expiry() {
        let base = KeyEntry::new(digest(1), "a").unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(base.usable(|| at), Ok(()));
        assert_eq!(
            base.clone().with_enabled(false).usable(|| at),
            Err(Refusal::Disabled)
        );
        let expiring = base.with_not_after(at);
        assert_eq!(expiring.usable(|| at), Ok(()), "valid through not_after");
        assert_eq!(
            expiring.usable(|| at + Duration::from_secs(1)),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn many_keys_are_all_found() {
        let set = KeySet::from_entries((0..=255u8).map(|n| KeyEntry::new(digest(n), "p").unwrap()))
            .unwrap();
        assert_eq!(set.len(), 256);
        for n in 0..=255u8 {
            assert_eq!(set.find(&digest(n)).unwrap().digest(), &digest(n));
        }
        assert!(set.find(&KeyDigest::of("absent")).is_none());
    }

    #[test]
    fn entries_sharing_a_bucket_are_told_apart() {
        // Force two digests into one bucket to exercise the constant-time scan.
        let a = digest(1);
        let mut raw = *a.as_bytes();
        raw[31] ^= 1;
        let b = KeyDigest::from_raw(raw);
        let set = KeySet::from_entries([
            KeyEntry::new(a, "first").unwrap(),
            KeyEntry::new(b, "second").unwrap(),
        ])
        .unwrap();
        assert_eq!(set.buckets.len(), 1);
        assert_eq!(set.find(&a).unwrap().principal(), "first");
        assert_eq!(set.find(&b).unwrap().principal(), "second");
        let mut raw_c = raw;
        raw_c[30] ^= 1;
        assert!(set.find(&KeyDigest::from_raw(raw_c)).is_none());
    }
}
