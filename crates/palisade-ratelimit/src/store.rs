//! The keyed state behind each limit: bounded, reclaiming idle keys as it goes.
//!
//! Keys are 64-bit hashes (seeded per process: a client cannot aim two keys at one bucket),
//! kept in 64 shards of plain hash maps, each entry the key's theoretical arrival time. A
//! shard holds at most `capacity / 64` keys. When a new key finds its shard full, the shard
//! first drops every key whose state is indistinguishable from a fresh one (its permits all
//! came back) — at most once per emission interval, so a full shard of active keys is not
//! scanned per request — and then, if still full, [`WhenFull`] decides.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use governor::nanos::Nanos;

const SHARDS: usize = 64;

/// What a new key gets when the store is full of keys that are still limited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum WhenFull {
    /// Evict the least recently limited of a few sampled keys (its state resets, as if it
    /// had been quiet): memory stays bounded and new clients are served. The default.
    #[default]
    EvictLeastRecent,
    /// Refuse the new key (`429`) until room frees up: no key's state is ever lost, but under a
    /// flood of distinct keys new clients are refused.
    RejectNew,
    /// Admit the new key's request without tracking it: nobody is refused, but such requests
    /// are not limited while the store is full.
    AdmitUntracked,
}

/// The key is already a seeded hash.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type Shard = HashMap<u64, u64, BuildHasherDefault<PassThrough>>;

struct ShardState {
    map: Shard,
    /// The time (limiter nanos) before which the shard is not swept again.
    next_sweep: u64,
}

/// Why a check could not use the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// Refuse (policy `RejectNew`).
    Reject,
    /// Admit untracked (policy `AdmitUntracked`).
    Admit,
}

/// The bounded keyed store.
pub(crate) struct BoundedStore {
    shards: Box<[Mutex<ShardState>]>,
    per_shard: usize,
    when_full: WhenFull,
    /// The emission interval, in nanos: the shortest gap between two sweeps of a shard.
    interval: AtomicU64,
    len: AtomicUsize,
}

impl std::fmt::Debug for BoundedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedStore")
            .field("capacity", &(self.per_shard * SHARDS))
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("when_full", &self.when_full)
            .finish_non_exhaustive()
    }
}

impl BoundedStore {
    pub(crate) fn new(capacity: usize, when_full: WhenFull, interval: u64) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(ShardState {
                        map: Shard::default(),
                        next_sweep: 0,
                    })
                })
                .collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            when_full,
            interval: AtomicU64::new(interval.max(1)),
            len: AtomicUsize::new(0),
        }
    }

    #[inline]
    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, ShardState> {
        // Middle bits pick the shard: the map's table uses the low bits for the bucket and
        // the top seven for its tags, which must still vary within a shard.
        self.shards[(key >> 32) as usize % SHARDS]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keys tracked now.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// The capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// The stored arrival time of `key`, if tracked (for a peek without a charge).
    pub(crate) fn get(&self, key: u64) -> Option<u64> {
        self.shard(key).map.get(&key).copied()
    }

    /// `f` on the key's state, storing what it returns; when a new key finds the shard full,
    /// `Err(full)` says what the policy decided instead of calling `f` for the store. `now`
    /// (the same clock as the stored times) is read only then, to sweep recovered keys.
    #[inline]
    pub(crate) fn update<T, E>(
        &self,
        key: u64,
        now: impl FnOnce() -> u64,
        f: impl Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    ) -> Result<Result<T, E>, Full> {
        let mut shard = self.shard(key);
        if let Some(tat) = shard.map.get_mut(&key) {
            return Ok(f(Some(Nanos::from(*tat))).map(|(value, next)| {
                *tat = next.as_u64();
                value
            }));
        }
        let (value, next) = match f(None) {
            Ok(decided) => decided,
            Err(refused) => return Ok(Err(refused)),
        };
        let next = next.as_u64();
        if shard.map.len() >= self.per_shard {
            let interval = self.interval.load(Ordering::Relaxed);
            let now = now();
            if now >= shard.next_sweep {
                let before = shard.map.len();
                shard.map.retain(|_, tat| *tat > now);
                shard.next_sweep = now + interval;
                self.len
                    .fetch_sub(before - shard.map.len(), Ordering::Relaxed);
            }
            if shard.map.len() >= self.per_shard {
                match self.when_full {
                    WhenFull::RejectNew => return Err(Full::Reject),
                    WhenFull::AdmitUntracked => return Err(Full::Admit),
                    WhenFull::EvictLeastRecent => {
                        // Of a few sampled keys, the one whose permits come back soonest.
                        let victim = shard
                            .map
                            .iter()
                            .take(8)
                            .min_by_key(|(_, tat)| **tat)
                            .map(|(k, _)| *k);
                        if let Some(victim) = victim {
                            shard.map.remove(&victim);
                            self.len.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        shard.map.insert(key, next);
        self.len.fetch_add(1, Ordering::Relaxed);
        Ok(Ok(value))
    }

    /// A new emission interval (the quota changed).
    pub(crate) fn set_interval(&self, interval: u64) {
        self.interval.store(interval.max(1), Ordering::Relaxed);
    }

    /// Rewrites every arrival time with `f` (a new limiter, a new quota).
    pub(crate) fn rebase(&self, f: impl Fn(u64) -> u64) {
        for shard in &*self.shards {
            let mut shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for tat in shard.map.values_mut() {
                *tat = f(*tat);
            }
            shard.next_sweep = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(store: &BoundedStore, key: u64, now: u64) -> Result<Result<(), ()>, Full> {
        store.update(
            key,
            || now,
            |tat| {
                let tat = tat.map_or(now, Nanos::as_u64).max(now);
                Ok::<_, ()>(((), Nanos::from(tat + 10)))
            },
        )
    }

    #[test]
    fn idle_keys_are_reclaimed_when_the_shard_fills() {
        // 64 keys over 64 shards: one per shard; keys 0..4 share shard 0.
        let store = BoundedStore::new(64, WhenFull::RejectNew, 10);
        assert_eq!(admit(&store, 0, 0), Ok(Ok(())));
        assert_eq!(
            admit(&store, 1, 0),
            Err(Full::Reject),
            "full of a key still limited"
        );
        assert_eq!(store.get(1), None);
        // Once key 0's permits are back, its state is reclaimed and key 1 fits.
        assert_eq!(admit(&store, 1, 100), Ok(Ok(())));
        assert_eq!(store.get(0), None);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn the_policies_when_full() {
        let evict = BoundedStore::new(64, WhenFull::EvictLeastRecent, 1_000_000);
        admit(&evict, 1, 0).unwrap().unwrap();
        assert_eq!(admit(&evict, 2, 0), Ok(Ok(())));
        assert_eq!(evict.len(), 1);
        assert!(evict.get(2).is_some());
        let open = BoundedStore::new(64, WhenFull::AdmitUntracked, 1_000_000);
        admit(&open, 1, 0).unwrap().unwrap();
        assert_eq!(admit(&open, 2, 0), Err(Full::Admit));
        assert_eq!(open.get(2), None);
    }
}
