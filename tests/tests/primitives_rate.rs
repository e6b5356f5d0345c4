//! The handler rate limiter (SPEC §4): a sliding window on the Redis clock, refused calls
//! not counted, keys independent — against a real Redis.

use std::time::Duration;

use jobq_tests::*;
use queue_core::keys::rate_key;
use queue_core::*;

const SECOND: Duration = Duration::from_secs(1);

fn limiter(env: &TestEnv) -> RateLimiter {
    RateLimiter::new(env.redis.clone(), env.config.prefix())
}

#[tokio::test]
async fn primitives_rate_limit_allows_limit_calls_per_window_then_refuses() {
    let env = TestEnv::new().await;
    let rl = limiter(&env);
    for remaining in (0..5).rev() {
        let d = rl.check("api", 5, SECOND).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, remaining);
        assert!(d.reset > Duration::ZERO && d.reset <= SECOND, "{d:?}");
    }
    let d = rl.check("api", 5, SECOND).await.unwrap();
    assert!(!d.allowed, "{d:?}");
    assert_eq!(d.remaining, 0);
    assert!(d.reset > Duration::ZERO && d.reset <= SECOND, "{d:?}");
    // the log expires with the window
    let pttl: i64 = redis::cmd("PTTL")
        .arg(rate_key(env.config.prefix(), "api"))
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 1_000, "PTTL {pttl}");
}

#[tokio::test]
async fn primitives_rate_limit_allows_again_after_the_window_and_does_not_count_refusals() {
    let env = TestEnv::new().await;
    let rl = limiter(&env);
    for _ in 0..5 {
        assert!(rl.check("k", 5, SECOND).await.unwrap().allowed);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // refused calls in the middle of the window must not push the next chance back
    let mut last = None;
    for _ in 0..10 {
        let d = rl.check("k", 5, SECOND).await.unwrap();
        assert!(!d.allowed);
        last = Some(d);
    }
    let reset = last.unwrap().reset;
    assert!(reset <= Duration::from_millis(700), "{reset:?}");
    tokio::time::sleep(reset + Duration::from_millis(50)).await;
    for remaining in (0..5).rev() {
        let d = rl.check("k", 5, SECOND).await.unwrap();
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.remaining, remaining);
    }
    assert!(!rl.check("k", 5, SECOND).await.unwrap().allowed);
}

#[tokio::test]
async fn primitives_rate_limit_window_slides_instead_of_resetting() {
    let env = TestEnv::new().await;
    let rl = limiter(&env);
    for _ in 0..2 {
        assert!(rl.check("s", 4, SECOND).await.unwrap().allowed);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..2 {
        assert!(rl.check("s", 4, SECOND).await.unwrap().allowed);
    }
    let d = rl.check("s", 4, SECOND).await.unwrap();
    assert!(!d.allowed);
    // the first two calls leave the window ~1 s after they were made, ~0.5 s from now
    assert!(
        d.reset > Duration::from_millis(200) && d.reset <= Duration::from_millis(500),
        "{d:?}"
    );
    tokio::time::sleep(d.reset + Duration::from_millis(50)).await;
    // only the two oldest have left: two places, not a fresh window of four
    let d = rl.check("s", 4, SECOND).await.unwrap();
    assert!(d.allowed && d.remaining == 1, "{d:?}");
    assert!(rl.check("s", 4, SECOND).await.unwrap().allowed);
    let d = rl.check("s", 4, SECOND).await.unwrap();
    assert!(!d.allowed, "{d:?}");
}

#[tokio::test]
async fn primitives_rate_limit_keys_are_independent() {
    let env = TestEnv::new().await;
    let rl = limiter(&env);
    for _ in 0..3 {
        assert!(rl.check("a", 3, SECOND).await.unwrap().allowed);
    }
    assert!(!rl.check("a", 3, SECOND).await.unwrap().allowed);
    let d = rl.check("b", 3, SECOND).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 2);
    // and prefixes are independent: another prefix's "a" is untouched
    let other = TestEnv::new().await;
    assert!(limiter(&other).check("a", 3, SECOND).await.unwrap().allowed);
}

#[tokio::test]
async fn primitives_rate_limit_rejects_bad_input_naming_the_value() {
    let env = TestEnv::new().await;
    let rl = limiter(&env);
    let err = rl.check("", 5, SECOND).await.unwrap_err().to_string();
    assert!(
        err.contains("rate limit key") && err.contains("\"\""),
        "{err}"
    );
    let err = rl.check("k", 0, SECOND).await.unwrap_err().to_string();
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
