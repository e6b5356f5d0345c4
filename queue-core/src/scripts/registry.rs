//! The registry of queue names (`{prefix}:queues`): added to by adds and workers, read by
//! `jobq stats` and the dashboard.

use crate::connection::Redis;
use crate::error::{Error, Result};
use crate::keys::queue_registry;
use crate::store::QueueStore;
use crate::validate::validate_queue_name;

/// Puts the queue's name in the registry (once per handle), so `stats` and the
/// dashboard list it without SCAN. Done by adds and by workers, not by reads: looking
/// at a queue that does not exist must not make it appear.
pub(crate) async fn register(q: &QueueStore) -> Result<()> {
    use std::sync::atomic::Ordering;
    if q.registered.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut c = q.redis.conn();
    let added: redis::RedisResult<i64> = redis::cmd("SADD")
        .arg(queue_registry(&q.prefix))
        .arg(&q.name)
        .query_async(&mut c)
        .await;
    match added {
        Ok(_) => {}
        // a registry of the wrong type (a corrupt record) only keeps this queue out of the
        // listings: never a reason to refuse its adds or stop its workers
        Err(e) if e.code() == Some("WRONGTYPE") => tracing::warn!(
            registry = %queue_registry(&q.prefix), queue = %q.name,
            "the queue registry is not a set (a corrupt record): delete it, and adds and \
             workers register their queues again"
        ),
        Err(e) => return Err(q.redis.err(e)),
    }
    q.registered.store(true, Ordering::Relaxed);
    Ok(())
}

/// [`register`] even when this handle registered the queue already: for writes that must
/// never leave stored data out of the listings (a schedule upserted by a long-lived process,
/// such as the dashboard, after the queue was obliterated from elsewhere: the handle still
/// believed it registered, and the schedule fired while no listing showed the queue).
pub(crate) async fn register_again(q: &QueueStore) -> Result<()> {
    q.registered
        .store(false, std::sync::atomic::Ordering::Relaxed);
    register(q).await
}

/// Every queue registered under `prefix`, sorted. A member that is not a valid queue
/// name (written by hand or by something else: no jobq process registers one) is left out
/// with a warning, so one bad member never fails the listing of every queue.
pub(crate) async fn list_queues(redis: &Redis, prefix: &str) -> Result<Vec<String>> {
    let mut conn = redis.conn();
    // bytes, not text: a member that is not UTF-8 is skipped, not fatal
    let members: Vec<Vec<u8>> = match redis::cmd("SMEMBERS")
        .arg(queue_registry(prefix))
        .query_async(&mut conn)
        .await
    {
        Ok(m) => m,
        Err(e) if e.code() == Some("WRONGTYPE") => {
            return Err(Error::Protocol(format!(
                "the queue registry {} is not a set (a corrupt record): delete it, and adds \
                 and workers register their queues again",
                queue_registry(prefix)
            )))
        }
        Err(e) => return Err(redis.err(e)),
    };
    let mut names: Vec<String> = members
        .into_iter()
        .filter_map(|m| {
            let name = String::from_utf8_lossy(&m).into_owned();
            match validate_queue_name(&name) {
                Ok(()) => Some(name),
                Err(e) => {
                    tracing::warn!(registry = %queue_registry(prefix), error = ?e.to_string(),
                        "skipping a queue registry member that is not a queue name");
                    None
                }
            }
        })
        .collect();
    names.sort();
    Ok(names)
}
