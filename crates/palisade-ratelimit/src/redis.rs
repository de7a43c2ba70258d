//! The shared backend (feature `redis`): GCRA in one atomic Lua script per check, on the Redis
//! server's clock, so every instance of a service shares one quota per key.
//!
//! - **One round trip**: `EVALSHA` of one script per check (the `redis` crate falls back to
//!   loading it on `NOSCRIPT`), reading and writing a single key, so it runs on Redis Cluster
//!   and Valkey alike; the key expires once its permits are all back.
//! - **Server clock**: the script reads `TIME`, so instances' clocks need not agree. Writing
//!   after `TIME` needs effects replication: Redis 5 or later (or Valkey).
//! - **Connections**: a multiplexed, auto-reconnecting `ConnectionManager`, or (feature
//!   `redis-cluster`) the cluster client, which routes each key to its slot's node.
//! - **Failures**: each call has a timeout; when Redis does not answer in time or errs,
//!   [`FailurePolicy`] decides (fail open by default, with a warning and a metric).
//! - **Lease mode** ([`RedisStore::lease`]): each instance takes permits from Redis `batch` at
//!   a time and spends them locally, one Redis call per `batch` requests. A lease lives at most
//!   `batch` emission intervals. Permits are taken before they are spent, so a key is never
//!   granted more than its quota by Redis; what changes is when: leased permits may be spent up
//!   to a lease's life after Redis counted them, so in any window of the quota's period a key
//!   can see at most `instances × (batch − 1)` requests more than the quota. Leases are held
//!   per tier and key; a request costing more than one permit always asks Redis.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;

use crate::limiter::Decision;
use crate::quota::Quota;

/// The GCRA, atomically, on the server's clock: grants up to `want` permits if at least
/// `need` are free (a plain check asks `want = need = cost`; a lease asks for a batch and takes
/// what is there). Microseconds: exact in a Lua number for centuries. Returns
/// `{granted, retry_after_us, reset_us}`.
pub const GCRA_SCRIPT: &str = r"
local key = KEYS[1]
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local need = tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', key) or now)
if tat < now then tat = now end
if t * (need - 1) > tau then
  return {0, -1, tat - now}
end
local room = math.floor((now + tau - tat) / t) + 1
if room < need then
  return {0, tat + t * (need - 1) - tau - now, tat - now}
end
local granted = math.min(room, want)
local next = tat + t * granted
redis.call('SET', key, string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1)
return {granted, 0, next - now}
";

/// What to do when Redis does not answer in time or fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum FailurePolicy {
    /// Admit the request (logged at `warn`, counted as
    /// `palisade_ratelimit_backend_errors_total`): Redis being down does not take the service
    /// down. The default.
    #[default]
    FailOpen,
    /// Refuse the request with `503`: nothing passes unlimited.
    FailClosed,
}

#[derive(Clone)]
enum Connection {
    Single(redis::aio::ConnectionManager),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

/// Why a backend check had no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackendError {
    Timeout,
    Redis,
}

