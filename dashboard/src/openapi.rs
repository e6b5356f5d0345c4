//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the JSON API, generated from the
//! code: each handler's `#[utoipa::path]` (beside it, in `api.rs`, `schedules.rs`,
//! `limits.rs`, `discovery.rs`, `health.rs` and here) and the `ToSchema` types it takes
//! and answers (queue-core's behind its `openapi` feature). Built once, on first request.
//!
//! The guard's answers (`auth.rs`) are added to every operation here, by the rule that
//! makes them: 401 and 429 where credentials are checked, 403 everywhere, and 503 where
//! Redis is read. A test holds the document to the routes of `app.rs`, and its public
//! operations to `auth::is_public`.
//!
//! The document is public, like `/api/health`: it is the same for every dashboard (no
//! queue, no address, no token, not even which auth mode is on), so it tells a caller
//! nothing but the API's shape, and clients and gateways can fetch it before they have
//! credentials.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, HttpMethod, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi};

use crate::error::AppError;
use crate::{api, discovery, health, limits, schedules};

/// The document's description: how to authenticate, and what errors look like.
const DESCRIPTION: &str = "\
The JSON API of a jobq dashboard: inspect and steer queues, enqueue jobs and flows from any \
language, manage schedules and limits, list workers and look at Redis.

**Auth.** With `--auth-token`, send `Authorization: Bearer <token>` (or the `jobq_session` \
cookie set by `/login`); with `--basic-auth`, HTTP basic auth. Changes (POST, DELETE) need \
credentials whenever auth is configured and are refused (403) with `--read-only`; reads need \
them unless the dashboard listens on loopback. `/api/health` and this document are always \
open. A change made with a cookie or basic auth must come from the dashboard's own pages \
(`Origin`); a bearer token has no such limit.

**Errors** are `{\"error\": \"...\"}` naming the bad value, with the status saying what kind: \
400 bad input (nothing stored), 401 / 403 refused, 404 unknown queue or job, 409 a job in the \
wrong state, 413 over a size cap, 429 too many failed authentications (`Retry-After`), 503 \
Redis unreachable.";

/// The OpenAPI document of `/api`.
#[derive(OpenApi)]
#[openapi(
    info(title = "jobq dashboard API", description = DESCRIPTION),
    paths(
        health::health,
        openapi_json,
        api::add_flow,
        api::list_queues,
        api::get_queue,
        api::list_groups,
        api::list_jobs,
        api::add_jobs,
        api::get_job,
        api::remove_job,
        api::retry_job,
        api::promote_job,
        api::cancel_job,
        api::retry_all,
        api::promote_all,
        api::pause,
        api::resume,
        api::clean,
        api::drain,
        schedules::list_schedules,
        schedules::add_schedule,
        schedules::remove_schedule,
        limits::get_limits,
        limits::set_limits,
        discovery::list_workers_api,
        discovery::redis_api,
        crate::metrics::metrics,
        crate::sse::events,
    ),
    modifiers(&Guarded),
    security(("bearerAuth" = []), ("basicAuth" = []), ("sessionCookie" = []), ()),
    tags(
        (name = "queues", description = "Queues: counts, groups, and actions on all their jobs"),
        (name = "jobs", description = "Jobs: enqueue, list, search, read, and steer one"),
        (name = "flows", description = "Trees of jobs that wait for their children"),
        (name = "schedules", description = "Repeatable jobs of a queue"),
        (name = "limits", description = "Rate and concurrency limits of a queue and its groups"),
        (name = "discovery", description = "Workers and Redis at a glance"),
        (name = "health", description = "Whether the dashboard reaches Redis"),
        (name = "meta", description = "This document"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "live", description = "Live updates as Server-Sent Events"),
    )
)]
pub struct ApiDoc;

/// The document as JSON (built once): as generated, with the rules it cannot say by
/// itself written in (`openapi_rules.rs`).
pub fn document() -> Result<&'static str, AppError> {
    static DOC: OnceLock<Result<String, String>> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).map_err(|e| e.to_string())?;
        crate::openapi_rules::tighten(&mut doc);
        serde_json::to_string(&doc).map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(|e| AppError::Internal(format!("building the OpenAPI document: {e}")))
}

/// `GET /api/openapi.json`: this API's OpenAPI document.
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi", tag = "meta",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API",
            content_type = "application/json", body = Object),
    ))]
