//! The state every handler shares: [`AppState`].

use std::sync::Arc;

use queue_core::producer::{replay_loop, REPLAY_EVERY};
use queue_core::worker::CancellationToken;

use crate::backend::Backend;
use crate::config::DashboardConfig;
use crate::enqueue::Enqueuer;
use crate::live::{self, Hub};
use crate::session::Sessions;
use crate::throttle::AuthThrottle;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: DashboardConfig,
    backend: Backend,
    enqueuer: Enqueuer,
    sessions: Sessions,
    throttle: AuthThrottle,
    hub: Hub,
    /// Live streams (`/events`) open at once: at most half the connections, so streams
    /// alone never hold every connection (pages, the API and health checks keep the rest).
    streams: Arc<tokio::sync::Semaphore>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for `config`; nothing runs until [`AppState::start_background`].
    pub fn new(config: DashboardConfig, shutdown: CancellationToken) -> Self {
        let backend = Backend::new(config.redis.clone());
        let enqueuer = Enqueuer::new(&config.redis);
        let streams = Arc::new(tokio::sync::Semaphore::new(max_streams(
            config.limits.max_connections,
        )));
        AppState {
            inner: Arc::new(Inner {
                config,
                backend,
                enqueuer,
                sessions: Sessions::default(),
                throttle: AuthThrottle::default(),
                hub: Hub::new(),
                streams,
                shutdown,
            }),
        }
    }

    /// A place for one more live stream, held while it is open; `None` when as many as
    /// the dashboard serves are open.
    pub fn stream_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inner.streams.clone().try_acquire_owned().ok()
    }

    /// Starts the background duties: connecting to Redis, then replaying the spool dir
    /// (`JOBQ_SPOOL_DIR`: jobs this dashboard or any other jobq process spooled while Redis
    /// was down) and following the queues' events for the live updates. All stop at
    /// shutdown.
    pub fn start_background(&self) {
        let state = self.clone();
        tokio::spawn(async move {
            let shutdown = state.shutdown().clone();
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = async {
                    state.backend().connect_until_up().await;
                    state.start_replay();
                    live::follow(state.backend(), state.hub()).await;
                } => {}
            }
        });
    }

    /// Replays the spool dir every [`REPLAY_EVERY`] over the backend's connection (which
    /// reconnects by itself), as a worker does. Spool files are locked, so this and the
    /// producer's own replay when its breaker closes never store a file twice over.
    fn start_replay(&self) {
        let Ok(redis) = self.backend().redis() else {
            return;
        };
        let dir = self.enqueuer().producer().spool_dir().to_path_buf();
        tokio::spawn(replay_loop(
            redis.clone(),
            dir,
            REPLAY_EVERY,
            self.shutdown().clone(),
        ));
    }

    /// The configuration.
    pub fn config(&self) -> &DashboardConfig {
        &self.inner.config
    }

    /// Redis and the queue handles.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// The producer behind the enqueue endpoint and form (`JOBQ_FALLBACK` applies).
    pub fn enqueuer(&self) -> &Enqueuer {
        &self.inner.enqueuer
    }

    /// Login sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Failed authentications per client address (the backoff of `throttle.rs`).
    pub fn throttle(&self) -> &AuthThrottle {
        &self.inner.throttle
    }

    /// The live-update broadcaster.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Cancelled when the dashboard stops (ends the SSE streams).
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}

/// How many live streams a dashboard of `max_connections` serves at once: half of them
/// (at least one).
pub fn max_streams(max_connections: usize) -> usize {
    (max_connections / 2).max(1)
}
