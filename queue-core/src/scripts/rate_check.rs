//! `rate_check.lua`: a sliding-window log by Redis' clock: counts the call if the window has
//! room, refuses (without counting) otherwise.

use super::invoke;
use crate::connection::Redis;
use crate::error::Result;

standalone_script!(SCRIPT, "rate_check.lua");

/// Checks (and counts when allowed) one call against `limit` per `window_ms` on `key`;
/// (allowed 1/0, calls counted in the window, µs until the window frees a slot).
pub(crate) async fn rate_check(
    redis: &Redis,
    key: &str,
    limit: u64,
    window_ms: u64,
    tag: &str,
) -> Result<(i64, u64, u64)> {
    invoke(redis, SCRIPT.key(key).arg(limit).arg(window_ms).arg(tag)).await
}
