//! The handler lock: one owner at a time, fenced release and renewal by token,
//! expiry of abandoned locks, and `with_lock` renewing while its future runs — against a
//! real Redis.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use jobq_tests::*;
use queue_core::internal::keys::lock_key;
use queue_core::*;

/// A `Lock` on a connection of its own, as another process would have.
async fn lock_on_own_connection(env: &TestEnv) -> Lock {
    let redis = Redis::connect(&env.config).await.unwrap();
    Lock::new(redis, env.config.prefix())
}

async fn holder_token(env: &TestEnv, name: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(lock_key(env.config.prefix(), name))
        .query_async(&mut env.raw().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn primitives_lock_concurrent_lockers_exactly_one_acquires() {
    let env = TestEnv::new().await;
    let a = Lock::new(env.redis.clone(), env.config.prefix());
    let b = lock_on_own_connection(&env).await;
    let ttl = Duration::from_secs(10);
    let (x, y) = tokio::join!(a.acquire("job", ttl), b.acquire("job", ttl));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(
        x.is_some() ^ y.is_some(),
        "exactly one of two acquires: {x:?} {y:?}"
    );
    // and among many contenders too
    let guards = join_all((0..20).map(|i| {
        let lock = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { lock.acquire("many", ttl).await.unwrap() }
    }))
    .await;
    let winners: Vec<_> = guards.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].name(), "many");
    assert_eq!(
        holder_token(&env, "many").await.as_deref(),
        Some(winners[0].token())
    );
}

#[tokio::test]
async fn primitives_lock_release_by_a_stale_owner_leaves_the_new_owners_lock() {
    let env = TestEnv::new().await;
    let a = Lock::new(env.redis.clone(), env.config.prefix());
    let b = lock_on_own_connection(&env).await;
    let old = a
        .acquire("report", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let new = b
        .acquire("report", Duration::from_secs(10))
        .await
        .unwrap()
        .expect("expired lock is free");
    assert_ne!(old.token(), new.token());
    // the stale owner can neither renew nor delete the new owner's lock
    assert!(!old.extend(Duration::from_secs(30)).await.unwrap());
    assert!(!old.release().await.unwrap());
    assert_eq!(
        holder_token(&env, "report").await.as_deref(),
        Some(new.token())
    );
    assert!(a
        .acquire("report", Duration::from_secs(1))
        .await
        .unwrap()
        .is_none());
    assert!(new.release().await.unwrap());
    assert_eq!(holder_token(&env, "report").await, None);
}

#[tokio::test]
async fn primitives_lock_expiry_lets_the_second_acquire() {
    let env = TestEnv::new().await;
    let a = Lock::new(env.redis.clone(), env.config.prefix());
    let b = lock_on_own_connection(&env).await;
    // a guard dropped without release keeps the lock until its TTL runs out
    let ttl = Duration::from_secs(2);
    let t = Instant::now();
    drop(a.acquire("x", ttl).await.unwrap().unwrap());
    // right after: well inside the TTL, it is still taken
    assert!(b
        .acquire("x", Duration::from_secs(5))
        .await
        .unwrap()
        .is_none());
    assert!(b
        .acquire_within("x", Duration::from_secs(5), Duration::from_millis(50))
        .await
        .unwrap()
        .is_none());
    let guard = b
        .acquire_within("x", Duration::from_secs(5), Duration::from_secs(6))
        .await
        .unwrap()
        .expect("acquired once the first lock expired");
    let waited = t.elapsed();
    // not before the TTL ran out, and soon after it (retries are at most 100 ms apart)
    assert!(waited >= ttl - Duration::from_millis(10), "{waited:?}");
    assert!(waited < ttl + Duration::from_secs(2), "{waited:?}");
    assert!(guard.release().await.unwrap());
}

#[tokio::test]
async fn primitives_lock_extend_keeps_it_alive_past_its_original_ttl() {
    let env = TestEnv::new().await;
    let a = Lock::new(env.redis.clone(), env.config.prefix());
    let b = lock_on_own_connection(&env).await;
    let ttl = Duration::from_secs(1);
    let acquired = Instant::now();
    let guard = a.acquire("long", ttl).await.unwrap().unwrap();
    // each extension is due 600 ms (then 1.1 s) before the lease it renews runs out
    let lease = Duration::from_millis(1_500);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(guard.extend(lease).await.unwrap());
    }
    // past the first 1 s lease, still held
    assert!(acquired.elapsed() > ttl);
    assert!(b
        .acquire("long", Duration::from_secs(1))
        .await
        .unwrap()
        .is_none());
    // no longer renewed: it expires, and extend then reports it lost
    let taken = eventually(
        lease + Duration::from_secs(2),
        "the lease to run out",
        || async { b.acquire("long", Duration::from_secs(10)).await.unwrap() },
    )
    .await;
    assert!(!guard.extend(Duration::from_secs(1)).await.unwrap());
    assert!(taken.release().await.unwrap());
}

