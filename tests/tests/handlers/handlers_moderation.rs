//! `moderation.text` against a real Redis: rule verdicts, the 24 h verdict cache, the
//! per-text lock (one classification for many identical texts at once), and the optional
//! external classifier with its fallback to the rules.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobq_handlers::moderation::{self, ModerationConfig, RemoteClassifier};
use jobq_tests::*;
use queue_core::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const Q: &str = "moderation";
const SPAM: &str = "BUY NOW!!! Click here http://cheap-deals.ru and mail winner@deals.biz";
const PLAIN: &str = "The meeting moved to Thursday, see you there.";

fn worker(env: &TestEnv, config: ModerationConfig, concurrency: usize) -> Worker {
    moderation::register_with(env.worker().queues([Q]).concurrency(concurrency), config)
        .build()
        .unwrap()
}

async fn moderate(q: &Queue, text: &str) -> Value {
    let added = q
        .add(
            "moderation.text",
            &json!({ "text": text }),
            JobOptions::new(),
        )
        .await
        .unwrap();
    let job = wait_job_done(q, &added.id, Duration::from_secs(10)).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    job.return_value.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spam_is_flagged_plain_text_allowed_and_a_repeat_comes_from_the_cache() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let _w = spawn_worker(worker(&env, ModerationConfig::default(), 2));

    let spam = moderate(&q, SPAM).await;
    assert!(
        spam["verdict"] == "flagged" || spam["verdict"] == "blocked",
        "{spam}"
    );
    assert!(spam["scores"]["spam"].as_f64().unwrap() >= 0.4, "{spam}");
    assert!(spam["scores"]["pii"].as_f64().unwrap() >= 0.4, "{spam}");
    assert_eq!(spam["source"], "rules");
    assert_eq!(spam["cached"], false);
    assert_eq!(spam["hash"].as_str().unwrap().len(), 64);

    let plain = moderate(&q, PLAIN).await;
    assert_eq!(plain["verdict"], "allowed", "{plain}");
    assert_eq!(plain["cached"], false);

    let again = moderate(&q, SPAM).await;
    assert_eq!(again["cached"], true);
    assert_eq!(again["verdict"], spam["verdict"]);
    assert_eq!(again["hash"], spam["hash"]);
    // normalisation: other spacing is the same text
    let spaced = moderate(&q, &format!("  {}  ", SPAM.replace(' ', "\t "))).await;
    assert_eq!(spaced["cached"], true);
    assert_eq!(spaced["hash"], spam["hash"]);

    // the verdict is cached for 24 hours
    let key = queue_core::internal::keys::cache_key(
        env.config.prefix(),
        "moderation",
        &format!("verdict:{}", spam["hash"].as_str().unwrap()),
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut env.raw().await)
        .await
        .unwrap();
    assert!((86_000..=86_400).contains(&ttl), "{key}: ttl {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_long_or_malformed_input_fails_at_once() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let _w = spawn_worker(worker(&env, ModerationConfig::default(), 2));
    for data in [
        json!({ "text": "x".repeat(moderation::MAX_TEXT + 1) }),
        json!({ "txt": "typo" }),
    ] {
        let added = q
            .add("moderation.text", &data, JobOptions::new().attempts(3))
            .await
            .unwrap();
        let job = wait_job_done(&q, &added.id, Duration::from_secs(10)).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.attempts_made, 1);
        let reason = job.failed_reason.unwrap();
        assert!(
            reason.contains("65537 bytes") || reason.contains("txt"),
            "{reason}"
        );
    }
}

/// A fake classifier service: counts requests, answers `reply` after `delay` (`reply` as
/// the whole response when it starts with `HTTP/`; an endless chunked body for `ENDLESS`).
async fn classifier(reply: &'static str, delay: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/classify", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // read the head and the JSON body (Content-Length)
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                if reply.starts_with("HTTP/") {
                    let _ = s.write_all(reply.as_bytes()).await;
                    return;
                }
                if reply == "ENDLESS" {
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                Transfer-Encoding: chunked\r\n\r\n";
                    let _ = s.write_all(head.as_bytes()).await;
                    let piece = format!("4000\r\n{}\r\n", " ".repeat(0x4000));
                    while s.write_all(piece.as_bytes()).await.is_ok() {}
                    return;
                }
                let out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = s.write_all(out.as_bytes()).await;
            });
        }
    });
    (url, calls)
}

