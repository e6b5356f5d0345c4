//! The application: one shared [`AppState`] and every route, declared here in one place.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use queue_core::fallback::{replay_loop, REPLAY_EVERY};
use queue_core::worker::CancellationToken;

use crate::auth::Sessions;
use crate::backend::Backend;
use crate::config::DashboardConfig;
use crate::enqueue::Enqueuer;
use crate::live::Hub;
use crate::throttle::AuthThrottle;
use crate::{api, auth, body_limit, error, headers, health, live, metrics, pages, sse, timing};

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
        AppState {
            inner: Arc::new(Inner {
                config,
                backend,
                enqueuer,
                sessions: Sessions::default(),
                throttle: AuthThrottle::default(),
                hub: Hub::new(),
                shutdown,
            }),
        }
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
                    live::follow(state.clone()).await;
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

/// Every route of the dashboard, behind the auth guard and the body limits, with every
/// error in JSON (or an error page), and the `Server-Timing` and the security headers on
/// every response (refusals included).
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/queues", get(api::list_queues))
        .route("/queues/{queue}", get(api::get_queue))
        .route(
            "/queues/{queue}/jobs",
            get(api::list_jobs).post(api::add_jobs),
        )
        .route(
            "/queues/{queue}/jobs/{id}",
            get(api::get_job).delete(api::remove_job),
        )
        .route("/queues/{queue}/jobs/{id}/retry", post(api::retry_job))
        .route("/queues/{queue}/jobs/{id}/promote", post(api::promote_job))
        .route("/queues/{queue}/retry", post(api::retry_all))
        .route("/queues/{queue}/promote", post(api::promote_all))
        .route("/queues/{queue}/pause", post(api::pause))
        .route("/queues/{queue}/resume", post(api::resume))
        .route("/queues/{queue}/clean", post(api::clean))
        .route("/queues/{queue}/drain", post(api::drain))
        .fallback(api::not_found);

    let pages = Router::new()
        .route("/", get(pages::overview::overview))
        .route("/login", get(pages::login::form).post(pages::login::login))
        .route("/logout", post(pages::login::logout))
        .route("/queues/{queue}", get(pages::queue::queue_page))
        .route("/queues/{queue}/jobs", post(pages::actions::add_job))
        .route("/queues/{queue}/jobs/{id}", get(pages::job::job_page))
        .route(
            "/queues/{queue}/jobs/{id}/{action}",
            post(pages::actions::job_action),
        )
        .route(
            "/queues/{queue}/{action}",
            post(pages::actions::queue_action),
        )
        .fallback(pages::not_found);

    Router::new()
        .nest("/api", api)
        .route("/metrics", get(metrics::metrics))
        .route("/events", get(sse::events))
        .merge(pages)
        .layer(middleware::from_fn_with_state(state.clone(), auth::guard))
        // `body_limit` holds every body to its own limit instead
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body_limit::limit_body,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            error::errors_as_json,
        ))
        .layer(middleware::from_fn(timing::server_timing))
        .layer(middleware::from_fn(headers::security_headers))
        .with_state(state)
}
