//! The worker's Prometheus endpoint (`--metrics-bind`): an axum router with `GET /metrics`
//! (the Prometheus text exposition format) and `GET /healthz`, 404 for any other path and
//! 405 for any other method, served by hyper one request per connection, with bounds so
//! that clients which connect and send nothing cannot hold it:
//!
//! - a request's headers must arrive within [`HEADER_TIMEOUT`];
//! - a connection is closed after [`CONNECTION_TIMEOUT`] whatever it is doing (a client
//!   that stopped reading the answer);
//! - at most [`MAX_CONNECTIONS`] are served at once; more wait in the listen backlog.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Produces the metrics text on each scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Longest a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection is served.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// Binds `addr` (failing at once with a message naming it) and serves scrapes until the
/// process ends. Returns the bound address (useful with port 0).
pub async fn serve(addr: &str, render: Render) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics-bind {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("--metrics-bind {addr}: {e}"))?;
    tokio::spawn(accept(listener, router(render)));
    Ok(local)
}

/// The endpoint's routes.
fn router(render: Render) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = render();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                        )],
                        text,
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .method_not_allowed_fallback(|| async { only_get() })
        .fallback(|method: Method| async move {
            if method == Method::GET {
                (StatusCode::NOT_FOUND, "not found\n").into_response()
            } else {
                only_get().into_response()
            }
        })
}

fn only_get() -> (StatusCode, &'static str) {
    (StatusCode::METHOD_NOT_ALLOWED, "only GET\n")
}

/// Accepts connections while a slot is free, each served on a task of its own.
async fn accept(listener: TcpListener, app: Router) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let app = app.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, serve_connection(stream, app))
                        .await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One connection: one request (no keep-alive), headers within [`HEADER_TIMEOUT`].
async fn serve_connection(stream: TcpStream, app: Router) {
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
        .await;
    if let Err(e) = served {
        // a header timeout, a reset, a malformed request: the client's business
        tracing::debug!(error = %e, "metrics endpoint: connection ended");
    }
}
