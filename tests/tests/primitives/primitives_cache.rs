//! The handler cache: JSON get/set with TTL, cache-aside with stampede
//! protection, prefix invalidation by SCAN + UNLINK, hit/miss counters — against a real Redis.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{join_all, try_join_all};
use jobq_tests::*;
use queue_core::internal::keys::cache_key;
use queue_core::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    visits: u32,
}

fn cache(env: &TestEnv, namespace: &str) -> Cache {
    Cache::new(env.redis.clone(), env.config.prefix(), namespace)
}

/// Keys of this test's prefix that match `pattern` (a glob below the prefix).
async fn count_keys(env: &TestEnv, pattern: &str) -> usize {
    let mut conn = env.raw().await;
    let mut cursor = 0u64;
    let mut n = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}:{pattern}", env.config.prefix()))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        n += keys.len();
        if next == 0 {
            return n;
        }
        cursor = next;
    }
}

#[tokio::test]
async fn primitives_cache_set_get_and_delete_round_trip_json() {
    let env = TestEnv::new().await;
    let c = cache(&env, "profiles");
    let p = Profile {
        name: "ada".into(),
        visits: 3,
    };
    assert_eq!(c.get::<Profile>("u1").await.unwrap(), None);
    c.set("u1", &p, TTL).await.unwrap();
    assert_eq!(c.get::<Profile>("u1").await.unwrap(), Some(p.clone()));
    // stored as plain JSON under the documented key
    let raw: String = redis::cmd("GET")
        .arg(cache_key(env.config.prefix(), "profiles", "u1"))
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&raw).unwrap(),
        json!({"name": "ada", "visits": 3})
    );
    // unsized values (str, slices) can be stored too
    c.set("greeting", "hello", TTL).await.unwrap();
    assert_eq!(
        c.get::<String>("greeting").await.unwrap().as_deref(),
        Some("hello")
    );
    // namespaces do not see each other's keys
    assert_eq!(
        cache(&env, "other").get::<Profile>("u1").await.unwrap(),
        None
    );

    assert!(c.delete("u1").await.unwrap());
    assert!(!c.delete("u1").await.unwrap());
    assert_eq!(c.get::<Profile>("u1").await.unwrap(), None);
}

#[tokio::test]
async fn primitives_cache_value_expires_after_its_ttl() {
    let env = TestEnv::new().await;
    let c = cache(&env, "ttl");
    let ttl = Duration::from_secs(2);
    let written = Instant::now();
    c.set("k", &1u32, ttl).await.unwrap();
    // right after the write, well inside the TTL: there, and expiring with it
    let pttl: i64 = redis::cmd("PTTL")
        .arg(cache_key(env.config.prefix(), "ttl", "k"))
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 2_000, "PTTL {pttl}");
    assert_eq!(c.get::<u32>("k").await.unwrap(), Some(1));
    // gone once the TTL has run out, and not before
    eventually(
        ttl + Duration::from_secs(3),
        "the value to expire",
        || async { c.get::<u32>("k").await.unwrap().is_none().then_some(()) },
    )
    .await;
    assert!(written.elapsed() >= ttl - Duration::from_millis(10));
}

#[tokio::test]
async fn primitives_cache_stats_count_hits_and_misses_shared_by_clones() {
    let env = TestEnv::new().await;
    let c = cache(&env, "stats");
    let clone = c.clone();
    assert_eq!(c.stats(), CacheStats::default());
    assert_eq!(c.namespace(), "stats");
    c.get::<u32>("a").await.unwrap(); // miss
    c.set("a", &1u32, TTL).await.unwrap();
    clone.get::<u32>("a").await.unwrap(); // hit
    clone.get::<u32>("b").await.unwrap(); // miss
    let got = c
        .get_or_set("a", TTL, || async { Ok::<u32, Error>(9) })
        .await
        .unwrap(); // hit
    assert!(got.hit);
    assert_eq!(got.value, 1);
    let got = c
        .get_or_set("c", TTL, || async { Ok::<u32, Error>(9) })
        .await
        .unwrap(); // miss, computed
    assert!(!got.hit);
    assert_eq!(got.value, 9);
    assert_eq!(c.stats(), CacheStats { hits: 2, misses: 3 });
    assert_eq!(clone.stats(), c.stats());
    // a peek is not a lookup: it counts neither a hit nor a miss
    assert_eq!(c.peek::<u32>("a").await.unwrap(), Some(1));
    assert_eq!(clone.peek::<u32>("c").await.unwrap(), Some(9));
    assert_eq!(c.peek::<u32>("nothing").await.unwrap(), None);
    assert_eq!(c.stats(), CacheStats { hits: 2, misses: 3 });
    // a separate instance has counters of its own
    assert_eq!(cache(&env, "stats").stats(), CacheStats::default());
}