#[tokio::test]
async fn primitives_with_lock_serializes_a_non_atomic_read_modify_write() {
    let env = TestEnv::new().await;
    let locks = [
        Lock::new(env.redis.clone(), env.config.prefix()),
        lock_on_own_connection(&env).await,
    ];
    let counter = Arc::new(AtomicU64::new(0));
    let inside = Arc::new(AtomicBool::new(false));
    let tasks = locks.into_iter().map(|lock| {
        let counter = counter.clone();
        let inside = inside.clone();
        async move {
            for _ in 0..5 {
                lock.with_lock("counter", Duration::from_secs(5), async {
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    // read, pause, write: loses updates unless serialized
                    let v = counter.load(Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    counter.store(v + 1, Ordering::SeqCst);
                    inside.store(false, Ordering::SeqCst);
                })
                .await
                .unwrap();
            }
        }
    });
    join_all(tasks).await;
    assert_eq!(counter.load(Ordering::SeqCst), 10);
    assert_eq!(holder_token(&env, "counter").await, None, "released after");
}

#[tokio::test]
async fn primitives_with_lock_renews_a_lock_held_longer_than_its_ttl() {
    let env = TestEnv::new().await;
    let lock = Lock::new(env.redis.clone(), env.config.prefix());
    let other = lock_on_own_connection(&env).await;
    // renewed every 400 ms: a renewal may come 800 ms late before the lease runs out
    let ttl = Duration::from_millis(1_200);
    let out = lock
        .with_lock("slow", ttl, async {
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(700)).await;
                // up to 2.8 s in: more than two TTLs, and nobody else can take it
                assert!(other.acquire("slow", ttl).await.unwrap().is_none());
            }
            "done"
        })
        .await
        .unwrap();
    assert_eq!(out, "done");
    // released at the end
    assert_eq!(holder_token(&env, "slow").await, None);
    assert!(other.acquire("slow", ttl).await.unwrap().is_some());
}

// the test's own future runs on the test thread; the runtime's two workers are free for the
// renewal task
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primitives_with_lock_renews_while_the_work_blocks_its_thread() {
    let env = TestEnv::new().await;
    let lock = Lock::new(env.redis.clone(), env.config.prefix());
    let other = lock_on_own_connection(&env).await;
    let ttl = Duration::from_millis(1_200);
    let taken_meanwhile = lock
        .with_lock("blocking", ttl, async {
            // blocking work (a sync library call, say) that never yields for 2.5 TTLs
            std::thread::sleep(Duration::from_secs(3));
            other.acquire("blocking", ttl).await.unwrap()
        })
        .await
        .unwrap();
    assert!(
        taken_meanwhile.is_none(),
        "the lock expired while its holder blocked: renewal stopped with it"
    );
    assert_eq!(holder_token(&env, "blocking").await, None, "released after");
}

#[tokio::test]
async fn primitives_with_lock_dropped_halfway_stops_renewing() {
    let env = TestEnv::new().await;
    let lock = Lock::new(env.redis.clone(), env.config.prefix());
    let other = lock_on_own_connection(&env).await;
    let ttl = Duration::from_secs(1);
    let started = Arc::new(tokio::sync::Notify::new());
    let holder = {
        let lock = lock.clone();
        let started = started.clone();
        tokio::spawn(async move {
            lock.with_lock("dropped", ttl, async move {
                started.notify_one();
                std::future::pending::<()>().await
            })
            .await
        })
    };
    started.notified().await;
    // a job timeout drops the handler's future like this
    holder.abort();
    let _ = holder.await;
    // nothing renews it any more: it expires with its lease (a renewal would keep it forever)
    let guard = eventually(
        ttl + Duration::from_secs(2),
        "the lock to expire",
        || async { other.acquire("dropped", ttl).await.unwrap() },
    )
    .await;
    assert!(guard.release().await.unwrap());
}

#[tokio::test]
async fn primitives_with_lock_keeps_running_when_the_lock_is_lost() {
    let env = TestEnv::new().await;
    let lock = Lock::new(env.redis.clone(), env.config.prefix());
    let other = lock_on_own_connection(&env).await;
    let ttl = Duration::from_millis(300);
    let taken = lock
        .with_lock("lost", ttl, async {
            // someone breaks the lock (an operator, a long Redis outage) and takes it
            let _: u32 = redis::cmd("DEL")
                .arg(lock_key(env.config.prefix(), "lost"))
                .query_async(&mut env.raw().await)
                .await
                .unwrap();
            let guard = other
                .acquire("lost", Duration::from_secs(10))
                .await
                .unwrap()
                .unwrap();
            // a renewal finds it lost; the future still runs to its end
            tokio::time::sleep(Duration::from_millis(400)).await;
            guard
        })
        .await
        .unwrap();
    // with_lock's release did not delete the new owner's lock
    assert_eq!(
        holder_token(&env, "lost").await.as_deref(),
        Some(taken.token())
    );
    assert!(taken.release().await.unwrap());
}

#[tokio::test]
async fn primitives_with_lock_errs_naming_the_lock_when_it_stays_taken() {
    let env = TestEnv::new().await;
    let lock = Lock::new(env.redis.clone(), env.config.prefix());
    let _held = lock
        .acquire("busy", Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    let ran = AtomicBool::new(false);
    let t = Instant::now();
    let err = lock
        .with_lock("busy", Duration::from_millis(200), async {
            ran.store(true, Ordering::SeqCst);
        })
        .await
        .unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(matches!(err, Error::LockNotAcquired { .. }), "{err:?}");
    assert!(err.to_string().contains("\"busy\""), "{err}");
    assert!(!ran.load(Ordering::SeqCst), "future ran without the lock");
}

#[tokio::test]
async fn primitives_lock_rejects_bad_input_naming_the_value() {
    let env = TestEnv::new().await;
    let lock = Lock::new(env.redis.clone(), env.config.prefix());
    let err = lock
        .acquire("", Duration::from_secs(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("lock name") && err.contains("\"\""), "{err}");
    let err = lock
        .acquire("x", Duration::ZERO)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("lock ttl") && err.contains("0ns"), "{err}");
    let err = lock
        .acquire_within("", Duration::from_secs(1), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lock name"), "{err}");
    let err = lock
        .with_lock("x", Duration::ZERO, async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lock ttl"), "{err}");
    let guard = lock
        .acquire("x", Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    let err = guard.extend(Duration::ZERO).await.unwrap_err();
    assert!(err.to_string().contains("lock ttl"), "{err}");
    assert!(guard.release().await.unwrap());
}
