//! The handler rate limiter: a sliding window on the Redis clock, refused calls
//! not counted, keys independent — against a real Redis.

use std::time::{Duration, Instant};

use jobq_tests::*;
use queue_core::internal::keys::rate_key;
use queue_core::*;

/// A window long enough that a test's calls all land in it however slow the machine is.
const LONG: Duration = Duration::from_secs(60);

fn limiter(env: &TestEnv) -> RateLimiter {
    RateLimiter::new(env.redis.clone(), env.config.prefix())
}

/// How many calls the log of `key` holds.
async fn logged(env: &TestEnv, key: &str) -> u64 {
    redis::cmd("ZCARD")
        .arg(rate_key(env.config.prefix(), key))
        .query_async(&mut env.raw().await)
        .await
        .unwrap()
}

/// Sleeps until `at`.
async fn sleep_until(at: Instant) {
    tokio::time::sleep_until(at.into()).await;
}

#[tokio::test]
async fn primitives_rate_limit_allows_limit_calls_per_window_then_refuses() {
    let env = TestEnv::new().await;
    let rl = limiter(&env);
    for remaining in (0..5).rev() {
        let d = rl.check("api", 5, LONG).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, remaining);
        assert!(d.reset > Duration::ZERO && d.reset <= LONG, "{d:?}");
    }
    let d = rl.check("api", 5, LONG).await.unwrap();
    assert!(!d.allowed, "{d:?}");
    assert_eq!(d.remaining, 0);
    assert!(d.reset > Duration::ZERO && d.reset <= LONG, "{d:?}");
    // the log expires with the window
    let pttl: i64 = redis::cmd("PTTL")
        .arg(rate_key(env.config.prefix(), "api"))
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 60_000, "PTTL {pttl}");
}

#[tokio::test]
async fn primitives_rate_limit_allows_again_after_the_window_and_does_not_count_refusals() {
    let env = TestEnv::new().await;
    let rl = limiter(&env);
    let window = Duration::from_secs(3);
    for _ in 0..5 {
        assert!(rl.check("k", 5, window).await.unwrap().allowed);
    }
    let last_allowed = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // refused calls in the middle of the window (1 s in, 2 s before it ends)...
    let mut last = None;
    for _ in 0..10 {
        let d = rl.check("k", 5, window).await.unwrap();
        assert!(!d.allowed, "{d:?}");
        last = Some(d);
    }
    // ...are not logged,
    assert_eq!(logged(&env, "k").await, 5);
    // and the oldest counted call leaves the window at most 2 s from now
    let reset = last.unwrap().reset;
    assert!(
        reset > Duration::ZERO && reset <= window - Duration::from_secs(1),
        "{reset:?}"
    );
    // so they do not push the next chance back: half a second after every counted call has
    // left the window (and half a second before the refusals would, had they counted),
    // there are five places again
    sleep_until(last_allowed + window + Duration::from_millis(500)).await;
    for remaining in (0..5).rev() {
        let d = rl.check("k", 5, window).await.unwrap();
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.remaining, remaining);
    }
    assert!(!rl.check("k", 5, window).await.unwrap().allowed);
}

#[tokio::test]
async fn primitives_rate_limit_window_slides_instead_of_resetting() {
    let env = TestEnv::new().await;
    let rl = limiter(&env);
    let window = Duration::from_secs(2);
    let first_sent = Instant::now();
    for _ in 0..2 {
        assert!(rl.check("s", 4, window).await.unwrap().allowed);
    }
    let first_done = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..2 {
        assert!(rl.check("s", 4, window).await.unwrap().allowed);
    }
    let d = rl.check("s", 4, window).await.unwrap();
    assert!(!d.allowed);
    // the first two calls leave the window 2 s after they were made: at least 1 s ago,
    // at most as long ago as the first was sent
    let oldest_at_most = window.saturating_sub(first_sent.elapsed());
    assert!(
        d.reset + Duration::from_millis(10) >= oldest_at_most
            && d.reset <= window - Duration::from_secs(1),
        "{d:?}, expected between {oldest_at_most:?} and 1s"
    );
    // half a second after the first two have left, half a second before the next two
    // will: two places, not a fresh window of four
    sleep_until(first_done + window + Duration::from_millis(500)).await;
    let d = rl.check("s", 4, window).await.unwrap();
    assert!(d.allowed && d.remaining == 1, "{d:?}");
    assert!(rl.check("s", 4, window).await.unwrap().allowed);
    let d = rl.check("s", 4, window).await.unwrap();
    assert!(!d.allowed, "{d:?}");
}

#[tokio::test]
async fn primitives_rate_limit_keys_are_independent() {
    let env = TestEnv::new().await;
    let rl = limiter(&env);
    for _ in 0..3 {
        assert!(rl.check("a", 3, LONG).await.unwrap().allowed);
    }
    assert!(!rl.check("a", 3, LONG).await.unwrap().allowed);
    let d = rl.check("b", 3, LONG).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 2);
    // and prefixes are independent: another prefix's "a" is untouched
    let other = TestEnv::new().await;
    assert!(limiter(&other).check("a", 3, LONG).await.unwrap().allowed);
}

#[tokio::test]
async fn primitives_rate_limit_rejects_bad_input_naming_the_value() {
    let env = TestEnv::new().await;
    let rl = limiter(&env);
    let err = rl.check("", 5, LONG).await.unwrap_err().to_string();
    assert!(
        err.contains("rate limit key") && err.contains("\"\""),
        "{err}"
    );
    let err = rl.check("k", 0, LONG).await.unwrap_err().to_string();
    assert!(err.contains("rate limit") && err.contains('0'), "{err}");
    let err = rl
        .check("k", 5, Duration::ZERO)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rate limit window") && err.contains("0ns"),
        "{err}"
    );
}