pub async fn openapi_json() -> Response {
    match document() {
        Ok(doc) => ([(header::CONTENT_TYPE, "application/json")], doc).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Adds the security schemes, and the answers of the auth guard and of an unreachable
/// Redis, to every operation they apply to.
struct Guarded;

/// The shared responses: (name, status, what it means).
const GUARD_RESPONSES: [(&str, &str, &str); 7] = [
    (
        "BadRequest",
        "400",
        "A query parameter the endpoint does not take (a change takes none), or one whose \
         name or value is not UTF-8 once decoded: the error names it",
    ),
    (
        "PayloadTooLarge",
        "413",
        "The request body is over the endpoint's limit",
    ),
    (
        "Unauthorized",
        "401",
        "Credentials missing or wrong (with --basic-auth: `WWW-Authenticate`)",
    ),
    (
        "Forbidden",
        "403",
        "Refused: --read-only (a change), a cross-site change without a bearer token, or a \
         Host that is not a loopback name on a loopback bind",
    ),
    (
        "TooManyRequests",
        "429",
        "Too many failed authentications from this address: wait `Retry-After` seconds",
    ),
    (
        "Unavailable",
        "503",
        "Redis is unreachable, too slow or not configured (the message names the address)",
    ),
    ("Internal", "500", "A bug or an unexpected reply from Redis"),
];

impl Modify for Guarded {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The token given with --auth-token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basicAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("The user and password given with --basic-auth"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "sessionCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The session the /login form sets (with --auth-token)",
            ))),
        );
        for (name, _, description) in GUARD_RESPONSES {
            let error = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let mut response = ResponseBuilder::new()
                .description(description)
                .content("application/json", error);
            if name == "TooManyRequests" {
                let seconds = ObjectBuilder::new().schema_type(Type::Integer).build();
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(seconds)
                        .description(Some("Seconds until credentials are checked again"))
                        .build(),
                );
            }
            components
                .responses
                .insert(name.to_string(), RefOr::T(response.build()));
        }

        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                let public = op.security.as_deref() == Some(&[SecurityRequirement::default()]);
                for (name, status, _) in GUARD_RESPONSES {
                    let applies = match status {
                        "401" | "429" => !public,
                        // (the two reads that take any query: a probe's, the document's)
                        "400" => path != "/api/openapi.json" && path != "/api/health",
                        // the body limits hold the bodies of changes
                        "413" => !matches!(method, HttpMethod::Get | HttpMethod::Head),
                        // the document is built in memory: no Redis, nothing to fail
                        "503" | "500" => path != "/api/openapi.json",
                        _ => true,
                    };
                    if applies {
                        op.responses
                            .responses
                            .entry(status.to_string())
                            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                    }
                }
            }
        }
    }
}