#[tokio::test]
async fn primitives_cache_get_or_set_computes_once_for_20_concurrent_callers() {
    let env = TestEnv::new().await;
    // two connections and a Cache instance per caller: coordination has to go through Redis
    let other = Redis::connect(&env.config).await.unwrap();
    let computations = Arc::new(AtomicUsize::new(0));
    let callers = (0..20).map(|i| {
        let redis = if i % 2 == 0 {
            env.redis.clone()
        } else {
            other.clone()
        };
        let c = Cache::new(redis, env.config.prefix(), "stampede");
        let computations = computations.clone();
        async move {
            let got = c
                .get_or_set("report", TTL, || async {
                    computations.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, Error>(json!({"total": 42}))
                })
                .await
                .unwrap();
            (got, c.stats())
        }
    });
    let results = join_all(callers).await;
    assert_eq!(
        computations.load(Ordering::SeqCst),
        1,
        "computed more than once"
    );
    assert!(results
        .iter()
        .all(|(got, _)| got.value == json!({"total": 42})));
    let computed = results.iter().filter(|(got, _)| !got.hit).count();
    assert_eq!(computed, 1, "exactly one caller computes (hit = false)");
    let hits: u64 = results.iter().map(|(_, s)| s.hits).sum();
    let misses: u64 = results.iter().map(|(_, s)| s.misses).sum();
    assert_eq!((hits, misses), (19, 1));
    // the value is stored for the next caller, and the stampede lock is gone
    let c = cache(&env, "stampede");
    assert_eq!(
        c.get::<Value>("report").await.unwrap(),
        Some(json!({"total": 42}))
    );
    assert_eq!(count_keys(&env, "cache-fill:*").await, 0);
}

