//! The verified-token cache: a repeated token skips the signature check.
//!
//! Entries are keyed by the SHA-256 of the whole token, so a token that differs in any byte
//! (another signature, a changed claim) is another entry; no entry outlives its token's `exp`
//! (nor [`MAX_TTL`] without one); an entry is only used while the key that verified it is still
//! in its issuer's key set; and the cache is bounded, in shards so concurrent requests seldom
//! wait on the same lock. A hit does not check the claims again: they were checked when the
//! entry was made, and it is used only until the token's `exp` (without the leeway the first
//! check allowed); `nbf` and `iat`, met once, stay met as time passes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::verify::Verified;

/// The longest an entry lives when its token has no `exp`.
pub const MAX_TTL: Duration = Duration::from_secs(300);

const SHARDS: usize = 16;

pub(crate) type TokenDigest = [u8; 32];

/// A digest is already uniform: its first eight bytes are the hash.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 |= u64::from(*b) << (8 * i);
        }
    }
}

struct Entry<T> {
    verified: Verified<T>,
    authority: usize,
    /// Unix seconds after which the entry is not used.
    until: i64,
}

type Shard<T> = HashMap<TokenDigest, Entry<T>, BuildHasherDefault<DigestHasher>>;

pub(crate) struct TokenCache<T> {
    shards: Box<[Mutex<Shard<T>>]>,
    per_shard: usize,
}

impl<T> std::fmt::Debug for TokenCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

pub(crate) fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

impl<T> TokenCache<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard,
        }
    }

    fn shard(&self, digest: &TokenDigest) -> std::sync::MutexGuard<'_, Shard<T>> {
        self.shards[usize::from(digest[31]) % SHARDS]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry for `digest`, if any and still within its time at `now` (Unix seconds).
    pub(crate) fn get(&self, digest: &TokenDigest, now: i64) -> Option<(Verified<T>, usize)> {
        let mut shard = self.shard(digest);
        let entry = shard.get(digest)?;
        if now >= entry.until {
            shard.remove(digest);
            return None;
        }
        Some((entry.verified.clone(), entry.authority))
    }

    /// Forgets `digest` (its key left the key set).
    pub(crate) fn remove(&self, digest: &TokenDigest) {
        self.shard(digest).remove(digest);
    }

    /// Keeps `verified` until `until` (Unix seconds). When the shard is full, expired entries
    /// go first, then an arbitrary one.
    pub(crate) fn insert(
        &self,
        digest: TokenDigest,
        verified: Verified<T>,
        authority: usize,
        until: i64,
        now: i64,
    ) {
        let mut shard = self.shard(&digest);
        if shard.len() >= self.per_shard && !shard.contains_key(&digest) {
            shard.retain(|_, entry| entry.until > now);
            if let Some(victim) = shard
                .keys()
                .next()
                .copied()
                .filter(|_| shard.len() >= self.per_shard)
            {
                shard.remove(&victim);
            }
        }
        shard.insert(
            digest,
            Entry {
                verified,
                authority,
                until,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use palisade_core::{Identity, IdentitySource};

    use super::*;
    use crate::alg::Alg;
    use crate::claims::{Claims, Registered};
    use crate::key::JwtKey;

    fn verified() -> Verified {
        Verified {
            claims: Claims::new(Registered::default(), serde_json::Map::new()).unwrap(),
            identity: Identity::new("ada", IdentitySource::Jwt),
            key: Arc::new(JwtKey::hmac(Alg::HS256, &[7; 32]).unwrap()),
        }
    }

    #[test]
    fn entries_expire_and_the_cache_stays_bounded() {
        let cache = TokenCache::new(32);
        let a = digest("token-a");
        cache.insert(a, verified(), 0, 100, 0);
        assert!(cache.get(&a, 99).is_some());
        assert!(cache.get(&a, 100).is_none(), "not at its expiry");
        assert!(cache.get(&a, 99).is_none(), "removed once expired");
        for i in 0..1000 {
            cache.insert(digest(&format!("t{i}")), verified(), 0, 1000, 0);
        }
        assert!(cache.len() <= 32, "{}", cache.len());
        assert!(cache.get(&digest("another"), 0).is_none());
    }

    #[test]
    fn one_byte_makes_another_entry() {
        let cache = TokenCache::new(8);
        cache.insert(digest("header.payload.sig"), verified(), 0, 100, 0);
        assert!(cache.get(&digest("header.payload.sig"), 1).is_some());
        assert!(cache.get(&digest("header.payload.siG"), 1).is_none());
        cache.remove(&digest("header.payload.sig"));
        assert!(cache.get(&digest("header.payload.sig"), 1).is_none());
    }
}