/// A Redis-backed store for a tier; see the [module documentation](self).
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    script: Arc<Script>,
    prefix: Arc<str>,
    timeout: Duration,
    failure: FailurePolicy,
    lease: Option<Arc<Leases>>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("failure", &self.failure)
            .field("lease", &self.lease.as_ref().map(|l| l.batch))
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on one Redis (or Valkey) server, with an auto-reconnecting multiplexed
    /// connection. Keys are `<prefix>:<tier>:<hash>`; the default prefix is `palisade:rl`.
    ///
    /// # Errors
    ///
    /// When the URL does not parse or the first connection fails.
    pub async fn connect(url: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let manager = redis::aio::ConnectionManager::new_with_config(client, config).await?;
        Ok(Self::with_connection(Connection::Single(manager)))
    }

    /// A store on a Redis Cluster, from any of its nodes (feature `redis-cluster`). Each key
    /// lives on its slot's node; one script call touches one key, as the cluster requires.
    ///
    /// # Errors
    ///
    /// When a URL does not parse or the cluster cannot be reached.
    #[cfg(feature = "redis-cluster")]
    pub async fn connect_cluster(urls: &[&str]) -> redis::RedisResult<Self> {
        let client = redis::cluster::ClusterClient::builder(urls.iter().copied())
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(2))
            .build()?;
        let connection = client.get_async_connection().await?;
        Ok(Self::with_connection(Connection::Cluster(connection)))
    }

    fn with_connection(connection: Connection) -> Self {
        Self {
            connection,
            script: Arc::new(Script::new(GCRA_SCRIPT)),
            prefix: Arc::from("palisade:rl"),
            timeout: Duration::from_millis(100),
            failure: FailurePolicy::default(),
            lease: None,
        }
    }

    /// The prefix of every key.
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix);
        self
    }

    /// The longest one check may take (default 100 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What happens when Redis fails.
    #[must_use]
    pub fn on_failure(mut self, policy: FailurePolicy) -> Self {
        self.failure = policy;
        self
    }

    /// Lease mode: take permits `batch` at a time (at least 2; see the module docs).
    #[must_use]
    pub fn lease(mut self, batch: u32) -> Self {
        self.lease = (batch >= 2).then(|| Arc::new(Leases::new(batch)));
        self
    }

    pub(crate) fn failure_policy(&self) -> FailurePolicy {
        self.failure
    }

    /// Charges `cost` to `key` of `tier` under `quota`, on Redis (or from a lease).
    pub(crate) async fn check(
        &self,
        tier: &str,
        key: &str,
        quota: Quota,
        cost: u32,
    ) -> Result<Decision, BackendError> {
        let mut redis_key = String::with_capacity(self.prefix.len() + tier.len() + key.len() + 2);
        for part in [&*self.prefix, ":", tier, ":", key] {
            redis_key.push_str(part);
        }
        if let Some(leases) = self.lease.as_ref().filter(|_| cost == 1) {
            // Leases are held under the Redis key, so per tier and key: two tiers over one
            // store never spend each other's.
            let now = Instant::now();
            if let Some(decision) = leases.take(&redis_key, now) {
                return Ok(decision);
            }
            let batch = leases.batch.min(quota.burst());
            let (granted, mut decision) = self.call(&redis_key, quota, batch, 1).await?;
            if granted > 1 {
                let now = Instant::now();
                let life = quota.emission_interval() * batch;
                let redis_remaining = decision.remaining;
                // What this caller can still spend: the lease, and what Redis had left.
                decision.remaining = redis_remaining.saturating_add(granted - 1);
                leases.put(
                    &redis_key,
                    Lease {
                        left: granted - 1,
                        until: now + life,
                        redis_remaining,
                        reset_at: now + decision.reset,
                    },
                    now,
                );
            }
            return Ok(decision);
        }
        self.call(&redis_key, quota, cost, cost)
            .await
            .map(|(_, decision)| decision)
    }

    /// One script call on `redis_key`: up to `want` permits if `need` are free; how many were
    /// granted.
    async fn call(
        &self,
        redis_key: &str,
        quota: Quota,
        want: u32,
        need: u32,
    ) -> Result<(u32, Decision), BackendError> {
        // Redis keeps microseconds: the interval rounds up (the rate never rounds up).
        let t = micros_ceil(quota.emission_interval()).max(1);
        let tau = t.saturating_mul(u64::from(quota.burst().saturating_sub(1)));
        let mut invocation = self.script.key(redis_key);
        invocation.arg(t).arg(tau).arg(want).arg(need);
        let call = async {
            match &self.connection {
                Connection::Single(manager) => {
                    let mut connection = manager.clone();
                    invocation
                        .invoke_async::<(i64, i64, i64)>(&mut connection)
                        .await
                }
                #[cfg(feature = "redis-cluster")]
                Connection::Cluster(cluster) => {
                    let mut connection = cluster.clone();
                    invocation
                        .invoke_async::<(i64, i64, i64)>(&mut connection)
                        .await
                }
            }
        };
        let (granted, retry_after, reset) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| BackendError::Timeout)?
            .map_err(|_| BackendError::Redis)?;
        let granted = u32::try_from(granted).unwrap_or(0);
        let reset_us = u64::try_from(reset).unwrap_or(0);
        let window = tau + t;
        let remaining = u32::try_from(window.saturating_sub(reset_us) / t).unwrap_or(0);
        let allowed = granted > 0;
        Ok((
            granted,
            Decision {
                allowed,
                remaining: if allowed { remaining } else { 0 },
                reset: Duration::from_micros(reset_us),
                retry_after: (!allowed).then(|| {
                    u64::try_from(retry_after).map_or(quota.period(), Duration::from_micros)
                }),
            },
        ))
    }
}

fn micros_ceil(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1000)).unwrap_or(u64::MAX)
}

/// Permits taken from Redis and not yet spent, per key: 64 shards, each a map of leases and
/// the order they were written in, so expired leases leave from the front a few at a time as
/// leases are taken and written. Every take and put costs the same however many leases are
/// held; at most [`MAX_LEASES`] are (past it, the oldest is dropped: its permits go unspent,
/// never overspent).
struct Leases {
    batch: u32,
    shards: Box<[Mutex<LeaseShard>]>,
    hasher: foldhash::fast::FixedState,
}

/// One lease: permits left to spend until `until`, and what Redis said when it was granted.
#[derive(Clone, Copy, Debug)]
struct Lease {
    left: u32,
    until: Instant,
    /// Permits Redis still had for the key, beyond the lease, when it was granted.
    redis_remaining: u32,
    /// When Redis said the key's quota would be whole again.
    reset_at: Instant,
}

#[derive(Default)]
struct LeaseShard {
    held: HashMap<Arc<str>, Lease>,
    /// Keys in the order their leases were written, with each lease's end. An entry whose
    /// key holds a newer lease (or none) is stale and skipped when it reaches the front.
    order: VecDeque<(Arc<str>, Instant)>,
}

