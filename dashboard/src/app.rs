//! The application: every route, declared here in one place.

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;

use crate::state::AppState;
use crate::{
    api, auth, body_limit, discovery, headers, health, limits, metrics, openapi, pages, query,
    refusals, schedules, sse, timing,
};

/// An API route whose changes take no query parameter (`query::writes_take_no_query`):
/// checked once its method matched, so a method the path does not have stays a 405.
fn checked(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.route_layer(middleware::from_fn(query::writes_take_no_query))
}

/// Every route of the dashboard, behind the auth guard and the body limits, with every
/// error in JSON (or an error page), and the `Server-Timing` and the security headers on
/// every response (refusals included).
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", checked(get(health::health)))
        .route("/openapi.json", checked(get(openapi::openapi_json)))
        .route("/flows", checked(post(api::add_flow)))
        .route("/queues", checked(get(api::list_queues)))
        .route("/queues/{queue}", checked(get(api::get_queue)))
        .route("/queues/{queue}/groups", checked(get(api::list_groups)))
        .route(
            "/queues/{queue}/jobs",
            checked(get(api::list_jobs).post(api::add_jobs)),
        )
        .route(
            "/queues/{queue}/jobs/{id}",
            checked(get(api::get_job).delete(api::remove_job)),
        )
        .route(
            "/queues/{queue}/jobs/{id}/retry",
            checked(post(api::retry_job)),
        )
        .route(
            "/queues/{queue}/jobs/{id}/promote",
            checked(post(api::promote_job)),
        )
        .route(
            "/queues/{queue}/jobs/{id}/cancel",
            checked(post(api::cancel_job)),
        )
        .route("/queues/{queue}/retry", checked(post(api::retry_all)))
        .route("/queues/{queue}/promote", checked(post(api::promote_all)))
        .route("/queues/{queue}/pause", checked(post(api::pause)))
        .route("/queues/{queue}/resume", checked(post(api::resume)))
        .route("/queues/{queue}/clean", checked(post(api::clean)))
        .route("/queues/{queue}/drain", checked(post(api::drain)))
        .route(
            "/queues/{queue}/schedules",
            checked(get(schedules::list_schedules).post(schedules::add_schedule)),
        )
        .route(
            "/queues/{queue}/schedules/{id}",
            checked(delete(schedules::remove_schedule)),
        )
        .route(
            "/queues/{queue}/limits",
            checked(get(limits::get_limits).post(limits::set_limits)),
        )
        .route("/workers", checked(get(discovery::list_workers_api)))
        .route("/redis", checked(get(discovery::redis_api)))
        .fallback(api::not_found);

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
