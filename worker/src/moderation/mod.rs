//! `moderation.text`: a verdict on a piece of user text — `allowed`, `flagged` or
//! `blocked`, with per-category scores.
//!
//! The text is normalised and hashed (SHA-256); verdicts are cached by hash for 24 hours,
//! so the same text is classified once a day however often it is posted. A lock on the
//! hash keeps two workers from classifying the same text at the same time: the second waits
//! and is served the first one's verdict from the cache. Classification uses the external
//! API when `MODERATION_API_URL` is set, and the built-in rules otherwise or when the API
//! fails.

pub mod normalize;
pub mod remote;
pub mod rules;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use queue_core::{parse_duration, Ctx, Job, JobError, WorkerBuilder};
use serde::{Deserialize, Serialize};

pub use remote::RemoteClassifier;

/// How long a verdict is cached.
pub const VERDICT_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a verdict of the rules is cached when the configured API failed.
pub const FALLBACK_TTL: Duration = Duration::from_secs(300);
/// Least lease of the per-text lock (renewed while the classification runs; waiters wait
/// up to it).
const LOCK_TTL: Duration = Duration::from_secs(10);
/// Longest text accepted, in bytes.
pub const MAX_TEXT: usize = 64 * 1024;
const CACHE_NAMESPACE: &str = "moderation";

/// `{"text": "..."}`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModerateText {
    /// The text to classify (at most 64 KiB).
    pub text: String,
}

/// A moderation verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    /// `allowed`, `flagged` or `blocked`.
    pub verdict: String,
    /// Category → score in 0–1.
    pub scores: BTreeMap<String, f64>,
    /// What raised the scores.
    pub reasons: Vec<String>,
    /// Who classified it: `rules` or `api`.
    pub source: String,
    /// Why the API was not used although configured (it failed), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// SHA-256 of the normalised text (the cache key).
    pub hash: String,
    /// Served from the cache rather than classified for this job.
    #[serde(default)]
    pub cached: bool,
}

/// Where verdicts come from.
#[derive(Debug, Clone, Default)]
pub struct ModerationConfig {
    /// The external classifier, if any.
    pub remote: Option<RemoteClassifier>,
}

impl ModerationConfig {
    /// Lease of the per-text lock: [`LOCK_TTL`], or longer than the API's timeout.
    fn lock_lease(&self) -> Duration {
        let api = self.remote.as_ref().map_or(Duration::ZERO, |r| r.timeout());
        LOCK_TTL.max(api + Duration::from_secs(5))
    }

    /// From `MODERATION_API_URL` and `MODERATION_API_TIMEOUT` (default 2s).
    pub fn from_env() -> Result<Self, String> {
        let Some(url) = std::env::var("MODERATION_API_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            return Ok(ModerationConfig::default());
        };
        let timeout = match std::env::var("MODERATION_API_TIMEOUT") {
            Ok(t) => parse_duration(&t).map_err(|e| format!("MODERATION_API_TIMEOUT: {e}"))?,
            Err(_) => Duration::from_secs(2),
        };
        Ok(ModerationConfig {
            remote: Some(RemoteClassifier::new(&url, timeout)?),
        })
    }
}

/// Registers `moderation.text` with the given configuration.
pub fn register_with(builder: WorkerBuilder, config: ModerationConfig) -> WorkerBuilder {
    let config = Arc::new(config);
    builder.handler("moderation.text", move |job, ctx| {
        moderate(config.clone(), job, ctx)
    })
}

/// Classifies a text, through the cache and the per-text lock.
pub async fn moderate(
    config: Arc<ModerationConfig>,
    job: Job<ModerateText>,
    ctx: Ctx,
) -> Result<Verdict, JobError> {
    if job.data.text.len() > MAX_TEXT {
        return Err(JobError::fatal(format!(
            "text of {} bytes: at most {MAX_TEXT} are accepted",
            job.data.text.len()
        )));
    }
    let text = normalize::normalize(&job.data.text);
    let hash = normalize::text_hash(&text);
    let key = format!("verdict:{hash}");
    let cache = ctx.cache(CACHE_NAMESPACE);
    if let Some(v) = cached(cache.get(&key).await)? {
        return Ok(Verdict { cached: true, ..v });
    }
    // waiters wait as long as the lease: long enough for the API's timeout and the rules
    let lease = config.lock_lease();
    let verdict = ctx
        .lock()
        .with_lock(&format!("moderation:{hash}"), lease, async {
            // whoever held the lock before us may have stored the verdict meanwhile (a
            // re-check, not counted again in the cache's stats)
            if let Some(v) = cached(cache.peek(&key).await)? {
                return Ok::<_, JobError>(Verdict { cached: true, ..v });
            }
            let verdict = classify(&config, &text, hash.clone()).await;
            // a fallback verdict is kept briefly: the API may be back soon
            let ttl = if verdict.fallback.is_some() {
                FALLBACK_TTL
            } else {
                VERDICT_TTL
            };
            cache.set(&key, &verdict, ttl).await?;
            Ok(verdict)
        })
        .await??;
    Ok(verdict)
}

/// A cached verdict; one that no longer decodes (stored by another version of jobq) is a
/// miss, classified again and overwritten.
fn cached(read: queue_core::Result<Option<Verdict>>) -> Result<Option<Verdict>, JobError> {
    match read {
        Ok(v) => Ok(v),
        Err(e @ queue_core::Error::CacheValue { .. }) => {
            tracing::warn!(error = %e, "ignoring a cached verdict that does not decode");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

async fn classify(config: &ModerationConfig, text: &str, hash: String) -> Verdict {
    let mut fallback = None;
    if let Some(remote) = &config.remote {
        match remote.classify(text).await {
            Ok(v) => {
                return Verdict {
                    verdict: v.verdict,
                    scores: v.scores,
                    reasons: v.reasons,
                    source: "api".into(),
                    fallback: None,
                    hash,
                    cached: false,
                }
            }
            Err(e) => {
                tracing::warn!(url = %remote.url(), error = %e, "moderation API failed: using the built-in rules");
                fallback = Some(e);
            }
        }
    }
    let c = rules::classify(text);
    Verdict {
        verdict: rules::decide(&c.scores).to_string(),
        scores: c.scores,
        reasons: c.reasons,
        source: "rules".into(),
        fallback,
        hash,
        cached: false,
    }
}