#[tokio::test]
async fn primitives_cache_get_or_set_waiter_computes_when_the_computing_caller_dies() {
    let env = TestEnv::new().await;
    let c = cache(&env, "dies");
    let started = Arc::new(tokio::sync::Notify::new());
    let dying = {
        let c = c.clone();
        let started = started.clone();
        tokio::spawn(async move {
            c.get_or_set("k", TTL, || async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_secs(600)).await;
                Ok::<u32, Error>(1)
            })
            .await
        })
    };
    started.notified().await;
    // the computing caller vanishes without releasing its lock (like a killed process)
    dying.abort();
    let _ = dying.await;
    let t = Instant::now();
    let got = c
        .get_or_set("k", TTL, || async { Ok::<u32, Error>(2) })
        .await
        .unwrap();
    assert_eq!(got.value, 2);
    assert!(!got.hit);
    // it waited for the abandoned lock's short lease, not forever
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test]
async fn primitives_cache_get_or_set_failed_compute_is_returned_and_not_stored() {
    let env = TestEnv::new().await;
    let c = cache(&env, "fail");
    let err = c
        .get_or_set("k", TTL, || async {
            Err::<u32, JobError>(JobError::new("upstream down"))
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("upstream down"), "{err}");
    assert_eq!(c.get::<u32>("k").await.unwrap(), None);
    // the lock was released (not left to expire): the next caller computes at once
    assert_eq!(count_keys(&env, "cache-fill:*").await, 0);
    let got = c
        .get_or_set("k", TTL, || async { Ok::<u32, JobError>(5) })
        .await
        .unwrap();
    assert_eq!((got.value, got.hit), (5, false));
}

#[tokio::test]
async fn primitives_cache_get_or_set_recomputes_a_value_that_no_longer_decodes() {
    let env = TestEnv::new().await;
    let c = cache(&env, "shape");
    // written by an older version whose value had another shape
    c.set("p", &json!({"name": "ada", "visits": "three"}), TTL)
        .await
        .unwrap();
    assert!(c.get::<Profile>("p").await.is_err());
    let fresh = Profile {
        name: "ada".into(),
        visits: 3,
    };
    let computations = AtomicUsize::new(0);
    let got = c
        .get_or_set("p", TTL, || async {
            computations.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(fresh.clone())
        })
        .await
        .expect("an undecodable value is a miss, not an error");
    assert_eq!((got.value.clone(), got.hit), (fresh.clone(), false));
    // overwritten: the next call is a hit on the new value
    assert_eq!(c.get::<Profile>("p").await.unwrap(), Some(fresh.clone()));
    let again = c
        .get_or_set("p", TTL, || async {
            computations.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(fresh.clone())
        })
        .await
        .unwrap();
    assert!(again.hit);
    assert_eq!(computations.load(Ordering::SeqCst), 1);
    assert_eq!(count_keys(&env, "cache-fill:*").await, 0);
}

#[tokio::test]
async fn primitives_cache_invalidate_prefix_removes_exactly_the_matching_keys() {
    let env = TestEnv::new().await;
    let c = cache(&env, "inv");
    // more than one SCAN batch of matching keys
    try_join_all((0..2_500).map(|i| {
        let c = c.clone();
        async move { c.set(&format!("user:1:{i}"), &i, TTL).await }
    }))
    .await
    .unwrap();
    let kept = [
        "user:1",
        "user:10:x",
        "user:2:1",
        "aXb:1",
        "ab",
        "a*",
        "x1",
        "]x",
        "qz",
        "backs",
    ];
    let glob_matches = ["a*b:1", "a*bc", "[x]1", "q?", r"back\slash"];
    for k in kept.iter().chain(glob_matches.iter()) {
        c.set(k, &true, TTL).await.unwrap();
    }
    let other = cache(&env, "inv2");
    other.set("user:1:0", &true, TTL).await.unwrap();
    let before = count_keys(&env, "*").await;

    assert_eq!(c.invalidate_prefix("user:1:").await.unwrap(), 2_500);
    assert_eq!(count_keys(&env, "*").await, before - 2_500);
    assert_eq!(c.get::<u32>("user:1:0").await.unwrap(), None);
    assert_eq!(c.get::<u32>("user:1:2499").await.unwrap(), None);
    assert_eq!(other.get::<bool>("user:1:0").await.unwrap(), Some(true));

    // glob characters in the prefix are matched literally
    assert_eq!(c.invalidate_prefix("a*b").await.unwrap(), 2);
    assert_eq!(c.invalidate_prefix("[x]").await.unwrap(), 1);
    assert_eq!(c.invalidate_prefix("q?").await.unwrap(), 1);
    assert_eq!(c.invalidate_prefix(r"back\").await.unwrap(), 1);
    for k in glob_matches {
        assert_eq!(c.get::<bool>(k).await.unwrap(), None, "{k} should be gone");
    }
    for k in kept {
        assert_eq!(
            c.get::<bool>(k).await.unwrap(),
            Some(true),
            "{k} was removed"
        );
    }
    assert_eq!(c.invalidate_prefix("nothing-here").await.unwrap(), 0);
    // "" is the whole namespace, and only it
    assert_eq!(c.invalidate_prefix("").await.unwrap(), kept.len() as u64);
    assert_eq!(other.get::<bool>("user:1:0").await.unwrap(), Some(true));
}

#[tokio::test]
async fn primitives_cache_rejects_bad_input_naming_the_value() {
    let env = TestEnv::new().await;
    let c = cache(&env, "bad");
    let err = c.get::<u32>("").await.unwrap_err().to_string();
    assert!(err.contains("cache key") && err.contains("\"\""), "{err}");
    let err = c
        .set("k", &1, Duration::ZERO)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cache ttl") && err.contains("0ns"), "{err}");
    let err = c.delete("").await.unwrap_err().to_string();
    assert!(err.contains("cache key"), "{err}");
    let err = cache(&env, "")
        .get::<u32>("k")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cache namespace"), "{err}");
    let err = cache(&env, "").invalidate_prefix("").await.unwrap_err();
    assert!(err.to_string().contains("cache namespace"), "{err}");
    let computed = AtomicUsize::new(0);
    let err = c
        .get_or_set("k", Duration::ZERO, || async {
            computed.fetch_add(1, Ordering::SeqCst);
            Ok::<u32, Error>(1)
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cache ttl"), "{err}");
    assert_eq!(
        computed.load(Ordering::SeqCst),
        0,
        "computed despite bad input"
    );
    // a stored value of another type is an error naming the key, not a panic or a miss
    c.set("text", "not a number", TTL).await.unwrap();
    let err = c.get::<u32>("text").await.unwrap_err().to_string();
    assert!(err.contains("\"text\"") && err.contains("\"bad\""), "{err}");
}

#[tokio::test]
async fn primitives_cache_from_ctx_is_shared_across_jobs_of_a_worker() {
    let env = TestEnv::new().await;
    let q = env.queue("prim-cache").await;
    let computations = Arc::new(AtomicUsize::new(0));
    let counted = computations.clone();
    let worker = env
        .worker()
        .queues(["prim-cache"])
        .concurrency(1)
        .handler("lookup", move |_job: Job<Value>, ctx: Ctx| {
            let counted = counted.clone();
            async move {
                let got = ctx
                    .cache("t")
                    .get_or_set("answer", TTL, || async {
                        counted.fetch_add(1, Ordering::SeqCst);
                        Ok::<u32, JobError>(42)
                    })
                    .await?;
                // the lock and rate limiter of the Ctx work under the worker's prefix too
                let allowed = ctx
                    .rate_limiter()
                    .check("lookup", 100, Duration::from_secs(60))
                    .await?
                    .allowed;
                let locked = ctx
                    .lock()
                    .with_lock("lookup", Duration::from_secs(5), async { true })
                    .await?;
                Ok::<_, JobError>(json!({
                    "value": got.value,
                    "hit": got.hit,
                    "stats": ctx.cache("t").stats(),
                    "allowed": allowed && locked,
                }))
            }
        })
        .build()
        .unwrap();
    assert!(worker.cache_stats().is_empty());
    let caches = worker.caches();
    let guard = spawn_worker(worker);

    let first = q
        .add("lookup", &json!({}), JobOptions::new())
        .await
        .unwrap();
    wait_finished(&q, 1, Duration::from_secs(10)).await;
    let second = q
        .add("lookup", &json!({}), JobOptions::new())
        .await
        .unwrap();
    wait_finished(&q, 2, Duration::from_secs(10)).await;

    let first = q.job(&first.id).await.unwrap().return_value.unwrap();
    let second = q.job(&second.id).await.unwrap().return_value.unwrap();
    assert_eq!(
        first,
        json!({"value": 42, "hit": false, "stats": {"hits": 0, "misses": 1}, "allowed": true})
    );
    // the second job gets the same Cache: its value is a hit and the counters carried over
    assert_eq!(
        second,
        json!({"value": 42, "hit": true, "stats": {"hits": 1, "misses": 1}, "allowed": true})
    );
    assert_eq!(computations.load(Ordering::SeqCst), 1);
    assert_eq!(
        caches.stats(),
        vec![("t".to_string(), CacheStats { hits: 1, misses: 1 })]
    );
    guard.stop().await.unwrap();
    // the primitives used the worker's prefix
    let prefix = env.config.prefix();
    let exists: u32 = redis::cmd("EXISTS")
        .arg(cache_key(prefix, "t", "answer"))
        .arg(queue_core::internal::keys::rate_key(prefix, "lookup"))
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert_eq!(exists, 2);
}
