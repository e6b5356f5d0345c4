//! `Cache`: JSON values with a TTL under one namespace — cache-aside with stampede
//! protection (`get_or_set`), prefix invalidation by SCAN + UNLINK, and hit/miss counters.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::lock::LockGuard;
use super::{check_name, jittered, millis};
use crate::connection::Redis;
use crate::error::{Error, Result};
use crate::keys::{cache_fill_key, cache_key, cache_key_pattern};
use crate::scan::scan_unlink;

/// Lease of the lock a caller of `get_or_set` holds while it computes a missing value. It
/// is renewed while the computation runs, so it only has to outlive a renewal: if the
/// caller dies, a waiter takes over within this time.
const FILL_LEASE: Duration = Duration::from_secs(2);
/// Longest a caller of `get_or_set` waits for another caller's value before computing it
/// itself: a slow computation costs a second one, never an unbounded wait.
const FILL_WAIT: Duration = Duration::from_secs(10);
/// First pause between two looks for another caller's value; it grows by half up to
/// `POLL_MAX`.
const POLL_MIN: Duration = Duration::from_millis(10);
/// Longest pause between two looks for another caller's value.
const POLL_MAX: Duration = Duration::from_millis(200);

/// Hits and misses of a cache, counted in this process since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that found nothing (and, in `get_or_set`, computed the value).
    pub misses: u64,
}

/// What [`Cache::get_or_set`] returns: the value, and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct Cached<T> {
    /// The value.
    pub value: T,
    /// True when served from the cache, including a value another caller computed while
    /// this one waited; false when this call computed it.
    pub hit: bool,
}

