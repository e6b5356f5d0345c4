//! The dashboard through the built `jobq-dashboard` binary: its JSON API and live updates,
//! HTML pages (hostile values escaped on every one), security (tokens, sessions, CSRF,
//! timeouts), the producer fallback of its enqueue endpoint, flows (`POST /api/flows`,
//! parents and children on the pages), groups (`GET /api/queues/{q}/groups`, the queue
//! page's table, the group gauges), a queue's schedules and limits (API and pages),
//! cancelling jobs, workers and Redis at a glance (`GET /api/workers`, `GET /api/redis`,
//! their pages), the OpenAPI document (`GET /api/openapi.json`, validated, and used by a
//! Python client), rendering at scale, a real browser (chromium + chromedriver), and
//! OpenTelemetry: trace context given to `jobq add`, the enqueue routes or an in-process
//! add, exported by `jobq-worker` over OTLP.

mod dashboard_api;
mod dashboard_browser;
mod dashboard_cancel;
mod dashboard_discovery;
mod dashboard_escaping;
mod dashboard_fallback;
mod dashboard_flows;
mod dashboard_groups;
mod dashboard_openapi;
mod dashboard_pages;
mod dashboard_scale;
mod dashboard_search;
mod dashboard_security;
mod dashboard_steer;
mod otel;

// what the modules above share (not tests)
mod dashboard_support;
