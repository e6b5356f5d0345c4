//! `lock_release.lua`: compare-and-delete of a handler lock: someone else's lock is left alone.

use super::invoke;
use crate::connection::Redis;
use crate::error::Result;

standalone_script!(SCRIPT, "lock_release.lua");

/// Deletes lock `key` if it still holds `token`; whether it did.
pub(crate) async fn lock_release(redis: &Redis, key: &str, token: &str) -> Result<bool> {
    let released: i64 = invoke(redis, SCRIPT.key(key).arg(token)).await?;
    Ok(released == 1)
}
