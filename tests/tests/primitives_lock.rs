//! The handler lock (SPEC §4): one owner at a time, fenced release and renewal by token,
//! expiry of abandoned locks, and `with_lock` renewing while its future runs — against a
//! real Redis.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use jobq_tests::*;
use queue_core::keys::lock_key;
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
    drop(
        a.acquire("x", Duration::from_millis(300))
            .await
            .unwrap()
            .unwrap(),
    );
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
    let t = Instant::now();
    let guard = b
        .acquire_within("x", Duration::from_secs(5), Duration::from_secs(3))
        .await
        .unwrap()
        .expect("acquired once the first lock expired");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(guard.release().await.unwrap());
}

#[tokio::test]
async fn primitives_lock_extend_keeps_it_alive_past_its_original_ttl() {
    let env = TestEnv::new().await;
    let a = Lock::new(env.redis.clone(), env.config.prefix());
    let b = lock_on_own_connection(&env).await;
    let guard = a
        .acquire("long", Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(guard.extend(Duration::from_millis(300)).await.unwrap());
    }
    // 750 ms in: long past the first 300 ms lease, still held
    assert!(b
        .acquire("long", Duration::from_secs(1))
        .await
        .unwrap()
        .is_none());
    tokio::time::sleep(Duration::from_millis(450)).await;
    // no longer renewed: expired, so extend reports it lost
    assert!(!guard.extend(Duration::from_secs(1)).await.unwrap());
    assert!(b
        .acquire("long", Duration::from_secs(1))
        .await
        .unwrap()
        .is_some());
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
    let ttl = Duration::from_millis(300);
    let out = lock
        .with_lock("slow", ttl, async {
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                // up to 1 s in: several TTLs, and nobody else can take it
                assert!(other.acquire("slow", ttl).await.unwrap().is_none());
            }
            "done"
        })
        .await
        .unwrap();
    assert_eq!(out, "done");
    assert!(other.acquire("slow", ttl).await.unwrap().is_some());
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