/// The operations of a path, with their methods.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (HttpMethod, &mut utoipa::openapi::path::Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Head, item.head.as_mut()),
        (HttpMethod::Options, item.options.as_mut()),
        (HttpMethod::Trace, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use serde_json::{json, Value};

    /// `(method, path)` of every route `app.rs` declares in its `/api` router, read from
    /// its source, and of `/metrics` and `/events`: a route added there without
    /// documentation fails the test below.
    fn api_routes() -> BTreeSet<(String, String)> {
        let src = include_str!("app.rs");
        let start = src
            .find("let api = Router::new()")
            .expect("the /api router");
        let end = start + src[start..].find(".fallback(").expect("its fallback");
        let block = &src[start..end];
        let mut routes = BTreeSet::new();
        let mut rest = block;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // the call's arguments: up to its closing parenthesis
            let mut depth = 1;
            let len = rest
                .char_indices()
                .find_map(|(i, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    (depth == 0).then_some(i)
                })
                .expect("a closed .route(..)");
            let args = &rest[..len];
            let path = args.split('"').nth(1).expect("a path literal");
            let handlers = &args[args.find(',').expect("a handler") + 1..];
            let mut methods = 0;
            for method in ["get", "post", "put", "patch", "delete"] {
                for (i, _) in handlers.match_indices(&format!("{method}(")) {
                    let before = handlers[..i].chars().next_back();
                    if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                        routes.insert((method.to_string(), format!("/api{path}")));
                        methods += 1;
                    }
                }
            }
            assert!(methods > 0, "no method found in .route({args})");
            rest = &rest[len..];
        }
        assert!(routes.len() > 20, "too few routes read: {routes:?}");
        // the machine routes beside the API, on the root router
        for path in ["/metrics", "/events"] {
            let route = format!(".route(\"{path}\", get(");
            assert!(src.contains(&route), "app.rs no longer routes {path}");
            routes.insert(("get".to_string(), path.to_string()));
        }
        routes
    }

    fn doc() -> Value {
        serde_json::from_str(document().unwrap()).unwrap()
    }

    /// Every `(method, path, operation)` of the document.
    fn documented(doc: &Value) -> Vec<(String, String, Value)> {
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                ops.push((method.clone(), path.clone(), op.clone()));
            }
        }
        ops
    }

    #[test]
    fn every_route_of_the_api_router_is_documented_and_no_other() {
        let doc = doc();
        let documented: BTreeSet<_> = documented(&doc)
            .into_iter()
            .map(|(m, p, _)| (m, p))
            .collect();
        let routes = api_routes();
        let missing: Vec<_> = routes.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routes).collect();
        assert!(
            missing.is_empty(),
            "routes of app.rs missing from the OpenAPI document (add a #[utoipa::path] and \
             list the handler in openapi.rs): {missing:?}"
        );
        assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    }

    #[test]
    fn the_public_operations_are_those_the_guard_lets_through() {
        let doc = doc();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        let mut ids = BTreeSet::new();
        for (method, path, op) in documented(&doc) {
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(ids.insert(id.clone()), "operationId {id} twice");
            let public = op["security"] == json!([{}]);
            assert_eq!(
                public,
                crate::auth::is_public(&path),
                "{method} {path}: public in the document, or in auth.rs, not both"
            );
            let responses = op["responses"].as_object().unwrap();
            for status in ["403"].into_iter().chain((!public).then_some("401")) {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
            for (status, response) in responses {
                if status.starts_with('2') || op["operationId"] == "health" {
                    continue;
                }
                let shown = response.to_string();
                assert!(
                    shown.contains("ErrorBody") || shown.contains("#/components/responses/"),
                    "{method} {path} {status}: not the JSON error: {shown}"
                );
            }
        }
        for scheme in ["bearerAuth", "basicAuth", "sessionCookie"] {
            assert!(
                doc["components"]["securitySchemes"][scheme].is_object(),
                "{scheme}"
            );
        }
    }

    #[test]
    fn the_request_schemas_read_as_the_handlers_read_bodies() {
        // a body built from each documented request type is accepted by the parser the
        // handler uses (a field renamed in one but not the other fails here)
        let opts = queue_core::JobOptions::new()
            .delay(std::time::Duration::from_millis(1500))
            .priority(3)
            .attempts(4)
            .backoff(queue_core::Backoff::exponential(
                std::time::Duration::from_secs(1),
            ))
            .timeout(std::time::Duration::from_secs(30))
            .remove_on_complete(queue_core::Retention::keep_last(10))
            .remove_on_fail(queue_core::Retention::keep_for(
                std::time::Duration::from_secs(3600),
            ))
            .group("tenant-1");
        let body = json!({"name": "diag.echo", "data": {"x": 1}, "opts": opts});
        let jobs = api::parse_enqueue_body(body.to_string().as_bytes()).unwrap();
        assert_eq!(jobs[0].opts, opts);

        let clean = api::CleanBody {
            state: api::CleanState::Cancelled,
            older_than: Some(api::DurationValue::Text("1h".into())),
            limit: Some(5),
        };
        let parsed = api::CleanRequest::parse(&serde_json::to_vec(&clean).unwrap()).unwrap();
        assert_eq!(
            (parsed.state, parsed.limit),
            (queue_core::JobState::Cancelled, Some(5))
        );

        let schedule = schedules::ScheduleBody {
            id: "nightly".into(),
            name: "report".into(),
            every: Some(api::DurationValue::Millis(60_000)),
            cron: None,
            data: Some(json!({"k": 1})),
            opts: Some(queue_core::JobOptions::new().attempts(2)),
        };
        let Value::Object(obj) = serde_json::to_value(&schedule).unwrap() else {
            panic!("not an object")
        };
        let parsed = schedules::parse_schedule(obj).unwrap();
        assert_eq!((parsed.opts.attempts, &parsed.id[..]), (Some(2), "nightly"));

        let change = limits::LimitsBody {
            rate: Some("100/1s".into()),
            clear_concurrency: Some(true),
            group_rate: Some("5/1m".into()),
            group_concurrency: Some(2),
            group: Some("vip".into()),
            ..Default::default()
        };
        limits::LimitsChange::parse(&serde_json::to_vec(&change).unwrap()).unwrap();
        let clears = limits::LimitsBody {
            clear_rate: Some(true),
            concurrency: Some(3),
            clear_group_rate: Some(true),
            clear_group_concurrency: Some(true),
            ..Default::default()
        };
        limits::LimitsChange::parse(&serde_json::to_vec(&clears).unwrap()).unwrap();
    }

    #[test]
    fn the_limits_view_is_the_shape_jobq_limits_prints() {
        let l = queue_core::Limits {
            rate_max: Some(10),
            rate_window_ms: Some(1000),
            concurrency: None,
            corrupt: None,
        };
        let g = queue_core::GroupLimitsView {
            default: queue_core::GroupLimits {
                concurrency: Some(2),
                ..Default::default()
            },
            overrides: vec![(
                "vip".into(),
                queue_core::GroupLimits {
                    rate_max: Some(5),
                    rate_window_ms: Some(60_000),
                    ..Default::default()
                },
            )],
            corrupt: Vec::new(),
        };
        assert_eq!(
            serde_json::to_value(limits::LimitsView::new("q", l.clone(), g.clone())).unwrap(),
            queue_core::internal::limits_view::limits_json("q", &l, &g)
        );
    }
}
