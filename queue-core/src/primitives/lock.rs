//! `Lock`: a named mutual-exclusion lease in Redis. Acquiring is one `SET NX PX` with a
//! random token; releasing and renewing are compare-and-delete / compare-and-pexpire
//! scripts, so an owner whose lease ran out can never release or renew the lock of the
//! owner that took it next.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::{check_name, jittered, millis};
use crate::connection::Redis;
use crate::error::{Error, Result};
use crate::keys::lock_key;
use crate::scripts::{lock_extend, lock_release};

/// First pause between two tries of [`Lock::acquire_within`]; it doubles up to `RETRY_MAX`.
const RETRY_MIN: Duration = Duration::from_millis(5);
/// Longest pause between two tries of [`Lock::acquire_within`].
const RETRY_MAX: Duration = Duration::from_millis(100);

/// Named locks for handlers, under one key prefix. Cheap to clone.
///
/// A lock is a lease: it is held for a TTL and lost when the TTL runs out, so a holder that
/// dies never blocks others for longer than that. [`Lock::with_lock`] renews it while its
/// future runs (and waits as long as the lease for the lock to come free).
///
/// In a handler, locks come from [`crate::Ctx::lock`]; elsewhere (a publishing script,
/// say) from [`Lock::new`]:
///
/// ```no_run
/// use std::time::Duration;
/// use queue_core::{Config, Lock, Redis};
/// # async fn publish(_title: &str) -> queue_core::Result<String> { unimplemented!() }
/// # async fn demo() -> queue_core::Result<()> {
/// # let config = Config::from_env()?;
///
/// let redis = Redis::connect(&config).await?;
/// let locks = Lock::new(redis, config.prefix());
/// // one publish of a title at a time, across every process
/// let published = locks
///     .with_lock("publish:title-42", Duration::from_secs(30), publish("title-42"))
///     .await?; // Err: Redis failed, or the lock was still held after 30 s
/// println!("published at {}", published?); // publish's own result
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Lock {
    redis: Redis,
    prefix: Arc<str>,
}

impl Lock {
    /// Locks under `prefix` on `redis`.
    pub fn new(redis: Redis, prefix: &str) -> Lock {
        Lock {
            redis,
            prefix: prefix.into(),
        }
    }

    /// Tries once to take lock `name` for `ttl`: `None` when someone else holds it.
    pub async fn acquire(&self, name: &str, ttl: Duration) -> Result<Option<LockGuard>> {
        check_name("lock name", name)?;
        LockGuard::try_acquire(&self.redis, name, lock_key(&self.prefix, name), ttl).await
    }

