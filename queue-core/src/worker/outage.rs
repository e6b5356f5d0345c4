//! Redis outages as a background loop sees them: log once when one starts and once when it
//! ends (not once per retry), and back off (exponentially, with jitter) between retries.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::error::Error;

pub(crate) fn backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times()
        .build()
}

pub(crate) struct Outage {
    what: String,
    since: Option<Instant>,
    delays: ExponentialBackoff,
}

impl Outage {
    pub fn new(what: String) -> Self {
        Outage {
            what,
            since: None,
            delays: backoff(),
        }
    }

    /// Records a failure and returns how long to wait before trying again.
    pub fn failed(&mut self, err: &Error) -> Duration {
        if self.since.is_none() {
            self.since = Some(Instant::now());
            tracing::warn!(error = %err, "{} failed; retrying with backoff", self.what);
        }
        self.delays.next().unwrap_or(Duration::from_secs(2))
    }

    /// Records a success, logging the end of an outage.
    pub fn recovered(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                after_ms = since.elapsed().as_millis() as u64,
                "{} works again",
                self.what
            );
            self.delays = backoff();
        }
    }
}
