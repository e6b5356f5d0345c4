//! Enqueueing from the dashboard — `POST /api/queues/{q}/jobs` and the "add a job" form —
//! through queue-core's [`Producer`], so `JOBQ_FALLBACK` applies when Redis is
//! down or not configured:
//!
//! - `spool`: the jobs are appended to a durable file in `JOBQ_SPOOL_DIR` and the API answers
//!   202 Accepted with `"spooled": true` (and each job's id, which the replay keeps). The
//!   dashboard replays that dir itself once Redis answers (the producer when its breaker
//!   closes, and `replay_loop`, started in `state.rs` once connected, every
//!   [`REPLAY_EVERY`](queue_core::producer::REPLAY_EVERY)), as do workers sharing the dir.
//! - `error`: 503 with the error naming the Redis address.
//! - `inline` (the default): the dashboard runs no handlers, so it cannot run a job in its
//!   own process: 503 naming the address and saying to set `JOBQ_FALLBACK=spool`. It says
//!   so once at startup ([`startup_note`]).
//!
//! The producer's circuit breaker makes an outage cost one failed connect: later enqueues
//! fall back at once. Bad input is a 400 whatever the state of Redis, and nothing is kept.
//!
//! A W3C `traceparent` header on an enqueue (a job, jobs, a flow) is recorded as the trace
//! context of every job it adds ([`Traceparent`]), so the workers' spans join the caller's
//! trace; a malformed one is a 400 naming it, never dropped unseen.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use queue_core::trace::{parse_traceparent, TRACEPARENT_HEADER};
use queue_core::{Config, Error, Fallback, FlowJob, NewJob, Produced, Producer};

use crate::error::AppError;

/// The dashboard's one producer and the fallback it was configured with.
#[derive(Debug, Clone)]
pub struct Enqueuer {
    producer: Producer,
    mode: Fallback,
}

impl Enqueuer {
    /// A producer for `config` (its Redis, prefix, `JOBQ_FALLBACK` and `JOBQ_SPOOL_DIR`).
    /// Nothing connects until the first enqueue.
    pub fn new(config: &Config) -> Self {
        let mode = config.fallback;
        let mut producer_config = config.clone();
        if mode == Fallback::Inline {
            // no handlers here to run a job with: refuse, and say why (see `refused_inline`)
            producer_config.fallback = Fallback::Error;
        }
        Enqueuer {
            // as long as any other request may wait for Redis: a slow Redis is not down
            producer: Producer::builder(producer_config)
                .timeout(crate::backend::REDIS_DEADLINE)
                .build(),
            mode,
        }
    }

    /// The configured `JOBQ_FALLBACK`.
    pub fn mode(&self) -> Fallback {
        self.mode
    }

