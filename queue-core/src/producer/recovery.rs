//! The producer's hold on Redis: its one connection (made lazily, dropped when the breaker
//! opens, made anew by a probe), the breaker's transitions, and what an end of an outage
//! sets off — sealing this producer's spool file and replaying the spool dir in the
//! background, or probing Redis from a background task while a spool file is held.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::breaker::Pass;
use super::handle::{Inner, Producer};
use super::spool::has_pending;
use crate::connection::Redis;
use crate::duration::format_duration;
use crate::error::{Error, Result};
use crate::queue::Queue;

impl Producer {
    /// Connects through the breaker; a failure opens it, so the add that follows (the
    /// CLI replays before adding) does not wait on Redis again.
    pub(super) async fn connect_for_replay(&self) -> Result<Redis> {
        self.through_breaker(self.redis()).await
    }

    /// Runs `step` (a connect, or a queue opened on the connection) through the breaker:
    /// refused at once while it is open, timed, and its outcome opens or closes it.
    pub(super) async fn through_breaker<T>(
        &self,
        step: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let down = |reason: String| Error::RedisDown {
            addr: self.inner.config.masked_url(),
            reason,
        };
        if let Pass::Blocked(cause) = self.inner.breaker.check() {
            return Err(down(cause));
        }
        match tokio::time::timeout(self.inner.timeout, step).await {
            Ok(Ok(r)) => {
                self.succeeded();
                Ok(r)
            }
            Ok(Err(e)) => {
                if e.is_connection() && !matches!(e, Error::NotConfigured) {
                    self.went_down(&cause_of(&e));
                }
                Err(e)
            }
            Err(_) => {
                let cause = self.timeout_cause();
                self.went_down(&cause);
                Err(down(cause))
            }
        }
    }

    pub(super) fn timeout_cause(&self) -> String {
        format!("no answer within {}", format_duration(self.inner.timeout))
    }

    /// Opens the breaker and drops the connection: the next probe connects anew.
    pub(super) fn went_down(&self, cause: &str) {
        self.inner.breaker.failed(cause);
        let mut queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        *self.inner.redis.write().unwrap_or_else(|e| e.into_inner()) = None;
        queues.clear();
    }

    /// Redis answered: closes the breaker, and when that ends an outage, frees this
    /// producer's spool file for replay (see the module doc).
    pub(super) fn succeeded(&self) {
        if self.inner.breaker.succeeded() {
            self.recovered();
        }
    }

    /// Seals this producer's spool file (a later outage starts a new one), releasing its
    /// lock for any replayer, and replays it here too unless auto-replay is off.
    pub(super) fn recovered(&self) {
        if self.inner.auto_replay {
            // the replay seals the file first
            self.spawn_replay();
        } else {
            let spool = self.inner.spool.clone();
            tokio::task::spawn_blocking(move || drop(spool.seal()));
        }
    }

    /// While this producer holds a spool file, probes Redis after each cool-down, adds or
    /// not: an idle producer must not keep its spooled jobs out of Redis. Holds the
    /// producer weakly, so dropping it ends the task (and releases the file).
    pub(super) fn watch_recovery(&self) {
        if self.inner.config.redis_url().is_none()
            || self.inner.watching.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.breaker.cooldown().max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                let producer = Producer { inner };
                if !producer.inner.spool.is_open() {
                    producer.inner.watching.store(false, Ordering::Release);
                    // a file opened just now would find `watching` still set: look again
                    if !producer.inner.spool.is_open()
                        || producer.inner.watching.swap(true, Ordering::AcqRel)
                    {
                        return;
                    }
                }
                producer.probe_for_spool().await;
            }
        });
    }

    /// One step of the recovery task: probes Redis when the breaker lets it.
    pub(super) async fn probe_for_spool(&self) {
        match self.inner.breaker.check() {
            Pass::Blocked(_) => {}
            // closed while a late add still spooled: free that file too
            Pass::Go => self.recovered(),
            Pass::Probe => {
                let ping = async { self.redis().await?.ping().await };
                match tokio::time::timeout(self.inner.timeout, ping).await {
                    Ok(Ok(_)) => self.succeeded(),
                    Ok(Err(e)) if e.is_connection() => self.went_down(&cause_of(&e)),
                    // Redis answered, with an error of its own: it is up
                    Ok(Err(_)) => self.succeeded(),
                    Err(_) => {
                        let cause = self.timeout_cause();
                        self.went_down(&cause);
                    }
                }
            }
        }
    }

    pub(super) async fn open_queue(&self, name: &str) -> Result<Queue> {
        let cached = self
            .inner
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned();
        if let Some(q) = cached {
            return Ok(q);
        }
        let (redis, generation) = self.connection().await?;
        let q = Queue::open(&redis, self.inner.config.prefix(), name).await?;
        let mut queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
        // the connection was dropped (or replaced) meanwhile: use it once, do not keep it
        if self.inner.generation.load(Ordering::Acquire) != generation {
            return Ok(q);
        }
        Ok(queues.entry(name.to_string()).or_insert(q).clone())
    }

    /// The current connection, or a new one (one attempt). A new connection starts a
    /// background replay of the spool dir when it holds files (see the module doc).
    pub(super) async fn redis(&self) -> Result<Redis> {
        Ok(self.connection().await?.0)
    }

    /// [`Producer::redis`] with the connection's generation.
    pub(super) async fn connection(&self) -> Result<(Redis, u64)> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let _one = self.inner.connecting.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let redis = Redis::connect_once(&self.inner.config).await?;
        let generation = {
            let _queues = self.inner.queues.lock().unwrap_or_else(|e| e.into_inner());
            let g = self.inner.generation.fetch_add(1, Ordering::AcqRel) + 1;
            *self.inner.redis.write().unwrap_or_else(|e| e.into_inner()) = Some((redis.clone(), g));
            g
        };
        if self.inner.auto_replay && has_pending(self.spool_dir()) {
            self.spawn_replay();
        }
        Ok((redis, generation))
    }

    pub(super) fn current(&self) -> Option<(Redis, u64)> {
        self.inner
            .redis
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn current_redis(&self) -> Option<Redis> {
        self.current().map(|(r, _)| r)
    }

    /// Replays the spool dir in the background, one replay at a time per producer; one
    /// asked for while another runs follows it (the file it is for may be newly sealed).
    pub(super) fn spawn_replay(&self) {
        let inner = &self.inner;
        inner.replay_again.store(true, Ordering::Release);
        if inner.replaying.swap(true, Ordering::AcqRel) {
            return;
        }
        let producer = self.clone();
        tokio::spawn(async move {
            let inner = &producer.inner;
            loop {
                while inner.replay_again.swap(false, Ordering::AcqRel) {
                    match producer.replay_spool().await {
                        Ok(r) => r.log(producer.spool_dir()),
                        Err(e) => {
                            tracing::warn!(error = %e, "spool replay stopped; retried later")
                        }
                    }
                }
                inner.replaying.store(false, Ordering::Release);
                // asked again between the last check and the store above
                if !inner.replay_again.load(Ordering::Acquire)
                    || inner.replaying.swap(true, Ordering::AcqRel)
                {
                    return;
                }
            }
        });
    }
}

/// The cause of a connection error, without the address (said once by the caller).
pub(super) fn cause_of(e: &Error) -> String {
    match e {
        Error::Redis { source, .. } => source.to_string(),
        Error::RedisDown { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}