fn remote(url: &str, timeout: Duration) -> ModerationConfig {
    ModerationConfig {
        remote: Some(RemoteClassifier::new(url, timeout).unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_external_classifier_is_used_and_one_text_is_classified_once_at_a_time() {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let (url, calls) = classifier(
        r#"{"verdict":"flagged","scores":{"toxicity":0.7},"reasons":["model"]}"#,
        Duration::from_millis(300),
    )
    .await;
    let _w = spawn_worker(worker(&env, remote(&url, Duration::from_secs(5)), 10));

    // ten identical texts at once: one classification, nine verdicts from the cache
    let text = "is this fine? it is the same text ten times";
    let mut ids = Vec::new();
    for _ in 0..10 {
        let added = q
            .add(
                "moderation.text",
                &json!({ "text": text }),
                JobOptions::new(),
            )
            .await
            .unwrap();
        ids.push(added.id);
    }
    let mut fresh = 0;
    for id in &ids {
        let job = wait_job_done(&q, id, Duration::from_secs(15)).await;
        let v = job.return_value.unwrap();
        assert_eq!(v["verdict"], "flagged", "{v}");
        assert_eq!(v["source"], "api");
        assert_eq!(v["scores"]["toxicity"], 0.7);
        if v["cached"] == false {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one job classified the text");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the API was asked once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_broken_or_absent_classifier_falls_back_to_the_rules() {
    let (slow, slow_calls) = classifier(r#"{"verdict":"allowed"}"#, Duration::from_secs(3)).await;
    let (broken, _) = classifier(r#"{"verdict":"maybe"}"#, Duration::ZERO).await;
    let absent = {
        // a port nobody listens on
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/classify", l.local_addr().unwrap())
    };
    for (url, why) in [
        (&slow, "timed out"),
        (&broken, "\"maybe\""),
        (&absent, "unreachable"),
    ] {
        falls_back_at_once(url, Duration::from_millis(300), why).await;
    }
    assert_eq!(slow_calls.load(Ordering::SeqCst), 1);
}

/// Moderates the spam text with the classifier at `url` (giving up after `timeout`), on a
/// fresh prefix (nothing cached): the rules' verdict, whose `fallback` says `why`, within
/// 3 s (never read to a longer timeout).
async fn falls_back_at_once(url: &str, timeout: Duration, why: &str) {
    let env = TestEnv::new().await;
    let q = env.queue(Q).await;
    let w = spawn_worker(worker(&env, remote(url, timeout), 2));
    let started = std::time::Instant::now();
    let v = moderate(&q, SPAM).await;
    assert_eq!(v["source"], "rules", "{url}: {v}");
    assert!(
        v["verdict"] == "flagged" || v["verdict"] == "blocked",
        "{v}"
    );
    let fallback = v["fallback"].as_str().unwrap();
    assert!(fallback.contains(why), "{url}: {fallback}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{url}: the timeout was not applied, or the reply read to it"
    );
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classifier_that_redirects_or_answers_without_end_falls_back_at_once() {
    let (elsewhere, elsewhere_calls) = classifier(r#"{"verdict":"allowed"}"#, Duration::ZERO).await;
    // (leaked: the fake's reply is 'static, as its other replies are)
    let redirect: &'static str = Box::leak(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {elsewhere}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let (redirecting, _) = classifier(redirect, Duration::ZERO).await;
    let (endless, _) = classifier("ENDLESS", Duration::ZERO).await;
    for (url, why) in [(&redirecting, "307"), (&endless, "over 65536 bytes")] {
        falls_back_at_once(url, Duration::from_secs(5), why).await;
    }
    assert_eq!(
        elsewhere_calls.load(Ordering::SeqCst),
        0,
        "the text was sent on"
    );
}
