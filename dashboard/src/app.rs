//! The application: every route, declared here in one place.

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::state::AppState;
use crate::{
    api, auth, body_limit, discovery, headers, health, limits, metrics, openapi, pages, query,
    refusals, schedules, sse, timing,
};

/// Every route of the dashboard, behind the auth guard and the body limits, with every
/// error in JSON (or an error page), and the `Server-Timing` and the security headers on
/// every response (refusals included).
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/flows", post(api::add_flow))
        .route("/queues", get(api::list_queues))
        .route("/queues/{queue}", get(api::get_queue))
        .route("/queues/{queue}/groups", get(api::list_groups))
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
        .route("/queues/{queue}/jobs/{id}/cancel", post(api::cancel_job))
        .route("/queues/{queue}/retry", post(api::retry_all))
        .route("/queues/{queue}/promote", post(api::promote_all))
        .route("/queues/{queue}/pause", post(api::pause))
        .route("/queues/{queue}/resume", post(api::resume))
        .route("/queues/{queue}/clean", post(api::clean))
        .route("/queues/{queue}/drain", post(api::drain))
        .route(
            "/queues/{queue}/schedules",
            get(schedules::list_schedules).post(schedules::add_schedule),
        )
        .route(
            "/queues/{queue}/schedules/{id}",
            delete(schedules::remove_schedule),
        )
        .route(
            "/queues/{queue}/limits",
            get(limits::get_limits).post(limits::set_limits),
        )
        .route("/workers", get(discovery::list_workers_api))
        .route("/redis", get(discovery::redis_api))
        .fallback(api::not_found)
        .layer(middleware::from_fn(query::writes_take_no_query));

    let pages = Router::new()
        .route("/", get(pages::overview::overview))
        .route("/login", get(pages::login::form).post(pages::login::login))
        .route("/logout", post(pages::login::logout))
        .route("/workers", get(pages::workers::workers_page))
        .route("/redis", get(pages::redis::redis_page))
        .route("/queues/{queue}", get(pages::queue::queue_page))
        .route("/queues/{queue}/jobs", post(pages::actions::add_job))
        .route("/queues/{queue}/jobs/{id}", get(pages::job::job_page))
        .route(
            "/queues/{queue}/schedules",
            get(pages::schedules::schedules_page).post(pages::schedules::add_schedule),
        )
        .route(
            "/queues/{queue}/schedules/{id}/remove",
            post(pages::schedules::remove_schedule),
        )
        .route(
            "/queues/{queue}/limits",
            get(pages::limits::limits_page).post(pages::limits::set_limits),
        )
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
            refusals::errors_as_json,
        ))
        .layer(middleware::from_fn(timing::server_timing))
        .layer(middleware::from_fn(headers::security_headers))
        .with_state(state)
}