/// A JSON cache for handlers: the keys of one namespace under one prefix. Cheap to clone;
/// clones share their hit/miss counters.
///
/// Keys are `{prefix}:cache:{namespace}:{key}`. A namespace must not be empty; one
/// containing `:` overlaps others (`a` would see the keys of `a:b` as its own), so keep
/// namespaces to plain names.
///
/// In a handler, the cache of a namespace comes from [`crate::Ctx::cache`]; elsewhere from
/// [`Cache::new`]. Here a video's probe is computed once per hour for every worker, and a
/// thumbnail URL is kept for a day:
///
/// ```no_run
/// use std::time::Duration;
/// use queue_core::{Ctx, JobError};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Probe {
///     codec: String,
///     seconds: f64,
/// }
/// # async fn ffprobe(_src: &str) -> Result<Probe, JobError> { unimplemented!() }
/// # async fn handler(ctx: Ctx) -> Result<(), JobError> {
///
/// let media = ctx.cache("media");
/// // on a miss one caller runs ffprobe (across processes); the others wait for its value
/// let probe = media
///     .get_or_set("probe:cat.mp4", Duration::from_secs(3600), || ffprobe("cat.mp4"))
///     .await?;
/// println!("{} s of {} (from cache: {})", probe.value.seconds, probe.value.codec, probe.hit);
///
/// media.set("thumb:cat.mp4", "https://cdn.example/cat.jpg", Duration::from_secs(86_400)).await?;
/// let thumb: Option<String> = media.get("thumb:cat.mp4").await?; // None once expired
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    redis: Redis,
    prefix: String,
    namespace: String,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.inner.namespace)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Cache {
    /// The cache of `namespace` under `prefix` on `redis`, with fresh counters.
    pub fn new(redis: Redis, prefix: &str, namespace: &str) -> Cache {
        Cache {
            inner: Arc::new(Inner {
                redis,
                prefix: prefix.to_string(),
                namespace: namespace.to_string(),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    /// The namespace this cache reads and writes.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Hits and misses counted by this cache and its clones so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
        }
    }

    /// The value at `key`, if any (counted as a hit or a miss). A stored value that does
    /// not decode as `T` is an [`Error::CacheValue`] naming the key.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let full = self.key(key)?;
        let value = self.fetch(key, &full).await?;
        self.count(value.is_some());
        Ok(value)
    }

    /// The value at `key`, if any, like [`Cache::get`] but not counted as a hit or a miss:
    /// for a second look at a key already counted (a re-check under a lock, say).
    pub async fn peek<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let full = self.key(key)?;
        self.fetch(key, &full).await
    }

    /// Stores `value` as JSON at `key` for `ttl` (at least 1 ms), replacing any value there.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<()> {
        let full = self.key(key)?;
        let ms = millis("cache ttl", ttl)?;
        let json = serde_json::to_vec(value).map_err(|e| self.value_error(key, "encoded as", e))?;
        let redis = &self.inner.redis;
        let _: redis::Value = redis::cmd("SET")
            .arg(&full)
            .arg(json)
            .arg("PX")
            .arg(ms)
            .query_async(&mut redis.conn())
            .await
            .map_err(|e| redis.err(e))?;
        Ok(())
    }

    /// Removes the value at `key`; false when there was none.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let full = self.key(key)?;
        let redis = &self.inner.redis;
        let removed: u64 = redis::cmd("DEL")
            .arg(&full)
            .query_async(&mut redis.conn())
            .await
            .map_err(|e| redis.err(e))?;
        Ok(removed > 0)
    }

    /// Cache-aside with stampede protection: the value at `key`, or else the value of
    /// `compute`, stored for `ttl` and returned.
    ///
    /// On a miss one caller computes while the others wait for its value, per key and
    /// across processes: the computing caller holds a short lock on the key (renewed while
    /// `compute` runs), the others look for the value with growing pauses (10 ms to
    /// 200 ms). If the computing caller dies, its lock expires within 2 s and a waiter
    /// computes; if it fails, the next waiter computes; a waiter that has waited 10 s
    /// computes itself. A failed `compute` stores nothing and its error is returned.
    ///
    /// A stored value that no longer decodes as `T` (its type changed since it was
    /// written, say) is logged as a warning and treated as a miss: the value is computed
    /// again and overwritten, rather than every call failing until the TTL ends.
    ///
    /// Counts one hit or one miss per call: a miss when this call computed the value.
    pub async fn get_or_set<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        compute: F,
    ) -> std::result::Result<Cached<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        let full = self.key(key)?;
        millis("cache ttl", ttl)?;
        let mut warned = false;
        if let Some(value) = self.fetch_usable(key, &full, &mut warned).await? {
            return Ok(self.hit(value));
        }
        let fill_key = cache_fill_key(&self.inner.prefix, &self.inner.namespace, key);
        let redis = &self.inner.redis;
        let started = Instant::now();
        let mut pause = POLL_MIN;
        let guard = loop {
            if let Some(guard) =
                LockGuard::try_acquire(redis, &fill_key, fill_key.clone(), FILL_LEASE).await?
            {
                // the caller that held the lock before may have stored the value just now
                if let Some(value) = self.fetch_usable(key, &full, &mut warned).await? {
                    release_fill(guard).await;
                    return Ok(self.hit(value));
                }
                break Some(guard);
            }
            if started.elapsed() >= FILL_WAIT {
                tracing::warn!(
                    namespace = %self.inner.namespace,
                    key,
                    waited = ?FILL_WAIT,
                    "another caller is still computing this cache value: computing it here too"
                );
                break None;
            }
            tokio::time::sleep(jittered(pause)).await;
            pause = pause.mul_f64(1.5).min(POLL_MAX);
            if let Some(value) = self.fetch_usable(key, &full, &mut warned).await? {
                return Ok(self.hit(value));
            }
        };
        self.count(false);
        let computed = match &guard {
            Some(guard) => guard.hold_while(FILL_LEASE, compute()).await,
            None => compute().await,
        };
        let stored = match &computed {
            Ok(value) => self.set(key, value, ttl).await,
            Err(_) => Ok(()),
        };
        // after the store, so a waiter that takes the lock next finds the value
        if let Some(guard) = guard {
            release_fill(guard).await;
        }
        let value = computed?;
        stored?;
        Ok(Cached { value, hit: false })
    }

    /// Removes every key of this namespace that starts with `key_prefix` (all of them for
    /// `""`) and returns how many were removed. The prefix is matched literally (`*`, `?`
    /// and `[` in it are escaped). Walks the keyspace with SCAN and removes each batch with
    /// UNLINK, never KEYS, so Redis is never blocked for long; keys written while it runs
    /// may or may not be removed.
    pub async fn invalidate_prefix(&self, key_prefix: &str) -> Result<u64> {
        check_name("cache namespace", &self.inner.namespace)?;
        let pattern = cache_key_pattern(&self.inner.prefix, &self.inner.namespace, key_prefix);
        scan_unlink(&self.inner.redis, &pattern).await
    }

    /// The Redis key of `key`, once namespace and key are known not to be empty.
    fn key(&self, key: &str) -> Result<String> {
        check_name("cache namespace", &self.inner.namespace)?;
        check_name("cache key", key)?;
        Ok(cache_key(&self.inner.prefix, &self.inner.namespace, key))
    }

    /// Reads and decodes the value at `full` (the Redis key of `key`), counting nothing.
    async fn fetch<T: DeserializeOwned>(&self, key: &str, full: &str) -> Result<Option<T>> {
        let redis = &self.inner.redis;
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(full)
            .query_async(&mut redis.conn())
            .await
            .map_err(|e| redis.err(e))?;
        raw.map(|json| {
            serde_json::from_slice(&json).map_err(|e| self.value_error(key, "decoded from", e))
        })
        .transpose()
    }

    /// [`Cache::fetch`] for `get_or_set`: a value that does not decode is a miss (to be
    /// computed again and overwritten), warned about once per call (`warned`).
    async fn fetch_usable<T: DeserializeOwned>(
        &self,
        key: &str,
        full: &str,
        warned: &mut bool,
    ) -> Result<Option<T>> {
        match self.fetch(key, full).await {
            Err(e @ Error::CacheValue { .. }) => {
                if !std::mem::replace(warned, true) {
                    tracing::warn!(
                        namespace = %self.inner.namespace,
                        key,
                        error = %e,
                        "cached value does not decode: computing it again to overwrite it"
                    );
                }
                Ok(None)
            }
            other => other,
        }
    }

    fn hit<T>(&self, value: T) -> Cached<T> {
        self.count(true);
        Cached { value, hit: true }
    }

    fn count(&self, hit: bool) {
        let counter = if hit {
            &self.inner.hits
        } else {
            &self.inner.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn value_error(&self, key: &str, action: &'static str, source: serde_json::Error) -> Error {
        Error::CacheValue {
            namespace: self.inner.namespace.clone(),
            key: key.to_string(),
            action,
            source,
        }
    }
}

/// Gives the stampede lock back; if that fails it expires with its short lease anyway.
async fn release_fill(guard: LockGuard) {
    let name = guard.name().to_string();
    if let Err(e) = guard.release().await {
        tracing::debug!(lock = %name, error = %e, "could not release cache fill lock");
    }
}

/// The caches of one worker, one shared [`Cache`] per namespace, so hit/miss counters add
/// up over every job the worker runs. Cheap to clone; clones see the same caches.
#[derive(Debug, Clone, Default)]
pub struct Caches {
    by_namespace: Arc<Mutex<HashMap<String, Cache>>>,
}

impl Caches {
    /// The cache of `namespace`, created on first use.
    pub(crate) fn get(&self, redis: &Redis, prefix: &str, namespace: &str) -> Cache {
        let mut caches = self
            .by_namespace
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        caches
            .entry(namespace.to_string())
            .or_insert_with(|| Cache::new(redis.clone(), prefix, namespace))
            .clone()
    }

    /// Hit/miss counters of every namespace used so far, sorted by namespace.
    pub fn stats(&self) -> Vec<(String, CacheStats)> {
        let caches = self
            .by_namespace
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut stats: Vec<_> = caches
            .iter()
            .map(|(namespace, cache)| (namespace.clone(), cache.stats()))
            .collect();
        stats.sort_by(|a, b| a.0.cmp(&b.0));
        stats
    }
}
