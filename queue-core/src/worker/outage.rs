//! Redis outages as a background loop sees them: log once when one starts and once when it
//! ends (not once per retry), and back off (exponentially, with jitter) between retries.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::error::Error;

/// The longest wait between retries.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Waits from 50 ms, doubling (with jitter) up to `most`.
fn backoff_to(most: Duration) -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(most)
        .with_jitter()
        .without_max_times()
        .build()
}

pub(crate) struct Outage {
    what: String,
    since: Option<Instant>,
    most: Duration,
    delays: ExponentialBackoff,
}

impl Outage {
    pub fn new(what: String) -> Self {
        Outage::retrying_within(what, MAX_DELAY)
    }

    /// As [`Outage::new`], retrying at least every third of `lease` (a sixth, doubled at
    /// most by the jitter; 50 ms at the least):
    /// a loop that gives back or records what a worker holds is back within a small part of
    /// a lease once Redis answers again, long before a reclaimer may take those jobs (a
    /// whole lease after Redis is back). With 2 s between retries, a worker on a 1 s lease
    /// gave back a claim whose reply was lost after another worker had reclaimed it, a
    /// stall counted for a job that never ran.
    pub fn within_lease(what: String, lease: Duration) -> Self {
        Outage::retrying_within(
            what,
            (lease / 6).clamp(Duration::from_millis(50), MAX_DELAY),
        )
    }

    fn retrying_within(what: String, most: Duration) -> Self {
        Outage {
            what,
            since: None,
            most,
            delays: backoff_to(most),
        }
    }

    /// Records a failure and returns how long to wait before trying again.
    pub fn failed(&mut self, err: &Error) -> Duration {
        if self.since.is_none() {
            self.since = Some(Instant::now());
            tracing::warn!(error = %err, "{} failed; retrying with backoff", self.what);
        }
        self.delays.next().unwrap_or(self.most)
    }

    /// Records a success, logging the end of an outage.
    pub fn recovered(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                after_ms = since.elapsed().as_millis() as u64,
                "{} works again",
                self.what
            );
            self.delays = backoff_to(self.most);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_within_a_lease_retries_at_least_every_third_of_it() {
        let err = Error::Protocol("down".into());
        let mut short = Outage::within_lease("x".into(), Duration::from_secs(1));
        let waits: Vec<Duration> = (0..30).map(|_| short.failed(&err)).collect();
        assert!(
            waits.iter().all(|w| *w <= Duration::from_millis(334)),
            "{waits:?}"
        );
        assert!(
            waits[10..].iter().all(|w| *w >= Duration::from_millis(166)),
            "{waits:?}"
        );
        let mut long = Outage::within_lease("x".into(), Duration::from_secs(30));
        let last = (0..30).map(|_| long.failed(&err)).last().unwrap();
        assert!((MAX_DELAY..=2 * MAX_DELAY).contains(&last), "{last:?}");
        let mut tiny = Outage::within_lease("x".into(), Duration::from_millis(100));
        assert!((0..30).all(|_| tiny.failed(&err) <= Duration::from_millis(100)));
    }
}
