//! `RateLimiter`: a sliding-window limit on calls per key, kept as a log of call times in
//! one sorted set and checked by one script (`rate_check.lua`) on the Redis clock.

use std::sync::Arc;
use std::time::Duration;

use super::{check_name, millis};
use crate::connection::Redis;
use crate::error::{Error, Result};
use crate::keys::rate_key;
use crate::scripts::rate_check;

/// Sliding-window rate limits for handlers, under one key prefix. Cheap to clone.
///
/// In a handler it comes from [`crate::Ctx::rate_limiter`]. Here every worker shares the
/// CDN's limit of 100 purges a minute; a refused call is not counted, so waiting for
/// [`RateDecision::reset`] and asking again costs nothing:
///
/// ```no_run
/// use std::time::Duration;
/// use queue_core::{Ctx, Job, JobError};
/// # async fn purge(_url: &str) -> Result<(), JobError> { Ok(()) }
///
/// async fn purge_cdn(job: Job<String>, ctx: Ctx) -> Result<(), JobError> {
///     let limiter = ctx.rate_limiter();
///     loop {
///         let d = limiter.check("cdn-purge", 100, Duration::from_secs(60)).await?;
///         if d.allowed {
///             break;
///         }
///         tokio::time::sleep(d.reset).await; // until the oldest call leaves the window
///     }
///     purge(&job.data).await
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RateLimiter {
    redis: Redis,
    prefix: Arc<str>,
}

/// The answer of [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RateDecision {
    /// Whether this call may go ahead (it was counted); false means it was refused (and
    /// not counted).
    pub allowed: bool,
    /// Calls still allowed in the current window after this one.
    pub remaining: u64,
    /// When the oldest counted call leaves the window, freeing a place (zero if no call
    /// is counted).
    pub reset: Duration,
}

impl RateLimiter {
    /// Rate limits under `prefix` on `redis`.
    pub fn new(redis: Redis, prefix: &str) -> RateLimiter {
        RateLimiter {
            redis,
            prefix: prefix.into(),
        }
    }

    /// One call against the limit of `key`: allowed when fewer than `limit` calls were
    /// allowed in the last `window` (sliding, by the Redis server's clock, to the
    /// microsecond). Only allowed calls are counted, so a caller that retries while
    /// refused does not push its own next chance back.
    pub async fn check(&self, key: &str, limit: u64, window: Duration) -> Result<RateDecision> {
        check_name("rate limit key", key)?;
        if limit == 0 {
            return Err(Error::invalid("rate limit", "0: must be at least 1"));
        }
        let window_ms = millis("rate limit window", window)?;
        // two calls in the same microsecond still need distinct members of the log
        let tag = format!("{:016x}", rand::random::<u64>());
        let (allowed, counted, reset_us) = rate_check::rate_check(
            &self.redis,
            &rate_key(&self.prefix, key),
            limit,
            window_ms,
            &tag,
        )
        .await?;
        Ok(RateDecision {
            allowed: allowed == 1,
            remaining: limit.saturating_sub(counted),
            reset: Duration::from_micros(reset_us),
        })
    }
}
