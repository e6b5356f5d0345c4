//! OpenTelemetry export for `jobq-worker`: spans over OTLP (HTTP/protobuf) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. Unset (or
//! `OTEL_SDK_DISABLED=true`), no OpenTelemetry layer is installed: queue-core then makes
//! no attempt spans at all (see `queue_core::trace`).
//!
//! The usual `OTEL_*` variables apply: `OTEL_SERVICE_NAME` (default `jobq-worker`),
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`
//! (ms, default 10 s), and the batch processor's `OTEL_BSP_SCHEDULE_DELAY` (ms, default 5 s)
//! and queue sizes. The only protocol is `http/protobuf`; another one in
//! `OTEL_EXPORTER_OTLP_PROTOCOL` is refused rather than sent to the wrong port.
//!
//! Spans go out in batches from the SDK's own thread, so no job waits on the collector;
//! [`Otlp::shutdown`] sends what is left when the worker stops, so a short run loses none.
//! The HTTP client is the worker's own reqwest, run on the worker's tokio runtime (the
//! exporter's default clients would bring a second reqwest, or a runtime of their own).

use std::time::Duration;

use async_trait::async_trait;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The variables that turn export on, the traces-only one first.
const ENDPOINTS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];
const PROTOCOLS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
];
const TIMEOUTS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
];

/// A running OTLP span exporter.
#[derive(Debug)]
pub struct Otlp {
    provider: SdkTracerProvider,
    endpoint: String,
}

impl Otlp {
    /// The exporter the environment asks for: None when no endpoint is set or
    /// `OTEL_SDK_DISABLED=true`; an error naming the variable when one is wrong. Call it
    /// on the tokio runtime the exports are to run on.
    pub fn from_env(service: &'static str) -> Result<Option<Otlp>, String> {
        let Some((var, endpoint)) = first_set(&ENDPOINTS) else {
            return Ok(None);
        };
        // what logs and errors show: a password in the URL masked, as Redis URLs are
        let shown = queue_core::config::mask_url(&endpoint);
        if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some((pvar, protocol)) = first_set(&PROTOCOLS) {
            if protocol != "http/protobuf" {
                return Err(format!(
                    "{pvar}={protocol:?}: jobq exports over http/protobuf only (unset it, or \
                     set http/protobuf)"
                ));
            }
        }
        let timeout = match first_set(&TIMEOUTS) {
            None => Duration::from_secs(10),
            Some((tvar, ms)) => ms
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("{tvar}={ms:?}: use whole milliseconds, e.g. 10000"))?,
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "OpenTelemetry export needs a tokio runtime".to_string())?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("OpenTelemetry export: no HTTP client: {e}"))?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(timeout)
            .with_http_client(OnRuntime { client, runtime })
            .build()
            .map_err(|e| {
                // the SDK's message quotes the endpoint too
                let e = e.to_string().replace(endpoint.as_str(), &shown);
                format!("{var}={shown:?}: {e}")
            })?;
        let mut resource = Resource::builder();
        if first_set(&["OTEL_SERVICE_NAME"]).is_none() {
            resource = resource.with_service_name(service);
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        Ok(Some(Otlp {
            provider,
            endpoint: shown,
        }))
    }

    /// Where spans go, for the start-up log (a password in it masked).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The tracing layer that turns spans into OpenTelemetry spans for this exporter: spans
    /// and events at INFO and above (events become span events), whatever `RUST_LOG` says
    /// of the log lines.
    pub fn layer<S>(&self) -> impl Layer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("jobq"))
            .with_filter(LevelFilter::INFO)
    }

    /// Sends the spans not sent yet and stops the exporter (waits for the collector, up to
    /// the export timeout).
    pub async fn shutdown(self) {
        let provider = self.provider;
        // blocks until the batch thread's last export, which runs on this runtime
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = done {
            tracing::warn!(endpoint = %self.endpoint, error = %e, "spans not all exported");
        }
    }
}

/// The first of `vars` set to something other than blanks, with its value.
fn first_set(vars: &[&'static str]) -> Option<(&'static str, String)> {
    vars.iter().find_map(|v| {
        std::env::var(v)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(|s| (*v, s))
    })
}

/// The exporter's HTTP client: the SDK's batch thread is no tokio thread, so each request is
/// sent by a task on the worker's runtime and awaited from there.
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let response = client.execute(reqwest::Request::try_from(request)?).await?;
            let mut out = Response::builder().status(response.status());
            if let Some(headers) = out.headers_mut() {
                *headers = response.headers().clone();
            }
            Ok::<_, HttpError>(out.body(response.bytes().await?)?)
        });
        sent.await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_endpoint_is_shown_without_its_password() {
        // (nextest runs each test in a process of its own: the variable is this test's)
        std::env::set_var(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://tenant:s3cret@collector.example:4318",
        );
        let otlp = Otlp::from_env("jobq-worker").unwrap().unwrap();
        assert_eq!(otlp.endpoint(), "https://tenant:***@collector.example:4318");
        std::env::set_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://u:s3cret@[");
        let e = Otlp::from_env("jobq-worker").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