    /// Tries to take lock `name` for `ttl` until `wait` has passed, pausing a few
    /// (jittered) milliseconds between tries: `None` when it did not come free in time.
    pub async fn acquire_within(
        &self,
        name: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Option<LockGuard>> {
        check_name("lock name", name)?;
        let key = lock_key(&self.prefix, name);
        let deadline = Instant::now() + wait;
        let mut pause = RETRY_MIN;
        loop {
            if let Some(guard) = LockGuard::try_acquire(&self.redis, name, key.clone(), ttl).await?
            {
                return Ok(Some(guard));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(jittered(pause).min(deadline - now)).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// Runs `fut` while holding lock `name`, renewing the lease every `ttl / 3` while `fut`
    /// runs and releasing it after.
    ///
    /// **`ttl` is also how long it waits for the lock.** If another holder has it, this
    /// waits up to `ttl` for it to come free (so a call with a 30 s lease may sit 30 s
    /// before `fut` even starts); if it does not, the result is
    /// [`Error::LockNotAcquired`] naming the lock, and `fut` is not run. To wait less (or
    /// not at all) use [`Lock::acquire_within`] or [`Lock::acquire`] and release the guard
    /// yourself.
    ///
    /// The renewal runs as a task of its own, so it goes on even while `fut` blocks its
    /// thread — provided the runtime has another thread to run it on (a current-thread
    /// runtime blocked by `fut` cannot renew anything). If this future is dropped before
    /// `fut` ends, renewal stops and the lock expires with its lease (a drop cannot talk to
    /// Redis to release it).
    ///
    /// If a renewal finds the lock lost (Redis was unreachable for longer than the lease,
    /// say), a warning is logged and `fut` keeps running: it is not cancelled halfway.
    /// A failed release is logged too; the lock then expires with its lease.
    pub async fn with_lock<T, F: Future<Output = T>>(
        &self,
        name: &str,
        ttl: Duration,
        fut: F,
    ) -> Result<T> {
        let guard =
            self.acquire_within(name, ttl, ttl)
                .await?
                .ok_or_else(|| Error::LockNotAcquired {
                    name: name.to_string(),
                    waited: crate::duration::format_duration(ttl),
                })?;
        let out = guard.hold_while(ttl, fut).await;
        match guard.release().await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                lock = %name,
                "lock had expired or been taken before its holder released it"
            ),
            Err(e) => tracing::warn!(
                lock = %name,
                error = %e,
                "could not release lock: it expires with its lease"
            ),
        }
        Ok(out)
    }
}

/// A held lock. [`LockGuard::release`] gives it back; a guard dropped without release
/// does nothing (dropping cannot talk to Redis): the lock simply expires when its TTL runs
/// out.
pub struct LockGuard {
    redis: Redis,
    name: String,
    key: String,
    token: String,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("token", &self.token)
            .finish()
    }
}

impl LockGuard {
    /// One `SET key token NX PX ttl` with a fresh random token. `name` is what messages and
    /// logs call the lock.
    pub(crate) async fn try_acquire(
        redis: &Redis,
        name: &str,
        key: String,
        ttl: Duration,
    ) -> Result<Option<LockGuard>> {
        let ms = millis("lock ttl", ttl)?;
        let token = format!("{:032x}", rand::random::<u128>());
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .query_async(&mut redis.conn())
            .await
            .map_err(|e| redis.err(e))?;
        Ok(set.map(|_| LockGuard {
            redis: redis.clone(),
            name: name.to_string(),
            key,
            token,
        }))
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The random token that marks this owner in Redis.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Sets the lease to `ttl` from now if the lock is still ours; `false` when it has
    /// expired or someone else holds it now.
    pub async fn extend(&self, ttl: Duration) -> Result<bool> {
        let ms = millis("lock ttl", ttl)?;
        lock_extend::lock_extend(&self.redis, &self.key, &self.token, ms).await
    }

    /// Deletes the lock if it is still ours; `false` when it had expired or been taken by
    /// someone else (whose lock is left alone).
    pub async fn release(self) -> Result<bool> {
        lock_release::lock_release(&self.redis, &self.key, &self.token).await
    }

    /// Runs `fut` to completion while a task of its own renews the lease (`lease` long)
    /// every third of it. The renewal is a separate task so that it keeps going even while
    /// `fut` blocks its thread (on a multi-threaded runtime); it stops when `fut` has
    /// finished, and also when this future is dropped unfinished (the lock then expires
    /// with its lease).
    pub(crate) async fn hold_while<T>(&self, lease: Duration, fut: impl Future<Output = T>) -> T {
        let renewal = Renewal::start(self.renewer(), lease);
        let out = fut.await;
        renewal.stop().await;
        out
    }

    /// A copy of this guard for the renewal task. Guards do nothing on drop, so the copy
    /// only lends the task the key and token; `release` stays with the original.
    fn renewer(&self) -> LockGuard {
        LockGuard {
            redis: self.redis.clone(),
            name: self.name.clone(),
            key: self.key.clone(),
            token: self.token.clone(),
        }
    }

    /// Renews the lease every `lease / 3`, forever. A lost lock is logged once and no
    /// longer renewed; a failed renewal (Redis unreachable) is logged and retried.
    async fn keep_alive(self, lease: Duration) {
        let every = (lease / 3).max(Duration::from_millis(1));
        loop {
            tokio::time::sleep(every).await;
            match self.extend(lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        lock = %self.name,
                        "lock lost while its holder still runs (lease expired or taken): \
                         continuing without it"
                    );
                    return;
                }
                Err(e) => tracing::warn!(
                    lock = %self.name,
                    error = %e,
                    "could not renew lock; retrying"
                ),
            }
        }
    }
}

/// The task renewing a held lock. Dropping it aborts the task, so a `with_lock` future
/// dropped halfway (a job timeout, say) stops renewing the lock it can no longer release.
struct Renewal {
    task: JoinHandle<()>,
}

impl Renewal {
    fn start(guard: LockGuard, lease: Duration) -> Renewal {
        Renewal {
            task: tokio::spawn(guard.keep_alive(lease)),
        }
    }

    /// Aborts the task and waits until it is gone, so that no renewal can follow the
    /// release that comes next.
    async fn stop(mut self) {
        self.task.abort();
        // whether it was cancelled just now or had stopped on finding the lock lost (and
        // logged it), there is nothing left to report
        let _ = (&mut self.task).await;
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.task.abort();
    }
}
