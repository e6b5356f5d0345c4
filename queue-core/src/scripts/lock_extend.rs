//! `lock_extend.lua`: compare-and-pexpire of a handler lock: renewed only while still ours.

use super::invoke;
use crate::connection::Redis;
use crate::error::Result;

standalone_script!(SCRIPT, "lock_extend.lua");

/// Renews lock `key` for `ttl_ms` if it still holds `token`; whether it did.
pub(crate) async fn lock_extend(
    redis: &Redis,
    key: &str,
    token: &str,
    ttl_ms: u64,
) -> Result<bool> {
    let renewed: i64 = invoke(redis, SCRIPT.key(key).arg(token).arg(ttl_ms)).await?;
    Ok(renewed == 1)
}
