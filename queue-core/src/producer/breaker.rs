//! The producer's circuit breaker: after Redis failed to answer (refused, timed out, I/O
//! error), adds stop trying it for a cool-down and go straight to the fallback, so an outage
//! costs one timeout, not one per add.
//!
//! Closed (normal) → a failure opens it → after the cool-down one caller is let through as a
//! probe (half-open) while the others keep falling back → the probe's success closes it,
//! its failure opens it for another cool-down. Transitions are logged once each, not per
//! add.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default time the breaker stays open before it lets one probe through.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);

/// Where the breaker is, as [`crate::producer::Producer::breaker`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerState {
    /// Redis answered last time: adds go to Redis.
    Closed,
    /// Redis failed: adds fall back until the cool-down ends.
    Open {
        /// The failure that opened it.
        cause: String,
    },
    /// A probe add is trying Redis; other adds fall back meanwhile.
    HalfOpen,
}

/// What a caller may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Try Redis (the breaker is closed).
    Go,
    /// Try Redis as the one probe of a half-open breaker.
    Probe,
    /// Do not try: Redis failed recently, with this cause.
    Blocked(String),
}

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant, cause: String },
    HalfOpen { since: Instant, cause: String },
}

/// A circuit breaker (see the module doc). Cheap to consult: one uncontended mutex.
#[derive(Debug)]
pub(crate) struct Breaker {
    state: Mutex<State>,
    cooldown: Duration,
    /// What is guarded, for the log lines (`Redis at redis://…`).
    what: String,
}

impl Breaker {
    pub fn new(what: String, cooldown: Duration) -> Self {
        Breaker {
            state: Mutex::new(State::Closed),
            cooldown,
            what,
        }
    }

    /// How long it stays open before it lets a probe through.
    pub fn cooldown(&self) -> Duration {
        self.cooldown
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May the caller try Redis now?
    pub fn check(&self) -> Pass {
        let mut state = self.lock();
        match &*state {
            State::Closed => Pass::Go,
            State::Open { until, cause } => {
                if Instant::now() < *until {
                    return Pass::Blocked(cause.clone());
                }
                let cause = cause.clone();
                *state = State::HalfOpen {
                    since: Instant::now(),
                    cause,
                };
                Pass::Probe
            }
            // a probe whose caller gave up (its future was dropped) never reports back:
            // after another cool-down, let a new one through
            State::HalfOpen { since, cause } => {
                if since.elapsed() < self.cooldown {
                    return Pass::Blocked(cause.clone());
                }
                let cause = cause.clone();
                *state = State::HalfOpen {
                    since: Instant::now(),
                    cause,
                };
                Pass::Probe
            }
        }
    }

    /// Redis answered: close. True when this ended an outage (the breaker was not closed).
    pub fn succeeded(&self) -> bool {
        let mut state = self.lock();
        if matches!(*state, State::Closed) {
            return false;
        }
        *state = State::Closed;
        tracing::info!("{} answers again: adds go to Redis", self.what);
        true
    }

    /// Redis failed with `cause`: open for a cool-down. True when this started an outage
    /// (the breaker was closed).
    pub fn failed(&self, cause: &str) -> bool {
        let mut state = self.lock();
        let was_closed = matches!(*state, State::Closed);
        if was_closed {
            tracing::warn!(
                cause,
                cooldown_ms = self.cooldown.as_millis() as u64,
                "{} is unreachable: adds use the fallback, Redis is tried again after the \
                 cool-down",
                self.what
            );
        } else {
            tracing::debug!(cause, "{} still unreachable", self.what);
        }
        *state = State::Open {
            until: Instant::now() + self.cooldown,
            cause: cause.to_string(),
        };
        was_closed
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        match &*self.lock() {
            State::Closed => BreakerState::Closed,
            State::Open { cause, .. } => BreakerState::Open {
                cause: cause.clone(),
            },
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_on_failure_probes_after_cooldown_and_closes_on_success() {
        let b = Breaker::new("Redis".into(), Duration::from_millis(50));
        assert_eq!(b.check(), Pass::Go);
        assert!(b.failed("refused"));
        assert!(!b.failed("refused again"));
        assert_eq!(b.check(), Pass::Blocked("refused again".into()));
        std::thread::sleep(Duration::from_millis(60));
        // one probe, the others keep falling back
        assert_eq!(b.check(), Pass::Probe);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(matches!(b.check(), Pass::Blocked(_)));
        assert!(b.succeeded());
        assert!(!b.succeeded());
        assert_eq!(b.check(), Pass::Go);
    }

    #[test]
    fn failed_probe_reopens_and_a_lost_probe_is_replaced() {
        let b = Breaker::new("Redis".into(), Duration::from_millis(30));
        b.failed("timeout");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.check(), Pass::Probe);
        b.failed("still down");
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.check(), Pass::Probe);
        // that probe never reports: another is let through after a cool-down
        assert!(matches!(b.check(), Pass::Blocked(_)));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.check(), Pass::Probe);
    }
}