    /// The producer (its spool dir, its breaker).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Adds `jobs` to `queue` (checked first: bad input is a 400, nothing kept), stored in
    /// Redis or, when Redis is down, spooled or refused as the fallback says: each result is
    /// [`Produced::Stored`] or [`Produced::Spooled`].
    pub async fn add(&self, queue: &str, jobs: Vec<NewJob>) -> Result<Vec<Produced>, AppError> {
        let n = jobs.len();
        let ran_inline = |p: &Produced| matches!(p, Produced::Inline { .. });
        match self.producer.add_bulk(queue, jobs).await {
            // the producer has no handlers and never falls back to `inline` (see `new`)
            Ok(produced) if produced.iter().any(ran_inline) => Err(AppError::Internal(
                "a job ran inline in the dashboard".into(),
            )),
            Ok(produced) => Ok(produced),
            Err(e) if self.mode == Fallback::Inline && is_down(&e) => Err(self.refused_inline()),
            Err(e @ Error::Spool { .. }) => Err(AppError::Unavailable(format!(
                "{} is unreachable and {n} job(s) could not be spooled, so they were not \
                 added: {e}",
                self.redis_named()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The 503 of an enqueue while Redis is down and the fallback is `inline`.
    fn refused_inline(&self) -> AppError {
        let cause = match self.producer.breaker() {
            queue_core::producer::BreakerState::Open { cause } => format!(" ({cause})"),
            _ => String::new(),
        };
        let down = if self.producer.config().redis_url().is_none() {
            "Redis is not configured (set REDIS_URL or REDIS_HOST, or pass --redis-url)".to_string()
        } else {
            format!("{} is unreachable{cause}", self.redis_named())
        };
        AppError::Unavailable(format!(
            "{down}, and JOBQ_FALLBACK=inline is not possible in the dashboard (it runs no \
             handlers), so the job(s) were not added: set JOBQ_FALLBACK=spool to keep jobs while \
             Redis is down, or retry later"
        ))
    }

    fn redis_named(&self) -> String {
        format!("Redis at {}", self.producer.config().masked_url())
    }
}

/// The `traceparent` header of an enqueue request, checked (an extractor: a malformed or
/// repeated header is refused with a 400 naming it before the body is read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traceparent(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Traceparent {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let mut values = parts.headers.get_all(TRACEPARENT_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(Traceparent(None));
        };
        if values.next().is_some() {
            return Err(AppError::BadRequest(
                "traceparent header: given more than once; send one".into(),
            ));
        }
        let text = value.to_str().map_err(|_| {
            // named as text, clipped: the header may be kilobytes of anything
            let shown = String::from_utf8_lossy(value.as_bytes());
            AppError::BadRequest(format!(
                "traceparent header {:?}: not visible ASCII; send 00-<32 hex digits>-<16 hex \
                 digits>-<2 hex digits>",
                queue_core::internal::text::clip(&shown, 80)
            ))
        })?;
        parse_traceparent(text)
            .map(|tp| Traceparent(Some(tp)))
            .map_err(|e| AppError::BadRequest(format!("traceparent header: {e}")))
    }
}

impl Traceparent {
    /// Gives the jobs that name no trace context this one (when the request had one).
    pub fn apply(&self, jobs: &mut [NewJob]) {
        let Some(tp) = &self.0 else { return };
        for job in jobs {
            job.opts.traceparent.get_or_insert_with(|| tp.clone());
        }
    }

    /// Gives every node of `flow` that names no trace context this one.
    pub fn apply_flow(&self, flow: FlowJob) -> FlowJob {
        match &self.0 {
            Some(tp) => flow.with_traceparent(tp),
            None => flow,
        }
    }
}

/// What to say at startup about `mode`, when it needs saying: `inline` cannot be honoured
/// by the dashboard.
pub fn startup_note(mode: Fallback) -> Option<&'static str> {
    (mode == Fallback::Inline).then_some(
        "JOBQ_FALLBACK=inline: the dashboard runs no handlers, so while Redis is down an \
         enqueue (POST /api/queues/<q>/jobs) answers 503; set JOBQ_FALLBACK=spool to keep such \
         jobs in JOBQ_SPOOL_DIR until Redis is back",
    )
}

/// Redis is down or not configured: the producer's fallback applied (and here refused).
fn is_down(e: &Error) -> bool {
    matches!(e, Error::RedisDown { .. } | Error::NotConfigured)
}

/// Why Redis was not used, when some of `produced` were spooled (the first one's reason).
pub fn spooled_reason(produced: &[Produced]) -> Option<&str> {
    produced.iter().find_map(|p| match p {
        Produced::Spooled { reason, .. } => Some(reason.as_str()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: Option<&str>, mode: Fallback) -> Config {
        let mut c = match url {
            Some(u) => Config::new(u).unwrap(),
            None => Config::default(),
        };
        c.fallback = mode;
        c
    }

    #[tokio::test]
    async fn inline_is_refused_naming_the_address_and_the_way_out() {
        // port 1: nothing listens there
        let e = Enqueuer::new(&config(Some("redis://127.0.0.1:1"), Fallback::Inline));
        assert!(startup_note(Fallback::Inline)
            .unwrap()
            .contains("JOBQ_FALLBACK=spool"));
        let job = NewJob {
            name: "diag.echo".into(),
            data: serde_json::Value::Null,
            opts: Default::default(),
        };
        let err = e.add("q", vec![job.clone()]).await.unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.status().as_u16(), 503, "{msg}");
        assert!(msg.contains("redis://127.0.0.1:1"), "{msg}");
        assert!(msg.contains("JOBQ_FALLBACK=spool"), "{msg}");
        assert!(!msg.contains("JOBQ_FALLBACK=error"), "{msg}");

        let e = Enqueuer::new(&config(None, Fallback::Inline));
        let msg = e.add("q", vec![job.clone()]).await.unwrap_err().to_string();
        assert!(msg.contains("not configured"), "{msg}");

        // bad input stays bad input
        let bad = e.add("no spaces", vec![job]).await.unwrap_err();
        assert_eq!(bad.status().as_u16(), 400, "{bad}");
    }

    #[test]
    fn spool_and_error_are_passed_to_the_producer_as_they_are() {
        for mode in [Fallback::Spool, Fallback::Error] {
            let e = Enqueuer::new(&config(None, mode));
            assert_eq!((e.mode(), e.producer().fallback()), (mode, mode));
            assert!(startup_note(mode).is_none());
        }
    }
}
