//! The optional external classifier (`MODERATION_API_URL`).
//!
//! Protocol: `POST <url>` with `{"text": "<normalised text>"}`; a 2xx reply of
//! `{"verdict": "allowed"|"flagged"|"blocked", "scores": {"<category>": 0.0-1.0, ..},
//! "reasons": [..]}` (`scores` and `reasons` optional). Anything else — a timeout, a
//! refused connection, another status (a redirect too: the text goes to that URL and no
//! other), another body, one over 64 KiB (read no further) — is an error, and the caller
//! falls back to the built-in rules.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// Largest reply read from the classifier.
const MAX_REPLY: u64 = 64 * 1024;

/// A client of the external classifier.
#[derive(Debug, Clone)]
pub struct RemoteClassifier {
    url: String,
    timeout: Duration,
    http: reqwest::Client,
}

/// What the external classifier answered.
#[derive(Debug, Clone, Deserialize)]
pub struct RemoteVerdict {
    /// `allowed`, `flagged` or `blocked`.
    pub verdict: String,
    /// Category scores.
    #[serde(default)]
    pub scores: BTreeMap<String, f64>,
    /// Why.
    #[serde(default)]
    pub reasons: Vec<String>,
}

impl RemoteClassifier {
    /// A client of `url` giving up after `timeout` (connecting included).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "MODERATION_API_URL {url:?}: expected an http:// or https:// URL"
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // (a redirect would send users' texts to wherever the classifier points)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("moderation API client: {e}"))?;
        Ok(RemoteClassifier {
            url: url.to_string(),
            timeout,
            http,
        })
    }

    /// How long a request may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The classifier's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Asks for a verdict on `text`.
    pub async fn classify(&self, text: &str) -> Result<RemoteVerdict, String> {
        let reply = self
            .http
            .post(&self.url)
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let mut reply = reply;
        let status = reply.status();
        if !status.is_success() {
            return Err(format!("moderation API answered {status}"));
        }
        let too_long = || format!("moderation API reply over {MAX_REPLY} bytes");
        if reply.content_length().is_some_and(|n| n > MAX_REPLY) {
            return Err(too_long());
        }
        // read a piece at a time, no further than the cap: a reply without a length that
        // never ends took hundreds of MB before the timeout
        let mut body = Vec::new();
        while let Some(piece) = reply.chunk().await.map_err(|e| describe(&e))? {
            if (body.len() + piece.len()) as u64 > MAX_REPLY {
                return Err(too_long());
            }
            body.extend_from_slice(&piece);
        }
        let verdict: RemoteVerdict = serde_json::from_slice(&body)
            .map_err(|e| format!("moderation API reply is not a verdict: {e}"))?;
        if !["allowed", "flagged", "blocked"].contains(&verdict.verdict.as_str()) {
            return Err(format!(
                "moderation API verdict {:?}: expected allowed, flagged or blocked",
                verdict.verdict
            ));
        }
        if let Some((k, v)) = verdict
            .scores
            .iter()
            .find(|(_, v)| !(0.0..=1.0).contains(*v))
        {
            return Err(format!("moderation API score {k}={v}: expected 0-1"));
        }
        Ok(verdict)
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "moderation API timed out".to_string()
    } else if e.is_connect() {
        format!("moderation API unreachable: {e}")
    } else {
        format!("moderation API request failed: {e}")
    }
}
