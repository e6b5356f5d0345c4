//! Primitives for handlers, over the same Redis connection as the queues: a JSON
//! [`Cache`] with stampede protection, a [`Lock`] with fenced release and renewal, and a
//! sliding-window [`RateLimiter`]. Every operation touches a single key, so all of them work
//! on Redis Cluster; key names come from [`crate::keys`].

mod cache;
mod lock;
mod rate_limit;

pub use cache::{Cache, CacheStats, Cached, Caches};
pub use lock::{Lock, LockGuard};
pub use rate_limit::{RateDecision, RateLimiter};

use std::time::Duration;

use crate::error::{Error, Result};

/// Longest TTL, lease or window accepted: far beyond any sensible use, well inside what
/// Redis's `PX` and `PEXPIRE` take.
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Rejects an empty key, name or namespace.
fn check_name(what: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(what, "\"\": must not be empty"));
    }
    Ok(())
}

/// A TTL, lease or window in whole milliseconds: at least 1 ms, at most 100 years.
fn millis(what: &'static str, d: Duration) -> Result<u64> {
    if d < Duration::from_millis(1) || d > MAX_DURATION {
        return Err(Error::invalid(
            what,
            format!("{d:?}: must be between 1ms and 100 years"),
        ));
    }
    Ok(d.as_millis() as u64)
}

/// A pause of between half and all of `d`, so callers retrying in step spread out.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named() {
        let err = check_name("lock name", "").unwrap_err().to_string();
        assert!(err.contains("lock name") && err.contains("\"\""), "{err}");
        let err = millis("cache ttl", Duration::ZERO).unwrap_err().to_string();
        assert!(err.contains("cache ttl") && err.contains("0ns"), "{err}");
        assert!(millis("ttl", Duration::from_micros(999)).is_err());
        assert!(millis("ttl", Duration::MAX).is_err());
        assert_eq!(millis("ttl", Duration::from_millis(1500)).unwrap(), 1500);
    }
}