/// The most leases held at once, over all shards.
const MAX_LEASES: usize = 100_000;
const LEASE_SHARDS: usize = 64;
const PER_SHARD: usize = MAX_LEASES / LEASE_SHARDS;
/// Expired leases dropped from the front per take or put: more than one is written per put, so
/// the order never grows past what is live, in amortised constant time.
const EXPIRE_PER_CALL: usize = 4;

impl Leases {
    fn new(batch: u32) -> Self {
        Self {
            batch,
            shards: (0..LEASE_SHARDS)
                .map(|_| Mutex::new(LeaseShard::default()))
                .collect(),
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, LeaseShard> {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        // The hash's top bits pick the shard (the map uses its own hasher).
        #[allow(clippy::cast_possible_truncation, reason = "six bits")]
        let index = (hash >> 58) as usize % LEASE_SHARDS;
        self.shards
            .get(index)
            .unwrap_or_else(|| unreachable!("64 shards"))
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Spends one permit of `key`'s lease, if it holds a live one: the decision, with the
    /// permits really left (the lease's and what Redis had).
    fn take(&self, key: &str, now: Instant) -> Option<Decision> {
        let mut shard = self.shard(key);
        shard.expire(now, EXPIRE_PER_CALL);
        let lease = shard.held.get_mut(key)?;
        if lease.left == 0 || now >= lease.until {
            shard.held.remove(key);
            return None;
        }
        lease.left -= 1;
        Some(Decision {
            allowed: true,
            remaining: lease.left.saturating_add(lease.redis_remaining),
            reset: lease.reset_at.saturating_duration_since(now),
            retry_after: None,
        })
    }

    fn put(&self, key: &str, lease: Lease, now: Instant) {
        let mut shard = self.shard(key);
        shard.expire(now, EXPIRE_PER_CALL);
        if !shard.held.contains_key(key) {
            while shard.held.len() >= PER_SHARD {
                if !shard.drop_front() {
                    break;
                }
            }
        }
        let key: Arc<str> = Arc::from(key);
        shard.order.push_back((key.clone(), lease.until));
        shard.held.insert(key, lease);
        // Stale entries of keys leased again and again are bounded too.
        while shard.order.len() > 2 * PER_SHARD {
            shard.drop_front();
        }
    }

    /// How many leases are held (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().map_or(0, |s| s.held.len()))
            .sum()
    }
}

impl LeaseShard {
    /// Drops up to `most` expired leases from the front.
    fn expire(&mut self, now: Instant, most: usize) {
        for _ in 0..most {
            match self.order.front() {
                Some((_, until)) if *until <= now => {
                    self.drop_front();
                }
                _ => return,
            }
        }
    }

    /// Drops the front entry and, if it is its key's current lease, the lease; whether there
    /// was an entry.
    fn drop_front(&mut self) -> bool {
        let Some((key, until)) = self.order.pop_front() else {
            return false;
        };
        if self
            .held
            .get(&key)
            .is_some_and(|lease| lease.until == until)
        {
            self.held.remove(&key);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(left: u32, now: Instant, life: Duration) -> Lease {
        Lease {
            left,
            until: now + life,
            redis_remaining: 5,
            reset_at: now + life,
        }
    }

    /// Issue 16, item 8: lease hits said `r=0` while leased permits remained.
    #[tokio::test(start_paused = true)]
    async fn a_lease_hit_reports_the_permits_left() {
        let leases = Leases::new(4);
        let now = Instant::now();
        leases.put("k", lease(3, now, Duration::from_secs(1)), now);
        let remaining: Vec<_> = (0..4)
            .map(|_| leases.take("k", now).map(|d| d.remaining))
            .collect();
        assert_eq!(remaining, [Some(7), Some(6), Some(5), None]);
        leases.put("k", lease(3, now, Duration::from_secs(1)), now);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(leases.take("k", Instant::now()).is_none(), "expired");
    }

    /// Issue 16, item 8: with 100,000 live leases every new key ran a full `retain` under one
    /// mutex. Expired leases now leave a few at a time, and a full store drops its oldest.
    #[tokio::test(start_paused = true)]
    async fn leases_stay_bounded_and_expire_incrementally() {
        let leases = Leases::new(4);
        let life = Duration::from_millis(100);
        let now = Instant::now();
        for i in 0..MAX_LEASES + 5_000 {
            leases.put(&format!("k{i}"), lease(2, now, life), now);
        }
        assert!(leases.len() <= MAX_LEASES, "{}", leases.len());
        // The newest are held; the oldest were dropped to make room.
        assert!(
            leases
                .take(&format!("k{}", MAX_LEASES + 4_999), now)
                .is_some()
        );
        tokio::time::advance(life).await;
        // Once expired, takes and puts clear them a few at a time.
        let later = Instant::now();
        for i in 0..MAX_LEASES {
            assert!(leases.take(&format!("k{i}"), later).is_none());
        }
        for i in 0..MAX_LEASES / EXPIRE_PER_CALL {
            leases.put(&format!("n{i}"), lease(2, later, life), later);
        }
        assert!(
            leases.len() <= MAX_LEASES / EXPIRE_PER_CALL + LEASE_SHARDS * EXPIRE_PER_CALL * 2,
            "{} left",
            leases.len()
        );
    }
}
